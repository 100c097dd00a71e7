"""A run's data: the domains loaded or taken as given, transformed on training inputs only, K-shot labels."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from transferkit.data import Domain, Standardizer
from transferkit.datasets.files import is_file_key
from transferkit.runs.options import FEATURES, PREPROCESS, RunOptions, UsageError

__all__ = ["RunData", "few_labelled", "fit_preprocess", "learn_features", "load_pair", "mapped", "preprocess"]


@dataclass
class RunData:
    """The labelled source, the target to adapt to (unlabelled) and the labelled target test part.

    ``target_labels`` keeps the labels of the target's training part, read only to draw the K
    labelled examples of methods that learn from target labels (``None`` when there are none).
    """

    source: Domain
    target: Domain
    target_test: Domain | None
    target_labels: np.ndarray | None
    source_name: str
    target_name: str
    #: How the target's inputs were transformed (:func:`describe_transform`): saved with the model,
    #: so that ``transferkit predict`` applies the same preprocessing to new target samples.
    target_transform: dict | None = None
    #: Every sample of a target file (all its rows, transformed as ``target``) and each one's row number
    #: or image path, for ``--predictions``; ``None`` for a registered data set or a target Domain.
    target_file: tuple[Domain, list] | None = None


def fit_preprocess(name: str, sources: list, target) -> tuple[list, object]:
    """The transform ``name`` fitted on the training inputs: one function per source, one for the target.

    ``standardize`` pools every source and the target; ``standardize-domain`` gives each domain its
    own mean and spread; ``binary`` and ``log1p`` fit nothing. The target's function also serves its
    test part.
    """
    if name not in PREPROCESS:
        raise UsageError(f"--preprocess {name!r}: expected one of {', '.join(PREPROCESS)}")
    if name == "none":
        f = lambda X: X  # noqa: E731
    elif name == "binary":
        f = _binary
    elif name == "log1p":
        if min(d.X.min() for d in (*sources, target)) < 0:
            raise UsageError("--preprocess log1p needs non-negative features (counts); these have negative values.")
        f = np.log1p
    elif name == "standardize":
        f = Standardizer.fit(np.concatenate([d.X for d in (*sources, target)]))
    else:  # standardize-domain: each domain by its own statistics, so a shift of mean and scale is undone
        return [Standardizer.fit(d.X) for d in sources], Standardizer.fit(target.X)
    return [f] * len(sources), f


def preprocess(name: str, source, target, target_test):
    """Apply a feature transform fitted on the training data only (source and unlabelled target)."""
    return _preprocess(name, source, target, target_test)[:3]


def _preprocess(name: str, source, target, target_test):
    """:func:`preprocess`, and the target's transform."""
    if name == "none":
        return source, target, target_test, None
    (f_source,), f_target = fit_preprocess(name, [source], target)
    if name == "log1p" and target_test is not None and target_test.X.min() < 0:
        raise UsageError("--preprocess log1p needs non-negative features (counts); these have negative values.")
    return mapped(source, f_source), mapped(target, f_target), mapped(target_test, f_target), f_target


def describe_transform(name: str, f) -> dict:
    """The target's transform as plain values (its statistics for the standardisers)."""
    if isinstance(f, Standardizer):
        return {"preprocess": name, "mean": f.mean.tolist(), "std": f.std.tolist()}
    return {"preprocess": name}


def transform_from(description: dict):
    """The transform :func:`describe_transform` described, as a function of the inputs."""
    name = description.get("preprocess", "none")
    if name in ("standardize", "standardize-domain"):
        return Standardizer(np.asarray(description["mean"], np.float32), np.asarray(description["std"], np.float32))
    if name not in PREPROCESS:
        raise ValueError(f"preprocess {name!r} is not one this version knows ({', '.join(PREPROCESS)}).")
    return {"none": lambda X: X, "binary": _binary, "log1p": np.log1p}[name]


def mapped(domain: Domain | None, f) -> Domain | None:
    """``domain`` with ``f`` applied to its samples, labels and name kept (``None`` stays ``None``)."""
    return None if domain is None else Domain(f(domain.X), domain.y, domain.name)


def _binary(X: np.ndarray) -> np.ndarray:
    return (X > 0).astype(np.float32)


def learn_features(name: str, source, target, target_test):
    """Feature learning on the unlabelled training inputs (source and target), applied to all three."""
    return _learn_features(name, source, target, target_test)[:3]


def _learn_features(name: str, source, target, target_test):
    """:func:`learn_features`, and the learnt map (``None`` for ``none``)."""
    if name == "none":
        return source, target, target_test, None
    if name != "msda":
        raise UsageError(f"--features {name!r}: expected one of {', '.join(FEATURES)}")
    if len(source.feature_shape) != 1:
        raise UsageError(f"--features msda needs feature vectors; got inputs of shape {source.feature_shape}.")
    from transferkit.methods.msda import MSDA

    msda = MSDA().fit(np.concatenate([source.X, target.X]))  # labels never enter
    return (*(mapped(d, msda.transform) for d in (source, target, target_test)), msda.transform)


def _describe(source_key: str, target_key: str, data: RunData, options: RunOptions) -> None:
    """Say on stderr what was read from the user's own files, so a wrong label column shows at once."""
    from transferkit.datasets.files import is_file_key

    for role, key, d in (("source", source_key, data.source), ("target", target_key, data.target)):
        if options.quiet or not is_file_key(key):
            continue
        if d.y is not None:
            labels = f"labels from column {options.label_column!r}: {len(np.unique(d.y))} classes"
        elif role == "target" and data.target_test is not None:
            labels = f"labels kept for scoring only ({len(data.target_test)} held-out samples)"
        elif role == "target":
            labels = "unlabelled: no score; --predictions FILE writes the predicted labels"
        else:
            labels = "unlabelled"
        shape = "x".join(map(str, d.feature_shape))
        print(f"transferkit: {role} {key}: {len(d)} samples of {shape}, {labels}", file=sys.stderr)


def load_pair(source, target, options: RunOptions, target_test: Domain | None = None) -> RunData:
    """The run's domains: keys (``DATASET:DOMAIN`` or files) are loaded, :class:`Domain` objects taken as given.

    A target key gives its unlabelled train split to adapt to and its labelled test split to
    score; a target :class:`Domain` is adapted to without its labels, and ``target_test`` is scored.
    Then ``options.preprocess`` and ``options.features``, fitted on the training inputs only.
    """
    if isinstance(source, Domain) != isinstance(target, Domain):
        raise UsageError("source and target: give two DATASET:DOMAIN keys (or files), or two Domains.")
    if isinstance(source, Domain):
        from transferkit.datasets import subsample

        labels = target.y
        data = RunData(
            subsample(source, options.n_source, np.random.default_rng([options.seed, 0]), "n_source"),
            subsample(target, options.n_target, np.random.default_rng([options.seed, 1]), "n_target").unlabelled(),
            target_test,
            None,
            source.name,
            target.name,
        )
        if options.n_target is None:
            data.target_labels = labels
    else:
        if target_test is not None:
            raise UsageError("target_test goes with a target Domain; a target key brings its own test split.")
        from transferkit.datasets import load_domain, load_task

        task = load_task(
            source,
            target,
            n_source=options.n_source,
            n_target=options.n_target,
            seed=options.seed,
            label_column=options.label_column,
        )
        data = RunData(task.source, task.target, task.target_test, None, source, target)
        _describe(source, target, data, options)
        if options.target_labels:  # the labels of the target's train split, for the K-shot draw
            data.target_labels = load_domain(target, "train", label_column=options.label_column).y
    *transformed, f_target = _preprocess(options.preprocess, data.source, data.target, data.target_test)
    data.target_transform = describe_transform(options.preprocess, f_target)
    *learnt, features = _learn_features(options.features, *transformed)
    data.source, data.target, data.target_test = learnt
    if isinstance(target, str) and is_file_key(target):
        data.target_file = _whole_file(target, options, data.target.feature_shape, f_target, features)
    return data


def _whole_file(path: str, options: RunOptions, shape, *maps):
    """Every sample of the target file, transformed as the run's target, with its row number or image path."""
    from pathlib import Path

    from transferkit.datasets.files import image_files, load_file

    image_size = tuple(shape[-2:]) if len(shape) == 3 and Path(path).is_dir() else None
    domain = load_file(path, "all", label_column=options.label_column, image_size=image_size)
    for f in maps:
        domain = mapped(domain, f) if f is not None else domain
    index = (
        [str(f.relative_to(path)) for f, _ in image_files(path)] if Path(path).is_dir() else list(range(len(domain)))
    )
    return domain, index


def few_labelled(data: RunData, options: RunOptions, regression: bool = False) -> Domain:
    """K labelled examples per class (K in all for regression) from the target's train split, seeded;
    never from its test split."""
    k, target = options.target_labels, data.target
    if options.n_target is not None:
        raise UsageError("--n-target cannot be combined with --target-labels; the K examples are drawn per class.")
    y = data.target_labels
    if y is None:
        raise UsageError(f"--target-labels {k}: the target {data.target_name} has no labels.")
    rng = np.random.default_rng(options.seed)
    if regression:
        if k > len(y):
            raise UsageError(f"--target-labels {k}: the target has only {len(y)} examples.")
        idx = np.sort(rng.choice(len(y), k, replace=False))
        return Domain(target.X[idx], y[idx], target.name)
    try:
        return Domain(target.X, y, target.name).few_shot(k, seed=options.seed)
    except ValueError as err:
        raise UsageError(f"--target-labels {k}: {err}") from None
