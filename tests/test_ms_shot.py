"""Multi-source SHOT (DECISION): one network per source, adapted together as a weighted ensemble, no source data."""

import copy
import json

import numpy as np
import pytest
import torch

from transferkit import Domain, MultiSourceSHOT, load
from transferkit.datasets import make_blobs_shift
from transferkit.methods import ms_shot, shot
from transferkit.methods.ms_shot import SourceEnsemble, weighted_centroid_pseudo_labels
from transferkit.methods.shot import TargetObjective, centroid_pseudo_labels


@pytest.fixture(scope="module")
def sources():
    a, b = make_blobs_shift(n_source=200, n_target=200, seed=0), make_blobs_shift(n_source=200, n_target=200, seed=1)
    return [a.source, Domain(b.source.X + 0.5, b.source.y, "second")], a.target, a.target_test


def test_the_ensemble_is_the_softmax_weighted_mixture_of_the_source_networks_probabilities():
    torch.manual_seed(0)
    nets = [torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)]
    ensemble = SourceEnsemble(nets)
    with torch.no_grad():
        ensemble.mix.copy_(torch.tensor([0.3, -1.2]))
    x = torch.randn(5, 4)
    a = np.exp([0.3, -1.2]) / np.exp([0.3, -1.2]).sum()
    p = [torch.softmax(n(x), 1).detach().numpy() for n in nets]
    np.testing.assert_allclose(ensemble(x).exp().detach().numpy(), a[0] * p[0] + a[1] * p[1], rtol=1e-5)
    np.testing.assert_allclose(torch.softmax(ensemble(x), 1).detach().numpy(), a[0] * p[0] + a[1] * p[1], rtol=1e-5)


def test_shots_objective_on_the_ensemble_is_that_of_the_mixture():
    """NumPy: entropy minus diversity of the mixture p, plus beta times -log p of the pseudo-labels."""
    torch.manual_seed(1)
    ensemble = SourceEnsemble([torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)])
    objective = TargetObjective(ensemble, 6, beta=0.3)
    objective.pseudo.copy_(torch.tensor([0, 1, 2, 0, 1, 2]))
    x = torch.randn(6, 4)
    p = ensemble(x).exp().detach().numpy().astype(np.float64)
    im = -np.mean(np.sum(p * np.log(p), 1)) + np.sum(p.mean(0) * np.log(p.mean(0)))
    pl = -np.mean(np.log(p[np.arange(6), [0, 1, 2, 0, 1, 2]]))
    out = objective({"xt": x, "it": torch.arange(6)}, 0.0)
    assert out["loss"].item() == pytest.approx(im + 0.3 * pl, rel=1e-5)


def test_weighted_pseudo_labels_follow_the_weighted_sources_and_are_shots_for_one_source():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    informative = np.eye(3)[y] * 3 + rng.normal(0, 0.3, (60, 3))  # separates the classes
    noise = rng.normal(0, 1, (60, 3))  # says nothing
    proba = 0.6 * np.eye(3)[y] + 0.4 * rng.dirichlet(np.ones(3), 60)
    only_first = weighted_centroid_pseudo_labels([informative, noise], proba, np.array([1.0, 0.0]))
    np.testing.assert_array_equal(only_first, centroid_pseudo_labels(informative, proba))
    assert np.mean(only_first == y) == 1.0
    assert np.mean(weighted_centroid_pseudo_labels([informative, noise], proba, np.array([0.0, 1.0])) == y) < 0.8


def test_step_two_sees_the_target_alone_keeps_every_classifier_and_learns_the_weights(sources, monkeypatch):
    (s1, s2), target, test = sources
    calls = []
    original = ms_shot.fit_loop
    for module in (ms_shot, shot):  # the source steps, and SHOT's target step
        monkeypatch.setattr(
            module, "fit_loop", lambda obj, s, t, cfg, **kw: calls.append(dict(s)) or original(obj, s, t, cfg, **kw)
        )
    model = MultiSourceSHOT(epochs=10, source_epochs=20, seed=0).fit([s1, s2], target)
    assert [set(c) for c in calls] == [{"xs", "ys"}, {"xs", "ys"}, {"xt", "it"}]
    np.testing.assert_array_equal(calls[0]["xs"], s1.X)
    np.testing.assert_array_equal(calls[1]["xs"], s2.X)
    np.testing.assert_array_equal(calls[2]["xt"], target.X)
    for before, after in zip(model.source_models_, model.model_.nets, strict=True):
        torch.testing.assert_close(after.head.weight, before.head.weight)  # the source hypotheses, frozen
    assert model.source_weights_.sum() == pytest.approx(1.0) and not np.allclose(model.source_weights_, 0.5)
    assert model.score(test) > 0.9


def test_source_free_from_trained_networks_save_load_and_the_command_line(sources, tmp_path, capsys):
    (s1, s2), target, test = sources
    trained = MultiSourceSHOT(epochs=1, source_epochs=5, seed=0).fit([s1, s2], target)
    free = MultiSourceSHOT(epochs=2, source_model=list(trained.source_models_), seed=0).fit(None, target)
    assert free.predict(test.X).shape == (len(test),) and free.transform(test.X).shape[0] == len(test)
    with pytest.raises(ValueError, match="one per source, two or more"):
        MultiSourceSHOT(source_model=[trained.source_models_[0]]).fit(None, target)
    with pytest.raises(ValueError, match=r"expected a list of two or more labelled Domains \(one source: SHOT\)\.$"):
        MultiSourceSHOT().fit(s1, target)
    trained.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(test.X), trained.predict(test.X))

    from transferkit.cli import main

    paths = []
    for i, d in enumerate((s1, s2, test)):
        path = tmp_path / f"d{i}.csv"
        np.savetxt(path, np.c_[d.X, d.y], delimiter=",", header="a,b,label", comments="")
        paths.append(str(path))
    argv = ["run", "ms-shot", "--source", f"{paths[0]},{paths[1]}", "--target", paths[2], "--epochs", "2"]
    assert main([*argv, "-q", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "ms-shot" and record["sources"] == paths[:2]


def test_bag_of_words_sources_and_target_stay_sparse_and_fit_as_dense_ones():
    import scipy.sparse

    words = [scipy.sparse.random(60, 400, density=0.02, format="csr", random_state=r, dtype=np.float32) for r in (1, 2)]
    sources = [Domain(w, np.arange(60) % 2, f"bag {i}") for i, w in enumerate(words)]
    target = Domain(scipy.sparse.random(50, 400, density=0.02, format="csr", random_state=3, dtype=np.float32))
    fast = dict(source_epochs=2, epochs=2, seed=0)
    sparse_fit = MultiSourceSHOT(**fast).fit(sources, target)
    assert sparse_fit._sparse(words[0])  # under 5 % non-zeros: batched sparse up to the first layer
    dense_fit = MultiSourceSHOT(**fast).fit([Domain(d.X.toarray(), d.y) for d in sources], Domain(target.X.toarray()))
    np.testing.assert_allclose(
        sparse_fit.predict_proba(target.X), dense_fit.predict_proba(target.X.toarray()), atol=1e-4
    )


def _decision_pseudo_labels(features, proba, alpha, passes=2):
    """DECISION's weighted clustering written out sample by sample: cosine distances to each source's centroids."""
    unit = [z / np.linalg.norm(z, axis=1, keepdims=True) for z in features]
    weights = proba
    for _ in range(passes):
        labels = []
        centroids = []
        for z in unit:
            c = np.stack([(weights[:, j : j + 1] * z).sum(0) / weights[:, j].sum() for j in range(proba.shape[1])])
            centroids.append(c / np.linalg.norm(c, axis=1, keepdims=True))
        for i in range(len(proba)):
            d = [
                sum(a * (1 - unit[k][i] @ centroids[k][j]) for k, a in enumerate(alpha)) for j in range(proba.shape[1])
            ]
            labels.append(int(np.argmin(d)))
        labels = np.array(labels)
        one_hot = np.eye(proba.shape[1])[labels]
        weights = np.where(one_hot.sum(0) > 0, one_hot, proba)
    return labels


def test_weighted_pseudo_labels_against_the_clustering_written_out():
    rng = np.random.default_rng(3)
    y = np.arange(90) % 3
    # samples of very different norms in each source, and sources on different scales: only cosines count
    first = (np.eye(3)[y] + rng.normal(0, 0.8, (90, 3))) * rng.uniform(0.1, 10, (90, 1))
    second = 50 * (np.eye(3)[(y + 1) % 3] + rng.normal(0, 0.8, (90, 3))) * rng.uniform(0.1, 10, (90, 1))
    proba = rng.dirichlet(np.ones(3), 90)
    for alpha in ([0.6, 0.4], [0.3, 0.7], [0.5, 0.5]):
        expected = _decision_pseudo_labels([first, second], proba, np.array(alpha))
        found = weighted_centroid_pseudo_labels([first, second], proba, np.array(alpha))
        np.testing.assert_array_equal(found, expected)
    # few samples, many classes: classes that no sample, or a single sample, chooses in the first pass
    empty = single = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        feats = [rng.normal(size=(12, 3)), rng.normal(size=(12, 4))]
        proba, alpha = rng.dirichlet(0.3 * np.ones(6), 12), rng.dirichlet(np.ones(2))
        counts = np.bincount(_decision_pseudo_labels(feats, proba, alpha, passes=1), minlength=6)
        empty, single = empty + np.any(counts == 0), single + np.any(counts == 1)
        expected = _decision_pseudo_labels(feats, proba, alpha)
        np.testing.assert_array_equal(weighted_centroid_pseudo_labels(feats, proba, alpha), expected)
    assert empty and single  # both cases were met


def test_source_free_fits_are_checked_and_leave_the_given_networks_as_they_were(sources):
    (s1, s2), target, _ = sources
    trained = MultiSourceSHOT(epochs=1, source_epochs=3, seed=0).fit([s1, s2], target)
    given = [copy.deepcopy(n) for n in trained.source_models_]
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in given]
    free = MultiSourceSHOT(epochs=2, source_model=given, seed=0).fit(None, target)
    for net, state in zip(given, before, strict=True):
        for k, v in net.state_dict().items():
            assert torch.equal(v, state[k]), k  # adapted copies, not the caller's networks
    assert any(
        not torch.equal(a, b) for a, b in zip(free.model_.parameters(), trained.model_.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match=r"^source_model replaces the source training, but source data were given"):
        MultiSourceSHOT(epochs=1, source_model=given).fit([s1, s2], target)
    with pytest.raises(ValueError, match=r"^target has labels, but MultiSourceSHOT adapts to unlabelled target data"):
        MultiSourceSHOT(epochs=1, source_model=given).fit(None, Domain(target.X, np.zeros(len(target), int)))
    with pytest.raises(ValueError, match=r"^augment=True augments the source training, which source_model skips"):
        MultiSourceSHOT(epochs=1, source_model=given, augment=True).fit(None, target)
    with pytest.raises(ValueError, match=r"^sample_domain is for fit\(X, y, sample_domain=...\), one array holding"):
        MultiSourceSHOT(epochs=1).fit([s1, s2], target, sample_domain=np.ones(len(s1) + len(s2)))
    bad = target.X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^target"):
        MultiSourceSHOT(epochs=1, source_model=given).fit(None, bad)


def test_each_source_network_trains_with_the_smoothing_and_its_own_progress_and_checkpoint(
    sources, tmp_path, monkeypatch, capfd
):
    (s1, s2), target, _ = sources
    made, real = [], ms_shot.SourceObjective

    def recording(net, smoothing, augment):
        made.append((smoothing, augment))
        return real(net, smoothing, augment)

    monkeypatch.setattr(ms_shot, "SourceObjective", recording)
    MultiSourceSHOT(epochs=1, source_epochs=1, smoothing=0.3, verbose=True, checkpoint_dir=str(tmp_path)).fit(
        [s1, s2], target
    )
    assert made == [(0.3, False), (0.3, False)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source-1", "source-2", "target"]
    err = capfd.readouterr().err
    assert "source-1" in err and "source-2" in err
    with pytest.raises(
        ValueError, match=r"^augment=True shifts and rotates images; the source holds samples of shape \(2,\), not"
    ):
        MultiSourceSHOT(augment=True, epochs=1).fit([s1, s2], target)


def test_a_target_over_one_relabelling_batch_and_what_each_epoch_logs():
    t = make_blobs_shift(n_source=150, n_target=700, seed=0)
    second = Domain(t.source.X + 0.5, t.source.y, "second")
    model = MultiSourceSHOT(epochs=2, source_epochs=5, seed=0).fit([t.source, second], t.target)
    for h in model.history_:
        assert h["pseudo_classes"] == 3.0
        assert h["alpha_0"] + h["alpha_1"] == pytest.approx(1.0)
    assert model.score(t.target_test) > 0.8


def test_a_saved_model_keeps_its_source_networks(sources, tmp_path):
    (s1, s2), target, _ = sources
    trained = MultiSourceSHOT(epochs=1, source_epochs=2, seed=0).fit([s1, s2], target)
    loaded = load(trained.save(tmp_path / "m"))
    for a, b in zip(loaded.source_models_, trained.source_models_, strict=True):
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert k == k2 and torch.equal(v, v2)
    np.testing.assert_array_equal(loaded.source_weights_, trained.source_weights_)


def test_a_refit_on_a_new_target_keeps_the_class_names_of_the_source_fit(sources):
    (s1, s2), target, test = sources
    names = np.array(["cat", "dog", "owl"])
    named = [Domain(s.X, names[s.y], s.name) for s in (s1, s2)]
    model = MultiSourceSHOT(epochs=1, source_epochs=3, seed=0).fit(named, target)
    model.set_params(source_model=list(model.source_models_))
    model.fit(None, target)
    assert list(model.classes_) == ["cat", "dog", "owl"] and set(model.predict(test.X)) <= set(names)


def test_source_networks_carry_their_class_labels_through_fits_clones_and_saves(sources, tmp_path):
    from sklearn.base import clone

    from transferkit import SHOT

    (s1, s2), target, test = sources
    names = np.array(["cat", "dog", "owl"])
    named = [Domain(s.X, names[s.y], s.name) for s in (s1, s2)]
    shots = [SHOT(epochs=1, source_epochs=3, seed=k).fit(s, target) for k, s in enumerate(named)]
    free = clone(MultiSourceSHOT(epochs=1, source_model=[s.source_model_ for s in shots])).fit(None, target)
    assert list(free.classes_) == ["cat", "dog", "owl"] and set(free.predict(test.X)) <= set(names)
    loaded = load(free.save(tmp_path / "m"))  # the source networks given are training data: dropped, not saved
    assert loaded.get_params()["source_model"] is None
    np.testing.assert_array_equal(loaded.predict(test.X), free.predict(test.X))
    again = MultiSourceSHOT(epochs=1, source_model=list(loaded.source_models_)).fit(None, target)
    assert list(again.classes_) == ["cat", "dog", "owl"]  # the loaded source networks remember them too
    other = copy.deepcopy(shots[1].source_model_)
    other.class_labels = np.array(["ant", "bee", "cow"])
    with pytest.raises(ValueError, match=r"^source_model\[1\] predicts the classes \['ant', 'bee', 'cow'\], "):
        MultiSourceSHOT(source_model=[shots[0].source_model_, other]).fit(None, target)
