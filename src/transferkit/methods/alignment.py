r"""Shared machinery of the discrepancy-based methods (DDC, DAN, Deep CORAL).

They all minimise the source classification loss plus a weighted discrepancy between source and
target activations at some layers :math:`\ell \in L`:

.. math::

    \min_\theta \frac{1}{n}\sum_{i=1}^{n} \ell_c(f_\theta(x^s_i), y^s_i)
        + \lambda \sum_{\ell \in L} D\big(h_\ell(X^s), h_\ell(X^t)\big),

and differ in :math:`D` (linear MMD, multi-kernel MMD, CORAL) and in :math:`L`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.base import AdaptationMethod
from transferkit.nn.backbones import StagedNet, add_bottleneck
from transferkit.nn.grl import ganin_lambda

Discrepancy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class AlignmentObjective(nn.Module):
    """:math:`\\ell_c + \\lambda_p \\sum_{\\ell} D(h_\\ell^s, h_\\ell^t)` on the tapped layers.

    ``taps`` name stages of the network or ``"logits"``. Source and target go through the network
    in one batch, so layers see both domains, as in the papers' implementations.
    """

    def __init__(
        self,
        net: StagedNet,
        taps: Sequence[str],
        discrepancy: Discrepancy,
        lambda_max: float,
        lambda_schedule: str = "constant",
        gamma: float = 10.0,
    ):
        super().__init__()
        self.net = net
        self.taps = tuple(taps)
        self.discrepancy = discrepancy
        self.lambda_max = float(lambda_max)
        self.lambda_schedule = lambda_schedule
        self.gamma = gamma

    def trade_off(self, progress: float) -> float:
        """:math:`\\lambda_p`: constant, or ramped with Ganin's schedule."""
        if self.lambda_schedule == "constant":
            return self.lambda_max
        return self.lambda_max * ganin_lambda(progress, self.gamma)

    def alignment(self, out: dict, n: int, batch: dict) -> torch.Tensor:
        """:math:`\\sum_\\ell D(h_\\ell^s, h_\\ell^t)` over the tapped layers; ``out`` holds them for the source
        rows (the first ``n``) and the target rows together."""
        return sum(self.discrepancy(out[t][:n].flatten(1), out[t][n:].flatten(1)) for t in self.taps)

    def forward(self, batch, progress: float):
        xs, ys, xt = batch["xs"], batch["ys"], batch["xt"]
        n = len(xs)
        stage_taps = [t for t in self.taps if t != "logits"]
        out = self.net.forward_taps(torch.cat([xs, xt]), stage_taps)
        logits_s = out["logits"][:n]
        loss_y = F.cross_entropy(logits_s, ys)
        loss_a = self.alignment(out, n, batch)
        lam = self.trade_off(progress)
        return {
            "loss": loss_y + lam * loss_a,
            "loss_y": loss_y.detach(),
            "discrepancy": loss_a.detach(),
            "trade_off": torch.tensor(lam),
            "source_acc": (logits_s.argmax(1) == ys).float().mean(),
        }


@dataclass(eq=False, repr=False, kw_only=True)
class AlignmentMethod(AdaptationMethod):
    """Base of DDC, DAN and Deep CORAL: subclasses provide the discrepancy and default layers."""

    _parameter_constraints = {
        **AdaptationMethod._parameter_constraints,
        "bottleneck": [Interval(Integral, 0, None, closed="left")],
        "taps": [tuple, list, None],
    }

    def _discrepancy(self) -> Discrepancy:  # pragma: no cover - abstract
        raise NotImplementedError

    def _default_taps(self, net: StagedNet) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        taps = tuple(self.taps) if self.taps else self._default_taps(net)
        known = set(net.stage_names) | {"logits"}
        unknown = [t for t in taps if t not in known]
        if unknown:
            raise ValueError(f"taps={list(taps)}: unknown layers {unknown}; this network has {sorted(known)}.")
        return AlignmentObjective(net, taps, self._discrepancy(), self.lambda_max, self.lambda_schedule)

    def _build_net(self, input_shape: tuple[int, ...], n_classes: int) -> StagedNet:
        net = super()._build_net(input_shape, n_classes)
        return add_bottleneck(net, self.bottleneck) if self.bottleneck else net
