"""Multitask learning on Landmine (29 tasks, AUC) and School (139 tasks, explained variance).

Rows: single-task linear models (logistic or ridge regression per task, the classic baseline),
single-task networks (one per task, at least 600 optimiser steps each), one pooled
model (all tasks' data, one head), and hard parameter sharing with each task weighting (equal,
uncertainty, DWA, GradNorm, and equal weights with PCGrad). Each multitask row also gives the
average relative change against the single-task models,
Delta = 100/T sum_t (M_t - M_t^single) / M_t^single.

- Landmine: each seed draws ``--n-train`` training samples per task from the task's train split
  (re-drawn until both classes appear), the rest of the protocol of Xue et al. (JMLR 2007):
  the score is the AUC on the task's test split, averaged over tasks.
- School: the fixed 75/25 split per task of the data loader; the score is the explained
  variance on each task's test students, 1 - sum (y - yhat)^2 / sum (y - mean y)^2, averaged over
  the 139 tasks ("mean") and over all test students pooled ("pooled", the form of Argyriou et al.).
  Delta is taken on each task's 1 - explained variance (its MSE over its variance, lower is
  better): explained variances near zero give no meaningful ratio.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/multitask.py --seeds 5

Writes ``multitask.json`` (every run; a rerun skips those done) and ``multitask.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from _records import Records, epochs_for
from transferkit.datasets import load_domain
from transferkit.methods.multitask import MultiTask, relative_change
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
ROWS = {
    "single-task, linear": None,
    "single-task": None,
    "pooled": None,
    "hard sharing, equal": dict(weighting="equal"),
    "hard sharing, uncertainty": dict(weighting="uncertainty"),
    "hard sharing, DWA": dict(weighting="dwa"),
    "hard sharing, GradNorm": dict(weighting="gradnorm"),
    "hard sharing, equal + PCGrad": dict(weighting="equal", pcgrad=True),
    "single-task, validated": None,
    "pooled, validated": None,
    "hard sharing, validated": dict(weighting="equal"),
}
# The grid the "validated" rows choose from, on a validation quarter of each task's training data
# (never the test split); the chosen setting is then refitted on all the training data.
GRID = [dict(weight_decay=wd, epochs=ep) for wd in (1e-4, 1e-3, 1e-2) for ep in (20, 60)]
SETTINGS = {
    "landmine": dict(hidden=(32, 16), epochs=60, batch_size=128, lr=3e-3, weight_decay=1e-4),
    "school": dict(hidden=(32, 16), epochs=60, batch_size=128, lr=1e-3, weight_decay=1e-4),
}


def load(name: str, n_train: int, seed: int) -> tuple[dict, dict, str]:
    keys = [f"landmine:{t}" for t in range(1, 30)] if name == "landmine" else [f"school:{t}" for t in range(1, 140)]
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for key in keys:
        tr, te = load_domain(key, "train"), load_domain(key, "test")
        X, y = tr.X, tr.y
        if name == "landmine" and n_train < len(y):
            for _ in range(100):  # a draw without a mine has no AUC to learn from
                idx = rng.choice(len(y), n_train, replace=False)
                if len(np.unique(y[idx])) == 2:
                    break
            X, y = X[idx], y[idx]
        train[key], test[key] = (X, y), (te.X, te.y)
    return train, test, "classification" if name == "landmine" else "regression"


def score(name: str, predict, test: dict) -> dict[str, float]:
    """Per-task metric: AUC (landmine) or explained variance (school)."""
    out = {}
    for key, (X, y) in test.items():
        if name == "landmine":
            out[key] = float(roc_auc_score(y, predict(X, key, proba=True))) if len(np.unique(y)) == 2 else np.nan
        else:
            pred = predict(X, key, proba=False)
            out[key] = float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    return out


def split_validation(train: dict, kind: str, seed: int) -> tuple[dict, dict]:
    """Each task's training data split 3:1 (stratified for classification)."""
    from sklearn.model_selection import train_test_split

    fit, val = {}, {}
    for t, (X, y) in train.items():
        strat = y if kind == "classification" and np.bincount(y.astype(int)).min() >= 2 else None
        Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=strat)
        fit[t], val[t] = (Xa, ya), (Xb, yb)
    return fit, val


def fit_validated(name: str, row: str, train: dict, kind: str, seed: int):
    """Choose from GRID by the mean validation score, then refit on all of ``train``."""
    base = {"hard sharing": "hard sharing, equal"}.get(row.removesuffix(", validated"), row.removesuffix(", validated"))
    fit, val = split_validation(train, kind, seed)
    scores = []
    for point in GRID:
        predict = fit_row(name, base, fit, kind, seed, overrides=point)
        scores.append(float(np.nanmean(list(score(name, predict, val).values()))))
    best = GRID[int(np.argmax(scores))]
    print(f"{name} seed {seed} {row}: chose {best} (validation {max(scores):.4f})", file=sys.stderr)
    predict = fit_row(name, base, train, kind, seed, overrides=best)
    predict.chosen = best  # recorded with the run
    return predict


def fit_row(name: str, row: str, train: dict, kind: str, seed: int, overrides: dict | None = None):
    """A predict(X, task, proba) function for one row of the table."""
    settings = dict(SETTINGS[name], seed=seed, device="cpu", **(overrides or {}))
    if row.endswith(", validated"):
        return fit_validated(name, row, train, kind, seed)
    kinds = dict.fromkeys(train, kind)
    if row == "single-task, linear":  # logistic / ridge regression per task, the classic STL baseline
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        linear = {
            t: make_pipeline(
                StandardScaler(), LogisticRegression(max_iter=2000) if kind == "classification" else Ridge(alpha=1.0)
            ).fit(*data)
            for t, data in train.items()
        }

        def predict(X, task, proba):
            return linear[task].predict_proba(X)[:, 1] if proba else linear[task].predict(X)

        return predict
    if row == "single-task":  # each model gets at least 600 steps: small tasks would otherwise get few
        models = {}
        for t, data in train.items():
            epochs = max(settings["epochs"], epochs_for(len(data[1]), settings["batch_size"], 600))
            models[t] = MultiTask(**{**settings, "epochs": epochs}).fit({t: data}, kinds={t: kind})
        pick = lambda t: (models[t], t)  # noqa: E731
    elif row == "pooled":
        X = np.concatenate([X for X, _ in train.values()])
        y = np.concatenate([y for _, y in train.values()])
        model = MultiTask(**settings).fit({"pooled": (X, y)}, kinds={"pooled": kind})
        pick = lambda t: (model, "pooled")  # noqa: E731
    else:
        model = MultiTask(**settings, **(ROWS[row] or {})).fit(train, kinds=kinds)
        pick = lambda t: (model, t)  # noqa: E731

    def predict(X, task, proba):
        m, head = pick(task)
        return m.predict_proba(X, head)[:, 1] if proba else m.predict(X, head)

    return predict


def report(records: list[dict]) -> str:
    lines = ["## Multitask learning: Landmine and School\n"]
    for name, metric in (("landmine", "mean AUC"), ("school", "mean explained variance")):
        rows = [r for r in records if r["data"] == name]
        if not rows:
            continue
        seeds = sorted({r["seed"] for r in rows})
        table = []
        for row in ROWS:
            mine = [r for r in rows if r["row"] == row]
            if not mine:
                continue
            line = {"model": row, metric: mean_std([r["mean"] for r in mine])}
            if name == "school":
                line["pooled explained variance"] = mean_std([r["pooled"] for r in mine])
            deltas = []
            for r in mine:
                single = [s for s in rows if s["row"] == "single-task" and s["seed"] == r["seed"]]
                if single and row != "single-task":
                    multi_t, single_t = r["per_task"], single[0]["per_task"]
                    if name == "school":  # on 1 - EV = MSE / Var (lower is better): EV near 0 has no ratio
                        multi_t = {t: 1 - v for t, v in multi_t.items()}
                        single_t = {t: 1 - v for t, v in single_t.items()}
                        deltas.append(relative_change(multi_t, single_t, lower_is_better=set(multi_t)))
                    else:
                        deltas.append(relative_change(multi_t, single_t))
            line["Delta vs single-task (%)"] = mean_std(deltas) if deltas else ""
            line["s/run"] = f"{np.mean([r['seconds'] for r in mine]):.1f}"
            table.append(line)
        lines.append(f"### {name} ({len(seeds)} seeds)\n")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", nargs="+", default=["landmine", "school"], choices=["landmine", "school"])
    parser.add_argument("--n-train", type=int, default=160, help="Landmine training samples per task")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(args.out / "multitask.json", {"n_train": args.n_train, "settings": repr(SETTINGS)})
    for name in args.data:
        for seed in range(args.seeds):
            train, test, kind = load(name, args.n_train, seed)
            for row in args.rows:
                key = dict(data=name, seed=seed, row=row)
                if records.has(key):
                    continue
                t0 = time.perf_counter()
                predict = fit_row(name, row, train, kind, seed)
                per_task = score(name, predict, test)
                rec = {**key, "per_task": per_task, "mean": float(np.nanmean(list(per_task.values())))}
                if hasattr(predict, "chosen"):
                    rec["chosen"] = predict.chosen
                if name == "school":
                    y = np.concatenate([y for _, y in test.values()])
                    pred = np.concatenate([predict(X, t, proba=False) for t, (X, _) in test.items()])
                    rec["pooled"] = float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
                rec["seconds"] = time.perf_counter() - t0
                records.add(rec)
                print(
                    f"{name} seed {seed} {row:<30s} {rec['mean']:.4f} ({rec['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    text = report(records.rows)
    (args.out / "multitask.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
