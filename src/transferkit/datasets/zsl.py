"""Zero-shot learning class attributes and splits (Xian et al., "the Good, the Bad and the Ugly").

The ``att_splits.mat`` files of the xlsa17 release (Xian, Lampert, Schiele & Akata, TPAMI 2018)
for APY, AWA1, AWA2, CUB and SUN, with the "proposed split" class lists. The ResNet-101 image
features (``res101.mat``) are **not** available, so ``load_domain("zsl:...")`` refuses; use
:func:`load_zsl_attributes` for the class-level side (attribute signatures, seen / unseen
classes, split indices).

:func:`load_zsl_benchmark` reads the image side when a user has the release's ``res101.mat``
(ResNet-101 features and labels), and returns the proposed split ready for
:mod:`transferkit.methods.zeroshot`: trainval / test-seen / test-unseen features and labels, the
train / val split for choosing hyperparameters, and the class attributes.

The ``.mat`` files hold no image labels (those live in ``res101.mat``), so the seen and unseen
classes come from the split files ``trainvalclasses.txt`` and ``testclasses.txt`` (and the
three train / val folds from ``trainclasses{1,2,3}.txt`` / ``valclasses{1,2,3}.txt``), matched
by name against ``allclasses_names``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import DomainInfo, _Spec, damaged, folder_hint, needs, read_mat, require
from ._common import data_dir as resolve_data_dir

ROOT = "zsl_gbu_att_splits"
FOLDERS = {"apy": "APY", "awa1": "AWA1", "awa2": "AWA2", "cub": "CUB", "sun": "SUN"}
_FULL = {
    "apy": "aPascal & aYahoo (Farhadi et al. CVPR 2009)",
    "awa1": "Animals with Attributes 1 (Lampert et al. CVPR 2009)",
    "awa2": "Animals with Attributes 2 (Xian et al. TPAMI 2018)",
    "cub": "Caltech-UCSD Birds 200-2011 (Wah et al. 2011)",
    "sun": "SUN attributes (Patterson & Hays CVPR 2012)",
}
_PREDICATES = "AwA_predicates/predicates.txt"


@dataclass(frozen=True, eq=False)
class ZSLAttributes:
    """Class-level side of a zero-shot benchmark (GBU proposed split).

    Parameters
    ----------
    name : str
        ``"apy"``, ``"awa1"``, ``"awa2"``, ``"cub"`` or ``"sun"``.
    attributes : ndarray of float32, shape (n_classes, attr_dim)
        Class signatures ``att.T`` (each row L2-normalised, as released).
    class_names : list of str
        Names of the classes, in the row order of ``attributes``.
    seen_classes, unseen_classes : ndarray of int64
        Sorted 0-based class indices of the seen (trainval) and unseen (test) classes.
    original_attributes : ndarray of float32, shape (n_classes, attr_dim)
        The raw matrix ``original_att.T`` (AwA: 0..100 with -1 missing; CUB: percentages; SUN and
        APY: 0..1).
    train_classes, val_classes : tuple of ndarray of int64
        The three train / validation folds of the seen classes (sorted 0-based indices).
    trainval_loc, test_seen_loc, test_unseen_loc : ndarray of int64
        0-based image indices into the rows of the (unavailable) ``res101.mat``.
    train_loc, val_loc : ndarray of int64 or None
        The same for the train / val images, where the file has them (AWA1, AWA2, SUN).
    attribute_names : list of str or None
        Names of the attributes where known (AWA1 / AWA2: the 85 AwA predicates).
    """

    name: str
    attributes: np.ndarray
    class_names: list[str]
    seen_classes: np.ndarray
    unseen_classes: np.ndarray
    original_attributes: np.ndarray
    train_classes: tuple[np.ndarray, ...]
    val_classes: tuple[np.ndarray, ...]
    trainval_loc: np.ndarray
    test_seen_loc: np.ndarray
    test_unseen_loc: np.ndarray
    train_loc: np.ndarray | None = None
    val_loc: np.ndarray | None = None
    attribute_names: list[str] | None = None

    @property
    def n_classes(self) -> int:
        return self.attributes.shape[0]

    @property
    def attr_dim(self) -> int:
        return self.attributes.shape[1]

    def __repr__(self) -> str:
        return (
            f"ZSLAttributes(name={self.name!r}, n_classes={self.n_classes}, attr_dim={self.attr_dim}, "
            f"seen={len(self.seen_classes)}, unseen={len(self.unseen_classes)})"
        )


def _read_names(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _class_index(path: Path, class_names: list[str]) -> np.ndarray:
    where = {c: i for i, c in enumerate(class_names)}
    names = _read_names(path)
    unknown = [c for c in names if c not in where]
    if unknown:
        raise ValueError(f"{path} names classes absent from allclasses_names: {unknown[:5]}")
    return np.sort(np.array([where[c] for c in names], dtype=np.int64))


def _loc(m: dict, key: str) -> np.ndarray | None:
    return m[key].ravel().astype(np.int64) - 1 if key in m else None


def _attribute_names(root: Path, name: str, attr_dim: int) -> list[str] | None:
    path = root / ROOT / _PREDICATES
    if name not in ("awa1", "awa2") or not path.is_file():
        return None
    names = [line.split()[-1] for line in _read_names(path)]
    return names if len(names) == attr_dim else None


def canonical_name(name: str) -> str:
    """``"AWA2"``, ``"zsl:awa2"`` -> ``"awa2"``; anything else is a ValueError listing the names."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'awa2'; got {type(name).__name__}.")
    short = name.strip().lower()
    short = short.removeprefix("zsl:")
    if short not in FOLDERS:
        raise ValueError(f"unknown zero-shot dataset {name!r}; known: {', '.join(FOLDERS)}.")
    return short


def load_zsl_attributes(name: str, data_dir: str | os.PathLike | None = None) -> ZSLAttributes:
    """Class attributes and the proposed split of a zero-shot benchmark.

    Parameters
    ----------
    name : str
        ``"apy"``, ``"awa1"``, ``"awa2"``, ``"cub"`` or ``"sun"`` (case-insensitive; the
        ``"zsl:"`` prefix is accepted).
    data_dir : str or path-like, optional
        The data directory (default: :func:`~transferkit.datasets.data_dir`).

    Returns
    -------
    ZSLAttributes
        Fresh arrays (safe to modify).

    Raises
    ------
    ValueError
        For an unknown name.
    DataNotFoundError
        When ``zsl_gbu_att_splits/<NAME>/`` is missing.
    """
    short = canonical_name(name)
    root = require(next(s for s in specs() if s.info.key == f"zsl:{short}"), data_dir)
    folder = root / ROOT / FOLDERS[short]
    m = read_mat(str(folder / "att_splits.mat"))
    names = [str(np.asarray(x).ravel()[0]) for x in m["allclasses_names"].ravel()]
    att = m["att"].T.astype(np.float32)
    return ZSLAttributes(
        name=short,
        attributes=att,
        class_names=names,
        seen_classes=_class_index(folder / "trainvalclasses.txt", names),
        unseen_classes=_class_index(folder / "testclasses.txt", names),
        original_attributes=m["original_att"].T.astype(np.float32),
        train_classes=tuple(_class_index(folder / f"trainclasses{i}.txt", names) for i in (1, 2, 3)),
        val_classes=tuple(_class_index(folder / f"valclasses{i}.txt", names) for i in (1, 2, 3)),
        trainval_loc=_loc(m, "trainval_loc"),
        test_seen_loc=_loc(m, "test_seen_loc"),
        test_unseen_loc=_loc(m, "test_unseen_loc"),
        train_loc=_loc(m, "train_loc"),
        val_loc=_loc(m, "val_loc"),
        attribute_names=_attribute_names(root, short, att.shape[1]),
    )


@dataclass(frozen=True, eq=False)
class ZSLBenchmark:
    """The proposed split of Xian et al. with image features, ready for a zero-shot method.

    Labels are 0-based class indices into ``descriptions`` (the rows of ``att.T``).
    ``X_train`` / ``X_val`` split the seen classes' trainval images by class for model selection:
    the validation classes play the unseen ones (Xian et al.'s ``train_loc`` / ``val_loc`` where
    the file has them, otherwise fold 1 of ``trainclasses`` / ``valclasses``).
    """

    name: str
    descriptions: object  # ClassDescriptions
    X_trainval: np.ndarray
    y_trainval: np.ndarray
    X_test_seen: np.ndarray
    y_test_seen: np.ndarray
    X_test_unseen: np.ndarray
    y_test_unseen: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray

    def __repr__(self) -> str:
        return (
            f"ZSLBenchmark(name={self.name!r}, features={self.X_trainval.shape[1]}, trainval={len(self.y_trainval)}, "
            f"test_seen={len(self.y_test_seen)}, test_unseen={len(self.y_test_unseen)})"
        )


def _features_file(short: str, root: Path, features) -> Path:
    path = Path(features) if features is not None else root / ROOT / FOLDERS[short] / "res101.mat"
    if not path.is_file():
        raise FileNotFoundError(
            f"no image features for zsl:{short} at {path}. The ResNet-101 features of Xian et al. ship as "
            f"res101.mat in their xlsa17 release (data/{FOLDERS[short]}/res101.mat); put the file there or pass "
            "features=PATH (--features PATH on the command line)."
        )
    return path


def load_zsl_benchmark(name: str, features=None, data_dir: str | os.PathLike | None = None) -> ZSLBenchmark:
    """The proposed split of a Xian et al. benchmark with its image features (``res101.mat``).

    Parameters
    ----------
    name : str
        ``"apy"``, ``"awa1"``, ``"awa2"``, ``"cub"`` or ``"sun"``.
    features : path-like, optional
        The release's ``res101.mat`` (``features``: dims x images, ``labels``: 1-based class per
        image). Default: ``<data_dir>/zsl_gbu_att_splits/<NAME>/res101.mat``.
    data_dir : path-like, optional
        Where ``zsl_gbu_att_splits`` lives (default: :func:`~transferkit.datasets.data_dir`).

    Raises
    ------
    FileNotFoundError
        When the features file is missing (the message says where it comes from).
    ValueError
        When the features do not fit the split file: too few images, labels outside the class
        list, or a split whose images carry classes of the wrong kind (seen / unseen).
    """
    from transferkit.semantics import ClassDescriptions

    att = load_zsl_attributes(name, data_dir)
    path = _features_file(att.name, resolve_data_dir(data_dir), features)
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path), variable_names=("features", "labels"))  # not cached: hundreds of MB
    except FileNotFoundError:
        raise
    except (OSError, ValueError, IndexError, EOFError, TypeError) as err:  # cut short in a copy or download
        raise damaged(path, err) from None
    for key in ("features", "labels"):
        if key not in m:
            raise ValueError(f"{path} has no {key!r} variable; expected the res101.mat format (features, labels).")
    F = np.asarray(m["features"], dtype=np.float32)
    labels = np.asarray(m["labels"]).ravel().astype(np.int64) - 1
    if F.ndim != 2 or F.shape[1] != len(labels):
        raise ValueError(
            f"{path}: features has shape {F.shape} and labels {labels.shape}; expected features (dims, n_images) "
            "with one label per image."
        )
    X = np.ascontiguousarray(F.T)
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: features contain NaN or infinity.")
    if labels.min() < 0 or labels.max() >= att.n_classes:
        raise ValueError(
            f"{path}: labels run from {labels.min() + 1} to {labels.max() + 1}; expected 1..{att.n_classes} "
            f"(the classes of zsl:{att.name})."
        )
    locs = {
        "trainval_loc": att.trainval_loc,
        "test_seen_loc": att.test_seen_loc,
        "test_unseen_loc": att.test_unseen_loc,
    }
    top = max(int(v.max()) for v in locs.values())
    if top >= len(labels):
        raise ValueError(
            f"{path} has {len(labels)} images but the split indexes image {top + 1}; this features file belongs "
            f"to another data set than zsl:{att.name}."
        )
    seen, unseen = set(att.seen_classes.tolist()), set(att.unseen_classes.tolist())
    for key, want, kind in (
        ("trainval_loc", seen, "seen"),
        ("test_seen_loc", seen, "seen"),
        ("test_unseen_loc", unseen, "unseen"),
    ):
        stray = sorted(set(labels[locs[key]].tolist()) - want)
        if stray:
            raise ValueError(
                f"{path}: images of {key} carry classes {stray[:5]} that are not {kind} classes of the proposed "
                f"split; the features file does not match att_splits.mat of zsl:{att.name}."
            )
    if att.train_loc is not None and att.val_loc is not None:
        train_idx, val_idx = att.train_loc, att.val_loc
    else:  # fold 1 of the class lists, over the trainval images
        tv = att.trainval_loc
        train_idx = tv[np.isin(labels[tv], att.train_classes[0])]
        val_idx = tv[np.isin(labels[tv], att.val_classes[0])]
    descriptions = ClassDescriptions(
        att.attributes, att.class_names, np.arange(att.n_classes), "attributes", att.attribute_names
    )
    take = lambda idx: (X[idx], labels[idx])  # noqa: E731
    (Xtv, ytv), (Xs, ys), (Xu, yu) = take(att.trainval_loc), take(att.test_seen_loc), take(att.test_unseen_loc)
    (Xtr, ytr), (Xva, yva) = take(train_idx), take(val_idx)
    return ZSLBenchmark(att.name, descriptions, Xtv, ytv, Xs, ys, Xu, yu, Xtr, ytr, Xva, yva)


_N_CLASSES = {"apy": 32, "awa1": 50, "awa2": 50, "cub": 200, "sun": 717}


def _refuse(root: Path, split: str):
    raise AssertionError("unreachable: load_domain refuses kind='attributes' before loading")


def specs() -> list[_Spec]:
    """The registry records of the five zero-shot benchmarks (kind ``"attributes"``)."""
    out = []
    for short, folder in FOLDERS.items():
        info = DomainInfo(
            f"zsl:{short}",
            "zsl",
            short,
            "attributes",
            _N_CLASSES[short],
            f"{_FULL[short]}: class attributes + GBU proposed split (no image features)",
            "xlsa17 att_splits.mat of Xian et al. TPAMI 2018",
        )
        names = ("att_splits.mat", "trainvalclasses.txt", "testclasses.txt")
        folds = tuple(f"{kind}classes{i}.txt" for kind in ("train", "val") for i in (1, 2, 3))
        files = [f"{ROOT}/{folder}/{f}" for f in names + folds]
        out.append(_Spec(info, _refuse, needs(*files), folder_hint(ROOT)))
    return out
