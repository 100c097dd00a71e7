"""UCI Mushroom split by stalk shape: the TrAdaBoost transfer task (Dai et al., ICML 2007).

8124 mushrooms, 22 categorical attributes, label 1 = poisonous, 0 = edible. The two domains
are the mushrooms with an enlarging stalk (3516) and a tapering stalk (4608).

Features are the one-hot encoding of all 22 attributes with the categories of the **whole**
file (so both domains share one space; a missing ``stalk-root`` value ``?`` is its own
category), with the stalk-shape columns dropped since they are constant within a domain:
float32 (n, 115). ``train`` / ``test`` are one fixed stratified split per domain (seed 0,
2/3 / 1/3); ``all`` is the whole domain.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import DomainInfo, _Spec, folder_hint, frozen, needs, split_index

FILE = "uci_mushroom/agaricus-lepiota.data"
STALK_SHAPE = 9  # stalk-shape: column 9 of the 22 attributes (column 10 of the file)
DOMAINS = {"enlarging": "e", "tapering": "t"}
TEST_FRACTION = 1 / 3
SEED = 0


@lru_cache(maxsize=2)
def read_mushroom(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(one-hot features without stalk shape, labels, stalk-shape codes) of the whole file."""
    with open(path, encoding="ascii") as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    A = np.array(rows)
    if A.ndim != 2 or A.shape[1] != 23:
        raise ValueError(f"{path}: expected 23 comma-separated fields per line, got shape {A.shape}.")
    y = (A[:, 0] == "p").astype(np.int64)
    F = A[:, 1:]
    blocks = [F[:, j, None] == np.unique(F[:, j])[None] for j in range(F.shape[1]) if j != STALK_SHAPE]
    X = np.concatenate(blocks, axis=1).astype(np.float32)
    return frozen(X), frozen(y), frozen(F[:, STALK_SHAPE].copy())


def _load(domain: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        X, y, shape = read_mushroom(str(root / FILE))
        rows = np.flatnonzero(shape == DOMAINS[domain])
        idx = rows[split_index(y[rows], split, TEST_FRACTION, SEED)]
        return X[idx], y[idx]

    return load


def specs() -> list[_Spec]:
    """The registry records of the two mushroom domains."""
    return [
        _Spec(
            DomainInfo(
                f"mushroom:{d}",
                "mushroom",
                d,
                "features",
                2,
                f"UCI mushrooms with {d} stalk, one-hot attributes, poisonous = 1; 2/3 / 1/3 split",
                "UCI Mushroom (Schlimmer 1987), stalk-shape split of TrAdaBoost (Dai et al. ICML 2007)",
            ),
            _load(d),
            needs(FILE),
            folder_hint("uci_mushroom", "mushroom"),
        )
        for d in DOMAINS
    ]
