"""Xian et al.'s zero-shot benchmark (proposed split, ResNet-101 features) in one command.

Needs the release's ``res101.mat`` for the data set (``--features PATH``, or the file at
``$TRANSFERKIT_DATA/zsl_gbu_att_splits/<NAME>/res101.mat``); the attribute files are already in
``zsl_gbu_att_splits``. Every method works on the fixed 2048-d features with a linear map, as in
the paper: DAP (linear attribute classifiers), the bilinear compatibility of ALE/SJE
(``AttributeEmbedding``, hardest-negative hinge), DeViSE and ConSE on the attribute vectors.

Protocol of Xian et al.: hyperparameters on the train / val class split (``train_loc`` /
``val_loc`` where the file has them), refit on trainval, then ZSL = mean per-class top-1 on the
unseen test classes; GZSL = per-class accuracy on test-seen (s) and test-unseen (u) images among
all classes, and H. The calibration of calibrated stacking is chosen on the same validation split
(a fifth of the train-class images held out as seen validation samples) and carried over to the
refitted model as the share of seen training images it sends to unseen classes.

    TRANSFERKIT_DATA=../shared/data python benchmarks/xian.py --dataset awa2 --features res101.mat

Published (Xian et al., TPAMI 2018, AWA2, ZSL top-1): ALE 62.5, SJE 61.9, DeViSE 59.7,
ESZSL 58.6.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from transferkit.datasets import load_zsl_benchmark
from transferkit.methods.attribute_embedding import AttributeEmbedding
from transferkit.methods.conse import ConSE
from transferkit.methods.dap import DAP
from transferkit.methods.devise import DeViSE
from transferkit.methods.zeroshot import evaluate_zeroshot, select_on_split
from transferkit.report import markdown_table, mean_std, to_json

COMMON = dict(backbone="linear", epochs=20, batch_size=128, lr=1e-3, device="cpu")
ROWS = {
    "DAP": lambda: DAP(**COMMON),
    "ALE / SJE (bilinear, hardest-negative hinge)": lambda: AttributeEmbedding(**COMMON),
    "DeViSE (attributes)": lambda: DeViSE(pretrain_epochs=COMMON["epochs"], **COMMON),
    "ConSE (attributes)": lambda: ConSE(**COMMON),
}
GRID = [dict(weight_decay=wd) for wd in (0.0, 1e-4, 1e-3)]
PUBLISHED_AWA2 = {"ALE": 62.5, "SJE": 61.9, "DeViSE": 59.7, "ESZSL": 58.6}


def run(name: str, features, seeds: int, rows: list[str], epochs: int | None = None) -> list[dict]:
    b = load_zsl_benchmark(name, features)
    print(repr(b), file=sys.stderr)
    rng = np.random.default_rng(0)
    hold = rng.random(len(b.y_train)) < 0.2  # seen-class validation images, for the calibration
    fit, val_seen = (b.X_train[~hold], b.y_train[~hold]), (b.X_train[hold], b.y_train[hold])
    records = []
    for seed in range(seeds):
        for row in rows:
            t0 = time.perf_counter()
            estimator = ROWS[row]().set_params(seed=seed, **({"epochs": epochs} if epochs else {}))
            chosen = select_on_split(estimator, GRID, b.descriptions, fit, (b.X_val, b.y_val), val_seen)
            model = estimator.set_params(**chosen.params).fit(b.X_trainval, b.y_trainval, b.descriptions)
            take = np.random.default_rng(seed).permutation(len(b.y_trainval))[:2000]
            gamma = model.calibration_for_rate(b.X_trainval[take], chosen.unseen_rate)
            scores = evaluate_zeroshot(model, b.X_test_unseen, b.y_test_unseen, b.X_test_seen, b.y_test_seen, gamma)
            plain = evaluate_zeroshot(model, b.X_test_unseen, b.y_test_unseen, b.X_test_seen, b.y_test_seen)
            rec = dict(data=name, seed=seed, row=row, chosen=chosen.params, gamma=gamma, **scores)
            rec["H_uncalibrated"] = plain["H"]
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
            print(f"{name} seed {seed} {row:<45s} ZSL {rec['zsl']:.3f}  H {rec['H']:.3f}", file=sys.stderr, flush=True)
    return records


def report(records: list[dict]) -> str:
    table = []
    for row in ROWS:
        mine = [r for r in records if r["row"] == row]
        if mine:
            line = {"model": row}
            for title, key in (
                ("ZSL", "zsl"),
                ("u", "unseen"),
                ("s", "seen"),
                ("H", "H"),
                ("H, gamma = 0", "H_uncalibrated"),
            ):
                line[title] = mean_std([100 * r[key] for r in mine])
            table.append(line)
    name = records[0]["data"] if records else "?"
    published = ", ".join(f"{k} {v}" for k, v in PUBLISHED_AWA2.items())
    return f"### {name} (accuracies in %)\n\n{markdown_table(table)}\n\nXian et al. (AWA2, ZSL): {published}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="awa2", help="apy, awa1, awa2, cub or sun")
    parser.add_argument("--features", type=Path, default=None, help="res101.mat of the xlsa17 release")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs of every method")
    parser.add_argument("--json", action="store_true", help="print the run records as JSON")
    args = parser.parse_args(argv)
    records = run(args.dataset, args.features, args.seeds, args.rows, args.epochs)
    print(to_json(records) if args.json else report(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
