"""How many threads a fit uses: chosen from the size of its training step, restored afterwards.

torch uses one intra-op thread per core by default. For the small networks most transfer
problems train (a shallow network on bag-of-words vectors, a LeNet on digits), a second thread
gains nothing on a training step and costs a third more CPU; beside another busy process the
threads wait for each other and a step becomes several times slower. So a step whose forward pass
needs fewer than :data:`SMALL_STEP_MACS` multiply-adds runs on one thread; larger steps keep
torch's setting. The first step of a fit runs on one thread while its multiply-adds are counted
(so a fit's arithmetic does not depend on the machine's core count when its steps are small). A
large step sums in an order that follows the thread count, and training can amplify that rounding:
the same seed repeats a fit bit for bit only on the same number of threads. The caller's setting is
restored when the fit ends, whatever happens.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["SMALL_STEP_MACS", "MacCounter", "choose_threads", "step_macs", "thread_budget"]

#: Below this many multiply-adds in a training step's forward pass, one thread (see benchmarks/threads.py).
SMALL_STEP_MACS = 100_000_000


class MacCounter:
    """Counts the multiply-adds of the Linear and convolution layers of ``module`` from now until
    :meth:`stop`, by forward hooks."""

    def __init__(self, module: nn.Module):
        self.total = 0
        layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
        self._handles = [m.register_forward_hook(self._count) for m in layers]

    def _count(self, layer, inputs, output) -> None:
        per_output = layer.in_features if isinstance(layer, nn.Linear) else layer.weight[0].numel()
        self.total += output.numel() * per_output  # a convolution: in_channels / groups x kernel positions

    def stop(self) -> int:
        for h in self._handles:
            h.remove()
        self._handles = []
        return int(self.total)


def step_macs(module: nn.Module, run) -> int:
    """The multiply-adds of the Linear and convolution layers of ``module`` while ``run()`` executes."""
    counter = MacCounter(module)
    try:
        run()
    finally:
        macs = counter.stop()
    return macs


def choose_threads(macs: int, requested: int | None = None, default: int | None = None) -> int:
    """``requested`` when given; else one thread for a step under :data:`SMALL_STEP_MACS`, else
    ``default`` (torch's current setting when not given)."""
    if requested is not None:
        return int(requested)
    return 1 if macs < SMALL_STEP_MACS else (default or torch.get_num_threads())


@contextmanager
def thread_budget(n: int):
    """torch's intra-op threads set to ``n`` inside the block, the caller's setting back after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
