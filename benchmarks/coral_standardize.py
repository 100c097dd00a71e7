"""CORAL under a gain-and-offset shift: one pooled standardisation against each domain's own.

Two Gaussian classes; the target is the same problem seen through a gain of 3 and an offset of 5
(the data of ``tests/test_runs.py``). CORAL with its defaults, through ``transferkit.runs.run``, with
``preprocess`` none, ``standardize`` (one mean and spread over both domains) and
``standardize-domain`` (each domain its own); target accuracy per seed and the mean.

    python benchmarks/coral_standardize.py --seeds 5
"""

import argparse

import numpy as np

from transferkit import Domain
from transferkit.report import markdown_table
from transferkit.runs import RunOptions, run

PREPROCESS = ("none", "standardize", "standardize-domain")


def gain_offset_shift(seed: int):
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        return (rng.normal(size=(n, 2)) + 2.0 * y[:, None]).astype(np.float32), y

    (Xs, ys), (Xt, yt), (Xtt, ytt) = draw(300), draw(300), draw(200)
    return Domain(Xs, ys, "s"), Domain(3 * Xt + 5, yt, "t"), Domain(3 * Xtt + 5, ytt, "t-test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    seeds = range(parser.parse_args().seeds)
    scores = {p: [] for p in PREPROCESS}
    for seed in seeds:
        source, target, test = gain_offset_shift(seed)
        for p in PREPROCESS:
            record = run("coral", source, target, RunOptions(preprocess=p, seed=seed), target_test=test).record
            scores[p].append(record["target_accuracy"])
    rows = [{"preprocess": p, **{f"seed {s}": f"{v:.3f}" for s, v in zip(seeds, scores[p], strict=True)},
             "mean": f"{np.mean(scores[p]):.3f}"} for p in PREPROCESS]  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
