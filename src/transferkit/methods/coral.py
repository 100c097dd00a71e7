r"""CORAL: correlation alignment of the source features, in closed form.

Sun, Feng & Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016.

The source features are whitened with their own covariance and re-coloured with the target's,
so the transformed source has the target's second-order statistics; a classifier trained on
them is applied to the unchanged target features:

.. math::

    C_S = \mathrm{cov}(D_S) + I, \quad C_T = \mathrm{cov}(D_T) + I, \qquad
    D_S^* = D_S\, C_S^{-1/2}\, C_T^{1/2}.

(Algorithm 1 of the paper; the identity is the paper's regulariser, ``reg`` here.) The matrix
square roots come from symmetric eigendecompositions, :math:`O(d^3)` in the feature dimension.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval

from transferkit.methods.base import FeatureClassifierMethod, Setting, shared_constraints, store_params


def _sym_power(C: np.ndarray, power: float) -> np.ndarray:
    w, V = np.linalg.eigh(C)
    return (V * np.clip(w, 1e-12, None) ** power) @ V.T


def coral_transform(Xs: np.ndarray, Xt: np.ndarray, reg: float = 1.0) -> np.ndarray:
    """The matrix :math:`A = C_S^{-1/2} C_T^{1/2}` that re-colours source features (``Xs @ A``)."""
    d = Xs.shape[1]
    Cs = np.cov(Xs, rowvar=False) + reg * np.eye(d)
    Ct = np.cov(Xt, rowvar=False) + reg * np.eye(d)
    return _sym_power(Cs, -0.5) @ _sym_power(Ct, 0.5)


class CORAL(FeatureClassifierMethod):
    """CORAL: re-colour the source with the target covariance, then train any classifier.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Trained on the aligned source features; default logistic regression (the paper uses a
        linear SVM; any estimator with ``predict_proba`` works here).
    reg : float
        The ridge added to both covariances (1, as in the paper).
    seed : int
        Passed to the estimator's ``random_state`` when it has one.
    """

    min_target_samples = 2  # a covariance needs two samples
    name = "coral"
    setting = Setting(source_labels=True, target_labels=False)
    description = "closed-form correlation alignment: source whitened and re-coloured with target covariance"
    paper = "Sun, Feng & Saenko, Return of Frustratingly Easy Domain Adaptation, AAAI 2016"

    _parameter_constraints = {
        **shared_constraints("estimator", "seed"),
        "reg": [Interval(Real, 0, np.inf, closed="neither")],  # a positive ridge (the paper's 1)
    }

    def __init__(self, estimator=None, reg: float = 1.0, seed: int = 0):
        store_params(self, locals())

    def fit(self, source, target=None, sample_domain=None):
        """Fit on a labelled ``source`` and an unlabelled ``target`` (2-D features)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        if len(source.feature_shape) != 1:
            raise ValueError(f"CORAL needs feature vectors; got samples of shape {source.feature_shape}.")
        Xs, Xt = source.X.astype(np.float64), target.X.astype(np.float64)
        self.A_ = coral_transform(Xs, Xt, self.reg)
        est = clone(self.estimator) if self.estimator is not None else LogisticRegression(max_iter=2000)
        if "random_state" in est.get_params():
            est.set_params(random_state=self.seed)
        self.model_ = est.fit(Xs @ self.A_, source.y)
        self.classes_ = self.model_.classes_
        self.input_shape_ = source.feature_shape
        return self

    def _features(self, X) -> np.ndarray:
        return X.astype(np.float64)  # target-space features are used as they are

    def transform(self, X) -> np.ndarray:
        """Source-side features re-coloured to the target's covariance (``X @ A_``)."""
        return (self._check_X(X).astype(np.float64) @ self.A_).astype(np.float32)
