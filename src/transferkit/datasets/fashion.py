"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28x28 grey images of 10 clothing classes.

``fashion:mnist``: ``train`` 60,000 / ``test`` 10,000 images, (n, 1, 28, 28) float32 in [0, 1].
The four IDX ``.gz`` files are looked for first in ``<data_dir>/fashion_mnist/`` and then in
``/usr/share/datasets/fashion-mnist/``, where the Debian package ``dataset-fashion-mnist``
installs them (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import DomainInfo, _Spec, frozen, images_to_float

FOLDER = "fashion_mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_ALL_FILES = tuple(f for pair in FILES.values() for f in pair)


def find_folder(root: Path) -> Path | None:
    """The first folder holding all four IDX files: ``root/fashion_mnist``, then the Debian one."""
    for folder in (root / FOLDER, SYSTEM_DIR):
        if all((folder / f).is_file() for f in _ALL_FILES):
            return folder
    return None


def _requires(root: Path) -> list[Path]:
    return [] if find_folder(root) is not None else [root / FOLDER, SYSTEM_DIR]


@lru_cache(maxsize=4)
def read_idx(path: str) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes as a read-only uint8 array of its stored shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4]!r}).")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {arr.size} values; its header says shape {shape}.")
    return frozen(arr.reshape(shape))


def _load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = find_folder(root)
    parts = ("train", "test") if split == "all" else (split,)
    X = [images_to_float(read_idx(str(folder / FILES[p][0])), (1, 28, 28)) for p in parts]
    y = [read_idx(str(folder / FILES[p][1])) for p in parts]
    return np.concatenate(X), np.concatenate(y).astype(np.int64)


def specs() -> list[_Spec]:
    """The registry record of Fashion-MNIST."""
    info = DomainInfo(
        "fashion:mnist",
        "fashion",
        "mnist",
        "images",
        10,
        "Fashion-MNIST 28x28 grey clothing images, 60k train / 10k test",
        "Xiao, Rasul & Vollgraf 2017 (arXiv:1708.07747), Debian dataset-fashion-mnist",
    )
    hint = (
        "apt-get install dataset-fashion-mnist (installs the IDX files in "
        f"{SYSTEM_DIR}/), or put the four IDX .gz files in <TRANSFERKIT_DATA>/{FOLDER}/."
    )
    return [_Spec(info, _load, _requires, hint)]
