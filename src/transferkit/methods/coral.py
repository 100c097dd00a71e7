r"""CORAL: correlation alignment of the source features, in closed form.

Sun, Feng & Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016.

The source features are whitened with their own covariance and re-coloured with the target's,
so the transformed source has the target's second-order statistics; a classifier trained on
them is applied to the unchanged target features:

.. math::

    C_S = \mathrm{cov}(D_S) + I, \quad C_T = \mathrm{cov}(D_T) + I, \qquad
    D_S^* = D_S\, C_S^{-1/2}\, C_T^{1/2}.

(Algorithm 1 of the paper; the identity is the paper's regulariser, ``reg`` here.)

The matrix powers come from symmetric eigendecompositions. A covariance of :math:`n` samples has
rank at most :math:`n - 1`, so with :math:`\mathrm{cov}(D) = U \Lambda U^\top` (:math:`U` the
eigenvectors of the non-zero eigenvalues),

.. math::

    (\mathrm{cov}(D) + \lambda I)^p = \lambda^p I + U \big((\Lambda + \lambda)^p - \lambda^p\big) U^\top,

exactly. :math:`U` and :math:`\Lambda` are taken from the :math:`d \times d` covariance when
:math:`d \le n` (:math:`O(d^3)`), else from the :math:`n \times n` Gram matrix of the centred
samples (:math:`O(n^2 d)`, :math:`U = D_c^\top V (\,(n-1)\Lambda)^{-1/2}`): 5000-d reviews of 2000
samples take seconds instead of minutes, and above :data:`DENSE_LIMIT` features the d x d matrix
:math:`A` is never formed (30,000-d mSDA features would need 7 GB for it).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval

from transferkit.methods.base import FeatureClassifierMethod, Setting, shared_constraints, store_params

#: Up to this many features the fitted map is kept as the dense d x d matrix ``A_``; above, as the factors
#: of its two matrix powers (``factors_``), applied without forming it.
DENSE_LIMIT = 4096


def power_factors(X: np.ndarray, reg: float, power: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(U, D)`` with :math:`(\mathrm{cov}(X) + \lambda I)^p = \lambda^p I + U \mathrm{diag}(D) U^\top`
    (:math:`\lambda` = ``reg``, :math:`p` = ``power``)."""
    n, d = X.shape
    Xc = X - X.mean(0)
    if d <= n:
        w, U = np.linalg.eigh(Xc.T @ Xc / (n - 1))
    else:  # the same non-zero eigenvalues from the n x n Gram matrix; its eigenvectors mapped back
        w, V = np.linalg.eigh(Xc @ Xc.T / (n - 1))
        keep = w > w[-1] * n * np.finfo(w.dtype).eps  # the centring's null direction and rounding noise
        w, V = w[keep], V[:, keep]
        U = (Xc.T @ V) / np.sqrt((n - 1) * w)
    w = np.clip(w, 0.0, None)
    return U, (w + reg) ** power - reg**power


def _apply_power(X: np.ndarray, reg: float, power: float, factors: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    U, D = factors
    return reg**power * X + ((X @ U) * D) @ U.T


def coral_factors(Xs: np.ndarray, Xt: np.ndarray, reg: float = 1.0) -> tuple:
    """The factors of :math:`C_S^{-1/2}` and :math:`C_T^{1/2}` (:func:`power_factors`)."""
    return power_factors(Xs, reg, -0.5), power_factors(Xt, reg, 0.5)


def apply_coral(X: np.ndarray, reg: float, factors: tuple) -> np.ndarray:
    """:math:`X C_S^{-1/2} C_T^{1/2}` from :func:`coral_factors`, without forming a d x d matrix."""
    whiten, recolour = factors
    return _apply_power(_apply_power(X, reg, -0.5, whiten), reg, 0.5, recolour)


def coral_transform(Xs: np.ndarray, Xt: np.ndarray, reg: float = 1.0) -> np.ndarray:
    """The matrix :math:`A = C_S^{-1/2} C_T^{1/2}` that re-colours source features (``Xs @ A``)."""
    return apply_coral(np.eye(Xs.shape[1]), reg, coral_factors(Xs, Xt, reg))


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

    Attributes
    ----------
    A_ : ndarray of shape (d, d) or None
        :math:`C_S^{-1/2} C_T^{1/2}`, for up to :data:`DENSE_LIMIT` features; else None.
    factors_ : tuple or None
        Above :data:`DENSE_LIMIT` features: the factors of the two matrix powers
        (:func:`coral_factors`), from which the map is applied without forming it.
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
        factors = coral_factors(Xs, Xt, self.reg)
        d = Xs.shape[1]
        self.A_ = apply_coral(np.eye(d), self.reg, factors) if d <= DENSE_LIMIT else None
        self.factors_ = None if d <= DENSE_LIMIT else factors
        est = clone(self.estimator) if self.estimator is not None else LogisticRegression(max_iter=2000)
        if "random_state" in est.get_params():
            est.set_params(random_state=self.seed)
        self.model_ = est.fit(self._recolour(Xs), source.y)
        self.classes_ = self.model_.classes_
        self.input_shape_ = source.feature_shape
        return self

    def _features(self, X) -> np.ndarray:
        return X.astype(np.float64)  # target-space features are used as they are

    def _recolour(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "A_", None) is not None:
            return X @ self.A_
        return apply_coral(X, self.reg, self.factors_)

    def transform(self, X) -> np.ndarray:
        """Source-side features re-coloured to the target's covariance (``X @ A_``)."""
        return self._recolour(self._check_X(X).astype(np.float64)).astype(np.float32)
