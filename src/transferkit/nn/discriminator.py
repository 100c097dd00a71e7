"""The domain discriminator: a small MLP that returns one logit per sample."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DomainDiscriminator"]


class DomainDiscriminator(nn.Module):
    """MLP ``in_features -> hidden... -> 1`` returning the domain logit (target = 1).

    It returns a raw logit for :func:`torch.nn.functional.binary_cross_entropy_with_logits`,
    never a probability: a softmax over a single logit is constant, so the domain loss would
    send no gradient to the features and adversarial training would silently do nothing.

    Parameters
    ----------
    in_features : int
        Width of the features being aligned.
    hidden : sequence of int
        Hidden widths; ``()`` gives a logistic-regression discriminator (the shallow DANN's
        domain regressor). Ganin et al. (2016) use ``(100,)`` for digits and ``(1024, 1024)``
        for Office.
    dropout : float
        Dropout after each hidden layer.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (100,), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(1)
