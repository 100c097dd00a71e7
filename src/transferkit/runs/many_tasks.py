"""Multitask and progressive runs: many tasks instead of a source and a target.

``--tasks`` names the tasks: a dataset (every numbered domain of it is a task: ``landmine`` gives
the 29 mine fields, ``school`` the 139 schools) or a comma-separated list of ``DATASET:DOMAIN`` keys
(``spoken:en,spoken:de,spoken:fr,spoken:es``). Each task trains on its train split and is scored
on its test split; a domain without class labels (``school``) is a regression task.

``--sequence`` gives progressive networks their tasks in order
(``digits:mnist,digits:usps,fashion:mnist``); after each new column every task so far is scored, so
the record shows that nothing is forgotten.
"""

from __future__ import annotations

import time

import numpy as np

from transferkit.runs.options import RunOptions, RunResult, UsageError, method_params

__all__ = ["parse_tasks", "run_many_tasks", "run_multitask", "run_progressive"]


def parse_tasks(spec: str, flag: str = "--tasks") -> list[str]:
    """Domain keys from a dataset name or a comma-separated list of keys (each checked)."""
    from transferkit.datasets import domain_info, is_file_key, list_datasets, list_domains

    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{flag} is empty; expected a dataset name (e.g. landmine) or DATASET:DOMAIN keys.")

    keys = []
    for part in parts:
        if is_file_key(part):  # your own file or image folder, checked when loaded
            keys.append(part)
        elif ":" in part:
            domain_info(part)  # raises with the known domains listed
            keys.append(part)
        elif part in list_datasets():
            domains = [d for d in list_domains() if d.dataset == part]
            numbered = [d for d in domains if d.domain.isdigit()]
            # a dataset of numbered tasks (landmine 1..29, school 1..139) may also register unions of
            # them (landmine's "foliated" and "desert"); the tasks are the numbered domains
            keys += [d.key for d in (numbered or domains)]
        else:
            raise ValueError(
                f"{flag}: {part!r} is neither a dataset ({', '.join(list_datasets())}) nor a DATASET:DOMAIN key."
            )
    if len(set(keys)) != len(keys):
        raise ValueError(f"{flag} names a task twice: {sorted({k for k in keys if keys.count(k) > 1})}.")
    return keys


def _load(keys: list[str], label_column: str = "label") -> tuple[dict, dict, dict]:
    from transferkit.datasets import domain_info, is_file_key, load_train_test

    train, test, kinds = {}, {}, {}
    for key in keys:
        a, b = load_train_test(key, label_column=label_column)
        X_a, X_b = a.X.reshape(len(a.X), -1), b.X.reshape(len(b.X), -1)  # the MLP takes vectors
        train[key], test[key] = (X_a, a.y), (X_b, b.y)
        if is_file_key(key):  # a file says nothing of its task: whole-number or named labels are classes
            kinds[key] = "regression" if a.y.dtype.kind == "f" else "classification"
        else:
            kinds[key] = "regression" if domain_info(key).n_classes is None else "classification"
    return train, test, kinds


def task_metrics(model, test: dict, kinds: dict) -> dict[str, dict[str, float]]:
    """Accuracy (and AUC for two classes) of each classification task; R² (explained variance) of each regression."""
    from sklearn.metrics import explained_variance_score, roc_auc_score

    out = {}
    for task, (X, y) in test.items():
        if kinds[task] == "regression":
            pred = model.predict(X, task)
            out[task] = {"explained_variance": float(explained_variance_score(y, pred))}
            continue
        m = {"accuracy": float(np.mean(model.predict(X, task) == y))}
        classes = model.classes_[task]
        if len(classes) == 2 and len(np.unique(y)) == 2:
            m["auc"] = float(roc_auc_score(y == classes[1], model.predict_proba(X, task)[:, 1]))
        out[task] = m
    return out


def _means(per_task: dict) -> dict[str, float]:
    names = sorted({k for m in per_task.values() for k in m})
    return {f"mean_{k}": float(np.mean([m[k] for m in per_task.values() if k in m])) for k in names}


def run_many_tasks(name: str, source, target, options: RunOptions) -> RunResult:
    """``multitask`` on ``options.tasks`` or ``progressive`` on ``options.sequence``."""
    from transferkit.methods import MultiTask, ProgressiveNetwork

    flag, cls, run = {
        "multitask": ("tasks", MultiTask, run_multitask),
        "progressive": ("sequence", ProgressiveNetwork, run_progressive),
    }[name]
    if not getattr(options, flag):
        raise UsageError(f"{name} needs --{flag} (see `transferkit run --help`).")
    if source or target:
        raise UsageError(f"{name} learns --{flag}, not a --source -> --target pair; drop --source/--target.")
    overrides = method_params(name, cls().get_params(), options)
    try:
        return run(options, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_multitask(options: RunOptions, overrides: dict) -> RunResult:
    """Fit :class:`~transferkit.MultiTask` on ``--tasks``; the record has per-task metrics and their means."""
    from transferkit.methods.multitask import MultiTask

    keys = parse_tasks(options.tasks)
    train, test, kinds = _load(keys, options.label_column)
    model = MultiTask(**{**overrides, "seed": options.seed, "device": options.device, "verbose": not options.quiet})
    t0 = time.perf_counter()
    model.fit(train, kinds=kinds)
    per_task = task_metrics(model, test, kinds)
    record = {
        "method": "multitask",
        "tasks": keys,
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "hyperparameters": model.get_params(),
        "task_weights": model.task_weights_,
        "per_task": per_task,
        **_means(per_task),
    }
    return RunResult(record, model)


def run_progressive(options: RunOptions, overrides: dict) -> RunResult:
    """Fit :class:`~transferkit.ProgressiveNetwork` on ``--sequence``, scoring every task after each stage."""
    from transferkit.datasets import harmonise_images, load_train_test
    from transferkit.methods.progressive import ProgressiveNetwork

    keys = parse_tasks(options.sequence, "--sequence")
    if len(keys) < 2:
        raise ValueError(f"--sequence {options.sequence!r} has one task; a progressive network needs two or more.")
    data = {k: load_train_test(k, label_column=options.label_column) for k in keys}
    shapes = {k: tr.feature_shape for k, (tr, _) in data.items()}
    if len(set(shapes.values())) > 1:
        if not all(len(s) == 3 for s in shapes.values()):
            raise ValueError(
                f"--sequence: the tasks' inputs differ in shape ({shapes}); every column reads the same input."
            )
        flat = harmonise_images(*[d for k in keys for d in data[k]])  # images of other sizes: one common shape
        data = {k: (flat[2 * i], flat[2 * i + 1]) for i, k in enumerate(keys)}
    model = ProgressiveNetwork(
        **{**overrides, "seed": options.seed, "device": options.device, "verbose": not options.quiet}
    )
    stages, t0 = [], time.perf_counter()
    for k in keys:
        tr, _ = data[k]
        model.add_task(k, tr.X, tr.y)
        stages.append({"after": k, "accuracy": {t: model.score(data[t][1].X, data[t][1].y, t) for t in model.tasks_}})
    final = stages[-1]["accuracy"]
    record = {
        "method": "progressive",
        "sequence": keys,
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "hyperparameters": model.get_params(),
        "stages": stages,
        "accuracy": final,
        "mean_accuracy": float(np.mean(list(final.values()))),
        "parameters_per_column": model.parameters_per_column_,
        "lateral_scales": model.lateral_scales_,
        "lateral_usage": {t: model.lateral_usage(data[t][1].X, t) for t in model.tasks_},
    }
    return RunResult(record, model)
