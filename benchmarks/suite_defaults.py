"""Defaults chosen across data sets: leave one data set out on the suite's records, then check elsewhere.

For each method with a grid, each data set of ``--choose-on`` is held out in turn; the grid value
with the best mean gain over source-only on the other data sets is applied to the held-out one.
The value chosen on all of ``--choose-on`` is then checked on the data sets that played no part
(``--check-on``). Gains are over source-only on the same task and seed; grid candidates are fitted
on 80 % of the source (as in the suite), so they are conservative against the defaults.

    python benchmarks/suite_defaults.py benchmarks/records/suite_full_seed0.json \
        --choose-on synthetic,mushroom,newsgroups,amazon400 --check-on digits16

Prints the suite's tables (``summarise_suite``) for the tasks of ``--choose-on`` and the
leave-one-data-set-out table as Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from transferkit.protocols.suite import summarise_suite
from transferkit.report import markdown_table


def family(task: str) -> str:
    return task.split()[0]


#: The methods these tables were made with; later ones (auto, CDAN, JDA, ...) have tables of their own.
BASE = ("source-only", "dann", "ddc", "dan", "deep-coral", "coral", "tca")


def complete(records: list[dict], n_methods: int = len(BASE)) -> list[dict]:
    """The records of the :data:`BASE` methods, for the tasks (and seeds) all of them finished."""
    records = [r for r in records if r["method"] in BASE]
    count: dict = {}
    for r in records:
        count[(r["task"], r["seed"])] = count.get((r["task"], r["seed"]), 0) + 1
    return [r for r in records if count[(r["task"], r["seed"])] == n_methods]


def leave_one_out(records: list[dict], choose_on: list[str], check_on: list[str]) -> list[dict]:
    base = {(r["task"], r["seed"]): r["defaults"] for r in records if r["method"] == "source-only"}
    rows = []
    grids = (r for r in records if len(r.get("candidates", [])) > 1)  # source-only has nothing to choose
    for method in dict.fromkeys(r["method"] for r in grids):
        units = [r for r in records if r["method"] == method and "candidates" in r]
        params = [c["params"] for c in units[0]["candidates"]]
        gain = {}
        for r in units:
            key = (r["task"], r["seed"])
            gain[key] = np.array([c["accuracy"] for c in r["candidates"]]) - base[key]
        default = {(r["task"], r["seed"]): r["defaults"] - base[(r["task"], r["seed"])] for r in units}
        chosen_on = {k: g for k, g in gain.items() if family(k[0]) in choose_on}
        held_out, picks = [], []
        for held in choose_on:
            others = [g for k, g in chosen_on.items() if family(k[0]) != held]
            best = int(np.argmax(np.mean(others, 0)))
            picks.append(params[best])
            held_out += [g[best] for k, g in chosen_on.items() if family(k[0]) == held]
        overall = int(np.argmax(np.mean(list(chosen_on.values()), 0)))
        checked = [k for k in gain if family(k[0]) in check_on]
        rows.append(
            {
                "method": method,
                "defaults": f"{100 * np.mean([default[k] for k in chosen_on]):+.1f}",
                "leave one data set out": f"{100 * np.mean(held_out):+.1f}",
                f"picked per held-out data set ({', '.join(choose_on)})": "; ".join(
                    ", ".join(f"{k} {v}" for k, v in p.items()) for p in picks
                ),
                "chosen on all": ", ".join(f"{k} {v}" for k, v in params[overall].items()),
                f"check on {', '.join(check_on)}: chosen vs defaults": (
                    f"{100 * np.mean([gain[k][overall] for k in checked]):+.1f} vs "
                    f"{100 * np.mean([default[k] for k in checked]):+.1f} ({len(checked)} task(s))"
                    if checked
                    else "no task"
                ),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=Path, help="the suite's records (suite.json or a partial run's)")
    parser.add_argument("--choose-on", default="synthetic,mushroom,newsgroups,amazon400")
    parser.add_argument("--check-on", default="digits16")
    args = parser.parse_args()
    choose_on, check_on = args.choose_on.split(","), args.check_on.split(",")
    records = complete([{k: v for k, v in r.items() if k != "seal"} for r in json.loads(args.records.read_text())])
    print(summarise_suite([r for r in records if family(r["task"]) in choose_on]))
    print()
    print(markdown_table(leave_one_out(records, choose_on, check_on)))


if __name__ == "__main__":
    main()
