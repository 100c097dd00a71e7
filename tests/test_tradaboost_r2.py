"""TrAdaBoost.R2 and two-stage TrAdaBoost.R2 (Pardoe & Stone 2010): formulas, mechanisms, contract."""

import math
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from transferkit import Domain
from transferkit.methods import REGISTRY, REGRESSORS, TrAdaBoostR2, TwoStageTrAdaBoostR2
from transferkit.methods.tradaboost_r2 import adaboost_r2_frozen_source, adjusted_error, source_factor, weighted_median


def _shift(seed=0, n=400, m=20):
    """Target y = sin(2 x0) + x1 / 2; in the quarter of the source with x1 > 1 the sign of y is flipped."""
    rng = np.random.default_rng(seed)

    def f(X):
        return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1]

    Xs, Xt, Xte = rng.uniform(-2, 2, (n, 2)), rng.uniform(-2, 2, (m, 2)), rng.uniform(-2, 2, (2000, 2))
    bad = Xs[:, 1] > 1
    ys = np.where(bad, -f(Xs), f(Xs)) + 0.1 * rng.normal(size=n)
    yt = f(Xt) + 0.1 * rng.normal(size=m)
    return Domain(Xs, ys), Domain(Xt, yt), Domain(Xte, f(Xte)), bad


def _tree(depth=3):
    return DecisionTreeRegressor(max_depth=depth, random_state=0)


def _mse(model, X, y):
    return float(np.mean((model.predict(X) - y) ** 2))


def test_adjusted_error_is_druckers():
    r = np.array([0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(adjusted_error(r, "linear"), r / 2)
    np.testing.assert_allclose(adjusted_error(r, "square"), (r / 2) ** 2)
    np.testing.assert_allclose(adjusted_error(r, "exponential"), 1 - np.exp(-r / 2))
    np.testing.assert_array_equal(adjusted_error(np.zeros(3), "linear"), 0)


def test_weighted_median_is_the_smallest_value_holding_half_the_weight():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, size=(200, 7)).astype(float)  # ties included
    weights = rng.uniform(0.1, 2, size=7)
    expected = [min(v for v in row if weights[row <= v].sum() >= 0.5 * weights.sum()) for row in values]
    np.testing.assert_array_equal(weighted_median(values, weights), expected)


def _reference(Xs, ys, Xt, yt, N, make_learner, loss):
    """Algorithm 3 of Pardoe & Stone (2010) in NumPy: weights and beta_t of every round."""
    X, y = np.concatenate([Xs, Xt]), np.concatenate([ys, yt])
    n = len(Xs)
    w = np.ones(len(y))
    beta = 1 / (1 + np.sqrt(2 * np.log(n) / N))
    weights, betas = [w], []
    for _ in range(N):
        h = make_learner().fit(X, y, sample_weight=w / w.mean())
        r = np.abs(h.predict(X) - y)
        e = {"linear": r / r.max(), "square": (r / r.max()) ** 2, "exponential": 1 - np.exp(-r / r.max())}[loss]
        eps = np.sum(w[n:] * e[n:]) / np.sum(w[n:])
        beta_t = eps / (1 - eps)
        w = np.concatenate([w[:n] * beta ** e[:n], w[n:] * beta_t ** -e[n:]])
        weights.append(w)
        betas.append(beta_t)
    return np.array(weights), np.array(betas)


@pytest.mark.parametrize("loss", ["linear", "square", "exponential"])
def test_rounds_follow_algorithm_3(loss):
    source, target, _, _ = _shift()
    model = TrAdaBoostR2(_tree(), n_estimators=6, loss=loss).fit(source, target)
    W, B = _reference(source.X, source.y, target.X, target.y, 6, _tree, loss)
    np.testing.assert_allclose(model.betas_, B, rtol=1e-10)
    np.testing.assert_allclose(model.weights_, W, rtol=1e-10)


def test_prediction_is_the_weighted_median_of_the_second_half():
    source, target, test, _ = _shift()
    model = TrAdaBoostR2(_tree(), n_estimators=9).fit(source, target)
    start = math.ceil(9 / 2) - 1
    values = np.stack([h.predict(test.X) for h in model.estimators_[start:]], 1)
    expected = weighted_median(values, np.log(1 / model.betas_[start:]))
    np.testing.assert_array_equal(model.predict(test.X), expected)
    far = DecisionTreeRegressor(max_depth=1).fit(test.X, test.y + 1e3)
    model.estimators_[:start] = [far] * start  # the first rounds do not vote
    np.testing.assert_array_equal(model.predict(test.X), expected)


def test_conflicting_source_fades_and_beats_target_only_and_pooled():
    ours, only, pooled, fade = [], [], [], []
    for seed in range(5):
        source, target, test, bad = _shift(seed)
        model = TrAdaBoostR2(_tree(), n_estimators=50).fit(source, target)
        w = model.weights_[-1][: len(source)]
        fade.append(w[bad].mean() / w[~bad].mean())
        ours.append(_mse(model, test.X, test.y))
        only.append(_mse(_tree().fit(target.X, target.y), test.X, test.y))
        both = _tree().fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
        pooled.append(_mse(both, test.X, test.y))
    assert np.mean(fade) < 0.8
    assert np.mean(ours) < 0.85 * np.mean(only) and np.mean(ours) < 0.6 * np.mean(pooled), (ours, only, pooled)


def test_stops_and_warns_when_the_target_error_reaches_one_half():
    source, target, _, _ = _shift()
    far = Domain(target.X, target.y + 100.0)  # the pooled fit misses every target example by the most
    with pytest.warns(RuntimeWarning, match="kept alone"):
        model = TrAdaBoostR2(_tree(), n_estimators=10).fit(source, far)
    assert len(model.estimators_) == 1 and model.errors_[0] >= 0.5


def test_degenerate_when_the_learner_fits_everything_exactly():
    source, target, _, _ = _shift()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = TrAdaBoostR2(DecisionTreeRegressor(random_state=0), n_estimators=5).fit(source, target)
    assert len(model.degenerate_) == 2 and len(record) == 2
    assert "predict the same" in model.degenerate_[0] and "epsilon_t = 0" in model.degenerate_[1]


def test_two_stage_fades_the_source_on_schedule_and_freezes_it_inside_adaboost_r2():
    seen = []

    class Spy(DecisionTreeRegressor):
        def fit(self, X, y, sample_weight=None):
            seen.append(sample_weight[:n].copy())
            return super().fit(X, y, sample_weight=sample_weight)

    source, target, _, _ = _shift()
    n, m, S, N = len(source), len(target), 4, 3
    model = TwoStageTrAdaBoostR2(Spy(max_depth=3, random_state=0), n_steps=S, n_estimators=N, n_folds=2)
    model.fit(source, target)
    share = model.weights_[:, n:].sum(1)
    np.testing.assert_allclose(share, m / (n + m) + np.arange(S) / (S - 1) * (1 - m / (n + m)), rtol=1e-6)
    per_step = 2 * N + N + 1  # AdaBoost.R2' on 2 folds and on all data, then one learner for the source step
    assert len(seen) == S * per_step - 1  # the last step's source factor would never be used: not fitted
    for s in range(S):
        calls = seen[s * per_step : (s + 1) * per_step - 1]  # inside AdaBoost.R2': the source never moves
        for k in range(0, len(calls), N):
            for sw in calls[k + 1 : k + N]:
                np.testing.assert_allclose(sw, calls[k], rtol=1e-12)
    assert model.best_step_ == int(np.argmin(model.cv_errors_))


def test_two_stage_beats_pooled():
    source, target, test, _ = _shift()
    model = TwoStageTrAdaBoostR2(_tree(), n_steps=6, n_estimators=5, n_folds=3).fit(source, target)
    pooled = _tree().fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
    assert _mse(model, test.X, test.y) < _mse(pooled, test.X, test.y) - 0.3


@pytest.mark.parametrize("cls", [TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_regression_contract(cls):
    """What tests/test_contract.py checks for classifiers, for the two regressors it cannot take."""
    assert cls.name in REGRESSORS and cls.name not in REGISTRY and cls.task == "regression"
    source, target, test, _ = _shift(n=120, m=12)
    fast = {"n_estimators": 3, "n_steps": 3, "n_folds": 2}
    est = cls(**{k: v for k, v in fast.items() if k in cls().get_params()}, seed=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not any(k.endswith("_") for k in vars(twin))
    with pytest.raises(NotFittedError, match="not fitted"):
        est.predict(test.X)
    assert est.fit(source, target) is est
    pred = est.predict(test.X)
    assert pred.shape == (len(test),) and pred.dtype == np.float64
    np.testing.assert_array_equal(clone(est).fit(source, target).predict(test.X), pred)
    assert est.score(test) == pytest.approx(1 - np.sum((test.y - pred) ** 2) / np.sum((test.y - test.y.mean()) ** 2))
    with pytest.raises(ValueError, match="is expecting 2 features"):
        est.predict(np.zeros((4, 3)))


def test_errors():
    source, target, _, _ = _shift()
    with pytest.raises(TypeError, match=r"KNeighborsRegressor\(\) cannot take sample weights"):
        TrAdaBoostR2(KNeighborsRegressor()).fit(source, target)
    with pytest.raises(TypeError, match=r"LogisticRegression\(\) is a classifier.*TrAdaBoost"):
        TrAdaBoostR2(LogisticRegression()).fit(source, target)
    with pytest.raises(ValueError, match="'loss' parameter of TrAdaBoostR2 must be a str among .* Got 'huber' instead"):
        TrAdaBoostR2(loss="huber").fit(source, target)
    with pytest.raises(ValueError, match="target has no labels"):
        TrAdaBoostR2().fit(source, target.unlabelled())
    with pytest.raises(ValueError, match="n_folds=30"):
        TwoStageTrAdaBoostR2(n_folds=30).fit(source, target)
    with pytest.raises(
        ValueError, match=r"'n_steps' parameter of TwoStageTrAdaBoostR2 must be an int in the range \[2"
    ):
        TwoStageTrAdaBoostR2(n_steps=1).fit(source, target)
    TwoStageTrAdaBoostR2(_tree(), n_steps=2, n_estimators=2, n_folds=2).fit(source, target)  # the smallest schedule
    with pytest.raises(ValueError, match="score needs targets"):
        TrAdaBoostR2(_tree(), n_estimators=2).fit(source, target).score(target.unlabelled())


def test_adaboost_r2_prime_reweights_the_target_only_as_drucker_and_pardoe_stone_write_it():
    """AdaBoost.R2' in NumPy: average loss over every example, beta = eps / (1 - eps), vote ln(1/beta),
    target weights times beta^(1 - e) rescaled to their old total; the source weights never move."""
    from sklearn.linear_model import Ridge

    source, target, _, _ = _shift(n=60, m=15)
    X, y, n = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]), len(source)
    w0 = np.random.default_rng(1).uniform(0.5, 2.0, n + len(target))
    seen = []

    class Spy(Ridge):  # ridge: the scale of the weights matters, so their normalisation is checked too
        def fit(self, X, y, sample_weight=None):
            seen.append(sample_weight.copy())
            return super().fit(X, y, sample_weight=sample_weight)

    given = w0.copy()
    hyps, alphas = adaboost_r2_frozen_source(Spy(alpha=3.0), X, y, w0, n, 4, "linear", 0)
    np.testing.assert_array_equal(w0, given)  # the caller's weights are left as they were
    w, expected = w0.copy(), []
    for k in range(4):
        h = Ridge(alpha=3.0).fit(X, y, sample_weight=w / w.mean())
        np.testing.assert_allclose(seen[k], w / w.mean(), rtol=1e-12)
        r = np.abs(h.predict(X) - y)
        e = r / r.max()
        eps = np.sum(w * e) / np.sum(w)
        assert eps < 0.5
        beta = eps / (1 - eps)
        expected.append(np.log(1 / beta))
        np.testing.assert_allclose(hyps[k].predict(X), h.predict(X), rtol=1e-10)
        total = w[n:].sum()
        w[n:] = w[n:] * beta ** (1 - e[n:])
        w[n:] *= total / w[n:].sum()
    np.testing.assert_allclose(alphas, expected, rtol=1e-10)
    for sw in seen:
        np.testing.assert_allclose(sw[:n] / sw[:n].sum(), w0[:n] / w0[:n].sum(), rtol=1e-12)


def test_source_factor_solves_for_the_target_share_by_bisection():
    rng = np.random.default_rng(0)
    w_source, e_source, w_target = rng.uniform(0.1, 1, 50), rng.uniform(0.2, 1, 50), 3.0  # every share reachable
    for share in (0.2, 0.5, 0.9):
        b = source_factor(w_source, e_source, w_target, share)
        assert 0 <= b <= 1
        assert w_target / (w_target + np.sum(w_source * b**e_source)) == pytest.approx(share, rel=1e-9)
    now = w_target / (w_target + w_source.sum())
    assert source_factor(w_source, e_source, w_target, now) == 1.0  # the share is already there: no change
    assert source_factor(w_source, e_source, w_target, now / 2) == 1.0
    assert source_factor(w_source, e_source, w_target, 1.0) == pytest.approx(0.0, abs=1e-15)


def test_two_stage_takes_one_pooled_sample_with_its_domains():
    source, target, test, _ = _shift(n=120, m=12)
    X, y = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    sample_domain = np.concatenate([np.ones(len(source)), -np.ones(len(target))]).astype(int)
    make = lambda: TwoStageTrAdaBoostR2(_tree(), n_steps=3, n_estimators=3, n_folds=2)  # noqa: E731
    pooled = make().fit(X, y, sample_domain=sample_domain)
    np.testing.assert_array_equal(pooled.predict(test.X), make().fit(source, target).predict(test.X))
    assert pooled.score(test.X, test.y) == pytest.approx(pooled.score(test))


class _Constant:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return np.full(len(X), float(self.value))


def test_the_vote_is_rounds_ceil_half_to_n_weighted_by_log_one_over_beta():
    source, target, test, _ = _shift()
    model = TrAdaBoostR2(_tree(), n_estimators=9).fit(source, target)
    model.estimators_ = [_Constant(v) for v in (100, 100, 100, 100, 0, 1, 2, 3, 4)]  # rounds 5..9 vote
    model.betas_ = np.exp(-np.array([9, 9, 9, 9, 4, 1, 1, 1, 1.0]))  # vote weights 4, 1, 1, 1, 1 (total 8)
    # the smallest prediction holding half the weight: 0 holds 4 of 8; with ln(2/beta) it would hold 4.7 of 11.5
    np.testing.assert_array_equal(model.predict(test.X[:5]), np.zeros(5))
    model.estimators_[3] = _Constant(-1)  # round 4 does not vote: with it, -1 would hold 9 of 17
    np.testing.assert_array_equal(model.predict(test.X[:5]), np.zeros(5))


def test_tradaboost_r2_takes_pooled_input_and_keeps_its_state():
    source, target, test, _ = _shift(n=120, m=12)
    X, y = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    sample_domain = np.r_[np.ones(len(source)), -np.ones(len(target))].astype(int)
    pooled = TrAdaBoostR2(_tree(), n_estimators=4).fit(X, y, sample_domain=sample_domain)
    apart = TrAdaBoostR2(_tree(), n_estimators=4).fit(source, target)
    np.testing.assert_array_equal(pooled.predict(test.X), apart.predict(test.X))
    assert apart.beta_ == pytest.approx(1 / (1 + math.sqrt(2 * math.log(len(source)) / 4)))
    assert apart.model_ is apart.estimators_


def test_one_round_is_not_called_a_failure_to_boost():
    source, target, _, _ = _shift()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = TrAdaBoostR2(DecisionTreeRegressor(random_state=0), n_estimators=1).fit(source, target)
    assert model.degenerate_ == [
        "the base learner fits every target example exactly (epsilon_t = 0): target weights never move."
    ]
    assert [str(r.message) for r in record] == [f"TrAdaBoostR2: {model.degenerate_[0]}"]
    assert model.warnings_ == model.degenerate_


class _Scripted(RegressorMixin, BaseEstimator):
    """A base learner whose round-r fit predicts ``script[r]`` for the samples, by their id in column 0."""

    fits: list = []

    def __init__(self, script=()):
        self.script = script

    def fit(self, X, y, sample_weight=None):
        self.values = np.asarray(self.script[len(_Scripted.fits)], dtype=float)
        _Scripted.fits.append(self)
        return self

    def predict(self, X):
        return self.values[np.asarray(X)[:, 0].astype(int)]


def _scripted_pair():
    """Two source and four target samples labelled 0, 1 | 0, 0, 0, 0, each row's id its only feature."""
    ids = np.arange(6, dtype=float)[:, None]
    return Domain(ids[:2], np.array([0.0, 1.0])), Domain(ids[2:], np.zeros(4))


def test_boosting_stops_at_a_target_error_of_exactly_one_half_from_the_second_round_on():
    source, target = _scripted_pair()
    # round 1: one target example missed (eps = 1/4), its weight x 3; round 2: the other three missed,
    # eps = 3 / (3 + 1 + 1 + 1) = 1/2 exactly; the rule is eps >= 1/2, so round 2 is not kept
    script = ([0, 1, 1, 0, 0, 0], [0, 1, 0, 1, 1, 1], [0, 1, 0, 1, 0, 0])
    _Scripted.fits = []
    with pytest.warns(RuntimeWarning) as record:
        model = TrAdaBoostR2(_Scripted(script), n_estimators=3).fit(source, target)
    assert len(model.estimators_) == 1 and model.errors_.tolist() == [0.25]
    assert model.degenerate_ == ["stopped after 1 of 3 rounds: epsilon_t = 0.500 >= 1/2 on the target."]
    assert [str(r.message) for r in record] == [f"TrAdaBoostR2: {model.degenerate_[0]}"]
    # the first round alone at exactly one half: kept, and said so
    _Scripted.fits = []
    with pytest.warns(RuntimeWarning):
        alone = TrAdaBoostR2(_Scripted(([0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0])), n_estimators=2).fit(source, target)
    assert len(alone.estimators_) == 1
    assert alone.degenerate_ == ["epsilon_1 = 0.500 >= 1/2: the first hypothesis is kept alone."]
    np.testing.assert_array_equal(alone.predict(target.X), [1, 1, 0, 0])


def test_adaboost_r2_prime_stops_at_one_half_after_its_first_round():
    source, target = _scripted_pair()
    X, y = np.concatenate([source.X, target.X]), np.r_[0.0, 1.0, np.zeros(4)]
    # average loss over all six examples: round 1, 1 of 6 missed; round 2, 3 of 6 missed with equal weights
    # on the source and the target's renormalised to its mass: exactly one half only if the rule reads >=
    _Scripted.fits = []
    script = ([1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0])
    hypotheses, alphas = adaboost_r2_frozen_source(_Scripted(script), X, y, np.ones(6), 2, 3, "linear", 0)
    assert len(hypotheses) == 1 and alphas.tolist() == pytest.approx([math.log(5.0)])
    _Scripted.fits = []  # a first round at one half or more is kept (with its error clipped), then boosting goes on
    first_bad = ([1, 0, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0])
    hypotheses, alphas = adaboost_r2_frozen_source(_Scripted(first_bad), X, y, np.ones(6), 2, 2, "linear", 0)
    assert len(hypotheses) == 2 and alphas[0] == pytest.approx(math.log(0.501 / 0.499))


def test_every_round_learns_from_the_weights_scaled_to_mean_one():
    from sklearn.linear_model import Ridge

    source, target, _, _ = _shift(n=120, m=12)
    X, y = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    # a ridge learner sees the weights' scale (it trades the fit against alpha): mean one, as in round one
    model = TrAdaBoostR2(Ridge(alpha=5.0), n_estimators=3).fit(source, target)
    for h, w in zip(model.estimators_, model.weights_, strict=False):
        expected = Ridge(alpha=5.0).fit(X, y, sample_weight=w / w.mean())
        np.testing.assert_allclose(h.coef_, expected.coef_, rtol=1e-5)
    # two-stage: the source factor of step 1 comes from a ridge fitted on the step's weights at mean one
    two = TwoStageTrAdaBoostR2(Ridge(alpha=5.0), n_steps=3, n_estimators=2, n_folds=2).fit(source, target)
    n, m = len(source), len(target)
    w = np.ones(n + m) / (n + m)
    e = adjusted_error(np.abs(Ridge(alpha=5.0).fit(X, y, sample_weight=np.ones(n + m)).predict(X) - y), "linear")
    beta_s = source_factor(w[:n], e[:n], w[n:].sum(), m / (n + m) + 0.5 * (1 - m / (n + m)))
    expected = np.concatenate([w[:n] * beta_s ** e[:n], w[n:]])
    np.testing.assert_allclose(two.weights_[1], expected / expected.sum(), rtol=1e-5)
    assert two.weights_.shape == (3, n + m)


def test_a_constant_source_is_a_regression_source_and_score_names_its_arguments():
    source, target, test, _ = _shift(n=60, m=12)
    flat = Domain(source.X, np.full(len(source), 0.3))
    model = TrAdaBoostR2(_tree(), n_estimators=4).fit(flat, target)
    assert np.isfinite(model.predict(test.X)).all()
    bad = test.X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        model.score(bad, test.y)
    with pytest.raises(ValueError, match=r"^score needs targets: pass a labelled Domain or score\(X, y\)\.$"):
        model.score(test.X)


@pytest.mark.parametrize(
    "gap,same",
    [(0.0, True), (1e-9, True), (2.5e-9, False), (5e-6, False), (0.5, False)],
)
def test_rounds_that_predict_alike_within_a_billionth_of_the_label_scale_are_no_boosting(gap, same):
    source, target = _scripted_pair()  # labels within [0, 1]: the tolerance is 1e-9 x (1 + 1)
    # half errors on two target examples keep the error of a repeated round below 1/2 (whole errors would
    # put it at exactly 1/2: AdaBoost's reweighting makes the last hypothesis a coin toss)
    first = np.array([1, 1, 0.5, 0.5, 0, 0])
    second = first.copy()
    second[1] += gap  # a source example: the target's error, and so the rounds kept, stay the same
    _Scripted.fits = []
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = TrAdaBoostR2(_Scripted((first, second)), n_estimators=2).fit(source, target)
    assert len(model.estimators_) == 2
    said = any("predict the same on the training data" in m for m in model.degenerate_)
    assert said == same


def test_an_error_of_one_half_in_the_first_round_is_clipped_below_one_half_and_the_defaults():
    source, target = _scripted_pair()
    _Scripted.fits = []
    with pytest.warns(RuntimeWarning):
        alone = TrAdaBoostR2(_Scripted(([0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0])), n_estimators=2).fit(source, target)
    assert alone.errors_.tolist() == [0.5] and alone.betas_.tolist() == [pytest.approx(0.499 / 0.501)]
    assert TrAdaBoostR2().get_params() == {"estimator": None, "n_estimators": 50, "loss": "linear", "seed": 0}
    assert TwoStageTrAdaBoostR2().get_params() == {
        "estimator": None, "n_steps": 10, "n_estimators": 10, "n_folds": 5, "loss": "linear", "seed": 0,
    }  # fmt: skip


def test_two_stage_takes_one_target_example_per_fold():
    source, target, test, _ = _shift(n=60, m=12)
    few = target.subset(np.arange(3))
    model = TwoStageTrAdaBoostR2(_tree(), n_steps=2, n_estimators=2, n_folds=3).fit(source, few)
    assert model.model_ is model.estimators_ and np.isfinite(model.predict(test.X)).all()
    with pytest.raises(ValueError, match=r"^target has 3 labelled examples but n_folds=4; expected at least one per"):
        TwoStageTrAdaBoostR2(_tree(), n_steps=2, n_folds=4).fit(source, few)


def test_the_base_learner_and_the_input_checks_in_full():
    source, target, test, _ = _shift(n=200, m=20)
    with pytest.raises(
        TypeError,
        match=r"^estimator=LogisticRegression\(\) is a classifier; expected a regressor "
        r"\(use TrAdaBoost for a classifier\).$",
    ):
        TrAdaBoostR2(LogisticRegression()).fit(source, target)
    images = Domain(np.zeros((20, 1, 2, 2)), np.arange(20.0))
    with pytest.raises(
        ValueError, match=r"^TwoStageTrAdaBoostR2 needs feature vectors; got samples of shape \(1, 2, 2\).$"
    ):
        TwoStageTrAdaBoostR2().fit(images, images)
    with pytest.raises(
        NotFittedError, match=r"^this TrAdaBoostR2 is not fitted yet; call fit\(source, target\) first.$"
    ):
        TrAdaBoostR2().predict(test.X)
    model = TrAdaBoostR2(n_estimators=2).fit(source, target)  # the default learner: a tree of depth 3
    assert all(isinstance(h, DecisionTreeRegressor) and h.get_depth() == 3 for h in model.estimators_)
