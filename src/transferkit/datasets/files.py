"""Your own data as a domain: a CSV file, an ``.npz`` file, or a folder of images per class.

Every command that takes ``DATASET:DOMAIN`` also takes a path; :func:`load_domain` and
:func:`load_task` hand paths to :func:`load_file`.

- **CSV** (``.csv``, ``.tsv``, ``.csv.gz``): one sample per row, a header row. The label column
  (``label_column``, default ``"label"``) holds the labels, numbers or class names; every other
  column must be numeric and is a feature. A file without that column is an unlabelled domain.
- **NumPy** (``.npz``): array ``X`` (n, ...) and, optionally, ``y`` (n,). Any sample shape:
  vectors, time series (n, channels, length) or images (n, channels, height, width).
- **Image folder**: ``root/<class name>/<image>`` (PNG, JPEG, BMP, ...), the layout of
  torchvision's ``ImageFolder``. Every image is resized to ``image_size`` (default: the first
  image's size) and kept grey when every image is grey, RGB otherwise; pixels in [0, 1]. A folder
  of images with no class folders is an unlabelled domain.

A file has no official train/test split, so one is drawn: ``test_fraction`` of the samples
(stratified by class when labelled), by a fixed seed, so ``"train"`` and ``"test"`` never
overlap and are the same on every call. ``"all"`` is every sample.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..data import Domain
from ._common import damaged

__all__ = ["is_file_key", "image_files", "load_file", "split_file_domain", "IMAGE_SUFFIXES"]

CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
#: The share of a file's samples kept aside as its ``"test"`` split, and the split's seed.
TEST_FRACTION, SPLIT_SEED = 0.25, 0


def is_file_key(key) -> bool:
    """Whether a domain key names a file or folder rather than a registered ``DATASET:DOMAIN``."""
    if isinstance(key, os.PathLike):
        return True
    text = str(key)
    return text.lower().endswith(CSV_SUFFIXES + (".npz",)) or os.sep in text or os.path.isdir(text)


def _csv_rows(path: Path):
    """The rows of a .csv, .tsv or gzipped one, read as UTF-8 (a byte-order mark is dropped)."""
    import csv

    opener = gzip.open if path.suffix == ".gz" else open
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        yield from csv.reader(f, delimiter=delimiter)


def csv_columns(path: str | os.PathLike) -> list[str] | None:
    """The header of a CSV file (``None`` for any other kind of file): to name the columns that exist."""
    path = Path(path)
    if not str(path).lower().endswith(CSV_SUFFIXES) or not path.is_file():
        return None
    try:
        rows = _csv_rows(path)
        header = next(rows, [])
        rows.close()  # the file is closed now, not when the generator is collected
        return [h.strip() for h in header]
    except (OSError, UnicodeDecodeError):
        return None


def _read_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        rows = [row for row in _csv_rows(path) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 (e.g. from Latin-1)."
        ) from None
    if len(rows) < 2:
        raise ValueError(f"{path} has {len(rows)} line(s); expected a header row and at least one sample.")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: the header has repeated column names {header}; expected unique names.")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {i + 2}: {len(row)} fields, but the header has {len(header)}; expected one per column."
            )
    labels = None
    if label_column in header:
        j = header.index(label_column)
        raw = [row[j].strip() for row in body]
        empty = [i + 2 for i, v in enumerate(raw) if not v]
        if empty:  # '' would become a class of its own
            lines = ", ".join(map(str, empty[:5])) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            raise ValueError(
                f"{path}: the label column {label_column!r} is empty on line(s) {lines}; fill those labels or "
                "remove the rows (a file without labels has no label column)."
            )
        try:
            numbers = np.array([float(v) for v in raw])
            labels = numbers.astype(np.int64) if np.all(numbers == np.round(numbers)) else numbers
        except ValueError:
            labels = np.array(raw)  # class names
        body = [row[:j] + row[j + 1 :] for row in body]
        header = header[:j] + header[j + 1 :]
    if not header:
        raise ValueError(f"{path} has no feature columns besides {label_column!r}.")
    X = np.empty((len(body), len(header)), dtype=np.float64)
    for i, row in enumerate(body):
        for j, value in enumerate(row):
            try:
                X[i, j] = float(value) if value.strip() else np.nan
            except ValueError:
                raise ValueError(
                    f"{path}, line {i + 2}, column {header[j]!r}: {value!r} is not a number; every column but "
                    f"the label column {label_column!r} must be numeric (pass --label-column if the labels are "
                    "in another column)."
                ) from None
    return X, labels


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):  # an .npy file under an .npz name
        raise ValueError(
            f"{path} holds one bare array (an .npy file named .npz); save the samples and labels with "
            "np.savez(path, X=X, y=y)."
        )
    with loaded as z:
        if "X" not in z.files:
            raise ValueError(f"{path} holds arrays {z.files}; expected 'X' (samples) and optionally 'y' (labels).")
        return z["X"], (z["y"] if "y" in z.files else None)


def image_files(root) -> list[tuple[Path, str | None]]:
    """The images of a folder in the order :func:`load_file` reads them, each with its class folder's name
    (``None`` for images directly inside)."""
    root = Path(root)

    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        files = [(f, c.name) for c in classes for f in images(c)]
        empty = [c.name for c in classes if not images(c)]
        if empty:
            raise ValueError(f"{root}: class folder(s) {empty} hold no images ({', '.join(IMAGE_SUFFIXES)}).")
    else:
        files = [(f, None) for f in images(root)]
    if not files:
        raise ValueError(f"{root} holds no images; expected {root}/<class>/<image> or images directly inside.")
    return files


def _read_image_folder(root: Path, image_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray | None]:
    from PIL import Image

    files = image_files(root)
    classes = files[0][1] is not None

    def opened(f: Path):
        try:
            return Image.open(f)
        except (OSError, Image.DecompressionBombError) as err:  # not an image, truncated, or a decompression bomb
            raise ValueError(f"{f} cannot be read as an image ({type(err).__name__}: {err}).") from None

    modes, first_size = [], None
    for f, _ in files:  # headers only; one file open at a time (a folder may hold more files than ulimit -n)
        with opened(f) as im:
            modes.append(im.mode)
            first_size = first_size or im.size[::-1]  # (height, width)
    size = tuple(image_size) if image_size else first_size
    grey = all(m in ("L", "1", "I;16", "I") for m in modes)

    def pixels(f: Path) -> np.ndarray:
        with opened(f) as im:
            try:
                im = im.convert("L" if grey else "RGB").resize(size[::-1], Image.BILINEAR)
            except (OSError, Image.DecompressionBombError) as err:
                raise ValueError(f"{f} cannot be read as an image ({type(err).__name__}: {err}).") from None
            return np.asarray(im, dtype=np.float32) / 255.0

    X = np.stack([pixels(f) for f, _ in files])
    X = X[:, None] if grey else X.transpose(0, 3, 1, 2)
    return X, (np.array([c for _, c in files]) if classes else None)


def _split(n: int, y: np.ndarray | None, split: str, test_fraction: float) -> np.ndarray:
    if split == "all":
        return np.arange(n)
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(n, bool)
    groups = [np.arange(n)] if y is None or y.dtype.kind == "f" else [np.flatnonzero(y == c) for c in np.unique(y)]
    for g in groups:
        is_test[rng.permutation(g)[: int(round(test_fraction * len(g)))]] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def load_file(
    path,
    split: str = "all",
    label_column: str = "label",
    image_size: tuple[int, int] | None = None,
    test_fraction: float = TEST_FRACTION,
) -> Domain:
    """A domain from a CSV file, an ``.npz`` file or an image folder (see the module docstring).

    Parameters
    ----------
    path : str or path-like
    split : {"all", "train", "test"}
        ``"train"`` and ``"test"``: a fixed, seeded split of the file (``test_fraction`` of the
        samples, stratified by class).
    label_column : str
        CSV only: the column of labels.
    image_size : (height, width), optional
        Image folders only: the size every image is resized to.

    Returns
    -------
    Domain
        Named after the file.
    """
    path = Path(path)
    if split not in ("all", "train", "test"):
        raise ValueError(f"split={split!r}; expected 'all', 'train' or 'test'.")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected a .csv or .npz file, or a folder of images.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r}; expected a number in (0, 1).")
    name = path.name.lower()
    try:
        if path.is_dir():
            X, y = _read_image_folder(path, image_size)
        elif name.endswith(CSV_SUFFIXES):
            X, y = _read_csv(path, label_column)
        elif name.endswith(".npz"):
            X, y = _read_npz(path)
        else:
            raise ValueError(f"{path}: unknown file type; expected .csv, .tsv, .npz or a folder of images.")
    except (EOFError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile) as err:  # cut short in a copy or download
        raise damaged(path, err) from None
    return split_file_domain(Domain(X, y, name=str(path)), split, test_fraction)


def split_file_domain(domain: Domain, split: str, test_fraction: float = TEST_FRACTION) -> Domain:
    """The ``split`` part of a file's samples (``"all"``, or the fixed seeded ``"train"``/``"test"`` split).

    For callers that need several parts of one file: read it once with ``split="all"``, split here.
    """
    index = _split(len(domain), domain.y, split, test_fraction)
    if len(index) == 0:
        raise ValueError(f"{domain.name} has {len(domain)} samples, too few for a {split!r} split; use split='all'.")
    return domain if split == "all" else domain.subset(index)
