r"""MDAN: domain-adversarial training with several labelled sources.

Zhao, Zhang, Wu, Moura, Costeira & Gordon, "Adversarial Multiple Source Domain Adaptation",
NeurIPS 2018. One feature extractor and one label classifier for all :math:`K` sources, and one
domain classifier :math:`D_k` per source, telling source :math:`k` from the target. With
:math:`\ell_k = L_y^{(k)} - \lambda L_d^{(k)}` the DANN objective of source :math:`k` (its
classification loss, and its domain classifier's loss, reversed for the features), the *soft-max*
variant minimises the smooth maximum over the sources,

.. math:: \mathcal L = \frac{1}{\gamma} \log \sum_{k=1}^{K} \exp\big(\gamma\, \ell_k\big),

so the training follows the source that is hardest to transfer from, while the others still count;
:math:`\gamma \to \infty` is the hard maximum, :math:`\gamma \to 0` the mean. The gradient reversal
layer turns the saddle point into one backward pass, as in DANN.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.data import Domain, as_domain, densify
from transferkit.methods.base import _check_same_label_kind
from transferkit.methods.dann import DANN, DANNObjective, domain_adversarial_loss
from transferkit.nn.backbones import StagedNet
from transferkit.nn.grl import grad_reverse

__all__ = ["MDAN", "SeveralSources", "pool_sources"]


def pool_sources(sources, single: str) -> tuple[Domain, np.ndarray]:
    """Several labelled source Domains as one, and each row's source index; ``single``: the method for one source."""
    if isinstance(sources, Domain) or not isinstance(sources, (list, tuple)) or len(sources) < 2:
        raise ValueError(
            f"sources is {type(sources).__name__}; expected a list of two or more labelled Domains "
            f"(one source: {single})."
        )
    domains = [as_domain(s, f"sources[{i}]") for i, s in enumerate(sources)]
    for i, d in enumerate(domains):
        if d.y is None:
            raise ValueError(f"sources[{i}] has no labels; every source must be labelled.")
        # names in one source, numbers in another: nothing matches
        _check_same_label_kind(domains[0].y, d.y, ("sources[0].y", f"sources[{i}].y"))
        if d.feature_shape != domains[0].feature_shape:
            raise ValueError(
                f"sources[{i}] has samples of shape {d.feature_shape}, sources[0] {domains[0].feature_shape}; "
                "expected the same."
            )
    if all(d.sparse for d in domains):
        X = scipy.sparse.vstack([d.X for d in domains], format="csr")
    else:
        X = np.concatenate([densify(d.X, f"sources[{i}].X") for i, d in enumerate(domains)])
    y = np.concatenate([d.y for d in domains])
    ids = np.concatenate([np.full(len(d), i, dtype=np.int64) for i, d in enumerate(domains)])
    return Domain(X, y, "+".join(d.name for d in domains)), ids


class MDANObjective(DANNObjective):
    """The soft maximum over the sources of each source's DANN loss."""

    def __init__(self, net, discriminators: nn.ModuleList, gamma_softmax: float, **dann):
        super().__init__(net, discriminators[0], **dann)
        self.discriminators = discriminators
        self.gamma_softmax = gamma_softmax

    def forward(self, batch, progress: float):
        xs, ys, xt, ds = batch["xs"], batch["ys"], batch["xt"], batch["ds"]
        h_s, h_t = self.net.forward_to(xs, self.adapt_at), self.net.forward_to(xt, self.adapt_at)
        logits = self.net.forward_from(h_s, self.adapt_at)
        coeff = self.grl_lambda(progress)
        d_t_all = [d(grad_reverse(h_t, coeff)) for d in self.discriminators]
        losses = []
        for k, disc in enumerate(self.discriminators):
            mask = ds == k
            if not bool(mask.any()):  # a batch without this source's rows: it cannot count here
                continue
            loss_y = F.cross_entropy(logits[mask], ys[mask])
            loss_d = domain_adversarial_loss(disc(grad_reverse(h_s[mask], coeff)), d_t_all[k])
            losses.append(loss_y + loss_d)
        stacked = torch.stack(losses)
        loss = torch.logsumexp(self.gamma_softmax * stacked, 0) / self.gamma_softmax
        return {"loss": loss, "loss_max": stacked.max().detach(), "loss_mean": stacked.mean().detach()}


class SeveralSources:
    """``fit([source_1, source_2, ...], target)`` for a network method trained on the pooled sources, each
    batch row carrying the index of its source (``batch["ds"]``) for the objective."""

    def fit(self, source, target=None, sample_domain=None):
        """Fit on a list of labelled source Domains and the unlabelled ``target``."""
        self._validate_params()
        pooled, self._source_ids = pool_sources(source, self._single_source)
        self.sources_ = [getattr(s, "name", f"source {i}") for i, s in enumerate(source)]
        if self.select_epoch is not None:
            raise ValueError(
                f"select_epoch holds out part of the source; {type(self).__name__} does not support it yet."
            )
        try:
            return super().fit(pooled, target, sample_domain)
        finally:
            del self._source_ids

    def _extra_source_arrays(self) -> dict:
        return {"ds": self._source_ids}


@dataclass(eq=False, repr=False, kw_only=True)
class MDAN(SeveralSources, DANN):
    """DANN with several labelled sources: ``fit([source_1, source_2, ...], target)``.

    Parameters are those of :class:`~transferkit.methods.dann.DANN`, and ``gamma_softmax``: the
    temperature :math:`\\gamma` of the soft maximum over the sources (1, as in the paper's
    soft-max variant). ``sources_`` names the sources the model was trained on.
    """

    _single_source = "DANN"  # the method for one source, named when a single one is given
    name = "mdan"
    description = (
        "multi-source domain-adversarial training: a domain classifier per source, the soft-max of their losses"
    )
    paper = "Zhao et al., Adversarial Multiple Source Domain Adaptation, NeurIPS 2018"

    _parameter_constraints = {
        **DANN._parameter_constraints,
        "gamma_softmax": [Interval(Real, 0, np.inf, closed="neither")],
    }

    gamma_softmax: float = 1.0

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        adapt_at = self.adapt_at or net.adapt_at
        width = net.stage_width(adapt_at)
        k = int(self._source_ids.max()) + 1
        discriminators = nn.ModuleList(self._domain_classifier(width) for _ in range(k))
        self.discriminator_ = discriminators
        return MDANObjective(
            net,
            discriminators,
            self.gamma_softmax,
            adapt_at=adapt_at,
            lambda_max=self.lambda_max,
            lambda_schedule=self.lambda_schedule,
            gamma=self.gamma,
        )
