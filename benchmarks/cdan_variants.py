"""CDAN(+E) variants against DANN under the suite's protocols: which stage is conditioned, with or without +E,
with the entropy weights constant (the ablation of their gradient) or the authors' wider domain classifier.

For each task and seed, every variant is fitted with its defaults and over the suite's grid of
``lambda_max``; each label-free validator picks a candidate, and the oracle (target test labels) gives
the ceiling. Accuracies per variant, validator and task go to ``--out`` as JSON, a table to stdout.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/cdan_variants.py \
        --tasks "mnist->mnist-m,digits16 usps->mnist" --seeds 1 --out benchmarks/out/cdan_variants
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

from transferkit import CDAN, DANN
from transferkit.protocols.suite import GRIDS, VALIDATORS, suite_tasks, task_data
from transferkit.selection import score_grid
from transferkit.selection.search import choose

STAGE_CHOSEN = "cdan, stage chosen"  # the grid over both stages, each validator picking stage and weight


def _dann_stage(source) -> str:
    """The stage DANN aligns on ``source``'s network (the convolutional features for the digit networks)."""
    return DANN()._build_net(source.feature_shape, len(np.unique(source.y))).adapt_at


class _ConstantWeights(CDAN):
    """CDAN+E with its entropy weights held constant (detached): the ablation of their gradient path."""

    def _objective(self, net, n_classes):
        objective = super()._objective(net, n_classes)
        objective.weight_gradient = False
        return objective


#: name -> the estimator for a seed and the task's source
VARIANTS = {
    "dann": lambda seed, source: DANN(seed=seed),
    "cdan": lambda seed, source: CDAN(seed=seed),  # +E, conditioned at the last stage (the classifier's input)
    "cdan@adapt_at": lambda seed, source: CDAN(seed=seed, adapt_at=_dann_stage(source)),
    "cdan-noE": lambda seed, source: CDAN(seed=seed, entropy_conditioning=False),
    "cdan-constant-weights": lambda seed, source: _ConstantWeights(seed=seed),
    # the authors' digit discriminator's widths (two hidden layers of 500) in place of DANN's one of 100
    "cdan-disc500x2": lambda seed, source: CDAN(seed=seed, disc_hidden=(500, 500)),
}
ORDER = [*VARIANTS, STAGE_CHOSEN]  # the table's rows per task


def _stage_in_the_grid(records) -> list[dict]:
    """Label-free selection over both conditioned stages: the candidates of ``cdan`` and ``cdan@adapt_at`` of
    one task and seed scored together (the same held-out source split, so the scores compare); the defaults
    stay CDAN's, the fallback its default candidate."""
    out = []
    for r in (r for r in records if r["variant"] == "cdan"):
        other = [
            o for o in records if o["variant"] == "cdan@adapt_at" and (o["task"], o["seed"]) == (r["task"], r["seed"])
        ]
        if not other:
            continue
        candidates = r["candidates"] + other[0]["candidates"]
        fallback = [c["params"] for c in r["candidates"]].index({"lambda_max": CDAN().lambda_max})
        picks = {}
        for v in VALIDATORS:
            scores = [c["scores"][v] for c in candidates]
            index, _ = choose(scores, [c["untrusted"][v] for c in candidates], fallback)
            picks[v] = candidates[index]["accuracy"]
        best = max(c["accuracy"] for c in candidates)
        out.append({**r, "variant": STAGE_CHOSEN, "picks": picks, "oracle": best, "candidates": candidates})
    return out


def unit(task, name, seed, data) -> dict:
    source, target, test = data
    estimator = VARIANTS[name](seed, source)
    t0 = time.perf_counter()
    default = clone(estimator).fit(source, target)
    record = {"task": task.name, "variant": name, "seed": seed, "defaults": float(default.score(test.X, test.y))}
    sg = score_grid(clone(estimator), GRIDS["cdan"], source, target, (*VALIDATORS, "oracle"), test, seed=seed)
    accuracy = sg.scores["oracle"]
    record["oracle"] = max(accuracy)
    record["candidates"] = [
        {"params": c, "accuracy": accuracy[i], "scores": {v: sg.scores[v][i] for v in VALIDATORS},
         "untrusted": {v: sg.untrusted[v][i] for v in VALIDATORS}}
        for i, c in enumerate(sg.candidates)
    ]  # fmt: skip
    record["picks"] = {v: accuracy[choose(sg.scores[v], sg.untrusted[v], sg.default_index)[0]] for v in VALIDATORS}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def _means(records: list[dict]) -> list[float]:
    """Mean accuracy of ``records`` with the defaults, each validator's pick, and the oracle (a table row)."""
    cells = [np.mean([r["defaults"] for r in records])]
    return (
        cells
        + [np.mean([r["picks"][v] for r in records]) for v in VALIDATORS]
        + [np.mean([r["oracle"] for r in records])]
    )


def _data_set(task: str) -> str:
    """The data set of a suite task: the first word of its name, the digit sizes counted together."""
    first = task.split()[0]
    return {"digits16": "digits", "mnist->mnist-m": "mnist->mnist-m"}.get(first, first)


def summarise(paths: list[str]) -> str:
    """Mean accuracy per data set and variant, under each protocol, over records files of this script."""
    records = [r for p in paths for r in json.loads(Path(p).read_text())]
    head = "| data set (runs) | variant | defaults | " + " | ".join(VALIDATORS) + " | oracle |"
    lines = [head, "|---|---|---|" + "---|" * (len(VALIDATORS) + 1)]
    sets = list(dict.fromkeys(_data_set(r["task"]) for r in records))
    for data_set in sets:
        for name in [n for n in ORDER if any(r["variant"] == n for r in records)]:
            rs = [r for r in records if r["variant"] == name and _data_set(r["task"]) == data_set]
            if not rs:
                continue
            cells = _means(rs)
            lines.append(f"| {data_set} ({len(rs)}) | {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mnist->mnist-m", help="comma-separated suite task names or families")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/out/cdan_variants")
    parser.add_argument("--summarise", metavar="RECORDS", help="comma-separated records files: the per-data-set table")
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(args.summarise.split(",")))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.json"
    records = json.loads(path.read_text()) if path.exists() else []
    done = {(r["task"], r["variant"], r["seed"]) for r in records}
    for task in suite_tasks(only=args.tasks.split(",")):
        for seed in range(args.seeds):
            data = None
            for name in args.variants.split(","):
                if (task.name, name, seed) in done:
                    continue
                data = data or task_data(task, seed, 2000)
                records.append(unit(task, name, seed, data))
                path.write_text(json.dumps(records, indent=1))
                r = records[-1]
                print(f"{task.name} {name} seed {seed}: defaults {r['defaults']:.4f} oracle {r['oracle']:.4f} "
                      f"({r['seconds']} s)", file=sys.stderr)  # fmt: skip
    records = records + _stage_in_the_grid(records)
    print("| task | variant | seeds | defaults | " + " | ".join(VALIDATORS) + " | oracle |")
    print("|---|---|---|---|" + "---|" * (len(VALIDATORS) + 1))
    keys = sorted({(r["task"], r["variant"]) for r in records}, key=lambda k: (k[0], ORDER.index(k[1])))
    for task, name in keys:
        rs = [r for r in records if r["task"] == task and r["variant"] == name]
        cells = _means(rs)
        print(f"| {task} | {name} | {len(rs)} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    # the mean over the (task, seed) runs every variant has, so the rows compare
    names = sorted({r["variant"] for r in records}, key=ORDER.index)
    common = set.intersection(*({(r["task"], r["seed"]) for r in records if r["variant"] == n} for n in names))
    for name in names:
        rs = [r for r in records if r["variant"] == name and (r["task"], r["seed"]) in common]
        cells = _means(rs)
        print(f"| **mean of the {len(rs)} runs** | {name} | | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
