"""Self-taught clustering (Dai et al. 2008): a small target set clustered with and without auxiliary data.

Each seed draws ``--n-target`` target samples; the auxiliary data are other samples that share the
features but not the classes' identity with the target:

- ``newsgroups comp-vs-sci-1 (+ comp-vs-sci-2)``: 20 Newsgroups documents (word counts) of one
  comp-vs-sci task, with the other task's documents (other sub-groups of comp and sci) as
  auxiliary data; the same for rec-vs-talk;
- ``digits {0, 1, 2} (+ digits 3-9)``: MNIST pixel intensities of three digits, with 5,000
  images of the other seven digits as auxiliary data;
- ``fashion {T-shirt, trouser, bag} (+ 7 other classes)``: the same on Fashion-MNIST.

Rows: k-means on the target alone, information-theoretic co-clustering (ITCC) on the target alone,
and self-taught clustering (STC, lambda = 1) on target + auxiliary. Scores: clustering accuracy
(best one-to-one matching of clusters to classes) and NMI against the target's true classes, which
no method sees.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/self_taught_clustering.py --seeds 5

Writes ``self_taught_clustering.json`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from _records import Records
from transferkit.datasets import load_domain
from transferkit.methods.self_taught_clustering import InformationTheoreticCoClustering, SelfTaughtClustering
from transferkit.metrics.clustering import clustering_accuracy, nmi
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
TASKS = {
    "newsgroups comp-vs-sci-1 (+ comp-vs-sci-2)": ("newsgroups:comp-vs-sci-1", None, "newsgroups:comp-vs-sci-2", None),
    "newsgroups rec-vs-talk-1 (+ rec-vs-talk-2)": ("newsgroups:rec-vs-talk-1", None, "newsgroups:rec-vs-talk-2", None),
    "digits {0, 1, 2} (+ digits 3-9)": ("digits:mnist", (0, 1, 2), "digits:mnist", tuple(range(3, 10))),
    "fashion {T-shirt, trouser, bag} (+ 7 other classes)": (
        "fashion:mnist",
        (0, 1, 8),
        "fashion:mnist",
        (2, 3, 4, 5, 6, 7, 9),
    ),
}
ROWS = ("k-means, target alone", "ITCC, target alone", "STC, target + auxiliary")
N_FEATURE_CLUSTERS = 32
N_AUXILIARY = 5000


def draw(task: str, n_target: int, seed: int):
    target_key, target_classes, aux_key, aux_classes = TASKS[task]
    rng = np.random.default_rng(seed)
    t = load_domain(target_key, "all" if target_key.startswith("newsgroups") else "train")
    keep = np.flatnonzero(np.isin(t.y, target_classes)) if target_classes else np.arange(len(t.y))
    idx = rng.choice(keep, n_target, replace=False)
    X, y = t.X[idx].reshape(n_target, -1), t.y[idx]
    a = load_domain(aux_key, "all" if aux_key.startswith("newsgroups") else "train")
    pool = np.flatnonzero(np.isin(a.y, aux_classes)) if aux_classes else np.arange(len(a.y))
    pool = rng.choice(pool, min(N_AUXILIARY, len(pool)), replace=False)
    A = a.X[pool].reshape(len(pool), -1)
    return X, y, A


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-target", type=int, default=300)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(
        args.out / "self_taught_clustering.json",
        {"n_target": args.n_target, "z": N_FEATURE_CLUSTERS, "aux": N_AUXILIARY},
    )
    for task in args.tasks:
        for seed in range(args.seeds):
            X, y, A = draw(task, args.n_target, seed)
            k = len(np.unique(y))
            for row in ROWS:
                key = dict(task=task, seed=seed, row=row)
                if records.has(key):
                    continue
                t0 = time.perf_counter()
                if row.startswith("k-means"):
                    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
                elif row.startswith("ITCC"):
                    labels = InformationTheoreticCoClustering(k, N_FEATURE_CLUSTERS, seed=seed).fit(X).labels_
                else:
                    model = SelfTaughtClustering(k, N_FEATURE_CLUSTERS, n_auxiliary_clusters=2 * k, lam=1.0, seed=seed)
                    labels = model.fit(X, A).labels_
                rec = {
                    **key,
                    "accuracy": clustering_accuracy(y, labels),
                    "nmi": nmi(y, labels),
                    "seconds": time.perf_counter() - t0,
                }
                records.add(rec)
                print(
                    f"{task:<52s} seed {seed} {row:<26s} acc {rec['accuracy']:.3f} NMI {rec['nmi']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
    text = report(records.rows)
    (args.out / "self_taught_clustering.md").write_text(text)
    print(text)
    return 0


def report(records: list[dict]) -> str:
    lines = ["## Self-taught clustering: clustering accuracy and NMI on the target set\n"]
    table = []
    for task in TASKS:
        rows = [r for r in records if r["task"] == task]
        if not rows:
            continue
        line = {"target (+ auxiliary)": task}
        for row in ROWS:
            mine = [r for r in rows if r["row"] == row]
            line[f"{row.split(',')[0]} acc"] = mean_std([r["accuracy"] for r in mine]) if mine else ""
            line[f"{row.split(',')[0]} NMI"] = mean_std([r["nmi"] for r in mine]) if mine else ""
        table.append(line)
    seeds = len({r["seed"] for r in records})
    lines.append(f"({seeds} seeds)\n")
    lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
