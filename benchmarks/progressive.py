"""Progressive networks on a task sequence, against sequential fine-tuning and independent columns.

The sequence MNIST -> USPS -> Fashion-MNIST (images brought to one shape, 28 x 28; every task
trains on at most ``--n-train`` images and is scored on its test split). After each stage every
task seen so far is scored:

- **progressive**: a new column per task with adapters from all earlier columns (Rusu et al. 2016);
- **independent columns**: the same columns without adapters (no transfer, no forgetting);
- **sequential fine-tuning**: one network whose body keeps training on each new task, a new head
  per task; the old tasks are scored with their old heads on the changed body (it forgets).

Columns and the fine-tuned network have the same layers (``--layers``, MLP by default) and the same
training per stage (Adam 1e-3, ``--epochs``). Also reported: the parameters per column and the
learnt lateral scales alpha (which earlier columns and layers the new column reads).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/progressive.py --seeds 3

Writes ``progressive.json`` and ``progressive.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _records import Records
from transferkit import Domain
from transferkit.datasets import load_domain
from transferkit.datasets._registry import harmonise_images
from transferkit.methods.progressive import ProgressiveColumn, ProgressiveNetwork
from transferkit.report import markdown_table, mean_std
from transferkit.train import FitConfig, fit_loop

OUT = Path(__file__).resolve().parent / "out"
SEQUENCE = ("digits:mnist", "digits:usps", "fashion:mnist")
SHORT = {"digits:mnist": "MNIST", "digits:usps": "USPS", "fashion:mnist": "Fashion"}


def load(n_train: int, seed: int) -> dict[str, tuple[Domain, Domain]]:
    rng = np.random.default_rng(seed)
    parts = []
    for key in SEQUENCE:
        tr, te = load_domain(key, "train"), load_domain(key, "test")
        if len(tr) > n_train:
            tr = tr.subset(np.sort(rng.choice(len(tr), n_train, replace=False)))
        parts += [tr, te]
    parts = harmonise_images(*parts)
    return {key: (parts[2 * i], parts[2 * i + 1]) for i, key in enumerate(SEQUENCE)}


class _HeadObjective(nn.Module):
    """Cross-entropy of one task's head on the shared body (sequential fine-tuning)."""

    def __init__(self, body: ProgressiveColumn, head: nn.Linear):
        super().__init__()
        self.body, self.head = body, head

    def features(self, x):
        return self.body(x)[1][-1].flatten(1)  # the column's last hidden layer (its output layer unused)

    def forward(self, batch, progress):
        return {"loss": F.cross_entropy(self.head(self.features(batch["x"])), batch["y"])}


def sequential_finetuning(data, layers, epochs: int, seed: int) -> list[dict]:
    torch.manual_seed(seed)
    shape = next(iter(data.values()))[0].feature_shape
    body = ProgressiveColumn(shape, layers, 1, 0)  # its output layer is unused; heads are per task
    width = body.layers[-1].in_features
    heads, stages = {}, []
    for i, (key, (tr, _)) in enumerate(data.items()):
        heads[key] = nn.Linear(width, len(np.unique(tr.y)))
        obj = _HeadObjective(body, heads[key])
        cfg = FitConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=seed + i, device="cpu", progress=False)
        fit_loop(obj, {"x": tr.X, "y": tr.y.astype(np.int64)}, None, cfg)
        accs = {}
        with torch.no_grad():
            for k in heads:
                te = data[k][1]
                pred = _HeadObjective(body, heads[k]).eval()
                logits = torch.cat(
                    [pred.head(pred.features(torch.from_numpy(te.X[j : j + 1024]))) for j in range(0, len(te), 1024)]
                )
                accs[k] = float((logits.argmax(1).numpy() == te.y).mean())
        stages.append({"after": key, "accuracy": accs})
    return stages


def progressive(data, layers, epochs: int, seed: int, lateral: bool):
    net = ProgressiveNetwork(layers=layers, epochs=epochs, seed=seed, device="cpu", lateral=lateral)
    stages = []
    for key, (tr, _) in data.items():
        net.add_task(key, tr.X, tr.y)
        stages.append({"after": key, "accuracy": {k: net.score(data[k][1].X, data[k][1].y, k) for k in net.tasks_}})
    return stages, net


def report(rows: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "## Progressive networks: MNIST -> USPS -> Fashion-MNIST\n",
        f"Accuracy on each task's test split after each stage, mean ± std over {len(seeds)} seed(s).\n",
    ]
    table = []
    for method in ("progressive", "independent columns", "sequential fine-tuning"):
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        for s, key in enumerate(SEQUENCE):
            line = {"model": method if s == 0 else "", "after": SHORT[key]}
            for j, task in enumerate(SEQUENCE):
                line[SHORT[task]] = mean_std([r["stages"][s]["accuracy"][task] for r in mine]) if j <= s else ""
            table.append(line)
    lines.append(markdown_table(table) + "\n")
    prog = [r for r in rows if r["method"] == "progressive"]
    if prog:
        lines.append(
            f"Parameters per column (progressive): {prog[0]['parameters_per_column']}; "
            f"independent: {[r for r in rows if r['method'] == 'independent columns'][0]['parameters_per_column']}.\n"
        )
        usage = prog[0]["lateral_usage"]
        lines.append(
            "Lateral usage, seed 0, on each task's test images: per layer of the new column, for each earlier "
            "column, the norm of the lateral input relative to the column's own input (0: unused):\n"
        )
        for task, per_layer in usage.items():
            if per_layer:
                lines.append(
                    f"- {SHORT[task]}: "
                    + "; ".join(
                        f"layer {i + 2}: " + ", ".join(f"{SHORT[SEQUENCE[j]]} {u:.2f}" for j, u in enumerate(layer))
                        for i, layer in enumerate(per_layer)
                    )
                )
        lines.append("")
        scales = prog[0]["lateral_scales"]
        lines.append("Learnt lateral scales alpha, seed 0 (per layer of the new column, one per earlier column):\n")
        for task, per_layer in scales.items():
            if per_layer:
                lines.append(
                    f"- {SHORT[task]}: "
                    + "; ".join(
                        f"layer {i + 2}: " + ", ".join(f"{a:.2f}" for a in alphas) for i, alphas in enumerate(per_layer)
                    )
                )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--layers", nargs="+", default=["256", "128"], help="e.g. 256 128, or c16 c32 128")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    layers = tuple(v if v.startswith("c") else int(v) for v in args.layers)
    records = Records(
        args.out / "progressive.json", {"epochs": args.epochs, "n_train": args.n_train, "layers": list(args.layers)}
    )
    for seed in range(args.seeds):
        data = None
        for method in ("progressive", "independent columns", "sequential fine-tuning"):
            key = dict(seed=seed, method=method)
            if records.has(key):
                continue
            data = data or load(args.n_train, seed)
            t0 = time.perf_counter()
            if method == "sequential fine-tuning":
                rec = {"stages": sequential_finetuning(data, layers, args.epochs, seed)}
            else:
                stages, net = progressive(data, layers, args.epochs, seed, lateral=method == "progressive")
                rec = {
                    "stages": stages,
                    "parameters_per_column": net.parameters_per_column_,
                    "lateral_scales": net.lateral_scales_,
                    "lateral_usage": {k: net.lateral_usage(data[k][1].X, k) for k in net.tasks_},
                }
            records.add({**key, **rec, "seconds": time.perf_counter() - t0})
            print(f"seed {seed} {method}: {rec['stages'][-1]['accuracy']}", file=sys.stderr, flush=True)
    text = report(records.rows)
    (args.out / "progressive.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
