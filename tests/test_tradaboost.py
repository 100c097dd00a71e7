"""TrAdaBoost: the paper's update and final rule, the multi-class (SAMME) form, what it learns, degeneration."""

import copy
import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

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


def _task3(seed=0):
    """Three classes by the angle of x; in the source half (x2 > 0) the labels are rotated by one class."""
    rng = np.random.default_rng(seed)

    def label(X):
        return (np.floor((np.arctan2(X[:, 1], X[:, 0]) + np.pi) / (2 * np.pi / 3)).astype(int)) % 3

    Xs, Xt, Xte = rng.normal(size=(600, 3)), rng.normal(size=(60, 3)), rng.normal(size=(1500, 3))
    bad = Xs[:, 2] > 0
    ys = label(Xs)
    ys[bad] = (ys[bad] + 1) % 3
    return Domain(Xs, ys), Domain(Xt, label(Xt)), Domain(Xte, label(Xte)), bad


def _reference(Xs, ys, Xt, yt, N, make_learner):
    """Algorithm 1 of Dai et al. (2007) in NumPy, with SAMME's ln(K-1) for K > 2; returns weights, betas, rule."""
    X, c = np.concatenate([Xs, Xt]), np.concatenate([ys, yt])
    n, m, K = len(Xs), len(Xt), len(np.unique(c))
    w = np.ones(n + m)
    beta = 1 / (1 + np.sqrt(2 * np.log(n) / N))
    weights, betas, hyps = [w], [], []
    for _ in range(N):
        p = w / w.sum()
        h = make_learner().fit(X, c, sample_weight=p * (n + m))
        miss = (h.predict(X) != c).astype(float)  # = |h_t(x) - c(x)| for labels in {0, 1}
        eps = np.sum(w[n:] * miss[n:]) / np.sum(w[n:])
        eps = min(max(eps, 1e-10), (K - 1) / K - 1e-3)
        beta_t = eps / ((1 - eps) * (K - 1))
        w = np.concatenate([w[:n] * beta ** miss[:n], w[n:] * beta_t ** (-miss[n:])])
        weights.append(w)
        betas.append(beta_t)
        hyps.append(h)
    start = math.ceil(N / 2) - 1
    b = np.array(betas[start:])

    def rule(Xq):
        H = np.stack([h.predict(Xq) for h in hyps[start:]], 1)
        if K == 2:  # the paper's product rule
            return (np.prod(b ** (-H), axis=1) >= np.prod(b**-0.5)).astype(int)
        return np.stack([(H == k) @ np.log(1 / b) for k in range(K)], 1).argmax(1)

    return np.array(weights), np.array(betas), rule


def _svm():
    return LinearSVC(dual="auto", max_iter=5000, random_state=0)


def test_two_classes_follow_algorithm_1_exactly():
    """The multi-class code path with K = 2 (ln(K-1) = 0) is the paper's algorithm, round by round."""
    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=_svm(), n_estimators=12).fit(source, target)
    W, B, rule = _reference(source.X, source.y, target.X, target.y, 12, _svm)
    np.testing.assert_allclose(model.betas_, B, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, W, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(test.X), rule(test.X))


def test_three_classes_follow_the_samme_update():
    source, target, test, _ = _task3()
    model = TrAdaBoost(estimator=_svm(), n_estimators=10).fit(source, target)
    W, B, rule = _reference(source.X, source.y, target.X, target.y, 10, _svm)
    np.testing.assert_allclose(model.betas_, B, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, W, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(test.X), rule(test.X))
    eps = model.errors_[0]
    assert model.betas_[0] == pytest.approx(eps / ((1 - eps) * 2))  # beta_t = eps / ((1 - eps)(K - 1))


def test_final_hypothesis_is_the_product_rule():
    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=LogisticRegression(), n_estimators=9).fit(source, target)
    start = math.ceil(9 / 2) - 1
    H = np.stack([h.predict(test.X) for h in model.estimators_[start:]], 1)
    b = model.betas_[start:]
    lhs = np.prod(b[None, :] ** (-H), axis=1)
    rhs = np.prod(b**-0.5)
    np.testing.assert_array_equal(model.predict(test.X), (lhs >= rhs).astype(int))
    np.testing.assert_allclose(model.predict_proba(test.X)[:, 1], H @ np.log(1 / b) / np.log(1 / b).sum())


class _Against:
    """A hypothesis that predicts the other class wherever ``model`` predicts one."""

    def __init__(self, model):
        self.model = copy.deepcopy(model)

    def predict(self, X):
        return 1 - self.model.predict(X)


def test_a_tied_vote_goes_to_class_one_as_in_the_papers_rule():
    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=LogisticRegression(), n_estimators=2).fit(source, target)
    h = model.estimators_[0]
    model.estimators_ = [h, _Against(h)]  # both rounds vote (N = 2), for opposite answers
    model.betas_ = np.array([0.3, 0.3])  # with equal weights: the margin is exactly 0 everywhere
    assert np.all(model.decision_function(test.X) == 0)
    # prod beta_t^(-h_t(x)) >= prod beta_t^(-1/2) holds with equality: class 1
    np.testing.assert_array_equal(model.predict(test.X), np.full(len(test), model.classes_[1]))


def test_the_vote_uses_only_the_second_half_of_the_rounds():
    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=LogisticRegression(), n_estimators=10).fit(source, target)
    before = model.predict(test.X)
    against = _Against(model)
    start = math.ceil(10 / 2) - 1  # rounds 1..4 do not vote
    model.estimators_[:start] = [against] * start
    np.testing.assert_array_equal(model.predict(test.X), before)
    model.estimators_[start:] = [against] * (10 - start)
    np.testing.assert_array_equal(model.predict(test.X), 1 - before)


def test_conflicting_source_examples_lose_weight_and_target_accuracy_beats_pooling():
    source, target, test, bad = _task()
    model = TrAdaBoost(n_estimators=20).fit(source, target)  # linear SVMs, as in the paper
    w = model.weights_[-1][: len(source)]
    assert w[bad].mean() < 0.2 * w[~bad].mean()
    pooled = LinearSVC(dual="auto").fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
    assert model.score(test) > pooled.score(test.X, test.y) + 0.1
    assert model.degenerate_ == []


def test_target_examples_the_pooled_learner_misfits_gain_weight():
    source, target, _, _ = _task()
    model = TrAdaBoost(n_estimators=20).fit(source, target)
    n = len(source)
    missed = model.estimators_[0].predict(target.X) != target.y
    assert 0 < missed.sum() < len(target)
    np.testing.assert_allclose(model.weights_[1][n:][missed], 1 / model.betas_[0])  # beta_t^-1 > 1
    w = model.weights_[-1][n:]
    assert w[missed].mean() > 3 * w[~missed].mean()


def test_three_classes_conflicting_source_fades_and_beats_pooling():
    source, target, test, bad = _task3()
    model = TrAdaBoost(n_estimators=20).fit(source, target)
    w = model.weights_[-1][: len(source)]
    assert w[bad].mean() < 0.05 * w[~bad].mean()
    pooled = _svm().fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
    assert model.score(test) > pooled.score(test.X, test.y) + 0.2
    np.testing.assert_allclose(model.predict_proba(test.X).sum(1), 1)


def test_probability_hypotheses_use_one_minus_the_probability_of_the_true_class():
    source, target, _, _ = _task()
    model = TrAdaBoost(estimator=LogisticRegression(), n_estimators=1, hypothesis="probability").fit(source, target)
    X, c = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    loss = 1 - model.estimators_[0].predict_proba(X)[np.arange(len(c)), c]  # |h_t(x) - c(x)| with h_t = P(1|x)
    n = len(source)
    eps = loss[n:].mean()
    beta_t = eps / (1 - eps)
    beta = 1 / (1 + np.sqrt(2 * np.log(n)))
    np.testing.assert_allclose(model.weights_[1], np.concatenate([beta ** loss[:n], beta_t ** -loss[n:]]), rtol=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # one round on an imbalanced sample: clipped, flagged
def test_balance_classes_hands_each_class_the_same_total_weight():
    seen = []

    class Spy(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            seen.append(np.bincount(y, weights=sample_weight))
            return super().fit(X, y, sample_weight=sample_weight)

    source, target, _, _ = _task()
    source = source.subset(np.flatnonzero((source.y == 1) | (np.arange(len(source)) % 4 == 0)))  # imbalanced
    TrAdaBoost(estimator=Spy(), n_estimators=3, balance_classes=True).fit(source, target)
    for totals in seen:
        assert totals[0] == pytest.approx(totals[1])
    seen.clear()
    TrAdaBoost(estimator=Spy(), n_estimators=1).fit(source, target)
    assert seen[0][0] < 0.7 * seen[0][1]


def _fit_recording(model, source, target):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(source, target)
    messages = [str(r.message) for r in record if r.category is RuntimeWarning]
    assert messages == [f"TrAdaBoost: {m}" for m in model.degenerate_]
    return model, messages


def test_degenerate_when_every_round_is_the_pooled_fit():
    """A separable target that the source agrees with: epsilon_t = 0 and 30 identical hypotheses."""
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(300, 2)), rng.normal(size=(20, 2))
    Xs[:, 0] += np.sign(Xs[:, 0]) * 2
    Xt[:, 0] += np.sign(Xt[:, 0]) * 2
    source, target = Domain(Xs, (Xs[:, 0] > 0).astype(int)), Domain(Xt, (Xt[:, 0] > 0).astype(int))
    model, messages = _fit_recording(TrAdaBoost(n_estimators=30), source, target)
    assert messages == [
        "TrAdaBoost: all 30 round hypotheses give the same output on the 320 training examples: boosting never "
        "changed a decision, and the vote is in effect one LinearSVC fitted on the pooled data.",
        "TrAdaBoost: the base learner fits every labelled target example in every round (epsilon_t = 0): the "
        "target weights never move and only the source re-weighting acts. A weaker base learner, "
        "hypothesis='probability' or more target labels let boosting work.",
    ]
    one, _ = _fit_recording(TrAdaBoost(n_estimators=1), source, target)
    assert len(one.degenerate_) == 1 and "epsilon_t = 0" in one.degenerate_[0]  # one round: nothing to compare
    two, _ = _fit_recording(TrAdaBoost(n_estimators=2), source, target)
    assert "all 2 round hypotheses give the same output" in two.degenerate_[0]
    assert model.degenerate_ == model.warnings_ and len(model.degenerate_) == 2
    assert np.all(model.errors_ == 0)
    soft = TrAdaBoost(estimator=LogisticRegression(), n_estimators=30, hypothesis="probability")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        soft.fit(source, target)  # soft errors are > 0, so the weights move and nothing is flagged
    assert soft.degenerate_ == [] and soft.errors_.min() > 0


def test_degenerate_when_the_target_is_no_better_than_chance_in_most_rounds():
    source, target, _, _ = _task()
    flipped = Domain(target.X, 1 - target.y)
    clean = source.subset(np.flatnonzero(~_task()[3]))  # a source that agrees with x0 > 0 everywhere
    model, messages = _fit_recording(TrAdaBoost(n_estimators=10), clean, flipped)
    assert np.sum(model.errors_ >= 0.499) > 5
    assert messages[-1] == (
        "TrAdaBoost: epsilon_t >= 0.5 (no better than chance on the weighted target) in 10 of 10 rounds; those "
        "rounds were clipped and hardly vote. The source may conflict with the target."
    )
    assert "same output" in messages[0]  # clipped rounds hardly move the target weights


def test_fitted_state_pooled_input_and_the_seed_of_every_round():
    from sklearn.tree import DecisionTreeClassifier

    source, target, test, _ = _task()
    model = TrAdaBoost(estimator=DecisionTreeClassifier(max_depth=2, max_features=1), n_estimators=4, seed=7)
    model.fit(source, target)
    assert [h.random_state for h in model.estimators_] == [7] * 4  # every round's learner takes the seed
    assert model.beta_ == pytest.approx(1 / (1 + math.sqrt(2 * math.log(len(source)) / 4)))
    assert model.model_ is model.estimators_
    X, y = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    sample_domain = np.r_[np.ones(len(source)), -np.ones(len(target))].astype(int)  # one array, SKADA's marks
    pooled = TrAdaBoost(n_estimators=3).fit(X, y, sample_domain=sample_domain)
    np.testing.assert_array_equal(
        pooled.predict(test.X), TrAdaBoost(n_estimators=3).fit(source, target).predict(test.X)
    )


def test_errors():
    source, target, _, _ = _task()

    class NoParams:  # fit and predict, as the parameter check asks, but nothing to clone it by
        def fit(self, X, y, sample_weight=None):
            return self

        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(
        TypeError, match=r"estimator=.* is not a scikit-learn classifier \(fit, predict, get_params\)\.$"
    ):
        TrAdaBoost(estimator=NoParams()).fit(source, target)
    with pytest.raises(
        TypeError,
        match=r"^estimator=KNeighborsClassifier\(\) cannot take sample weights: KNeighborsClassifier.fit has no "
        r"sample_weight parameter, and boosting trains every round on re-weighted data. Use a base learner whose "
        r"fit accepts sample_weight \(LinearSVC, LogisticRegression, DecisionTree..., Ridge, ...\).$",
    ):
        TrAdaBoost(estimator=KNeighborsClassifier()).fit(source, target)
    with pytest.raises(ValueError, match=r"^TrAdaBoost needs feature vectors; got samples of shape \(2, 2\).$"):
        TrAdaBoost().fit(Domain(np.zeros((40, 2, 2)), np.arange(40) % 2), Domain(np.zeros((6, 2, 2)), np.arange(6) % 2))
    with pytest.raises(TypeError, match=r"KNeighborsClassifier\(\) cannot take sample weights"):
        TrAdaBoost(estimator=KNeighborsClassifier()).fit(source, target)
    with pytest.raises(TypeError, match=r"LinearRegression\(\) is a regressor.*TrAdaBoostR2"):
        TrAdaBoost(estimator=LinearRegression()).fit(source, target)
    with pytest.raises(
        TypeError,
        match=r"no predict_proba, which hypothesis='probability' needs; use hypothesis='label', or a probabilistic "
        r"classifier \(LogisticRegression, CalibratedClassifierCV\(...\)\).$",
    ):
        TrAdaBoost(hypothesis="probability").fit(source, target)
    with pytest.raises(
        TypeError, match=r"LinearRegression\(\) is a regressor; expected a classifier \(use TrAdaBoostR2"
    ):
        TrAdaBoost(estimator=LinearRegression()).fit(source, target)
    with pytest.raises(ValueError, match="'hypothesis' parameter of TrAdaBoost .* Got 'soft'"):
        TrAdaBoost(hypothesis="soft").fit(source, target)
    with pytest.raises(ValueError, match="'n_estimators' parameter of TrAdaBoost must be an int in the range"):
        TrAdaBoost(n_estimators=0).fit(source, target)
    with pytest.raises(ValueError, match="target has no labels"):
        TrAdaBoost().fit(source, target.unlabelled())
    with pytest.raises(ValueError, match="target is None"):
        TrAdaBoost().fit(source, None)


def test_the_documented_defaults_and_the_default_learner():
    assert TrAdaBoost().get_params() == {
        "balance_classes": False, "estimator": None, "hypothesis": "label", "n_estimators": 100, "seed": 0,
    }  # fmt: skip
    source, target, _, _ = _task()
    model = TrAdaBoost(n_estimators=2).fit(source, target)
    h = model.estimators_[0]
    assert isinstance(h, LinearSVC) and (h.dual, h.max_iter, h.random_state) == ("auto", 5000, 0)


def test_clipped_rounds_are_flagged_only_when_more_than_half_reach_the_clip():
    from sklearn.svm import LinearSVC

    model = TrAdaBoost(n_estimators=4)
    model.estimators_ = [LinearSVC()] * 4
    for errors, flagged in (
        ([0.499, 0.499, 0.1, 0.1], False),  # half the rounds at the clip: not more than half
        ([0.499, 0.499, 0.499, 0.1], True),  # three of four, each exactly at the clip, which counts
        ([0.6, 0.498, 0.498, 0.1], False),
    ):
        model.errors_ = np.array(errors)
        found = model._degeneration(False, 0.499, 50)
        assert [m for m in found if "no better than chance" in m] == (
            ["epsilon_t >= 0.5 (no better than chance on the weighted target) in 3 of 4 rounds; those rounds were "
             "clipped and hardly vote. The source may conflict with the target."] if flagged else []
        )  # fmt: skip
