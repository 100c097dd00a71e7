r"""The layer-transfer sweep of Yosinski et al. (2014): how transferable is each layer?

Two tasks A and B with disjoint label sets. Networks of the same architecture, layers
:math:`\phi_1, \dots, \phi_L` and a classifier head :math:`h`, are trained from scratch on each:

.. math::

    f_A = h_A \circ \phi^A_L \circ \dots \circ \phi^A_1, \qquad
    f_B = h_B \circ \phi^B_L \circ \dots \circ \phi^B_1 \quad (\text{``baseB''}).

For :math:`n = 1, \dots, L` and a source :math:`X \in \{A, B\}`, the network *XnB* copies the first
:math:`n` layers of :math:`f_X`, initialises layers :math:`n+1 \dots L` and the head afresh (the head
always: the label sets differ) and trains on B,

.. math::

    \min_{\theta}\; \frac{1}{m}\sum_{j=1}^{m} \ell\big(h \circ \phi_L \circ \dots \circ \phi_1(x_j),\, y_j\big),
    \qquad \phi_{1..n} \leftarrow \phi^X_{1..n},

with :math:`\theta = (\phi_{n+1..L}, h)` when the copied layers are frozen (*XnB*) and
:math:`\theta = (\phi_{1..L}, h)` when they are fine-tuned (*XnB+*). The four curves separate two
effects (the paper's Sec. 4.1):

- **BnB** (a "selffer" network: B's own layers, frozen) drops where the layers at the cut were
  *co-adapted*: the fresh upper layers cannot relearn what the frozen lower ones expected.
  **BnB+** recovers, since fine-tuning lets the lower layers re-adapt.
- **AnB** drops further where A's features are *specific* to A; the gap between AnB and BnB is
  the specificity. It grows with the distance between the tasks (man-made vs natural classes).
- **AnB+** often beats baseB (the paper: by about 2 points), a benefit of A's features that
  fine-tuning on B does not erase.

:func:`layer_transfer_sweep` runs the protocol over seeds, :func:`summarize_layer_sweep` makes the
table (mean ± std per condition and :math:`n`) and :func:`plot_layer_sweep` the paper's Figure 2.
Every run starts from a fresh initialisation drawn from its own seed (baseB's and BnB's upper layers
are not the same draw), and every network is trained with the same optimiser and epochs, so the
curves differ only by what was copied and what trains. The networks are
:class:`~transferkit.methods.FineTune` and :class:`~transferkit.methods.TargetOnly` estimators;
layers are those of :func:`~transferkit.nn.layer_names` without the head.

References
----------
J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural
networks?", NIPS 2014 (Sec. 2-4, Fig. 2).
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferkit.data import Domain, check_same_features
from transferkit.methods.finetune import FineTune, TargetOnly
from transferkit.nn.backbones import BACKBONES, StagedNet, build_backbone

__all__ = [
    "CONDITIONS",
    "SweepRun",
    "deep_digits_net",
    "layer_transfer_sweep",
    "plot_layer_sweep",
    "summarize_layer_sweep",
    "train_base",
    "transfer_run",
]

#: The paper's four treatments, in its order; ``+`` means the copied layers are fine-tuned.
CONDITIONS = ("BnB", "BnB+", "AnB", "AnB+")
# One offset per role, so every run of one seed draws its own initialisation and batch order.
_ROLE = {"baseA": 0, "baseB": 1, "BnB": 2, "BnB+": 3, "AnB": 4, "AnB+": 5}
_INIT_OFFSET = 1 << 20  # the initialisation's seed, apart from the head's and the shuffle's


def deep_digits_net(n_classes: int = 10, in_shape: tuple[int, int, int] = (1, 28, 28)) -> StagedNet:
    """A plain five-layer CNN for 28x28 digits, three convolutional layers then two dense ones.

    ``conv1`` 5x5(16)-pool, ``conv2`` 3x3(32)-pool, ``conv3`` 3x3(32), ``fc1`` 256, ``fc2`` 256,
    ReLU everywhere, no normalisation or dropout: AlexNet's layout (convolutions, then dense
    layers) in miniature, deep enough (:math:`L = 5`) for the sweep to have a middle, and small
    enough to train in seconds on one CPU core.
    """
    c = in_shape[0]
    conv1 = nn.Sequential(nn.Conv2d(c, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
    conv2 = nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2))
    conv3 = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Flatten())
    with torch.no_grad():
        d = int(nn.Sequential(conv1, conv2, conv3)(torch.zeros(1, *in_shape)).shape[1])
    stages = OrderedDict(
        conv1=conv1,
        conv2=conv2,
        conv3=conv3,
        fc1=nn.Sequential(nn.Linear(d, 256), nn.ReLU()),
        fc2=nn.Sequential(nn.Linear(256, 256), nn.ReLU()),
    )
    dims = {"conv3": d, "fc1": 256, "fc2": 256}
    return StagedNet(stages, nn.Linear(256, n_classes), 256, adapt_at="conv3", stage_dims=dims)


_BACKBONES = {"deep-digits": deep_digits_net}


# ------------------------------------------------------------------------------------------- runs


@dataclass
class SweepRun:
    """One trained network of the sweep: its record (plain values) and the network itself."""

    record: dict
    model: StagedNet


def _fresh_net(backbone, input_shape: tuple[int, ...], n_classes: int, seed: int) -> StagedNet:
    """A newly initialised network from ``seed``, leaving the global torch RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + _INIT_OFFSET)
        if callable(backbone) and not isinstance(backbone, str):
            net = backbone(tuple(input_shape), n_classes)
            if not isinstance(net, StagedNet):
                raise TypeError(
                    f"backbone returned {type(net).__name__}; expected a callable (input_shape, n_classes) -> "
                    "StagedNet."
                )
        elif backbone in _BACKBONES:
            net = _BACKBONES[backbone](n_classes, tuple(input_shape))
        else:
            net = build_backbone(backbone, tuple(input_shape), n_classes)
    return net


def _check_backbone(backbone) -> None:
    if isinstance(backbone, str):
        known = ["auto", *_BACKBONES, *BACKBONES]
        if backbone not in known:
            raise ValueError(f"backbone={backbone!r}; expected one of {known} or a callable returning a StagedNet.")
    elif not callable(backbone):
        raise TypeError(f"backbone={backbone!r}; expected a name or a callable (input_shape, n_classes) -> StagedNet.")


def _check_labelled(data, arg: str) -> Domain:
    if not isinstance(data, Domain):
        raise TypeError(f"{arg} is a {type(data).__name__}; expected a labelled transferkit.Domain.")
    if data.y is None:
        raise ValueError(f"{arg} ({data.name}) has no labels; the sweep trains and scores on labelled data.")
    return data


def _check_positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{arg}={value!r}; expected a positive integer.")
    return int(value)


def _training(epochs, batch_size, lr, device) -> dict:
    return {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam", "device": device}


def train_base(
    train: Domain,
    test: Domain | None,
    *,
    backbone="deep-digits",
    seed: int = 0,
    role: str = "baseB",
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str = "auto",
) -> SweepRun:
    """Train the network from scratch on ``train`` (baseA or baseB) and score it on ``test`` (NaN if None)."""
    if role not in ("baseA", "baseB"):
        raise ValueError(f"role={role!r}; expected 'baseA' or 'baseB'.")
    run_seed = 1000 * seed + 100 * _ROLE[role]
    t0 = time.perf_counter()
    proto = _fresh_net(backbone, train.feature_shape, len(np.unique(train.y)), run_seed)
    est = TargetOnly(backbone=proto, seed=run_seed, **_training(epochs, batch_size, lr, device))
    est.fit(train, train)  # the "source" argument is ignored by the target-only baseline
    record = {"condition": role, "n": 0, "copied": "", "seed": seed, "run_seed": run_seed}
    accuracy = est.score(test) if test is not None else float("nan")
    record.update(accuracy=accuracy, seconds=time.perf_counter() - t0)
    return SweepRun(record, est.model_)


def transfer_run(
    source_net: StagedNet,
    source: Domain,
    train_b: Domain,
    test_b: Domain,
    n: int,
    *,
    condition: str,
    backbone="deep-digits",
    seed: int = 0,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str = "auto",
) -> SweepRun:
    """One point of the sweep: copy the first ``n`` layers of ``source_net`` into a fresh network, train on B.

    ``condition`` is one of :data:`CONDITIONS`; its ``+`` fine-tunes the copied layers, otherwise they
    are frozen (no gradient, eval mode). ``source`` is the data ``source_net`` was trained on (only
    its shape is checked). The head is never copied.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition={condition!r}; expected one of {list(CONDITIONS)}.")
    run_seed = 1000 * seed + 100 * _ROLE[condition] + n
    t0 = time.perf_counter()
    proto = _fresh_net(backbone, train_b.feature_shape, len(np.unique(train_b.y)), run_seed)
    est = FineTune(
        backbone=proto,
        source_model=source_net,
        copy=f"first:{n}",
        freeze=not condition.endswith("+"),
        seed=run_seed,
        **_training(epochs, batch_size, lr, device),
    )
    est.fit(source, train_b)
    record = {"condition": condition, "n": n, "copied": ",".join(est.copied_layers_), "seed": seed}
    record.update(run_seed=run_seed, accuracy=est.score(test_b), seconds=time.perf_counter() - t0)
    return SweepRun(record, est.model_)


# ------------------------------------------------------------------------------------------ sweep


def layer_transfer_sweep(
    data_a: Domain,
    data_b: Domain,
    test_b: Domain,
    *,
    test_a: Domain | None = None,
    backbone: str | Callable[..., StagedNet] = "deep-digits",
    ns: Sequence[int] | None = None,
    conditions: Sequence[str] = CONDITIONS,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    seeds: Sequence[int] = (0,),
    split: str = "",
    device: str = "auto",
    progress: bool = True,
) -> list[dict]:
    """Run Yosinski et al.'s protocol: baseA, baseB, and each condition for each ``n``, over seeds.

    Parameters
    ----------
    data_a, data_b : Domain
        Labelled training data of tasks A and B (disjoint label sets, same input shape).
    test_b : Domain
        Labelled test data of B: every network is scored here.
    test_a : Domain, optional
        Labelled test data of A, to report baseA's accuracy too.
    backbone : str or callable
        ``"deep-digits"`` (:func:`deep_digits_net`), a name of :func:`~transferkit.nn.build_backbone`,
        or ``f(input_shape, n_classes) -> StagedNet``. Its stages are the layers :math:`1..L`.
    ns : sequence of int, optional
        The numbers of copied layers, each in :math:`1..L`; default all of them.
    conditions : sequence of str
        A subset of :data:`CONDITIONS`.
    epochs, batch_size, lr :
        Adam training of every network, the same for all (the paper trains all alike).
    seeds : sequence of int
        One complete sweep per seed; A and B networks are trained afresh for each.
    split : str
        A name stored in every record (e.g. ``"MNIST 0-4 -> 5-9"``).
    progress : bool
        One line per trained network on stderr.

    Returns
    -------
    list of dict
        One record per trained network: ``split``, ``seed``, ``condition`` (``"baseA"``, ``"baseB"``
        or one of :data:`CONDITIONS`), ``n`` (0 for the baselines), ``copied`` (layer names),
        ``run_seed``, ``accuracy`` (on ``test_b``; on ``test_a`` for baseA, NaN without it),
        ``seconds``, ``epochs``.
    """
    data_a, data_b, test_b = (
        _check_labelled(d, a) for d, a in ((data_a, "data_a"), (data_b, "data_b"), (test_b, "test_b"))
    )
    if test_a is not None:
        test_a = _check_labelled(test_a, "test_a")
        check_same_features(data_a, test_a)
    check_same_features(data_a, data_b)
    check_same_features(data_b, test_b)
    shared = np.intersect1d(data_a.y, data_b.y)
    if len(shared):
        raise ValueError(
            f"data_a and data_b share the labels {shared.tolist()}; the protocol needs disjoint label sets "
            "(relabel one task, e.g. y + 5, if they are different classes that happen to share numbers)."
        )
    unseen = np.setdiff1d(test_b.y, data_b.y)
    if len(unseen):
        raise ValueError(f"test_b has labels {unseen.tolist()} that data_b never shows; expected B's label set.")
    _check_backbone(backbone)
    epochs, batch_size = _check_positive_int(epochs, "epochs"), _check_positive_int(batch_size, "batch_size")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr={lr!r}; expected a positive number.")
    if isinstance(conditions, str):
        conditions = [conditions]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise ValueError(f"conditions={list(conditions)!r}; expected a non-empty subset of {list(CONDITIONS)}.")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds):
        raise ValueError(f"seeds={seeds!r}; expected a non-empty list of non-negative integers.")

    L = len(_fresh_net(backbone, data_b.feature_shape, 2, 0).stage_names)
    ns = list(range(1, L + 1)) if ns is None else list(ns)
    bad = [n for n in ns if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= L]
    if bad or not ns:
        raise ValueError(f"ns={ns!r}; expected numbers of copied layers in 1..{L} (the backbone has {L} layers).")
    if L >= 100:
        raise ValueError(f"backbone has {L} layers; the sweep's run seeds allow at most 99.")

    train_kw = {"backbone": backbone, "epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    records: list[dict] = []

    def keep(run: SweepRun) -> SweepRun:
        run.record.update(split=split, epochs=epochs)
        records.append(run.record)
        if progress:
            r = run.record
            print(
                f"[{split or 'sweep'}] seed {r['seed']} {r['condition']:>5} n={r['n']}: "
                f"accuracy {r['accuracy']:.4f} ({r['seconds']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        return run

    for seed in seeds:
        base_a = keep(train_base(data_a, test_a, seed=seed, role="baseA", **train_kw))
        base_b = keep(train_base(data_b, test_b, seed=seed, role="baseB", **train_kw))
        source = {"A": (base_a.model, data_a), "B": (base_b.model, data_b)}
        for n in ns:
            for condition in conditions:
                net, data = source[condition[0]]
                keep(transfer_run(net, data, data_b, test_b, n, condition=condition, seed=seed, **train_kw))
    return records


# ------------------------------------------------------------------------------------------ report


def summarize_layer_sweep(records: Sequence[dict], split: str | None = None) -> list[dict]:
    """Rows for :func:`~transferkit.report.markdown_table`: one per condition, ``mean ± std`` per ``n``.

    The columns are ``condition``, then ``n=0`` (baseB, and baseA's accuracy on A), ``n=1`` ... The
    standard deviation is over seeds (sample std, 0 with one seed).
    """
    from transferkit.report import mean_std

    rows = [r for r in records if split is None or r.get("split") == split]
    if not rows:
        raise ValueError(f"records hold no runs{'' if split is None else f' of split {split!r}'}.")
    ns = sorted({r["n"] for r in rows if r["condition"] in CONDITIONS})
    out = []
    for condition in ("baseA", "baseB", *CONDITIONS):
        mine = [r for r in rows if r["condition"] == condition and not math.isnan(r["accuracy"])]
        if not mine:
            continue
        row = {"condition": condition}
        for n in [0, *ns]:
            accs = [r["accuracy"] for r in mine if r["n"] == n]
            row[f"n={n}"] = mean_std(accs) if accs else ""
        out.append(row)
    return out


# Figure 2 of the paper: white baseB, dark blue BnB, light blue BnB+, red AnB, pink AnB+.
_STYLE = {
    "baseB": {"color": "white", "edgecolor": "black", "marker": "o"},
    "BnB": {"color": "#1f3f9f", "edgecolor": "#1f3f9f", "marker": "o"},
    "BnB+": {"color": "#7fb2ff", "edgecolor": "#3f72bf", "marker": "^"},
    "AnB": {"color": "#d62728", "edgecolor": "#d62728", "marker": "D"},
    "AnB+": {"color": "#ff9fbf", "edgecolor": "#c8507a", "marker": "v"},
}
_OFFSET = {"baseB": 0.0, "BnB": -0.15, "BnB+": -0.05, "AnB": 0.05, "AnB+": 0.15}


def plot_layer_sweep(records: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """The paper's Figure 2: accuracy on B against the number of copied layers, one panel per split.

    Every run is a marker (conditions side by side at each ``n``, as in the paper's top panel) and
    a line joins each condition's means over seeds; baseB is the point at ``n = 0`` and a dotted
    line across. Writes a PNG and returns its path.
    """
    from transferkit.report.plots import _pyplot

    records = [r for r in records if r["condition"] != "baseA"]
    if not records:
        raise ValueError("records hold no runs on B; expected the output of layer_transfer_sweep.")
    splits = list(dict.fromkeys(r.get("split", "") for r in records))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(splits), figsize=(5.6 * len(splits), 4.4), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits, strict=True):
        rows = [r for r in records if r.get("split", "") == split]
        ns = sorted({r["n"] for r in rows if r["condition"] in CONDITIONS})
        for condition, style in _STYLE.items():
            mine = [r for r in rows if r["condition"] == condition]
            if not mine:
                continue
            xs = np.array([r["n"] for r in mine]) + _OFFSET[condition]
            ax.scatter(
                xs,
                [r["accuracy"] for r in mine],
                s=26,
                c=style["color"],
                marker=style["marker"],
                edgecolors=style["edgecolor"],
                linewidths=0.8,
                zorder=3,
                label=condition,
            )
            if condition == "baseB":
                ax.axhline(np.mean([r["accuracy"] for r in mine]), color="grey", ls=":", lw=1, zorder=1)
                continue
            by_n = [
                (n, np.mean([r["accuracy"] for r in mine if r["n"] == n])) for n in ns if any(r["n"] == n for r in mine)
            ]
            xs = [n + _OFFSET[condition] for n, _ in by_n]
            ax.plot(xs, [m for _, m in by_n], color=style["edgecolor"], lw=1.2, zorder=2)
        ax.set_xticks([0, *ns])
        ax.set_xlabel("layer n at which the network is chopped and retrained")
        ax.set_title(split)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on B (test)")
    axes[0][-1].legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
