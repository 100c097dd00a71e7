"""Would choosing the network's learning rate by held-out source accuracy help the target?

On the suite's mSDA features (RESULTS, "DANN on mSDA features: the rate") the networks' default
Adam rate, 1e-3, costs every network points, source-only included (+1.1 at 3e-5); the DANN paper
chose its rate by held-out source accuracy. A default that did the same would have to help, or at
least not hurt, on every data set of the suite. This script asks that question of source-only, the
one network whose held-out source accuracy is an honest estimate of what the rate is for: on each
task, source-only is fitted at each rate of :data:`RATES` on the same 80 % of the source
(``transferkit.selection.score_grid``, the suite's label-free protocol), and scored by its accuracy
on the held-out 20 % (``source``) and on the target test labels (``oracle``, read only to score).

The table gives, per task, each rate's held-out source accuracy and target accuracy, the rate that
held-out source accuracy picks, the paired-bootstrap probability that the pick beats the default on
the held-out rows (``prob_better``, as Auto's rules use it), and the pick's target accuracy minus
the default rate's (points). Below it, the mean gain of the plain pick and of the pick kept only at
a confidence of :data:`CONFIDENCE` (and other levels). No rate here becomes a default: that needs
every method and the whole suite.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/lr_source.py \\
        --out benchmarks/out/lr_source.json   # the first task of each family, seed 0

Resumable: a killed run continues from the records in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _records import Records
from transferkit.methods import get_method
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table
from transferkit.selection import score_grid
from transferkit.selection.search import choose, split_source
from transferkit.selection.validators import VALIDATORS, evidence_from_model, prob_better

RATES = [1e-3, 3e-4, 1e-4, 3e-5]  # the default first: kept when held-out accuracy cannot decide
TIE = 0.005
VAL_FRACTION = 0.2  # the held-out share of the source: score_grid's split, drawn again below for the paired terms
#: The paired-bootstrap confidence a lower rate must reach against the default (fixed before the run: a
#: one-sided 5 % level); the summary shows other levels beside it.
CONFIDENCE = 0.95


def default_tasks() -> list[str]:
    """The first task of every family of the suite."""
    first: dict[str, str] = {}
    for t in suite_tasks():
        first.setdefault(t.name.split()[0], t.name)
    return list(first.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSON records (resumed when present)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tasks", default=None, help="comma-separated suite tasks or families (default: each family's first)"
    )
    args = parser.parse_args()
    only = default_tasks() if args.tasks is None else [t.strip() for t in args.tasks.split(",")]
    try:
        tasks = suite_tasks(only=only)  # refuses a name that is not a suite task
    except ValueError as err:
        parser.error(str(err))
    records = Records(args.out, {"seed": args.seed, "rates": RATES, "paired": True})
    for i, task in enumerate(tasks):
        if records.has({"task": task.name}):
            continue
        source, target, test = task_data(task, args.seed, 2000)
        t0 = time.perf_counter()
        sg = score_grid(
            get_method("source-only")(seed=args.seed),
            {"lr": RATES},
            source,
            target,
            validators=("source", "oracle"),
            target_test=test,
            val_fraction=VAL_FRACTION,
            seed=args.seed,
        )
        pick, why = choose(sg.scores["source"], sg.untrusted["source"], sg.default_index)
        # each rate against the default on the same held-out rows: the paired bootstrap of Auto's rules
        _, val = split_source(source, VAL_FRACTION, args.seed)
        terms = [VALIDATORS["source"].terms(evidence_from_model(m, val, target), args.seed) for m in sg.fitted]
        p_better = [prob_better(t, terms[0], 1000, args.seed) for t in terms]
        records.add(
            {
                "task": task.name,
                "source": sg.scores["source"],
                "target": sg.scores["oracle"],
                "pick": pick,
                "p_better": p_better,
                "fell_back": why,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"[lr {i + 1}/{len(tasks)}] {task.name}: picks {RATES[pick]:g}", file=sys.stderr, flush=True)
    print(summarise([r for r in records.rows if r["task"] in {t.name for t in tasks}]))


def summarise(records: list[dict]) -> str:
    """Per task: each rate's held-out source and target accuracy, the pick and its gain over the default rate;
    then the plain pick, and the pick kept only when the paired bootstrap finds it better than the default
    with confidence :data:`CONFIDENCE` (other levels beside it)."""
    rows = []
    for r in records:
        row = {"task": r["task"]}
        row.update(
            {
                f"lr {x:g}: source / target": f"{s:.3f} / {t:.3f}"
                for x, s, t in zip(RATES, r["source"], r["target"], strict=True)
            }
        )
        row["pick (source)"] = f"{RATES[r['pick']]:g}"
        row["P(pick better)"] = f"{r['p_better'][r['pick']]:.2f}" if r["pick"] else ""
        row["gain (points)"] = f"{_gain(r, r['pick']):+.1f}"
        rows.append(row)
    lines = [markdown_table(rows), ""]
    for name, level in [("plain pick", 0.0), *((f"pick at confidence {c:g}", c) for c in (0.8, 0.9, 0.95, 0.99))]:
        g = np.array([_gain(r, r["pick"] if r["pick"] and r["p_better"][r["pick"]] >= level else 0) for r in records])
        lines.append(
            f"- {name}{' (the rule)' if level == CONFIDENCE else ''}: mean {g.mean():+.2f} points over {len(g)} tasks, "
            f"{int((g > 100 * TIE).sum())} wins / {int((np.abs(g) <= 100 * TIE).sum())} ties / "
            f"{int((g < -100 * TIE).sum())} losses; worst {g.min():+.1f}"
        )
    return "\n".join(lines)


def _gain(r: dict, i: int) -> float:
    """Target accuracy of rate ``i`` minus the default rate's, in points."""
    return 100 * (r["target"][i] - r["target"][0])


if __name__ == "__main__":
    main()
