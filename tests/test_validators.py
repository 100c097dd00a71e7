"""Label-free validators and selection: formulas against NumPy, mechanisms, and the label firewall."""

import dataclasses
import re

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from transferkit import Domain
from transferkit.selection import ORACLE_NOTE, score_grid, select, split_source
from transferkit.selection.search import choose
from transferkit.selection.validators import (
    MIN_HELD_OUT,
    VALIDATORS,
    Evidence,
    density_ratio,
    dev_risk,
    evidence_from_model,
    get_validator,
    untrusted,
    validate,
)


class Threshold(BaseEstimator):
    """A 1-d classifier ``1[x > t]`` whose quality a hyperparameter controls: a transparent model to select."""

    def __init__(self, t=0.0, upper=np.inf):
        self.t, self.upper = t, upper

    def fit(self, source, target=None):
        self.classes_ = np.array([0, 1])
        self.n_fit_ = len(source.X)
        return self

    def predict_proba(self, X):
        x = np.asarray(X)[:, 0]
        p1 = ((x > self.t) & (x < self.upper)).astype(float) * 0.9 + 0.05
        return np.stack([1 - p1, p1], 1)

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def covariate_shift(n=2000, shift=1.5, seed=0):
    """x ~ N(0,1) in the source, N(shift,1) in the target; the same labelling y = 1[0 < x < shift]."""
    rng = np.random.default_rng(seed)
    xs, xt = rng.normal(size=(n, 1)), rng.normal(size=(n, 1)) + shift
    label = lambda x: ((x[:, 0] > 0) & (x[:, 0] < shift)).astype(int)  # noqa: E731
    return Domain(xs, label(xs), "s"), Domain(xt, label(xt), "t")


def test_dev_risk_matches_numpy_formula():
    rng = np.random.default_rng(0)
    w, loss = rng.gamma(2.0, 0.5, size=50), rng.exponential(size=50)
    wl = w * loss
    n = len(w)
    cov = np.sum((wl - wl.mean()) * (w - w.mean())) / (n - 1)
    var = np.sum((w - w.mean()) ** 2) / (n - 1)
    eta = -cov / var
    assert dev_risk(w, loss) == pytest.approx(np.mean(wl) + eta * np.mean(w) - eta, rel=1e-12)
    # constant weights: no control variate, the plain weighted risk
    assert dev_risk(np.ones(5), np.arange(5.0)) == pytest.approx(2.0)
    assert dev_risk(np.full(5, 2.0), np.arange(5.0)) == pytest.approx(4.0)


def test_dev_uses_the_seed_and_bounds_the_loss_of_a_zero_probability():
    """The density ratio's folds follow the seed; a true class given probability 0 costs -log(1e-12), not infinity."""
    rng = np.random.default_rng(2)
    fs, ft = rng.normal(size=(150, 2)), rng.normal(size=(120, 2)) + 0.7
    y = (fs[:, 0] > 0).astype(int)
    proba = np.c_[fs[:, 0] <= 0, fs[:, 0] > 0].astype(float) * 0.9 + 0.05
    proba[0] = [1.0, 0.0] if y[0] == 1 else [0.0, 1.0]  # wrong and certain: probability 0 for the true class
    e = Evidence(source_proba=proba, source_y=y, source_features=fs, target_features=ft)
    losses = -np.log(np.clip(proba[np.arange(150), y], 1e-12, None))
    assert losses[0] == pytest.approx(-np.log(1e-12))
    errors = (proba.argmax(1) != y).astype(float)
    for seed in (0, 3):
        expected = -dev_risk(density_ratio(fs, ft, seed=seed), losses)
        assert VALIDATORS["dev"].score(e, seed) == pytest.approx(expected, rel=1e-12)
        t = VALIDATORS["dev-error"].terms(e, seed)  # on the held-out source rows, like DEV
        assert t.domain == "source" and t.score() == pytest.approx(-dev_risk(density_ratio(fs, ft, seed=seed), errors))
    assert VALIDATORS["dev"].score(e, 0) != pytest.approx(VALIDATORS["dev"].score(e, 3), rel=1e-9)


class Sharpened(Threshold):
    """The same decisions as :class:`Threshold`, with the probabilities pushed towards 0.5 or 1."""

    def __init__(self, t=0.0, upper=np.inf, confidence=0.9):
        super().__init__(t, upper)
        self.confidence = confidence

    def predict_proba(self, X):
        p1 = super().predict_proba(X)[:, 1] >= 0.5
        p = np.where(p1, self.confidence, 1 - self.confidence)
        return np.stack([1 - p, p], 1)


def test_dev_error_is_dev_on_the_error_rate_and_blind_to_confidence():
    """NumPy: minus DEV's risk with the 0-1 loss; two models that decide alike score alike, whatever their
    confidence, where the cross-entropy DEV prefers the less confident one when it errs."""
    source, target = covariate_shift(n=600, seed=5)
    val = source.subset(np.arange(300))
    scores = {}
    for confidence in (0.55, 0.99):
        e = evidence_from_model(Sharpened(t=0.3, confidence=confidence).fit(source), val, target.unlabelled())
        w = density_ratio(e.source_features, e.target_features, seed=0)
        errors = (e.source_proba.argmax(1) != e.source_y).astype(float)
        wl = w * errors
        eta = -np.cov(wl, w, ddof=1)[0, 1] / np.var(w, ddof=1)
        expected = -(wl.mean() + eta * w.mean() - eta)
        assert VALIDATORS["dev-error"].score(e, 0) == pytest.approx(expected, rel=1e-12)
        assert -1 <= expected <= 0 and errors.mean() > 0.05  # a model that errs
        scores[confidence] = (VALIDATORS["dev-error"].score(e, 0), VALIDATORS["dev"].score(e, 0))
    assert scores[0.55][0] == pytest.approx(scores[0.99][0], rel=1e-12)
    assert scores[0.55][1] > scores[0.99][1] + 0.1  # cross-entropy: the timid model looks better
    hard = evidence_from_model(Sharpened(t=0.3, confidence=1.0).fit(source), val, target.unlabelled())
    assert untrusted("dev-error", hard, VALIDATORS["dev-error"].score(hard, 0)) is None  # hard outputs are fine
    assert untrusted("dev-error", hard, 0.2).startswith("DEV estimated an impossible error rate (-0.2000)")
    assert untrusted("dev-error", hard, -1.3).startswith("DEV estimated an impossible error rate (1.3000)")
    assert untrusted("dev-error", hard, 0.0) is None and untrusted("dev-error", hard, -1.0) is None  # 0 and 1: possible
    soft = evidence_from_model(Sharpened(t=0.3, confidence=0.9).fit(source), val, target.unlabelled())
    assert "impossible negative risk" in untrusted("dev", soft, 1e-9) and untrusted("dev", soft, 0.0) is None


def test_density_ratio_recovers_gaussian_ratio():
    # N(0,1) vs N(1,1): p_t/p_s = exp(x - 1/2), so log w is linear in x with slope 1
    rng = np.random.default_rng(1)
    xs, xt = rng.normal(size=(3000, 1)), rng.normal(size=(3000, 1)) + 1.0
    w = density_ratio(xs, xt)
    slope, intercept = np.polyfit(xs[:, 0], np.log(w), 1)
    assert slope == pytest.approx(1.0, abs=0.15)
    assert intercept == pytest.approx(-0.5, abs=0.15)
    assert np.mean(w) == pytest.approx(1.0, abs=0.15)


def test_importance_weighting_estimates_target_accuracy_under_covariate_shift():
    source, target = covariate_shift()
    model = Threshold(t=0.0).fit(source)  # right on (0, 1.5) and below 0, wrong above 1.5
    val = source.subset(np.arange(1000))
    true = np.mean(model.predict(target.X) == target.y)
    naive = validate("source", model, val, target.unlabelled())
    iwv = validate("iwv", model, val, target.unlabelled())
    assert iwv == validate("iwv", model, val, target.unlabelled(), seed=0)  # the density ratio's folds, seed 0
    assert iwv != validate("iwv", model, val, target.unlabelled(), seed=1)
    dev = -validate("dev", model, val, target.unlabelled())  # a risk (cross-entropy), lower is better
    assert abs(naive - true) > 0.25  # the shift makes source accuracy misleading
    assert abs(iwv - true) < abs(naive - true) / 2
    # DEV's cross-entropy risk ranks the right model (upper = 1.5) above the wrong one
    right = Threshold(t=0.0, upper=1.5).fit(source)
    assert -validate("dev", right, val, target.unlabelled()) < dev


def test_entropy_is_negative_mean_entropy():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    expected = -np.mean([np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))])
    assert VALIDATORS["entropy"].score(Evidence(target_proba=p), 0) == pytest.approx(expected)


def test_reverse_validation_rewards_target_labels_consistent_with_the_source():
    rng = np.random.default_rng(2)
    fs, ft = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + 0.3
    ys = (fs[:, 0] > 0).astype(int)
    good = np.eye(2)[(ft[:, 0] > 0.3).astype(int)]  # the same rule, shifted with the domain
    bad = good[:, ::-1]  # every target label flipped
    e = lambda p: Evidence(source_y=ys, source_features=fs, target_proba=p, target_features=ft)  # noqa: E731
    assert VALIDATORS["reverse"].score(e(good), 0) > 0.85
    assert VALIDATORS["reverse"].score(e(bad), 0) < 0.15


def test_validators_refuse_to_score_without_their_data():
    with pytest.raises(ValueError, match="'iwv' cannot score without .*target"):
        VALIDATORS["iwv"].score(Evidence(source_proba=np.eye(2), source_y=np.arange(2), source_features=np.eye(2)), 0)
    with pytest.raises(ValueError, match="'oracle' cannot score without labelled target"):
        VALIDATORS["oracle"].score(Evidence(target_proba=np.eye(2)), 0)
    with pytest.raises(ValueError, match="unknown validator 'devv'; known validators: source, iwv, dev, dev-error, "):
        get_validator("devv")
    source, target = covariate_shift(n=200)
    model = Threshold().fit(source)
    with pytest.raises(ValueError, match="label-free; it takes no target_test"):
        validate("dev", model, source, target.unlabelled(), target_test=target)
    with pytest.raises(ValueError, match="source_val has no labels"):
        evidence_from_model(model, source.unlabelled())


def test_select_picks_by_validator_and_refits_on_the_whole_source():
    source, target = covariate_shift(n=1000)
    grid = {"upper": [np.inf, 1.5, 0.5]}
    result = select(Threshold(), grid, source, target.unlabelled(), "iwv")
    assert result.best_params == {"upper": 1.5}  # the rule that is right on the target
    assert not result.uses_target_labels and "note" not in result.to_dict()
    assert result.best_estimator_.n_fit_ == len(source)
    assert result.fitted[0].n_fit_ == 800  # candidates are fitted on the training part (val_fraction 0.2)
    assert len(result.scores["iwv"]) == 3 and result.best_index == int(np.argmax(result.scores["iwv"]))


def test_oracle_is_flagged_and_needs_target_labels():
    source, target = covariate_shift(n=400)
    grid = {"upper": [np.inf, 1.5]}
    with pytest.raises(ValueError, match="reads target labels; pass the labelled target_test"):
        select(Threshold(), grid, source, target.unlabelled(), "oracle")
    with pytest.warns(UserWarning, match="ORACLE"):
        result = select(Threshold(), grid, source, target.unlabelled(), "oracle", target_test=target)
    assert result.uses_target_labels and result.to_dict()["note"] == ORACLE_NOTE
    with pytest.raises(ValueError, match="no validator asked for may read target labels"):
        score_grid(Threshold(), grid, source, target.unlabelled(), ["dev"], target_test=target)


def test_label_free_scores_ignore_target_labels():
    """The labels travel with the target into every label-free validator; shuffling them changes no score."""
    source, target = covariate_shift(n=600)
    model = Threshold().fit(source)
    val = source.subset(np.arange(300))
    shuffled = Domain(target.X, np.random.default_rng(0).permutation(target.y), "t")
    assert not np.array_equal(shuffled.y, target.y)
    assert evidence_from_model(model, val, target).target_y is None  # the firewall: labels never reach evidence
    for name, v in VALIDATORS.items():
        if not v.uses_target_labels:
            assert validate(name, model, val, target) == validate(name, model, val, shuffled)


def test_the_label_firewall_test_can_fail(monkeypatch):
    """Were the evidence to carry target labels to a validator that reads them, the scores above would differ."""
    import transferkit.selection.validators as validators

    source, target = covariate_shift(n=600)
    model, val = Threshold().fit(source), source.subset(np.arange(300))
    shuffled = Domain(target.X, np.random.default_rng(0).permutation(target.y), "t")
    leaky = validators.evidence_from_model

    def leaking(model, source_val=None, target=None, target_test=None):
        e = leaky(model, source_val, target, target_test)
        if target is not None and getattr(target, "y", None) is not None:
            e.target_y = np.searchsorted(model.classes_, target.y)
        return e

    monkeypatch.setattr(validators, "evidence_from_model", leaking)
    monkeypatch.setitem(VALIDATORS, "peek", validators.Validator("peek", validators._oracle, False, "leaks"))
    assert validate("peek", model, val, target) != validate("peek", model, val, shuffled)


def test_iwv_is_the_self_normalised_weighted_accuracy():
    source, target = covariate_shift(n=600, seed=3)
    model, val = Threshold(t=0.5).fit(source), source.subset(np.arange(300))
    e = evidence_from_model(model, val, target.unlabelled())
    w = density_ratio(e.source_features, e.target_features, seed=0)
    correct = (e.source_proba.argmax(1) == e.source_y).astype(float)
    expected = (w * correct).sum() / w.sum()  # Sugiyama et al. 2007, self-normalised
    assert VALIDATORS["iwv"].score(e, 0) == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(correct.mean(), abs=1e-3)  # the weights matter under this shift
    for name in ("iwv", "dev", "dev-error"):  # each says how much its weights rest on: Kong's ESS and the mean weight
        d = VALIDATORS[name].terms(e, 0).diagnostics
        assert d["effective_sample_size"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-9)
        assert d["mean_weight"] == pytest.approx(w.mean(), rel=1e-9)


@pytest.mark.parametrize("folds", [5, 3])
def test_density_ratio_is_cross_fitted(folds):
    """Each source sample's weight comes from a domain classifier that never saw it (NumPy folds by hand)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    fs, ft = rng.normal(size=(60, 2)), rng.normal(size=(40, 2)) + 0.7
    X, d = np.concatenate([fs, ft]), np.r_[np.zeros(60), np.ones(40)]
    p_t = np.empty(len(X))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=4).split(X, d):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(X[train], d[train])
        p_t[test] = clf.predict_proba(X[test])[:, 1]
    p_t = np.clip(p_t[:60], 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(density_ratio(fs, ft, seed=4, folds=folds), (60 / 40) * p_t / (1 - p_t), rtol=1e-10)
    in_sample = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(X, d)
    p_in = np.clip(in_sample.predict_proba(fs)[:, 1], 1e-6, 1 - 1e-6)
    assert not np.allclose(density_ratio(fs, ft, seed=4), (60 / 40) * p_in / (1 - p_in), rtol=1e-3)


def test_hard_means_every_row_one_hot_and_the_default_seed_is_zero():
    from transferkit.selection.validators import is_hard

    assert is_hard(np.eye(3), tol=0.0)  # exactly one-hot counts, with no tolerance at all
    assert not is_hard(np.array([[1.0, 0.0], [0.6, 0.4]]))  # one graded row: not hard
    rng = np.random.default_rng(3)
    fs, ft = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 0.5
    np.testing.assert_array_equal(density_ratio(fs, ft), density_ratio(fs, ft, seed=0))
    assert not np.allclose(density_ratio(fs, ft), density_ratio(fs, ft, seed=1))


def test_density_ratio_needs_a_sample_per_fold_on_each_side():
    rng = np.random.default_rng(0)
    five, four = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    assert density_ratio(five, five + 1).shape == (5,)  # exactly one sample per fold is enough
    for fs, ft in ((four, five), (five, four)):
        with pytest.raises(ValueError, match=r"density_ratio needs at least 5 source and 5 target samples; got"):
            density_ratio(fs, ft)


def test_weights_that_are_all_zero_have_no_effective_sample():
    from transferkit.selection.validators import weight_diagnostics

    assert weight_diagnostics(np.zeros(4)) == {"effective_sample_size": 0.0, "mean_weight": 0.0}


def test_evidence_names_its_arguments_and_refuses_labels_the_model_does_not_know():
    source, target = covariate_shift(n=200, seed=1)
    model = Threshold(t=0.5).fit(source)
    bad = source.X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"source_val\.X contains NaN"):
        evidence_from_model(model, (bad, source.y))
    with pytest.raises(ValueError, match=r"target\.X contains NaN"):
        evidence_from_model(model, None, bad)
    with pytest.raises(ValueError, match=r"target_test\.X contains NaN"):
        evidence_from_model(model, target_test=(bad, source.y))
    with pytest.raises(ValueError, match=r"^target_test has no labels; the oracle scores against target labels\.$"):
        evidence_from_model(model, target_test=source.unlabelled())
    with pytest.raises(ValueError, match=r"^source_val has no labels; the validators need a labelled held-out"):
        evidence_from_model(model, source.unlabelled())
    for label in (7, -3):  # above and below every class the model knows: named, not an index error
        y = source.y.copy()
        y[:6] = label
        with pytest.raises(ValueError, match=rf"^labels \[{label}\] are not among the classes"):
            evidence_from_model(model, (source.X, y))
    many = Domain(source.X[:8], np.arange(10, 18))
    with pytest.raises(ValueError, match=r"labels \[10, 11, 12, 13, 14\] are not"):  # the first five named
        evidence_from_model(model, many)


class Hard(Threshold):
    """The threshold rule with one-hot probabilities, as a nearest-neighbour classifier gives."""

    def predict_proba(self, X):
        return np.round(super().predict_proba(X))


def test_untrusted_scores_are_named():
    soft = Evidence(source_proba=np.full((200, 2), 0.5), source_y=np.zeros(200, int), target_proba=np.eye(2))
    assert untrusted("entropy", soft, 0.0) == (
        "the model's target probabilities are hard (one-hot), so every model's entropy is 0"
    )
    assert untrusted("entropy", Evidence(target_proba=np.array([[0.7, 0.3]])), -0.6) is None
    assert "impossible negative risk (-0.0500)" in untrusted("dev", soft, 0.05)
    assert untrusted("dev", soft, -0.3) is None
    small = Evidence(source_proba=np.full((59, 2), 0.5), source_y=np.zeros(59, int))
    for name in ("source", "iwv", "dev", "dev-error", "reverse"):
        assert f"59 samples (fewer than {MIN_HELD_OUT})" in untrusted(name, small, -0.3)
    assert "nan" in untrusted("source", soft, float("nan"))
    hard = Evidence(source_proba=np.eye(2)[np.arange(200) % 2], source_y=np.zeros(200, int), target_proba=np.eye(2))
    assert untrusted("dev", hard, -0.3) == (
        "the model's probabilities are hard (one-hot), so DEV's cross-entropy losses are 0 or unbounded"
    )
    assert untrusted("dev-error", hard, -0.3) is None  # the error rate needs no probabilities
    exactly = Evidence(source_proba=np.full((MIN_HELD_OUT, 2), 0.5), source_y=np.zeros(MIN_HELD_OUT, int))
    assert untrusted("source", exactly, 0.5) is None  # the smallest held-out sample chosen on


def test_choose_skips_untrusted_scores_and_falls_back_on_ties():
    assert choose([0.9, 0.5, 0.7], ["too small", None, None], fallback=0) == (2, None)
    index, why = choose([0.2, 0.2, 0.2], [None, None, None], fallback=1)
    assert index == 1 and "every candidate scores the same" in why
    index, why = choose([0.9, 0.8], ["hard", "hard"], fallback=0)
    assert index == 0 and "can be trusted (hard)" in why
    assert choose([0.3], [None], fallback=0) == (0, None)  # one candidate: nothing to tie with


def test_entropy_on_hard_predictions_keeps_the_estimators_own_settings_and_warns():
    source, target = covariate_shift(n=1000)
    with pytest.warns(RuntimeWarning, match="'entropy' could not choose: .*hard"):
        result = select(Hard(), {"upper": [1.5, np.inf, 0.5]}, source, target.unlabelled(), "entropy")
    assert result.best_params == {"upper": np.inf}  # Hard()'s own value, not the grid's first
    assert "estimator's own settings" in result.warnings[0] and "warnings" in result.to_dict()
    assert all("hard" in c["untrusted"]["entropy"] for c in result.to_dict()["candidates"])


def test_a_tie_across_every_candidate_is_not_a_choice():
    source, target = covariate_shift(n=1000)
    with pytest.warns(RuntimeWarning, match="every candidate scores the same"):
        result = select(Threshold(), {"upper": [np.inf, 50.0, 60.0]}, source, target.unlabelled(), "source")
    assert result.best_index == 0 and result.warnings  # upper=inf is Threshold()'s own


def test_a_small_held_out_sample_is_not_chosen_on():
    source, target = covariate_shift(n=400)  # 80 held out
    with pytest.warns(RuntimeWarning, match="80 samples"):
        result = select(Threshold(), {"upper": [1.5, np.inf]}, source, target.unlabelled(), "iwv")
    assert result.best_params == {"upper": np.inf}
    big = select(Threshold(), {"upper": [1.5, np.inf]}, *covariate_shift(n=1000)[:1], target.unlabelled(), "iwv")
    assert big.best_params == {"upper": 1.5} and not big.warnings


def test_split_source_errors_name_the_argument():
    source, _ = covariate_shift(n=50)
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        split_source(source, 1.5, 0)
    tiny = Domain(np.zeros((3, 1)), np.array([0, 1, 1]), "s")
    with pytest.raises(ValueError, match="too few to hold out"):
        split_source(tiny, 0.2, 0)
    with pytest.raises(ValueError, match="grid names 'lam'"):
        score_grid(Threshold(), {"lam": [1]}, source, source.unlabelled(), ["source"])


class Scripted:
    """A stand-in validator: fixed scores per epoch, and a record of what it was shown."""

    def __init__(self, scores):
        self.scores, self.seen = list(scores), []

    def __call__(self, evidence, seed):
        self.seen.append(evidence.target_proba.copy())
        return self.scores[len(self.seen) - 1]


def _blobs():
    from transferkit.datasets import make_blobs_shift

    task = make_blobs_shift(n_source=300, n_target=200, seed=0)
    return task.source, task.target.unlabelled()


def test_select_epoch_returns_the_weights_of_the_best_epoch(monkeypatch, tmp_path):
    from transferkit.methods import DANN
    from transferkit.selection.validators import Validator

    scripted = Scripted([0.3, 0.9, 0.1])
    monkeypatch.setitem(VALIDATORS, "scripted", Validator("scripted", scripted, False, "test"))
    source, target = _blobs()
    params = dict(epochs=3, select_epoch="scripted", checkpoint_dir=str(tmp_path), seed=1)
    model = DANN(**params).fit(source, target)
    assert model.selected_epoch_ == 2
    assert [h["select_scripted"] for h in model.history_] == [0.3, 0.9, 0.1]
    proba = model.predict_proba(target.X)
    np.testing.assert_allclose(proba, scripted.seen[1], atol=1e-6)  # epoch 2's network, not the last one
    assert not np.allclose(proba, scripted.seen[2], atol=1e-4)
    # the best weights travel in the checkpoint: a rerun resumes the finished run and returns the same epoch
    again = DANN(**params).fit(source, target)
    assert again.selected_epoch_ == 2 and len(scripted.seen) == 3  # nothing retrained, nothing rescored
    np.testing.assert_allclose(again.predict_proba(target.X), proba, atol=1e-6)


def test_select_epoch_refuses_the_oracle_and_a_missing_target():
    from transferkit.methods import DANN

    source, target = _blobs()
    with pytest.raises(ValueError, match="select_epoch='oracle' reads target labels"):
        DANN(epochs=1, select_epoch="oracle").fit(source, target)
    with pytest.raises(ValueError, match="unknown validator 'dve'"):
        DANN(epochs=1, select_epoch="dve").fit(source, target)


def test_select_epoch_on_a_small_held_out_sample_keeps_the_last_epoch_and_warns():
    from transferkit.methods import DANN

    source, target = _blobs()  # 300 source samples: 60 held out
    with pytest.warns(RuntimeWarning, match="select_epoch='dev' could not choose: .*60 samples"):
        model = DANN(epochs=3, select_epoch="dev", seed=1).fit(source, target)
    assert model.selected_epoch_ == 3 and "kept the last epoch (3)" in model.warnings_[-1]
    plain = DANN(epochs=3, seed=1).fit(*_blobs_train(source), target)
    np.testing.assert_allclose(model.predict_proba(target.X), plain.predict_proba(target.X), atol=1e-6)


def _blobs_train(source):
    """The source part DANN(select_epoch=...) trains on (its held-out fifth split off as in fit)."""
    return split_source(source, 0.2, 1)[:1]


def test_select_epoch_never_keeps_an_impossible_dev_score(monkeypatch):
    """DEV's risk went negative at epoch 2 (a score above 0); the best trusted epoch is kept instead."""
    from transferkit.datasets import make_blobs_shift
    from transferkit.methods import DANN
    from transferkit.selection.validators import Validator

    scripted = Scripted([-0.5, 0.2, -0.3])
    monkeypatch.setitem(VALIDATORS, "dev", Validator("dev", scripted, False, "scripted DEV"))
    task = make_blobs_shift(n_source=700, n_target=200, seed=0)  # 140 held out
    model = DANN(epochs=3, select_epoch="dev", seed=1).fit(task.source, task.target.unlabelled())
    assert model.selected_epoch_ == 3
    np.testing.assert_allclose(model.predict_proba(task.target.X), scripted.seen[2], atol=1e-6)


@pytest.mark.parametrize(
    "source_y, target_X, grid, message",
    [
        (np.repeat([0, 1], 150), np.empty((0, 1)), {"lr": [1e-3]}, r"target.X is empty \(shape \(0, 1\)\)"),
        (np.zeros(300, int), None, {"lr": [1e-3]}, r"source.y has one class only"),
        (np.repeat([0, 1], 150), None, {"lrr": [1e-3]}, r"grid names 'lrr', not a hyperparameter of SourceOnly"),
    ],
)
def test_select_refuses_bad_input_by_name(source_y, target_X, grid, message):
    from transferkit.methods import SourceOnly

    X = np.random.default_rng(0).normal(size=(300, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        select(SourceOnly(epochs=1), grid, Domain(X, source_y), X if target_X is None else target_X, "source")


def test_the_source_validator_is_the_held_out_accuracy():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    e = Evidence(source_proba=proba, source_y=np.array([0, 1, 1, 1]))
    assert VALIDATORS["source"].score(e, 0) == pytest.approx(3 / 4)  # argmax right on rows 0, 1 and 3


def test_reverse_validation_of_a_collapsed_model_is_the_share_of_its_one_class():
    """Every target sample predicted as class 1: the reverse classifier is the constant 1."""
    rng = np.random.default_rng(0)
    e = Evidence(
        source_y=np.array([1, 0, 1, 1, 0]),
        source_features=rng.normal(size=(5, 2)),
        target_proba=np.tile([0.2, 0.8], (6, 1)),
        target_features=rng.normal(size=(6, 2)),
    )
    assert VALIDATORS["reverse"].score(e, 0) == pytest.approx(3 / 5)


def test_validate_with_the_oracle_scores_the_labelled_target():
    source, target = covariate_shift(n=400)
    model = Threshold().fit(source)
    expected = np.mean(model.predict(target.X) == target.y)
    assert validate("oracle", model, target_test=target) == pytest.approx(expected)


NEEDS = {
    "source": ("source_proba", "source_y"),
    "iwv": ("source_proba", "source_y", "source_features", "target_features"),
    "dev": ("source_proba", "source_y", "source_features", "target_features"),
    "dev-error": ("source_proba", "source_y", "source_features", "target_features"),
    "entropy": ("target_proba",),
    "reverse": ("source_y", "source_features", "target_proba", "target_features"),
    "oracle": ("target_proba", "target_y"),
}


@pytest.mark.parametrize("name, missing", [(n, f) for n, fields in NEEDS.items() for f in fields])
def test_each_validator_names_the_evidence_it_lacks(name, missing):
    rng = np.random.default_rng(0)
    full = Evidence(
        source_proba=np.tile([0.7, 0.3], (20, 1)),
        source_y=np.arange(20) % 2,
        source_features=rng.normal(size=(20, 2)),
        target_proba=np.tile([0.4, 0.6], (20, 1)),
        target_features=rng.normal(size=(20, 2)),
        target_y=np.arange(20) % 2,
    )
    setattr(full, missing, None)
    with pytest.raises(ValueError, match=rf"validator '{name}' cannot score without"):
        VALIDATORS[name].score(full, 0)
    what = {
        "source_proba": "predictions on a labelled held-out source sample (source_val)",
        "source_y": "the labels of the held-out source sample (source_val)",
        "source_features": "features of the held-out source sample (source_val)",
        "target_proba": "predictions on the unlabelled target sample (target)",
        "target_features": "features of the unlabelled target sample (target)",
        "target_y": "labelled target data (target_test): the oracle reads target labels",
    }
    with pytest.raises(ValueError, match=rf"cannot score without {re.escape(what[missing])}\.$"):
        VALIDATORS[name].score(full, 0)


class _Scaled(BaseEstimator):
    """A fixed model: class probabilities from the first input column; ``transform`` doubles the inputs."""

    classes_ = np.array([10, 20])

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-np.asarray(X)[:, 0]))
        return np.c_[1 - p, p]


class _Learnt(_Scaled):
    def transform(self, X):
        return 2.0 * np.asarray(X)


def test_evidence_uses_the_models_features_where_it_has_them_and_the_inputs_otherwise():
    from transferkit.selection.validators import evidence_from_model

    X = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    source_val = Domain(X, np.array([10, 20, 20]))
    plain = evidence_from_model(_Scaled(), source_val, Domain(X))
    np.testing.assert_array_equal(plain.source_features, X.reshape(3, 4))  # flattened, one row per sample
    np.testing.assert_array_equal(plain.target_features, X.reshape(3, 4))
    np.testing.assert_array_equal(plain.source_y, [0, 1, 1])  # labels as column indices of the probabilities
    learnt = evidence_from_model(_Learnt(), source_val, Domain(X))
    np.testing.assert_array_equal(learnt.source_features, 2.0 * X)
    with pytest.raises(ValueError, match=r"labels \[15\] are not among the classes the model was fitted on"):
        evidence_from_model(_Scaled(), Domain(X, np.array([10, 15, 20])))
    with pytest.raises(ValueError, match="source_val has no labels; the validators need a labelled held-out"):
        evidence_from_model(_Scaled(), Domain(X))
    with pytest.raises(ValueError, match="target_test has no labels; the oracle scores against target labels"):
        evidence_from_model(_Scaled(), target_test=Domain(X))
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    for kwargs, name in (({"source_val": (bad, np.array([10, 20, 20]))}, "source_val"), ({"target": bad}, "target"),
                         ({"target_test": (bad, np.array([10, 20, 20]))}, "target_test")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            evidence_from_model(_Scaled(), **kwargs)


def test_every_validator_resamples_the_rows_it_scores():
    from transferkit.selection.validators import VALIDATORS

    rng = np.random.default_rng(0)
    e = Evidence(
        source_proba=rng.dirichlet(np.ones(2), 120),
        source_y=rng.integers(0, 2, 120),
        source_features=rng.normal(size=(120, 3)),
        target_proba=rng.dirichlet(np.ones(2), 90),
        target_features=rng.normal(0.5, 1, size=(90, 3)),
    )
    for name in ("source", "iwv", "dev", "entropy", "reverse"):
        t = VALIDATORS[name].terms(e, 0)
        assert (t.domain, t.n) == (("target", 90) if name == "entropy" else ("source", 120)), name


def test_reverse_validation_standardises_the_features_and_iwv_uses_the_seed():
    from sklearn.linear_model import LogisticRegression

    from transferkit.selection.validators import VALIDATORS, density_ratio

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    # the informative feature on a tiny scale: without standardising, the regularised classifier cannot use it
    fs = np.c_[1e-4 * (rng.normal(size=200) + 2 * y), rng.normal(size=200)]
    ft = np.c_[1e-4 * (rng.normal(size=150) + 1), rng.normal(size=150)]
    pt = np.c_[ft[:, 0] < 1e-4, ft[:, 0] >= 1e-4].astype(float) * 0.8 + 0.1
    e = Evidence(source_y=y, source_features=fs, target_proba=pt, target_features=ft,
                 source_proba=np.c_[fs[:, 0] < 1e-4, fs[:, 0] >= 1e-4].astype(float) * 0.8 + 0.1)  # fmt: skip
    z = lambda A: (A - ft.mean(0)) / ft.std(0)  # noqa: E731 - the reverse classifier standardises on the target
    reverse = LogisticRegression(max_iter=1000).fit(z(ft), pt.argmax(1))
    assert VALIDATORS["reverse"].score(e, 0) == pytest.approx(np.mean(reverse.predict(z(fs)) == y))
    assert VALIDATORS["reverse"].score(e, 0) > 0.75  # the tiny feature is used
    w = density_ratio(fs, ft, seed=3)
    correct = (e.source_proba.argmax(1) == y).astype(float)
    assert VALIDATORS["iwv"].score(e, 3) == pytest.approx(np.sum(w * correct) / np.sum(w))
    assert not np.allclose(w, density_ratio(fs, ft, seed=0))  # the seed matters: the folds are shuffled by it


def test_density_ratio_bounds_the_domain_probability_away_from_0_and_1():
    rng = np.random.default_rng(0)
    source = np.r_[rng.normal(-100, 1, (40, 1)), [[-1000.0], [1000.0]]]  # two far outliers, one on each side
    w = density_ratio(source, rng.normal(100, 1, (40, 1)))
    p = np.array([1e-6, 1 - 1e-6])  # the classifier's probabilities there round to 0 and 1; clipped instead
    np.testing.assert_allclose(w[-2:], 42 / 40 * p / (1 - p), rtol=1e-9)
    assert np.all((w[:40] > w[-2]) & (w[:40] < w[-1]))


def test_reverse_validations_classifier_is_regularised_with_c_1():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    ft = rng.normal(size=(12, 2))
    pseudo = (ft[:, 0] + rng.normal(size=12) > 0.8).astype(int)  # two target samples in class 1: C matters
    fs, y = rng.normal(size=(30, 2)), rng.integers(0, 2, 30)
    e = Evidence(source_y=y, source_features=fs, target_proba=np.eye(2)[pseudo] * 0.8 + 0.1, target_features=ft)
    z = lambda A: (A - ft.mean(0)) / ft.std(0)  # noqa: E731
    agrees = {C: np.mean(LogisticRegression(C=C).fit(z(ft), pseudo).predict(z(fs)) == y) for C in (1.0, 2.0)}
    assert agrees[1.0] != agrees[2.0]
    assert VALIDATORS["reverse"].score(e, 0) == pytest.approx(agrees[1.0])


def test_the_importance_weighted_validators_share_one_density_ratio_per_features_and_seed(monkeypatch):
    import transferkit.selection.validators as validators

    rng = np.random.default_rng(2)
    e = Evidence(
        source_proba=rng.dirichlet(np.ones(2), 120),
        source_y=rng.integers(0, 2, 120),
        source_features=rng.normal(size=(120, 3)),
        target_features=rng.normal(0.5, 1, size=(90, 3)),
    )
    expected = {n: VALIDATORS[n].score(dataclasses.replace(e), 1) for n in ("iwv", "dev", "dev-error")}
    calls = []
    monkeypatch.setattr(validators, "density_ratio", lambda *a: calls.append(a[2]) or density_ratio(*a))
    assert {n: VALIDATORS[n].score(e, 1) for n in expected} == expected  # the same scores as when computed apart
    assert calls == [1]  # one domain classifier for the three validators
    VALIDATORS["iwv"].score(e, 2)
    e.target_features = e.target_features + 1.0  # other features: the shared ratio no longer describes them
    diagnostics = VALIDATORS["dev"].terms(e, 2).diagnostics
    assert calls == [1, 2, 2]
    assert diagnostics == validators.weight_diagnostics(density_ratio(e.source_features, e.target_features, 2))
    with pytest.raises(ValueError, match="read-only"):
        e.importance_weights(2)[0] = 0.0  # one validator cannot change the weights the next one reads
