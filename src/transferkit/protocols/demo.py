"""``transferkit demo``: a tour of the lecture's map, one method per quadrant, offline, in minutes.

Everything runs on the two small digit domains shipped inside the package: MNIST and USPS
digits at 16x16 (the pair of Long et al., ICCV 2013). Each quadrant is one question a user with
that data would ask, answered by one method against its baseline:

1. *Labelled source, a few labelled target examples*: fine-tuning the MNIST network on 5 USPS
   digits per class against training on those 50 alone; and the layer-transfer curve (copy the
   first n layers, Yosinski et al. 2014).
2. *Labelled source, unlabelled target*: DANN against source-only (t-SNE of the features
   before and after adaptation); and zero-shot learning: DAP recognises digits 3, 7 and 9 without
   a single image of them, from the shipped stroke-attribute table (confusion between the unseen
   classes).
3. *Unlabelled source, labelled target*: self-taught learning: sparse-coding features learnt on
   unlabelled MNIST, a classifier on the 50 labelled USPS digits, against raw pixels.
4. *Nothing labelled*: self-taught clustering of 300 USPS digits (0, 1, 2) with unlabelled MNIST
   digits of other classes as auxiliary data, against co-clustering and k-means on the target
   alone (the clusters it finds, drawn).

The report folder holds ``report.md``, the table, ``results.json`` and the pictures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from transferkit import __version__
from transferkit.datasets import load_domain
from transferkit.runs import RunOptions, run

SOURCE, TARGET = "demo:mnist", "demo:usps"

#: One training recipe for the domain-adaptation runs (Ganin et al. 2016: SGD, momentum 0.9, annealed rate).
RECIPE = dict(epochs=30, batch_size=64, optimizer="sgd", lr=0.01, lr_schedule="ganin", momentum=0.9)
K_SHOT = 5  # labelled target digits per class in quadrants 1 and 3
UNSEEN = (3, 7, 9)  # the zero-shot classes, never seen in training
CLUSTER_CLASSES = (0, 1, 2)  # quadrant 4's target classes; auxiliary data: the other MNIST digits
N_CLUSTER_TARGET = 300
STEPS = 6


class _Tour:
    """Progress on stderr and the rows of the table."""

    def __init__(self, verbose: bool):
        self.verbose, self.step, self.rows, self.t0 = verbose, 0, [], time.perf_counter()

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def begin(self, what: str) -> None:
        self.step += 1
        self.log(f"[{self.step}/{STEPS}] {what} ({time.perf_counter() - self.t0:.0f} s)")

    def row(self, quadrant, method, score, baseline, baseline_score, metric, seconds) -> None:
        self.rows.append(
            {
                "quadrant": quadrant,
                "method": method,
                "score": round(float(score), 4),
                "baseline": baseline,
                "baseline score": round(float(baseline_score), 4),
                "metric": metric,
                "seconds": round(seconds, 1),
            }
        )


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ pictures
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


def _plot_layer_curve(n_copied: list[int], accuracy: list[float], baseline: float, path: Path) -> None:
    from transferkit.report.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(n_copied, accuracy, "o-", label="copy the first n layers, fine-tune all")
    ax.axhline(baseline, color="grey", ls="--", label=f"target only ({K_SHOT} per class)")
    ax.set_xlabel("layers copied from the MNIST network")
    ax.set_ylabel("USPS test accuracy")
    ax.set_xticks(n_copied)
    ax.legend(fontsize=8)
    ax.set_title("Layer transfer: MNIST -> USPS", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, classes, path: Path) -> None:
    from sklearn.metrics import confusion_matrix

    from transferkit.report.plots import _pyplot

    plt = _pyplot()
    C = confusion_matrix(y_true, y_pred, labels=list(classes), normalize="true")
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(C, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{C[i, j]:.2f}", ha="center", va="center", color="white" if C[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("predicted (never seen in training)")
    ax.set_ylabel("true digit")
    ax.set_title("DAP zero-shot confusion", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_clusters(X: np.ndarray, labels: np.ndarray, path: Path, per_cluster: int = 12) -> None:
    from transferkit.report.plots import _pyplot

    plt = _pyplot()
    clusters = np.unique(labels)
    fig, axes = plt.subplots(len(clusters), per_cluster, figsize=(per_cluster * 0.8, len(clusters) * 0.9))
    axes = np.atleast_2d(axes)
    for r, c in enumerate(clusters):
        members = np.flatnonzero(labels == c)[:per_cluster]
        for j in range(per_cluster):
            axes[r, j].axis("off")
            if j < len(members):
                axes[r, j].imshow(X[members[j], 0], cmap="gray")
        axes[r, 0].set_title(f"cluster {r + 1} ({np.sum(labels == c)})", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ quadrants
def _adaptation(tour, out, recipe, mnist, mnist_test, usps, usps_test, seed, quick):
    """Quadrant 2: DANN against source-only; returns the source network for quadrant 1."""
    from transferkit.methods import DANN, SourceOnly
    from transferkit.metrics import proxy_a_distance
    from transferkit.report import plot_history, plot_tsne

    tour.begin("labelled source, unlabelled target: source-only and DANN, MNIST -> USPS")
    options = RunOptions(seed=seed, quiet=not recipe["verbose"])
    so_run, dann_run = (run(cls(**recipe), mnist, usps, options, target_test=usps_test) for cls in (SourceOnly, DANN))
    so, dann = so_run.estimator, dann_run.estimator
    so_acc, dann_acc = so_run.record["target_accuracy"], dann_run.record["target_accuracy"]
    t_so, t_dann = so_run.record["seconds"], dann_run.record["seconds"]
    tour.row("labelled source, unlabelled target", "DANN", dann_acc, "source-only", so_acc, "target accuracy", t_dann)
    tour.log(f"      source-only {so_acc:.3f}, DANN {dann_acc:.3f}; t-SNE of the features ...")
    rng = np.random.default_rng(seed)
    n = 60 if quick else 1000
    i_s = rng.choice(len(mnist_test), min(n, len(mnist_test)), replace=False)
    i_t = rng.choice(len(usps_test), min(n, len(usps_test)), replace=False)
    xs, xt = mnist_test.X[i_s], usps_test.X[i_t]
    plot_tsne(
        [
            ("before adaptation (source-only features)", so.transform(xs), so.transform(xt)),
            ("after adaptation (DANN features)", dann.transform(xs), dann.transform(xt)),
        ],
        out / "tsne.png",
        labels=(mnist_test.y[i_s], usps_test.y[i_t]),
        domain_names=("MNIST (source)", "USPS (target)"),
        seed=seed,
    )
    plot_history(
        {"source-only": so.history_, "DANN": dann.history_},
        ["loss", "source_acc", "domain_acc", "grl_lambda"],
        out / "curves.png",
    )
    _plot_samples(mnist_test.X, usps_test.X, out / "samples.png")
    # how far apart the plotted features are, in numbers the report can state (2: separable, 0: mixed)
    before = proxy_a_distance(so.transform(xs), so.transform(xt), seed=seed)
    after = proxy_a_distance(dann.transform(xs), dann.transform(xt), seed=seed)
    return so, {
        "source-only": so_acc,
        "DANN": dann_acc,
        "a_distance_before": before,
        "a_distance_after": after,
        "final_domain_acc": float(dann.history_[-1]["domain_acc"]),
        "seconds": t_so + t_dann,
    }


def _fine_tuning(tour, out, source_net, mnist, usps, usps_test, seed, quick):
    """Quadrant 1: fine-tuning against target-only, and the layer-transfer curve."""
    from transferkit.methods import FineTune, TargetOnly
    from transferkit.nn import layer_names

    tour.begin(f"labelled source, {K_SHOT} labelled target digits per class: fine-tuning and layer transfer")
    epochs = 2 if quick else 100
    options = RunOptions(seed=seed, target_labels=K_SHOT, quiet=True)  # the K labelled USPS digits per class
    baseline = run(TargetOnly(epochs=epochs), mnist, usps, options, target_test=usps_test).record["target_accuracy"]
    names = layer_names(source_net.model_)
    curve = []
    for n in range(len(names) + 1):
        tuned = FineTune(copy="none" if n == 0 else f"first:{n}", source_model=source_net.model_, epochs=epochs)
        record = run(tuned, mnist, usps, options, target_test=usps_test).record
        curve.append(record["target_accuracy"])
        t_last = record["seconds"]
    _plot_layer_curve(list(range(len(names) + 1)), curve, baseline, out / "layer_transfer.png")
    tour.row(
        "labelled source, labelled target",
        "fine-tuning (all layers copied)",
        curve[-1],
        "target only",
        baseline,
        "target accuracy",
        t_last,  # the last run copies every layer: the row's method
    )
    tour.log(
        f"      target only {baseline:.3f}; copying 0..{len(names)} layers: {', '.join(f'{a:.3f}' for a in curve)}"
    )
    return {"layers": names, "curve": curve, "target-only": baseline}


def _zero_shot(tour, out, mnist, mnist_test, seed, quick):
    """Quadrant 2, unseen classes: DAP from the shipped stroke-attribute table."""
    from transferkit.methods import DAP
    from transferkit.semantics import attribute_table

    tour.begin(f"zero-shot: DAP recognises digits {', '.join(map(str, UNSEEN))} without a single image of them")
    seen = ~np.isin(mnist.y, UNSEEN)
    dap, t = _timed(
        lambda: DAP(epochs=2 if quick else 10, seed=seed).fit(mnist.X[seen], mnist.y[seen], attribute_table("digits"))
    )
    test = np.isin(mnist_test.y, UNSEEN)
    y_true, y_pred = mnist_test.y[test], dap.predict(mnist_test.X[test], classes="unseen")
    accuracy = float(np.mean([np.mean(y_pred[y_true == c] == c) for c in UNSEEN]))  # mean per-class top-1
    _plot_confusion(y_true, y_pred, UNSEEN, out / "zeroshot_confusion.png")
    tour.row("labelled source, unseen target classes", "DAP (attributes)", accuracy, "chance", 1 / 3, "ZSL accuracy", t)
    tour.log(f"      ZSL accuracy {accuracy:.3f} (chance 0.333)")
    return {"zsl": accuracy}


def _self_taught(tour, mnist, usps, usps_test, seed, quick):
    """Quadrant 3: features from unlabelled MNIST, a classifier on the labelled USPS digits."""
    from transferkit.methods import SelfTaught

    tour.begin("unlabelled source, labelled target: self-taught learning (sparse coding on unlabelled MNIST)")
    options = RunOptions(seed=seed, target_labels=K_SHOT, quiet=True)  # the source's labels are never read
    raw = run(SelfTaught(features="raw"), mnist, usps, options, target_test=usps_test).record["target_accuracy"]
    learner = SelfTaught(features="sparse-coding", n_components=32 if quick else 128)
    coded = run(learner, mnist, usps, options, target_test=usps_test).record
    accuracy, t = coded["target_accuracy"], coded["seconds"]
    tour.row("unlabelled source, labelled target", "self-taught (sparse coding)", accuracy, "raw pixels", raw,
             "target accuracy", t)  # fmt: skip
    tour.log(f"      raw pixels {raw:.3f}, sparse-coding features {accuracy:.3f}")
    return {"raw": raw, "sparse coding": accuracy}


def _clustering(tour, out, mnist, usps, seed, quick):
    """Quadrant 4: self-taught clustering against co-clustering and k-means on the target alone."""
    from sklearn.cluster import KMeans

    from transferkit.methods.self_taught_clustering import InformationTheoreticCoClustering, SelfTaughtClustering
    from transferkit.metrics.clustering import clustering_accuracy, nmi

    draws = 1 if quick else 3
    tour.begin(
        f"nothing labelled: self-taught clustering of {N_CLUSTER_TARGET} USPS digits "
        f"{', '.join(map(str, CLUSTER_CLASSES))}, {draws} draw(s)"
    )
    auxiliary = mnist.X[~np.isin(mnist.y, CLUSTER_CLASSES)]  # other digits, other domain, no labels
    pool = np.flatnonzero(np.isin(usps.y, CLUSTER_CLASSES))
    k = len(CLUSTER_CLASSES)
    scores: dict[str, list] = {"STC": [], "ITCC": [], "k-means": []}
    seconds = 0.0
    for draw in range(draws):
        idx = np.random.default_rng([seed, draw]).choice(pool, min(N_CLUSTER_TARGET, len(pool)), replace=False)
        X, y = usps.X[idx], usps.y[idx]
        stc, t = _timed(lambda X=X, d=draw: SelfTaughtClustering(n_clusters=k, seed=seed + d).fit(X, auxiliary))
        seconds += t
        itcc = InformationTheoreticCoClustering(n_clusters=k, seed=seed + draw).fit(X)
        km = KMeans(k, n_init=10, random_state=seed + draw).fit_predict(X.reshape(len(X), -1))
        for name, labels in (("STC", stc.labels_), ("ITCC", itcc.labels_), ("k-means", km)):
            scores[name].append((clustering_accuracy(y, labels), nmi(y, labels)))
        if draw == 0:
            _plot_clusters(X, stc.labels_, out / "clusters.png")
    mean = {name: np.mean(v, axis=0) for name, v in scores.items()}
    tour.row("unlabelled source, unlabelled target", "self-taught clustering", mean["STC"][0], "co-clustering alone",
             mean["ITCC"][0], "clustering accuracy", seconds / draws)  # fmt: skip
    tour.log("      " + ", ".join(f"{n} {m[0]:.3f} (NMI {m[1]:.3f})" for n, m in mean.items()))
    return {name: {"accuracy": float(m[0]), "nmi": float(m[1])} for name, m in mean.items()}


# ------------------------------------------------------------------------------------------ the tour
def run_demo(out: str | Path = "transferkit-demo", seed: int = 0, quick: bool = False, verbose: bool = True) -> dict:
    """Run the tour and write its report into ``out``; return the results."""
    from transferkit.report import markdown_table, to_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tour = _Tour(verbose)
    recipe = dict(RECIPE, epochs=2 if quick else RECIPE["epochs"], seed=seed, verbose=verbose)
    mnist, mnist_test = load_domain(SOURCE, "train"), load_domain(SOURCE, "test")
    usps, usps_test = load_domain(TARGET, "train"), load_domain(TARGET, "test")
    few = usps.few_shot(K_SHOT, seed)
    tour.log(f"source {mnist}\ntarget {usps}\ntest   {usps_test}")

    source_net, adaptation = _adaptation(tour, out, recipe, mnist, mnist_test, usps, usps_test, seed, quick)
    finetune = _fine_tuning(tour, out, source_net, mnist, usps, usps_test, seed, quick)
    zeroshot = _zero_shot(tour, out, mnist, mnist_test, seed, quick)
    selftaught = _self_taught(tour, mnist, usps, usps_test, seed, quick)
    clustering = _clustering(tour, out, mnist, usps, seed, quick)
    tour.begin("writing the report")

    rows = [tour.rows[i] for i in (1, 0, 2, 3, 4)]  # in the order of the lecture's map
    table = markdown_table(rows)
    print(table)
    results = {
        "version": __version__,
        "seed": seed,
        "quick": quick,
        "recipe": {k: v for k, v in recipe.items() if k != "verbose"},
        "rows": rows,
        "adaptation": adaptation,
        "fine-tuning": finetune,
        "zero-shot": zeroshot,
        "self-taught": selftaught,
        "clustering": clustering,
        "seconds": round(time.perf_counter() - tour.t0, 1),
    }
    (out / "results.json").write_text(to_json(results))
    (out / "report.md").write_text(_report(table, results, len(few), len(usps), len(usps_test)))
    tour.log(f"report written to {out}/report.md ({results['seconds']:.0f} s in all)")
    return results


def _alignment(a: dict) -> str:
    """What the t-SNE and the domain classifier say about alignment, in numbers, without claiming more."""
    measured = (
        f"A linear classifier tells the plotted source from target features apart with a proxy A-distance "
        f"of {a['a_distance_before']:.2f} before adaptation and {a['a_distance_after']:.2f} after (2: perfectly "
        f"separable, 0: indistinguishable); DANN's own domain classifier ends training at "
        f"{a['final_domain_acc']:.2f} accuracy."
    )
    if a["a_distance_after"] < 1.0 and a["final_domain_acc"] < 0.7:
        return measured + " Here the adaptation made the domains hard to tell apart."
    return measured + (
        " So here DANN raised the target accuracy without making the domains indistinguishable: "
        "the features of the two domains remain largely apart after adaptation."
    )


def _report(table: str, r: dict, n_few: int, n_target: int, n_test: int) -> str:
    a, f, z, s, c = r["adaptation"], r["fine-tuning"], r["zero-shot"], r["self-taught"], r["clustering"]
    curve = ", ".join(f"{n} layers {acc:.3f}" for n, acc in enumerate(f["curve"]))
    return f"""# transferkit demo: the lecture's map in four questions

Source: MNIST digits; target: USPS digits; both 16x16, shipped with the package (the pair of Long
et al., ICCV 2013). Scores on {n_test} held-out USPS digits unless said otherwise. Seed {r["seed"]}.

{table}

![source and target digits](samples.png)

## 1. Labelled source, a few labelled target examples: fine-tuning

With {n_few} labelled USPS digits ({K_SHOT} per class), a network trained on them alone reaches
{f["target-only"]:.3f}. Starting from the MNIST network and fine-tuning every layer on the same
{n_few} digits reaches {f["curve"][-1]:.3f}. The curve copies the first n layers
({", ".join(f["layers"])}) and trains the rest from scratch: {curve}.

![layer transfer](layer_transfer.png)

## 2. Labelled source, unlabelled target: domain-adversarial training

DANN sees the {n_target} USPS training digits *without labels*. Against the same network trained
on MNIST alone: {a["source-only"]:.3f} -> {a["DANN"]:.3f}. Below, a t-SNE of the features (LeNet's
`conv2`, where DANN's domain classifier looks), source in blue, target in red, each digit drawn as
its class. {_alignment(a)}

![t-SNE](tsne.png)

`domain_acc` is the domain classifier's accuracy (0.5 means the domains cannot be told apart).
`grl_lambda` is the adaptation factor of Ganin's schedule.

![curves](curves.png)

### Unseen classes: zero-shot learning

DAP trains one classifier per stroke attribute (the table shipped in
`transferkit/datasets/_embedded/attributes/digits.csv`) on MNIST digits other than
{", ".join(map(str, UNSEEN))}. It then recognises those three from their attributes alone: mean
per-class accuracy {z["zsl"]:.3f} among the three (chance 0.333).

![zero-shot confusion](zeroshot_confusion.png)

## 3. Unlabelled source, labelled target: self-taught learning

Sparse-coding bases learnt on MNIST without labels, and a logistic regression on the {n_few}
labelled USPS digits in that code: {s["sparse coding"]:.3f}, against {s["raw"]:.3f}
on raw pixels. On these small, clean digits raw pixels are already a good representation. In
`benchmarks/RESULTS.md`, features learnt on reviews of other products add 4-8 points on Amazon
reviews.

## 4. Nothing labelled: self-taught clustering

{N_CLUSTER_TARGET} USPS digits {", ".join(map(str, CLUSTER_CLASSES))}, clustered together with
unlabelled MNIST digits of the other classes, which share the pixel clusters (Dai et al., ICML
2008). Mean over draws: STC {c["STC"]["accuracy"]:.3f} (NMI {c["STC"]["nmi"]:.3f}); co-clustering
of the target alone {c["ITCC"]["accuracy"]:.3f} ({c["ITCC"]["nmi"]:.3f}); k-means
{c["k-means"]["accuracy"]:.3f} ({c["k-means"]["nmi"]:.3f}). The clusters STC found in the first
draw:

![clusters](clusters.png)

Reproduce: `transferkit demo --seed {r["seed"]}` (transferkit {r["version"]}, {r["seconds"]:.0f} s).
"""
