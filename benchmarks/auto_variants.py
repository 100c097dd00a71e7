"""Should ``auto`` consider more? Its defaults against variants, on the suite's tasks (the suite's
data and sizes, ``transferkit bench suite``):

- ``auto + standardize-domain``: every candidate also on inputs standardised per domain
  (``preprocess=("none", "standardize-domain")``);
- ``auto + shot``: SHOT (the best defaults of the suite) as one more candidate.

Per task: source-only, ``Auto()`` and each variant, each run as the suite runs a method (its
defaults, no target labels); the gain over source-only in points, what each chose, and the summary
(mean gain, wins / ties / losses within 0.5 points, worst loss).

    python benchmarks/auto_variants.py --tasks synthetic,mushroom,newsgroups,amazon400 \\
        --out benchmarks/out/auto_variants.json

Progress on stderr; resumes from --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _records import Records
from transferkit import Auto
from transferkit.methods.auto import DEFAULT_CANDIDATES
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table
from transferkit.runs import RunOptions, run

TIE = 0.5  # points
VARIANTS = {
    "source-only": "source-only",
    "auto": Auto(),
    "auto + standardize-domain": Auto(preprocess=("none", "standardize-domain")),
    "auto + shot": Auto(candidates={**DEFAULT_CANDIDATES, "shot": {}}),
}


def one(task, seed: int, variant: str) -> dict:
    source, target, test = task_data(task, seed, 2000)
    result = run(VARIANTS[variant], source, target, RunOptions(seed=seed, quiet=True), target_test=test)
    row = {"task": task.name, "seed": seed, "variant": variant, "accuracy": result.record["target_accuracy"]}
    decision = result.record.get("decision")
    if decision:
        c = decision["chosen"]
        row["chose"] = f"{c['method']} {c['params']}" + ("" if c["preprocess"] == "none" else f" on {c['preprocess']}")
    return row


def _summary(gains: list[float]) -> str:
    g = np.array(gains)
    return f"{g.mean():+.1f} ({(g > TIE).sum()}/{(abs(g) <= TIE).sum()}/{(g < -TIE).sum()}, worst {g.min():+.1f})"


def tables(rows: list[dict]) -> str:
    by = {}
    for r in rows:
        by.setdefault((r["task"], r["seed"]), {})[r["variant"]] = r
    variants = [v for v in VARIANTS if v != "source-only" and any(r["variant"] == v for r in rows)]
    per_task, gains = [], {v: [] for v in variants}
    for (task, seed), got in by.items():
        if any(v not in got for v in ["source-only", *variants]):
            continue
        base = got["source-only"]["accuracy"]
        row = {"task": task, "seed": seed, "source-only": f"{base:.3f}"}
        for v in gains:
            g = 100 * (got[v]["accuracy"] - base)
            gains[v].append(g)
            row[v] = f"{got[v]['accuracy']:.3f} ({g:+.1f})"
            row[f"{v}: chose"] = got[v]["chose"]
        per_task.append(row)
    summary = [{"variant": v, "mean gain (W/T/L, worst)": _summary(g), "tasks": len(g)} for v, g in gains.items() if g]
    return markdown_table(summary) + "\n\n" + markdown_table(per_task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--tasks", default="synthetic,mushroom,newsgroups,amazon400")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (source-only always runs)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/auto_variants.json"))
    args = parser.parse_args()
    chosen = ["source-only", *[v.strip() for v in args.variants.split(",") if v.strip() != "source-only"]]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants {unknown}: expected names from {list(VARIANTS)}")
    records = Records(args.out, {"sizes": "the suite's (at most 2000 per domain)", "protocol": "defaults"})
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        for seed in range(args.seeds):
            for variant in chosen:
                key = {"task": task.name, "seed": seed, "variant": variant}
                r = records.ensure(key, one, task, seed, variant)
                if r is None:
                    continue
                print(
                    f"[auto-variants] {task.name} seed {seed} {variant}: {r['accuracy']:.4f} {r.get('chose', '')}",
                    file=sys.stderr,
                    flush=True,
                )
    print(tables(records.rows))


if __name__ == "__main__":
    main()
