"""Label-free validators on Amazon reviews: whose choice of DANN's lambda reaches which target accuracy.

For each pair and seed, DANN (the `bench amazon` recipe: binarised 5000-d inputs, shallow network
with 50 hidden units, Adam 1e-3, 30 epochs, constant lambda) is fitted once per candidate lambda
on 80% of the labelled source and the unlabelled target; the other 20% of the source is the
held-out validation sample. Every validator scores every fitted candidate; its choice is then
looked up in the target test accuracy of that same fitted model. The oracle's choice (the best
test accuracy) is the ceiling; the gap to it is each validator's regret.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/select_amazon.py --seeds 5 \
        --out benchmarks/out
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from transferkit.datasets import load_task
from transferkit.methods import DANN
from transferkit.protocols.bench import AMAZON_RECIPE
from transferkit.report import markdown_table, mean_std
from transferkit.runs import preprocess
from transferkit.selection import score_grid
from transferkit.selection.validators import VALIDATORS

PAIRS = [("books", "dvd"), ("dvd", "electronics"), ("electronics", "kitchen"), ("kitchen", "books")]
LAMBDAS = [0.0, 0.03, 0.1, 0.3, 1.0]


def run(seeds: int, pairs=PAIRS, lambdas=LAMBDAS, epochs: int = 30) -> list[dict]:
    records = []
    t0 = time.perf_counter()
    for a, b in pairs:
        task = load_task(f"amazon:{a}", f"amazon:{b}")
        source, target, target_test = preprocess("binary", task.source, task.target, task.target_test)
        for seed in range(seeds):
            est = DANN(**{**AMAZON_RECIPE, "epochs": epochs}, lambda_schedule="constant", seed=seed, verbose=False)
            result = score_grid(
                est, {"lambda_max": lambdas}, source, target, list(VALIDATORS), target_test=target_test, seed=seed
            )
            records.append({"pair": f"{a} -> {b}", "seed": seed, "lambdas": lambdas, "scores": result.scores})
            print(
                f"[{len(records)}/{len(pairs) * seeds}] {a} -> {b} seed {seed}: target acc per lambda "
                f"{np.round(result.scores['oracle'], 4).tolist()} ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return records


def _per_seed_mean(records: list[dict], pick) -> list[float]:
    """For each seed, the mean over pairs of ``pick(record)``: the spread left is the seeds' alone."""
    seeds = sorted({r["seed"] for r in records})
    return [float(np.mean([pick(r) for r in records if r["seed"] == s])) for s in seeds]


def summarise(records: list[dict]) -> str:
    lambdas = records[0]["lambdas"]
    pairs = list(dict.fromkeys(r["pair"] for r in records))
    rows = []
    for name, v in VALIDATORS.items():
        choice = lambda r, name=name: int(np.argmax(r["scores"][name]))  # noqa: E731
        row = {"validator": name + (" (reads target labels)" if v.uses_target_labels else "")}
        for pair in pairs:
            row[pair] = f"{np.mean([r['scores']['oracle'][choice(r)] for r in records if r['pair'] == pair]):.4f}"
        row["mean of pairs"] = mean_std(_per_seed_mean(records, lambda r, c=choice: r["scores"]["oracle"][c(r)]))
        row["regret"] = (
            f"{np.mean([max(r['scores']['oracle']) - r['scores']['oracle'][choice(r)] for r in records]):.4f}"
        )
        picks = [lambdas[choice(r)] for r in records]
        row["lambdas chosen"] = ", ".join(f"{lam:g}: {picks.count(lam)}" for lam in lambdas if picks.count(lam))
        rows.append(row)
    for i, lam in enumerate(lambdas):
        row = {"validator": f"fixed lambda = {lam:g}"}
        for pair in pairs:
            row[pair] = f"{np.mean([r['scores']['oracle'][i] for r in records if r['pair'] == pair]):.4f}"
        row["mean of pairs"] = mean_std(_per_seed_mean(records, lambda r, i=i: r["scores"]["oracle"][i]))
        rows.append(row)
    n_seeds = len({r["seed"] for r in records})
    head = (
        f"DANN, lambda in {lambdas}; {len(pairs)} pairs x {n_seeds} seeds. Per pair: mean target accuracy of the "
        "chosen model over seeds; mean of pairs: mean ± std over seeds of the 4-pair average; regret: mean "
        "accuracy lost against the oracle's choice."
    )
    return head + "\n\n" + markdown_table(rows)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None)
    parser.add_argument("--from-json", default=None, help="re-summarise the records of an earlier run")
    args = parser.parse_args(argv)
    if args.from_json:
        records = json.loads(Path(args.from_json).read_text())
    else:
        records = run(args.seeds, epochs=args.epochs)
    table = summarise(records)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "select_amazon.json").write_text(json.dumps(records, indent=1))
        (Path(args.out) / "select_amazon.md").write_text(table + "\n")
    print(table)
    return table


if __name__ == "__main__":
    main()
