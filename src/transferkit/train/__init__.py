"""The training loop, checkpoints, schedules and data-parallel plumbing."""

from transferkit.train.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from transferkit.train.loop import FitConfig, FitResult, fit_loop, resolve_device
from transferkit.train.schedules import LR_SCHEDULES, ganin_lr, lr_at

__all__ = [
    "LR_SCHEDULES",
    "CheckpointError",
    "CheckpointManager",
    "FitConfig",
    "FitResult",
    "fit_loop",
    "ganin_lr",
    "load_checkpoint",
    "lr_at",
    "resolve_device",
    "save_checkpoint",
]
