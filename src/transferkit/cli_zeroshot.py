"""`transferkit run dap|attribute-embedding|devise|conse`: zero-shot learning from the command line.

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


def run_zeroshot(args, cls, overrides: dict) -> dict:
    """Train ``cls`` on the seen classes of ``args.source`` and score ZSL and GZSL on its test split."""
    from transferkit.datasets import load_train_test
    from transferkit.datasets._registry import domain_info
    from transferkit.methods.zeroshot import evaluate_zeroshot
    from transferkit.semantics import attribute_table, embed_class_names

    info = domain_info(args.source)
    if info.dataset not in TABLE_OF:
        raise ValueError(
            f"--source {args.source}: no class descriptions ship for dataset {info.dataset!r}; zero-shot runs "
            f"from the command line work on {', '.join(TABLE_OF)} (from Python, pass any ClassDescriptions)."
        )
    table = attribute_table(TABLE_OF[info.dataset])
    if args.semantics == "names":
        desc = embed_class_names(table.names, table.labels)
    else:
        desc = table
    t0 = time.perf_counter()
    train, test = load_train_test(args.source, label_column=args.label_column)
    unseen = _parse_unseen(args.unseen, table.labels)
    seen = ~np.isin(train.y, unseen)
    params = {**overrides, "seed": args.seed, "verbose": not (args.json or args.quiet)}
    model = cls(**params).fit(train.X[seen], train.y[seen], desc)
    tu = np.isin(test.y, unseen)
    scores = evaluate_zeroshot(model, test.X[tu], test.y[tu], test.X[~tu], test.y[~tu], calibration=args.calibration)
    from transferkit import __version__

    return {
        "method": cls.name,
        "source": args.source,
        "semantics": args.semantics,
        "seen_classes": model.seen_classes_.tolist(),
        "unseen_classes": model.unseen_classes_.tolist(),
        "calibration": args.calibration,
        **scores,
        "target_accuracy": scores["zsl"],
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
        "version": __version__,
    }
