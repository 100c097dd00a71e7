"""Auto's own runs on the suite: the vote (its default) against the earlier rule that picks one candidate.

Reads suite records (``transferkit bench suite --methods source-only,auto``; a folder's ``suite.json`` or a
file of ``benchmarks/records``) and prints, per data set, auto's gain over source-only of the same
seed: the mean over runs, wins / ties / losses over tasks (a tie within 0.5 points, on the mean over
seeds), the worst task (mean over seeds) and the worst single run, and how many runs adapted. ``--new``
and ``--old`` are the two sets of runs; the table gives both side by side on the data sets both have.

    python benchmarks/auto_vote.py --new benchmarks/out/suite_vote4/suite.json \\
        --old benchmarks/records/suite_seeds012.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from transferkit.report import markdown_table

TIE = 0.5  # points


def runs(paths: list[Path]) -> dict[tuple[str, int], tuple[float, bool]]:
    """(task, seed) -> (auto's gain in points over source-only, whether it adapted)."""
    records = [r for p in paths for r in json.loads(p.read_text())]
    base = {(r["task"], r["seed"]): r["defaults"] for r in records if r["method"] == "source-only"}
    out = {}
    for r in records:
        key = (r["task"], r["seed"])
        if r["method"] == "auto" and key in base:
            out[key] = (100 * (r["defaults"] - base[key]), bool(r["decision"]["adapted"]))
    return out


def summary(units: dict[tuple[str, int], tuple[float, bool]]) -> dict[str, str]:
    by_task: dict[str, list[float]] = {}
    for (task, _), (gain, _) in units.items():
        by_task.setdefault(task, []).append(gain)
    means = np.array([np.mean(g) for g in by_task.values()])
    gains = np.array([g for g, _ in units.values()])
    wins, losses = int((means > TIE).sum()), int((means < -TIE).sum())
    return {
        "mean gain": f"{gains.mean():+.2f}",
        "W/T/L (tasks)": f"{wins}/{len(means) - wins - losses}/{losses}",
        "worst task": f"{means.min():+.1f}",
        "worst run": f"{gains.min():+.1f}",
        "adapted": f"{sum(a for _, a in units.values())}/{len(units)}",
    }


def table(new: dict, old: dict) -> list[dict]:
    rows = []
    families = sorted({task.split()[0] for task, _ in new})
    for fam in [*families, "all"]:
        pick = lambda k, fam=fam: fam == "all" or k[0].split()[0] == fam
        n = {k: v for k, v in new.items() if pick(k)}
        o = {k: v for k, v in old.items() if pick(k) and k in new}  # the same runs only
        seeds = sorted({s for _, s in n})
        row = {"data set": fam, "tasks x seeds": f"{len({t for t, _ in n})} x {len(seeds)}"}
        row.update({f"vote: {k}": v for k, v in summary(n).items()})
        if o:
            row.update({f"earlier: {k}": v for k, v in summary(o).items() if k in ("mean gain", "worst task")})
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new", type=Path, nargs="+", required=True, help="records of auto's vote")
    parser.add_argument("--old", type=Path, nargs="*", default=[], help="records of the earlier rule")
    args = parser.parse_args()
    print(markdown_table(table(runs(args.new), runs(args.old))))


if __name__ == "__main__":
    main()
