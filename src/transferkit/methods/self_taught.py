r"""Self-taught learning (Raina, Battle, Lee, Packer & Ng, ICML 2007).

Unlabelled source data :math:`\{x_u^{(i)}\}` that need not share the target's classes or even its
distribution (random natural images for a task on elephants and rhinos; unlabelled digits for a
task on clothes) teach a representation; a supervised learner is then trained on the few labelled
target samples in that representation:

1. learn a feature map :math:`\phi` on the unlabelled source alone,
2. train the classifier on :math:`\{(\phi(x_l^{(i)}), y^{(i)})\}`, the labelled target data.

Raina et al.'s feature map is sparse coding (:class:`~transferkit.methods.sparse_coding.SparseCoding`,
their eqs. 1-2); here also an autoencoder, mSDA, PCA and the raw inputs (the baselines of
their tables are raw and PCA). The classifier is a logistic regression on standardised features
unless ``classifier`` gives another; the paper used an SVM and Gaussian discriminant analysis.
"""

from __future__ import annotations

import time
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval

from transferkit.methods.base import Setting, TransferMethod, shared_constraints, store_params

__all__ = ["SelfTaught", "FEATURE_LEARNERS"]

#: The feature maps ``SelfTaught(features=...)`` knows.
FEATURE_LEARNERS = ("raw", "pca", "sparse-coding", "autoencoder", "msda")


class SelfTaught(TransferMethod):
    """Features from unlabelled source data, a classifier on the labelled target data.

    Parameters
    ----------
    features : {"sparse-coding", "autoencoder", "msda", "pca", "raw"} or a transformer
        The feature map learnt on the unlabelled source (any scikit-learn transformer works).
    n_components : int
        Bases (sparse coding), hidden units (autoencoder) or components (PCA).
    beta : float
        Sparse coding's L1 weight.
    classifier : scikit-learn classifier, optional
        Trained on the target features (default: standardised logistic regression).
    seed : int
    verbose : bool
        Progress of the autoencoder's training.
    """

    name: ClassVar[str] = "self-taught"
    setting: ClassVar[Setting] = Setting(source_labels=False, target_labels=True)
    description: ClassVar[str] = "features learnt on unlabelled source data, a classifier on the labelled target"
    paper: ClassVar[str] = "Raina, Battle, Lee, Packer & Ng, Self-taught Learning, ICML 2007"

    _parameter_constraints = {
        **shared_constraints("seed", "verbose"),
        "features": [str, HasMethods(["fit", "transform"])],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, np.inf, closed="left")],
        "classifier": [HasMethods(["fit", "predict"]), None],
    }

    def __init__(
        self,
        features="sparse-coding",
        n_components: int = 256,
        beta: float = 0.1,
        classifier=None,
        seed: int = 0,
        verbose: bool = False,
    ):
        store_params(self, locals())

    def _feature_map(self):
        from transferkit.methods.autoencoder import Autoencoder
        from transferkit.methods.msda import MSDA
        from transferkit.methods.sparse_coding import SparseCoding

        if not isinstance(self.features, str):
            if not (hasattr(self.features, "fit") and hasattr(self.features, "transform")):
                raise TypeError(f"features={self.features!r}; expected one of {FEATURE_LEARNERS} or a transformer.")
            return clone(self.features)
        makers = {
            "raw": lambda: None,
            "pca": lambda: PCA(n_components=self.n_components, random_state=self.seed),
            "sparse-coding": lambda: SparseCoding(n_bases=self.n_components, beta=self.beta, seed=self.seed),
            "autoencoder": lambda: Autoencoder(n_hidden=self.n_components, seed=self.seed, verbose=self.verbose),
            "msda": lambda: MSDA(n_layers=3, noise=0.5),
        }
        if self.features not in makers:
            raise ValueError(
                f"features={self.features!r}; expected one of {', '.join(FEATURE_LEARNERS)} or a transformer."
            )
        return makers[self.features]()

    def fit(self, source, target=None, sample_domain=None):
        """Learn features on the unlabelled ``source``, then the classifier on the labelled ``target``."""
        source, target = self._check_fit_data(source, target, sample_domain)
        t0 = time.perf_counter()
        self.classes_ = np.unique(target.y)
        if len(self.classes_) < 2:
            raise ValueError(f"target.y has a single class ({self.classes_.tolist()}); expected at least two.")
        self.input_shape_ = target.feature_shape
        Xs = source.X.reshape(len(source.X), -1)
        if self.features == "pca" and self.n_components > min(Xs.shape):
            raise ValueError(
                f"n_components={self.n_components} for PCA on {Xs.shape[0]} unlabelled samples of {Xs.shape[1]} "
                f"features; expected at most {min(Xs.shape)}."
            )
        self.feature_map_ = self._feature_map()
        if self.feature_map_ is not None:
            self.feature_map_.fit(Xs)
        self._fit_classifier(target)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def fit_classifier(self, target):
        """Train the classifier again on another labelled ``target``, keeping the learnt features.

        Learning the features is the expensive step and depends on the unlabelled source alone, so
        one feature map serves any number of labelled sets (Raina et al.'s tables vary their size).
        """
        from transferkit.data import as_domain

        self._check_is_fitted()
        target = as_domain(target, "target")
        if target.y is None:
            raise ValueError("target has no labels; the classifier learns from labelled target data.")
        if tuple(target.feature_shape) != tuple(self.input_shape_):
            raise ValueError(
                f"target has samples of shape {tuple(target.feature_shape)}; the features were learnt on "
                f"{tuple(self.input_shape_)}."
            )
        classes = np.unique(target.y)
        if len(classes) < 2:
            raise ValueError(f"target.y has a single class ({classes.tolist()}); expected at least two.")
        self.classes_ = classes
        self._fit_classifier(target)
        return self

    def _fit_classifier(self, target) -> None:
        classifier = self.classifier if self.classifier is not None else LogisticRegression(max_iter=3000)
        self.model_ = make_pipeline(StandardScaler(), clone(classifier))
        self.model_.fit(self._features(target.X), target.y)

    def _features(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        return X if self.feature_map_ is None else self.feature_map_.transform(X)

    def transform(self, X) -> np.ndarray:
        """The learnt representation :math:`\\phi(x)`."""
        return self._features(self._check_X(X))

    def predict(self, X) -> np.ndarray:
        features = self.transform(X)  # refuses an unfitted model before model_ is touched
        return self.model_.predict(features)

    def predict_proba(self, X) -> np.ndarray:
        features = self.transform(X)
        return self.model_.predict_proba(features)
