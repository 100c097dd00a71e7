"""The domain registry and the public loaders: keys, :func:`load_domain`, :func:`load_task`."""

from __future__ import annotations

import difflib
import os
from functools import lru_cache

import numpy as np

from ..data import Domain, Task
from . import amazon, digits, fashion, landmine, mushroom, newsgroups, rotated, school, spoken, zsl
from ._common import SPLITS, DomainInfo, _Spec, require, subsample_index
from .files import is_file_key, load_file, split_file_domain

_FAMILIES = (amazon, digits, rotated, fashion, landmine, school, newsgroups, mushroom, zsl, spoken)


@lru_cache(maxsize=1)
def _registry() -> dict[str, _Spec]:
    return {spec.info.key: spec for family in _FAMILIES for spec in family.specs()}


@lru_cache(maxsize=1)
def _by_dataset() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in _registry().values():
        out.setdefault(spec.info.dataset, []).append(spec.info.domain)
    return out


def list_domains() -> list[DomainInfo]:
    """Every registered domain, in a stable order (family by family, as documented).

    Returns
    -------
    list of DomainInfo
        Use ``info.present()`` to see which can be loaded with the current data directory.
    """
    return [spec.info for spec in _registry().values()]


def list_datasets() -> list[str]:
    """The dataset names (the part of a key before the colon), in registry order."""
    return list(_by_dataset())


def _follows(a: str, b: str) -> bool:
    return a.isdigit() and b.isdigit() and int(b) == int(a) + 1


def _compact(names: list[str]) -> str:
    """Names joined by commas, with runs of three or more consecutive integers shown as ``a..b``."""
    out, i = [], 0
    while i < len(names):
        j = i
        while j + 1 < len(names) and _follows(names[j], names[j + 1]):
            j += 1
        out.extend([f"{names[i]}..{names[j]}"] if j - i >= 2 else names[i : j + 1])
        i = j + 1
    return ", ".join(out)


def _did_you_mean(got: str, known: list[str]) -> str:
    if got.isdigit():
        return ""
    close = difflib.get_close_matches(got, known, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_key(key: str) -> tuple[str, str]:
    """Split and check a domain key ``"DATASET:DOMAIN"``.

    Matching is case-insensitive and ignores surrounding spaces; the canonical (registered)
    spelling is returned.

    Parameters
    ----------
    key : str
        Such as ``"amazon:books"`` or ``"digits:mnist"``.

    Returns
    -------
    (dataset, domain) : tuple of str

    Raises
    ------
    ValueError
        For a malformed key, an unknown dataset or an unknown domain; the message lists the
        known names.
    """
    if not isinstance(key, str):
        raise TypeError(f"a domain key must be a string 'DATASET:DOMAIN'; got {type(key).__name__} {key!r}.")
    known = _by_dataset()
    parts = key.strip().lower().split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(
            f"malformed domain key {key!r}; expected 'DATASET:DOMAIN' such as 'amazon:books'. "
            f"Known datasets: {', '.join(known)}."
        )
    dataset, domain = (p.strip() for p in parts)
    if dataset not in known:
        raise ValueError(
            f"unknown dataset {dataset!r} in key {key!r}; known datasets: {', '.join(known)}."
            + _did_you_mean(dataset, list(known))
        )
    if domain not in known[dataset]:
        raise ValueError(
            f"unknown domain {key!r}; known domains of {dataset!r}: {_compact(known[dataset])}."
            + _did_you_mean(domain, known[dataset])
        )
    return dataset, domain


def get_spec(key: str) -> _Spec:
    """The internal record of a key (checked with :func:`parse_key`)."""
    dataset, domain = parse_key(key)
    return _registry()[f"{dataset}:{domain}"]


def domain_info(key: str) -> DomainInfo:
    """The :class:`DomainInfo` of one key."""
    return get_spec(key).info


def require_data(key: str, data_dir: str | os.PathLike | None = None):
    """The resolved data directory, after checking that ``key``'s files are there.

    Raises
    ------
    DataNotFoundError
        Naming the key, the missing paths, the data directory and the fix.
    """
    return require(get_spec(key), data_dir)


def _check_split(split: str) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {', '.join(map(repr, SPLITS))}.")
    return split


def load_domain(
    key: str, split: str = "train", data_dir: str | os.PathLike | None = None, label_column: str = "label"
) -> Domain:
    """Load one split of a registered benchmark domain, or of your own file.

    Parameters
    ----------
    key : str
        ``"DATASET:DOMAIN"``; see :func:`list_domains`. Or the path of a CSV or ``.npz`` file or of
        a folder of images per class (:func:`~transferkit.datasets.files.load_file`, whose
        train/test split is a fixed seeded one).
    split : {"train", "test", "all"}
        Which part. Domains without an official split use a fixed seeded one (see each
        family's documentation); ``amazon400`` returns all samples for every split.
    data_dir : str or path-like, optional
        The data directory (default: :func:`~transferkit.datasets.data_dir`).
    label_column : str
        For a CSV file: the column holding the labels (a file without it is unlabelled).

    Returns
    -------
    Domain
        ``name`` is the canonical key. Images: float32 (n, C, H, W) in [0, 1]; features:
        float32 (n, d), dense, unscaled; labels: int64 from 0 (float64 for regression).
        The arrays are fresh copies, safe to modify.

    Raises
    ------
    ValueError
        Unknown or malformed key, bad ``split``, or a ``zsl:`` key (no image features).
    DataNotFoundError
        The domain's files are not in the data directory.
    """
    if is_file_key(key):
        return load_file(key, _check_split(split), label_column=label_column)
    spec = get_spec(key)
    _check_split(split)
    if spec.info.kind == "attributes":
        raise ValueError(
            f"{spec.info.key!r} has no sample-level data: the image features (res101.mat) are not "
            "available, only class attributes and splits. Use transferkit.datasets."
            f"load_zsl_attributes({spec.info.domain!r}) instead."
        )
    root = require_data(spec.info.key, data_dir)
    X, y = spec.load(root, split)
    return Domain(X, y, name=spec.info.key)


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------
def load_train_test(
    key: str, data_dir: str | os.PathLike | None = None, label_column: str = "label"
) -> tuple[Domain, Domain]:
    """The train and test parts of a registered domain or of a file (a file is read once)."""
    if is_file_key(key):
        whole = load_file(key, "all", label_column=label_column)
        return split_file_domain(whole, "train"), split_file_domain(whole, "test")
    return load_domain(key, "train", data_dir), load_domain(key, "test", data_dir)


def _resize_images(X: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Bilinear resize (align_corners=False) of (n, C, H, W) images, then repeat 1 -> ``channels``."""
    if X.shape[2:] != size:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            X = F.interpolate(torch.from_numpy(X), size=size, mode="bilinear", align_corners=False).numpy()
        X = np.clip(X, 0.0, 1.0)
    if X.shape[1] != channels:
        X = np.repeat(X, channels, axis=1)
    return np.ascontiguousarray(X, dtype=np.float32)


def harmonise_images(*domains: Domain) -> list[Domain]:
    """Bring image domains to one shape: the largest height and width, and 3 channels if any has 3.

    Parameters
    ----------
    *domains : Domain
        Image domains, (n, C, H, W) with C in {1, 3}.

    Returns
    -------
    list of Domain
        The same domains (same names and labels), resized bilinearly with ``align_corners=False``
        and with a 1-channel domain repeated to 3 channels where another has 3.

    Raises
    ------
    ValueError
        When channel counts cannot be matched (neither equal nor 1 vs 3).
    """
    shapes = [d.X.shape[1:] for d in domains]
    channels = {s[0] for s in shapes}
    if len(channels) > 1 and channels != {1, 3}:
        raise ValueError(f"cannot match channel counts {sorted(channels)}; expected 1 and 3 only.")
    size = (max(s[1] for s in shapes), max(s[2] for s in shapes))
    c = max(channels)
    return [d if d.X.shape[1:] == (c, *size) else Domain(_resize_images(d.X, size, c), d.y, d.name) for d in domains]


def subsample(domain: Domain, n: int | None, rng: np.random.Generator, what: str = "n") -> Domain:
    """``n`` samples of ``domain`` drawn with ``rng``, stratified by class where labels are discrete;
    ``domain`` itself when ``n`` is None or its size. ``what`` names ``n`` in the error for a bad size."""
    if n is None:
        return domain
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= len(domain):
        raise ValueError(f"{what}={n!r} must be an integer in 1..{len(domain)} (the size of {domain.name}).")
    if n == len(domain):
        return domain
    return domain.subset(subsample_index(domain.y, int(n), rng, len(domain)))


def load_task(
    source: str,
    target: str,
    data_dir: str | os.PathLike | None = None,
    n_source: int | None = None,
    n_target: int | None = None,
    seed: int = 0,
    label_column: str = "label",
) -> Task:
    """A source -> target unsupervised domain adaptation task from two registered domains.

    Parameters
    ----------
    source, target : str
        Domain keys.
    data_dir : str or path-like, optional
        The data directory (default: :func:`~transferkit.datasets.data_dir`).
    n_source, n_target : int, optional
        Subsample the source / target training parts to this many samples (seeded; stratified
        by class where labels are discrete, which keeps the class proportions of the full part).
        The target test part is never subsampled.
    seed : int
        Seed of the subsampling.
    label_column : str
        For CSV files given as ``source`` or ``target``: the column of labels.

    Returns
    -------
    Task
        ``source``: the labelled train split of the source (every sample of a source file);
        ``target``: the target's train split **without labels**; ``target_test``: the labelled
        test split of the target (``None`` for a target file without labels, whose every sample
        is then in ``target``). Image domains
        of different shapes are harmonised (see :func:`harmonise_images`). Named
        ``"<source>-><target>"``.

    Raises
    ------
    ValueError
        Bad keys, bad sizes, or feature domains of different dimension (from
        :func:`transferkit.data.check_same_features`).
    DataNotFoundError
        Missing data.
    """
    for key in (source, target):  # fail on any missing data before the (slower) loading
        if not is_file_key(key) and get_spec(key).info.kind != "attributes":
            require_data(key, data_dir)
    src = load_domain(source, "all" if is_file_key(source) else "train", data_dir, label_column)  # a file: all of it
    if is_file_key(target):  # read once, split here
        whole = load_file(target, "all", label_column=label_column)
        if whole.y is None:  # unlabelled target samples: all of them to adapt to, none to score on
            tgt, tgt_test = whole, None
        else:
            tgt, tgt_test = split_file_domain(whole, "train"), split_file_domain(whole, "test")
    else:
        tgt, tgt_test = load_train_test(target, data_dir)
    src = subsample(src, n_source, np.random.default_rng([seed, 0]), "n_source")
    tgt = subsample(tgt, n_target, np.random.default_rng([seed, 1]), "n_target")
    images = all(len(d.feature_shape) == 3 for d in (src, tgt))
    if images and src.feature_shape != tgt.feature_shape:
        present = [d for d in (src, tgt, tgt_test) if d is not None]
        src, tgt, *rest = harmonise_images(*present)
        tgt_test = rest[0] if rest else None
    return Task(src, tgt.unlabelled(), tgt_test, name=f"{src.name}->{tgt.name}")
