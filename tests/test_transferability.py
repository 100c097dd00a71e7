"""Transferability estimates against NumPy versions of the papers' formulas, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.metrics.transferability import _logme_one, h_score, leep, logme, nce


def data(seed=0, n=60, d=5, informative=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    F = rng.normal(size=(n, d))
    if informative:
        F[:, 0] += 3 * (y == 1)
        F[:, 1] += 3 * (y == 2)
    return F, y


def test_leep_matches_equation_2():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(4), size=30)
    y = rng.integers(0, 3, 30)
    n = len(y)
    joint = np.zeros((3, 4))
    for i in range(n):
        joint[y[i]] += P[i] / n
    cond = joint / joint.sum(0)
    ref = np.mean([np.log(sum(cond[y[i], z] * P[i, z] for z in range(4))) for i in range(n)])
    assert leep(P, y) == pytest.approx(ref)
    assert leep(P, y) <= 0


def test_nce_is_minus_conditional_entropy():
    z = np.array([0, 0, 1, 1, 1, 2])
    y = np.array([0, 1, 1, 1, 0, 0])
    # H(Y|Z) = sum_z p(z) H(Y|z): z=0: (1/3) * log 2; z=1: (1/2) * H(2/3, 1/3); z=2: 0
    h = (2 / 6) * np.log(2) + (3 / 6) * -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    assert nce(z, y) == pytest.approx(-h)
    assert nce(y, y) == pytest.approx(0.0)


def test_h_score_matches_the_trace_formula():
    F, y = data()
    Fc = F - F.mean(0)
    cov = np.cov(Fc, rowvar=False, bias=True)
    g = np.array([Fc[y == y_i].mean(0) for y_i in y])
    ref = np.trace(np.linalg.inv(cov) @ np.cov(g, rowvar=False, bias=True))
    assert h_score(F, y) == pytest.approx(ref, rel=1e-8)
    assert 0 <= h_score(F, y) <= min(F.shape[1], 3 - 1) + 1e-9


def evidence(F, t, alpha, beta):
    """The log evidence of Bayesian linear regression, computed directly (You et al. 2021, eq. 2)."""
    n, d = F.shape
    A = alpha * np.eye(d) + beta * F.T @ F
    m = beta * np.linalg.solve(A, F.T @ t)
    return (
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((F @ m - t) ** 2)
        - alpha / 2 * m @ m
        - 0.5 * np.linalg.slogdet(A)[1]
    )


@pytest.mark.parametrize("n,d", [(60, 5), (8, 20)])  # more samples than features, and fewer
def test_logme_is_the_maximised_evidence(n, d):
    F, y = data(n=n, d=d)
    U, sv, _ = np.linalg.svd(F, full_matrices=False)
    s = np.zeros(d)
    s[: len(sv)] = sv**2
    U_full = np.zeros((n, d))
    U_full[:, : U.shape[1]] = U
    t = (y == 1).astype(float)
    score, alpha, beta = _logme_one(s, U_full, t, n)
    assert score == pytest.approx(evidence(F, t, alpha, beta) / n, rel=1e-6)
    if n > d:  # a maximum: every neighbour is lower
        for fa, fb in ((0.8, 1), (1.25, 1), (1, 0.8), (1, 1.25)):
            assert evidence(F, t, alpha * fa, beta * fb) <= evidence(F, t, alpha, beta) + 1e-9
    else:  # fewer samples than features fit t exactly: beta grows without bound, the evidence with it
        assert evidence(F, t, alpha, beta) > evidence(F, t, 1.0, 1.0)
    per_class = [_logme_one(s, U_full, (y == c).astype(float), n)[0] for c in range(3)]
    assert logme(F, y) == pytest.approx(np.mean(per_class))


def test_scores_rank_informative_features_above_noise():
    F, y = data(informative=True)
    noise, _ = data(informative=False)
    assert logme(F, y) > logme(noise, y)
    assert h_score(F, y) > h_score(noise, y)


def test_bad_input():
    F, y = data()
    with pytest.raises(ValueError, match="y has 59 labels but there are 60 samples"):
        logme(F, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        h_score(F, np.zeros(60))
    with pytest.raises(ValueError, match="probabilities"):
        leep(F[:, :3], y)  # scores, not probabilities
    with pytest.raises(ValueError, match="NaN"):
        logme(np.full((4, 2), np.nan), [0, 1, 0, 1])
