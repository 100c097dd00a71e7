"""Digit images: MNIST, USPS, MNIST-M (rebuilt), the 16x16 MNIST/USPS pair and its embedded copy.

All loaders return float32 images of shape (n, C, H, W) in [0, 1] and int64 labels 0..9.

``digits:mnist``
    ``mnist_small/mnist_small.npz``: ``train`` = 10,000 digits of MNIST's training set (stored
    grouped by digit, returned in one fixed shuffled order, seed 0), ``test`` = the official
    10,000 test digits; (n, 1, 28, 28). MNIST: LeCun & Cortes.
``digits:usps``
    ``usps/usps.npz``: the standard 7291 / 2007 split; (n, 1, 16, 16). USPS: Hull 1994.
``digits:mnistm``
    MNIST-M rebuilt by the recipe of Ganin & Lempitsky (ICML 2015, Sec. 4.1) from the
    ``digits:mnist`` digits and the BSDS500 training photos (see :func:`build_mnistm`); seed 0
    for train, seed 1 for test; (n, 3, 28, 28). Built once and cached in
    :func:`~transferkit.datasets.cache_dir` (file name: version, split, seed and a hash of the
    inputs). Not pixel-identical to the official MNIST-M; JPEG decoding may also differ slightly
    between Pillow builds, so report the seed and the rebuild when quoting numbers.
``digits16:mnist``, ``digits16:usps``
    ``mnist_usps_jda/mnist_usps_jda.npz``: 2000 MNIST and 1800 USPS digits at 16x16, the pair of
    Long et al. (ICCV 2013, JDA); (n, 1, 16, 16). No official split: ``train``/``test`` are one
    fixed stratified split (seed 0, 2/3 train, 1/3 test); ``all`` is everything.
``demo:mnist``, ``demo:usps``
    The same 16x16 pair shipped inside the package (``_embedded/digits16.npz``, images stored as
    ``round(x * 255)`` uint8), so examples run with no data directory; same split rule as
    ``digits16``. Data: MNIST (LeCun & Cortes), USPS (Hull 1994), 16x16 versions of Long et al.
    (ICCV 2013) as distributed with the JPDA code (Zhang & Wu, IJCNN 2020).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from io import BytesIO
from pathlib import Path

import numpy as np

from ._common import (
    _Spec,
    atomic_savez,
    cache_dir,
    folder_hint,
    frozen,
    images_to_float,
    make_info,
    needs,
    nothing_needed,
    read_npz,
    split_index,
)

_MNIST = "mnist_small/mnist_small.npz"
_USPS = "usps/usps.npz"
_BSDS = "bsds500_train_images"
_JDA = "mnist_usps_jda/mnist_usps_jda.npz"
_EMBEDDED = "digits16.npz"
MNIST_ORDER_SEED = 0
MNISTM_VERSION = 1
MNISTM_SEEDS = {"train": 0, "test": 1}
SPLIT16_TEST_FRACTION = 1 / 3
SPLIT16_SEED = 0


# --------------------------------------------------------------------------------------------
# MNIST and USPS
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _mnist_part(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    d = read_npz(str(Path(root) / _MNIST))
    x, y = d[f"x_{split}"], d[f"y_{split}"]
    if split == "train":  # stored grouped by digit: fix one shuffled order
        order = np.random.default_rng(MNIST_ORDER_SEED).permutation(len(y))
        x, y = frozen(x[order]), frozen(y[order])
    return x, y


def _mnist_raw(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 digits (n, 28, 28) and uint8 labels of one official part ("train" or "test").

    The training digits are stored grouped by class; they are returned in one fixed shuffled
    order (seed ``MNIST_ORDER_SEED``) so that a prefix is not all zeros.
    """
    return _mnist_part(str(root), split)


def _parts(split: str) -> tuple[str, ...]:
    return ("train", "test") if split == "all" else (split,)


def _load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = [_mnist_raw(root, p) for p in _parts(split)]
    X = np.concatenate([images_to_float(x, (1, 28, 28)) for x, _ in raw])
    return X, np.concatenate([y for _, y in raw]).astype(np.int64)


def _load_usps(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    d = read_npz(str(root / _USPS))
    X = np.concatenate([images_to_float(d[f"x_{p}"], (1, 16, 16)) for p in _parts(split)])
    return X, np.concatenate([d[f"y_{p}"] for p in _parts(split)]).astype(np.int64)


# --------------------------------------------------------------------------------------------
# MNIST-M
# --------------------------------------------------------------------------------------------
def build_mnistm(digits_uint8: np.ndarray, backgrounds: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """Blend digits over random colour-photo crops: the MNIST-M recipe.

    Ganin & Lempitsky (ICML 2015, Sec. 4.1): for each digit pick a random background photo
    and a random crop of the digit's size, and output ``|crop - digit|`` per pixel and channel
    (the grey digit repeated over the 3 colour channels). A pure function of its inputs.

    Parameters
    ----------
    digits_uint8 : ndarray of uint8, shape (n, h, w)
        Grey digits.
    backgrounds : sequence of ndarray of uint8, each (H_i, W_i, 3) with H_i >= h, W_i >= w
        Colour photos (MNIST-M uses the 200 BSDS500 training images in sorted file order).
    seed : int
        Seed of the choice of photo and crop position.

    Returns
    -------
    ndarray of uint8, shape (n, 3, h, w)
        The blended images, channels first.

    Notes
    -----
    Random draws, in order, from ``numpy.random.default_rng(seed)``: the photo index of every
    digit, then every crop's top row, then every crop's left column (each uniform over all
    valid positions). The result is therefore deterministic for a seed and a set of inputs.
    """
    digits = np.asarray(digits_uint8)
    if digits.dtype != np.uint8 or digits.ndim != 3:
        raise ValueError(f"digits_uint8 has dtype {digits.dtype} and shape {digits.shape}; expected uint8 (n, h, w).")
    if len(backgrounds) == 0:
        raise ValueError("backgrounds is empty; expected at least one (H, W, 3) uint8 photo.")
    n, h, w = digits.shape
    bgs = [np.asarray(b) for b in backgrounds]
    for i, b in enumerate(bgs):
        if b.dtype != np.uint8 or b.ndim != 3 or b.shape[2] != 3 or b.shape[0] < h or b.shape[1] < w:
            raise ValueError(
                f"backgrounds[{i}] has dtype {b.dtype} and shape {b.shape}; expected uint8 "
                f"(H, W, 3) with H >= {h} and W >= {w}."
            )
    heights = np.array([b.shape[0] for b in bgs])
    widths = np.array([b.shape[1] for b in bgs])
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(bgs), size=n)
    top = rng.integers(0, heights[which] - h + 1)
    left = rng.integers(0, widths[which] - w + 1)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    rows_off, cols_off = np.arange(h), np.arange(w)
    for b in np.unique(which):
        sel = np.flatnonzero(which == b)
        rows = (top[sel, None] + rows_off)[:, :, None]
        cols = (left[sel, None] + cols_off)[:, None, :]
        crops = bgs[b][rows, cols].astype(np.int16)  # (k, h, w, 3)
        out[sel] = np.abs(crops - digits[sel, :, :, None].astype(np.int16)).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _bsds_files(root: Path) -> list[Path]:
    folder = root / _BSDS
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def _read_backgrounds(root: Path) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for f in _bsds_files(root):
        with Image.open(f) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


def _mnistm_requires(root: Path) -> list[Path]:
    missing = needs(_MNIST)(root)
    if not _bsds_files(root):
        missing.append(root / _BSDS / "*.jpg")
    return missing


@lru_cache(maxsize=8)
def _fingerprint(root: str, split: str) -> str:
    """A short hash of the inputs (digits, photo names and sizes): a cache of other data is not reused."""
    digits, _ = _mnist_raw(Path(root), split)
    h = hashlib.sha1(np.ascontiguousarray(digits).tobytes())
    for f in _bsds_files(Path(root)):
        h.update(f"{f.name}:{f.stat().st_size};".encode())
    return h.hexdigest()[:10]


def mnistm_cache_path(root: Path, split: str) -> Path:
    """Where the generated MNIST-M images of ``split`` ("train" or "test") are cached.

    ``<cache_dir>/mnistm_v<VERSION>_<split>_seed<SEED>_<inputs hash>.npz`` (uint8, (n, 3, 28, 28)).
    """
    seed = MNISTM_SEEDS[split]
    return cache_dir() / f"mnistm_v{MNISTM_VERSION}_{split}_seed{seed}_{_fingerprint(str(root), split)}.npz"


def _ensure_mnistm(root: Path) -> dict[str, Path]:
    """Build (once, for both parts, decoding the photos once) and cache MNIST-M; return paths."""
    paths = {p: mnistm_cache_path(root, p) for p in ("train", "test")}
    todo = [p for p, path in paths.items() if not path.exists()]
    if todo:
        backgrounds = _read_backgrounds(root)
        for p in todo:
            digits, labels = _mnist_raw(root, p)
            images = build_mnistm(digits, backgrounds, MNISTM_SEEDS[p])
            atomic_savez(
                paths[p],
                images=images,
                labels=labels,
                seed=np.int64(MNISTM_SEEDS[p]),
                version=np.int64(MNISTM_VERSION),
            )
    return paths


def _cache_readable(path: Path) -> bool:
    """Whether a cached MNIST-M part opens whole; a truncated or damaged one is removed, to be rebuilt."""
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as f:
            f["images"].shape, f["labels"].shape  # noqa: B018 - reading the arrays checks their bytes
        return True
    except Exception:  # noqa: BLE001 - any failure to read means: build it again
        path.unlink(missing_ok=True)
        read_npz.cache_clear()
        return False


def _load_mnistm(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = _ensure_mnistm(root)
    parts = _parts(split)
    try:  # reading the arrays checks them; the cache is checked again only when that fails
        images = [read_npz(str(paths[p]))["images"] for p in parts]
    except Exception:  # noqa: BLE001 - a truncated or damaged cache: remove it and build it again
        for p in parts:
            _cache_readable(paths[p])
        paths = _ensure_mnistm(root)
        images = [read_npz(str(paths[p]))["images"] for p in parts]
    X = np.concatenate([images_to_float(im, (3, 28, 28)) for im in images])
    y = np.concatenate([_mnist_raw(root, p)[1] for p in parts]).astype(np.int64)
    return X, y


# --------------------------------------------------------------------------------------------
# 16x16 MNIST / USPS pair (shared files and embedded copy)
# --------------------------------------------------------------------------------------------
def _digits16_shared(root: Path) -> dict[str, np.ndarray]:
    """The pair from the shared file: {mnist,usps} -> float (n, 256) images and 0-based labels."""
    d = read_npz(str(root / _JDA))
    return {
        "x_mnist": d["X_mnist"],
        "y_mnist": d["y_mnist"].astype(np.int64) - 1,
        "x_usps": d["X_usps"],
        "y_usps": d["y_usps"].astype(np.int64) - 1,
    }


@lru_cache(maxsize=1)
def read_embedded() -> dict[str, np.ndarray]:
    """The embedded 16x16 pair: uint8 images (n, 16, 16) and uint8 labels 0..9, read-only."""
    data = (resources.files(__package__) / "_embedded" / _EMBEDDED).read_bytes()
    with np.load(BytesIO(data), allow_pickle=False) as f:
        return {k: frozen(np.array(f[k])) for k in f.files}


def _split16(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    idx = split_index(y, split, SPLIT16_TEST_FRACTION, SPLIT16_SEED)
    return images_to_float(x[idx], (1, 16, 16)), np.asarray(y[idx], dtype=np.int64)


def _load_digits16(which: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        d = _digits16_shared(root)
        return _split16(d[f"x_{which}"], d[f"y_{which}"], split)

    return load


def _load_demo(which: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        d = read_embedded()
        return _split16(d[f"x_{which}"], d[f"y_{which}"], split)

    return load


# --------------------------------------------------------------------------------------------
# Registry records
# --------------------------------------------------------------------------------------------
_MNIST_SRC = "MNIST, LeCun & Cortes 1998"
_USPS_SRC = "USPS, Hull 1994"
_JDA_SRC = "16x16 pair of Long et al. ICCV 2013 (JDA)"


def specs() -> list[_Spec]:
    """The registry records of the digit datasets."""
    out = [
        _Spec(
            make_info(
                "digits:mnist",
                "images",
                10,
                "MNIST 28x28 grey: 10k training-set digits / official 10k test",
                _MNIST_SRC,
            ),
            _load_mnist,
            needs(_MNIST),
            folder_hint("mnist_small"),
        ),
        _Spec(
            make_info("digits:usps", "images", 10, "USPS 16x16 grey, standard 7291 / 2007 split", _USPS_SRC),
            _load_usps,
            needs(_USPS),
            folder_hint("usps"),
        ),
        _Spec(
            make_info(
                "digits:mnistm",
                "images",
                10,
                "MNIST-M 28x28 colour, rebuilt from digits:mnist + BSDS500 (seeded, cached)",
                "Ganin & Lempitsky ICML 2015 recipe; BSDS500 of Arbelaez et al. TPAMI 2011",
            ),
            _load_mnistm,
            _mnistm_requires,
            f"set TRANSFERKIT_DATA to the folder holding both mnist_small/ and {_BSDS}/ (or pass data_dir=...).",
        ),
    ]
    pair = (("mnist", 2000, _MNIST_SRC), ("usps", 1800, _USPS_SRC))
    for which, n, src in pair:
        info = make_info(
            f"digits16:{which}",
            "images",
            10,
            f"{n} {which.upper()} digits at 16x16; fixed stratified 2/3 / 1/3 split (seed 0)",
            f"{src}; {_JDA_SRC}",
        )
        out.append(_Spec(info, _load_digits16(which), needs(_JDA), folder_hint("mnist_usps_jda")))
    for which, n, src in pair:
        info = make_info(
            f"demo:{which}",
            "images",
            10,
            f"embedded copy of digits16:{which} ({n} digits, 16x16, uint8-quantised)",
            f"{src}; {_JDA_SRC}",
            embedded=True,
        )
        out.append(_Spec(info, _load_demo(which), nothing_needed, ""))
    return out
