"""What auto should return: the validated model, its refit on the whole source, or their average.

Auto validates each candidate trained on 80 % of the source, then by default (``refit=True``)
trains its choice again on the whole source: more data, but a new training run that nothing
validated. For every ``auto`` run in suite records (``transferkit bench suite --methods
source-only,auto``), the recorded choice is fitted both ways, exactly as Auto fits it (the same
80 % split, seed and settings), and three answers are scored on the target test split:

- **validated**: the model trained on 80 % of the source (``refit=False``);
- **refit**: the model trained on the whole source (the default; its accuracy should equal the
  record's, which the table checks);
- **average**: the mean of the two models' class probabilities.

Gains are over the suite's source-only run (whole source, same seed). Target labels are read only
to score; the choice itself is the record's, made without them.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/auto_average.py \\
        benchmarks/records/suite_seeds012.json --tasks synthetic,mushroom,newsgroups,amazon400 \\
        --out benchmarks/records/auto_average_four_seeds012.json   # about 2 min
    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/auto_average.py \\
        benchmarks/records/suite_amazon_raw_auto_seeds012.json --tasks amazon \\
        --out benchmarks/records/auto_average_amazon_seeds012.json   # about 10 min
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from transferkit.methods.auto import Auto
from transferkit.methods.registry import method_named
from transferkit.protocols.partial import SEAL, load_partial, save_partial
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table, write_text_atomic
from transferkit.selection import split_source

BASELINE = "source-only"
ANSWERS = ("validated", "refit", "average")


def fitted(source, target, seed: int, method: str, params: dict):
    """``method(**params)`` with Auto's default run settings (its seed, the CPU), fitted on ``source``
    (and ``target``), as Auto fits its candidates and its refit."""
    cls = method_named(method)
    model = cls(seed=seed, device=Auto().device, **params)
    return model.fit(source, target if cls.setting.target else None)


def answers(data, seed: int, method: str, params: dict) -> dict[str, float]:
    """Target test accuracy of the validated model, the refit and their average for one choice."""
    source, target, test = data
    train, _ = split_source(source, 0.2, seed)  # Auto's default val_fraction and its split
    validated = fitted(train, target, seed, method, params)
    refit = fitted(source, target, seed, method, params)
    p = (validated.predict_proba(test.X) + refit.predict_proba(test.X)) / 2
    return {
        "validated": float(validated.score(test)),
        "refit": float(refit.score(test)),
        "average": float(np.mean(validated.classes_[p.argmax(1)] == test.y)),
    }


def summary(results: list[dict]) -> str:
    """Per data set and overall: each answer's mean gain, W/T/L over tasks (3-seed means) and worst task."""
    groups = defaultdict(list)
    for r in results:
        groups[r["task"].split()[0]].append(r)
    if len(groups) > 1:
        groups["all"] = results
    rows = []
    for name, rs in groups.items():
        row = {"data": name, "runs": len(rs)}
        for a in ANSWERS:
            per_task = defaultdict(list)
            for r in rs:
                per_task[r["task"]].append(100 * (r[a] - r["source-only"]))
            means = np.array([np.mean(v) for v in per_task.values()])
            runs = np.array([g for v in per_task.values() for g in v])
            wtl = f"{(means > 0.5).sum()}/{(abs(means) <= 0.5).sum()}/{(means < -0.5).sum()}"
            row[a] = f"{runs.mean():+.2f} ({wtl}, worst task {means.min():+.1f}, worst run {runs.min():+.1f})"
        rows.append(row)
    return markdown_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path, nargs="+")
    parser.add_argument("--tasks", default="amazon", help="task families or names, as for the suite")
    parser.add_argument(
        "--out", type=Path, required=True, help="per-run results (JSON); only summarised if present, else resumed"
    )
    args = parser.parse_args()
    if args.out.exists():
        report(json.loads(args.out.read_text()))
        return
    partial = args.out.with_suffix(".partial.json")
    by = {}
    for path in args.records:
        by.update({(r["task"], r["method"], r["seed"]): r for r in json.loads(path.read_text())})
    results = load_partial(partial, ("task", "seed"))
    done = {(r["task"], r["seed"]) for r in results}
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        seeds = sorted(s for (name, method, s) in by if name == task.name and method == "auto")
        for seed in seeds:
            if (task.name, seed) in done or (task.name, BASELINE, seed) not in by:
                continue
            chosen = by[(task.name, "auto", seed)]["decision"]["chosen"]
            if chosen.get("preprocess", "none") != "none":
                raise SystemExit(f"{task.name} seed {seed}: a preprocessed choice; this replay fits raw inputs only.")
            got = answers(task_data(task, seed, 2000), seed, chosen["method"], chosen["params"])
            results.append(
                {
                    "task": task.name,
                    "seed": seed,
                    "chosen": f"{chosen['method']} {chosen['params']}" if chosen["params"] else chosen["method"],
                    "source-only": by[(task.name, BASELINE, seed)]["defaults"],
                    "recorded": by[(task.name, "auto", seed)]["defaults"],
                    **got,
                }
            )
            save_partial(partial, results)
            print(
                f"[auto-average {len(results)}] {task.name} seed {seed} {results[-1]['chosen']}: "
                + ", ".join(f"{a} {got[a]:.4f}" for a in ANSWERS)
                + f" (recorded {results[-1]['recorded']:.4f})",
                file=sys.stderr,
                flush=True,
            )
    write_text_atomic(args.out, json.dumps([{k: v for k, v in r.items() if k != SEAL} for r in results], indent=1))
    partial.unlink()
    report(results)


def report(results: list[dict]) -> None:
    differ = [r for r in results if abs(r["refit"] - r["recorded"]) > 1e-9]
    print(summary(results))
    print(
        f"\n{len(results)} runs; the refit reproduced the recorded accuracy in {len(results) - len(differ)}"
        + "".join(f"; {r['task']} seed {r['seed']}: {r['refit']:.4f} vs {r['recorded']:.4f}" for r in differ)
        + "."
    )


if __name__ == "__main__":
    main()
