"""Sparse (CSR) data end to end: kept sparse by Domain, batched sparse by the neural methods, never
expanded by them; expanded, with the memory check, by the methods that need dense arrays."""

import numpy as np
import pytest
import scipy.sparse

from transferkit import Domain
from transferkit.methods import get_method


class NeverDense(scipy.sparse.csr_matrix):
    """A CSR matrix that fails the test if anything expands it (or a copy of it) to a dense array."""

    def toarray(self, *args, **kwargs):
        raise AssertionError("the sparse input was expanded to a dense array")

    todense = toarray


@pytest.fixture
def never_dense(monkeypatch):
    """Every CSR matrix refuses to be expanded while the test runs."""
    monkeypatch.setattr(scipy.sparse.csr_matrix, "toarray", NeverDense.toarray)
    monkeypatch.setattr(scipy.sparse._base._spbase, "toarray", NeverDense.toarray)


def bags(seed=0, n=120, d=300, density=0.02):
    """Bag-of-words-like counts whose class shows in which of two word groups is used."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = (rng.random((n, d)) < density).astype(np.float32)
    X[np.arange(n), y * (d // 2) + rng.integers(0, 10, n)] += 3.0
    return scipy.sparse.csr_matrix(X), y


def test_domain_keeps_a_sparse_matrix_as_canonical_float32_csr_without_changing_the_callers():
    coo = scipy.sparse.coo_matrix(([1, 2, 5], ([0, 0, 2], [3, 3, 1])), shape=(4, 6))  # (0, 3) given twice
    d = Domain(coo, np.array([0, 1, 0, 1]))
    assert d.sparse and scipy.sparse.isspmatrix_csr(d.X) and d.X.dtype == np.float32
    assert len(d) == 4 and d.feature_shape == (6,)
    assert d.X.nnz == 2 and d.X[0, 3] == 3.0  # duplicates summed
    assert coo.nnz == 3 and scipy.sparse.isspmatrix_coo(coo)
    sub = d.subset(np.array([2, 3]))
    assert sub.sparse and sub.X.shape == (2, 6) and sub.y.tolist() == [0, 1]
    assert np.array_equal(d.dense().X, coo.toarray().astype(np.float32))


def test_sparse_input_with_nan_or_no_rows_is_refused_naming_the_argument():
    X = scipy.sparse.csr_matrix(np.array([[0, 1.0], [np.nan, 0], [0, np.inf]]))
    with pytest.raises(ValueError, match=r"source.X contains NaN or infinity in 2 of 3 samples"):
        Domain(X, name="source")
    with pytest.raises(ValueError, match=r"X is empty"):
        Domain(scipy.sparse.csr_matrix((0, 5), dtype=np.float32))


@pytest.mark.parametrize("method", ["dann", "dan", "deep-coral", "ddc", "cdan", "source-only", "shot", "tent"])
def test_neural_methods_train_and_predict_on_sparse_domains_without_expanding_them(method, never_dense):
    Xs, ys = bags(0)
    Xt, _ = bags(1)
    model = get_method(method)(epochs=2, seed=0).fit(Domain(Xs, ys), Domain(Xt))
    assert model.predict(Xt).shape == (Xt.shape[0],)
    assert model.predict_proba(Xt[:7]).shape == (7, 2)


@pytest.mark.parametrize("method", ["dann", "dan"])
def test_a_sparse_fit_is_the_dense_fit(method):
    """The first linear layer multiplies the sparse batch exactly as it would the dense one."""
    Xs, ys = bags(0)
    Xt, _ = bags(1)
    sparse = get_method(method)(epochs=3, seed=0).fit(Domain(Xs, ys), Domain(Xt))
    dense = get_method(method)(epochs=3, seed=0).fit(Domain(Xs.toarray(), ys), Domain(Xt.toarray()))
    np.testing.assert_allclose(sparse.predict_proba(Xt), dense.predict_proba(Xt.toarray()), atol=1e-4)
    np.testing.assert_allclose(sparse.predict_proba(Xt.toarray()), sparse.predict_proba(Xt), atol=1e-5)


def test_shallow_methods_get_sparse_domains_expanded_and_agree_with_dense_input():
    Xs, ys = bags(0)
    Xt, _ = bags(1)
    sparse = get_method("coral")().fit(Domain(Xs, ys), Domain(Xt))
    dense = get_method("coral")().fit(Domain(Xs.toarray(), ys), Domain(Xt.toarray()))
    assert np.array_equal(sparse.predict(Xt), dense.predict(Xt.toarray()))


def test_multi_source_pools_sparse_sources():
    from transferkit.methods.mdan import pool_sources

    (a, ya), (b, yb) = bags(0, n=40), bags(2, n=30)
    pooled, ids = pool_sources([Domain(a, ya), Domain(b, yb)], "DANN")
    assert pooled.sparse and pooled.X.shape == (70, 300) and ids.tolist() == [0] * 40 + [1] * 30
    mixed, _ = pool_sources([Domain(a, ya), Domain(b.toarray(), yb)], "DANN")
    assert not mixed.sparse and np.array_equal(mixed.X[:40], a.toarray())


def test_a_sparse_batch_holds_exactly_the_rows_asked_for_in_their_order():
    """Rows gathered from the CSR arrays, empty rows and repeats included, are SciPy's rows."""
    import torch

    from transferkit.train.loop import _Rows

    X = scipy.sparse.random(50, 30, density=0.1, format="csr", random_state=1, dtype=np.float32)
    X[[3, 7]] = 0  # empty rows
    X.eliminate_zeros()
    rows = _Rows(X)
    for idx in (np.array([7, 3, 3, 49, 0]), np.random.default_rng(0).permutation(50)[:17], np.array([3])):
        batch = rows.take(idx, torch.device("cpu"))
        assert batch.is_sparse and batch.shape == (len(idx), 30)
        np.testing.assert_array_equal(batch.to_dense().numpy(), X[idx].toarray())
        np.testing.assert_array_equal(batch.coalesce().to_dense().numpy(), X[idx].toarray())


def test_auto_chooses_on_sparse_domains_without_expanding_them(never_dense):
    from transferkit import Auto

    Xs, ys = bags(0, n=600)
    Xt, _ = bags(1, n=400)
    auto = Auto(candidates={"dann": {"lambda_max": [0.1]}}, epochs=2, n_resamples=50).fit(Domain(Xs, ys), Domain(Xt))
    assert auto.predict(Xt).shape == (400,) and len(auto.decision_["candidates"]) == 2
    assert not Auto(candidates={"coral": {}})._takes_sparse()  # a candidate that needs dense arrays
    assert not Auto(preprocess=("none", "standardize-domain"))._takes_sparse()


# ---- the first layer: x W^T + b over a sparse batch, at the cost of its non-zeros in both passes


def _layer_case(seed=0, n=7, d=11, h=3):
    import torch

    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.3) * rng.normal(size=(n, d))
    X[2] = 0.0  # a row with no non-zeros
    W, b, G = rng.normal(size=(h, d)), rng.normal(size=h), rng.normal(size=(n, h))
    coo = torch.from_numpy(X).float().to_sparse()
    return X, W, b, G, coo


def _sparse_form(X, form):
    import torch

    coo = torch.from_numpy(X).float().to_sparse()
    if form == "csr":
        return coo.to_sparse_csr()
    if form == "coo-unordered":  # entries in reverse order, one of them given as two halves: summed
        i, v = coo.indices().flip(1), coo.values().flip(0)
        return torch.sparse_coo_tensor(torch.cat([i, i[:, :1]], 1), torch.cat([v[:1] / 2, v[1:], v[:1] / 2]), coo.shape)
    if form == "coo-first-smallest":  # the first entry in place, the others out of order: not canonical
        i, v = coo.indices(), coo.values()
        order = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(len(v) - 1, 0, -1)])
        return torch.sparse_coo_tensor(i[:, order], v[order], coo.shape)
    if form == "stacked":  # two canonical batches stacked, as DANN stacks the source and target rows
        return torch.cat([torch.from_numpy(X[:4]).float().to_sparse(), torch.from_numpy(X[4:]).float().to_sparse()])
    return coo


@pytest.mark.parametrize("form", ["coo", "csr", "coo-unordered", "coo-first-smallest", "stacked"])
def test_the_sparse_linear_layer_matches_numpy_in_value_and_gradients(form):
    import torch

    from transferkit.nn.sparse import SparseInputLinear

    rng = np.random.default_rng(0)
    X = (rng.random((7, 11)) < 0.3) * rng.normal(size=(7, 11))
    X[2] = 0.0  # a row without non-zeros
    W, b, G = rng.normal(size=(3, 11)), rng.normal(size=3), rng.normal(size=(7, 3))
    layer = SparseInputLinear(11, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
        layer.bias.copy_(torch.from_numpy(b))
    arriving = []  # the layout in which the backward pass hands over the weight's gradient
    layer.weight.register_hook(lambda g: arriving.append(g.stride()))
    y = layer(_sparse_form(X, form))
    assert type(y.grad_fn).__name__ == "_SparseLinearBackward"  # the layer's own products, not torch's COO addmm
    y.backward(torch.from_numpy(G).float())
    np.testing.assert_allclose(y.detach().numpy(), X @ W.T + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), G.T @ X, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.numpy(), G.sum(0), rtol=1e-5, atol=1e-5)
    # column-major weight, and its gradient made in that layout (no transposed copy of the weight)
    assert layer.weight.t().is_contiguous() and arriving == [layer.weight.stride()] == [layer.weight.grad.stride()]
    y64 = layer(_sparse_form(X, form).double())  # a float64 batch meets the layer's float32 weight
    assert y64.dtype == torch.float32
    np.testing.assert_allclose(y64.detach().numpy(), X @ W.T + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form, sorts", [("stacked", False), ("coo-unordered", True), ("coo-first-smallest", True)])
def test_only_a_batch_out_of_order_is_sorted(form, sorts, monkeypatch):
    """Stacked canonical batches are already in row-major order: the layer converts them without the sort."""
    import torch

    from transferkit.nn.sparse import SparseInputLinear

    X = (np.random.default_rng(1).random((7, 11)) < 0.3).astype(np.float64)
    x = _sparse_form(X, form)
    calls = []
    original = torch.Tensor.coalesce
    monkeypatch.setattr(torch.Tensor, "coalesce", lambda t: calls.append(1) or original(t))
    SparseInputLinear(11, 3)(x)
    assert bool(calls) == sorts


@pytest.mark.parametrize("frozen", ["weight", "bias", "no bias"])
def test_a_frozen_weight_or_bias_gets_no_gradient_and_the_other_its_own(frozen):
    import torch

    from transferkit.nn.sparse import SparseInputLinear

    rng = np.random.default_rng(2)
    X, G = (rng.random((5, 8)) < 0.4) * 1.0, rng.normal(size=(5, 2))
    layer = SparseInputLinear(8, 2, bias=frozen != "no bias")
    if frozen != "no bias":
        getattr(layer, frozen).requires_grad_(False)
    layer(torch.from_numpy(X).float().to_sparse()).backward(torch.from_numpy(G).float())
    if frozen == "weight":
        assert layer.weight.grad is None
    else:
        np.testing.assert_allclose(layer.weight.grad.numpy(), G.T @ X, rtol=1e-5, atol=1e-6)
    if frozen == "bias":
        assert layer.bias.grad is None
    elif frozen == "weight":
        np.testing.assert_allclose(layer.bias.grad.numpy(), G.sum(0), rtol=1e-5, atol=1e-6)


def test_the_sparse_linear_layer_is_a_linear_layer_for_dense_input_and_for_state():
    import torch

    from transferkit.nn.backbones import shallow_net
    from transferkit.nn.sparse import SparseInputLinear

    torch.manual_seed(0)
    layer = SparseInputLinear(6, 2)
    torch.manual_seed(0)
    plain = torch.nn.Linear(6, 2)
    assert torch.equal(layer.weight, plain.weight)  # drawn as nn.Linear draws: same weights for a seed
    x = torch.randn(4, 6)
    assert torch.allclose(layer(x), plain(x), rtol=1e-6, atol=1e-7)  # another BLAS layout: rounding apart
    plain.load_state_dict(layer.state_dict())  # same keys and shapes as nn.Linear
    net = shallow_net(6, 2, hidden=3)
    assert isinstance(net.stages["hidden"][0], SparseInputLinear)


def test_a_sparse_batch_of_the_wrong_width_is_refused_naming_it():
    import torch

    from transferkit.nn.sparse import SparseInputLinear

    with pytest.raises(ValueError, match=r"x has shape \(2, 5\); expected \(n, 6\)"):
        SparseInputLinear(6, 2)(torch.zeros(2, 5).to_sparse())
