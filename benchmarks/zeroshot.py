"""Zero-shot learning on Fashion-MNIST and MNIST with held-out classes: ZSL and generalized ZSL.

Unseen classes (never in training): Fashion-MNIST pullover, dress, sandal (2, 3, 5); MNIST
3, 7, 9. The class descriptions are the attribute tables shipped with the package
(``transferkit.semantics.attribute_table``) or the class names embedded by MiniLM
(``embed_class_names``, the ``text`` extra). Every method trains a LeNet on ``--n-train`` images
of the seen classes.

Selection never looks at the unseen classes: for every method, each point of a small grid is
fitted with two seen classes held out as "unseen" and scored on them
(``select_on_seen_classes``); the calibration gamma of calibrated stacking is the one that
maximises H on that same split. The chosen setting is refitted on all seen classes.

Reported per method: ZSL (mean per-class top-1 among the unseen classes), GZSL seen / unseen /
H among all ten classes with the validated calibration, the uncalibrated H (gamma = 0) and AUSUC.
Score scales differ between the validation model and the model refitted on all seen classes, so
the validated gamma is carried over as the share of seen training samples it sends to unseen
classes (``calibration_for_rate``); H with the validation gamma taken as is is reported too.
Reference rows: chance, and a LeNet trained *on* the test classes' training images (the ceiling:
3-way for ZSL, 10-way for GZSL).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/zeroshot.py --seeds 3

Writes ``zeroshot.json`` (every run; a rerun skips those done), ``zeroshot.md`` and, with
``--plot``, the seen-unseen curves of seed 0 to ``benchmarks/figures/zeroshot_<data>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _records import Records
from transferkit.datasets import load_domain
from transferkit.methods.attribute_embedding import AttributeEmbedding
from transferkit.methods.conse import ConSE
from transferkit.methods.dap import DAP
from transferkit.methods.devise import DeViSE
from transferkit.methods.zeroshot import SoftmaxObjective, evaluate_zeroshot, select_on_seen_classes
from transferkit.metrics.zeroshot import gzsl_scores, per_class_accuracy, seen_unseen_curve
from transferkit.nn.backbones import build_backbone
from transferkit.report import markdown_table, mean_std
from transferkit.semantics import attribute_table, embed_class_names
from transferkit.train import FitConfig, fit_loop

OUT = Path(__file__).resolve().parent / "out"
FIGURES = Path(__file__).resolve().parent / "figures"
DATA = {
    "fashion": ("fashion:mnist", [2, 3, 5]),
    "digits": ("digits:mnist", [3, 7, 9]),
}
TEXT_NAMES = {  # the names handed to the text model: the dataset's own class names, lower case
    "fashion": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"],
    "digits": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}
COMMON = dict(backbone="lenet", epochs=5, batch_size=128, lr=1e-3, device="cpu")
#: row -> (estimator, description kind, grid)
ROWS = {
    "DAP": (lambda: DAP(**COMMON), "attributes"),
    "DAP, nearest attributes (lecture)": (lambda: DAP(rule="nearest", **COMMON), "attributes"),
    "attribute embedding, f and g networks (lecture)": (
        lambda: AttributeEmbedding(compatibility="mlp", **COMMON),
        "attributes",
    ),
    "attribute embedding, bilinear (ALE/SJE)": (lambda: AttributeEmbedding(**COMMON), "attributes"),
    "DeViSE, attributes": (lambda: DeViSE(pretrain_epochs=5, **COMMON), "attributes"),
    "DeViSE, MiniLM names": (lambda: DeViSE(pretrain_epochs=5, **COMMON), "names"),
    "ConSE, MiniLM names": (lambda: ConSE(**COMMON), "names"),
    "ConSE, attributes": (lambda: ConSE(**COMMON), "attributes"),
}
GRID = [dict(weight_decay=1e-4), dict(weight_decay=1e-2)]
REFERENCE = ("chance", "ceiling: trained on the test classes")


def load(name: str, n_train: int, seed: int):
    key, unseen = DATA[name]
    tr, te = load_domain(key, "train"), load_domain(key, "test")
    rng = np.random.default_rng(seed)
    seen_idx = np.flatnonzero(~np.isin(tr.y, unseen))
    idx = rng.choice(seen_idx, min(n_train, len(seen_idx)), replace=False)
    test_unseen = np.isin(te.y, unseen)
    return dict(
        X=tr.X[idx],
        y=tr.y[idx],
        X_all=tr.X,
        y_all=tr.y,
        Xu=te.X[test_unseen],
        yu=te.y[test_unseen],
        Xs=te.X[~test_unseen],
        ys=te.y[~test_unseen],
        unseen=np.array(unseen),
    )


def descriptions(name: str, kind: str):
    table = attribute_table(name)
    if kind == "attributes":
        return table
    return embed_class_names(TEXT_NAMES[name], table.labels)


def run_method(name: str, row: str, d: dict, seed: int) -> tuple[dict, object]:
    make, kind = ROWS[row]
    desc = descriptions(name, kind)
    estimator = make().set_params(seed=seed)
    chosen = select_on_seen_classes(estimator, GRID, d["X"], d["y"], desc, n_val=2, seed=seed)
    model = estimator.set_params(**chosen.params).fit(d["X"], d["y"], desc)
    plain = evaluate_zeroshot(model, d["Xu"], d["yu"], d["Xs"], d["ys"])
    # the validation model's gamma as is, and carried over as the rate of seen samples it moves
    same_gamma = evaluate_zeroshot(model, d["Xu"], d["yu"], d["Xs"], d["ys"], calibration=chosen.gamma)
    take = np.random.default_rng(seed).permutation(len(d["X"]))[:2000]
    gamma = model.calibration_for_rate(d["X"][take], chosen.unseen_rate)
    calibrated = evaluate_zeroshot(model, d["Xu"], d["yu"], d["Xs"], d["ys"], calibration=gamma)
    rec = {
        **calibrated,
        "H_uncalibrated": plain["H"],
        "H_same_gamma": same_gamma["H"],
        "gamma": gamma,
        "unseen_rate": chosen.unseen_rate,
        "chosen": chosen.params,
        "selection": chosen.log,
    }
    return rec, model


class supervised:
    """A LeNet trained with softmax on labelled images of the classes it is tested on (the ceiling)."""

    def __init__(self, X, y, seed):
        self.classes_ = np.unique(y)
        torch.manual_seed(seed)
        self.net = build_backbone("lenet", X.shape[1:], len(self.classes_))
        config = FitConfig(
            epochs=COMMON["epochs"], batch_size=128, lr=COMMON["lr"], seed=seed, device="cpu", progress=False
        )
        fit_loop(SoftmaxObjective(self.net), {"xs": X, "ys": np.searchsorted(self.classes_, y)}, None, config)
        self.net.eval()

    def predict_proba(self, X):
        with torch.no_grad():
            return torch.softmax(self.net(torch.from_numpy(X)), 1).numpy()

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def run_reference(name: str, row: str, d: dict, seed: int) -> dict:
    if row == "chance":
        k = len(d["unseen"])
        return {
            "zsl": 1 / k,
            "seen": 0.1,
            "unseen": 0.1,
            "H": 0.1,
            "H_uncalibrated": 0.1,
            "H_same_gamma": 0.1,
            "ausuc": np.nan,
        }
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(d["y_all"]), len(d["y"]), replace=False)  # as many images as the zero-shot models
    only_unseen = np.flatnonzero(np.isin(d["y_all"], d["unseen"]))
    idx_u = rng.choice(only_unseen, min(len(only_unseen), len(d["y"])), replace=False)
    zsl_model = supervised(d["X_all"][idx_u], d["y_all"][idx_u], seed)
    all_model = supervised(d["X_all"][idx], d["y_all"][idx], seed)
    X = np.concatenate([d["Xs"], d["Xu"]])
    y = np.concatenate([d["ys"], d["yu"]])
    seen = np.setdiff1d(np.arange(10), d["unseen"])
    g = gzsl_scores(y, all_model.predict(X), seen, d["unseen"])
    scores = all_model.predict_proba(X)
    curve = seen_unseen_curve(np.log(scores + 1e-12), y, all_model.classes_, np.isin(all_model.classes_, seen))
    return {
        "zsl": per_class_accuracy(d["yu"], zsl_model.predict(d["Xu"])),
        **g.as_dict(),
        "H_uncalibrated": g.H,
        "H_same_gamma": g.H,
        "ausuc": curve.auc,
    }


def plot_curves(name: str, models: dict, d: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    X = np.concatenate([d["Xs"], d["Xu"]])
    y = np.concatenate([d["ys"], d["yu"]])
    for row, model in models.items():
        labels = model.candidates("all")
        curve = seen_unseen_curve(model.decision_function(X, labels), y, labels, np.isin(labels, model.seen_classes_))
        ax.plot(curve.seen, curve.unseen, label=f"{row} (AUSUC {curve.auc:.2f})")
    ax.set_xlabel("seen-class accuracy")
    ax.set_ylabel("unseen-class accuracy")
    ax.set_title(f"{name}: seen-unseen curves of calibrated stacking (seed 0)")
    ax.legend(fontsize=7)
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / f"zeroshot_{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(records: list[dict]) -> str:
    lines = ["## Zero-shot learning on Fashion-MNIST and MNIST\n"]
    cols = [
        ("ZSL", "zsl"),
        ("GZSL seen", "seen"),
        ("GZSL unseen", "unseen"),
        ("GZSL H", "H"),
        ("H, gamma = 0", "H_uncalibrated"),
        ("H, validation gamma as is", "H_same_gamma"),
        ("AUSUC", "ausuc"),
    ]
    for name in DATA:
        rows = [r for r in records if r["data"] == name]
        if not rows:
            continue
        table = []
        for row in (*REFERENCE[:1], *ROWS, *REFERENCE[1:]):
            mine = [r for r in rows if r["row"] == row]
            if not mine:
                continue
            line = {"model": row}
            for title, key in cols:
                vals = [r[key] for r in mine if r[key] is not None and np.isfinite(r[key])]
                line[title] = mean_std(vals) if vals else ""
            table.append(line)
        seeds = len({r["seed"] for r in rows})
        lines.append(f"### {name}, unseen classes {DATA[name][1]} ({seeds} seeds)\n")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--rows", nargs="+", default=[*REFERENCE, *ROWS], choices=[*REFERENCE, *ROWS])
    parser.add_argument("--n-train", type=int, default=8000, help="training images of the seen classes")
    parser.add_argument("--plot", action="store_true", help="seen-unseen curves of seed 0 to benchmarks/figures")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(
        args.out / "zeroshot.json", {"n_train": args.n_train, "common": COMMON, "grid": GRID, "calibration": "rate"}
    )
    for name in args.data:
        for seed in range(args.seeds):
            d = load(name, args.n_train, seed)
            models = {}
            for row in args.rows:
                key = dict(data=name, seed=seed, row=row)
                if records.has(key) and not (args.plot and seed == 0 and row in ROWS):
                    continue
                t0 = time.perf_counter()
                if row in ROWS:
                    rec, models[row] = run_method(name, row, d, seed)
                else:
                    rec = run_reference(name, row, d, seed)
                rec = {**key, **rec, "seconds": time.perf_counter() - t0}
                if not records.has(key):
                    records.add(rec)
                print(
                    f"{name} seed {seed} {row:<48s} ZSL {rec['zsl']:.3f}  H {rec['H']:.3f} ({rec['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            if args.plot and seed == 0 and models:
                print(f"wrote {plot_curves(name, models, d)}", file=sys.stderr)
    text = report(records.rows)
    (args.out / "zeroshot.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
