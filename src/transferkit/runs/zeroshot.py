"""Zero-shot runs (``dap``, ``attribute-embedding``, ``devise``, ``conse``): held-out classes of one dataset.

``--source`` is an image dataset whose classes have a description (``fashion:mnist`` and the
digit domains ship attribute tables); ``--unseen`` lists the classes held out of training. The
model trains on the other classes of the train split and is scored on the test split:

- ``zsl``: mean per-class top-1 among the unseen classes;
- ``seen``, ``unseen``, ``H``: generalized ZSL among all classes, with ``--calibration`` gamma
  subtracted from the seen classes' scores (0 by default), and ``ausuc``, which needs no gamma.

``--semantics attributes`` uses the shipped attribute table; ``--semantics names`` embeds the
class names with MiniLM (the ``text`` extra).
"""

from __future__ import annotations

import time

import numpy as np

from transferkit import __version__
from transferkit.runs.options import RunOptions, RunResult, UsageError, method_params

__all__ = ["TABLE_OF", "run_zeroshot"]

#: Which shipped attribute table describes the classes of a dataset.
TABLE_OF = {"fashion": "fashion", "digits": "digits", "digits16": "digits", "demo": "digits"}


def _parse_unseen(text: str | None, labels: np.ndarray) -> np.ndarray:
    if not text:
        raise ValueError("zero-shot methods need --unseen, the classes held out of training (e.g. --unseen 2,3,5).")
    try:
        unseen = np.array([int(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(f"--unseen {text!r}: expected comma-separated class labels such as 2,3,5.") from None
    unknown = np.setdiff1d(unseen, labels)
    if len(unknown):
        raise ValueError(f"--unseen has classes {unknown.tolist()} the dataset lacks; its labels: {labels.tolist()}.")
    if len(np.unique(unseen)) < 2 or len(np.setdiff1d(labels, unseen)) < 2:
        raise ValueError(
            f"--unseen {text!r}: expected at least two unseen classes and at least two seen ones "
            f"(the dataset has {len(labels)})."
        )
    return np.unique(unseen)


def run_zeroshot(name: str, source, target, options: RunOptions) -> RunResult:
    """Train method ``name`` on the seen classes of ``source`` and score ZSL and GZSL on its test split."""
    from transferkit.methods import ZERO_SHOT

    if target:
        raise UsageError(f"{name} holds classes out with --unseen; it takes no --target.")
    if not source:
        raise UsageError(f"{name} needs --source (e.g. fashion:mnist) and --unseen (e.g. 2,3,5).")
    cls = ZERO_SHOT[name]
    overrides = {**method_params(name, cls().get_params(), options), "device": options.device}
    try:
        return _run(cls, source, options, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run(cls, source: str, options: RunOptions, overrides: dict) -> RunResult:
    from transferkit.datasets import domain_info, load_train_test
    from transferkit.methods.zeroshot import evaluate_zeroshot
    from transferkit.semantics import attribute_table, embed_class_names

    info = domain_info(source)
    if info.dataset not in TABLE_OF:
        raise ValueError(
            f"--source {source}: no class descriptions ship for dataset {info.dataset!r}; zero-shot runs "
            f"from the command line work on {', '.join(TABLE_OF)} (from Python, pass any ClassDescriptions)."
        )
    table = attribute_table(TABLE_OF[info.dataset])
    if options.semantics == "names":
        desc = embed_class_names(table.names, table.labels)
    else:
        desc = table
    t0 = time.perf_counter()
    train, test = load_train_test(source, label_column=options.label_column)
    unseen = _parse_unseen(options.unseen, table.labels)
    seen = ~np.isin(train.y, unseen)
    params = {**overrides, "seed": options.seed, "verbose": not options.quiet}
    model = cls(**params).fit(train.X[seen], train.y[seen], desc)
    tu = np.isin(test.y, unseen)
    calibration = options.calibration
    scores = evaluate_zeroshot(model, test.X[tu], test.y[tu], test.X[~tu], test.y[~tu], calibration=calibration)
    record = {
        "method": cls.name,
        "source": source,
        "semantics": options.semantics,
        "seen_classes": model.seen_classes_.tolist(),
        "unseen_classes": model.unseen_classes_.tolist(),
        "calibration": calibration,
        **scores,
        "target_accuracy": scores["zsl"],
        "seed": options.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
    }
    return RunResult(record, model)
