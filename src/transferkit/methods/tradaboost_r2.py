r"""TrAdaBoost.R2 and two-stage TrAdaBoost.R2: boosting for regression transfer.

Pardoe & Stone, "Boosting for Regression Transfer", ICML 2010 (Algorithms 3 and 4), built on
Drucker's AdaBoost.R2 ("Improving Regressors using Boosting Techniques", ICML 1997).

**TrAdaBoost.R2** is TrAdaBoost (Dai et al. 2007) with AdaBoost.R2's *adjusted error*. With
:math:`D_t = \max_i |y_i - h_t(x_i)|` over all :math:`n + m` training examples,

.. math::

    e_i^t = \frac{|y_i - h_t(x_i)|}{D_t}\ (\text{linear}), \quad
    \Big(\frac{|y_i - h_t(x_i)|}{D_t}\Big)^2\ (\text{square}), \quad
    1 - \exp\Big(-\frac{|y_i - h_t(x_i)|}{D_t}\Big)\ (\text{exponential}),

:math:`\epsilon_t = \sum_{i>n} w_i^t e_i^t / \sum_{i>n} w_i^t` on the target part,
:math:`\beta_t = \epsilon_t / (1 - \epsilon_t)`, :math:`\beta = 1/(1 + \sqrt{2 \ln n / N})`, and

.. math:: w_i^{t+1} = w_i^t \beta^{e_i^t}\ (i \le n), \qquad w_i^{t+1} = w_i^t \beta_t^{-e_i^t}\ (i > n).

Boosting stops when :math:`\epsilon_t \ge 1/2`, as in AdaBoost.R2. The prediction is the weighted
median of :math:`h_t(x)`, :math:`t = \lceil N/2 \rceil .. N`, with weights :math:`\ln(1/\beta_t)`:

.. math::

    h_f(x) = \inf\Big\{y : \sum_{t:\, h_t(x) \le y} \ln\tfrac{1}{\beta_t}
        \ge \tfrac12 \sum_t \ln\tfrac{1}{\beta_t}\Big\}.

**Two-stage TrAdaBoost.R2**, the paper's best method, separates the two updates. Step
:math:`s = 1..S` fits AdaBoost.R2' (AdaBoost.R2 that re-weights the target examples only, the
source weights frozen) and scores it by F-fold cross-validation on the target (the source stays
in every training fold); then one base learner's adjusted errors lower the source weights,
:math:`w_i \leftarrow w_i \beta_s^{e_i}`, with :math:`\beta_s` found by bisection so the target
carries :math:`\frac{m}{n+m} + \frac{s}{S-1}(1 - \frac{m}{n+m})` of the total weight. The model of
the step with the lowest cross-validated error is returned.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._param_validation import Interval, StrOptions

from transferkit.data import as_domain
from transferkit.methods.base import Setting, TransferMethod, shared_constraints, store_params
from transferkit.methods.tradaboost import EPS_MIN, check_base_learner, fit_round

LOSSES = ("linear", "square", "exponential")


def adjusted_error(residual: np.ndarray, loss: str) -> np.ndarray:
    r"""AdaBoost.R2's adjusted error :math:`e_i \in [0, 1]` of absolute residuals (Drucker 1997)."""
    D = residual.max()
    if D <= 0:
        return np.zeros_like(residual)
    r = residual / D
    return {"linear": r, "square": r**2, "exponential": 1.0 - np.exp(-r)}[loss]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Per row of ``values`` (n, T): the smallest :math:`v` whose weight below or at it is >= half the total."""
    order = np.argsort(values, axis=1, kind="stable")
    cumulative = np.cumsum(weights[order], axis=1)
    first = np.argmax(cumulative >= 0.5 * cumulative[:, -1:], axis=1)
    return np.take_along_axis(values, order, axis=1)[np.arange(len(values)), first]


class _BoostedRegressor(TransferMethod):
    """Shared checks and the regression contract (``score`` is R², as for scikit-learn regressors)."""

    task = "regression"  # not a classifier: kept out of REGISTRY, whose contract test assumes classes
    setting = Setting(source_labels=True, target_labels=True)

    def _check_common(self, source, target, sample_domain=None):
        source, target = self._check_fit_data(source, target, sample_domain)
        if len(source.feature_shape) != 1:
            name, shape = type(self).__name__, source.feature_shape
            raise ValueError(f"{name} needs feature vectors; got samples of shape {shape}.")
        base = check_base_learner(self.estimator, DecisionTreeRegressor(max_depth=3), role="regressor")
        X = np.concatenate([source.X, target.X]).astype(np.float64)
        y = np.concatenate([source.y, target.y]).astype(np.float64)
        self.input_shape_ = source.feature_shape
        return base, X, y, len(source)

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(source, target) first.")

    def _warn(self, found: list[str]) -> None:
        self.degenerate_ = found
        self.warnings_ = list(found)
        for message in found:
            warnings.warn(f"{type(self).__name__}: {message}", RuntimeWarning, stacklevel=3)

    def score(self, X, y=None) -> float:
        """R² on a labelled :class:`Domain` (or on ``X, y``)."""
        domain = as_domain((X, y) if y is not None else X, "domain")  # its arrays named X and y
        if domain.y is None:
            raise ValueError("score needs targets: pass a labelled Domain or score(X, y).")
        return float(r2_score(domain.y, self.predict(domain.X)))


class TrAdaBoostR2(_BoostedRegressor):
    """TrAdaBoost.R2 with any scikit-learn regressor whose ``fit`` accepts ``sample_weight``.

    Parameters
    ----------
    estimator : scikit-learn regressor, optional
        The base learner, cloned every round; default a depth-3 regression tree.
    n_estimators : int
        Boosting rounds :math:`N`.
    loss : {"linear", "square", "exponential"}
        AdaBoost.R2's adjusted error.
    seed : int
        Passed to the base learner's ``random_state`` when it has one.

    Attributes
    ----------
    estimators_, errors_, betas_ : the round hypotheses, :math:`\\epsilon_t` and :math:`\\beta_t` (rounds
        actually kept; boosting stops at :math:`\\epsilon_t \\ge 1/2`).
    weights_ : ndarray of shape (rounds + 1, n + m)
        The weight vector before each round and after the last.
    degenerate_ : list of str
        Why boosting did not do its job, if it did not; each is also a RuntimeWarning.
    """

    name = "tradaboost-r2"
    description = "TrAdaBoost for regression: adjusted errors, weighted-median prediction"
    paper = "Pardoe & Stone, Boosting for Regression Transfer, ICML 2010"

    _parameter_constraints = {
        **shared_constraints("estimator", "n_estimators", "seed"),
        "loss": [StrOptions(set(LOSSES))],
    }

    def __init__(self, estimator=None, n_estimators: int = 50, loss: str = "linear", seed: int = 0):
        store_params(self, locals())

    def fit(self, source, target=None, sample_domain=None):
        """Fit on labelled ``source`` and a few labelled ``target`` examples (real-valued ``y``)."""
        base, X, y, n = self._check_common(source, target, sample_domain)
        N = self.n_estimators
        beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(n) / N))
        w = np.ones(len(y))
        self.estimators_, errors, betas, weights = [], [], [], [w.copy()]
        found, first, same = [], None, True
        for t in range(N):
            h = fit_round(base, X, y, w / w.mean(), self.seed)
            pred = h.predict(X)
            e = adjusted_error(np.abs(pred - y), self.loss)
            eps = float(np.sum(w[n:] * e[n:]) / np.sum(w[n:]))
            if eps >= 0.5 and t > 0:  # AdaBoost.R2's stopping rule; the first hypothesis is kept alone
                found.append(f"stopped after {t} of {N} rounds: epsilon_t = {eps:.3f} >= 1/2 on the target.")
                break
            eps_c = min(max(eps, EPS_MIN), 0.499)
            beta_t = eps_c / (1.0 - eps_c)
            w = np.concatenate([w[:n] * beta ** e[:n], w[n:] * beta_t ** (-e[n:])])
            first = pred if first is None else first
            same = same and np.allclose(pred, first, rtol=0.0, atol=1e-9 * (1 + np.abs(y).max()))
            self.estimators_.append(h)
            errors.append(eps)
            betas.append(beta_t)
            weights.append(w.copy())
            if eps >= 0.5:
                found.append(f"epsilon_1 = {eps:.3f} >= 1/2: the first hypothesis is kept alone.")
                break
        self.errors_, self.betas_, self.weights_ = np.array(errors), np.array(betas), np.array(weights)
        self.beta_ = beta
        kept = len(self.estimators_)
        if kept > 1 and same:
            found.append(f"all {kept} round hypotheses predict the same on the training data: no boosting happened.")
        if np.all(self.errors_ == 0):
            found.append(
                "the base learner fits every target example exactly (epsilon_t = 0): target weights never move."
            )
        self._warn(found)
        self.model_ = self.estimators_
        return self

    def predict(self, X) -> np.ndarray:
        """Weighted median of the second half of the rounds, weights :math:`\\ln(1/\\beta_t)`."""
        X = self._check_X(X).astype(np.float64)
        start = math.ceil(len(self.estimators_) / 2) - 1
        values = np.stack([h.predict(X) for h in self.estimators_[start:]], axis=1)
        return weighted_median(values, np.log(1.0 / self.betas_[start:]))


def adaboost_r2_frozen_source(base, X, y, w, n, N, loss, seed):
    """AdaBoost.R2' of Pardoe & Stone: AdaBoost.R2 that re-weights only the target part (``i >= n``).

    Returns the hypotheses and their vote weights :math:`\\ln(1/\\beta_k)` (all rounds vote).
    """
    w = w.copy()
    hypotheses, alphas = [], []
    for k in range(N):
        h = fit_round(base, X, y, w / w.mean(), seed)
        e = adjusted_error(np.abs(h.predict(X) - y), loss)
        eps = float(np.sum(w * e) / np.sum(w))  # AdaBoost.R2's average loss, over all examples
        if eps >= 0.5 and k > 0:
            break
        eps = min(max(eps, EPS_MIN), 0.499)
        beta_k = eps / (1.0 - eps)
        hypotheses.append(h)
        alphas.append(math.log(1.0 / beta_k))
        target_mass = w[n:].sum()
        w[n:] *= beta_k ** (1.0 - e[n:])  # AdaBoost.R2: well-fitted examples lose weight ...
        w[n:] *= target_mass / w[n:].sum()  # ... and the source share stays frozen
    return hypotheses, np.array(alphas)


def source_factor(w_source, e_source, w_target, share: float) -> float:
    """:math:`\\beta_s \\in [0, 1]` with :math:`W_t / (W_t + \\sum_i w_i \\beta_s^{e_i}) = ` ``share`` (bisection)."""
    if share <= w_target / (w_target + w_source.sum()):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):  # the target share falls as beta_s grows
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if w_target / (w_target + np.sum(w_source * mid**e_source)) > share else (lo, mid)
    return lo


class TwoStageTrAdaBoostR2(_BoostedRegressor):
    """Two-stage TrAdaBoost.R2 (Pardoe & Stone 2010, Algorithm 4), the paper's best method.

    Parameters
    ----------
    estimator : scikit-learn regressor, optional
        The base learner; default a depth-3 regression tree.
    n_steps : int
        Steps :math:`S` of the outer (source-weight) stage.
    n_estimators : int
        Boosting rounds :math:`N` of each AdaBoost.R2' model.
    n_folds : int
        Cross-validation folds :math:`F` over the target examples.
    loss : {"linear", "square", "exponential"}
        AdaBoost.R2's adjusted error.
    seed : int
        Base learners' ``random_state`` and the fold shuffle.

    Attributes
    ----------
    cv_errors_ : ndarray of shape (n_steps,)
        Cross-validated mean squared error of each step's model on the target.
    best_step_ : int
        The step whose model predicts (0-based).
    estimators_, alphas_ : the chosen AdaBoost.R2' model: hypotheses and vote weights.
    weights_ : ndarray of shape (n_steps, n + m)
        The weight vector at each step.
    """

    name = "tradaboost-r2-two-stage"
    description = "two-stage TrAdaBoost.R2: fade the source step by step, keep the best step by target CV"
    paper = "Pardoe & Stone, Boosting for Regression Transfer, ICML 2010"

    _parameter_constraints = {
        **TrAdaBoostR2._parameter_constraints,
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "n_steps": [Interval(Integral, 2, None, closed="left")],  # the schedule's last step gives the target all
    }

    def __init__(
        self,
        estimator=None,
        n_steps: int = 10,
        n_estimators: int = 10,
        n_folds: int = 5,
        loss: str = "linear",
        seed: int = 0,
    ):
        store_params(self, locals())

    def fit(self, source, target=None, sample_domain=None):
        """Fit on labelled ``source`` and a few labelled ``target`` examples (real-valued ``y``)."""
        base, X, y, n = self._check_common(source, target, sample_domain)
        S, F, m = self.n_steps, self.n_folds, len(y) - n
        if m < F:
            raise ValueError(f"target has {m} labelled examples but n_folds={F}; expected at least one per fold.")
        folds = list(KFold(F, shuffle=True, random_state=self.seed).split(np.arange(m)))
        w = np.ones(n + m) / (n + m)
        models, cv_errors, weights = [], [], []
        for s in range(S):
            weights.append(w.copy())
            fold_mse = []
            for train, test in folds:  # the source is in every training fold
                keep = np.concatenate([np.arange(n), n + train])
                hyps, alphas = self._stage_one(base, X[keep], y[keep], w[keep], n)
                pred = weighted_median(np.stack([h.predict(X[n + test]) for h in hyps], 1), alphas)
                fold_mse.append(np.mean((pred - y[n + test]) ** 2))
            cv_errors.append(float(np.mean(fold_mse)))
            models.append(self._stage_one(base, X, y, w, n))
            if s == S - 1:  # the last step's weights would not be used
                break
            h = fit_round(base, X, y, w / w.mean(), self.seed)
            e = adjusted_error(np.abs(h.predict(X) - y), self.loss)
            share = m / (n + m) + (s + 1) / (S - 1) * (1 - m / (n + m))  # 1 for the last step: the target alone
            beta_s = source_factor(w[:n], e[:n], w[n:].sum(), share)
            w = np.concatenate([w[:n] * beta_s ** e[:n], w[n:]])
            w /= w.sum()
        self.cv_errors_, self.weights_ = np.array(cv_errors), np.array(weights)
        self.best_step_ = int(np.argmin(self.cv_errors_))
        self.estimators_, self.alphas_ = models[self.best_step_]
        self._warn([])  # the chosen step is reported by best_step_: S - 1 means the source did not help
        self.model_ = self.estimators_
        return self

    def _stage_one(self, base, X, y, w, n):
        return adaboost_r2_frozen_source(base, X, y, w, n, self.n_estimators, self.loss, self.seed)

    def predict(self, X) -> np.ndarray:
        """The chosen AdaBoost.R2' model: weighted median of all its rounds."""
        X = self._check_X(X).astype(np.float64)
        return weighted_median(np.stack([h.predict(X) for h in self.estimators_], axis=1), self.alphas_)
