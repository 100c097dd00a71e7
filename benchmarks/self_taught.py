"""Self-taught learning in the shape of Raina et al.'s tables: unlabelled source -> a few labelled target.

Rows are (unlabelled source -> labelled target) pairs built from our data, columns the feature
map learnt on the unlabelled source (raw inputs, PCA, sparse coding, autoencoder; mSDA for text),
cells the target test accuracy of a logistic regression trained on ``k`` labelled target samples
per class, mean ± std over seeds (each seed redraws the labelled set and relearns the features).

- ``digits -> fashion``: 10,000 unlabelled MNIST digits teach features for clothes;
- ``fashion -> digits``: the reverse;
- ``digits 0-4 -> digits 5-9`` (and the same for clothes): related data of *other* classes,
  Raina et al.'s own premise (their unlabelled digits taught features for handwritten letters);
- ``amazon (3 others) -> amazon:D``: unlabelled reviews of the three other product domains
  (400-d ``amazon400`` features), a few labelled reviews of domain D.

Raina et al. (ICML 2007) report sparse-coding features above raw and PCA features on their own
pairs (natural images -> Caltech-101, handwritten digits -> characters, ...); those are other data
and their tables could not be retrieved here, so the comparison is the ranking of the columns.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/self_taught.py --seeds 3

Writes ``self_taught.json`` (every run; a rerun skips those done) and ``self_taught.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _records import Records
from transferkit import Domain
from transferkit.datasets import load_domain
from transferkit.methods.self_taught import SelfTaught
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
AMAZON = ("books", "dvd", "electronics", "kitchen")
PAIRS = {
    "digits -> fashion": (["digits:mnist"], "fashion:mnist"),
    "fashion -> digits": (["fashion:mnist"], "digits:mnist"),
    "digits 0-4 -> digits 5-9": (["digits:mnist/0-4"], "digits:mnist/5-9"),
    "fashion 0-4 -> fashion 5-9": (["fashion:mnist/0-4"], "fashion:mnist/5-9"),
    **{f"amazon (3 others) -> {d}": ([f"amazon400:{o}" for o in AMAZON if o != d], f"amazon400:{d}") for d in AMAZON},
}
FEATURES = {"raw": {}, "PCA": {}, "sparse coding": {}, "autoencoder": {}, "mSDA": {}}
SETTINGS = {
    "images": dict(n_components=256, beta=0.1, n_unlabelled=10000, ks=(1, 5, 20)),
    "text": dict(n_components=200, beta=0.1, n_unlabelled=6000, ks=(10, 50)),
}
NAMES = {"raw": "raw", "PCA": "pca", "sparse coding": "sparse-coding", "autoencoder": "autoencoder", "mSDA": "msda"}


def kind(pair: str) -> str:
    return "text" if pair.startswith("amazon") else "images"


def columns(pair: str) -> list[str]:
    return [c for c in FEATURES if c != "mSDA" or kind(pair) == "text"]


def _load(key: str, split: str) -> Domain:
    """``DATASET:DOMAIN`` or ``DATASET:DOMAIN/a-b`` (only the classes a..b)."""
    key, _, classes = key.partition("/")
    d = load_domain(key, split)
    if not classes:
        return d
    lo, hi = map(int, classes.split("-"))
    keep = (d.y >= lo) & (d.y <= hi)
    return Domain(d.X[keep], d.y[keep], d.name)


def load(pair: str, seed: int):
    sources, target = PAIRS[pair]
    settings = SETTINGS[kind(pair)]
    rng = np.random.default_rng(seed)
    Xu = np.concatenate([_load(s, "train").X for s in sources])
    Xu = Xu[rng.choice(len(Xu), min(settings["n_unlabelled"], len(Xu)), replace=False)]
    tr, te = _load(target, "train"), _load(target, "test")
    return Xu, tr, te


def labelled(train, k: int, seed: int) -> Domain:
    return Domain(train.X, train.y, "target").few_shot(k, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=list(FEATURES))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(args.out / "self_taught.json", {"settings": repr(SETTINGS)})
    for pair in args.pairs:
        settings = SETTINGS[kind(pair)]
        for seed in range(args.seeds):
            data = None
            for column in [c for c in columns(pair) if c in args.features]:
                todo = [k for k in settings["ks"] if not records.has(dict(pair=pair, seed=seed, features=column, k=k))]
                if not todo:
                    continue
                data = data or load(pair, seed)
                Xu, tr, te = data
                t0 = time.perf_counter()
                # the feature map depends on the unlabelled source only: learn it once, reuse for every k
                model = SelfTaught(
                    features=NAMES[column], n_components=settings["n_components"], beta=settings["beta"], seed=seed
                ).fit(Domain(Xu), labelled(tr, todo[0], seed))
                test_features = model.transform(te.X)
                learn_seconds = time.perf_counter() - t0
                for k in todo:
                    t1 = time.perf_counter()
                    model.fit_classifier(labelled(tr, k, seed))
                    acc = float(np.mean(model.model_.predict(test_features) == te.y))
                    rec = dict(
                        pair=pair,
                        seed=seed,
                        features=column,
                        k=k,
                        accuracy=acc,
                        learn_seconds=learn_seconds,
                        seconds=time.perf_counter() - t1,
                    )
                    records.add(rec)
                    print(
                        f"{pair:<32s} seed {seed} {column:<14s} k={k:<3d} {acc:.4f} (features {learn_seconds:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    text = report(records.rows)
    (args.out / "self_taught.md").write_text(text)
    print(text)
    return 0


def report(records: list[dict]) -> str:
    lines = ["## Self-taught learning: features from unlabelled source data, a classifier on k labels per class\n"]
    for pair in PAIRS:
        rows = [r for r in records if r["pair"] == pair]
        if not rows:
            continue
        table = []
        for k in SETTINGS[kind(pair)]["ks"]:
            line = {"k per class": k}
            for column in columns(pair):
                accs = [r["accuracy"] for r in rows if r["k"] == k and r["features"] == column]
                line[column] = mean_std(accs) if accs else ""
            table.append(line)
        seeds = len({r["seed"] for r in rows})
        lines.append(f"### {pair} ({seeds} seeds)\n")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
