"""`transferkit run transitive --source A --target B --pool C,D,...`: transfer through a chosen bridge.

The pool's domains are unlabelled intermediate candidates (their train splits, labels dropped);
the path is chosen by ``--set criterion=a-distance|mmd`` and printed with the target accuracy on the
target's test split. ``--set base=dann`` runs another method at each step (default: source-only,
i.e. gradual self-training); ``--epochs`` sets the epochs of every step.
"""

from __future__ import annotations

import time

__all__ = ["run_transitive"]


def run_transitive(args, cls, overrides: dict) -> dict:
    from transferkit import __version__
    from transferkit.cli_multitask import parse_tasks
    from transferkit.datasets import load_domain, load_train_test

    if not (args.source and args.target):
        raise ValueError("transitive needs --source and --target (DATASET:DOMAIN each) and --pool.")
    if not args.pool:
        raise ValueError("transitive needs --pool, the candidate intermediate domains (e.g. rotmnist:30,rotmnist:60).")
    keys = parse_tasks(args.pool, "--pool")
    t0 = time.perf_counter()
    source = load_domain(args.source, "train", label_column=args.label_column)
    target, target_test = load_train_test(args.target, label_column=args.label_column)
    pool = [load_domain(k, "train", label_column=args.label_column).unlabelled() for k in keys]
    base = overrides.get("base") or "source-only"
    if not isinstance(base, str):
        raise ValueError(f"--set base={base!r}: expected the name of a registered method, e.g. dann.")
    from transferkit.methods import get_method

    base_cls = get_method(base)
    base_params = {"seed": args.seed, "verbose": not (args.json or args.quiet)}
    if args.epochs is not None:
        base_params["epochs"] = args.epochs
    base_params = {k: v for k, v in base_params.items() if k in base_cls().get_params()}
    overrides = {**overrides, "base": base_cls(**base_params)}
    model = cls(**{**overrides, "seed": args.seed}).fit(source, target.unlabelled(), pool)
    return {
        "method": cls.name,
        "source": args.source,
        "target": args.target,
        "pool": keys,
        "path": [keys[i] for i in model.path_],
        "target_accuracy": float(model.score(target_test.X, target_test.y)),
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
    }
