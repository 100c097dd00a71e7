"""mSDA: the closed form equals denoising with infinitely many corrupted copies."""

import numpy as np
import pytest
from sklearn.base import clone

from transferkit.methods.msda import MSDA, msda_layer


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


def test_numpy_formula_of_one_layer():
    rng = np.random.default_rng(1)
    X = rng.random((12, 3))
    p = 0.5
    Xb = np.hstack([X, np.ones((12, 1))])
    S = Xb.T @ Xb
    q = np.array([0.5, 0.5, 0.5, 1.0])
    Q = S * np.outer(q, q)
    Q[np.diag_indices(4)] = q * np.diag(S)
    P = S[:3] * q
    np.testing.assert_allclose(msda_layer(X, p, reg=0.0), P @ np.linalg.inv(Q), rtol=1e-8, atol=1e-10)


def test_no_noise_reconstructs_the_input():
    X = np.random.default_rng(2).normal(size=(50, 5))
    W = msda_layer(X, 0.0, reg=0.0)
    np.testing.assert_allclose(np.hstack([X, np.ones((50, 1))]) @ W.T, X, atol=1e-8)


def test_transformer_output_and_errors():
    X = np.random.default_rng(3).random((40, 6))
    m = MSDA(n_layers=3, noise=0.5).fit(X)
    Z = m.transform(X)
    assert Z.shape == (40, 6 * 4) and Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, :6], X, rtol=1e-6)
    assert np.abs(Z[:, 6:]).max() <= 1.0  # tanh layers
    assert MSDA(n_layers=2, keep_input=False).fit(X).transform(X).shape == (40, 12)
    assert MSDA(n_layers=1, max_features=4).fit(X).transform(X).shape == (40, 10)
    assert clone(m).get_params()["n_layers"] == 3
    with pytest.raises(ValueError, match="noise=1.0"):
        MSDA(noise=1.0).fit(X)
    with pytest.raises(ValueError, match="n_layers=0"):
        MSDA(n_layers=0).fit(X)
    with pytest.raises(ValueError, match="fitted on 6"):
        m.transform(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        MSDA().fit(np.array([[np.nan, 1.0], [0.0, 1.0]]))
