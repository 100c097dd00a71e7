"""Transitive transfer on rotated MNIST: direct transfer vs the chosen bridge vs the best bridge in hindsight.

Source ``rotmnist:0`` (labelled), target ``rotmnist:T`` (unlabelled; its labels only score), pool:
every angle strictly between 0 and T in steps of 15 degrees, plus two distractors (Fashion-MNIST
images, and digits rotated by 180 degrees). Transfer along a path is gradual self-training: a LeNet
trained on the labelled domain labels the next one (its 90 % most confident predictions), which
trains the next LeNet (gradual self-training, Kumar et al. 2020).

Rows: direct (the source network applied to the target), the bridge chosen by the proxy A-distance
and by the MMD (edge cost d^2), the full chain of every angle, and the best bridge in hindsight (every
ordered subset of the in-between angles tried, scored on target labels: an oracle, reported only to
show how close the choice comes).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/transitive.py --seeds 3

Writes ``transitive.json`` (every run; a rerun skips those done) and ``transitive.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from _records import Records
from transferkit import Domain, SourceOnly
from transferkit.datasets import load_domain
from transferkit.methods.transitive import TransitiveTransfer
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
BASE = dict(backbone="lenet", epochs=10, batch_size=64, lr=1e-3, device="cpu")


def pool_for(target: int, seed: int) -> tuple[list[Domain], list[str]]:
    angles = [a for a in range(15, target, 15)]
    pool = [load_domain(f"rotmnist:{a}", "train").unlabelled() for a in angles]
    names = [f"{a}" for a in angles]
    fashion = load_domain("fashion:mnist", "train")
    take = np.random.default_rng(seed).choice(len(fashion.y), 770, replace=False)
    pool += [Domain(fashion.X[take]), load_domain("rotmnist:180", "train").unlabelled()]
    names += ["fashion", "180"]
    return pool, names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", type=int, nargs="+", default=[45, 90])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(args.out / "transitive.json", {"base": BASE, "keep": 0.9})
    source = load_domain("rotmnist:0", "train")
    for target_angle in args.targets:
        target = load_domain(f"rotmnist:{target_angle}", "test")
        for seed in range(args.seeds):
            pool, names = pool_for(target_angle, seed)
            base = SourceOnly(**BASE, seed=seed)
            n_between = len(names) - 2
            candidates = {"direct": "direct", "chosen, A-distance": "a-distance", "chosen, MMD": "mmd"}
            subsets = [list(c) for r in range(1, n_between + 1) for c in itertools.combinations(range(n_between), r)]
            for row in [*candidates, *[f"bridge {'-'.join(names[i] for i in s)}" for s in subsets]]:
                key = dict(target=target_angle, seed=seed, row=row)
                if records.has(key):
                    continue
                t0 = time.perf_counter()
                if row in candidates and candidates[row] != "direct":
                    model = TransitiveTransfer(base=base, criterion=candidates[row], seed=seed)
                elif row == "direct":
                    model = TransitiveTransfer(base=base, path="direct", seed=seed)
                else:
                    chosen = subsets[[f"bridge {'-'.join(names[i] for i in s)}" for s in subsets].index(row)]
                    model = TransitiveTransfer(base=base, path=chosen, seed=seed)
                model.fit(source, Domain(target.X), pool)
                acc = float(model.score(target.X, target.y))
                rec = {
                    **key,
                    "accuracy": acc,
                    "path": [names[i] for i in model.path_],
                    "seconds": time.perf_counter() - t0,
                }
                records.add(rec)
                print(
                    f"target {target_angle} seed {seed} {row:<28s} {acc:.4f} path {rec['path']}",
                    file=sys.stderr,
                    flush=True,
                )
    text = report(records.rows)
    (args.out / "transitive.md").write_text(text)
    print(text)
    return 0


def report(records: list[dict]) -> str:
    lines = ["## Transitive transfer on rotated MNIST (source 0 degrees)\n"]
    for target in sorted({r["target"] for r in records}):
        rows = [r for r in records if r["target"] == target]
        seeds = sorted({r["seed"] for r in rows})
        table = []
        for row in ("direct", "chosen, A-distance", "chosen, MMD"):
            mine = [r for r in rows if r["row"] == row]
            if mine:
                paths = sorted({"-".join(r["path"]) or "(none)" for r in mine})
                table.append(
                    {
                        "path": row,
                        "target accuracy": mean_std([r["accuracy"] for r in mine]),
                        "bridge taken": ", ".join(paths),
                    }
                )
        bridges = sorted({r["row"] for r in rows if r["row"].startswith("bridge ")})
        means = {b: np.mean([r["accuracy"] for r in rows if r["row"] == b]) for b in bridges}
        if means:
            full = max(bridges, key=len)
            best = max(means, key=means.get)
            for label, b in (("every angle", full), ("best in hindsight (oracle)", best)):
                accs = [r["accuracy"] for r in rows if r["row"] == b]
                table.append({"path": label, "target accuracy": mean_std(accs), "bridge taken": b[7:]})
        lines.append(f"### target {target} degrees ({len(seeds)} seeds)\n")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
