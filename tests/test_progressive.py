"""Progressive networks: old columns stay bit-identical, new columns read them through adapters."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

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


def _usage_by_hand(net, X, task):
    """Rusu et al.'s adapters evaluated sample by sample: |U relu(V alpha h_j)| / |W h_k| at each layer."""
    k = net.tasks_.index(task)
    x = torch.from_numpy(X)
    with torch.no_grad():
        previous = []
        for j in range(k):
            previous.append(net.columns_[j](x, previous)[1])
        column, rows = net.columns_[k], []
        h, ratios = x, []
        for i, (layer, adapters) in enumerate(zip(column.layers, column.laterals, strict=True)):
            pre = layer(h)
            if len(adapters):
                ratios.append(
                    [
                        float(
                            np.mean(
                                [
                                    (a(previous[j][i - 1][n : n + 1]).norm() / pre[n].norm()).item()
                                    for n in range(len(x))
                                ]
                            )
                        )
                        for j, a in enumerate(adapters)
                    ]
                )
                pre = pre + sum(a(previous[j][i - 1]) for j, a in enumerate(adapters))
            h = torch.relu(pre)
        rows.append(ratios)
    return rows[0]


def test_three_columns_each_read_every_earlier_one_and_the_usage_counts_every_sample():
    a, b, c = _task(0), _task(1), _task(2, n=1100)
    net = ProgressiveNetwork(**{**FAST, "epochs": 3}).fit({"a": a, "b": b, "c": c})
    assert [len(adapters) for adapters in net.columns_[2].laterals] == [0, 2, 2]
    assert net.score(*c, task="c") > 0.7
    usage = net.lateral_usage(c[0], "c")  # over one batch of 1024 samples: every sample counts
    np.testing.assert_allclose(usage, _usage_by_hand(net, c[0], "c"), rtol=1e-5)
    assert np.shape(usage) == (2, 2) and np.all(np.array(usage) > 0)
    # predictions come in batches of 1024; the same as one sample at a time
    single = np.concatenate([net.predict_proba(c[0][i : i + 1], "c") for i in range(0, 1100, 97)])
    np.testing.assert_allclose(net.predict_proba(c[0], "c")[::97], single, rtol=1e-5, atol=1e-7)


def test_a_saved_network_predicts_as_before_and_keeps_its_columns_frozen(tmp_path):
    from transferkit import load

    a, b = _task(0), _task(1)
    for lateral, layers in ((True, (16, 8)), (False, (16, 8)), (True, ("c2", 4))):
        data = (a, b) if layers[0] != "c2" else tuple((X.reshape(-1, 1, 2, 3), y) for X, y in (a, b))
        net = ProgressiveNetwork(**{**FAST, "epochs": 2, "layers": layers, "lateral": lateral}).fit(
            {"a": data[0], "b": data[1]}
        )
        loaded = load(net.save(tmp_path / f"p{lateral}{layers[0]}"))
        for task, (X, _) in zip("ab", data, strict=True):
            np.testing.assert_array_equal(loaded.predict_proba(X, task), net.predict_proba(X, task))
        assert loaded.lateral_scales_ == net.lateral_scales_
        assert not any(p.requires_grad for p in loaded.columns_.parameters())  # frozen, as after training
    assert net._rebuild_module("model_") is None


def test_alpha_zero_cuts_a_convolutional_connection_exactly():
    torch.manual_seed(0)
    layers = ("c2", "c3", 5)  # the second convolution reads the first column's through a 1x1-convolution adapter
    col0 = ProgressiveColumn((1, 8, 8), layers, 2, n_previous=0)
    col1 = ProgressiveColumn((1, 8, 8), layers, 2, n_previous=1, reduce=2)
    assert isinstance(col1.laterals[1][0].V, torch.nn.Conv2d)
    x = torch.randn(4, 1, 8, 8)
    _, acts = col0(x)
    with torch.no_grad():
        for adapters in col1.laterals:
            for adapter in adapters:
                adapter.alpha.zero_()
        alone = ProgressiveColumn((1, 8, 8), layers, 2, n_previous=0)
        alone.load_state_dict({k: v for k, v in col1.state_dict().items() if not k.startswith("laterals")})
        torch.testing.assert_close(col1(x, [acts])[0], alone(x)[0], rtol=0, atol=0)


def test_each_column_reports_a_task_it_never_fitted():
    X, y = _task(0)
    net = ProgressiveNetwork(**FAST).fit({"a": (X, y)})
    assert len(net.history_["a"]) == FAST["epochs"] and net.history_["a"][-1]["task_acc"] > 0.9
    alternating = np.arange(300) % 2  # nothing in X predicts it, and one epoch at a tiny rate learns nothing
    with pytest.warns(
        RuntimeWarning, match=r"^ProgressiveNetwork: column 0 \('a'\): the network never fitted the task"
    ):
        ProgressiveNetwork(**{**FAST, "epochs": 1, "lr": 1e-6}).fit({"a": (X, alternating)})


def test_messages_and_defaults():
    X, y = _task(0)
    for bad in ([(X, y)], {}):
        with pytest.raises(ValueError, match=rf"^tasks={type(bad).__name__}; expected a non-empty dict of task name"):
            ProgressiveNetwork().fit(bad)
    with pytest.raises(NotFittedError, match=r"^this ProgressiveNetwork is not fitted yet; call fit\(tasks\) first.$"):
        ProgressiveNetwork().predict(X, "a")
    net = ProgressiveNetwork(**{**FAST, "epochs": 1}).fit({"a": (X, y)})
    with pytest.raises(ValueError, match=r"^X has samples of shape \(4,\); the columns take \(6,\).$"):
        net.predict_proba(X[:, :4], "a")
    with pytest.raises(ValueError, match=r"^X has samples of shape \(4,\); the columns take \(6,\).$"):
        net.lateral_usage(X[:, :4], "a")
    bad = X.copy()
    bad[0, 0] = np.inf
    for call in (net.predict_proba, net.lateral_usage):
        with pytest.raises(ValueError, match=r"^X "):
            call(bad, "a")
    with pytest.raises(ValueError, match=r"^y has shape \(299,\); expected \(300,\), one label per sample of X.$"):
        net.score(X, y[:-1], "a")
    assert ProgressiveNetwork().get_params() == dict(
        layers=(64, 64),
        reduce=16,
        lateral=True,
        epochs=10,
        batch_size=64,
        lr=1e-3,
        seed=0,
        device="auto",
        n_threads=None,
        precision="float32",
        verbose=False,
    )


def test_a_column_layer_is_the_papers_formula_in_numpy():
    """h_i = relu(W_i h_{i-1} + b_i + sum_j U_i relu(V_i alpha_i h_{i-1}^(j))), the output layer without the relu."""
    torch.manual_seed(0)
    col0 = ProgressiveColumn((5,), (4,), 3, n_previous=0)
    col1 = ProgressiveColumn((5,), (4,), 2, n_previous=1, reduce=3)
    with torch.no_grad():
        col1.laterals[1][0].alpha.fill_(0.7)
    x = torch.randn(6, 5)
    _, acts = col0(x)
    out, hidden = col1(x, [acts])
    assert len(hidden) == 1 and len(acts) == 1  # the hidden layers' activations; the output is not one
    p = {k: v.detach().numpy().astype(np.float64) for k, v in col1.state_dict().items()}
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    xn, h0 = x.numpy().astype(np.float64), acts[0].detach().numpy().astype(np.float64)
    h1 = relu(xn @ p["layers.0.weight"].T + p["layers.0.bias"])
    lateral = relu(0.7 * h0 @ p["laterals.1.0.V.weight"].T) @ p["laterals.1.0.U.weight"].T
    expected = h1 @ p["layers.1.weight"].T + p["layers.1.bias"] + lateral
    np.testing.assert_allclose(hidden[0].detach().numpy(), h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_usage_of_inputs_with_small_norms_and_the_layer_widths_given():
    a, b = _task(0), _task(1)
    net = ProgressiveNetwork(**{**FAST, "epochs": 2}).fit({"a": a, "b": b})
    small = b[0] * 1e-3  # the column's own input norms fall well under 1
    np.testing.assert_allclose(net.lateral_usage(small, "b"), _usage_by_hand(net, small, "b"), rtol=1e-4)
    assert net.columns_[1].laterals[1][0].V.out_features == FAST["reduce"]
    assert 0 < net.fit_seconds_["a"] < 60 and set(net.fit_seconds_) == {"a", "b"}


def test_layer_specifications_and_progress_on_stderr(capfd):
    X, y = _task(0, n=40)
    for bad in (0, -3, True, 2.5, "c", "cx", "x4"):
        with pytest.raises(ValueError, match=rf"^layers entry {bad!r}; expected a width \(int\) or 'cN'"):
            ProgressiveNetwork(layers=(bad,), epochs=1).fit({"a": (X, y)})
    net = ProgressiveNetwork(layers=(1, np.int64(2)), epochs=1, verbose=True).fit({"a": (X, y)})
    assert [layer.out_features for layer in net.columns_[0].layers] == [1, 2, 2]
    assert "column 0 (a)" in capfd.readouterr().err
    with pytest.raises(ValueError, match=r"^task 'a' y has shape \(39,\); expected \(40,\).$"):
        ProgressiveNetwork(epochs=1).add_task("a", X, y[:-1])
    with pytest.raises(ValueError, match=r"^task 'a' y holds continuous values \(\[0.0, 0.5, 1.0\], ...\); expected"):
        ProgressiveNetwork(epochs=1).add_task("a", X[:5], np.array([0.0, 0.5, 1.0, 1.5, 2.0]))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^task 'a' X contains NaN"):
        ProgressiveNetwork(epochs=1).add_task("a", bad, y)
    with pytest.raises(ValueError, match=r"the earlier columns take \(6,\), and every column reads the same input \("):
        net.add_task("b", X[:, :3], y)


def test_convolutional_columns_on_odd_non_square_images_and_what_a_column_is_built_with(monkeypatch):
    import transferkit.methods.progressive as progressive

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2, 7, 10)).astype(np.float32)  # pooled to 3 x 5, then 1 x 2
    y = (X[:, 0, :3].mean((1, 2)) > 0).astype(int)
    configs, real = [], progressive.fit_loop
    monkeypatch.setattr(
        progressive, "fit_loop", lambda o, a, t, config, **kw: configs.append(config) or real(o, a, t, config, **kw)
    )
    net = ProgressiveNetwork(layers=("c3", "c4", 6), reduce=2, epochs=1, batch_size=100, n_threads=1, seed=5).fit(
        {"a": (X, y), "b": (X, 1 - y)}
    )
    assert net.predict_proba(X, "b").shape == (40, 2)
    assert net.columns_[1].layers[2].in_features == 4 * 1 * 2
    assert [(c.n_threads, c.seed, c.desc) for c in configs] == [(1, 5, "column 0 (a)"), (1, 6, "column 1 (b)")]
    assert [(c.batch_size, c.progress) for c in configs] == [(40, False)] * 2  # at most the task's rows; quiet
    assert ProgressiveColumn((3,), (4,), 2, n_previous=1).laterals[1][0].V.out_features == 16  # the default width
    with pytest.raises(
        ValueError, match=r"^a convolution needs image inputs \(channels, height, width\); got \(6,\).$"
    ):
        ProgressiveColumn((6,), ("c4",), 2, n_previous=0)
