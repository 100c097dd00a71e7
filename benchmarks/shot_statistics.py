"""SHOT's BatchNorm statistics after each target epoch: recomputed on the whole target (``refresh_statistics``,
the default) against the momentum averages of training (the paper's code), on the suite's image and
spoken-digit tasks, where SHOT's bottleneck holds a BatchNorm layer.

**Protocol: defaults** (SHOT's, but for ``refresh_statistics``), seeds 0..N-1, run as the suite runs
it (``transferkit run shot``: its data, sizes and preprocessing), the target test split scored. Each
data set left out, the choice with the higher mean over the others is applied to it.

    python benchmarks/shot_statistics.py --tasks digits16,rotmnist,digits,mnist->mnist-m,spoken --seeds 3
    python benchmarks/shot_statistics.py --tasks "" --seeds 3 \
        --pairs "spoken:en->spoken:en-speaker-21,spoken:en->spoken:en-speaker-22,..."

``--pairs`` adds registered source -> target pairs beyond the suite's (the data set ``held-out``), to
check the choice on data that played no part in it.

Progress on stderr; resumes from --out; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _records import Records
from shot_bottleneck import shot_run, tables
from transferkit.datasets import parse_key
from transferkit.protocols.suite import SuiteTask, suite_tasks

ARMS = {"target": True, "running": False}  # the statistics the network predicts with -> refresh_statistics


def one(task, statistics: str, seed: int) -> dict:
    return {**shot_run(task, seed, {"refresh_statistics": ARMS[statistics]}), "statistics": statistics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="digits16,rotmnist,digits,mnist->mnist-m,spoken")
    parser.add_argument("--pairs", default="", help="source->target registry keys, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/shot_statistics.json"))
    args = parser.parse_args()
    records = Records(args.out, {"arms": list(ARMS), "n_max": 2000})
    tasks = suite_tasks(only=[t.strip() for t in args.tasks.split(",")]) if args.tasks.strip() else []
    for pair in filter(None, (p.strip() for p in args.pairs.split(","))):
        if "->" not in pair:
            parser.error(f"--pairs: {pair!r} is not source->target (registry keys, e.g. spoken:en->spoken:en-child)")
        source, target = (k.strip() for k in pair.split("->"))
        for key in (source, target):  # an unknown key is refused before any fit
            try:
                parse_key(key)
            except ValueError as err:
                parser.error(f"--pairs: {err}")
        tasks.append(SuiteTask(f"held-out {source}->{target}", source, target))
    for seed in range(args.seeds):  # seed by seed, so that a stopped run has whole seeds
        for task in tasks:
            for statistics in ARMS:
                key = {"task": task.name, "statistics": statistics, "seed": seed}
                row = records.ensure(key, one, task, statistics, seed)
                if row:
                    done = f"{row['accuracy']:.4f} ({row['seconds']} s)"
                    print(f"{task.name} {statistics} seed {seed}: {done}", file=sys.stderr, flush=True)
    print(tables(records.rows, tuple(ARMS), "statistics"))


if __name__ == "__main__":
    main()
