"""One method on one source -> target pair: check, load, fit (or select), score; the run record."""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from transferkit import __version__
from transferkit.runs.inputs import few_labelled, load_pair
from transferkit.runs.options import RunOptions, RunResult, UsageError, check_grid, method_params
from transferkit.runs.outputs import save_run, write_predictions

__all__ = ["run_pair"]

#: The fine-tuning flags, which only methods that transfer layers take.
FINETUNE_FLAGS = ("copy", "freeze", "conservative", "source_model")


def _estimator(method, options: RunOptions):
    """The estimator to fit: a registered name with its defaults, or a clone of the given estimator,
    with ``options``' hyperparameters and run settings applied."""
    from sklearn.base import clone

    from transferkit.methods import get_method

    if isinstance(method, str):
        cls = get_method(method)
        est = cls()
    else:
        cls, est = type(method), clone(method)
    params = est.get_params()
    overrides = method_params(cls.name, params, options)
    for flag in FINETUNE_FLAGS:
        value = getattr(options, flag)
        if value not in (None, False):
            if flag not in params:
                raise UsageError(
                    f"--{flag.replace('_', '-')}: {cls.name} transfers no layers; it applies to `finetune`."
                )
            overrides[flag] = value
    run_settings = {"seed": options.seed, "verbose": not options.quiet, "device": options.device}
    overrides.update({k: v for k, v in run_settings.items() if k in params})
    if "checkpoint_dir" in params and options.checkpoint_dir:
        overrides["checkpoint_dir"] = options.checkpoint_dir
    est.set_params(**overrides)
    if hasattr(est, "_parameter_constraints"):  # --set lambda_max=abc is named before any data is read
        est._validate_params()
    return cls, est, check_grid(options, params)


def check_outputs(options: RunOptions) -> None:
    """Every place the run will write to, checked writable before any training (not after it)."""
    import os

    from transferkit.train.loop import resolve_device

    for flag, folder in (("--out", options.out), ("--checkpoint-dir", options.checkpoint_dir)):
        if folder:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as err:
                raise UsageError(f"{flag} {folder}: cannot create the folder ({err.strerror}).") from None
            if not os.access(folder, os.W_OK):
                raise UsageError(f"{flag} {folder}: the folder is not writable.")
    if options.predictions:
        parent = os.path.dirname(os.path.abspath(options.predictions))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise UsageError(f"--predictions {options.predictions}: {parent} is not a writable folder.")
    try:
        resolve_device(options.device)
    except ValueError as err:
        raise UsageError(f"--device: {err}") from None


def _check_setting(cls, options: RunOptions) -> None:
    """Refuse flags the method's setting cannot use, before any data is read."""
    k = options.target_labels
    if k and not cls.setting.target_labels:
        raise UsageError(
            f"--target-labels {k}: {cls.name} learns from unlabelled target data "
            f"({cls.setting.quadrant}), so target labels would never be used; drop the flag."
        )
    if cls.setting.target_labels and k < 1:
        raise UsageError(
            f"{cls.name} learns from a few labelled target examples ({cls.setting.quadrant}); "
            "say how many per class with --target-labels K."
        )
    if options.plot and not options.out:
        raise UsageError("--plot writes pictures into the --out folder; add --out DIR.")


def _select(cls, est, grid: dict, options: RunOptions, source, target, target_test):
    """Choose ``grid``'s candidate by the validator ``options.select`` names; refit it on the whole source."""
    from transferkit.selection import ORACLE_NOTE, get_validator, select

    name = options.select
    validator = get_validator(name)
    if not grid:
        if "select_epoch" not in est.get_params():
            raise UsageError(
                f"--select {name}: {cls.name} trains no epochs to choose among; give candidates "
                "with --grid KEY=V1,V2,..."
            )
        if validator.uses_target_labels:
            raise UsageError(
                "--select oracle chooses among --grid candidates only; an epoch is never chosen on target labels."
            )
        est.set_params(select_epoch=name).fit(source, target)
        scores = [h[f"select_{name}"] for h in est.history_]
        return est, {
            "validator": name,
            "uses_target_labels": False,
            "best_params": {"epoch": est.selected_epoch_},
            "candidates": [{"params": {"epoch": i + 1}, name: v} for i, v in enumerate(scores)],
        }
    if not cls.setting.target or cls.setting.target_labels:
        raise UsageError(
            f"--select: the validators score adaptation to an unlabelled target; {cls.name} "
            f"({cls.setting.quadrant}{'' if cls.setting.target else ', ignores the target'}) has nothing to adapt."
        )
    if validator.uses_target_labels:
        print(f"transferkit: warning: {ORACLE_NOTE}", file=sys.stderr)
    with warnings.catch_warnings():  # the oracle's warning is printed above, in one line
        warnings.simplefilter("ignore", UserWarning)
        result = select(
            est,
            grid,
            source,
            target,
            name,
            target_test=target_test if validator.uses_target_labels else None,
            seed=options.seed,
            verbose=not options.quiet,
        )
    return result.best_estimator_, result.to_dict()


def run_pair(method, source, target, options: RunOptions, target_test=None) -> RunResult:
    """Fit one method on one task; return the run record."""
    from transferkit.methods import get_method

    _check_setting(get_method(method) if isinstance(method, str) else type(method), options)
    check_outputs(options)
    cls, est, grid = _estimator(method, options)  # bad hyperparameters fail before any data is read
    data = load_pair(source, target, options, target_test)
    source, target, target_test = data.source, data.target, data.target_test
    if cls.setting.source_labels and source.y is None and isinstance(data.source_name, str):
        from transferkit.datasets.files import csv_columns

        columns = csv_columns(data.source_name)
        if columns is not None:  # most likely a misspelled --label-column
            raise UsageError(
                f"--source {data.source_name} has no column {options.label_column!r} to read labels from; its "
                f"columns: {', '.join(columns)}. Name the label column with --label-column."
            )
    if not cls.setting.source_labels:  # self-taught learning: the source's labels are never read
        source = source.unlabelled()
    regression = getattr(cls, "task", "classification") == "regression"
    if cls.setting.target_labels:
        target = few_labelled(data, options, regression)
    t0 = time.perf_counter()
    selection = None
    if options.select:
        est, selection = _select(cls, est, grid, options, source, target, target_test)
    else:
        est.fit(source, target if cls.setting.target else None)
    seconds = time.perf_counter() - t0
    if options.predictions:
        write_predictions(options.predictions, est, data.target, data.target_file)
    if target_test is None:  # a target file without labels: predictions, no score
        scores = {"target_r2" if regression else "target_accuracy": None}
    elif regression:  # R² and RMSE in place of accuracy
        residual = est.predict(target_test.X) - target_test.y
        scores = {"target_r2": est.score(target_test), "target_rmse": float(np.sqrt(np.mean(residual**2)))}
    else:
        scores = {"target_accuracy": est.score(target_test)}
    record = {
        "method": cls.name,
        "source": data.source_name,
        "target": data.target_name,
        "seed": options.seed,
        **scores,
        "seconds": round(seconds, 3),
        "version": __version__,
        "preprocess": options.preprocess,
        "features": options.features,
        "n_source": len(source),
        "n_target": len(target),
        "target_labels_per_class": options.target_labels,
        "n_target_test": 0 if target_test is None else len(target_test),
        "hyperparameters": {k: v for k, v in est.get_params().items() if k not in ("verbose",)},
        "warnings": getattr(est, "warnings_", []),
        "selection": selection,
        "decision": getattr(est, "decision_", None),  # auto: what it chose, and why
        "history": getattr(est, "history_", None),
    }
    if options.out:
        save_run(options, record, est, source, target, target_test, data.target_transform)
    return RunResult(record, est)
