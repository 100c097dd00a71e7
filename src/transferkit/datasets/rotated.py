"""Rotated MNIST: a chain of domains with a known distance, for transitive transfer.

``rotmnist:A`` is ``digits:mnist`` with every image rotated by A degrees (A = 0, 15, ..., 180),
bilinear interpolation, the 28x28 frame kept. To make the domains different samples, not the
same digits turned, each angle takes its own disjoint share of the 10,000 training digits
(``train``: digits ``i`` with ``i % 13 == A / 15``, about 770 each) and of the test digits
(likewise); ``all`` is both. The angle between two domains is their known distance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import _Spec, folder_hint, make_info, needs

ANGLES = tuple(range(0, 181, 15))
_MNIST = "mnist_small/mnist_small.npz"


@lru_cache(maxsize=32)
def _rotated(root: str, angle: int, part: str) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import rotate

    from .digits import _load_mnist

    X, y = _load_mnist(Path(root), part)
    keep = np.arange(len(y)) % len(ANGLES) == ANGLES.index(angle)
    X = rotate(X[keep], angle, axes=(2, 3), reshape=False, order=1, mode="constant", cval=0.0)
    X = np.clip(X, 0.0, 1.0).astype(np.float32)
    X.setflags(write=False)
    return X, y[keep]


def _loader(angle: int):
    def load(root: Path, split: str):
        parts = ("train", "test") if split == "all" else (split,)
        got = [_rotated(str(root), angle, p) for p in parts]
        return np.concatenate([x for x, _ in got]), np.concatenate([y for _, y in got])

    return load


def specs() -> list[_Spec]:
    """One registry record per angle."""
    return [
        _Spec(
            make_info(
                f"rotmnist:{a}",
                "images",
                10,
                f"MNIST rotated by {a} degrees (a disjoint 1/13 of digits:mnist per angle)",
                "built from digits:mnist (LeCun & Cortes) by rotation",
            ),
            _loader(a),
            needs(_MNIST),
            folder_hint("mnist_small"),
        )
        for a in ANGLES
    ]
