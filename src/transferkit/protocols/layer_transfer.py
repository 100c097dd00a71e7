"""How transferable is each layer? Yosinski et al.'s sweep (NIPS 2014, Fig. 2) on digits and clothes.

Task A is MNIST digits 0-4 in both splits; task B is

- **similar**: MNIST digits 5-9. The same kind of images (centred pen strokes), other classes:
  the analogue of the paper's random split of ImageNet into two halves of 500 classes.
- **dissimilar**: Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot). The
  paper's dissimilar pair (man-made vs natural classes) keeps the image statistics and separates
  the semantics; here both change (strokes vs silhouettes and textures), so the distance between
  the tasks is unambiguous. Fashion-MNIST's own halves were not taken as the dissimilar pair: its
  classes 5-9 hold the shirt, the class most confused with A's T-shirt, pullover and coat, so the
  halves share features as much as the digit halves do. Keeping A fixed leaves B as the only thing
  that changes between the two panels.

Data: MNIST's train digits here are a 10,000-image subset (``digits:mnist``, see the data folder's
SOURCE.md): A trains on 5000 of its 0-4 (seeded subsample), the similar B on all 4869 of its 5-9;
the dissimilar B trains on 5000 Fashion-MNIST training images of classes 5-9 (seeded subsample).
B is scored on the official test images of its classes (MNIST 4861, Fashion-MNIST 5000).
Network: :func:`transferkit.advice.layer_sweep.deep_digits_net` (conv1-conv3, fc1, fc2; L = 5, the head
always new), every network trained alike (Adam 1e-3, batch 64, the same number of epochs). Seven
epochs bring baseB close to convergence (one seed: MNIST 5-9 0.982 after 5 epochs, 0.983 after 8;
Fashion-MNIST 5-9 0.932 after 5, 0.953 after 8); fewer flatter the transfer conditions, whose
copied layers arrive trained. The full run trains 2 x 22 networks per seed, 220 for 5 seeds: about
28 minutes of one core (estimated from the smoke run's CPU time, 1.1 s per network and epoch).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 transferkit bench layer-transfer --seeds 5 --out benchmarks/out
    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 transferkit bench layer-transfer --quick  # smoke
    python benchmarks/layer_transfer.py --seeds 5 --epochs 7 --n-train 5000  # every knob

Writes ``layer_transfer.png`` (the Figure 2 analogue, one panel per split), ``layer_transfer.md``
(tables) and ``layer_transfer.json`` (every run) to ``--out`` (default ``benchmarks/out``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from transferkit.advice.layer_sweep import CONDITIONS, layer_transfer_sweep, plot_layer_sweep, summarize_layer_sweep
from transferkit.data import Domain
from transferkit.datasets import load_domain
from transferkit.report import markdown_table, mean_std, to_json

OUT = Path("benchmarks") / "out"
SPLITS = {
    "similar": ("digits:mnist", (0, 1, 2, 3, 4), "digits:mnist", (5, 6, 7, 8, 9)),
    "dissimilar": ("digits:mnist", (0, 1, 2, 3, 4), "fashion:mnist", (5, 6, 7, 8, 9)),
}
TITLES = {"similar": "A: MNIST 0-4, B: MNIST 5-9", "dissimilar": "A: MNIST 0-4, B: Fashion-MNIST 5-9"}
#: Yosinski et al. 2014 on ImageNet (AlexNet, L = 7 transferable layers, 645k images per half):
#: baseB top-1 (Fig. 2) and Table 1, the mean boost of AnB+ over baseB and over BnB+ for ranges of n.
PUBLISHED = {
    "baseB top-1": 0.625,
    "AnB+ - baseB, n=1..7": 0.016,
    "AnB+ - baseB, n=3..7": 0.018,
    "AnB+ - baseB, n=5..7": 0.021,
    "AnB+ - BnB+, n=1..7": 0.014,
    "AnB+ - BnB+, n=3..7": 0.014,
    "AnB+ - BnB+, n=5..7": 0.017,
}


def take(domain: Domain, classes, n_max: int | None, rng: np.random.Generator, name: str) -> Domain:
    """The samples of ``classes``, at most ``n_max`` of them (a seeded subsample), in a fixed order."""
    idx = np.flatnonzero(np.isin(domain.y, classes))
    if n_max is not None and len(idx) > n_max:
        idx = np.sort(rng.choice(idx, n_max, replace=False))
    return Domain(domain.X[idx], domain.y[idx], name)


def load_split(split: str, n_train: int) -> dict[str, Domain]:
    """Train A, train B, test A and test B of one split; the subsamples are fixed (seed 0), not per run.

    B keeps its labels 5-9 in both splits, so A's and B's label sets are disjoint as the sweep requires
    (a Fashion-MNIST 5 is a sandal, not a digit 5).
    """
    key_a, classes_a, key_b, classes_b = SPLITS[split]
    rng = np.random.default_rng(0)
    a_train, a_test = load_domain(key_a, "train"), load_domain(key_a, "test")
    b_train, b_test = load_domain(key_b, "train"), load_domain(key_b, "test")
    return {
        "train_a": take(a_train, classes_a, n_train, rng, f"{key_a} {classes_a[0]}-{classes_a[-1]}"),
        "test_a": take(a_test, classes_a, None, rng, f"{key_a} test"),
        "train_b": take(b_train, classes_b, n_train, rng, f"{key_b} {classes_b[0]}-{classes_b[-1]}"),
        "test_b": take(b_test, classes_b, None, rng, f"{key_b} test"),
    }


def boosts(records: list[dict], split: str, lo: int, hi: int, than: str) -> str:
    """Mean over n in lo..hi of AnB+ minus ``than`` (baseB or BnB+), per seed; mean ± std over seeds."""
    rows = [r for r in records if r["split"] == split]
    per_seed = []
    for seed in sorted({r["seed"] for r in rows}):
        acc = {(r["condition"], r["n"]): r["accuracy"] for r in rows if r["seed"] == seed}
        ref = [acc[("baseB", 0)] if than == "baseB" else acc[(than, n)] for n in range(lo, hi + 1)]
        per_seed.append(np.mean([acc[("AnB+", n)] for n in range(lo, hi + 1)]) - np.mean(ref))
    return mean_std(per_seed)


def report(records: list[dict], seeds: int, epochs: int, n_train: int, seconds: float) -> str:
    L = max(r["n"] for r in records)
    splits = list(dict.fromkeys(r["split"] for r in records))
    only = "" if len(splits) == len(SPLITS) else " --splits " + " ".join(splits)
    lines = [
        "## Layer transfer (Yosinski et al. 2014): accuracy on B against the number of copied layers\n",
        f"{seeds} seed(s), {epochs} epoch(s) per network, at most {n_train} training images per task, "
        f"L = {L}; {len(records)} networks in {seconds / 60:.1f} min. Mean ± std over seeds; n = 0 is the "
        "network trained from scratch (baseB; baseA on A's test set).\n",
        "```bash\nTRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/layer_transfer.py "
        f"--seeds {seeds} --epochs {epochs} --n-train {n_train}{only}\n```\n"
        + ("(the same as `transferkit bench layer-transfer --seeds 5`)\n" if (epochs, n_train) == (7, 5000) else ""),
    ]
    for split in splits:
        lines.append(f"### {split}: {TITLES[split]}\n")
        lines.append(markdown_table(summarize_layer_sweep(records, split)) + "\n")
        ranges = [(1, L), (min(3, L), L), (max(L - 1, 1), L)]
        rows = [
            {
                "n": f"{lo}..{hi}",
                "AnB+ - baseB (ours)": boosts(records, split, lo, hi, "baseB"),
                "AnB+ - BnB+ (ours)": boosts(records, split, lo, hi, "BnB+"),
            }
            for lo, hi in dict.fromkeys(ranges)
        ]
        lines.append("Generalisation boost of fine-tuned transfer (the paper's Table 1):\n")
        lines.append(markdown_table(rows) + "\n")
    published = [{"published (Yosinski et al. 2014, ImageNet)": k, "value": v} for k, v in PUBLISHED.items()]
    lines.append(markdown_table(published) + "\n")
    return "\n".join(lines)


def run_layer_transfer(
    seeds: int = 5, epochs: int = 7, n_train: int = 5000, out: Path = OUT, splits=tuple(SPLITS), quiet: bool = False
) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    records = []
    for split in splits:
        data = load_split(split, n_train)
        records += layer_transfer_sweep(
            data["train_a"],
            data["train_b"],
            data["test_b"],
            test_a=data["test_a"],
            conditions=CONDITIONS,
            epochs=epochs,
            batch_size=64,
            lr=1e-3,
            seeds=range(seeds),
            split=split,
            device="cpu",
        )
        (out / "layer_transfer.json").write_text(to_json(records))  # after each split: a partial run is kept
    seconds = time.perf_counter() - t0
    text = report(records, seeds, epochs, n_train, seconds)
    (out / "layer_transfer.md").write_text(text)
    runs = [{**r, "split": f"{r['split']}: {TITLES[r['split']]}"} for r in records]
    plot_layer_sweep(runs, out / "layer_transfer.png", title="Layer transfer, accuracy on B (Yosinski et al. 2014)")
    if not quiet:
        print(text)
    print(f"wrote {out / 'layer_transfer.png'}, .md, .json ({seconds:.0f} s)", file=sys.stderr)
    return text
