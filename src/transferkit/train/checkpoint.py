"""Atomic checkpoints that load without executing code.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the final name, so a crash leaves either the old file or the new one, never half of one. Loading
uses ``torch.load(weights_only=True)``: tensors and plain containers only, no pickled code.
The manager keeps the last ``keep`` checkpoints, so a file damaged after the fact is skipped with
a warning and the previous good one is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
import zlib
from pathlib import Path

import torch

try:  # POSIX file locks; elsewhere saves are not serialised between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["CheckpointError", "CheckpointManager", "checksum", "load_checkpoint", "save_checkpoint", "why_not_loaded"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (corrupt, truncated, or not a transferkit checkpoint)."""


def checksum(state) -> int:
    """A CRC-32 of every tensor's bytes and every plain value in ``state``, in a fixed order.

    torch does not check the zip's CRCs when loading, so a flipped bit inside a tensor would load as
    a silently different model; the checksum stored beside the state catches it.
    """
    crc = 0

    def walk(value, crc):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            crc = zlib.crc32(str((t.dtype, tuple(t.shape))).encode(), crc)
            return zlib.crc32(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"", crc)
        if isinstance(value, dict):
            for k in sorted(value, key=str):
                crc = walk(value[k], zlib.crc32(str(k).encode(), crc))
            return crc
        if isinstance(value, (list, tuple)):
            for v in value:
                crc = walk(v, crc)
            return crc
        return zlib.crc32(repr(value).encode(), crc)

    return walk(state, crc)


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename), with its :func:`checksum`."""
    state = {**state, "checksum": checksum(state)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def why_not_loaded(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in our words.

    torch's own message for a file holding code advises loading it again with ``weights_only=False``,
    which would run that code; that advice is never passed on.
    """
    import pickle

    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc).lower():
        return "it holds Python objects other than tensors and plain data, which are never loaded: no code runs"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; never executes code.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, corrupt or holds anything but tensors and plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged zips and unsafe pickles
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt, truncated or unsafe and was not loaded ({why_not_loaded(exc)}). "
            "Delete it to resume from an earlier checkpoint, or start afresh."
        ) from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a transferkit checkpoint (no 'format' key).")
    stored = state.pop("checksum", None)
    if stored is not None and stored != checksum(state):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: its contents do not match the checksum written with them."
        )
    return state


class CheckpointManager:
    """Numbered checkpoints ``ckpt-<step>.pt`` in one folder, keeping the newest ``keep``."""

    _pattern = re.compile(r"^ckpt-(\d+)\.pt$")

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep={keep}; expected at least 1.")
        self.directory = Path(directory)
        self.keep = keep

    def paths(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := self._pattern.match(p.name))]
        return [p for _, p in sorted(found)]

    def clear(self) -> None:
        """Remove every checkpoint and leftover temporary file in the folder."""
        with self._lock():
            for p in self.paths():
                p.unlink(missing_ok=True)
            self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        if self.directory.is_dir():  # left behind by a process killed in the middle of a save
            for p in self.directory.glob(".ckpt-*.tmp"):
                p.unlink(missing_ok=True)

    def save(self, state: dict, step: int) -> Path:
        with self._lock():  # another process saving into the folder waits: its temp file is never removed
            path = save_checkpoint(self.directory / f"ckpt-{step:09d}.pt", state)
            for old in self.paths()[: -self.keep]:
                old.unlink(missing_ok=True)
            self._remove_stale_temps()
        return path

    @contextlib.contextmanager
    def _lock(self):
        """An exclusive lock on the folder (``.lock``) for the length of a save and its clean-up."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def load_latest(self) -> dict | None:
        """The newest checkpoint that loads; damaged ones are skipped with a warning and kept."""
        return next(self.loadable(), None)

    def loadable(self):
        """Every checkpoint that loads, newest first; damaged ones are skipped with a warning and kept."""
        for path in reversed(self.paths()):
            try:
                yield load_checkpoint(path)
            except CheckpointError as exc:
                warnings.warn(f"{exc} Falling back to the previous checkpoint.", stacklevel=2)
