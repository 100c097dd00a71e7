"""The training recipe and the input binarisation, chosen across data sets (leave one data set out).

The neural methods share one training recipe (optimiser, learning rate, schedule). Each recipe
below is run with its defaults otherwise, on the suite's tasks (its data and sizes, seed 0), for
source-only and each method of ``--methods``; on the bag-of-words data sets (20 Newsgroups, raw
Amazon counts) each is also run on binarised inputs (``--preprocess binary``).

The choice: each data set is held out in turn; the recipe (and, for counts, the input transform)
with the best mean target accuracy over the *other* data sets' tasks and methods is applied to it.
Its accuracy there is compared with the current default's. A data set's own target labels never
choose its setting; the oracle column (the best recipe on the data set itself) is a ceiling only.

    python benchmarks/suite_training.py --tasks synthetic,mushroom,newsgroups,amazon400,amazon \\
        --methods source-only,dann --out benchmarks/out/suite_training.json

Progress on stderr; resumes from --out; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _records import Records
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.runs import RunOptions, run

#: name -> the training settings it sets; the first is the current default.
RECIPES = {
    "adam 1e-3 constant": {"optimizer": "adam", "lr": 1e-3, "lr_schedule": "constant"},
    "adam 1e-3 ganin": {"optimizer": "adam", "lr": 1e-3, "lr_schedule": "ganin"},
    "adam 3e-4 constant": {"optimizer": "adam", "lr": 3e-4, "lr_schedule": "constant"},
    "sgd 0.01 ganin": {"optimizer": "sgd", "lr": 1e-2, "lr_schedule": "ganin", "momentum": 0.9},
}
COUNTS = ("newsgroups", "amazon")  # bag-of-words families, where binarising is a choice
DEFAULT = ("adam 1e-3 constant", "none")


def family(task: str) -> str:
    return task.split()[0]


def one(task, method: str, recipe: str, preprocess: str, seed: int) -> dict:
    source, target, test = task_data(task, seed, 2000)
    options = RunOptions(seed=seed, quiet=True, preprocess=preprocess, params=dict(RECIPES[recipe]))
    record = run(method, source, target, options, target_test=test).record
    return {
        "task": task.name,
        "method": method,
        "recipe": recipe,
        "preprocess": preprocess,
        "seed": seed,
        "accuracy": record["target_accuracy"],
    }


def settings_of(rows: list[dict], fam: str) -> list[tuple[str, str]]:
    return sorted({(r["recipe"], r["preprocess"]) for r in rows if family(r["task"]) == fam})


def mean_accuracy(rows: list[dict], families: list[str], setting: tuple[str, str]) -> float:
    """Mean over the families' tasks and methods; a count-data transform stands for 'none' elsewhere."""
    accs = []
    for r in rows:
        if family(r["task"]) not in families or r["recipe"] != setting[0]:
            continue
        wanted = setting[1] if family(r["task"]) in COUNTS else "none"
        if r["preprocess"] == wanted:
            accs.append(r["accuracy"])
    return float(np.mean(accs)) if accs else float("nan")


def leave_one_out(rows: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    families = list(dict.fromkeys(family(r["task"]) for r in rows))
    settings = sorted({(r["recipe"], r["preprocess"]) for r in rows})
    table, picks = [], []
    for held in families:
        others = [f for f in families if f != held]
        pick = max(settings, key=lambda s: np.nan_to_num(mean_accuracy(rows, others, s), nan=-1))
        own = settings_of(rows, held)
        oracle = max(own, key=lambda s: mean_accuracy(rows, [held], s))
        picks.append(pick)
        table.append(
            {
                "held-out data set": held,
                "picked on the others": f"{pick[0]}" + (f", inputs {pick[1]}" if held in COUNTS else ""),
                "its accuracy there": f"{mean_accuracy(rows, [held], pick):.3f}",
                "the default's": f"{mean_accuracy(rows, [held], DEFAULT):.3f}",
                "oracle (ceiling)": f"{mean_accuracy(rows, [held], oracle):.3f} ({oracle[0]}"
                + (f", inputs {oracle[1]})" if held in COUNTS else ")"),
            }
        )
    return table, picks


def tables(rows: list[dict]) -> str:
    from transferkit.report import markdown_table

    families = list(dict.fromkeys(family(r["task"]) for r in rows))
    settings = sorted({(r["recipe"], r["preprocess"]) for r in rows})
    per_setting = []
    for s in settings:
        row = {"recipe": s[0], "inputs (count data)": s[1]}
        for f in families:  # the other data sets have no binarised runs: their cells are the 'none' ones
            row[f] = f"{mean_accuracy(rows, [f], s):.3f}" if f in COUNTS or s[1] == "none" else ""
        per_setting.append(row)
    table, _ = leave_one_out(rows)
    picked = [float(r["its accuracy there"]) for r in table]
    default = [float(r["the default's"]) for r in table]
    table.append(
        {
            "held-out data set": "mean",
            "picked on the others": "",
            "its accuracy there": f"{np.mean(picked):.3f}",
            "the default's": f"{np.mean(default):.3f}",
            "oracle (ceiling)": "",
        }
    )
    methods = sorted({r["method"] for r in rows})
    return (
        f"Mean target accuracy over each data set's tasks and the methods {methods} (seed 0):\n\n"
        + markdown_table(per_setting)
        + "\n\nLeave one data set out:\n\n"
        + markdown_table(table)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="synthetic,mushroom,newsgroups,amazon400,amazon")
    parser.add_argument("--methods", default="source-only,dann")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/suite_training.json"))
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",")]
    records = Records(args.out, {"recipes": RECIPES})
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        inputs = ("none", "binary") if family(task.name) in COUNTS else ("none",)
        for seed in range(args.seeds):
            for preprocess in inputs:
                for recipe in RECIPES:
                    for method in methods:
                        key = {"task": task.name, "method": method, "recipe": recipe, "preprocess": preprocess}
                        r = records.ensure({**key, "seed": seed}, one, task, method, recipe, preprocess, seed)
                        if r is None:
                            continue
                        print(
                            f"[training] {task.name} {method} {recipe} inputs {preprocess} seed {seed}: "
                            f"{r['accuracy']:.4f}",
                            file=sys.stderr,
                            flush=True,
                        )
    print(tables(records.rows))


if __name__ == "__main__":
    main()
