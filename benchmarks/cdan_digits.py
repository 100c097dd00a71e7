"""CDAN+E on MNIST <-> USPS as the paper trains it, against its published numbers.

**Protocol: the paper's digit training** (its published script, ``pytorch/train_uspsmnist.py`` of
github.com/thuml/CDAN), not our defaults and not chosen on our runs: every training sample we have
(USPS 7,291; MNIST a 10,000-image subset of its training set, ``../shared/data/mnist_small/SOURCE.md``),
LeNet (conv5x5(20)-pool-conv5x5(50)-pool-fc(500)), SGD at 0.01 with momentum 0.9, weight decay 5e-4,
batches of 64 per domain, 10 epochs of as many steps as the larger domain fills (``--epochs 60`` takes
the script's number of steps, 10 epochs of 60,000 / 64 on the full MNIST), a domain classifier of two
hidden layers of 500, the target test split scored after the last epoch.

What differs from the script: its LeNet and domain classifier have dropout, ours do not, and it takes
the full multilinear map where our default takes the randomized one (``--variant script`` does both as
it does); it halves the rate at a fixed epoch and starts the adversarial loss after one epoch of source
training, we anneal the rate by Ganin's schedule and ramp λ from 0 by DANN's, over the run's own
length. Source-only and DANN are trained the same way, DANN aligning the convolutional features.

    python benchmarks/cdan_digits.py --seeds 3   # the script's 10 epochs
    python benchmarks/cdan_digits.py --seeds 3 --epochs 60   # the script's number of steps
    python benchmarks/cdan_digits.py --seeds 1 --epochs 60 --tasks "MNIST -> MNIST-M"   # not in the paper
    python benchmarks/cdan_digits.py --seeds 1 --epochs 60 --methods cdan --variant script   # and its dropout

Progress on stderr; one record per fit appended to ``--out`` (JSON lines), which a rerun resumes from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from torch import nn

from transferkit import CDAN, DANN, Domain, SourceOnly
from transferkit.protocols.suite import SuiteTask, task_data
from transferkit.report import markdown_table

TASKS = {
    "MNIST -> USPS": ("digits:mnist", "digits:usps"),
    "USPS -> MNIST": ("digits:usps", "digits:mnist"),
    "MNIST -> MNIST-M": ("digits:mnist", "digits:mnistm"),  # not in the paper
}
#: Long et al., NeurIPS 2018, Table 4 (LeNet, the full data sets); source-only and DANN as they report them.
PAPER = {
    "source-only": {"MNIST -> USPS": 0.752, "USPS -> MNIST": 0.571},
    "dann": {"MNIST -> USPS": 0.771, "USPS -> MNIST": 0.730},
    "cdan": {"MNIST -> USPS": 0.956, "USPS -> MNIST": 0.980},
}
METHODS = {"source-only": SourceOnly, "dann": DANN, "cdan": CDAN}
#: the script's training, in our parameters
SETTINGS = dict(
    backbone="lenet", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=64, epochs=10,
    lr_schedule="ganin",
)  # fmt: skip
ADVERSARIAL = dict(disc_hidden=(500, 500))


def script_lenet(channels: int = 1) -> nn.Module:
    """The script's LeNet, with its dropout: 2-D dropout after the second convolution, dropout after fc(500)."""
    return nn.Sequential(
        nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(20, 50, 5), nn.Dropout2d(0.5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
        nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(500, 10),
    )  # fmt: skip


#: ``--variant script``: also the script's dropout (its LeNet; 0.5 in the domain classifier) and its full
#: multilinear map (500 x 10 entries, where the paper's rule would take the randomized one)
SCRIPT = dict(disc_dropout=0.5, randomized_dim=None)


def fit_one(task: str, method: str, seed: int, epochs: int, variant: str = "ours") -> dict:
    s, t = TASKS[task]
    source, target, test = task_data(SuiteTask(task, s, t), seed, None)
    if test.X.shape[1] != source.X.shape[1]:  # MNIST-M is RGB: MNIST replicated, as DANN's paper does
        source = Domain(np.repeat(source.X, 3, axis=1), source.y, source.name)
    params = {**SETTINGS, "epochs": epochs, **(ADVERSARIAL if method != "source-only" else {})}
    if variant == "script":
        params["backbone"] = script_lenet(source.X.shape[1])
        params.update({k: v for k, v in SCRIPT.items() if k in METHODS[method]().get_params()})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = METHODS[method](seed=seed, verbose=True, **params).fit(source, target)
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "epochs": epochs,
        "variant": variant,
        "accuracy": float(model.score(test)),
        "n_source": len(source),
        "n_target": len(target),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _key(record: dict) -> tuple:
    epochs = record.get("epochs", SETTINGS["epochs"])
    return record["task"], record["method"], record["seed"], epochs, record.get("variant", "ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(list(TASKS)[:2]), help=f"comma-separated, of {list(TASKS)}")
    parser.add_argument("--methods", default="source-only,cdan,dann", help=f"comma-separated, of {list(METHODS)}")
    parser.add_argument(
        "--epochs",
        type=int,
        default=SETTINGS["epochs"],
        help="training epochs (10, the script's; 60 takes the script's number of steps on the full MNIST)",
    )
    parser.add_argument(
        "--variant",
        choices=("ours", "script"),
        default="ours",
        help="our LeNet and CDAN's defaults for the map, or also the script's dropout and full multilinear map",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/cdan_digits.jsonl"))
    args = parser.parse_args()
    if args.epochs < 1 or args.seeds < 1:
        parser.error(f"--epochs {args.epochs} --seeds {args.seeds}: both must be at least 1")
    tasks = [t.strip() for t in args.tasks.split(",")]
    methods = [m.strip() for m in args.methods.split(",")]
    for name, known, what in ((tasks, TASKS, "--tasks"), (methods, METHODS, "--methods")):
        if unknown := [n for n in name if n not in known]:
            parser.error(f"{what} names {unknown}; expected some of {list(known)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    for seed in range(args.seeds):
        for task in tasks:
            for method in methods:
                if any(_key(r) == (task, method, seed, args.epochs, args.variant) for r in done):
                    continue
                record = fit_one(task, method, seed, args.epochs, args.variant)
                print(f"[cdan-digits] {record}", file=sys.stderr, flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                done.append(record)
    rows = []
    for task in tasks:
        for method in methods:
            acc = [
                r["accuracy"] for r in done if _key(r)[:2] + _key(r)[3:] == (task, method, args.epochs, args.variant)
            ]
            if acc:
                rows.append(
                    {
                        "task": task,
                        "method": method,
                        "epochs": args.epochs,
                        "variant": args.variant,
                        "seeds": len(acc),
                        "accuracy (mean ± sd)": f"{np.mean(acc):.3f} ± {np.std(acc):.3f}",
                        "paper": f"{PAPER[method][task]:.3f}" if task in PAPER[method] else "",
                    }
                )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
