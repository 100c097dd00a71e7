"""Shared machinery of the benchmark loaders: folders, errors, domain metadata and fixed splits.

Nothing here reads a file at import time. The family modules (``amazon``, ``digits``, ...) build
:class:`_Spec` records from these pieces; ``_registry`` collects them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "SPLITS",
    "DataNotFoundError",
    "DomainInfo",
    "cache_dir",
    "data_dir",
]

DATA_ENV = "TRANSFERKIT_DATA"
CACHE_ENV = "TRANSFERKIT_CACHE"
SPLITS = ("train", "test", "all")
_DEFAULT_ROOT = Path("~/.cache/transferkit")


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------
def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder holding the benchmark data.

    Parameters
    ----------
    path : str or path-like, optional
        An explicit folder; wins over everything else.

    Returns
    -------
    pathlib.Path
        ``path`` if given, else ``$TRANSFERKIT_DATA`` if set, else ``~/.cache/transferkit/data``
        (user-expanded). The folder is neither created nor written to: it may be read-only.
    """
    return _resolve(path, DATA_ENV, "data")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder for derived files (such as the generated MNIST-M images).

    Parameters
    ----------
    path : str or path-like, optional
        An explicit folder; wins over everything else.

    Returns
    -------
    pathlib.Path
        ``path`` if given, else ``$TRANSFERKIT_CACHE`` if set, else ``~/.cache/transferkit/cache``.
        Created only when something is written to it.
    """
    return _resolve(path, CACHE_ENV, "cache")


def _resolve(path: str | os.PathLike | None, env: str, leaf: str) -> Path:
    if path is not None:
        return Path(path).expanduser()
    from_env = os.environ.get(env, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return (_DEFAULT_ROOT / leaf).expanduser()


def data_dir_origin(path: str | os.PathLike | None = None) -> str:
    """Say where :func:`data_dir` took its answer from, for error messages."""
    if path is not None:
        return "from the data_dir argument"
    if os.environ.get(DATA_ENV, "").strip():
        return f"from ${DATA_ENV}"
    return f"the default; ${DATA_ENV} is not set"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class DataNotFoundError(FileNotFoundError):
    """A benchmark domain's files are not where the loader looks for them.

    The message names the domain key, every file or folder looked for, the data directory in use
    and how to make the data available. The same facts are kept as attributes.

    Attributes
    ----------
    key : str
        The domain key, such as ``"amazon:books"``.
    missing : list of pathlib.Path
        The files or folders that were looked for and not found.
    data_dir : pathlib.Path
        The data directory in use.
    """

    def __init__(self, key: str, missing: Sequence[Path], data_dir: Path, origin: str, hint: str):
        self.key = key
        self.missing = list(missing)
        self.data_dir = data_dir
        self._origin, self._hint = origin, hint
        looked = ", ".join(str(p) for p in self.missing)
        super().__init__(
            f"data for domain {key!r} not found: looked for {looked}; data directory in use: "
            f"{data_dir} ({origin}). To fix: {hint}"
        )

    def __reduce__(self):  # keep pickling (multiprocessing) working with the custom __init__
        return (type(self), (self.key, self.missing, self.data_dir, self._origin, self._hint))


def folder_hint(folder: str, download: str | None = None) -> str:
    """The usual fix for a missing folder of the shared data layout; ``download``: the name
    ``transferkit download`` fetches it by."""
    fetch = f"run `transferkit download {download}` (it fetches the files into {DATA_ENV}), or " if download else ""
    return (
        f"{fetch}set {DATA_ENV} to the folder holding {folder}/ (or pass data_dir=...); see that "
        "folder's SOURCE.md for where the files come from."
    )


# --------------------------------------------------------------------------------------------
# Domain metadata
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DomainInfo:
    """What one registered benchmark domain is.

    Parameters
    ----------
    key : str
        ``"DATASET:DOMAIN"``, the name :func:`~transferkit.datasets.load_domain` takes.
    dataset, domain : str
        The two halves of ``key``.
    kind : {"features", "images", "attributes"}
        ``"features"``: (n, d) float32 vectors; ``"images"``: (n, C, H, W) float32 in [0, 1];
        ``"attributes"``: class-level attribute matrices only (see ``load_zsl_attributes``).
    n_classes : int or None
        Number of classes; ``None`` for regression.
    description : str
        One line on what the domain holds.
    source : str
        Where the data come from (a short phrase naming the paper).
    embedded : bool
        Whether the data ship inside the package (always present).
    """

    key: str
    dataset: str
    domain: str
    kind: str
    n_classes: int | None
    description: str
    source: str
    embedded: bool = False

    def present(self, data_dir: str | os.PathLike | None = None) -> bool:
        """Whether this domain's files can be found (in ``data_dir``, resolved as usual)."""
        requires = getattr(self, "_requires", None)  # bound by the domain's _Spec
        if requires is None:
            raise ValueError(f"{self.key}: this DomainInfo belongs to no registered domain; no files are known.")
        return not requires(_resolve(data_dir, DATA_ENV, "data"))


def make_info(
    key: str, kind: str, n_classes: int | None, description: str, source: str, embedded: bool = False
) -> DomainInfo:
    """A :class:`DomainInfo` whose ``dataset`` and ``domain`` are the halves of ``key``."""
    dataset, domain = key.split(":")
    return DomainInfo(key, dataset, domain, kind, n_classes, description, source, embedded)


Loader = Callable[[Path, str], "tuple[np.ndarray, np.ndarray | None]"]


@dataclass(frozen=True)
class _Spec:
    """Internal: a domain's metadata plus how to find and read its files."""

    info: DomainInfo
    load: Loader = field(repr=False)
    requires: Callable[[Path], list[Path]] = field(repr=False)
    hint: str = ""

    def __post_init__(self):
        # the public record answers present() itself, without a way back to the registry
        object.__setattr__(self.info, "_requires", self.requires)

    def missing(self, root: Path) -> list[Path]:
        """The required paths absent under ``root`` (empty when the domain is present)."""
        return self.requires(root)


def require(spec: _Spec, data_dir: str | os.PathLike | None = None) -> Path:
    """The resolved data directory, after checking that ``spec``'s files are there.

    Raises
    ------
    DataNotFoundError
        Naming the key, the missing paths, the data directory and the fix.
    """
    root = _resolve(data_dir, DATA_ENV, "data")
    missing = spec.missing(root)
    if missing:
        raise DataNotFoundError(spec.info.key, missing, root, data_dir_origin(data_dir), spec.hint)
    return root


def needs(*relative: str) -> Callable[[Path], list[Path]]:
    """A ``requires`` callable: each of ``relative`` must exist under the data directory."""

    def missing(root: Path) -> list[Path]:
        return [root / r for r in relative if not (root / r).exists()]

    return missing


def nothing_needed(root: Path) -> list[Path]:
    """The ``requires`` of embedded data: nothing is ever missing."""
    return []


# --------------------------------------------------------------------------------------------
# Fixed splits and sub-samples
# --------------------------------------------------------------------------------------------
def _per_class_counts(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over classes proportionally to ``counts`` (largest remainder, stable)."""
    exact = counts * (n / counts.sum())
    take = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    return take


def fixed_split(
    y: np.ndarray, test_fraction: float, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible train/test partition of ``len(y)`` samples.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Labels (used for stratification only).
    test_fraction : float
        Share of each class (or of all samples when ``stratify=False``) that goes to test,
        rounded to the nearest integer.
    seed : int
        Seed of the permutation.
    stratify : bool
        Split each class separately (classification) or all samples at once (regression).

    Returns
    -------
    train, test : ndarray of int64
        Sorted, disjoint indices that together cover ``range(len(y))``.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    test = [rng.permutation(g)[: round(len(g) * test_fraction)] for g in groups]
    is_test = np.zeros(n, dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def split_index(y: np.ndarray, split: str, test_fraction: float, seed: int = 0, stratify: bool = True) -> np.ndarray:
    """Indices of ``split`` ("train", "test" or "all") under :func:`fixed_split`."""
    if split == "all":
        return np.arange(len(y))
    train, test = fixed_split(y, test_fraction, seed, stratify)
    return train if split == "train" else test


def subsample_index(y: np.ndarray | None, n: int, rng: np.random.Generator, n_total: int) -> np.ndarray:
    """``n`` of ``n_total`` sample indices, stratified by ``y`` when labels are discrete.

    Regression targets (float ``y``) and ``y=None`` give a plain random sample.
    """
    if y is None or np.issubdtype(np.asarray(y).dtype, np.floating):
        return np.sort(rng.choice(n_total, size=n, replace=False))
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    take = _per_class_counts(counts, n)
    picked = [rng.permutation(np.flatnonzero(inverse == k))[:t] for k, t in enumerate(take)]
    return np.sort(np.concatenate(picked))


# --------------------------------------------------------------------------------------------
# Arrays and files
# --------------------------------------------------------------------------------------------
def frozen(a: np.ndarray) -> np.ndarray:
    """Mark ``a`` read-only (arrays kept in an in-process cache) and return it."""
    a.flags.writeable = False
    return a


def damaged(path, err: Exception) -> ValueError:
    """The one-line error for a data file that cannot be parsed: most often cut short by a copy or download."""
    return ValueError(f"{path} is damaged or truncated ({type(err).__name__}: {err}); copy it again.")


@lru_cache(maxsize=32)
def read_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read once per process, read-only."""
    import zipfile
    import zlib

    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: frozen(np.array(f[k])) for k in f.files}
    except (EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise damaged(path, err) from None


@lru_cache(maxsize=32)
def read_mat(path: str) -> dict[str, np.ndarray]:
    """The variables of a MATLAB (v5) ``.mat`` file, read once per process (do not modify)."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, IndexError, EOFError, TypeError) as err:  # what scipy raises on cut-short files
        raise damaged(path, err) from None
    return {k: v for k, v in m.items() if not k.startswith("__")}


def images_to_float(x: np.ndarray, channels_first_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (or [0, 1] float) images -> a fresh float32 array of shape (n, C, H, W) in [0, 1]."""
    shape = (len(x), *channels_first_shape)
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / np.float32(255.0)).reshape(shape)
    return np.array(x, dtype=np.float32).reshape(shape)


def atomic_savez(path: Path, compressed: bool = False, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache or package file should be readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
