"""SHOT: information maximisation, centroid pseudo-labels, the classifier frozen, the source never used in step 2."""

import copy

import numpy as np
import pytest
import torch

from transferkit import SHOT, Domain
from transferkit.datasets import make_blobs_shift
from transferkit.methods import shot
from transferkit.methods.shot import centroid_pseudo_labels, information_maximisation


def test_information_maximisation_is_entropy_minus_diversity():
    logits = np.random.default_rng(0).normal(size=(7, 3))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean = p.mean(0)
    expected = -(p * np.log(p)).sum(1).mean() + (mean * np.log(mean)).sum()
    assert information_maximisation(torch.from_numpy(logits)).item() == pytest.approx(expected)


def test_pseudo_labels_are_the_nearest_centroids_twice():
    rng = np.random.default_rng(0)
    f = np.r_[rng.normal([5, 0], 0.5, (10, 2)), rng.normal([0, 5], 0.5, (10, 2))]
    proba = np.full((20, 2), 0.5)
    proba[:3] = [0.9, 0.1]  # a few confident samples are enough to seed the centroids
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    c = proba.T @ unit / proba.sum(0)[:, None]
    for _ in range(2):  # the paper's two rounds, by hand
        labels = (unit @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T).argmax(1)
        c = np.stack([unit[labels == k].mean(0) for k in range(2)])
    np.testing.assert_array_equal(centroid_pseudo_labels(f, proba), labels)
    assert set(labels[:10]) != set(labels[10:])


@pytest.fixture(scope="module")
def task():
    return make_blobs_shift(n_source=200, n_target=200, seed=0)


def test_step_two_sees_the_target_alone_and_keeps_the_classifier(task, monkeypatch):
    calls = []
    original = shot.fit_loop
    monkeypatch.setattr(
        shot, "fit_loop", lambda obj, s, t, cfg, **kw: calls.append(s) or original(obj, s, t, cfg, **kw)
    )
    model = SHOT(epochs=10, source_epochs=20, seed=0)
    heads = []
    monkeypatch.setattr(shot.TargetObjective, "__init__", _recording_init(heads))
    model.fit(task.source, task.target)
    assert set(calls[0]) == {"xs", "ys"} and set(calls[1]) == {"xt", "it"}
    np.testing.assert_array_equal(calls[1]["xt"], task.target.X)
    torch.testing.assert_close(model.model_.head.weight, heads[0])  # the source hypothesis, frozen
    assert model.score(task.target_test) > 0.9


def _recording_init(heads):
    original = shot.TargetObjective.__init__

    def init(self, net, n_target, beta):
        heads.append(net.head.weight.detach().clone())
        original(self, net, n_target, beta)

    return init


def test_source_free_adaptation_from_a_trained_network(task):
    trained = SHOT(epochs=1, source_epochs=5, seed=0).fit(task.source, task.target)
    free = SHOT(epochs=3, source_model=trained.model_, seed=0).fit(None, task.target)
    assert free.predict(task.target_test.X).shape == (len(task.target_test),)
    with pytest.raises(ValueError, match="target has labels"):
        SHOT(source_model=trained.model_).fit(None, task.target_test)


def test_the_papers_bottleneck_normalises_its_batch_and_weight_normalises_the_classifier():
    from transferkit.nn.backbones import add_bottleneck, build_backbone

    net = add_bottleneck(build_backbone("shallow", (4,), 3, hidden=6), 5, design="shot").eval()
    fc, bn = net.stages["bottleneck"][1], net.stages["bottleneck"][2]
    assert isinstance(bn, torch.nn.BatchNorm1d) and isinstance(net.stages["bottleneck"][3], torch.nn.Dropout)
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0)
        net.head.parametrizations.weight.original0.uniform_(0.5, 2.0)
    x = torch.randn(8, 4)
    h = net.stages["hidden"](x).detach().numpy() @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
    z = (h - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps) * bn.weight.detach().numpy()
    z += bn.bias.detach().numpy()  # no ReLU after the batch normalisation
    g = net.head.parametrizations.weight.original0.detach().numpy()  # (classes, 1)
    v = net.head.parametrizations.weight.original1.detach().numpy()
    logits = g * v / np.linalg.norm(v, axis=1, keepdims=True) @ z.T + net.head.bias.detach().numpy()[:, None]
    np.testing.assert_allclose(net(x).detach().numpy(), logits.T, rtol=1e-5, atol=1e-5)
    plain = add_bottleneck(build_backbone("shallow", (4,), 3, hidden=6), 5)
    assert isinstance(plain.stages["bottleneck"][2], torch.nn.ReLU) and not hasattr(plain.head, "parametrizations")


def test_the_bottlenecks_batch_statistics_move_to_the_target_in_step_two(task):
    model = SHOT(epochs=5, source_epochs=10, seed=0, bottleneck_design="shot").fit(task.source, task.target)
    net, bn = model.model_, model.model_.stages["bottleneck"][2]
    fc = _pre_norm(net)
    with torch.no_grad():
        mean_t = fc(torch.from_numpy(task.target.X)).mean(0)
        mean_s = fc(torch.from_numpy(task.source.X)).mean(0)
    # trained in train mode on target batches alone, the running mean is the target's, not the source's
    assert (bn.running_mean - mean_t).norm() < 0.5 * (bn.running_mean - mean_s).norm()


def _pre_norm(net):
    """The layers before the bottleneck's BatchNorm: what it normalises."""
    return torch.nn.Sequential(*list(net.stages.values())[:-1], *net.stages["bottleneck"][:2])


def test_refresh_batchnorm_sets_the_statistics_of_the_rows_and_leaves_frozen_layers_alone():
    from transferkit.nn.backbones import add_bottleneck, build_backbone
    from transferkit.nn.transfer import freeze

    torch.manual_seed(0)
    net = add_bottleneck(build_backbone("shallow", (4,), 3, hidden=6), 5, design="shot").eval()
    bn = net.stages["bottleneck"][2]
    X = np.random.default_rng(0).normal(2.0, 3.0, (10, 4)).astype(np.float32)
    shot.refresh_batchnorm(net, X, chunk=5)
    with torch.no_grad():
        h = _pre_norm(net)(torch.from_numpy(X)).numpy()
    halves = np.split(h, 2)  # two equal chunks of five rows: their statistics averaged
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([c.var(0, ddof=1) for c in halves], 0), rtol=1e-5)
    assert not net.training and bn.momentum == 0.1  # the mode and the momentum as they were
    frozen = bn.running_mean.clone()
    freeze(net, "bottleneck")
    shot.refresh_batchnorm(net, X + 5.0)
    torch.testing.assert_close(bn.running_mean, frozen)


def test_step_two_predicts_with_the_targets_statistics_under_the_final_weights(task, monkeypatch):
    seen = []
    original = shot.centroid_pseudo_labels
    monkeypatch.setattr(shot, "centroid_pseudo_labels", lambda f, p: seen.append(f) or original(f, p))
    model = SHOT(epochs=3, source_epochs=5, seed=0, bottleneck_design="shot").fit(task.source, task.target)
    # the first pseudo-labels come from the source network as it is (its source statistics), as the paper's
    with torch.no_grad():
        first = model.source_model_.forward_features(torch.from_numpy(task.target.X)).numpy()
    np.testing.assert_allclose(seen[0], first, rtol=1e-5, atol=1e-6)
    # after the last epoch the running statistics are the target's under the weights the model keeps
    bn = model.model_.stages["bottleneck"][2]
    kept = bn.running_mean.clone(), bn.running_var.clone()
    again = copy.deepcopy(model.model_)
    shot.refresh_batchnorm(again, task.target.X)
    torch.testing.assert_close(kept[0], again.stages["bottleneck"][2].running_mean)
    torch.testing.assert_close(kept[1], again.stages["bottleneck"][2].running_var)
    running = SHOT(epochs=3, source_epochs=5, seed=0, bottleneck_design="shot", refresh_statistics=False)
    lagging = running.fit(task.source, task.target).model_.stages["bottleneck"][2].running_mean
    assert not torch.allclose(lagging, kept[0], atol=1e-3)


def test_auto_builds_the_papers_bottleneck_for_images_and_ddcs_for_vectors():
    bottleneck = lambda shape, **kw: SHOT(**kw)._build_net(shape, 3).stages["bottleneck"]  # noqa: E731
    assert isinstance(bottleneck((1, 28, 28))[2], torch.nn.BatchNorm1d)
    assert isinstance(bottleneck((1, 64))[2], torch.nn.BatchNorm1d)  # a series: a convolutional network too
    assert isinstance(bottleneck((20,))[2], torch.nn.ReLU)
    assert isinstance(bottleneck((20,), bottleneck_design="shot")[2], torch.nn.BatchNorm1d)
    assert isinstance(bottleneck((1, 28, 28), bottleneck_design="ddc")[2], torch.nn.ReLU)


def test_augment_trains_the_source_on_shifted_and_rotated_images_and_refuses_vectors(task, monkeypatch):
    from transferkit import Domain

    seen = []
    original = shot.shift_rotate
    monkeypatch.setattr(shot, "shift_rotate", lambda x: seen.append(tuple(x.shape)) or original(x))
    rng = np.random.default_rng(0)
    source = Domain(rng.random((40, 1, 16, 16), dtype=np.float32), np.arange(40) % 2)
    target = Domain(rng.random((40, 1, 16, 16), dtype=np.float32))
    SHOT(epochs=1, source_epochs=2, batch_size=20, augment=True).fit(source, target)
    assert seen == [(20, 1, 16, 16)] * 4  # every source batch, never a target one
    seen.clear()
    SHOT(epochs=1, source_epochs=2, batch_size=20).fit(source, target)
    assert seen == []
    with pytest.raises(ValueError, match=r"augment=True shifts and rotates images; the source holds samples of shape"):
        SHOT(augment=True).fit(task.source, task.target)
    trained = SHOT(epochs=1, source_epochs=1, batch_size=20).fit(source, target)
    with pytest.raises(ValueError, match="augment=True augments the source training, which source_model skips"):
        SHOT(augment=True, source_model=trained.model_).fit(None, target)


def _np_centroid_labels(features, proba):
    """SHOT's obtain_label, less its appended constant feature: cosine to prediction-weighted centroids,
    then once more to the centroids of the samples so labelled (a class nobody chose keeps its centroid)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    centroids = proba.T @ f / proba.sum(0)[:, None]
    for _ in range(2):
        c = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        labels = np.argmax(f @ c.T, axis=1)
        for k in range(proba.shape[1]):
            if np.any(labels == k):
                centroids[k] = f[labels == k].mean(0)
    return labels


def test_pseudo_labels_follow_the_cosine_formula_on_features_of_any_norm():
    rng = np.random.default_rng(3)
    for n in [30] * 10 + [6] * 20:  # few samples: classes chosen by one sample, or by none
        features = rng.normal(size=(n, 4)) * rng.uniform(0.01, 50, size=(n, 1))  # norms far from 1
        proba = rng.dirichlet(np.full(3, 0.3), size=n)
        np.testing.assert_array_equal(centroid_pseudo_labels(features, proba), _np_centroid_labels(features, proba))
    # two opposite clusters: the third class's centroid points between them, and no sample chooses it
    features = np.r_[np.tile([1.0, 0.0], (3, 1)), np.tile([-1.0, 0.0], (3, 1))] + rng.normal(0, 0.05, (6, 2))
    proba = np.r_[np.tile([0.9, 0.05, 0.05], (3, 1)), np.tile([0.05, 0.9, 0.05], (3, 1))]
    labels = centroid_pseudo_labels(features, proba)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(labels, _np_centroid_labels(features, proba))


def test_the_source_step_uses_label_smoothing_and_the_target_step_relabels_every_epoch(task, monkeypatch):
    net = torch.nn.Linear(2, 3)
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = shot.SourceObjective(net, 0.1)({"xs": x, "ys": y}, 0.0)["loss"]
    logp = torch.log_softmax(net(x), 1).detach().numpy()
    q = np.full((6, 3), 0.1 / 3) + 0.9 * np.eye(3)[y.numpy()]  # (1 - alpha) one-hot + alpha / K
    assert loss.item() == pytest.approx(-(q * logp).sum(1).mean(), rel=1e-6)
    calls = []
    original = shot.centroid_pseudo_labels
    monkeypatch.setattr(shot, "centroid_pseudo_labels", lambda f, p: calls.append(len(f)) or original(f, p))
    model = SHOT(epochs=3, source_epochs=2, seed=0).fit(task.source, task.target)
    assert calls == [len(task.target)] * 4  # before the first target epoch and after each of the three
    assert [sorted(h) for h in model.history_] == [["epoch", "im", "loss", "lr", "pseudo_ce", "pseudo_classes"]] * 3
    source_head = model.source_model_.head.weight
    assert source_head is not model.model_.head.weight  # the source hypothesis is a copy, kept apart
    assert not torch.equal(model.source_model_.stages["hidden"][0].weight, model.model_.stages["hidden"][0].weight)


def test_shot_names_its_inputs_checkpoints_each_step_and_leaves_a_given_network_alone(tmp_path):
    big = make_blobs_shift(n_source=300, n_target=600, seed=1)  # more target rows than one relabelling batch
    model = SHOT(epochs=1, source_epochs=2, seed=0, checkpoint_dir=str(tmp_path)).fit(big.source, big.target)
    assert (tmp_path / "source").is_dir() and (tmp_path / "target").is_dir()
    assert model.warnings_ == [] and len(model.history_) == 1
    given = model.source_model_
    before = {k: v.clone() for k, v in given.state_dict().items()}
    SHOT(epochs=1, source_model=given, seed=0).fit(None, big.target)
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items())  # adapted a copy
    with pytest.raises(
        ValueError,
        match=r"^target has labels, but SHOT adapts to unlabelled target data; pass target\.unlabelled\(\)\.$",
    ):
        SHOT(source_model=given).fit(None, big.target_test)
    bad = np.full((10, 2), np.nan, dtype=np.float32)  # an array: named as the argument it came in
    with pytest.raises(ValueError, match=r"^target\.X contains NaN"):
        SHOT(source_model=given).fit(None, bad)
    with pytest.raises(
        ValueError, match=r"^augment=True augments the source training, which source_model skips; drop one\.$"
    ):
        SHOT(augment=True, source_model=given).fit(None, big.target)
    with pytest.raises(ValueError, match=r"\(2,\), not \(channels, height, width\)\.$"):
        SHOT(augment=True).fit(big.source, big.target)
    message = (
        r"^source_model replaces the source training, but source data were given too; call fit\(None, target\) "
        r"to adapt source_model, or drop source_model to train on the source\.$"
    )
    with pytest.raises(ValueError, match=message):
        SHOT(source_model=given).fit(big.source, big.target)  # one of the two would be ignored


def test_shot_takes_both_domains_in_one_array_as_scikit_learn_does(task):
    X = np.concatenate([task.source.X, task.target.X])
    y = np.concatenate([task.source.y, np.full(len(task.target), -1)])  # target labels masked
    sample_domain = np.r_[np.ones(len(task.source), int), -np.ones(len(task.target), int)]
    a = SHOT(epochs=2, source_epochs=2, seed=0).fit(X, y, sample_domain=sample_domain)
    b = SHOT(epochs=2, source_epochs=2, seed=0).fit(task.source, task.target.unlabelled())
    for p, q in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_refit_on_a_new_target_keeps_the_class_names_of_the_source_fit(task, tmp_path):
    from sklearn.base import clone

    from transferkit import load

    names = np.array(["cat", "dog", "owl"])
    named = Domain(task.source.X, names[task.source.y], "named")
    model = SHOT(epochs=1, source_epochs=3, seed=0).fit(named, task.target)
    np.testing.assert_array_equal(model.source_model_.class_labels, names)  # the network knows its labels
    model.set_params(source_model=model.source_model_)  # adapt the same source network to a new target
    model.fit(None, task.target)
    assert list(model.classes_) == ["cat", "dog", "owl"] and set(model.predict(task.target_test.X)) <= set(names)
    fresh = clone(SHOT(epochs=1, source_model=model.source_model_)).fit(None, task.target)  # clone keeps them
    assert list(fresh.classes_) == ["cat", "dog", "owl"] and set(fresh.predict(task.target_test.X)) <= set(names)
    loaded = load(fresh.save(tmp_path / "m"))  # the source network given is training data: dropped, not saved
    assert loaded.get_params()["source_model"] is None and list(loaded.classes_) == ["cat", "dog", "owl"]
    bare = copy.deepcopy(model.source_model_)
    del bare.class_labels  # a network trained elsewhere knows its outputs only
    np.testing.assert_array_equal(SHOT(epochs=1, source_model=bare).fit(None, task.target).classes_, [0, 1, 2])
