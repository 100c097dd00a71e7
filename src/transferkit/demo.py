"""``transferkit demo``: source-only against DANN on a real digits domain shift, offline.

Labelled MNIST digits are the source, unlabelled USPS digits the target (both 16x16, the pair of
Long et al., ICCV 2013, shipped inside the package). The same LeNet is trained twice, once on
the source alone and once with DANN's domain classifier behind a gradient reversal layer; a
third run trained on labelled target data shows the ceiling. The report folder holds the table,
the t-SNE of source and target features before and after adaptation, and the training curves.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from transferkit import __version__
from transferkit.datasets import load_domain, load_task
from transferkit.methods import DANN, SourceOnly
from transferkit.report import markdown_table, plot_history, plot_tsne, to_json

SOURCE, TARGET = "demo:mnist", "demo:usps"

#: One training recipe for all three runs (Ganin et al. 2016: SGD, momentum 0.9, annealed rate).
RECIPE = dict(epochs=30, batch_size=64, optimizer="sgd", lr=0.01, lr_schedule="ganin", momentum=0.9)


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _plot_samples(source_x: np.ndarray, target_x: np.ndarray, path: Path) -> None:
    from transferkit.report.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
    for row, (xs, name) in enumerate(((source_x, SOURCE), (target_x, TARGET))):
        for j in range(10):
            axes[row, j].imshow(xs[j, 0], cmap="gray")
            axes[row, j].axis("off")
        axes[row, 0].set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(out: str | Path = "transferkit-demo", seed: int = 0, quick: bool = False, verbose: bool = True) -> dict:
    """Run the demo and write its report into ``out``; return the results."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = dict(RECIPE, epochs=2 if quick else RECIPE["epochs"], seed=seed, verbose=verbose)
    task = load_task(SOURCE, TARGET)
    source_test = load_domain(SOURCE, "test")
    target_train_labelled = load_domain(TARGET, "train")
    _log(f"source {task.source}\ntarget {task.target}\ntest   {task.target_test}", verbose)

    runs = {
        "source-only": lambda: SourceOnly(**recipe).fit(task.source),
        "DANN": lambda: DANN(**recipe).fit(task.source, task.target),
        "train on target (ceiling)": lambda: SourceOnly(**recipe).fit(target_train_labelled),
    }
    rows, models = [], {}
    for name, make in runs.items():
        _log(f"training {name} ...", verbose)
        t0 = time.perf_counter()
        model = make()
        models[name] = model
        rows.append(
            {
                "method": name,
                "target accuracy": model.score(task.target_test),
                "source accuracy": model.score(source_test),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    table = markdown_table(rows)
    print(table)

    _log("t-SNE of features before and after adaptation ...", verbose)
    rng = np.random.default_rng(seed)
    n = 1 if quick else 500
    i_s = rng.choice(len(source_test), min(n * 2 if not quick else 60, len(source_test)), replace=False)
    i_t = rng.choice(len(task.target_test), min(n * 2 if not quick else 60, len(task.target_test)), replace=False)
    xs, xt = source_test.X[i_s], task.target_test.X[i_t]
    so, dann = models["source-only"], models["DANN"]
    plot_tsne(
        [
            ("before adaptation (source-only features)", so.transform(xs), so.transform(xt)),
            ("after adaptation (DANN features)", dann.transform(xs), dann.transform(xt)),
        ],
        out / "tsne.png",
        labels=(source_test.y[i_s], task.target_test.y[i_t]),
        domain_names=("MNIST (source)", "USPS (target)"),
        seed=seed,
    )
    plot_history(
        {"source-only": so.history_, "DANN": dann.history_},
        ["loss", "source_acc", "domain_acc", "grl_lambda"],
        out / "curves.png",
    )
    _plot_samples(source_test.X, task.target_test.X, out / "samples.png")

    results = {
        "version": __version__,
        "source": SOURCE,
        "target": TARGET,
        "seed": seed,
        "recipe": recipe,
        "rows": rows,
    }
    (out / "results.json").write_text(to_json(results))
    gain = rows[1]["target accuracy"] - rows[0]["target accuracy"]
    shown = ", ".join(f"{k}={v}" for k, v in recipe.items() if k != "verbose")
    (out / "report.md").write_text(
        f"""# transferkit demo: does unlabelled target data help?

Source: labelled MNIST digits ({len(task.source)}); target: unlabelled USPS digits ({len(task.target)});
accuracy on {len(task.target_test)} held-out labelled USPS digits. Both 16x16 (the pair of Long et al., ICCV 2013).
Same LeNet and recipe for every run: {shown}.

{table}

DANN changes target accuracy by {100 * gain:+.1f} percentage points over source-only, without a single
target label.

![source and target digits](samples.png)

## Features before and after adaptation

t-SNE of the convolutional features (LeNet's `conv2`, where DANN's domain classifier looks), source
in blue and target in red, each digit drawn as its class. Before adaptation
the two domains occupy different places; the domain classifier behind the gradient reversal layer
pulls them together, class by class.

![t-SNE](tsne.png)

## Training curves

`domain_acc` is the domain classifier's accuracy (0.5 = the domains cannot be told apart);
`grl_lambda` the adaptation factor of Ganin's schedule.

![curves](curves.png)

Reproduce: `transferkit demo --seed {seed}` (transferkit {__version__}).
"""
    )
    _log(f"report written to {out}/report.md", verbose)
    return results
