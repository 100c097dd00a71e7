"""Transferability estimates against the accuracy actually reached by fine-tuning, on a zoo of source networks.

Zoo: nine LeNets, each trained on one 28x28 grey source (MNIST; Fashion-MNIST; MNIST rotated by 90
and by 180 degrees; MNIST digits 0-4; Fashion classes 0-4 and 5-9; MNIST-M in grey; MNIST with
inverted intensities). Targets: USPS (brought to 28x28), MNIST rotated by 45 degrees, and
Fashion-MNIST classes 5-9 — each with ``--k`` labelled training samples per class.

For every (source network, target): LogME, LEEP, NCE and H-score computed on the k-shot target
samples before any training (features: the network's last hidden layer; LEEP and NCE: its
predictions), and the ground truth: target test accuracy after fine-tuning the whole network (a new
head) on the same k-shot samples. Per target, the Kendall tau between each score and the accuracy.

Negative transfer: target-only training on the same k-shot samples is the baseline; transfer "hurt"
when fine-tuning ends below it. Two warnings are compared with what happened: the advisor's
(``transfer_gain``: linear probes on the source features and on the raw inputs) and
``finetune_gain`` (fine-tuning against training from scratch, inside 5 folds of the k-shot set).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/transferability.py --seeds 3
    # the scores and the probe check only (about 6 min):
    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/transferability.py --seeds 3 \
        --no-network-check --out benchmarks/out/zoo_probes

Writes ``transferability.json`` (every run; a rerun skips those done) and ``transferability.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from _records import Records
from transferkit import Domain, FineTune, SourceOnly, TargetOnly
from transferkit.advice.negative_transfer import finetune_gain, transfer_gain
from transferkit.datasets import load_domain
from transferkit.metrics.transferability import h_score, leep, logme, nce
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
NET = dict(backbone="lenet", lr=1e-3, device="cpu")
SOURCE_EPOCHS, TARGET_EPOCHS = 5, 30
SCORES = ("logme", "leep", "nce", "h_score")


def _grey28(X: np.ndarray) -> np.ndarray:
    X = X.mean(1, keepdims=True) if X.shape[1] == 3 else X
    if X.shape[-1] != 28:
        X = torch.nn.functional.interpolate(torch.from_numpy(X), size=(28, 28), mode="bilinear").numpy()
    return np.ascontiguousarray(X, dtype=np.float32)


def _classes(d: Domain, keep) -> Domain:
    mask = np.isin(d.y, keep)
    return Domain(d.X[mask], d.y[mask], d.name)


def sources() -> dict:
    mnist, fashion = load_domain("digits:mnist", "train"), load_domain("fashion:mnist", "train")
    take = np.random.default_rng(0).choice(len(fashion.y), 10000, replace=False)
    fashion = Domain(fashion.X[take], fashion.y[take])
    mnistm = load_domain("digits:mnistm", "train")
    rot90 = np.rot90(mnist.X, 1, axes=(2, 3)).copy()
    return {
        "MNIST": mnist,
        "Fashion": fashion,
        "MNIST rotated 90": Domain(rot90, mnist.y),
        "MNIST rotated 180": Domain(np.rot90(mnist.X, 2, axes=(2, 3)).copy(), mnist.y),
        "MNIST 0-4": _classes(mnist, range(5)),
        "Fashion 0-4": _classes(fashion, range(5)),
        "Fashion 5-9": _classes(fashion, range(5, 10)),
        "MNIST-M, grey": Domain(_grey28(mnistm.X), mnistm.y),
        "MNIST inverted": Domain(1.0 - mnist.X, mnist.y),
    }


def targets() -> dict:
    usps_tr, usps_te = load_domain("digits:usps", "train"), load_domain("digits:usps", "test")
    fashion_tr = _classes(load_domain("fashion:mnist", "train"), range(5, 10))
    fashion_te = _classes(load_domain("fashion:mnist", "test"), range(5, 10))
    return {
        "USPS": (Domain(_grey28(usps_tr.X), usps_tr.y), Domain(_grey28(usps_te.X), usps_te.y)),
        "MNIST rotated 45": (load_domain("rotmnist:45", "train"), load_domain("rotmnist:45", "test")),
        "Fashion 5-9": (fashion_tr, fashion_te),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=10, help="labelled target samples per class")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only-seeds", type=int, nargs="+", help="run these seeds only (to split the work)")
    parser.add_argument(
        "--no-network-check",
        action="store_true",
        help="skip finetune_gain (ten trainings per source and target pair, most of the run time)",
    )
    args = parser.parse_args(argv)
    records = Records(
        args.out / "transferability.json", {"net": NET, "k": args.k, "epochs": [SOURCE_EPOCHS, TARGET_EPOCHS]}
    )
    zoo_data, target_data = sources(), targets()
    for seed in range(args.seeds):
        if args.only_seeds is not None and seed not in args.only_seeds:
            continue
        nets = {}
        for tname, (t_train, t_test) in target_data.items():
            few = t_train.few_shot(args.k, seed)
            key = dict(seed=seed, target=tname, source="target-only")
            if not records.has(key):
                alone = TargetOnly(**NET, epochs=TARGET_EPOCHS, seed=seed).fit(few, few)  # the source is ignored
                records.add({**key, "accuracy": float(alone.score(t_test))})
            for sname, s in zoo_data.items():
                key = dict(seed=seed, target=tname, source=sname)
                done = records.get(key)
                if done is not None and ("verdict_ft" in done or args.no_network_check):
                    continue
                t0 = time.perf_counter()
                if sname not in nets:
                    nets[sname] = SourceOnly(**NET, epochs=SOURCE_EPOCHS, seed=seed).fit(s)
                net = nets[sname]
                checked = {}
                if not args.no_network_check:
                    ft = finetune_gain(net.model_, few.X, few.y, seed=seed, epochs=TARGET_EPOCHS, **NET)
                    checked = {"verdict_ft": ft.verdict, "gain_ft": ft.gain}
                if done is not None:  # a record from before this check: add it
                    done.update(checked)
                    records.save()
                    print(f"seed {seed} {tname:<18s} <- {sname:<18s} [{checked['verdict_ft']}]", file=sys.stderr)
                    continue
                features, proba = net.transform(few.X), net.predict_proba(few.X)
                scores = {
                    "logme": logme(features, few.y),
                    "leep": leep(proba, few.y),
                    "nce": nce(net.classes_[proba.argmax(1)], few.y),
                    "h_score": h_score(features, few.y),
                }
                gain = transfer_gain(features, few.X, few.y, seed=seed)
                tuned = FineTune(**NET, copy="body", source_model=net.model_, epochs=TARGET_EPOCHS, seed=seed)
                accuracy = float(tuned.fit(s, few).score(t_test))
                records.add(
                    {
                        **key,
                        **scores,
                        "accuracy": accuracy,
                        "verdict": gain.verdict,
                        "gain": gain.gain,
                        **checked,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(
                    f"seed {seed} {tname:<18s} <- {sname:<18s} acc {accuracy:.3f} logme {scores['logme']:.3f} "
                    f"leep {scores['leep']:.3f} [{gain.verdict}]",
                    file=sys.stderr,
                    flush=True,
                )
    text = report(records.rows)
    (args.out / "transferability.md").write_text(text)
    print(text)
    return 0


def report(records: list[dict]) -> str:
    lines = ["## Transferability estimates against fine-tuned accuracy\n"]
    table = []
    seeds = sorted({r["seed"] for r in records})
    for tname in dict.fromkeys(r["target"] for r in records):
        line = {"target": tname}
        for score in SCORES:
            taus = []
            for seed in seeds:
                rows = [r for r in records if r["target"] == tname and r["seed"] == seed and score in r]
                if len(rows) >= 3:
                    taus.append(kendalltau([r[score] for r in rows], [r["accuracy"] for r in rows]).statistic)
            line[f"tau {score}"] = mean_std(taus) if taus else ""
        table.append(line)
    lines.append(f"### Kendall tau between score and accuracy after fine-tuning ({len(seeds)} seeds, 9 sources)\n")
    lines.append(markdown_table(table) + "\n")
    lines.append("### Negative transfer: the warnings against what fine-tuning did\n")
    for label, field in (
        ("transfer_gain (linear probes)", "verdict"),
        ("finetune_gain (networks, 5 folds)", "verdict_ft"),
    ):
        if any(field in r for r in records):
            lines.append(f"**{label}**\n")
            lines.append(markdown_table(_warned(records, field)) + "\n")
    return "\n".join(lines)


def _warned(records: list[dict], field: str) -> list[dict]:
    hurt_warned = hurt = helped_warned = helped = 0
    for r in records:
        if r["source"] == "target-only" or field not in r:
            continue
        base = [
            b for b in records if b["source"] == "target-only" and b["target"] == r["target"] and b["seed"] == r["seed"]
        ]
        if not base:
            continue
        warned = r[field] == "likely negative"
        if r["accuracy"] < base[0]["accuracy"]:
            hurt, hurt_warned = hurt + 1, hurt_warned + warned
        else:
            helped, helped_warned = helped + 1, helped_warned + warned
    return [
        {
            "fine-tuning vs target-only": "transfer hurt",
            "pairs": hurt,
            "warned": hurt_warned,
            "share warned": f"{hurt_warned / hurt:.2f}" if hurt else "",
        },
        {
            "fine-tuning vs target-only": "transfer helped",
            "pairs": helped,
            "warned": helped_warned,
            "share warned": f"{helped_warned / helped:.2f}" if helped else "",
        },
    ]


if __name__ == "__main__":
    raise SystemExit(main())
