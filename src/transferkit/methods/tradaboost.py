r"""TrAdaBoost: boosting that learns which source examples to trust (binary case).

Dai, Yang, Xue & Yu, "Boosting for Transfer Learning", ICML 2007, Algorithm 1.

Labelled *diff-distribution* data :math:`T_a` (the source, :math:`n` examples) and a few labelled
*same-distribution* data :math:`T_b` (the target, :math:`m` examples) are pooled. In round
:math:`t` the base learner is trained on :math:`p^t = w^t / \sum_i w^t_i`; its error is measured
on the target part only,

.. math:: \epsilon_t = \frac{\sum_{i=n+1}^{n+m} w_i^t |h_t(x_i) - c(x_i)|}{\sum_{i=n+1}^{n+m} w_i^t},

and with :math:`\beta_t = \epsilon_t / (1 - \epsilon_t)`, :math:`\beta = 1/(1 + \sqrt{2 \ln n / N})`
the weights move in opposite directions:

.. math::

    w_i^{t+1} = w_i^t\, \beta^{|h_t(x_i) - c(x_i)|} \ (\text{source: misfits fade}), \qquad
    w_i^{t+1} = w_i^t\, \beta_t^{-|h_t(x_i) - c(x_i)|} \ (\text{target: misfits grow}).

The final hypothesis votes with the second half of the rounds:

.. math::

    h_f(x) = 1 \iff \prod_{t=\lceil N/2 \rceil}^{N} \beta_t^{-h_t(x)}
        \ge \prod_{t=\lceil N/2 \rceil}^{N} \beta_t^{-1/2}.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import clone
from sklearn.svm import LinearSVC

from transferkit.methods.base import Setting, TransferMethod, store_params


class TrAdaBoost(TransferMethod):
    """TrAdaBoost for binary labels with any scikit-learn classifier that accepts ``sample_weight``.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        The base learner; default a linear SVM (the paper used SVMs).
    n_estimators : int
        Boosting rounds :math:`N` (the paper uses 100).
    seed : int
        Passed to the base learner's ``random_state`` when it has one.

    Notes
    -----
    The paper requires :math:`\\epsilon_t < 1/2`; a round whose target error is larger is kept
    with :math:`\\epsilon_t` clipped to 0.499 (so :math:`\beta_t \approx 1`: the round barely
    changes the target weights and has almost no vote). Labels of either class may be any two
    values; internally they are mapped to 0 and 1.

    Attributes
    ----------
    estimators_ : list
        The round hypotheses :math:`h_t`.
    betas_ : ndarray
        :math:`\\beta_t` of every round.
    weights_ : ndarray of shape (n_estimators + 1, n + m)
        The weight vector before each round and after the last: which source examples were trusted.
    """

    max_classes = 2
    name = "tradaboost"
    setting = Setting(source_labels=True, target_labels=True)
    description = "boosting that down-weights source examples the target disagrees with (binary labels)"
    paper = "Dai, Yang, Xue & Yu, Boosting for Transfer Learning, ICML 2007"

    def __init__(self, estimator=None, n_estimators: int = 100, seed: int = 0):
        store_params(self, locals())

    def fit(self, source, target=None):
        """Fit on labelled ``source`` (diff-distribution) and a few labelled ``target`` examples."""
        source, target = self._check_fit_data(source, target)
        if len(source.feature_shape) != 1:
            raise ValueError(f"TrAdaBoost needs feature vectors; got samples of shape {source.feature_shape}.")
        N = self.n_estimators
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
            raise ValueError(f"n_estimators={N!r}; expected a positive integer.")
        classes = np.unique(np.concatenate([source.y, target.y]))
        if len(classes) != 2:
            raise ValueError(
                f"TrAdaBoost (Dai et al. 2007) is defined for two classes; got {len(classes)} ({classes.tolist()}). "
                "Train one model per class (one-vs-rest) for more."
            )
        self.classes_ = classes
        X = np.concatenate([source.X, target.X]).astype(np.float64)
        c = np.searchsorted(classes, np.concatenate([source.y, target.y]))  # labels in {0, 1}
        n, m = len(source), len(target)
        beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(n) / N))
        w = np.ones(n + m)
        self.estimators_, betas, weights = [], [], [w.copy()]
        for _ in range(N):
            p = w / w.sum()
            h = clone(self.estimator) if self.estimator is not None else LinearSVC(dual="auto", max_iter=5000)
            if "random_state" in h.get_params():
                h.set_params(random_state=self.seed)
            h.fit(X, c, sample_weight=p * (n + m))
            miss = np.abs(h.predict(X) - c).astype(np.float64)
            eps = float(np.sum(w[n:] * miss[n:]) / np.sum(w[n:]))
            eps = min(max(eps, 1e-10), 0.499)  # the paper requires eps_t < 1/2; keep beta_t in (0, 1)
            beta_t = eps / (1.0 - eps)
            w = np.concatenate([w[:n] * beta ** miss[:n], w[n:] * beta_t ** (-miss[n:])])
            self.estimators_.append(h)
            betas.append(beta_t)
            weights.append(w.copy())
        self.betas_ = np.array(betas)
        self.weights_ = np.array(weights)
        self.beta_ = beta
        self.input_shape_ = source.feature_shape
        self.model_ = self.estimators_
        return self

    def decision_function(self, X) -> np.ndarray:
        r"""The vote margin :math:`\sum_{t \ge \lceil N/2 \rceil} \ln(1/\beta_t)(h_t(x) - \tfrac12)`; >= 0: class 1."""
        X = self._check_X(X)
        start = math.ceil(len(self.estimators_) / 2) - 1  # rounds ceil(N/2) .. N, 1-based
        alpha = np.log(1.0 / self.betas_[start:])
        votes = np.stack([h.predict(X.astype(np.float64)) for h in self.estimators_[start:]], axis=1)
        return (votes - 0.5) @ alpha

    def predict(self, X) -> np.ndarray:
        """The paper's final hypothesis: class 1 where the vote margin is >= 0."""
        margin = self.decision_function(X)
        return self.classes_[(margin >= 0).astype(int)]

    def predict_proba(self, X) -> np.ndarray:
        """Weighted share of the votes for each class (the final rule thresholds it at 1/2)."""
        margin = self.decision_function(X)
        start = math.ceil(len(self.estimators_) / 2) - 1
        total = np.log(1.0 / self.betas_[start:]).sum()
        p1 = np.clip(0.5 + margin / total, 0.0, 1.0) if total > 0 else np.full(len(margin), 0.5)
        return np.stack([1.0 - p1, p1], axis=1)
