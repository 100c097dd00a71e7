"""Source-only training: the same network as the adaptation methods, with no adaptation.

The baseline every domain-adaptation table needs ("NN" in Ganin et al. 2016): minimise the
source classification loss alone,

.. math:: \\min_{\\theta_f, \\theta_y} \\frac{1}{n} \\sum_{i=1}^{n} \\ell\\big(G_y(G_f(x_i)), y_i\\big),

and apply the result to the target. It draws the same paired batches as DANN (target batches
are drawn and ignored), so both see the same number of optimiser steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from transferkit.methods.base import NeuralTransferMethod, Setting
from transferkit.nn.backbones import StagedNet


class SourceOnlyObjective(nn.Module):
    """Cross-entropy on the labelled source batch."""

    def __init__(self, net: StagedNet):
        super().__init__()
        self.net = net

    def forward(self, batch, progress: float):
        logits = self.net(batch["xs"])
        loss = F.cross_entropy(logits, batch["ys"])
        return {"loss": loss, "source_acc": (logits.argmax(1) == batch["ys"]).float().mean()}


@dataclass(eq=False, repr=False, kw_only=True)
class SourceOnly(NeuralTransferMethod):
    """Train on labelled source data only; the no-adaptation baseline.

    Parameters are those of :class:`~transferkit.methods.dann.DANN` without the adversarial ones.
    """

    name = "source-only"
    setting = Setting(source_labels=True, target_labels=False, target=False)
    description = "the network trained on labelled source data alone (the no-adaptation baseline)"
    paper = "baseline 'NN' of Ganin et al., JMLR 2016"

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        return SourceOnlyObjective(net)
