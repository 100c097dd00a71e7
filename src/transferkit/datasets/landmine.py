"""Landmine detection (Xue, Liao, Carin & Krishnapuram, JMLR 2007): 29 binary tasks.

Each sample is a 9-d radar feature vector; label 1 = landmine, 0 = clutter (about 6 % positives,
so report AUC). Tasks 1-15 are foliated regions and 16-29 desert / bare earth.

``landmine:1`` ... ``landmine:29``
    One task each; ``train`` / ``test`` are a fixed stratified split per task (seed 0, 2/3 train,
    1/3 test); ``all`` is every sample.
``landmine:foliated``, ``landmine:desert``
    Tasks 1-15 and 16-29 pooled, task by task in order; the split of a pool is the union of its
    tasks' splits, so no test sample of a task is ever in a pool's training part.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import Domain
from ._common import DomainInfo, _Spec, folder_hint, needs, read_mat, require, split_index

FILE = "landmine_mtl/LandmineData.mat"
N_TASKS = 29
POOLS = {"foliated": range(1, 16), "desert": range(16, 30)}
TEST_FRACTION = 1 / 3
SEED = 0
_SOURCE = "Duke landmine data, Xue et al. JMLR 2007"


def _task(root: Path, task: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32) and int64 labels of task ``task`` (1-based), all samples."""
    m = read_mat(str(root / FILE))
    X = m["feature"].ravel()[task - 1].astype(np.float32)
    y = m["label"].ravel()[task - 1].ravel().astype(np.int64)
    return X, y


def _task_split(root: Path, task: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = _task(root, task)
    idx = split_index(y, split, TEST_FRACTION, SEED)
    return X[idx], y[idx]


def _load_task(task: int):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        return _task_split(root, task, split)

    return load


def _load_pool(tasks: range):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        parts = [_task_split(root, t, split) for t in tasks]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    return load


def load_landmine(data_dir: str | os.PathLike | None = None) -> list[Domain]:
    """All 29 landmine tasks with all their samples, for multi-task learning.

    Parameters
    ----------
    data_dir : str or path-like, optional
        The data directory (default: :func:`~transferkit.datasets.data_dir`).

    Returns
    -------
    list of Domain
        ``Domain(X (n_t, 9) float32, y (n_t,) int64, name="landmine:t")`` for t = 1..29.
    """
    root = require(specs()[0], data_dir)
    return [Domain(*_task(root, t), name=f"landmine:{t}") for t in range(1, N_TASKS + 1)]


def specs() -> list[_Spec]:
    """The registry records of the landmine tasks and pools."""
    hint = folder_hint("landmine_mtl", "landmine")
    out = []
    for t in range(1, N_TASKS + 1):
        region = "foliated" if t in POOLS["foliated"] else "desert"
        info = DomainInfo(
            f"landmine:{t}",
            "landmine",
            str(t),
            "features",
            2,
            f"landmine task {t} ({region} region), 9 radar features; stratified 2/3 / 1/3 split",
            _SOURCE,
        )
        out.append(_Spec(info, _load_task(t), needs(FILE), hint))
    for pool, tasks in POOLS.items():
        info = DomainInfo(
            f"landmine:{pool}",
            "landmine",
            pool,
            "features",
            2,
            f"landmine tasks {tasks[0]}-{tasks[-1]} pooled ({pool} regions); union of the task splits",
            _SOURCE,
        )
        out.append(_Spec(info, _load_pool(tasks), needs(FILE), hint))
    return out
