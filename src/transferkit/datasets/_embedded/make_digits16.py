"""Regenerate ``digits16.npz``, the embedded copy of the 16x16 MNIST / USPS pair.

Source: ``mnist_usps_jda/mnist_usps_jda.npz`` in the data directory (see its SOURCE.md): the
2000 MNIST (LeCun & Cortes) and 1800 USPS (Hull 1994) digits at 16x16 used by Long et al.
(ICCV 2013, JDA), as distributed with the JPDA code (GitHub ``chamwen/JPDA``, Zhang & Wu,
IJCNN 2020). Images are stored as ``uint8 = round(x * 255)`` with shape (n, 16, 16), labels as
uint8 0..9 (the file's 1..10 minus 1), compressed with ``numpy.savez_compressed``.

Usage::

    python src/transferkit/datasets/_embedded/make_digits16.py [DATA_DIR]

``DATA_DIR`` defaults to :func:`transferkit.datasets.data_dir` (``$TRANSFERKIT_DATA``). The
output is written next to this script, atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from transferkit.datasets import data_dir
from transferkit.datasets._common import atomic_savez

OUTPUT = Path(__file__).with_name("digits16.npz")


def quantise(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats of shape (n, 256) -> uint8 images (n, 16, 16)."""
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 255), 0, 255)
    return q.astype(np.uint8).reshape(-1, 16, 16)


def main(argv: list[str]) -> int:
    root = data_dir(argv[0] if argv else None)
    with np.load(root / "mnist_usps_jda" / "mnist_usps_jda.npz") as d:
        arrays = {
            "x_mnist": quantise(d["X_mnist"]),
            "y_mnist": (d["y_mnist"].astype(np.int64) - 1).astype(np.uint8),
            "x_usps": quantise(d["X_usps"]),
            "y_usps": (d["y_usps"].astype(np.int64) - 1).astype(np.uint8),
        }
    atomic_savez(OUTPUT, compressed=True, **arrays)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
