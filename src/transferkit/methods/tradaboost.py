r"""TrAdaBoost: boosting that learns which source examples to trust.

Dai, Yang, Xue & Yu, "Boosting for Transfer Learning", ICML 2007, Algorithm 1 (two classes);
more than two classes with the multi-class weight of SAMME (Zhu, Zou, Rosset & Hastie,
"Multi-class AdaBoost", Statistics and Its Interface 2(3), 2009).

Labelled *diff-distribution* data :math:`T_a` (the source, :math:`n` examples) and a few labelled
*same-distribution* data :math:`T_b` (the target, :math:`m` examples) are pooled. In round
:math:`t` the base learner is trained on :math:`p^t = w^t / \sum_i w^t_i`; its error is measured
on the target part only,

.. math:: \epsilon_t = \frac{\sum_{i=n+1}^{n+m} w_i^t \ell_i^t}{\sum_{i=n+1}^{n+m} w_i^t}, \qquad
    \ell_i^t = |h_t(x_i) - c(x_i)| \ (\text{two classes}), \quad
    \ell_i^t = [h_t(x_i) \ne c(x_i)] \ (K \text{ classes}),

and with :math:`\beta_t = \epsilon_t / ((1 - \epsilon_t)(K - 1))`,
:math:`\beta = 1/(1 + \sqrt{2 \ln n / N})` the weights move in opposite directions:

.. math::

    w_i^{t+1} = w_i^t\, \beta^{\ell_i^t} \ (\text{source: misfits fade}), \qquad
    w_i^{t+1} = w_i^t\, \beta_t^{-\ell_i^t} \ (\text{target: misfits grow}).

The final hypothesis is the weighted vote of the second half of the rounds,

.. math::

    h_f(x) = \arg\max_k \sum_{t=\lceil N/2 \rceil}^{N} \ln(1/\beta_t)\, [h_t(x) = k],

which for :math:`K = 2` is the paper's rule
:math:`h_f(x) = 1 \iff \prod_t \beta_t^{-h_t(x)} \ge \prod_t \beta_t^{-1/2}`: the :math:`\ln(K-1)`
term of SAMME vanishes, so two classes give Algorithm 1 exactly. The multi-class form (SAMME's
:math:`\alpha_t = \ln\frac{1-\epsilon_t}{\epsilon_t} + \ln(K-1)` as the target update and the
vote weight, the paper's Hedge update on the source) is this library's combination of the two
references, not a published algorithm of its own. :math:`\epsilon_t < (K-1)/K` is required
(:math:`< 1/2` for two classes); a round with a larger error is clipped just below it.

``hypothesis="probability"`` lets :math:`h_t` output class probabilities :math:`\hat p_t(k \mid x)`
(AdaBoost's hypotheses :math:`h_t: X \to [0, 1]`, Freund & Schapire 1997), with
:math:`\ell_i^t = 1 - \hat p_t(c(x_i) \mid x_i)` and the vote
:math:`\sum_t \ln(1/\beta_t)\, \hat p_t(k \mid x)`. ADAPT uses such soft errors because with hard
labels the first round often fits the few target examples perfectly and the target weights never
move; that case is reported here as degeneration (``degenerate_``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import has_fit_parameter

from transferkit.methods.base import Setting, TransferMethod, shared_constraints, store_params

EPS_MIN = 1e-10  # eps_t = 0 would give beta_t = 0 and an infinite vote


def check_base_learner(estimator, default, role: str = "classifier", proba: bool = False):
    """The base learner to clone each round, refused with a clear error if it cannot be boosted."""
    est = default if estimator is None else estimator
    if not (hasattr(est, "fit") and hasattr(est, "predict") and hasattr(est, "get_params")):
        raise TypeError(f"estimator={est!r} is not a scikit-learn {role} (fit, predict, get_params).")
    kind, other = ("regressor", "TrAdaBoostR2") if role == "classifier" else ("classifier", "TrAdaBoost")
    if (is_regressor if kind == "regressor" else is_classifier)(est):
        raise TypeError(f"estimator={est!r} is a {kind}; expected a {role} (use {other} for a {kind}).")
    if not has_fit_parameter(est, "sample_weight"):
        raise TypeError(
            f"estimator={est!r} cannot take sample weights: {type(est).__name__}.fit has no sample_weight "
            "parameter, and boosting trains every round on re-weighted data. Use a base learner whose fit "
            "accepts sample_weight (LinearSVC, LogisticRegression, DecisionTree..., Ridge, ...)."
        )
    if proba and not hasattr(est, "predict_proba"):
        raise TypeError(
            f"estimator={est!r} has no predict_proba, which hypothesis='probability' needs; use "
            "hypothesis='label', or a probabilistic classifier (LogisticRegression, CalibratedClassifierCV(...))."
        )
    return est


def fit_round(base, X, y, sample_weight, seed):
    """One round's hypothesis: a fresh clone of ``base`` fitted on the weighted pool."""
    h = clone(base)
    if "random_state" in h.get_params():
        h.set_params(random_state=seed)
    return h.fit(X, y, sample_weight=sample_weight)


class TrAdaBoost(TransferMethod):
    """TrAdaBoost with any scikit-learn classifier that accepts ``sample_weight``; any number of classes.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        The base learner, cloned every round; default a linear SVM (the paper used SVMs). Its
        ``fit`` must accept ``sample_weight``.
    n_estimators : int
        Boosting rounds :math:`N` (the paper uses 100).
    hypothesis : {"label", "probability"}
        What :math:`h_t` outputs: the predicted label (the paper) or class probabilities (needs
        ``predict_proba``; see the module notes).
    balance_classes : bool
        Hand the base learner weights rescaled so that every class carries the same total weight
        (the paper balanced the SVM's training weights between positives and negatives). The
        update and :math:`\\epsilon_t` still use the unbalanced weights.
    seed : int
        Passed to the base learner's ``random_state`` when it has one.

    Attributes
    ----------
    estimators_ : list
        The round hypotheses :math:`h_t`.
    errors_ : ndarray
        :math:`\\epsilon_t` of every round before clipping.
    betas_ : ndarray
        :math:`\\beta_t` of every round.
    weights_ : ndarray of shape (n_estimators + 1, n + m)
        The weight vector before each round and after the last: which source examples were trusted.
    degenerate_ : list of str
        Why boosting did not do its job, if it did not (empty otherwise); each is also a RuntimeWarning.
    """

    name = "tradaboost"
    setting = Setting(source_labels=True, target_labels=True)
    description = "boosting that down-weights source examples the target disagrees with"
    paper = "Dai, Yang, Xue & Yu, Boosting for Transfer Learning, ICML 2007"

    _parameter_constraints = {
        **shared_constraints("estimator", "n_estimators", "seed"),
        "hypothesis": [StrOptions({"label", "probability"})],
        "balance_classes": ["boolean"],
    }

    def __init__(
        self,
        estimator=None,
        n_estimators: int = 100,
        hypothesis: str = "label",
        balance_classes: bool = False,
        seed: int = 0,
    ):
        store_params(self, locals())

    def fit(self, source, target=None, sample_domain=None):
        """Fit on labelled ``source`` (diff-distribution) and a few labelled ``target`` examples."""
        source, target = self._check_fit_data(source, target, sample_domain)
        if len(source.feature_shape) != 1:
            raise ValueError(f"TrAdaBoost needs feature vectors; got samples of shape {source.feature_shape}.")
        N = self.n_estimators
        base = check_base_learner(
            self.estimator, LinearSVC(dual="auto", max_iter=5000), proba=self.hypothesis == "probability"
        )
        self.classes_ = classes = np.unique(np.concatenate([source.y, target.y]))
        K = len(classes)
        X = np.concatenate([source.X, target.X]).astype(np.float64)
        c = np.searchsorted(classes, np.concatenate([source.y, target.y]))  # labels 0 .. K-1
        n, m = len(source), len(target)
        beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(n) / N))
        eps_max = (K - 1) / K - 1e-3  # the paper requires eps_t < 1/2 (K = 2): 0.499
        w = np.ones(n + m)
        self.estimators_, errors, betas, weights = [], [], [], [w.copy()]
        first_output, same_output = None, True
        for _ in range(N):
            p = w / w.sum()
            h = fit_round(base, X, c, self._balanced(p, c, K) * (n + m), self.seed)
            out = self._round_output(h, X, K)
            loss = 1.0 - out[np.arange(n + m), c]  # |h_t(x) - c(x)| for two classes
            eps = float(np.sum(w[n:] * loss[n:]) / np.sum(w[n:]))
            eps_c = min(max(eps, EPS_MIN), eps_max)
            beta_t = eps_c / ((1.0 - eps_c) * (K - 1))  # SAMME's ln(K-1) term; eps/(1-eps) for K = 2
            w = np.concatenate([w[:n] * beta ** loss[:n], w[n:] * beta_t ** (-loss[n:])])
            if first_output is None:
                first_output = out
            same_output = same_output and np.allclose(out, first_output, rtol=0.0, atol=1e-6)
            self.estimators_.append(h)
            errors.append(eps)
            betas.append(beta_t)
            weights.append(w.copy())
        self.errors_, self.betas_, self.weights_ = np.array(errors), np.array(betas), np.array(weights)
        self.beta_ = beta
        self.degenerate_ = self._degeneration(same_output, eps_max, n + m)
        self.warnings_ = list(self.degenerate_)
        for message in self.degenerate_:
            warnings.warn(f"TrAdaBoost: {message}", RuntimeWarning, stacklevel=2)
        self.input_shape_ = source.feature_shape
        self.model_ = self.estimators_
        return self

    def _balanced(self, p: np.ndarray, c: np.ndarray, K: int) -> np.ndarray:
        """The distribution the learner sees: ``p``, or ``p`` with every class's total weight set to 1/K."""
        if not self.balance_classes:
            return p
        return p / (K * np.bincount(c, weights=p, minlength=K)[c])

    def _round_output(self, h, X: np.ndarray, K: int) -> np.ndarray:
        """:math:`h_t(x)` as an (n, K) array: one-hot labels, or class probabilities."""
        out = np.zeros((len(X), K))
        if self.hypothesis == "label":
            out[np.arange(len(X)), h.predict(X).astype(int)] = 1.0
        else:  # columns of h.classes_ are a subset of 0..K-1 when a class had no weight
            out[:, np.asarray(h.classes_, dtype=int)] = h.predict_proba(X)
        return out

    def _degeneration(self, same_output: bool, eps_max: float, n_train: int) -> list[str]:
        N, eps = len(self.estimators_), self.errors_
        found = []
        if N > 1 and same_output:
            found.append(
                f"all {N} round hypotheses give the same output on the {n_train} training examples: boosting "
                f"never changed a decision, and the vote is in effect one {type(self.estimators_[0]).__name__} "
                "fitted on the pooled data."
            )
        if np.all(eps == 0):
            found.append(
                "the base learner fits every labelled target example in every round (epsilon_t = 0): the target "
                "weights never move and only the source re-weighting acts. A weaker base learner, "
                "hypothesis='probability' or more target labels let boosting work."
            )
        clipped = int(np.sum(eps >= eps_max))
        if clipped > N / 2:
            found.append(
                f"epsilon_t >= {eps_max + 1e-3:.3g} (no better than chance on the weighted target) in {clipped} of "
                f"{N} rounds; those rounds were clipped and hardly vote. The source may conflict with the target."
            )
        return found

    def _vote_rounds(self) -> tuple[list, np.ndarray]:
        start = math.ceil(len(self.estimators_) / 2) - 1  # rounds ceil(N/2) .. N, 1-based
        return self.estimators_[start:], np.log(1.0 / self.betas_[start:])

    def _votes(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Per-round outputs on ``X``, shape (n, rounds, K), and the vote weights :math:`\\ln(1/\\beta_t)`."""
        X = self._check_X(X).astype(np.float64)
        rounds, alpha = self._vote_rounds()
        outputs = np.stack([self._round_output(h, X, len(self.classes_)) for h in rounds], axis=1)
        return outputs, alpha

    def decision_function(self, X) -> np.ndarray:
        r"""Two classes: the vote margin :math:`\sum_{t \ge \lceil N/2 \rceil} \ln(1/\beta_t)(h_t(x) - \tfrac12)`
        (>= 0: class 1), shape (n,). More classes: the weighted votes per class, shape (n, K)."""
        outputs, alpha = self._votes(X)
        if len(self.classes_) == 2:
            return (outputs[:, :, 1] - 0.5) @ alpha
        return np.einsum("ntk,t->nk", outputs, alpha)

    def predict(self, X) -> np.ndarray:
        """The final hypothesis: for two classes exactly the paper's rule (class 1 where the margin is >= 0)."""
        score = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(score >= 0).astype(int)]
        return self.classes_[score.argmax(1)]

    def predict_proba(self, X) -> np.ndarray:
        """Weighted share of the votes for each class, shape (n, K); columns ordered as ``classes_``."""
        outputs, alpha = self._votes(X)  # every ln(1/beta_t) > 0: epsilon_t is clipped below (K-1)/K
        return np.einsum("ntk,t->nk", outputs, alpha) / alpha.sum()
