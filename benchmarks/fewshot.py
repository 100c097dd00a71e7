"""Few-shot fine-tuning: k labelled target examples per class, with and without a source network.

For each pair (source -> target) one LeNet is trained on the labelled source, then for every k in
{1, 5, 10, 50} and every draw of the k-shot target set (5 draws, ``Domain.few_shot(k, seed=draw)``)
these target networks are trained on the k x 10 target examples and scored on the target's test
split:

- **target only**: the same LeNet from scratch on the target examples (``TargetOnly``);
- **fine-tune all**: every layer copied and trained; the head too where the two data sets have the
  same classes (the digit pairs), every layer but the head for MNIST -> Fashion-MNIST (``copy="body"``:
  a digit head means nothing for clothes, and L2-SP would pull a new head toward it);
- **copy + freeze first 2**: the two convolutional stages copied and frozen, the rest new;
- **L2-SP**: fine-tune all, the copied weights pulled toward their pretrained values
  (alpha = 0.1, beta = 0.01, Li et al. 2018);
- **LwF**: fine-tune all, the source network's outputs on the target images kept by distillation
  (T = 2, lambda_o = 1, Li & Hoiem 2016);
- **last layer only**: every layer but the head copied and frozen, a new head trained;
- **LoRA r=4**: every layer copied and frozen, a rank-4 update of each trained beside it (Hu et al.
  2022), the head trained; **+ L2-SP**: the update pulled toward zero (the copied weights).

Every target network takes about the same number of optimiser steps (``--steps``, batch 32 or the
whole set when smaller), Adam 1e-3; nothing is tuned on the target test split. The pairs: MNIST ->
USPS and USPS -> MNIST (the same classes, other writers and scanners) and MNIST -> Fashion-MNIST
(other classes, other images: the source can only give generic low-level features).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/fewshot.py --draws 5
    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/fewshot.py --draws 1 --ks 1 --steps 20  # smoke

Writes ``fewshot.json`` (every run; a rerun skips the runs already there) and ``fewshot.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time

from _records import Records, add_common_arguments, epochs_for, mean_table
from transferkit import Domain
from transferkit.datasets import load_domain, load_task
from transferkit.methods.finetune import FineTune, TargetOnly
from transferkit.methods.source_only import SourceOnly
from transferkit.report import markdown_table

PAIRS = [("digits:mnist", "digits:usps"), ("digits:usps", "digits:mnist"), ("digits:mnist", "fashion:mnist")]
SHORT = {"digits:mnist": "MNIST", "digits:usps": "USPS", "fashion:mnist": "Fashion"}
KS = (1, 5, 10, 50)
#: label -> FineTune arguments (None: the target-only baseline).
METHODS = {
    "target only": None,
    "fine-tune all": dict(copy="all"),
    "copy + freeze first 2": dict(copy="first:2", freeze=True),
    "L2-SP": dict(copy="all", conservative="l2sp"),
    "LwF": dict(copy="all", conservative="lwf"),
    # parameter-efficient: the head alone on the copied body, or a rank-4 LoRA update of every layer
    "last layer only": dict(copy="body", freeze=True),
    "LoRA r=4": dict(copy="all", lora=4),
    "LoRA r=4 + L2-SP": dict(copy="all", lora=4, conservative="l2sp"),
}
#: Pairs whose label sets are the same classes: there the source head is copied too.
SAME_CLASSES = {("digits:mnist", "digits:usps"), ("digits:usps", "digits:mnist")}
BACKBONE = "lenet"
SOURCE = dict(epochs=10, batch_size=64, lr=1e-3)
TARGET_BATCH = 32


def load_pair(source: str, target: str) -> dict:
    """Labelled source, the labelled target train split (to draw k-shot sets from), the target test split."""
    task = load_task(source, target)  # harmonises the image shapes of the two data sets
    y = load_domain(target, "train").y  # the target train split, same rows in the same order
    return {"source": task.source, "target": Domain(task.target.X, y, target), "test": task.target_test}


def run_pair(source: str, target: str, ks, draws: int, steps: int, records: Records, methods=None) -> None:
    data = load_pair(source, target)
    t0 = time.perf_counter()
    net = SourceOnly(backbone=BACKBONE, seed=0, verbose=False, **SOURCE).fit(data["source"])
    source_acc = float(net.score(data["test"]))
    print(
        f"{SHORT[source]}->{SHORT[target]}: source network {time.perf_counter() - t0:.0f} s, "
        f"accuracy on the target test split {source_acc:.4f}",
        file=sys.stderr,
        flush=True,
    )
    for k in ks:
        for draw in range(draws):
            shots = data["target"].few_shot(k, seed=draw)
            for label, kwargs in METHODS.items():
                if methods and label not in methods:
                    continue
                key = dict(source=source, target=target, k=k, draw=draw, method=label)
                if records.has(key):
                    continue
                common = dict(
                    backbone=BACKBONE,
                    epochs=epochs_for(len(shots), TARGET_BATCH, steps),
                    batch_size=TARGET_BATCH,
                    lr=1e-3,
                    seed=draw,
                    verbose=False,
                )
                if kwargs is None:
                    est = TargetOnly(**common)
                else:
                    if kwargs.get("copy") == "all" and (source, target) not in SAME_CLASSES:
                        kwargs = {**kwargs, "copy": "body"}
                    est = FineTune(source_model=net.model_, **kwargs, **common)
                t1 = time.perf_counter()
                est.fit(data["source"], shots)
                acc = float(est.score(data["test"]))
                records.add(
                    {
                        **key,
                        "accuracy": acc,
                        "seconds": time.perf_counter() - t1,
                        "steps": est.fit_result_.steps,
                        "source_only_accuracy": source_acc,
                        "trained_parameters": sum(p.numel() for p in est.model_.parameters() if p.requires_grad),
                    }
                )
                print(
                    f"  k={k:<3d} draw {draw} {label:<22s} {acc:.4f} ({time.perf_counter() - t1:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )


def report(records: list[dict], steps: int) -> str:
    draws = len({r["draw"] for r in records})
    lines = [
        "## Few-shot fine-tuning: k labelled target examples per class\n",
        f"LeNet; the source network trained once per pair ({SOURCE['epochs']} epochs on the labelled "
        f"source); every target network about {steps} Adam steps (batch {TARGET_BATCH}). Target test "
        f"accuracy, mean ± std over {draws} draws of the k-shot set.\n",
        "```bash\nTRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/fewshot.py "
        f"--draws {draws} --steps {steps}\n```\n",
    ]
    for source, target in dict.fromkeys((r["source"], r["target"]) for r in records):
        rows_p = [r for r in records if (r["source"], r["target"]) == (source, target)]
        lines.append(
            f"### {SHORT[source]} -> {SHORT[target]} (source network alone: {rows_p[0]['source_only_accuracy']:.4f})\n"
        )
        shown = [m for m in METHODS if any(r["method"] == m for r in rows_p)]
        table = mean_table(rows_p, ("k", sorted({r["k"] for r in rows_p})), ("method", shown))
        lines.append(markdown_table(table) + "\n")
        counted = {r["method"]: r["trained_parameters"] for r in rows_p if "trained_parameters" in r}
        if counted:
            lines.append(
                "Parameters trained: " + ", ".join(f"{m} {counted[m]:,}" for m in shown if m in counted) + ".\n"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, steps=300)
    parser.add_argument("--pairs", nargs="+", default=[f"{s}>{t}" for s, t in PAIRS], help="SOURCE>TARGET domain keys")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), help="run these columns only (default: all)")
    args = parser.parse_args(argv)
    records = Records(args.out / "fewshot.json", {"steps": args.steps})
    for pair in args.pairs:
        source, target = pair.split(">")
        run_pair(source, target, args.ks or KS, args.draws, args.steps, records, args.methods)
    text = report(records.rows, args.steps)
    (args.out / "fewshot.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
