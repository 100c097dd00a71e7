r"""Deep CORAL: correlation alignment of the last layer's activations.

Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016
Workshops (TASK-CV).

.. math::

    \ell = \ell_{CLASS} + \lambda\, \ell_{CORAL}, \qquad
    \ell_{CORAL} = \frac{1}{4d^2} \lVert C_S - C_T \rVert_F^2,

with :math:`C_S, C_T` the feature covariances of a source and a target batch, applied to the
last classification layer (fc8) in the paper; :math:`\lambda` is chosen so that the two losses
are of similar size at the end of training.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.methods.alignment import AlignmentMethod
from transferkit.methods.base import Setting
from transferkit.nn.backbones import StagedNet
from transferkit.nn.divergences import coral_loss


@dataclass(eq=False, repr=False, kw_only=True)
class DeepCORAL(AlignmentMethod):
    """Deep CORAL: match second-order statistics of source and target activations.

    The training parameters are those of :class:`~transferkit.methods.dann.DANN`.

    Parameters
    ----------
    taps : sequence of str, optional
        Layers to align; default ``("logits",)`` as in the paper.
    lambda_max : float
        Weight of the CORAL loss (1).
    """

    min_target_samples = 2  # a covariance needs two samples
    name = "deep-coral"
    setting = Setting(source_labels=True, target_labels=False)
    description = "aligns the covariances of source and target activations of the last layer"
    paper = "Sun & Saenko, Deep CORAL: Correlation Alignment for Deep Domain Adaptation, ECCV-W 2016"

    bottleneck: int = 0
    taps: tuple[str, ...] | None = None
    lambda_max: float = 1.0
    lambda_schedule: str = "constant"

    def _discrepancy(self):
        return coral_loss

    def _default_taps(self, net: StagedNet) -> tuple[str, ...]:
        return ("logits",)
