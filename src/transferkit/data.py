"""Data containers: :class:`Domain` and :class:`Task`, their input checks, and batching.

A :class:`Domain` is a sample of one distribution: features ``X`` and, where known, labels ``y``.
A :class:`Task` bundles what a transfer method gets (a source and a target domain) with what it
is judged on (a labelled target test domain). Everything is built from plain NumPy arrays, so a
user's own data is as welcome as the benchmark loaders' output.

All user input is checked here, once, at the public boundary: the error names the argument, what
it got, what was expected and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.sparse import issparse

__all__ = [
    "Domain",
    "Task",
    "PairedBatches",
    "Standardizer",
    "as_domain",
    "check_array",
    "check_same_features",
    "densify",
]


def check_array(X, name: str = "X", *, allow_nd: bool = True, accept_sparse: bool = False):
    """Return ``X`` as a C-contiguous float32 array, or raise a clear error.

    Accepts NumPy arrays, nested lists, torch tensors and SciPy sparse matrices: kept sparse, as a
    canonical float32 CSR matrix, with ``accept_sparse``; densified otherwise (refused, before
    trying, where the dense copy would not fit in memory). Rejects empty arrays, 1-D arrays (one
    feature per sample must still be a column) and any NaN or infinity.
    """
    if X is None:
        raise ValueError(f"{name} is None; expected an array of shape (n_samples, n_features).")
    if issparse(X):
        if accept_sparse:
            return _check_sparse(X, name)
        _check_densifiable(X, name)
        X = X.toarray()
    elif hasattr(X, "detach") and hasattr(X, "cpu"):  # torch.Tensor
        X = X.detach().cpu().numpy()
    if hasattr(X, "iloc"):  # pandas: its values, after a check that every column is numeric
        dtypes = X.dtypes.items() if hasattr(X, "dtypes") else [(getattr(X, "name", name), X.dtype)]
        bad = [c for c, t in dtypes if getattr(t, "kind", "O") not in "biuf"]
        if bad:
            raise TypeError(f"{name} has non-numeric columns {bad[:5]}; expected numbers. Encode or drop them first.")
        X = X.to_numpy()
    try:
        X = np.asarray(X)
        if X.dtype == object:  # numbers stored as objects are numbers
            X = X.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be turned into a numeric array: {exc}") from None
    if np.iscomplexobj(X):
        raise ValueError(f"{name} has complex dtype {X.dtype}: Complex data not supported; expected real numbers.")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} has dtype {X.dtype}; expected numbers (float or int).")
    if X.ndim < 2:
        raise ValueError(
            f"{name} has shape {X.shape}; expected at least 2 dimensions (n_samples, n_features). "
            "Reshape your data: a single feature with X.reshape(-1, 1), a single sample with X.reshape(1, -1)."
        )
    if not allow_nd and X.ndim != 2:
        raise ValueError(f"{name} has shape {X.shape}; expected a 2-D array (n_samples, n_features).")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); expected at least one sample.")
    if 0 in X.shape[1:]:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required; expected at least "
            "one feature per sample."
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        n_bad = int((~np.isfinite(X)).reshape(len(X), -1).any(1).sum())
        raise ValueError(
            f"{name} contains NaN or infinity in {n_bad} of {len(X)} samples; expected finite "
            "values. Impute or drop those samples first."
        )
    return X


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (``None`` where the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_densifiable(X, name: str) -> None:
    """Refuse, before trying, a sparse matrix whose dense float32 copy would not fit in memory."""
    need = 4 * int(np.prod(X.shape, dtype=np.int64))
    have = memory_bytes()
    if have is not None and need > have // 2:
        raise ValueError(
            f"{name} is sparse, {X.shape[0]} x {X.shape[1]} with {X.nnz} non-zeros; as a dense float32 array it "
            f"would take {need / 2**30:.1f} GiB, more than half of this machine's {have / 2**30:.1f} GiB. Reduce "
            "the features first (e.g. keep the most frequent words, or TruncatedSVD) or the samples."
        )


def _check_sparse(X, name: str):
    """``X`` as a canonical float32 CSR matrix (sorted, unique column indices), checked as dense arrays are."""
    import scipy.sparse

    if np.issubdtype(X.dtype, np.complexfloating) or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} is sparse with dtype {X.dtype}; expected real numbers.")
    X = scipy.sparse.csr_matrix(X, dtype=np.float32)  # a copy: the caller's matrix is never changed
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); expected at least one sample and one feature.")
    X.sum_duplicates()
    if not np.isfinite(X.data).all():
        bad = np.unique(np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[~np.isfinite(X.data)])
        raise ValueError(
            f"{name} contains NaN or infinity in {len(bad)} of {X.shape[0]} samples; expected finite "
            "values. Impute or drop those samples first."
        )
    return X


def densify(X, name: str = "X") -> np.ndarray:
    """``X`` as a dense float32 array: a sparse matrix expanded (refused where it would not fit in memory)."""
    if not issparse(X):
        return X
    _check_densifiable(X, name)
    return np.ascontiguousarray(X.toarray(), dtype=np.float32)


def _check_labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} has shape {y.shape}; expected a 1-D array of {n} labels.")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but X has {n} samples; expected one label per sample.")
    if y.dtype == object and len(y):
        if all(isinstance(v, str) for v in y):
            y = y.astype(str)  # class names are labels as good as numbers
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in y):
            y = y.astype(np.int64)
    if y.dtype.kind not in "US" and (y.dtype == object or not np.issubdtype(y.dtype, np.number)):
        raise TypeError(
            f"{name} has dtype {y.dtype}: Unknown label type (got e.g. {y[:3].tolist()}); expected numbers or strings."
        )
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinity; expected finite labels.")
    return y


@dataclass(frozen=True, eq=False)
class Domain:
    """A sample from one domain: features and, optionally, labels.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...), or a SciPy sparse matrix
        Features; images are (n, channels, height, width). Converted to float32; a sparse matrix
        stays sparse (CSR), and methods that need dense arrays expand it when they fit.
    y : array-like of shape (n_samples,), optional
        Labels. ``None`` for an unlabelled domain.
    name : str
        A name used in reports, such as ``"amazon:books"``.
    """

    X: np.ndarray
    y: np.ndarray | None = None
    name: str = "domain"

    def __post_init__(self):
        X = check_array(self.X, f"{self.name}.X" if self.name != "domain" else "X", accept_sparse=True)
        object.__setattr__(self, "X", X)
        if self.y is not None:
            object.__setattr__(self, "y", _check_labels(self.y, X.shape[0], f"{self.name}.y"))

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def sparse(self) -> bool:
        """Whether ``X`` is a sparse (CSR) matrix."""
        return issparse(self.X)

    def dense(self) -> Domain:
        """This domain with ``X`` as a dense array (itself when it already is one)."""
        if not self.sparse:
            return self
        return Domain(densify(self.X, f"{self.name}.X"), self.y, self.name)

    def __repr__(self) -> str:
        lab = "unlabelled" if self.y is None else f"{len(np.unique(self.y))} classes"
        return f"Domain(name={self.name!r}, n={len(self)}, shape={self.X.shape[1:]}, {lab})"

    @property
    def labelled(self) -> bool:
        return self.y is not None

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    def unlabelled(self) -> Domain:
        """The same samples with the labels removed."""
        return Domain(self.X, None, self.name)

    def subset(self, index) -> Domain:
        """The samples at ``index`` (an integer array or boolean mask)."""
        return Domain(self.X[index], None if self.y is None else self.y[index], self.name)

    def few_shot(self, k: int, seed: int = 0) -> Domain:
        """``k`` labelled examples of every class, drawn without replacement (the k-shot protocol).

        The draw depends only on ``seed``; rows keep their original order.
        """
        if self.y is None:
            raise ValueError(f"{self.name} has no labels; few_shot draws k labelled examples per class.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k={k!r}; expected a positive number of examples per class.")
        classes, counts = np.unique(self.y, return_counts=True)
        if k > counts.min():
            smallest = classes[counts.argmin()].item()
            raise ValueError(
                f"k={k} examples per class, but class {smallest!r} of {self.name} has only {counts.min()}; "
                f"expected k <= {counts.min()}."
            )
        rng = np.random.default_rng(seed)
        index = np.concatenate([rng.choice(np.flatnonzero(self.y == c), k, replace=False) for c in classes])
        return self.subset(np.sort(index))


def as_domain(data, name: str) -> Domain:
    """Accept a :class:`Domain`, an array ``X`` or a tuple ``(X, y)``."""
    if isinstance(data, Domain):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return Domain(data[0], data[1], name)
    return Domain(data, None, name)


def check_same_features(a: Domain, b: Domain, a_name: str = "source", b_name: str = "target") -> None:
    """Raise if two domains do not live in the same input space."""
    if a.feature_shape != b.feature_shape:
        raise ValueError(
            f"{a_name} and {b_name} have different feature shapes: {a_name} {a.feature_shape}, "
            f"{b_name} {b.feature_shape}; expected the same input space. Project both into one "
            "feature space first (images: resize and match the channel count)."
        )


class Standardizer:
    """``(X - mean) / std`` feature by feature, with the statistics kept (to save them with a model).

    Fitted on one domain's samples (:meth:`fit`), it is that domain's own standardisation: applied to
    each domain with its own statistics, it undoes a shift of every feature's mean and scale between
    domains (what CORAL, which matches covariances only, leaves in place).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, X) -> Standardizer:
        X = np.asarray(X)
        return cls(X.mean(0), X.std(0) + 1e-8)

    def __call__(self, Z) -> np.ndarray:
        return ((np.asarray(Z) - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Task:
    """A transfer problem: what a method is trained on and what it is judged on.

    ``source`` is labelled where the method's setting says so; ``target`` is the target training
    sample (unlabelled for unsupervised adaptation); ``target_test`` carries the labels that
    only evaluation may see.
    """

    source: Domain
    target: Domain
    target_test: Domain | None = None
    name: str = ""

    def __post_init__(self):
        check_same_features(self.source, self.target)
        if self.target_test is not None:
            check_same_features(self.target, self.target_test, "target", "target_test")


class PairedBatches:
    """Iterate over (source, target) index batches of two samples of unequal size.

    One epoch walks once through the larger domain; the smaller one is reshuffled and cycled, so
    every step sees ``batch_size`` samples of each domain (the DANN training scheme).

    Parameters
    ----------
    n_source, n_target : int
        Sizes of the two samples.
    batch_size : int
        Samples per domain per step (reduced to the smaller sample size when larger).
    generator : numpy.random.Generator
        Source of the shuffles, so an epoch is reproducible for a seed.
    """

    def __init__(self, n_source: int, n_target: int, batch_size: int, generator: np.random.Generator):
        if n_source <= 0 or n_target <= 0:
            raise ValueError(f"cannot pair an empty sample: n_source={n_source}, n_target={n_target}.")
        self.n_source, self.n_target = n_source, n_target
        self.batch_size = min(batch_size, n_source, n_target)
        self.rng = generator

    def __len__(self) -> int:
        return max(self.n_source, self.n_target) // self.batch_size

    def _cycle(self, n: int) -> Iterator[np.ndarray]:
        while True:
            perm = self.rng.permutation(n)
            for i in range(0, n - self.batch_size + 1, self.batch_size):
                yield perm[i : i + self.batch_size]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        s, t = self._cycle(self.n_source), self._cycle(self.n_target)
        for _ in range(len(self)):
            yield next(s), next(t)
