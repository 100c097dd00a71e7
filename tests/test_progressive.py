"""Progressive networks: old columns stay bit-identical, new columns read them through adapters."""

import numpy as np
import pytest
import torch

from transferkit.methods.progressive import ProgressiveColumn, ProgressiveNetwork

FAST = dict(layers=(16, 8), reduce=4, epochs=15, batch_size=32, lr=1e-2, device="cpu")


def _task(seed, n=300, d=6, shift=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d)
    return X, (X @ w + shift > 0).astype(int)


def test_earlier_columns_stay_bit_identical_and_keep_their_accuracy():
    a, b = _task(0), _task(1)
    net = ProgressiveNetwork(**FAST).fit({"a": a})
    before = {k: v.clone() for k, v in net.columns_[0].state_dict().items()}
    acc_before = net.score(*a, task="a")
    net.add_task("b", *b)
    for k, v in net.columns_[0].state_dict().items():
        assert torch.equal(v, before[k]), f"column 0 changed at {k}"
    assert net.score(*a, task="a") == acc_before  # no forgetting, exactly
    assert net.score(*b, task="b") > 0.8
    assert len(net.columns_[1].laterals[1]) == 1 and len(net.columns_[1].laterals[0]) == 0


def test_the_new_column_uses_the_old_columns_features():
    torch.manual_seed(0)
    col0 = ProgressiveColumn((5,), (7, 6), 3, n_previous=0)
    col1 = ProgressiveColumn((5,), (7, 6), 2, n_previous=1, reduce=3)
    x = torch.randn(4, 5)
    _, acts = col0(x)
    out, _ = col1(x, [acts])
    acts_changed = [a + 1.0 for a in acts]
    out_changed, _ = col1(x, [acts_changed])
    assert not torch.allclose(out, out_changed)  # the lateral inputs reach the output
    with torch.no_grad():
        for adapters in col1.laterals:
            for adapter in adapters:
                adapter.alpha.zero_()
    off, _ = col1(x, [acts])
    off_changed, _ = col1(x, [acts_changed])
    torch.testing.assert_close(off, off_changed)  # alpha = 0 cuts them


def test_a_related_earlier_task_helps_a_small_new_task():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2400, 10)).astype(np.float32)
    w = rng.standard_normal(10)
    y_a = (X @ w > 0).astype(int)
    y_b = (X @ w > 0.3).astype(int)  # nearly the same boundary
    small = slice(2000, 2030)
    test = slice(0, 1000)
    prog = ProgressiveNetwork(**{**FAST, "epochs": 30}).fit({"a": (X[1000:2000], y_a[1000:2000])})
    prog.add_task("b", X[small], y_b[small])
    alone = ProgressiveNetwork(**{**FAST, "epochs": 30}).fit({"b": (X[small], y_b[small])})
    assert prog.score(X[test], y_b[test], "b") > alone.score(X[test], y_b[test], "b") + 0.03


def test_convolutional_columns_and_reported_growth_and_scales():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean((1, 2)) > 0).astype(int)
    net = ProgressiveNetwork(layers=("c4", "c8", 16), reduce=2, epochs=2, device="cpu").fit(
        {"a": (X, y), "b": (X, 1 - y)}
    )
    assert len(net.parameters_per_column_) == 2 and net.parameters_per_column_[1] > net.parameters_per_column_[0]
    scales = net.lateral_scales_
    assert scales["a"] == [] and len(scales["b"]) == 3 and all(len(s) == 1 for s in scales["b"])


def test_bad_input_is_named():
    a = _task(0)
    net = ProgressiveNetwork(**{**FAST, "epochs": 1}).fit({"a": a})
    with pytest.raises(ValueError, match=r"inputs of shape \(4,\); the earlier columns take \(6,\)"):
        net.add_task("b", a[0][:, :4], a[1])
    with pytest.raises(ValueError, match="already has a column"):
        net.add_task("a", *a)
    with pytest.raises(ValueError, match=r"task='z' has no column; this model's tasks: \['a'\]"):
        net.predict(a[0], "z")
    with pytest.raises(ValueError, match="convolutions must come before"):
        ProgressiveNetwork(layers=(8, "c4")).fit({"a": a})
    with pytest.raises(ValueError, match="single class"):
        ProgressiveNetwork(**FAST).fit({"a": (a[0], np.zeros(300))})


def test_independent_columns_read_nothing_from_earlier_ones():
    a, b = _task(0), _task(1)
    net = ProgressiveNetwork(**FAST, lateral=False).fit({"a": a, "b": b})
    assert all(len(adapters) == 0 for adapters in net.columns_[1].laterals)
    assert net.lateral_scales_["b"] == []
    assert net.parameters_per_column_[0] == net.parameters_per_column_[1]


def test_lateral_usage_measures_each_connection_and_is_zero_when_cut():
    a, b = _task(0), _task(1)
    net = ProgressiveNetwork(**FAST).fit({"a": a, "b": b})
    usage = net.lateral_usage(b[0], "b")
    assert len(usage) == 2 and all(len(u) == 1 and u[0] > 0 for u in usage)  # two layers read column a
    with torch.no_grad():
        for adapters in net.columns_[1].laterals:
            for adapter in adapters:
                adapter.alpha.zero_()
    usage = net.lateral_usage(b[0], "b")
    assert all(u[0] == 0.0 for u in usage)  # alpha = 0 cuts every connection exactly
    assert net.lateral_usage(a[0], "a") == []


def test_labels_that_are_not_classes_are_refused():
    from transferkit.methods.progressive import ProgressiveNetwork

    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"task 'a' y holds NaN or infinity"):
        ProgressiveNetwork(epochs=1).add_task("a", X, np.r_[np.zeros(39), np.nan])
    with pytest.raises(ValueError, match=r"task 'a' y holds continuous values"):
        ProgressiveNetwork(epochs=1).add_task("a", X, np.linspace(0, 1, 40))
