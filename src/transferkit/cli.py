"""The ``transferkit`` command: a thin shell over the estimators.

    transferkit methods                      the map of methods, by what is labelled
    transferkit datasets                     known datasets and domains, and which are present
    transferkit run METHOD --source D:S --target D:T [--json]
    transferkit advise --source D:S --target D:T  which quadrant, which methods, which source
    transferkit demo [--out DIR]             a tour of the four quadrants on embedded digits, with a report
    transferkit bench NAME [--json]          reproduce a paper table

With ``--json`` stdout carries exactly one JSON document; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from collections.abc import Sequence

from transferkit import __version__

EXAMPLES = """examples:
  transferkit methods
  transferkit datasets
  transferkit run dann --source amazon:books --target amazon:kitchen --json
  transferkit run source-only --source digits:mnist --target digits:mnistm --epochs 10
  transferkit run dann --source demo:mnist --target demo:usps --set lambda_max=0.3 --plot --out runs/demo
  transferkit run dann --source amazon:books --target amazon:dvd --select dev --grid lambda_max=0.03,0.1,0.3
  transferkit run finetune --source digits:mnist --target digits:usps --target-labels 10 --copy first:2 --freeze
  transferkit run dap --source fashion:mnist --unseen 2,3,5
  transferkit run self-taught --source digits:mnist --target fashion:mnist --target-labels 5
  transferkit run stc --source newsgroups:comp-vs-sci-2 --target newsgroups:comp-vs-sci-1
  transferkit run transitive --source rotmnist:0 --target rotmnist:90 --pool rotmnist:30,rotmnist:60
  transferkit demo --out transferkit-demo

data: real benchmark files are read from $TRANSFERKIT_DATA (default ~/.cache/transferkit/data);
the demo: domains ship with the package and need nothing.
"""

PREPROCESS = ("none", "binary", "log1p", "standardize")
FEATURES = ("none", "msda")


class UsageError(Exception):
    """A user error to report in one line, without a traceback."""


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(pairs: Sequence[str], params: dict) -> dict:
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set lambda_max=0.3")
        if key not in params:
            raise UsageError(f"--set {key}: not a hyperparameter of this method; known: {', '.join(sorted(params))}")
        out[key] = _parse_value(value)
    return out


def preprocess(name: str, source, target, target_test):
    """Apply a feature transform fitted on the training data only (source and unlabelled target)."""
    import numpy as np

    from transferkit.data import Domain

    if name == "none":
        return source, target, target_test
    if name == "binary":
        f = lambda X: (X > 0).astype(np.float32)  # noqa: E731
    elif name == "log1p":
        if min(d.X.min() for d in (source, target, target_test) if d is not None) < 0:
            raise UsageError("--preprocess log1p needs non-negative features (counts); these have negative values.")
        f = np.log1p
    elif name == "standardize":
        train = np.concatenate([source.X, target.X])
        mu, sd = train.mean(0), train.std(0) + 1e-8
        f = lambda X: (X - mu) / sd  # noqa: E731
    else:
        raise UsageError(f"--preprocess {name!r}: expected one of {', '.join(PREPROCESS)}")
    return tuple(None if d is None else Domain(f(d.X), d.y, d.name) for d in (source, target, target_test))


# ----------------------------------------------------------------------------------------- commands


def cmd_methods(args) -> int:
    from transferkit.methods import CLUSTERING, MANY_TASKS, POOLED, REGISTRY, REGRESSORS, ZERO_SHOT
    from transferkit.methods.base import QUADRANTS

    REGISTRY = {**REGISTRY, **REGRESSORS, **MANY_TASKS, **ZERO_SHOT, **CLUSTERING, **POOLED}  # noqa: N806 - all

    if args.json:
        from transferkit.report import to_json

        rows = [
            {
                "name": name,
                "class": cls.__name__,
                "quadrant": cls.setting.quadrant,
                "source_labels": cls.setting.source_labels,
                "target_labels": cls.setting.target_labels,
                "uses_target": cls.setting.target,
                "task": getattr(
                    cls,
                    "task",
                    "many tasks"
                    if name in MANY_TASKS
                    else "zero-shot"
                    if name in ZERO_SHOT
                    else "clustering"
                    if name in CLUSTERING
                    else "classification",
                ),
                "description": cls.description,
                "paper": cls.paper,
            }
            for name, cls in REGISTRY.items()
        ]
        print(to_json(rows))
        return 0
    for key, quadrant in QUADRANTS.items():
        members = [(n, c) for n, c in REGISTRY.items() if (c.setting.source_labels, c.setting.target_labels) == key]
        print(f"{quadrant}:")
        if not members:
            print("  (none yet)")
        for name, cls in members:
            if name in ZERO_SHOT:
                note = "  [zero-shot: --unseen; the target classes are never seen]"
            elif name in CLUSTERING:
                note = "  [clustering: --target to cluster" + (", --source auxiliary]" if name == "stc" else "]")
            elif name in POOLED:
                note = "  [--pool: candidate intermediate domains]"
            else:
                note = "" if cls.setting.target else "  [baseline: ignores target data]"
            note += "  [regression]" if getattr(cls, "task", "") == "regression" else ""
            note += "  [many tasks: --tasks / --sequence]" if name in MANY_TASKS else ""
            print(f"  {name:<14} {cls.description}{note}")
            print(f"  {'':<14} {cls.paper}")
        print()
    return 0


def cmd_datasets(args) -> int:
    from transferkit.datasets import data_dir, list_domains

    root = data_dir()
    infos = list_domains()
    if args.json:
        from transferkit.report import to_json

        print(to_json([{**info.__dict__, "present": info.present()} for info in infos]))
        return 0
    print(f"data directory: {root}  (set TRANSFERKIT_DATA to change it)\n")
    by_dataset: dict[str, list] = {}
    for info in infos:
        by_dataset.setdefault(info.dataset, []).append(info)
    for dataset, members in by_dataset.items():
        present = [i for i in members if i.present()]
        status = "present" if len(present) == len(members) else f"{len(present)}/{len(members)} present"
        if not present:
            status = "missing"
        first = members[0]
        names = [i.domain for i in members]
        shown = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:4])}, ... {names[-1]} ({len(names)})"
        print(f"{dataset:<11} [{status}] {first.kind}: {shown}")
        for origin in dict.fromkeys(i.source for i in members):
            print(f"{'':<11} {origin}")
    if not all(i.present() for i in infos):
        print(
            "\nmissing files: set TRANSFERKIT_DATA to the folder holding the datasets' folders "
            "(amazon_reviews_dann/, mnist_small/, ...); `transferkit run` names the exact file it looked for."
        )
    return 0


def learn_features(name: str, source, target, target_test):
    """Feature learning on the unlabelled training inputs (source and target), applied to all three."""
    import numpy as np

    from transferkit.data import Domain

    if name == "none":
        return source, target, target_test
    if name != "msda":
        raise UsageError(f"--features {name!r}: expected one of {', '.join(FEATURES)}")
    if len(source.feature_shape) != 1:
        raise UsageError(f"--features msda needs feature vectors; got inputs of shape {source.feature_shape}.")
    from transferkit.methods.msda import MSDA

    msda = MSDA().fit(np.concatenate([source.X, target.X]))  # labels never enter
    return tuple(None if d is None else Domain(msda.transform(d.X), d.y, d.name) for d in (source, target, target_test))


def _load_run_data(args):
    from transferkit.datasets import load_task

    task = load_task(
        args.source,
        args.target,
        n_source=args.n_source,
        n_target=args.n_target,
        seed=args.seed,
        label_column=args.label_column,
    )
    _describe(task, args)
    data = preprocess(args.preprocess, task.source, task.target, task.target_test)
    return learn_features(getattr(args, "features", "none"), *data)


def _describe(task, args) -> None:
    """Say on stderr what was read from the user's own files, so a wrong label column shows at once."""
    import numpy as np

    from transferkit.datasets.files import is_file_key

    for role, key, d in (("source", args.source, task.source), ("target", args.target, task.target)):
        if args.quiet or not is_file_key(key):
            continue
        if d.y is not None:
            labels = f"labels from column {args.label_column!r}: {len(np.unique(d.y))} classes"
        elif role == "target" and task.target_test is not None:
            labels = f"labels kept for scoring only ({len(task.target_test)} held-out samples)"
        elif role == "target":
            labels = "unlabelled: no score; --predictions FILE writes the predicted labels"
        else:
            labels = "unlabelled"
        shape = "x".join(map(str, d.feature_shape))
        print(f"transferkit: {role} {key}: {len(d)} samples of {shape}, {labels}", file=sys.stderr)


def _write_predictions(path: str, est, target) -> None:
    """One row per target sample: its index in the target file's part, and the predicted label."""
    import csv

    predictions = est.predict(target.X)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "prediction"])
        writer.writerows(zip(range(len(predictions)), predictions.tolist(), strict=True))


def _few_labelled(args, target, regression: bool = False):
    """K labelled examples per class (K in all for regression) from the target's train split, seeded;
    never from its test split."""
    import numpy as np

    from transferkit.data import Domain
    from transferkit.datasets import load_domain

    if args.n_target is not None:
        raise UsageError("--n-target cannot be combined with --target-labels; the K examples are drawn per class.")
    y = load_domain(args.target, "train", label_column=args.label_column).y  # the unlabelled target split's rows
    if y is None:
        raise UsageError(f"--target-labels {args.target_labels}: the target {args.target} has no labels.")
    rng = np.random.default_rng(args.seed)
    if regression:
        if args.target_labels > len(y):
            raise UsageError(f"--target-labels {args.target_labels}: the target has only {len(y)} examples.")
        idx = np.sort(rng.choice(len(y), args.target_labels, replace=False))
        return Domain(target.X[idx], y[idx], target.name)
    try:
        return Domain(target.X, y, target.name).few_shot(args.target_labels, seed=args.seed)
    except ValueError as err:
        raise UsageError(f"--target-labels {args.target_labels}: {err}") from None


def _grid(args, params: dict) -> dict:
    """``--grid KEY=V1,V2,...`` (repeatable) as a parameter grid; only with ``--select``."""
    grid = {}
    for item in getattr(args, "grid", None) or ():
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UsageError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. --grid lambda_max=0.03,0.1,0.3")
        if key not in params:
            raise UsageError(f"--grid {key}: not a hyperparameter of this method; known: {', '.join(sorted(params))}")
        grid[key] = [_parse_value(v) for v in values.split(",")]
    if grid and not getattr(args, "select", None):
        raise UsageError("--grid needs --select VALIDATOR to choose among the candidates (e.g. --select dev).")
    return grid


def _select(args, cls, est, grid, source, target, target_test):
    """Choose ``grid``'s candidate by the validator ``--select`` names; refit it on the whole source."""
    from transferkit.metrics.validators import get_validator
    from transferkit.selection import ORACLE_NOTE, select

    validator = get_validator(args.select)
    if not grid:
        if "select_epoch" not in est.get_params():
            raise UsageError(
                f"--select {args.select}: {cls.name} trains no epochs to choose among; give candidates "
                "with --grid KEY=V1,V2,..."
            )
        if validator.uses_target_labels:
            raise UsageError(
                "--select oracle chooses among --grid candidates only; an epoch is never chosen on target labels."
            )
        est.set_params(select_epoch=args.select).fit(source, target)
        scores = [h[f"select_{args.select}"] for h in est.history_]
        return est, {
            "validator": args.select,
            "uses_target_labels": False,
            "best_params": {"epoch": est.selected_epoch_},
            "candidates": [{"params": {"epoch": i + 1}, args.select: v} for i, v in enumerate(scores)],
        }
    if not cls.setting.target or cls.setting.target_labels:
        raise UsageError(
            f"--select: the validators score adaptation to an unlabelled target; {cls.name} "
            f"({cls.setting.quadrant}{'' if cls.setting.target else ', ignores the target'}) has nothing to adapt."
        )
    if validator.uses_target_labels:
        print(f"transferkit: warning: {ORACLE_NOTE}", file=sys.stderr)
    import warnings

    with warnings.catch_warnings():  # the oracle's warning is printed above, in one line
        warnings.simplefilter("ignore", UserWarning)
        result = select(
            est,
            grid,
            source,
            target,
            args.select,
            target_test=target_test if validator.uses_target_labels else None,
            seed=args.seed,
            verbose=not args.quiet,
        )
    return result.best_estimator_, result.to_dict()


def run_method(args) -> dict:
    """Fit one method on one task; return the run record (also used by `bench`)."""
    import numpy as np

    from transferkit.methods import get_method

    cls = get_method(args.method)
    if args.target_labels and not cls.setting.target_labels:
        raise UsageError(
            f"--target-labels {args.target_labels}: {cls.name} learns from unlabelled target data "
            f"({cls.setting.quadrant}), so target labels would never be used; drop the flag."
        )
    if cls.setting.target_labels and args.target_labels < 1:
        raise UsageError(
            f"{cls.name} learns from a few labelled target examples ({cls.setting.quadrant}); "
            "say how many per class with --target-labels K."
        )
    if args.plot and not args.out:
        raise UsageError("--plot writes pictures into the --out folder; add --out DIR.")
    source, target, target_test = _load_run_data(args)
    if not cls.setting.source_labels:  # self-taught learning: the source's labels are never read
        source = source.unlabelled()
    regression = getattr(cls, "task", "classification") == "regression"
    if cls.setting.target_labels:
        target = _few_labelled(args, target, regression)
    params = cls().get_params()
    overrides = _overrides(args.set, params)
    for flag in ("epochs", "lr", "batch_size"):
        if getattr(args, flag) is not None:
            if flag not in params:
                raise UsageError(f"--{flag.replace('_', '-')}: {cls.name} has no such hyperparameter (not a network).")
            overrides[flag] = getattr(args, flag)
    for flag in ("copy", "freeze", "conservative", "source_model"):  # the fine-tuning flags
        value = getattr(args, flag, None)
        if value not in (None, False):
            if flag not in params:
                raise UsageError(
                    f"--{flag.replace('_', '-')}: {cls.name} transfers no layers; it applies to `finetune`."
                )
            overrides[flag] = value
    run_settings = {"seed": args.seed, "verbose": not args.quiet, "device": args.device}
    overrides.update({k: v for k, v in run_settings.items() if k in params})
    if "checkpoint_dir" in params and args.checkpoint_dir:
        overrides["checkpoint_dir"] = args.checkpoint_dir
    est = cls(**{**params, **overrides})
    grid = _grid(args, params)
    t0 = time.perf_counter()
    selection = None
    if getattr(args, "select", None):
        est, selection = _select(args, cls, est, grid, source, target, target_test)
    else:
        est.fit(source, target if cls.setting.target else None)
    seconds = time.perf_counter() - t0
    if args.predictions:
        _write_predictions(args.predictions, est, target)
    if target_test is None:  # a target file without labels: predictions, no score
        scores = {"target_r2" if regression else "target_accuracy": None}
    elif regression:  # R² and RMSE in place of accuracy
        residual = est.predict(target_test.X) - target_test.y
        scores = {"target_r2": est.score(target_test), "target_rmse": float(np.sqrt(np.mean(residual**2)))}
    else:
        scores = {"target_accuracy": est.score(target_test)}
    record = {
        "method": cls.name,
        "source": args.source,
        "target": args.target,
        "seed": args.seed,
        **scores,
        "seconds": round(seconds, 3),
        "version": __version__,
        "preprocess": args.preprocess,
        "features": getattr(args, "features", "none"),
        "n_source": len(source),
        "n_target": len(target),
        "target_labels_per_class": args.target_labels,
        "n_target_test": 0 if target_test is None else len(target_test),
        "hyperparameters": {k: v for k, v in est.get_params().items() if k not in ("verbose",)},
        "warnings": getattr(est, "warnings_", []),
        "selection": selection,
        "history": getattr(est, "history_", None),
    }
    if args.out:
        from transferkit.report import to_json

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "run.json"), "w") as f:
            f.write(to_json(record))
        if hasattr(est, "model_") and hasattr(est.model_, "state_dict"):
            import torch

            # the trained network, reusable as `run finetune --source-model OUT/model.pt`
            torch.save({k: v.cpu() for k, v in est.model_.state_dict().items()}, os.path.join(args.out, "model.pt"))
        if args.plot and not hasattr(est, "transform"):
            print(f"transferkit: warning: --plot: {cls.name} learns no feature space; no t-SNE.", file=sys.stderr)
        if args.plot and hasattr(est, "transform"):
            from transferkit.report import plot_tsne

            shown = target_test if target_test is not None else target
            rng = np.random.default_rng(0)
            i_s = rng.choice(len(source), min(1000, len(source)), replace=False)
            i_t = rng.choice(len(shown), min(1000, len(shown)), replace=False)
            xs, xt = source.X[i_s], shown.X[i_t]
            plot_tsne(
                [("input space", xs, xt), (f"{cls.name} features", est.transform(xs), est.transform(xt))],
                os.path.join(args.out, "tsne.png"),
                labels=None if source.y is None else (source.y[i_s], None if shown.y is None else shown.y[i_t]),
                domain_names=(args.source, args.target),
            )
    return record


def _run_many_tasks(args) -> dict:
    """`run multitask --tasks ...` and `run progressive --sequence ...`."""
    from transferkit import cli_multitask
    from transferkit.methods import MultiTask, ProgressiveNetwork

    flag, cls, run = {
        "multitask": ("tasks", MultiTask, cli_multitask.run_multitask),
        "progressive": ("sequence", ProgressiveNetwork, cli_multitask.run_progressive),
    }[args.method]
    if not getattr(args, flag):
        raise UsageError(f"{args.method} needs --{flag} (see `transferkit run --help`).")
    if args.source or args.target:
        raise UsageError(f"{args.method} learns --{flag}, not a --source -> --target pair; drop --source/--target.")
    params = cls().get_params()
    overrides = _overrides(args.set, params)
    for name in ("epochs", "lr", "batch_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    try:
        return run(args, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run_zeroshot(args) -> dict:
    """`run dap|attribute-embedding|devise|conse --source DATASET:DOMAIN --unseen 2,3,5`."""
    from transferkit import cli_zeroshot
    from transferkit.methods import ZERO_SHOT

    if args.target:
        raise UsageError(f"{args.method} holds classes out with --unseen; it takes no --target.")
    if not args.source:
        raise UsageError(f"{args.method} needs --source (e.g. fashion:mnist) and --unseen (e.g. 2,3,5).")
    cls = ZERO_SHOT[args.method]
    overrides = _overrides(args.set, cls().get_params())
    for name in ("epochs", "lr", "batch_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    overrides["device"] = args.device
    try:
        return cli_zeroshot.run_zeroshot(args, cls, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run_other(args) -> dict:
    """`run stc|itcc` (clustering) and `run transitive` (a pool of intermediate domains)."""
    from transferkit import cli_clustering, cli_transitive
    from transferkit.methods import CLUSTERING, POOLED

    cls = {**CLUSTERING, **POOLED}[args.method]
    overrides = _overrides(args.set, cls().get_params())
    try:
        if args.method in CLUSTERING:
            return cli_clustering.run_clustering(args, cls, overrides)
        return cli_transitive.run_transitive(args, cls, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def cmd_run(args) -> int:
    from transferkit.methods import CLUSTERING, POOLED, ZERO_SHOT
    from transferkit.train.distributed import is_main_process

    if args.method in CLUSTERING or args.method in POOLED:
        record = _run_other(args)
        if args.json:
            from transferkit.report import to_json

            print(to_json(record))
        elif args.method in CLUSTERING:
            print(
                f"{record['method']}: {record['n_target']} samples of {record['target']}"
                + (f" with {record['n_auxiliary']} of {record['source']}" if record["source"] else "")
                + (
                    f"  clustering accuracy {record['clustering_accuracy']:.4f}  NMI {record['nmi']:.4f}"
                    if record["nmi"] is not None
                    else "  (no target labels, no score)"
                )
                + f"  ({record['seconds']:.1f} s, seed {record['seed']})"
            )
        else:
            bridge = " -> ".join([record["source"], *record["path"], record["target"]])
            print(f"transitive: {bridge}  target accuracy {record['target_accuracy']:.4f}  ({record['seconds']:.1f} s)")
        return 0

    if args.method in ZERO_SHOT:
        record = _run_zeroshot(args)
        if args.json:
            from transferkit.report import to_json

            print(to_json(record))
        else:
            print(
                f"{record['method']} on {record['source']} ({record['semantics']}), unseen {record['unseen_classes']}:"
                f"  ZSL {record['zsl']:.4f}  GZSL seen {record['seen']:.4f} unseen {record['unseen']:.4f} "
                f"H {record['H']:.4f} (gamma {record['calibration']})  AUSUC {record['ausuc']:.4f}"
                f"  ({record['seconds']:.1f} s, seed {record['seed']})"
            )
        return 0
    if args.method in ("multitask", "progressive"):
        record = _run_many_tasks(args)
        if args.json:
            from transferkit.report import to_json

            print(to_json(record))
        else:
            _print_many_tasks(record)
        return 0
    if not args.source or not args.target:
        raise UsageError(f"{args.method} needs --source and --target (DATASET:DOMAIN each).")
    record = run_method(args)
    if not is_main_process():  # under torchrun every rank trains; one reports
        return 0
    if args.json:
        from transferkit.report import to_json

        print(to_json({k: v for k, v in record.items() if k != "history"}))
    else:
        selection = record.get("selection")
        if selection:
            print(f"selected by {selection['validator']} (higher is better):")
            for c in selection["candidates"]:
                mark = "*" if c["params"] == selection["best_params"] else " "
                print(f"  {mark} {c['params']}  {c[selection['validator']]:.4f}")
            if selection["uses_target_labels"]:
                print(f"  {selection['note']}")
        if record.get("target_accuracy", 0) is None or record.get("target_r2", 0) is None:
            score = "no target labels, no score" + (f"; predictions in {args.predictions}" if args.predictions else "")
        elif "target_r2" in record:
            score = f"target R² {record['target_r2']:.4f}, RMSE {record['target_rmse']:.4g}"
        else:
            score = f"target accuracy {record['target_accuracy']:.4f}"
        print(
            f"{record['method']}: {record['source']} -> {record['target']}  "
            f"{score}  ({record['seconds']:.1f} s, seed {record['seed']})"
        )
    return 0


def _print_many_tasks(record: dict) -> None:
    if record["method"] == "progressive":
        for stage in record["stages"]:
            accs = "  ".join(f"{t} {a:.4f}" for t, a in stage["accuracy"].items())
            print(f"after {stage['after']}: {accs}")
        print(f"parameters per column: {record['parameters_per_column']}")
        print(f"lateral scales (alpha): {record['lateral_scales']}")
        print(f"lateral usage (lateral / own input norm, per layer and earlier column): {record['lateral_usage']}")
        return
    for task, metrics in record["per_task"].items():
        print(f"{task:<24} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    means = {k: v for k, v in record.items() if k.startswith("mean_")}
    print("mean: " + "  ".join(f"{k[5:]} {v:.4f}" for k, v in means.items()) + f"  ({record['seconds']:.1f} s)")


def cmd_advise(args) -> int:
    from transferkit.advisor import advise
    from transferkit.datasets import load_domain

    if not args.source or not args.target:
        raise UsageError("advise needs --source (one or more) and --target, DATASET:DOMAIN each.")
    sources = {}
    for key in args.source:
        d = load_domain(key, "train", label_column=args.label_column)
        sources[key] = d.unlabelled() if args.unlabelled_source else d
    target = load_domain(args.target, "train", label_column=args.label_column)
    if args.target_labels:
        target = target.few_shot(args.target_labels, args.seed)
    else:
        target = target.unlabelled()
    try:
        advice = advise(sources, target, seed=args.seed, epochs=args.epochs, check=args.check)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        from transferkit.report import to_json

        print(to_json({"source": args.source, "target": args.target, **advice.as_dict()}))
    else:
        print(advice.to_text())
    return 0


def cmd_demo(args) -> int:
    from transferkit.demo import run_demo

    run_demo(out=args.out, seed=args.seed, quick=args.quick, verbose=not args.quiet)
    return 0


def cmd_bench(args) -> int:
    from transferkit.bench import BENCHMARKS, run_benchmark

    if args.name is None or args.name == "list":
        for name, b in BENCHMARKS.items():
            print(f"{name:<16} {b.description}")
        print(
            f"{'layer-transfer':<16} Yosinski et al. 2014: BnB, BnB+, AnB, AnB+ against n, similar and dissimilar split"
        )
        return 0
    if args.name == "layer-transfer":
        from pathlib import Path

        from transferkit.layer_sweep_bench import OUT, main

        seeds, epochs, n_train = (1, 1, 500) if args.quick else (args.seeds, 7, 5000)
        out = Path(args.out) if args.out else OUT
        main(seeds, epochs, n_train, out, quiet=args.json)
        if args.json:
            print((out / "layer_transfer.json").read_text())
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    try:
        run_benchmark(args.name, seeds=args.seeds, out=args.out, as_json=args.json, quick=args.quick, methods=methods)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return 0


# ----------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning for every combination of labelled and unlabelled source and target data.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"transferkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def leaf(name: str, help: str, example: str, **kw):
        return sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )

    p = leaf("methods", "list every method by what is labelled (the lecture's map)", "transferkit methods --json")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_methods)

    p = leaf(
        "datasets",
        "list known datasets/domains and whether their files are present",
        "TRANSFERKIT_DATA=/path/to/data transferkit datasets",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser(
        "run",
        help="train one method on a source -> target pair and report target accuracy",
        description="Train METHOD on the labelled train split of --source and the unlabelled train split of "
        "--target; report accuracy on the target's test split. `multitask` learns every task of --tasks at "
        "once (per-task metrics and their mean); `progressive` adds one column per task of --sequence and "
        "scores every task after each.",
        epilog="example: transferkit run dann --source amazon:books --target amazon:kitchen --json\n"
        "         transferkit run multitask --tasks landmine --set weighting=uncertainty --json\n"
        "         transferkit run progressive --sequence digits:mnist,digits:usps,fashion:mnist\n"
        "         transferkit run dap --source fashion:mnist --unseen 2,3,5 --json\n"
        "         transferkit run dann --source mine.csv --target theirs.csv --label-column y --predictions p.csv\n"
        "list methods with `transferkit methods`, domains with `transferkit datasets`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", help="method name, e.g. dann or source-only (see `transferkit methods`)")
    p.add_argument(
        "--source",
        metavar="DATASET:DOMAIN|PATH",
        help="labelled source domain, e.g. amazon:books, or your own data: a .csv or .npz file or a folder "
        "with one subfolder of images per class",
    )
    p.add_argument(
        "--target",
        metavar="DATASET:DOMAIN|PATH",
        help="target domain, e.g. amazon:kitchen, or a file / folder as for --source; a labelled target file "
        "is split 75/25 (seeded), the 25 %% only scored, never trained on",
    )
    p.add_argument(
        "--label-column",
        default="label",
        metavar="NAME",
        help="CSV files: the column holding the labels (default: label); a file without it is unlabelled",
    )
    p.add_argument(
        "--predictions",
        metavar="FILE",
        help="write the predicted label of every target training sample (all rows of an unlabelled target "
        "file, in file order) to this CSV",
    )
    p.add_argument(
        "--tasks",
        metavar="SPEC",
        help="multitask: a dataset (every domain a task: landmine, school) or comma-separated DATASET:DOMAIN keys",
    )
    p.add_argument(
        "--sequence",
        metavar="KEYS",
        help="progressive: the tasks in order, e.g. digits:mnist,digits:usps,fashion:mnist",
    )
    p.add_argument(
        "--pool",
        metavar="KEYS",
        help="transitive: candidate intermediate domains, e.g. rotmnist:15,rotmnist:30,rotmnist:45",
    )
    p.add_argument(
        "--unseen",
        metavar="LABELS",
        help="zero-shot: the classes held out of training, e.g. 2,3,5 (fashion:mnist pullover, dress, sandal)",
    )
    p.add_argument(
        "--semantics",
        choices=("attributes", "names"),
        default="attributes",
        help="zero-shot: the shipped attribute table, or class names embedded by MiniLM (the text extra)",
    )
    p.add_argument(
        "--calibration",
        type=float,
        default=0.0,
        metavar="GAMMA",
        help="zero-shot: subtracted from the seen classes' scores in generalized ZSL (calibrated stacking)",
    )
    p.add_argument(
        "--target-labels",
        type=int,
        default=0,
        metavar="K",
        help="labelled target examples per class (only for methods that use target labels)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (initialisation, batches, subsampling)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (method default otherwise)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="samples per domain per step")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any hyperparameter, e.g. --set lambda_max=0.3")
    p.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        default="none",
        help="feature transform fitted on training data (binary suits bag-of-words counts)",
    )
    p.add_argument(
        "--features",
        choices=FEATURES,
        default="none",
        help="learn features on unlabelled source+target first: msda (Chen et al. 2012, 5 layers, p=0.5)",
    )
    p.add_argument(
        "--select",
        metavar="VALIDATOR",
        default=None,
        help="choose without target labels: source, iwv, dev, entropy, reverse; among --grid candidates, or "
        "else the best epoch of a network (oracle reads target labels: --grid only, flagged in every output)",
    )
    p.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="candidate values for --select, e.g. --grid lambda_max=0.03,0.1,0.3 (repeatable)",
    )
    p.add_argument(
        "--copy",
        default=None,
        metavar="SPEC",
        help="finetune: layers copied from the source network: all, body (all but the head), none, first:N, "
        "last:N, names:a,b",
    )
    p.add_argument("--freeze", action="store_true", help="finetune: freeze the copied layers")
    p.add_argument(
        "--conservative",
        default=None,
        choices=("l2sp", "lwf", "l2sp+lwf"),
        help="finetune: keep close to the source network (L2-SP on weights, LwF on outputs)",
    )
    p.add_argument(
        "--source-model",
        default=None,
        metavar="PATH",
        help="finetune: start from this trained network (a state_dict, e.g. OUT/model.pt of a run, or a checkpoint)",
    )
    p.add_argument("--n-source", type=int, default=None, help="subsample the source to N examples")
    p.add_argument("--n-target", type=int, default=None, help="subsample the unlabelled target to N examples")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint there atomically; rerun to resume")
    p.add_argument("--out", default=None, help="write run.json (and plots) into this folder")
    p.add_argument("--plot", action="store_true", help="with --out: t-SNE of source/target before and after")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = leaf(
        "advise",
        "which quadrant you are in, the methods that fit, and candidate sources ranked by transferability",
        "transferkit advise --source digits:mnist --source fashion:mnist --target digits:usps --target-labels 10",
    )
    p.add_argument(
        "--source", action="append", metavar="DATASET:DOMAIN|PATH", help="a candidate source (repeatable; or a file)"
    )
    p.add_argument("--target", metavar="DATASET:DOMAIN|PATH", help="the target domain (or a file)")
    p.add_argument("--label-column", default="label", metavar="NAME", help="CSV files: the column holding the labels")
    p.add_argument(
        "--target-labels", type=int, default=0, metavar="K", help="labelled target samples per class you have (0: none)"
    )
    p.add_argument("--unlabelled-source", action="store_true", help="the sources' labels are not available")
    p.add_argument(
        "--check",
        choices=("probe", "finetune"),
        default="probe",
        help="negative-transfer check: linear probes (fast) or fine-tuning against training from scratch in "
        "5 folds (ten trainings per source; the fairer check for images)",
    )
    p.add_argument("--epochs", type=int, default=10, help="training of the quick source networks (LogME, LEEP, NCE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_advise)

    p = leaf(
        "demo",
        "a tour of the four quadrants on embedded digits: fine-tuning, DANN, zero-shot DAP, self-taught learning "
        "and clustering, each against its baseline (offline, about a minute on 2 cores), with a report",
        "transferkit demo --out transferkit-demo   # then open transferkit-demo/report.md",
    )
    p.add_argument("--out", default="transferkit-demo", help="report folder (default: ./transferkit-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed of every training and draw")
    p.add_argument("--quick", action="store_true", help="a few epochs only (for smoke tests)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = leaf(
        "bench",
        "reproduce a paper table (`transferkit bench list`)",
        "transferkit bench amazon --seeds 5 --out benchmarks/out",
    )
    p.add_argument("name", nargs="?", default=None, help="benchmark name; omit or `list` to list them")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration")
    p.add_argument("--out", default=None, help="folder for the JSON results and the table")
    p.add_argument("--quick", action="store_true", help="one pair, one seed, few epochs (smoke test)")
    p.add_argument("--json", action="store_true", help="print a JSON list of run records on stdout")
    p.add_argument(
        "--methods", default=None, help="comma-separated columns to run (default: all), e.g. 'DAN,Deep CORAL'"
    )
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from transferkit.train.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = args.func(args)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        return code
    except BrokenPipeError:  # e.g. `transferkit datasets | head`
        sys.stderr.close()
        return 0
    except (UsageError, ValueError, TypeError, FileNotFoundError, CheckpointError) as exc:
        # user errors: one clear line, no traceback (set TRANSFERKIT_DEBUG=1 to see it)
        if os.environ.get("TRANSFERKIT_DEBUG"):
            raise
        print(f"transferkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
