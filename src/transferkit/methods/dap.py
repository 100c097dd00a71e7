r"""Direct attribute prediction (DAP; Lampert, Nickisch & Harmeling, CVPR 2009 / TPAMI 2014).

One probabilistic classifier per attribute :math:`a_m`, trained on the seen classes, each sample
labelled with its class's signature :math:`a^{y}`. An unseen class :math:`z` is scored by the
posterior (Lampert et al. 2014, eq. 2, with a uniform class prior)

.. math:: p(z \mid x) \propto \prod_{m=1}^{M} \frac{p(a_m = a_m^z \mid x)}{p(a_m = a_m^z)},

where the attribute prior :math:`p(a_m = 1)` is the mean of :math:`a_m` over the seen classes,
clipped to [0.1, 0.9] (``prior_clip``) so that an attribute that is rare among the seen classes
cannot dominate the product. Scores are the log of this product.

The per-attribute classifiers share one network with :math:`M` sigmoid outputs (a multi-label
classifier; the paper trains independent SVMs with Platt scaling). ``rule="nearest"`` is the
lecture's simpler rule: predict the attribute vector and answer the class whose signature is
nearest in Euclidean distance.

Attributes must be binary for the posterior; a continuous table (AwA's 0-100 strengths) is
binarised at its overall mean, which reproduces AwA's released binary matrix.

References
----------
Lampert, Nickisch & Harmeling. Learning to detect unseen object classes by between-class
attribute transfer. CVPR 2009; Attribute-based classification for zero-shot visual object
categorization. TPAMI 36(3), 2014.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from transferkit.methods.zeroshot import ZeroShotMethod

__all__ = ["DAP", "AttributeObjective", "dap_log_posterior"]


def dap_log_posterior(p_attr: np.ndarray, signatures: np.ndarray, prior: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    r"""DAP class scores :math:`\sum_m \log p(a_m = a_m^z \mid x) - \log p(a_m = a_m^z)`.

    Parameters
    ----------
    p_attr : ndarray, shape (n_samples, M)
        :math:`p(a_m = 1 \mid x)`.
    signatures : ndarray of {0, 1}, shape (n_classes, M)
    prior : ndarray, shape (M,)
        :math:`p(a_m = 1)`.

    Returns
    -------
    ndarray, shape (n_samples, n_classes)
    """
    p = np.clip(p_attr.astype(np.float64), eps, 1 - eps)
    A = signatures.astype(np.float64)
    prior = np.clip(prior.astype(np.float64), eps, 1 - eps)
    log_lik = np.log(p) @ A.T + np.log1p(-p) @ (1 - A).T
    log_prior = A @ np.log(prior) + (1 - A) @ np.log1p(-prior)
    return log_lik - log_prior[None, :]


class AttributeObjective(nn.Module):
    """Binary cross-entropy of the network's attribute logits against the samples' class signatures."""

    def __init__(self, net: nn.Module, signatures: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("signatures", signatures)

    def forward(self, batch, progress: float):
        target = self.signatures[batch["ys"]]
        logits = self.net(batch["xs"])
        loss = F.binary_cross_entropy_with_logits(logits, target)
        with torch.no_grad():
            acc = ((logits > 0).float() == target).float().mean()
        return {"loss": loss, "attribute_accuracy": acc}


@dataclass(eq=False, repr=False, kw_only=True)
class DAP(ZeroShotMethod):
    """Direct attribute prediction: per-attribute classifiers and the DAP class posterior.

    Training takes the parameters of every network method (``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``seed``, ``device``, ``n_threads``, ``precision``, ``checkpoint_dir``, ``verbose``; see
    :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    rule : {"posterior", "nearest"}
        The paper's posterior, or the nearest class signature to the predicted attributes.
    backbone : str
        ``"auto"`` (a one-hidden-layer network for vectors, a CNN for images), ``"lenet"``, ...
    hidden : int
        Hidden width of the vector network.
    prior_clip : float
        The attribute prior is clipped to ``[prior_clip, 1 - prior_clip]``.
    """

    name: ClassVar[str] = "dap"
    description: ClassVar[str] = "zero-shot: per-attribute classifiers, class posterior from the attribute table"
    paper: ClassVar[str] = "Lampert, Nickisch & Harmeling, CVPR 2009"
    kinds: ClassVar[tuple[str, ...]] = ("attributes",)

    _parameter_constraints: ClassVar[dict] = {
        **ZeroShotMethod._parameter_constraints,
        "rule": [StrOptions({"posterior", "nearest"})],
        "prior_clip": [Interval(Real, 0, 0.5, closed="left")],
    }

    rule: str = "posterior"
    prior_clip: float = 0.1

    def _binary(self, S: np.ndarray) -> np.ndarray:
        """Signatures as 0/1: a continuous table is thresholded at the whole table's mean."""
        if np.isin(S, (0.0, 1.0)).all():
            return S.astype(np.float32)
        return (S > self.threshold_).astype(np.float32)

    def _n_out(self) -> int:  # one output per attribute
        return self.descriptions_.vectors.shape[1]

    def _fit_seen(self, X, y_idx, S_seen):
        self.threshold_ = float(self.descriptions_.vectors.mean())
        A = self._binary(S_seen)
        constant = np.flatnonzero((A == A[0]).all(0))
        if len(constant) == A.shape[1]:
            raise ValueError("every attribute has the same value on all seen classes; there is nothing to learn.")
        self.attribute_prior_ = A.mean(0)
        net = self._build(A.shape[1])
        objective = AttributeObjective(net, torch.from_numpy(A))
        self.fit_result_ = self._train(objective, X, y_idx, "attributes")
        self.history_ = self.fit_result_.history
        self.model_ = net.eval()

    def predict_attributes(self, X) -> np.ndarray:
        """:math:`p(a_m = 1 \\mid x)` for every attribute, shape (n_samples, M)."""
        X = self._check_X(X)
        return self._forward(self.model_, X, lambda net, x: torch.sigmoid(net(x)))

    def _scores(self, X, S):
        p = self._forward(self.model_, X, lambda net, x: torch.sigmoid(net(x)))
        A = self._binary(S)
        if self.rule == "nearest":
            return -((p[:, None, :] - A[None, :, :]) ** 2).sum(-1)
        prior = np.clip(self.attribute_prior_, self.prior_clip, 1 - self.prior_clip)
        return dap_log_posterior(p, A, prior)
