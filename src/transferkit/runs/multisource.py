"""Multi-source runs: ``transferkit run mdan --source amazon:books,amazon:dvd --target amazon:kitchen``.

Each source's train split (labelled) and the target's train split (unlabelled) are fitted on, with the
run's ``--preprocess`` fitted on them (``standardize`` pools them all, ``standardize-domain`` gives each
domain its own statistics); the target's test split is scored. ``--epochs``,
``--lr``, ``--batch-size`` and ``--set`` apply as for one source.
"""

from __future__ import annotations

import time

from transferkit import __version__
from transferkit.runs.inputs import fit_preprocess, mapped
from transferkit.runs.many_tasks import parse_tasks
from transferkit.runs.options import RunOptions, RunResult, UsageError, method_params

__all__ = ["run_multisource"]


def run_multisource(name: str, source, target, options: RunOptions) -> RunResult:
    """Fit ``name`` on the comma-separated sources of ``source`` and the unlabelled ``target``; the record."""
    from transferkit.methods import MULTI_SOURCE

    cls = MULTI_SOURCE[name]
    overrides = method_params(name, cls().get_params(), options)
    overrides.update(seed=options.seed, verbose=not options.quiet)
    est = cls(**overrides)
    if hasattr(est, "_parameter_constraints"):
        est._validate_params()
    if not (source and target):
        raise UsageError(f"{name} needs --source A,B[,...] (two or more labelled domains) and --target.")
    keys = parse_tasks(source, "--source")
    if len(keys) < 2:
        raise UsageError(f"--source {source}: {name} learns from two or more sources; one source is `run dann`.")
    from transferkit.datasets import load_domain, load_train_test

    t0 = time.perf_counter()
    try:
        sources = [load_domain(k, "train", label_column=options.label_column) for k in keys]
        target_train, target_test = load_train_test(target, label_column=options.label_column)
        target_train = target_train.unlabelled()
        if options.preprocess != "none":
            if options.preprocess == "log1p" and target_test.X.min() < 0:
                raise UsageError("--preprocess log1p needs non-negative features (counts); these have negative values.")
            f_sources, f_target = fit_preprocess(options.preprocess, sources, target_train)
            sources = [mapped(s, f) for s, f in zip(sources, f_sources, strict=True)]
            target_train, target_test = mapped(target_train, f_target), mapped(target_test, f_target)
        est.fit(sources, target_train)
    except ValueError as err:
        raise UsageError(str(err)) from None
    record = {
        "method": name,
        "sources": keys,
        "target": target,
        "target_accuracy": float(est.score(target_test)),
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
        "hyperparameters": {k: v for k, v in est.get_params().items() if k != "verbose"},
        "warnings": getattr(est, "warnings_", []),
    }
    return RunResult(record, est)
