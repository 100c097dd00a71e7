r"""DeViSE: a visual model projected into the space of word vectors (Frome et al., NIPS 2013).

Training runs in the paper's two steps:

1. a visual classifier is trained with softmax on the seen classes;
2. its classification layer is replaced by a linear projection :math:`M` into the word-vector
   space, trained with the hinge rank loss (Frome et al. 2013, eq. 1)

   .. math:: \mathrm{loss}(x, y) = \sum_{j \ne y} \max\bigl(0,\;
             \text{margin} - t_y^\top M v(x) + t_j^\top M v(x)\bigr),

   where :math:`v(x)` is the visual feature vector, :math:`t_j` the unit-length word vector of
   seen class :math:`j` and the margin is 0.1 (the paper's value). The paper first trains
   :math:`M` alone and then also the lower layers; ``finetune_lr_mult`` sets their learning rate
   relative to :math:`M`'s (0 keeps them frozen).

At test time the projected sample is compared with every candidate class's word vector by
cosine similarity (the paper's nearest neighbours in the embedding space).

Reference
---------
Frome, Corrado, Shlens, Bengio, Dean, Ranzato & Mikolov. DeViSE: A deep visual-semantic
embedding model. NIPS 2013.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.zeroshot import SoftmaxObjective, ZeroShotMethod

__all__ = ["DeViSE", "hinge_rank_loss"]


def hinge_rank_loss(projected: torch.Tensor, T: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    r"""Mean over samples of :math:`\sum_{j \ne y} \max(0, \text{margin} - t_y^\top p + t_j^\top p)`.

    ``projected`` (n, d) is :math:`M v(x)`; ``T`` (n_classes, d) the class word vectors.
    """
    s = projected @ T.T
    true = s.gather(1, y[:, None])
    terms = torch.clamp(margin - true + s, min=0)
    terms = terms.masked_fill(F.one_hot(y, T.shape[0]).bool(), 0.0)  # j = y is not a term
    return terms.sum(1).mean()


class _RankObjective(nn.Module):
    def __init__(self, net, T: torch.Tensor, margin: float, lr_mult: float):
        super().__init__()
        self.net, self.margin, self.lr_mult = net, margin, lr_mult
        self.register_buffer("T", T)

    def param_groups(self):
        groups = [{"params": list(self.net.head.parameters()), "lr_mult": 1.0}]
        if self.lr_mult > 0:
            groups.append({"params": list(self.net.stages.parameters()), "lr_mult": self.lr_mult})
        return groups

    def forward(self, batch, progress):
        if self.lr_mult == 0:  # frozen visual model: no graph through it
            with torch.no_grad():
                v = self.net.forward_features(batch["xs"])
            p = self.net.forward_head(v)
        else:
            p = self.net(batch["xs"])
        loss = hinge_rank_loss(p, self.T, batch["ys"], self.margin)
        return {"loss": loss, "source_acc": ((p @ self.T.T).argmax(1) == batch["ys"]).float().mean()}


@dataclass(eq=False, repr=False, kw_only=True)
class DeViSE(ZeroShotMethod):
    """Visual softmax model, then a linear map into word-vector space under the hinge rank loss.

    Training takes the parameters of every network method (``backbone``, ``hidden``, ``epochs``, ``batch_size``,
    ``lr``, ``weight_decay``, ``seed``, ``device``, ``n_threads``, ``precision``, ``checkpoint_dir``, ``verbose``; see
    :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    margin : float
        The hinge rank loss's margin (0.1 in the paper).
    pretrain_epochs : int
        Epochs of step 1 (softmax on the seen classes); ``epochs`` are those of step 2.
    finetune_lr_mult : float
        Learning rate of the visual layers during step 2, relative to the projection's; 0 freezes them.
    """

    name: ClassVar[str] = "devise"
    description: ClassVar[str] = "zero-shot: visual model projected onto class-name word vectors (hinge rank loss)"
    paper: ClassVar[str] = "Frome et al., NIPS 2013"

    _parameter_constraints: ClassVar[dict] = {
        **ZeroShotMethod._parameter_constraints,
        "margin": [Interval(Real, 0, np.inf, closed="neither")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "finetune_lr_mult": [Interval(Real, 0, np.inf, closed="left")],  # 0: the visual model stays frozen
    }

    margin: float = 0.1
    pretrain_epochs: int = 10
    finetune_lr_mult: float = 0.1

    def _n_out(self) -> int:  # the projection M into the word space
        return self.descriptions_.vectors.shape[1]

    def _fit_seen(self, X, y_idx, S_seen):
        net = self._build(len(S_seen))
        self.pretrain_result_ = self._train(SoftmaxObjective(net), X, y_idx, "softmax", epochs=self.pretrain_epochs)
        T = torch.from_numpy(_unit(S_seen))
        torch.manual_seed(self.seed)
        net.head = nn.Linear(net.feature_dim, T.shape[1])  # M: features -> word space
        objective = _RankObjective(net, T, float(self.margin), float(self.finetune_lr_mult))
        self.fit_result_ = self._train(objective, X, y_idx, "projection")
        self.history_ = self.pretrain_result_.history + self.fit_result_.history
        self.model_ = net.eval()

    def transform(self, X) -> np.ndarray:
        """:math:`M v(x)`: samples projected into the word-vector space."""
        return self._forward(self.model_, self._check_X(X))

    def _scores(self, X, S):
        return _unit(self._forward(self.model_, X)) @ _unit(S).T


def _unit(A: np.ndarray) -> np.ndarray:
    return (A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)).astype(np.float32)
