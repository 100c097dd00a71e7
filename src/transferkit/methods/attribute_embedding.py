r"""Attribute embedding: samples and class descriptions mapped into one space, a margin between them.

The lecture's form: a network :math:`f` embeds a sample, a network :math:`g` embeds its class's
attribute vector :math:`y^n`, and training asks the true class to beat the best wrong class by a
margin :math:`k`:

.. math:: L = \sum_n \max\Bigl(0,\; k - f(x^n)\cdot g(y^n) + \max_{m \ne n} f(x^n)\cdot g(y^m)\Bigr),

where :math:`m` runs over the other seen classes. An unseen class :math:`z` is answered by
:math:`\arg\max_z f(x)\cdot g(y^z)`. This hinge on the hardest wrong class is exactly the
structured SVM loss of SJE (Akata et al., CVPR 2015) with :math:`\Delta(y^n, y) = k\,[y \ne y^n]`.

``compatibility="bilinear"`` is the ALE/SJE form :math:`F(x, y) = \theta(x)^\top W\,y`: the
class side is the attribute vector itself (:math:`g` the identity) and :math:`W` is the last
layer of the sample network; ``"mlp"`` learns :math:`g` as a two-layer network (the lecture's).

References
----------
Akata, Perronnin, Harchaoui & Schmid. Label-embedding for attribute-based classification
(ALE). CVPR 2013. Akata, Reed, Walter, Lee & Schiele. Evaluation of output embeddings for
fine-grained image classification (SJE). CVPR 2015. Hung-yi Lee, Machine Learning lecture on
transfer learning (zero-shot learning: attribute embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from transferkit.methods.zeroshot import ZeroShotMethod

__all__ = ["AttributeEmbedding", "EmbeddingObjective", "hardest_negative_hinge"]


def hardest_negative_hinge(scores: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    r"""Mean over samples of :math:`\max(0,\; k - s_{n,y_n} + \max_{m \ne y_n} s_{n,m})`.

    ``scores`` (n_samples, n_classes) are compatibilities :math:`f(x^n)\cdot g(y^m)`.
    """
    true = scores.gather(1, y[:, None]).squeeze(1)
    others = scores.masked_fill(nn.functional.one_hot(y, scores.shape[1]).bool(), float("-inf"))
    return torch.clamp(margin - true + others.max(1).values, min=0).mean()


class ClassEncoder(nn.Module):
    """:math:`g`: identity (bilinear compatibility) or a two-layer network on the class vectors."""

    def __init__(self, n_in: int, n_out: int, hidden: int | None):
        super().__init__()
        if hidden is None:
            self.net = nn.Identity()
        else:
            self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        return self.net(S)


class EmbeddingObjective(nn.Module):
    """The margin loss of :func:`hardest_negative_hinge` over the seen classes' descriptions."""

    def __init__(self, f: nn.Module, g: ClassEncoder, S_seen: torch.Tensor, margin: float):
        super().__init__()
        self.f, self.g, self.margin = f, g, margin
        self.register_buffer("S_seen", S_seen)

    def forward(self, batch, progress: float):
        scores = self.f(batch["xs"]) @ self.g(self.S_seen).T
        y = batch["ys"]
        loss = hardest_negative_hinge(scores, y, self.margin)
        return {"loss": loss, "source_acc": (scores.argmax(1) == y).float().mean()}


@dataclass(eq=False, repr=False, kw_only=True)
class AttributeEmbedding(ZeroShotMethod):
    """Sample and class embeddings trained with the margin loss; nearest class by compatibility.

    Training takes the parameters of every network method (``backbone``, ``hidden``, ``epochs``, ``batch_size``,
    ``lr``, ``weight_decay``, ``seed``, ``device``, ``n_threads``, ``precision``, ``checkpoint_dir``, ``verbose``; see
    :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    compatibility : {"bilinear", "mlp"}
        ``"bilinear"``: :math:`\\theta(x)^\\top W y` (ALE / SJE); ``"mlp"``: :math:`f(x)\\cdot g(y)`
        with :math:`g` a two-layer network (the lecture).
    embed_dim : int
        Width of the common space for ``"mlp"`` (``"bilinear"`` uses the description's width).
    margin : float
        :math:`k` of the loss.
    """

    name: ClassVar[str] = "attribute-embedding"
    description: ClassVar[str] = "zero-shot: sample and class embeddings with a margin (ALE/SJE bilinear option)"
    paper: ClassVar[str] = "Akata et al., CVPR 2013 / 2015; the lecture's attribute embedding"

    _parameter_constraints: ClassVar[dict] = {
        **ZeroShotMethod._parameter_constraints,
        "compatibility": [StrOptions({"bilinear", "mlp"})],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "margin": [Interval(Real, 0, np.inf, closed="neither")],
    }

    compatibility: str = "bilinear"
    embed_dim: int = 64
    margin: float = 1.0

    def _n_out(self) -> int:
        return self.descriptions_.vectors.shape[1] if self.compatibility == "bilinear" else int(self.embed_dim)

    def _rebuild_module(self, name: str):
        if name == "class_encoder_":
            hidden = None if self.compatibility == "bilinear" else self.hidden
            return ClassEncoder(self.descriptions_.vectors.shape[1], self._n_out(), hidden)
        return super()._rebuild_module(name)

    def _fit_seen(self, X, y_idx, S_seen):
        d = S_seen.shape[1] if self.compatibility == "bilinear" else int(self.embed_dim)
        f = self._build(d)
        g = ClassEncoder(S_seen.shape[1], d, None if self.compatibility == "bilinear" else self.hidden)
        objective = EmbeddingObjective(f, g, torch.from_numpy(S_seen), float(self.margin))
        self.fit_result_ = self._train(objective, X, y_idx, "embedding")
        self.history_ = self.fit_result_.history
        self.model_, self.class_encoder_ = f.eval(), g.eval()

    def transform(self, X) -> np.ndarray:
        """:math:`f(x)`, the samples in the common space."""
        return self._forward(self.model_, self._check_X(X))

    def _scores(self, X, S):
        with torch.no_grad():
            G = self.class_encoder_.to("cpu")(torch.from_numpy(S)).numpy()
        return self._forward(self.model_, X) @ G.T
