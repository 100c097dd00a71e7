"""Where auto's losses come from: the validator's pick, or the refit on the whole source.

For every ``auto`` run in suite records (``transferkit bench suite --methods source-only,auto``)
that chose to adapt, the chosen candidate is fitted again exactly as Auto validated it (the same
80 % of the source, the same seed and settings; ``refit=False`` returns this model) and scored on
the target test split, beside source-only on the same 80 %. A run's gain over source-only then
splits into

- the **pick**: the validated model against source-only on the same 80 % (what the validator
  judged, the decision itself), and
- the **refit**: auto's refitted model (in the records) against the validated one (a new training
  run that nothing validated).

Target labels are read only to score; nothing here chooses anything.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/auto_refit.py \\
        benchmarks/out/suite_amz_auto/suite.json --tasks amazon   # about 10 min
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from transferkit.methods.registry import method_named
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table
from transferkit.selection import split_source

BASELINE = "source-only"


def validated_accuracy(data, seed: int, method: str, params: dict) -> float:
    """The target test accuracy of ``method(**params)`` fitted on Auto's training part of the source
    (``data``: the task's source, target and test for ``seed``)."""
    source, target, test = data
    train, _ = split_source(source, 0.2, seed)  # Auto's default val_fraction and its split
    model = method_named(method)(seed=seed, **params)
    return float(model.fit(train, target if model.setting.target else None).score(test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--tasks", default="amazon", help="task families or names, as for the suite")
    args = parser.parse_args()
    records = json.loads(args.records.read_text())
    by = {(r["task"], r["method"], r["seed"]): r for r in records}
    rows, pick, refit, total = [], [], [], []
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        for (name, method, seed), r in sorted(by.items()):
            if name != task.name or method != "auto" or (name, BASELINE, seed) not in by:
                continue
            whole = by[(name, BASELINE, seed)]["defaults"]
            chosen = r["decision"]["chosen"]
            gain = 100 * (r["defaults"] - whole)
            total.append(gain)
            if chosen["method"] == BASELINE:
                continue
            data = task_data(task, seed, 2000)  # loaded once for both fits
            so80 = validated_accuracy(data, seed, BASELINE, {})
            val = validated_accuracy(data, seed, chosen["method"], chosen["params"])
            pick.append(100 * (val - so80))
            refit.append(100 * (r["defaults"] - val))
            print(f"[auto-refit] {name} seed {seed}: pick {pick[-1]:+.1f}, refit {refit[-1]:+.1f}", file=sys.stderr)
            rows.append(
                {
                    "task": name,
                    "seed": seed,
                    "chosen": f"{chosen['method']} {chosen['params']}",
                    "source-only (whole / 80 %)": f"{whole:.4f} / {so80:.4f}",
                    "validated (80 %)": f"{val:.4f}",
                    "auto (refit)": f"{r['defaults']:.4f}",
                    "pick": f"{pick[-1]:+.1f}",
                    "refit": f"{refit[-1]:+.1f}",
                    "gain": f"{gain:+.1f}",
                }
            )
    print(markdown_table(rows))
    p, f = np.array(pick), np.array(refit)
    print(
        f"\n{len(total)} runs, {len(pick)} adapted. Pick (validated - source-only, same 80 %): mean {p.mean():+.2f}, "
        f"{(p < -0.5).sum()} below -0.5, worst {p.min():+.1f}. Refit (auto - validated): mean {f.mean():+.2f}, "
        f"{(f < -0.5).sum()} below -0.5, worst {f.min():+.1f}. Gain over source-only (every run): mean "
        f"{np.mean(total):+.2f}."
    )


if __name__ == "__main__":
    main()
