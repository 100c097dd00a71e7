"""Should I transfer, from where, and which layers: the advisor and the negative-transfer checks.

- :func:`advise`: the quadrant, the methods that fit, candidate sources ranked by transferability;
- :func:`transfer_gain`, :func:`finetune_gain`: does the source's representation help this target?
- :func:`layer_transfer_sweep`: accuracy against the number of copied layers (Yosinski et al. 2014).
"""

from transferkit.advice.advisor import Advice, advise
from transferkit.advice.layer_sweep import (
    CONDITIONS,
    SweepRun,
    layer_transfer_sweep,
    plot_layer_sweep,
    summarize_layer_sweep,
)
from transferkit.advice.negative_transfer import TransferGain, finetune_gain, transfer_gain

__all__ = [
    "Advice",
    "CONDITIONS",
    "SweepRun",
    "TransferGain",
    "advise",
    "finetune_gain",
    "layer_transfer_sweep",
    "plot_layer_sweep",
    "summarize_layer_sweep",
    "transfer_gain",
]
