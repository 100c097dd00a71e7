r"""ConSE: convex combination of semantic embeddings (Norouzi et al., ICLR 2014).

Any classifier of the seen classes gives :math:`p(y \mid x)`. With :math:`\hat y_1, \dots,
\hat y_T` its :math:`T` most probable seen classes, the sample's semantic embedding is
(Norouzi et al. 2014, eq. 2)

.. math:: f(x) = \frac{1}{Z} \sum_{t=1}^{T} p(\hat y_t \mid x)\, s(\hat y_t), \qquad
          Z = \sum_{t=1}^{T} p(\hat y_t \mid x),

and the answer is the candidate class whose embedding :math:`s(y')` is nearest by cosine
similarity. Nothing is trained beyond the classifier: the classifier is ours (the ``backbone``
with a softmax head) unless ``classifier`` supplies a scikit-learn estimator with
``predict_proba``. The paper's best setting on ImageNet is :math:`T = 10`; with fewer seen
classes, :math:`T` is capped at their number.

Reference
---------
Norouzi, Mikolov, Bengio, Singer, Shlens, Frome, Corrado & Dean. Zero-shot learning by convex
combination of semantic embeddings. ICLR 2014.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval

from transferkit.methods.zeroshot import SoftmaxObjective, ZeroShotMethod

__all__ = ["ConSE", "conse_embedding"]


def conse_embedding(proba: np.ndarray, S_seen: np.ndarray, T: int) -> np.ndarray:
    r""":math:`f(x) = \frac1Z\sum_{t\le T} p(\hat y_t\mid x)\, s(\hat y_t)` for every row of ``proba``.

    Parameters
    ----------
    proba : ndarray, shape (n_samples, n_seen)
    S_seen : ndarray, shape (n_seen, d)
    T : int
        How many of the most probable seen classes enter the combination.
    """
    proba = np.asarray(proba, dtype=np.float64)
    T = min(int(T), proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :T]
    w = np.take_along_axis(proba, top, 1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-300)
    return np.einsum("nt,ntd->nd", w, S_seen[top]).astype(np.float32)


@dataclass(eq=False, repr=False, kw_only=True)
class ConSE(ZeroShotMethod):
    """A seen-class classifier's top-T probabilities weighting the seen classes' embeddings.

    The default classifier is a network trained as every network method is (``backbone``, ``hidden``,
    ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``seed``, ``device``, ``n_threads``, ``precision``,
    ``checkpoint_dir``, ``verbose``; see :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    T : int
        Number of most probable seen classes combined (10 in the paper).
    classifier : scikit-learn classifier, optional
        Any estimator with ``predict_proba``, fitted here on the seen classes (cloned first).
        Default: our network (``backbone``) with a softmax head.
    """

    name: ClassVar[str] = "conse"
    description: ClassVar[str] = "zero-shot: seen classes' embeddings mixed by classifier confidence"
    paper: ClassVar[str] = "Norouzi et al., ICLR 2014"

    _parameter_constraints: ClassVar[dict] = {
        **ZeroShotMethod._parameter_constraints,
        "T": [Interval(Integral, 1, None, closed="left")],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
    }

    T: int = 10
    classifier: object = None

    def _n_out(self) -> int:  # a softmax over the seen classes
        return len(self.seen_classes_)

    def _fit_seen(self, X, y_idx, S_seen):
        self.S_seen_ = S_seen
        if self.classifier is not None:  # its predict_proba is checked with the other parameters
            self.model_ = clone(self.classifier).fit(X.reshape(len(X), -1), y_idx)
            return
        net = self._build(len(S_seen))
        self.fit_result_ = self._train(SoftmaxObjective(net), X, y_idx, "softmax")
        self.history_ = self.fit_result_.history
        self.model_ = net.eval()

    def predict_seen_proba(self, X) -> np.ndarray:
        """The classifier's probabilities over the seen classes (columns as ``seen_classes_``)."""
        return self._seen_proba(self._check_X(X))

    def _seen_proba(self, X):
        if self.classifier is not None:
            return self.model_.predict_proba(X.reshape(len(X), -1))
        return self._forward(self.model_, X, lambda net, x: torch.softmax(net(x), 1))

    def transform(self, X) -> np.ndarray:
        """:math:`f(x)`, the convex combination of the seen classes' embeddings."""
        return conse_embedding(self.predict_seen_proba(X), self.S_seen_, self.T)

    def _scores(self, X, S):
        f = conse_embedding(self._seen_proba(X), self.S_seen_, self.T)
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        return f @ (S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)).T
