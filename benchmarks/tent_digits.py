"""TENT against its own source network: MNIST -> MNIST-M and rotated MNIST (0 -> 30, 0 -> 60 degrees).

**Protocol: defaults.** The suite's sizes (at most 2000 samples per domain, the target test split
scored). One network per seed, trained on the labelled source with TENT's defaults (the
batch-normalised DANN digits network, 30 epochs); the same network then predicts the target test
split three ways: as trained (``adapt=False``: source-only), with batch normalisation on each test
batch's statistics but no update (normalisation alone), and with TENT's update of the affine
parameters after each batch (one pass, batches of 128, Adam 1e-3).

    python benchmarks/tent_digits.py --seeds 3 > benchmarks/out/tent_digits.md
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from transferkit import TENT
from transferkit.protocols.suite import SuiteTask, task_data
from transferkit.report import markdown_table

TASKS = {
    "MNIST -> MNIST-M": ("digits:mnist", "digits:mnistm"),
    "rotated MNIST 0 -> 30": ("rotmnist:0", "rotmnist:30"),
    "rotated MNIST 0 -> 60": ("rotmnist:0", "rotmnist:60"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for name, (s, t) in TASKS.items():
        scores = {"source-only": [], "normalisation alone": [], "TENT": []}
        for seed in range(args.seeds):
            source, _, test = task_data(SuiteTask(name, s, t), seed, 2000)  # the suite's sizes
            if test.X.shape[1] != source.X.shape[1]:  # MNIST-M is RGB: MNIST replicated, as the paper does
                source = type(source)(np.repeat(source.X, 3, axis=1), source.y, source.name)
            model = TENT(seed=seed).fit(source)
            scores["source-only"].append(model.set_params(online=False).score(test))
            scores["normalisation alone"].append(model.set_params(online=True, tent_lr=1e-12).score(test))
            scores["TENT"].append(model.set_params(tent_lr=1e-3).score(test))
            print(name, seed, {k: round(v[-1], 4) for k, v in scores.items()}, file=sys.stderr, flush=True)
        rows.append(
            {
                "task": name,
                **{k: f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}" for k, v in scores.items()},
            }
        )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
