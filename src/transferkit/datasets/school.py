"""School exam scores (Inner London Education Authority): 139 regression tasks.

The multi-task regression benchmark of Bakker & Heskes (JMLR 2003) and Evgeniou, Micchelli &
Pontil (JMLR 2005), as shipped with MALSAR (Zhou, Chen & Ye 2011). Each school is a task;
features are the 28 stored columns as float32 (binary student / school descriptors, year and
exam-related integers, and a final constant-1 bias column), unscaled; the target is the exam
score as float64.

``school:1`` ... ``school:139``: ``train`` / ``test`` are one fixed random split per task
(seed 0, 75 % / 25 %, the usual protocol); ``all`` is every student of the school.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import Domain
from ._common import DomainInfo, _Spec, folder_hint, needs, read_mat, require, split_index

FILE = "malsar_mtl/school.mat"
N_TASKS = 139
TEST_FRACTION = 0.25
SEED = 0


def _task(root: Path, task: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, (n, 28)) and float64 scores of school ``task`` (1-based)."""
    m = read_mat(str(root / FILE))
    X = m["X"].ravel()[task - 1].astype(np.float32)
    y = m["Y"].ravel()[task - 1].ravel().astype(np.float64)
    return X, y


def _load_task(task: int):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        X, y = _task(root, task)
        idx = split_index(y, split, TEST_FRACTION, SEED, stratify=False)
        return X[idx], y[idx]

    return load


def load_school(data_dir: str | os.PathLike | None = None) -> list[Domain]:
    """All 139 school tasks with all their students, for multi-task regression.

    Parameters
    ----------
    data_dir : str or path-like, optional
        The data directory (default: :func:`~transferkit.datasets.data_dir`).

    Returns
    -------
    list of Domain
        ``Domain(X (n_t, 28) float32, y (n_t,) float64, name="school:t")`` for t = 1..139.
    """
    root = require(specs()[0], data_dir)
    return [Domain(*_task(root, t), name=f"school:{t}") for t in range(1, N_TASKS + 1)]


def specs() -> list[_Spec]:
    """The registry records of the 139 schools."""
    hint = folder_hint("malsar_mtl", "school")
    return [
        _Spec(
            DomainInfo(
                f"school:{t}",
                "school",
                str(t),
                "features",
                None,
                f"school {t}: exam score regression, 28 features; fixed 75/25 split (seed 0)",
                "ILEA school data, Bakker & Heskes JMLR 2003 (MALSAR copy)",
            ),
            _load_task(t),
            needs(FILE),
            hint,
        )
        for t in range(1, N_TASKS + 1)
    ]
