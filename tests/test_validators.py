"""Label-free validators and selection: formulas against NumPy, mechanisms, and the label firewall."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from transferkit import Domain
from transferkit.selection import ORACLE_NOTE, score_grid, select, split_source
from transferkit.selection.validators import (
    VALIDATORS,
    Evidence,
    density_ratio,
    dev_risk,
    evidence_from_model,
    get_validator,
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
    with pytest.raises(ValueError, match="unknown validator 'devv'"):
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
    source, target = covariate_shift(n=600)
    model = Threshold().fit(source)
    val = source.subset(np.arange(300))
    shuffled = Domain(target.X, np.random.default_rng(0).permutation(target.y), "t")
    for name, v in VALIDATORS.items():
        if not v.uses_target_labels:
            assert validate(name, model, val, target.unlabelled()) == validate(name, model, val, shuffled.unlabelled())


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
