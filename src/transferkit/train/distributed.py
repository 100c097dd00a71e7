"""Data-parallel plumbing for ``torchrun``: process group, rank, sharding and the DDP wrapper.

Nothing here runs unless the environment says so (``WORLD_SIZE`` > 1, as ``torchrun`` sets), so
the same code trains on one CPU, one GPU or N processes.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

__all__ = ["init_from_env", "is_main_process", "local_rank", "shard", "wrap"]


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def init_from_env() -> tuple[int, int]:
    """Join the process group ``torchrun`` describes; return ``(rank, world_size)``.

    Uses NCCL when CUDA is available and gloo otherwise. Without ``torchrun`` this is ``(0, 1)``.
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def shard(index: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's share of a global batch of indices (every ``world``-th, from ``rank``)."""
    return index if world == 1 else index[rank::world]


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` itself in one process; a DistributedDataParallel wrapper under ``torchrun``."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=getattr(module, "find_unused_parameters", False)
    )
