"""TrAdaBoost: the paper's weight update, final rule, and that it learns which source examples to trust."""

import math

import numpy as np
import pytest
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from transferkit import Domain, TrAdaBoost


def _task(seed=0):
    """Target rule: x0 > 0. Source: half follows it, half (the 'bad' part, x1 > 0) has it flipped."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(400, 2))
    bad = Xs[:, 1] > 0
    ys = (Xs[:, 0] > 0).astype(int)
    ys[bad] = 1 - ys[bad]
    Xt = rng.normal(size=(40, 2))
    Xte = rng.normal(size=(1000, 2))
    return Domain(Xs, ys), Domain(Xt, (Xt[:, 0] > 0).astype(int)), Domain(Xte, (Xte[:, 0] > 0).astype(int)), bad


def test_one_round_matches_the_papers_update():
    source, target, _, _ = _task()
    model = TrAdaBoost(n_estimators=1).fit(source, target)
    X = np.concatenate([source.X, target.X])
    c = np.concatenate([source.y, target.y])
    miss = np.abs(model.estimators_[0].predict(X) - c)
    n, N = len(source), 1
    beta = 1 / (1 + np.sqrt(2 * np.log(n) / N))
    eps = min(miss[n:].mean(), 0.499)  # initial weights are uniform; eps_t < 1/2 is required
    beta_t = eps / (1 - eps)
    expected = np.concatenate([beta ** miss[:n], beta_t ** (-miss[n:])])
    assert model.betas_[0] == pytest.approx(beta_t)
    np.testing.assert_allclose(model.weights_[1], expected, rtol=1e-12)


def test_final_hypothesis_is_the_product_rule():
    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=DecisionTreeClassifier(max_depth=2), n_estimators=9).fit(source, target)
    start = math.ceil(9 / 2) - 1
    H = np.stack([h.predict(test.X) for h in model.estimators_[start:]], 1)
    b = model.betas_[start:]
    lhs = np.prod(b[None, :] ** (-H), axis=1)
    rhs = np.prod(b**-0.5)
    np.testing.assert_array_equal(model.predict(test.X), (lhs >= rhs).astype(int))


def test_conflicting_source_examples_lose_weight_and_target_accuracy_beats_pooling():
    source, target, test, bad = _task()
    model = TrAdaBoost(n_estimators=20).fit(source, target)  # linear SVMs, as in the paper
    w = model.weights_[-1][: len(source)]
    assert w[bad].mean() < 0.2 * w[~bad].mean()
    pooled = LinearSVC(dual="auto").fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
    assert model.score(test) > pooled.score(test.X, test.y) + 0.1


def test_errors():
    source, target, _, _ = _task()
    three = Domain(target.X, np.arange(len(target)) % 3)
    with pytest.raises(ValueError, match="two classes"):
        TrAdaBoost(n_estimators=2).fit(source, three)
    with pytest.raises(ValueError, match="n_estimators=0"):
        TrAdaBoost(n_estimators=0).fit(source, target)
    with pytest.raises(ValueError, match="target has no labels"):
        TrAdaBoost().fit(source, target.unlabelled())
