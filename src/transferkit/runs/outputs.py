"""What a run leaves behind: predictions, run.json, the trained network and the t-SNE plot."""

from __future__ import annotations

import csv
import os
import sys

import numpy as np

from transferkit.report import to_json

__all__ = ["save_run", "write_predictions"]


def write_predictions(path: str, est, target, target_file=None) -> None:
    """One row per target sample and its predicted label. For a target file: every row of the file, indexed
    by its row number (from 0, the header not counted) or its image's path; else the target's training
    split, indexed by position."""
    if target_file is not None:
        target, index = target_file
    else:
        index = range(len(target))
    predictions = est.predict(target.X)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "prediction"])
        writer.writerows(zip(index, predictions.tolist(), strict=True))


#: The file beside a saved model that says how its inputs were read and transformed.
INPUTS = "inputs.json"


def save_run(options, record: dict, est, source, target, target_test, target_transform=None) -> None:
    """``options.out``/run.json, model/ (the saved model, for ``transferkit predict``), model.pt (the trained
    network) and, with ``options.plot``, tsne.png."""
    out = options.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "run.json"), "w") as f:
        f.write(to_json(record))
    if hasattr(est, "save"):
        try:
            est.save(os.path.join(out, "model"))
        except ValueError as err:  # e.g. a backbone given as a module: the run's results stand without it
            print(f"transferkit: warning: the model is not saved: {err}", file=sys.stderr)
        else:
            inputs = {
                "preprocess": target_transform or {"preprocess": "none"},
                "features": options.features,
                "label_column": options.label_column,
                "feature_shape": list(target.feature_shape),
            }
            with open(os.path.join(out, "model", INPUTS), "w") as f:
                f.write(to_json(inputs))
    if hasattr(est, "model_") and hasattr(est.model_, "state_dict"):
        import torch

        # the trained network, reusable as `run finetune --source-model OUT/model.pt`
        torch.save({k: v.cpu() for k, v in est.model_.state_dict().items()}, os.path.join(out, "model.pt"))
    if options.plot and not hasattr(est, "transform"):
        print(
            f"transferkit: warning: --plot: {record['method']} has no single feature space to plot (no learnt "
            "features, or several models voting); no t-SNE.",
            file=sys.stderr,
        )
    if options.plot and hasattr(est, "transform"):
        from transferkit.report import plot_tsne

        shown = target_test if target_test is not None else target
        rng = np.random.default_rng(0)
        i_s = rng.choice(len(source), min(1000, len(source)), replace=False)
        i_t = rng.choice(len(shown), min(1000, len(shown)), replace=False)
        xs, xt = source.X[i_s], shown.X[i_t]
        plot_tsne(
            [("input space", xs, xt), (f"{record['method']} features", est.transform(xs), est.transform(xt))],
            os.path.join(out, "tsne.png"),
            labels=None if source.y is None else (source.y[i_s], None if shown.y is None else shown.y[i_t]),
            domain_names=(record["source"], record["target"]),
        )
