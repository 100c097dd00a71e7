r"""Multi-source DAN: multi-kernel MMD between each labelled source and the target.

With :math:`K` labelled sources :math:`\mathcal D_{s_1}, \dots, \mathcal D_{s_K}` and one unlabelled
target, one network is trained on all the sources' labels while the activations of each source are
aligned with the target's, source by source:

.. math::

    \min_\Theta \frac{1}{n}\sum_{i=1}^{n} J(\theta(x_i), y_i)
        + \lambda\, \frac{1}{K} \sum_{k=1}^{K} \sum_{\ell \in L} d_k^2\big(h_\ell(\mathcal D_{s_k}),
          h_\ell(\mathcal D_t)\big),

:math:`d_k^2` DAN's multi-kernel MMD (Long et al., ICML 2015) on the layers :math:`L`. Pooling the
sources and aligning the pool instead only matches the *mixture* to the target: a source far from
the target can hide behind one that is close. Matching every source to the target is the
source-target part of M3SDA's moment matching (Peng, Bai, Xia, Huang, Saenko & Wang, "Moment
Matching for Multi-Source Domain Adaptation", ICCV 2019), here with DAN's kernel MMD in place of
the first two moments; M3SDA's source-source terms and per-source classifiers are not used.
Each batch draws its source rows from the pooled sources, so a source's term is computed on the
rows of that source in the batch (skipped when it has fewer than two).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from transferkit.methods.alignment import AlignmentObjective
from transferkit.methods.dan import DAN
from transferkit.methods.mdan import SeveralSources
from transferkit.nn.backbones import StagedNet

__all__ = ["MultiSourceDAN", "MultiSourceAlignmentObjective"]


class MultiSourceAlignmentObjective(AlignmentObjective):
    """:math:`\\ell_c + \\lambda \\frac1K \\sum_k \\sum_\\ell D(h_\\ell^{s_k}, h_\\ell^t)`: each source's rows
    against the target."""

    def alignment(self, out: dict, n: int, batch: dict) -> torch.Tensor:
        ds = batch["ds"]
        per_source = []
        for k in torch.unique(ds):
            rows = ds == k
            if int(rows.sum()) < 2:  # an MMD estimate needs two samples of each side
                continue
            per_source.append(
                sum(self.discrepancy(out[t][:n][rows].flatten(1), out[t][n:].flatten(1)) for t in self.taps)
            )
        return torch.stack(per_source).mean() if per_source else out["logits"].new_zeros(())


@dataclass(eq=False, repr=False, kw_only=True)
class MultiSourceDAN(SeveralSources, DAN):
    """DAN with several labelled sources: ``fit([source_1, source_2, ...], target)``, each source aligned
    with the target by its own multi-kernel MMD term.

    Parameters are those of :class:`~transferkit.methods.dan.DAN` (its defaults too). ``sources_``
    names the sources the model was trained on.
    """

    _single_source = "DAN"  # the method for one source, named when a single one is given
    name = "ms-dan"
    description = "multi-kernel MMD between each of several labelled sources and the target"
    paper = "Long et al., ICML 2015 (DAN); the source-target terms of Peng et al., ICCV 2019 (M3SDA)"

    def _objective(self, net: StagedNet, n_classes: int):
        plain = super()._objective(net, n_classes)
        return MultiSourceAlignmentObjective(
            plain.net, plain.taps, plain.discrepancy, plain.lambda_max, plain.lambda_schedule, plain.gamma
        )
