"""Multi-source SHOT (DECISION): one network per source, adapted together as a weighted ensemble, no source data."""

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
    with pytest.raises(ValueError, match="expected a list of two or more labelled Domains"):
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
