"""Clustering runs (``stc``, ``itcc``): a target set clustered, with or without auxiliary data.

``--target`` is the data set to cluster (its train split, at most ``--n-target`` samples); for
``stc``, ``--source`` gives the unlabelled auxiliary data (its train split, at most
``--n-source`` samples), which must share the target's features. The target's labels are read
only to score the clusters (clustering accuracy under the best matching, and NMI); the number of
clusters defaults to the number of target classes (``--set n_clusters=K`` to choose; required for
a target without labels, which is clustered but not scored).
"""

from __future__ import annotations

import time

import numpy as np

from transferkit import __version__
from transferkit.runs.options import RunOptions, RunResult, UsageError, method_params

__all__ = ["run_clustering"]


def run_clustering(name: str, source, target, options: RunOptions) -> RunResult:
    """Cluster ``target`` (with ``source`` as auxiliary data for ``stc``); score against its labels if any."""
    from transferkit.methods import CLUSTERING

    cls = CLUSTERING[name]
    overrides = method_params(name, cls().get_params(), options, flags=())
    try:
        return _run(cls, source, target, options, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run(cls, source, target_key, options: RunOptions, overrides: dict) -> RunResult:
    from transferkit.datasets import load_domain
    from transferkit.metrics.clustering import clustering_accuracy, nmi

    if not target_key:
        raise ValueError(f"{cls.name} needs --target, the data set to cluster (e.g. newsgroups:comp-vs-sci-1).")
    if cls.name == "stc" and not source:
        raise ValueError("stc needs --source, the unlabelled auxiliary data (e.g. newsgroups:comp-vs-sci-2).")
    if cls.name == "itcc" and source:
        raise ValueError("itcc clusters the target alone; drop --source (or use stc to add auxiliary data).")
    t0 = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    target = load_domain(target_key, "train", label_column=options.label_column)
    if target.y is None and "n_clusters" not in overrides:
        raise ValueError(f"the target {target_key} has no labels to count its classes; say --set n_clusters=K.")
    n = min(options.n_target or 300, len(target))
    idx = rng.choice(len(target), n, replace=False)
    X, y = target.X[idx].reshape(n, -1), None if target.y is None else target.y[idx]
    params = {"n_clusters": len(np.unique(y)) if y is not None else None, **overrides, "seed": options.seed}
    model = cls(**params)
    auxiliary = None
    if source:
        aux = load_domain(source, "train", label_column=options.label_column)
        m = min(options.n_source or 5000, len(aux.X))
        auxiliary = aux.X[rng.choice(len(aux.X), m, replace=False)].reshape(m, -1)
        model.fit(X, auxiliary)
    else:
        model.fit(X)
    record = {
        "method": cls.name,
        "source": source,
        "target": target_key,
        "n_target": n,
        "n_auxiliary": 0 if auxiliary is None else len(auxiliary),
        "clustering_accuracy": None if y is None else clustering_accuracy(y, model.labels_),  # no labels, no score
        "nmi": None if y is None else nmi(y, model.labels_),
        "objective": model.objective_[-1],
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
        "hyperparameters": model.get_params(),
    }
    return RunResult(record, model)
