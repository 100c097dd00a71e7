r"""Deep Domain Confusion (DDC).

Tzeng, Hoffman, Zhang, Saenko & Darrell, "Deep Domain Confusion: Maximizing for Domain
Invariance", arXiv:1412.3474, 2014.

An adaptation layer (a narrow fully connected layer, 256 units in the paper) is inserted before
the classifier, and the squared MMD with a linear kernel between source and target activations
of that layer is added to the source loss:

.. math::

    \mathcal{L} = \mathcal{L}_C(X_S, y) + \lambda\, \mathrm{MMD}^2(X_S, X_T),

    \mathrm{MMD}(X_S, X_T) = \Big\lVert \frac{1}{|X_S|}\sum_{x_s} \phi(x_s)
        - \frac{1}{|X_T|}\sum_{x_t} \phi(x_t) \Big\rVert,

with :math:`\lambda = 0.25` in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from transferkit.methods.alignment import AlignmentMethod
from transferkit.methods.base import Setting
from transferkit.nn.backbones import StagedNet
from transferkit.nn.divergences import mmd2


@dataclass(eq=False, repr=False, kw_only=True)
class DDC(AlignmentMethod):
    """Deep Domain Confusion: linear-kernel MMD on an adaptation layer.

    The training parameters are those of :class:`~transferkit.methods.dann.DANN`.

    Parameters
    ----------
    bottleneck : int
        Width of the adaptation layer (256 in the paper); 0 measures MMD on the backbone's
        ``adapt_at`` stage instead.
    lambda_max : float
        :math:`\\lambda`, the weight of the MMD term (0.25).
    lambda_schedule : {"constant", "ganin"}
        Hold :math:`\\lambda` or ramp it up with Ganin's schedule.
    taps : sequence of str, optional
        Layers whose MMD is penalised; default the adaptation layer.
    """

    name = "ddc"
    setting = Setting(source_labels=True, target_labels=False)
    description = "MMD between source and target activations of an adaptation layer, added to the source loss"
    paper = "Tzeng et al., Deep Domain Confusion: Maximizing for Domain Invariance, arXiv 2014"

    bottleneck: int = 256
    taps: tuple[str, ...] | None = None
    lambda_max: float = 0.25
    lambda_schedule: str = "constant"

    def _discrepancy(self):
        return partial(mmd2, kernel="linear")

    def _default_taps(self, net: StagedNet) -> tuple[str, ...]:
        return (net.adapt_at,)
