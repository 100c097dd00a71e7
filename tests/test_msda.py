"""mSDA: the closed form equals denoising with infinitely many corrupted copies."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from transferkit.methods.msda import MSDA, _spd_inverse, msda_layer


def _paper_W(X, p, reg):
    """W = E[P] (E[Q] + ridge)^{-1}, written as in Chen et al. 2012 (Algorithm 1 and the authors' mDA.m)."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    S = Xb.T @ Xb
    q = np.r_[np.full(d, 1.0 - p), 1.0]
    Q = S * np.outer(q, q)
    Q[np.diag_indices(d + 1)] = q * np.diag(S)
    P = S[:d] * q
    ridge = reg * np.diag(np.r_[np.ones(d), 0.0])
    return P @ np.linalg.inv(Q + ridge)


def test_closed_form_matches_least_squares_on_many_corrupted_copies():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) @ rng.normal(size=(4, 4))
    p = 0.3
    W = msda_layer(X, p, reg=0.0)
    # explicit corruption, m copies: minimise sum ||x - W [x~, 1]||^2 by least squares
    m = 4000
    Xr = np.tile(X, (m, 1))
    Xc = Xr * (rng.random(Xr.shape) > p)
    A = np.hstack([Xc, np.ones((len(Xc), 1))])
    W_mc = np.linalg.lstsq(A, Xr, rcond=None)[0].T
    np.testing.assert_allclose(W, W_mc, atol=0.03, rtol=0.05)


@pytest.mark.parametrize("p, reg", [(0.5, 0.0), (0.5, 1e-5), (0.2, 0.3), (0.9, 1e-2)])
def test_numpy_formula_of_one_layer(p, reg):
    rng = np.random.default_rng(1)
    X = rng.random((12, 3))
    np.testing.assert_allclose(msda_layer(X, p, reg=reg), _paper_W(X, p, reg), rtol=1e-8, atol=1e-10)


def test_sparse_counts_with_absent_words_and_float32_path():
    # word counts where some words never occur: only the ridge keeps E[Q] invertible, and their rows of W are 0
    rng = np.random.default_rng(2)
    X = rng.poisson(0.3, size=(80, 20)).astype(np.float64)
    X[:, [3, 11]] = 0.0
    W = msda_layer(X, 0.5, reg=1e-5)
    np.testing.assert_allclose(W, _paper_W(X, 0.5, 1e-5), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(W[[3, 11]], 0.0, atol=1e-9)
    # float32 input is scattered in float32 (exact for counts), solved in float64
    np.testing.assert_allclose(msda_layer(X.astype(np.float32), 0.5, reg=1e-5), W, rtol=1e-5, atol=1e-8)
    with pytest.raises(np.linalg.LinAlgError, match="reg > 0"):
        msda_layer(X, 0.5, reg=0.0)


def test_cholesky_inverse_is_symmetric_across_blocks():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(700, 700))  # wider than one 512-row block of the mirroring
    A = A @ A.T + 700 * np.eye(700)
    expected = np.linalg.inv(A)
    np.testing.assert_allclose(_spd_inverse(A.copy()), expected, rtol=1e-10, atol=1e-14)


def test_no_noise_reconstructs_the_input():
    X = np.random.default_rng(4).normal(size=(50, 5))
    W = msda_layer(X, 0.0, reg=0.0)
    np.testing.assert_allclose(np.hstack([X, np.ones((50, 1))]) @ W.T, X, atol=1e-8)


def _reviews(rng, n, words_of):
    """Bag-of-words documents: a shared pivot word per class (0: good, 1: bad) and domain words."""
    y = rng.integers(0, 2, n)
    X = np.zeros((n, 6), dtype=np.float32)
    X[np.arange(n), y] = rng.random(n) < 0.6  # pivot, in both domains
    X[np.arange(n), np.array(words_of)[y]] = rng.random(n) < 0.8  # the domain's own word for the class
    return X, y


def test_mechanism_target_words_are_read_through_the_shared_pivots():
    # source reviews say "good"/"bad" with words 2/3, target reviews with words 4/5; the pivots 0/1 occur in
    # both. A classifier trained on the source never sees words 4/5, so on target reviews without a pivot it
    # is at chance on raw inputs; mSDA, fitted on both domains unlabelled, reconstructs the pivot from 4/5.
    rng = np.random.default_rng(5)
    Xs, ys = _reviews(rng, 400, [2, 3])
    Xt, _ = _reviews(rng, 400, [4, 5])
    Xtest = np.zeros((200, 6), dtype=np.float32)
    ytest = np.arange(200) % 2
    Xtest[np.arange(200), 4 + ytest] = 1.0  # only the target word, no pivot
    raw = LogisticRegression().fit(Xs, ys)
    assert raw.score(Xtest, ytest) == 0.5  # one constant prediction
    msda = MSDA(n_layers=1, noise=0.5).fit(np.concatenate([Xs, Xt]))
    clf = LogisticRegression().fit(msda.transform(Xs), ys)
    assert clf.score(msda.transform(Xtest), ytest) == 1.0
    # the learnt denoiser predicts each pivot from the target word of its class, not from the other one
    W = msda.weights_[0]
    assert W[0, 4] > 0.1 > W[0, 5] and W[1, 5] > 0.1 > W[1, 4]


def test_fit_transform_reuses_the_layers_and_matches_transform():
    X = np.random.default_rng(6).poisson(1.0, size=(60, 8)).astype(np.float32)
    m = MSDA(n_layers=3)
    Z = m.fit_transform(X)
    np.testing.assert_allclose(Z, m.transform(X), rtol=1e-6, atol=1e-6)
    # layer 1 against the float64 formula: tanh(W [x, 1])
    W = _paper_W(X.astype(np.float64), 0.5, 1e-5)
    np.testing.assert_allclose(Z[:, 8:16], np.tanh(np.hstack([X, np.ones((60, 1))]) @ W.T), atol=1e-5)


def test_binarize_learns_on_presence_but_keeps_the_counts():
    X = np.random.default_rng(7).poisson(1.0, size=(60, 8)).astype(np.float32)
    Z = MSDA(n_layers=2, binarize=True).fit_transform(X)
    Zb = MSDA(n_layers=2).fit_transform((X > 0).astype(np.float32))
    np.testing.assert_array_equal(Z[:, :8], X)
    np.testing.assert_allclose(Z[:, 8:], Zb[:, 8:], atol=1e-6)


def test_transformer_output_and_errors():
    X = np.random.default_rng(3).random((40, 6))
    m = MSDA(n_layers=3, noise=0.5).fit(X)
    Z = m.transform(X)
    assert Z.shape == (40, 6 * 4) and Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, :6], X, rtol=1e-6)
    assert np.abs(Z[:, 6:]).max() <= 1.0  # tanh layers
    assert m.weights_[0].shape == (6, 7) and m.weights_[0].dtype == np.float32
    assert MSDA(n_layers=2, keep_input=False).fit(X).transform(X).shape == (40, 12)
    assert MSDA(n_layers=1, max_features=4).fit(X).transform(X).shape == (40, 10)
    assert clone(m).get_params()["n_layers"] == 3
    with pytest.raises(ValueError, match=r"The 'noise' parameter of MSDA must be .* Got 1.0 instead"):
        MSDA(noise=1.0).fit(X)
    with pytest.raises(ValueError, match=r"The 'n_layers' parameter of MSDA must be .* Got 0 instead"):
        MSDA(n_layers=0).fit(X)
    with pytest.raises(ValueError, match=r"The 'reg' parameter of MSDA must be .* Got -1 instead"):
        MSDA(reg=-1).fit(X)
    with pytest.raises(ValueError, match=r"The 'max_features' parameter of MSDA must be .* Got 0 instead"):
        MSDA(max_features=0).fit(X)
    with pytest.raises(ValueError, match="expecting 6 features"):
        m.transform(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        MSDA().fit(np.array([[np.nan, 1.0], [0.0, 1.0]]))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        MSDA().transform(X)
    with pytest.raises(ValueError, match="The 'n_layers' parameter of MSDA must be a number, not a boolean"):
        MSDA(n_layers=True).fit(X)


def test_msda_refuses_inputs_its_closed_form_cannot_hold_and_an_infinite_reg():
    from transferkit.methods.msda import MSDA

    X = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"too large for mSDA's closed form"):
        MSDA(n_layers=1).fit(X * 1e19)
    with pytest.raises(ValueError, match=r"The 'reg' parameter of MSDA must be a float in the range \[0.0, inf\)"):
        MSDA(reg=float("inf")).fit(X)
    assert np.isfinite(MSDA(n_layers=1).fit_transform(X * 1e6)).all()


def test_a_zero_first_feature_without_ridge_is_named_and_defaults_are_the_papers():
    """dpotrf reports the failing leading minor; the first one (info 1) is refused as any other. The
    defaults are the DANN paper's Amazon settings (5 layers, p = 0.5, the code's ridge 1e-5)."""
    X = np.random.default_rng(8).random((20, 4))
    X[:, 0] = 0.0
    with pytest.raises(np.linalg.LinAlgError) as err:
        msda_layer(X, 0.5, reg=0.0)
    assert str(err.value) == (
        "the corrupted scatter matrix is not positive definite (leading minor 1); "
        "a feature that is constant zero needs reg > 0."
    )
    assert MSDA().get_params() == {
        "n_layers": 5, "noise": 0.5, "reg": 1e-5, "keep_input": True, "binarize": False, "max_features": None,
    }  # fmt: skip


def test_each_layer_is_solved_with_the_given_ridge():
    X = np.random.default_rng(9).random((30, 5))
    m = MSDA(n_layers=2, noise=0.3, reg=0.7).fit(X)
    np.testing.assert_allclose(m.weights_[0], _paper_W(X, 0.3, 0.7), rtol=1e-5, atol=1e-6)
    h = np.tanh(np.hstack([X, np.ones((30, 1))]) @ m.weights_[0].T.astype(np.float64))
    np.testing.assert_allclose(m.weights_[1], _paper_W(h, 0.3, 0.7), rtol=1e-4, atol=1e-5)


def test_every_entry_point_names_its_input_and_refuses_images():
    X = np.random.default_rng(10).random((20, 4))
    fitted = MSDA(n_layers=1).fit(X)
    for call in (MSDA(n_layers=1).fit, MSDA(n_layers=1).fit_transform, fitted.transform):
        with pytest.raises(ValueError) as err:
            call(X.reshape(20, 2, 2))
        assert str(err.value) == "X has shape (20, 2, 2); expected a 2-D array (n_samples, n_features)."
    with pytest.raises(ValueError) as err:
        fitted.transform(X[:, :3])
    assert str(err.value) == "X has 3 features, but MSDA is expecting 4 features as input."
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError) as err:
        MSDA().transform(X)
    assert str(err.value) == "this MSDA is not fitted yet; call fit(X) on unlabelled source and target data."
    import warnings

    with pytest.raises(ValueError) as err, warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is named once, without numpy's warnings first
        MSDA(n_layers=1).fit(np.full((10, 2), 1e19, dtype=np.float32))
    assert str(err.value) == (
        "X has values up to 1e+19, too large for mSDA's closed form (its scatter matrix overflows); scale the "
        "features first (e.g. --preprocess standardize)."
    )
