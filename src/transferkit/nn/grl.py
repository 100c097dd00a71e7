r"""Gradient reversal (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016).

The gradient reversal layer :math:`R_\lambda` is the identity in the forward pass and multiplies
the gradient by :math:`-\lambda` in the backward pass:

.. math::

    R_\lambda(x) = x, \qquad \frac{\partial R_\lambda}{\partial x} = -\lambda I.

Placed between the feature extractor :math:`G_f` and the domain classifier :math:`G_d`, it lets
one backward pass minimise the domain loss in :math:`\theta_d` while maximising it in
:math:`\theta_f`: the saddle point of
:math:`E(\theta_f,\theta_y,\theta_d) = L_y(\theta_f,\theta_y) - \lambda L_d(\theta_f,\theta_d)`.

The coefficient is an explicit argument, never a counter hidden in ``forward``: the training loop
computes it from training progress with :func:`ganin_lambda` and logs it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["grad_reverse", "GradientReversal", "ganin_lambda"]


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.coeff * grad_output, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    r"""Identity forward, gradient multiplied by ``-coeff`` backward (:math:`R_\lambda`)."""
    return _GradReverse.apply(x, float(coeff))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``coeff`` from outside as training progresses."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff:g}"


def ganin_lambda(progress: float, gamma: float = 10.0) -> float:
    r"""Ganin's schedule for the adaptation factor, rising from 0 to 1.

    .. math:: \lambda_p = \frac{2}{1 + \exp(-\gamma p)} - 1

    with :math:`p \in [0, 1]` the training progress and :math:`\gamma = 10` (JMLR 2016, Sec. 5.2.2).
    It damps the noisy domain signal early in training.
    """
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0
