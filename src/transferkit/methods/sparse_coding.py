r"""Sparse coding as Raina et al. learn it for self-taught learning (a scikit-learn transformer).

Bases :math:`b_1, \dots, b_s` are learnt on unlabelled data by (Raina, Battle, Lee, Packer & Ng,
ICML 2007, eq. 1)

.. math:: \min_{b, a} \sum_i \Bigl\lVert x_u^{(i)} - \sum_j a_j^{(i)} b_j \Bigr\rVert_2^2
          + \beta \lVert a^{(i)} \rVert_1 \quad \text{s.t. } \lVert b_j \rVert_2 \le 1,

and a sample's features are its activations, solved per sample with the bases fixed (eq. 2):

.. math:: \hat a(x) = \arg\min_a \Bigl\lVert x - \sum_j a_j b_j \Bigr\rVert_2^2 + \beta \lVert a \rVert_1 .

The alternating minimisation (L1-regularised least squares for the activations, a constrained
least-squares step for the bases) is scikit-learn's ``MiniBatchDictionaryLearning``, whose
objective :math:`\tfrac12 \lVert X - AB \rVert_F^2 + \alpha \lVert A \rVert_{1,1}` with unit-norm
bases is this one with :math:`\alpha = \beta / 2`; the activations are solved by coordinate
descent (``Lasso``), one sample at a time in effect (the rows are independent).

Inputs are centred on the unlabelled data's mean and divided by the mean norm of the centred
samples (optionally also scaled per feature), so that :math:`\beta` means the same on pixels in
[0, 1] and on tf-idf vectors of norm 0.25: with unit-norm bases and samples of norm about 1, an
activation above :math:`\beta / 2` is worth paying for.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval

from transferkit._sklearn import CheckedParams, Float32Transformer, check_n_features
from transferkit.data import check_array

__all__ = ["SparseCoding"]


class SparseCoding(Float32Transformer, CheckedParams, TransformerMixin, BaseEstimator):
    """Bases learnt by L1-regularised sparse coding; features are the per-sample activations.

    Parameters
    ----------
    n_bases : int
        :math:`s`, the number of bases (features).
    beta : float
        :math:`\\beta`, the weight of the L1 penalty in eqs. 1 and 2, for inputs scaled to a mean
        norm of 1.
    n_iter : int
        Passes of the alternating minimisation over the unlabelled data (mini-batches of 256).
    scale : bool
        Divide every input feature by its standard deviation on the unlabelled data.
    seed : int
    """

    _parameter_constraints = {
        "n_bases": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, np.inf, closed="neither")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "seed": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, n_bases: int = 256, beta: float = 0.1, n_iter: int = 10, scale: bool = False, seed: int = 0):
        self.n_bases = n_bases
        self.beta = beta
        self.n_iter = n_iter
        self.scale = scale
        self.seed = seed

    def _prepare(self, X) -> np.ndarray:
        X = check_array(X, "X")
        X = X.reshape(len(X), -1)
        if hasattr(self, "mean_"):
            check_n_features(X.shape[1], len(self.mean_), self)
        return X

    def fit(self, X, y=None):
        """Learn the bases on unlabelled ``X`` (images are flattened); ``y`` is ignored."""
        self._validate_params()  # before the data: every hyperparameter named with what it allows
        X = self._prepare(X)
        self.mean_ = X.mean(0)
        std = X.std(0) + 1e-6 if self.scale else np.ones(X.shape[1], dtype=np.float32)
        norm = float(np.linalg.norm((X - self.mean_) / std, axis=1).mean())
        self.std_ = std * max(norm, 1e-12)  # per-feature scale times the global one
        Z = ((X - self.mean_) / self.std_).astype(np.float64)  # float32 cannot meet the lasso's tolerance
        self.dictionary_learner_ = MiniBatchDictionaryLearning(
            n_components=int(self.n_bases),
            alpha=self.beta / 2,
            fit_algorithm="cd",
            max_iter=int(self.n_iter),
            batch_size=256,
            tol=0.0,  # n_iter full passes: the default early stop ends before the bases settle
            max_no_improvement=None,
            transform_algorithm="lasso_cd",
            transform_alpha=self.beta / 2,
            transform_max_iter=5000,
            random_state=self.seed,
        ).fit(Z)
        self.bases_ = self.dictionary_learner_.components_  # (n_bases, n_features), unit norm
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """The activations :math:`\\hat a(x)` of eq. 2, shape (n_samples, n_bases)."""
        if not hasattr(self, "bases_"):
            raise NotFittedError("this SparseCoding is not fitted yet; call fit(X_unlabelled) first.")
        Z = ((self._prepare(X) - self.mean_) / self.std_).astype(np.float64)
        return self.dictionary_learner_.transform(Z).astype(np.float32)

    def objective(self, X) -> float:
        """Eq. 2 summed over ``X``: reconstruction error plus beta times the L1 norm of the activations."""
        A = self.transform(X)
        Z = (self._prepare(X) - self.mean_) / self.std_
        return float(((Z - A @ self.bases_) ** 2).sum() + self.beta * np.abs(A).sum())
