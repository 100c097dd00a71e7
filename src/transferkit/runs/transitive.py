"""Transitive runs: transfer from a source to a distant target through a bridge chosen from a pool.

The pool's domains are unlabelled intermediate candidates (their train splits, labels dropped);
the path is chosen by ``--set criterion=a-distance|mmd`` and recorded with the target accuracy on
the target's test split. ``--set base=dann`` runs another method at each step (default:
source-only, i.e. gradual self-training); ``--epochs`` sets the epochs of every step.
"""

from __future__ import annotations

import time

from transferkit import __version__
from transferkit.runs.many_tasks import parse_tasks
from transferkit.runs.options import RunOptions, RunResult, UsageError, method_params

__all__ = ["run_transitive"]


def run_transitive(name: str, source, target, options: RunOptions) -> RunResult:
    """Fit transitive transfer from ``source`` to ``target`` through ``options.pool``; the run record."""
    from transferkit.methods import POOLED

    cls = POOLED[name]
    overrides = method_params(name, cls().get_params(), options, flags=())
    try:
        return _run(cls, source, target, options, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run(cls, source_key, target_key, options: RunOptions, overrides: dict) -> RunResult:
    from transferkit.datasets import load_domain, load_train_test
    from transferkit.methods import get_method

    if not (source_key and target_key):
        raise ValueError("transitive needs --source and --target (DATASET:DOMAIN each) and --pool.")
    if not options.pool:
        raise ValueError("transitive needs --pool, the candidate intermediate domains (e.g. rotmnist:30,rotmnist:60).")
    keys = parse_tasks(options.pool, "--pool")
    t0 = time.perf_counter()
    source = load_domain(source_key, "train", label_column=options.label_column)
    target, target_test = load_train_test(target_key, label_column=options.label_column)
    pool = [load_domain(k, "train", label_column=options.label_column).unlabelled() for k in keys]
    base = overrides.get("base") or "source-only"
    if not isinstance(base, str):
        raise ValueError(f"--set base={base!r}: expected the name of a registered method, e.g. dann.")
    base_cls = get_method(base)
    base_params = {"seed": options.seed, "verbose": not options.quiet}
    if options.epochs is not None:
        base_params["epochs"] = options.epochs
    base_params = {k: v for k, v in base_params.items() if k in base_cls().get_params()}
    overrides = {**overrides, "base": base_cls(**base_params)}
    model = cls(**{**overrides, "seed": options.seed}).fit(source, target.unlabelled(), pool)
    record = {
        "method": cls.name,
        "source": source_key,
        "target": target_key,
        "pool": keys,
        "path": [keys[i] for i in model.path_],
        # the base method by its name, as --set gave it; the others as fitted
        "hyperparameters": {**{k: v for k, v in model.get_params(deep=False).items() if k != "base"}, "base": base},
        "target_accuracy": float(model.score(target_test.X, target_test.y)),
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
    }
    return RunResult(record, model)
