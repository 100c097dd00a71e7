r"""CDAN and CDAN+E: conditional domain-adversarial training.

Long, Cao, Wang & Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.

DANN's domain classifier sees the features :math:`f` alone, so it can be fooled while the classes
stay misaligned. CDAN's sees the *multilinear map* of the features and the classifier's
predictions :math:`g = \mathrm{softmax}(G_y(f))`,

.. math::

    T_\otimes(f, g) = f \otimes g \in \mathbb{R}^{d_f C}, \qquad
    T_\odot(f, g) = \frac{1}{\sqrt{d}} (R_f f) \odot (R_g g) \in \mathbb{R}^{d}

(the outer product flattened, or, when :math:`d_f C > 4096`, the randomized map with fixed Gaussian
matrices :math:`R_f, R_g` and :math:`d = 1024`), and the saddle point is DANN's with
:math:`G_d(T(f, g))` in place of :math:`G_d(f)`; the predictions are not trained through the map.
CDAN+E weighs each sample's domain loss by the certainty of its prediction,

.. math::

    w(H(g)) = 1 + e^{-H(g)}, \qquad H(g) = -\sum_c g_c \log g_c,

normalised to mean 1 within each domain's batch (as in the authors' code: normalised over both, the
source, whose predictions are trained and certain, would outweigh the target), so that
hard-to-transfer, uncertain samples count less than the certain ones of their domain. The weights
depend on the network, so its minimisation of :math:`-\lambda L_d^w` reaches them too: through the
reversal layer the predictions ascend the weighted domain loss, growing more certain where the
domain classifier is fooled (the authors' code reverses the entropy's gradient the same way; the
normalisers are constants there and here).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.dann import DANN, DANNObjective
from transferkit.nn.backbones import StagedNet
from transferkit.nn.grl import grad_reverse

__all__ = ["CDAN", "MultilinearMap", "entropy_weights"]

#: Above this many outer-product entries the randomized multilinear map is used (the paper's 4096).
MAX_OUTER = 4096


class MultilinearMap(nn.Module):
    """:math:`T(f, g)`: the flattened outer product :math:`f \\otimes g`, or the randomized map
    :math:`(R_f f) \\odot (R_g g) / \\sqrt{d}` with fixed Gaussian :math:`R_f, R_g` (buffers, not trained)."""

    def __init__(self, d_f: int, n_classes: int, randomized_dim: int | None = None, seed: int = 0):
        super().__init__()
        self.randomized = randomized_dim is not None
        if self.randomized:
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("R_f", torch.randn(d_f, randomized_dim, generator=gen))
            self.register_buffer("R_g", torch.randn(n_classes, randomized_dim, generator=gen))
            self.out_features = randomized_dim
        else:
            self.out_features = d_f * n_classes

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.randomized:
            return (f @ self.R_f) * (g @ self.R_g) / self.out_features**0.5
        return torch.bmm(f.unsqueeze(2), g.unsqueeze(1)).flatten(1)


def entropy_weights(g: torch.Tensor) -> torch.Tensor:
    """:math:`w = 1 + e^{-H(g)}` per sample, normalised to mean 1 over ``g`` (one domain's batch, CDAN+E);
    the normaliser is a constant to autograd."""
    h = -(g * torch.log(g.clamp_min(1e-12))).sum(1)
    w = 1.0 + torch.exp(-h)
    return w / w.detach().sum() * len(w)


class CDANObjective(DANNObjective):
    """:math:`L_y + L_d`, the domain classifier fed :math:`T(f, g)` through the gradient reversal layer."""

    def __init__(
        self, net, discriminator, mapping: MultilinearMap, entropy_conditioning: bool, weight_gradient=True, **dann
    ):
        super().__init__(net, discriminator, **dann)
        self.mapping = mapping
        self.entropy_conditioning = entropy_conditioning
        self.weight_gradient = weight_gradient  # False: the weights are constants (an ablation, not the paper)

    def forward(self, batch, progress: float):
        xs, ys, xt = batch["xs"], batch["ys"], batch["xt"]
        f_s, f_t = self.features(xs, xt)
        logits_s = self.net.forward_from(f_s, self.adapt_at)
        logits_t = self.net.forward_from(f_t, self.adapt_at)
        loss_y = F.cross_entropy(logits_s, ys)
        g = torch.softmax(torch.cat([logits_s, logits_t]), 1)
        f = torch.cat([f_s, f_t]).flatten(1)
        coeff = self.grl_lambda(progress)
        # the map conditions on g but does not train it
        d = self.discriminator(grad_reverse(self.mapping(f, g.detach()), coeff)).reshape(-1)
        labels = torch.cat([torch.zeros(len(ys)), torch.ones(xt.shape[0])]).to(d.device)
        loss_d = F.binary_cross_entropy_with_logits(d, labels, reduction="none")
        if self.entropy_conditioning:
            g_w = grad_reverse(g, coeff) if self.weight_gradient else g.detach()
            g_s, g_t = g_w.split([len(ys), xt.shape[0]])
            loss_d = loss_d * torch.cat([entropy_weights(g_s), entropy_weights(g_t)])
        loss_d = loss_d.mean()
        with torch.no_grad():
            domain_acc = ((d > 0).float() == labels).float().mean()
        return {
            "loss": loss_y + loss_d,
            "loss_y": loss_y.detach(),
            "loss_d": loss_d.detach(),
            "grl_lambda": torch.tensor(coeff),
            "domain_acc": domain_acc,
        }


@dataclass(eq=False, repr=False, kw_only=True)
class CDAN(DANN):
    """Conditional domain-adversarial network; with ``entropy_conditioning`` (default), CDAN+E.

    Parameters are those of :class:`~transferkit.methods.dann.DANN`, and:

    entropy_conditioning : bool
        Weigh each sample's domain loss by :math:`1 + e^{-H(g)}` (CDAN+E).
    randomized_dim : int or None
        The width :math:`d` of the randomized multilinear map, used when features times classes
        exceed 4096 (1024 in the paper); ``None``: always the full outer product, as the authors'
        digit script does for LeNet's 500 features times 10 classes.

    ``adapt_at`` defaults to the last stage: the features the classifier reads, as in the paper.
    """

    name = "cdan"
    description = "conditional adversarial training: the domain classifier sees features times predictions (+E)"
    paper = "Long, Cao, Wang & Jordan, Conditional Adversarial Domain Adaptation, NeurIPS 2018"

    _parameter_constraints = {
        **DANN._parameter_constraints,
        "entropy_conditioning": ["boolean"],
        "randomized_dim": [Interval(Integral, 1, None, closed="left"), None],
    }

    entropy_conditioning: bool = True
    randomized_dim: int | None = 1024

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        adapt_at = self.adapt_at or net.stage_names[-1]
        width = net.stage_width(adapt_at)
        large = self.randomized_dim is not None and width * n_classes > MAX_OUTER
        mapping = MultilinearMap(width, n_classes, self.randomized_dim if large else None, seed=self.seed)
        self.discriminator_ = self._domain_classifier(mapping.out_features)
        return CDANObjective(
            net,
            self.discriminator_,
            mapping,
            self.entropy_conditioning,
            adapt_at=adapt_at,
            lambda_max=self.lambda_max,
            lambda_schedule=self.lambda_schedule,
            gamma=self.gamma,
        )
