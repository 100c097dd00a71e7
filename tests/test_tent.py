"""TENT: entropy minimisation of the batch-norm affine parameters, batch by batch, at prediction time."""

import numpy as np
import pytest
import torch

from transferkit import TENT, Domain, load


def test_entropy_is_the_mean_shannon_entropy():
    from transferkit.methods.tent import entropy

    logits = np.random.default_rng(0).normal(size=(6, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = -(p * np.log(p)).sum(1).mean()
    assert entropy(torch.from_numpy(logits)).item() == pytest.approx(expected)


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(0)
    y = np.arange(400) % 3
    centres = np.array([[0, 0], [3, 0], [0, 3]], dtype=np.float32)
    X = (centres[y] + rng.normal(size=(400, 2))).astype(np.float32)
    scale = np.array([1.5, 0.6], dtype=np.float32)
    return Domain(X, y, "source"), Domain(X * scale + 2.0, y, "target")  # a gain and an offset


@pytest.fixture(scope="module")
def fitted(shifted):
    return TENT(epochs=20, tent_batch_size=50, seed=0).fit(shifted[0])


def test_only_the_normalisation_affine_parameters_move(fitted, shifted):
    source_state = {k: v.clone() for k, v in fitted.source_state_.items()}
    fitted.set_params(episodic=False)
    try:
        fitted.predict(shifted[1].X)
        moved = {k for k, v in fitted.model_.state_dict().items() if not torch.equal(v, source_state[k])}
    finally:
        fitted.set_params(episodic=True)
        fitted.reset()
    bn = "stages.hidden.1"
    assert {f"{bn}.weight", f"{bn}.bias"} <= moved  # gamma and beta were updated
    buffers = {f"{bn}.running_mean", f"{bn}.running_var", f"{bn}.num_batches_tracked"}
    assert moved <= {f"{bn}.weight", f"{bn}.bias"} | buffers


def test_one_forward_per_batch_and_no_second_pass(fitted, shifted):
    calls = []
    handle = fitted.model_.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        fitted.predict_proba(shifted[1].X)
    finally:
        handle.remove()
    assert calls == [50] * 8


def test_episodic_calls_repeat_and_adapt_false_is_the_source_network(fitted, shifted):
    X = shifted[1].X
    np.testing.assert_array_equal(fitted.predict_proba(X), fitted.predict_proba(X))
    fitted.reset()
    plain = fitted.predict_proba(X, adapt=False)
    with torch.no_grad():
        fitted.model_.eval()
        expected = torch.softmax(fitted.model_(torch.from_numpy(X)), 1).numpy()
    np.testing.assert_allclose(plain, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fitted.predict_proba(X), plain)


def test_adapting_helps_on_a_gain_and_offset_shift(fitted, shifted):
    target = shifted[1]
    assert fitted.score(target) > fitted.set_params(online=False).score(target) + 0.05
    fitted.set_params(online=True)


def test_a_network_without_batch_norm_is_refused(shifted):
    with pytest.raises(ValueError, match="has no batch normalisation layer; TENT adapts those"):
        TENT(backbone="shallow", epochs=1).fit(shifted[0])


def test_a_saved_tent_adapts_after_loading(fitted, shifted, tmp_path):
    fitted.save(tmp_path / "tent")
    back = load(tmp_path / "tent")
    np.testing.assert_allclose(back.predict_proba(shifted[1].X), fitted.predict_proba(shifted[1].X), atol=1e-6)


def test_a_stream_sorted_by_class_is_shuffled_so_batches_do_not_normalise_the_class_away(fitted, shifted):
    target = shifted[1]
    order = np.argsort(target.y, kind="stable")
    sorted_target = Domain(target.X[order], target.y[order])
    shuffled = fitted.score(sorted_target)
    in_file_order = fitted.set_params(shuffle=False).score(sorted_target)
    fitted.set_params(shuffle=True)
    assert shuffled > in_file_order + 0.1
    fitted.set_params(tent_batch_size=len(target))  # one batch: the same samples whatever their order
    try:  # so the answers must come back in the caller's order
        np.testing.assert_allclose(
            fitted.predict_proba(sorted_target.X)[np.argsort(order)], fitted.predict_proba(target.X), atol=1e-5
        )
    finally:
        fitted.set_params(tent_batch_size=50)


def test_a_stream_in_pieces_keeps_adapting_until_reset(shifted):
    """episodic=False: the adaptation carries over between calls and reset() returns to the source network."""
    model = TENT(epochs=20, tent_batch_size=50, seed=0, episodic=False, hidden=24).fit(shifted[0])
    X = shifted[1].X
    source = model.predict_proba(X, adapt=False)
    assert model.predict(X, adapt=False).tolist() == model.classes_[source.argmax(1)].tolist()
    assert model.adapted_batches_ == 0  # adapt=False reached predict_proba: nothing adapted
    first = model.predict_proba(X[:200])
    second = model.predict_proba(X[200:])
    assert model.adapted_batches_ == 8 and first.dtype == np.float32 and second.shape == (200, 3)
    assert not np.allclose(model.predict_proba(X, adapt=False), source)  # the network has moved
    model.reset()
    np.testing.assert_array_equal(model.predict_proba(X, adapt=False), source)
    assert model.adapted_batches_ == 0


def test_every_normalisation_layer_adapts_with_its_own_rate_and_nothing_else_has_gradients(shifted):
    model = TENT(backbone="lenet-bn", epochs=1, tent_lr=0.01, seed=0)
    images = Domain(np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32), np.arange(40) % 2)
    model.fit(images)
    assert model._optimizer.param_groups[0]["lr"] == 0.01
    norms = [m for m in model.model_.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) >= 2 and len(model._optimizer.param_groups[0]["params"]) == 2 * len(norms)
    trainable = {n for n, p in model.model_.named_parameters() if p.requires_grad}
    assert trainable and all(".weight" in n or ".bias" in n for n in trainable)
    assert len(trainable) == 2 * len(norms)
    before = [(m.weight.clone(), m.bias.clone()) for m in norms]
    model.set_params(episodic=False).predict_proba(images.X)
    for m, (w, b) in zip(norms, before, strict=True):
        assert not torch.equal(m.weight, w) and not torch.equal(m.bias, b)


def test_auto_takes_the_normalised_network_for_each_input_kind():
    sequence = TENT(hidden=17)._build_net((2, 50), 3)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in sequence.modules())
    assert any(isinstance(m, torch.nn.Conv1d) for m in sequence.modules())
    vectors = TENT(hidden=17)._build_net((5,), 3)
    assert vectors.feature_dim == 17 and any(isinstance(m, torch.nn.BatchNorm1d) for m in vectors.modules())
    images = TENT(hidden=17)._build_net((1, 16, 16), 3)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in images.modules())


def test_the_refusal_names_the_backbone_and_a_target_is_checked_though_unused(shifted):
    with pytest.raises(ValueError) as err:
        TENT(backbone="shallow", epochs=1).fit(shifted[0])
    assert str(err.value) == (
        "backbone 'shallow' has no batch normalisation layer; TENT adapts those. Use backbone='auto' or a "
        "network with BatchNorm."
    )
    wide = Domain(np.zeros((10, 3), np.float32), None, "target")
    with pytest.raises(ValueError, match="different feature shapes"):
        TENT(epochs=1).fit(shifted[0], wide)


def test_tent_takes_both_domains_in_one_array_as_scikit_learn_does(shifted):
    source, target = shifted
    X = np.concatenate([source.X, target.X])
    y = np.concatenate([source.y, np.full(len(target), -1)])  # target labels masked
    sample_domain = np.r_[np.ones(len(source), int), -np.ones(len(target), int)]
    a = TENT(epochs=2, seed=0).fit(X, y, sample_domain=sample_domain)
    b = TENT(epochs=2, seed=0).fit(source)
    for p, q in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_loaded_tent_keeps_its_source_network_apart_from_the_adapted_one(fitted, shifted, tmp_path):
    X = shifted[1].X
    source = fitted.predict_proba(X, adapt=False)
    fitted.save(tmp_path / "tent")
    back = load(tmp_path / "tent").set_params(episodic=False)
    back.predict_proba(X)  # adapts in place, carried over
    assert not np.allclose(back.predict_proba(X, adapt=False), source, atol=1e-4)
    back.reset()
    np.testing.assert_allclose(back.predict_proba(X, adapt=False), source, atol=1e-6)
