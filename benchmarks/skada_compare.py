r"""transferkit against SKADA 0.6 on the Amazon reviews: same network, data, steps and weights.

Runs in its own environment (``bash benchmarks/setup_skada_env.sh`` builds ``benchmarks/.venv-skada``);
SKADA is never a dependency of transferkit.

Protocol (that of ``transferkit bench amazon``): 2000 labelled source reviews, 2000 unlabelled target
reviews, accuracy on the target test file; 5000-d unigram/bigram counts binarised; the shallow network
``5000 -> 50 ReLU -> 2`` built from the same seed on both sides, so both start from identical weights;
Adam, lr 1e-3, 30 epochs of 31 steps, each step 64 source + 64 target reviews. Both libraries
minimise

.. math::

    \frac{1}{n}\sum_i \ell_{CE}(f(x^s_i), y^s_i) + \lambda\, D(h(X^s), h(X^t)),

DANN with :math:`D` the domain classifier's binary cross-entropy behind a gradient reversal layer,
DAN with a multi-kernel MMD and Deep CORAL with :math:`\lVert C_s - C_t\rVert_F^2 / 4d^2`.

SKADA's DANN, as shipped, does not adapt: its ``DomainClassifier`` ends in ``nn.Softmax()`` over a
single output unit, which is the constant 1, and ``DANNLoss`` applies ``BCELoss`` to that constant.
The domain loss is then :math:`-\log(1-1) = 100` (``BCELoss`` clamps the log at -100) on every source
batch and 0 on every target batch, and its gradient is exactly zero, so neither the domain classifier
nor, through the reversal layer, the features ever receive a domain gradient: the run is source-only
training. The repair replaces that softmax by a sigmoid, :math:`\sigma(d) = P(\text{target})`,
which makes ``BCELoss`` the DANN paper's logistic domain loss. ``--check`` prints the gradients.

Equal weights: our DANN computes :math:`L_y + \frac{1}{2}(\bar L_d^s + \bar L_d^t)` (one mean over the
128 samples) with a reversal coefficient :math:`\lambda = 0.1`; SKADA computes
:math:`L_y + r(\bar L_d^s + \bar L_d^t)` with a reversal coefficient :math:`\alpha`. With
:math:`r = 1/2, \alpha = 0.1` the domain classifier and the features receive the same gradients as
ours. DAN and Deep CORAL use :math:`\lambda = r = 1` on both sides.

References: Ganin et al., JMLR 17(59), 2016; Long et al., ICML 2015; Sun & Saenko, ECCV-W 2016;
Gnassounou et al., SKADA: scikit-adaptation, https://scikit-adaptation.github.io (version 0.6.0).

Run from the repository root::

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 benchmarks/.venv-skada/bin/python \
        benchmarks/skada_compare.py --seeds 5 --out benchmarks/out
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: one thread on both sides

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import transferkit  # noqa: E402
from transferkit import DAN, DANN, DeepCORAL, Domain  # noqa: E402
from transferkit.datasets import load_task  # noqa: E402
from transferkit.nn.backbones import shallow_net  # noqa: E402
from transferkit.runs import preprocess  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from skada_cold_script import ShallowNet  # noqa: E402  (the network both sides train, in the SKADA script)

DOMAINS = ("books", "dvd", "electronics", "kitchen")
SHORT = {"books": "B", "dvd": "D", "electronics": "E", "kitchen": "K"}
FOUR_PAIRS = [("books", "dvd"), ("dvd", "electronics"), ("electronics", "kitchen"), ("kitchen", "books")]
ALL_PAIRS = [(a, b) for a in DOMAINS for b in DOMAINS if a != b]

#: Shared by every run on both sides.
RECIPE = dict(epochs=30, batch_size=64, lr=1e-3, hidden=50)
DANN_LAMBDA = 0.1  # the `bench amazon` setting: constant reversal coefficient
DAN_LAMBDA = 1.0
CORAL_LAMBDA = 1.0


def skada_domain_head(repaired: bool, alpha: float, num_features: int = 50) -> nn.Module:
    """SKADA's ``DomainClassifier``; ``repaired`` swaps its output softmax for a sigmoid."""
    from skada.deep.modules import DomainClassifier

    head = DomainClassifier(num_features=num_features, alpha=alpha)
    if repaired:
        assert isinstance(head.classifier[-1], nn.Softmax), "SKADA's domain head changed; revisit the repair"
        head.classifier[-1] = nn.Sigmoid()  # P(target), what BCELoss expects
    return head


# ------------------------------------------------------------------------------------------ runs


def _shallow_init(seed: int, n_features: int) -> ShallowNet:
    """SKADA's network with the initial weights our estimators draw for the same seed."""
    torch.manual_seed(seed)
    net = ShallowNet(n_features, 2, RECIPE["hidden"])
    torch.manual_seed(seed)
    ours = shallow_net(n_features, 2, RECIPE["hidden"])
    same = torch.equal(net.hidden[0].weight, ours.stages["hidden"][0].weight) and torch.equal(
        net.head.weight, ours.head.weight
    )
    if not same:
        raise RuntimeError("the two networks no longer start from the same weights for a seed")
    return net


def run_ours(method: str, seed: int, data: dict) -> dict:
    common = dict(
        epochs=RECIPE["epochs"],
        batch_size=RECIPE["batch_size"],
        lr=RECIPE["lr"],
        optimizer="adam",
        hidden=RECIPE["hidden"],
        seed=seed,
        device="cpu",
        verbose=False,
    )
    if method == "dann":
        est = DANN(lambda_schedule="constant", lambda_max=DANN_LAMBDA, **common)
    elif method == "dan":  # our default layers: hidden and logits
        est = DAN(lambda_max=DAN_LAMBDA, **common)
    elif method == "dan-hidden":  # SKADA's DAN aligns one layer: the hidden one, as here
        est = DAN(lambda_max=DAN_LAMBDA, taps=("hidden",), **common)
    elif method == "coral":
        est = DeepCORAL(lambda_max=CORAL_LAMBDA, **common)
    else:
        raise ValueError(method)
    source, target = Domain(data["Xs"], data["ys"], "source"), Domain(data["Xt"], name="target")
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(source, target)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    acc = float(np.mean(est.predict(data["Xtest"]) == data["ytest"]))
    return {
        "accuracy": acc,
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "predict_seconds": time.perf_counter() - t0,
    }


def run_skada(method: str, seed: int, data: dict) -> dict:
    from skada.deep import DAN as SkDAN
    from skada.deep import DANN as SkDANN
    from skada.deep import DeepCoral as SkDeepCoral

    net = _shallow_init(seed, data["Xs"].shape[1])
    common = dict(
        optimizer=torch.optim.Adam,
        lr=RECIPE["lr"],
        max_epochs=RECIPE["epochs"],
        batch_size=RECIPE["batch_size"],  # per domain: DomainBalancedDataLoader draws 2 x 64
        train_split=False,  # skorch would otherwise hold out 20% of the data for validation
        device="cpu",
        verbose=0,
    )
    if method == "skada-dann-default":  # SKADA's defaults: its own head, reg=1, alpha=1
        model = SkDANN(net, layer_name="hidden", num_features=RECIPE["hidden"], **common)
    elif method == "skada-dann-repaired":
        head = skada_domain_head(repaired=True, alpha=DANN_LAMBDA, num_features=RECIPE["hidden"])
        model = SkDANN(net, layer_name="hidden", reg=0.5, domain_classifier=head, **common)
    elif method == "skada-dan":
        model = SkDAN(net, layer_name="hidden", reg=DAN_LAMBDA, **common)
    elif method == "skada-coral":
        model = SkDeepCoral(net, layer_name="head", reg=CORAL_LAMBDA, **common)
    else:
        raise ValueError(method)
    X = np.concatenate([data["Xs"], data["Xt"]])
    y = np.concatenate([data["ys"], np.full(len(data["Xt"]), -1)])  # -1: SKADA's "no label"
    sample_domain = np.concatenate([np.full(len(data["Xs"]), 1), np.full(len(data["Xt"]), -2)])
    torch.manual_seed(seed)  # SKADA's sampler shuffles with torch's global generator
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, y, sample_domain=sample_domain)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    pred = model.predict(data["Xtest"], sample_domain=np.full(len(data["Xtest"]), -2))
    acc = float(np.mean(pred == data["ytest"]))
    return {
        "accuracy": acc,
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "predict_seconds": time.perf_counter() - t0,
    }


#: Comparison -> (our method, SKADA methods); each is run back to back, alternating who goes first.
COMPARISONS = {
    "dann": ("dann", ("skada-dann-default", "skada-dann-repaired")),
    "dan": ("dan", ("skada-dan",)),
    "dan-hidden": ("dan-hidden", ()),
    "coral": ("coral", ("skada-coral",)),
}


def load_pair(source: str, target: str) -> dict:
    task = load_task(f"amazon:{source}", f"amazon:{target}")
    s, t, test = preprocess("binary", task.source, task.target, task.target_test)
    return {"Xs": s.X, "ys": s.y.astype(np.int64), "Xt": t.X, "Xtest": test.X, "ytest": test.y}


# ---------------------------------------------------------------------------------- the mechanism


def check_domain_gradients(seed: int = 0) -> dict:
    """Gradient reaching SKADA's domain head and the features from one DANN loss, default vs repaired."""
    from skada.deep import DANNLoss

    out = {}
    for name, repaired in (("default", False), ("repaired", True)):
        torch.manual_seed(seed)
        head = skada_domain_head(repaired=repaired, alpha=1.0)
        h = torch.randn(128, 50, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = head(h)
        loss = DANNLoss()(d[:64], d[64:])
        loss.backward()
        out[name] = {
            "domain_output_range": [float(d.detach().min()), float(d.detach().max())],
            "domain_loss": float(loss),
            "head_grad_norm": float(torch.sqrt(sum((p.grad**2).sum() for p in head.parameters()))),
            "feature_grad_norm": float(h.grad.norm()),
        }
    return out


# ---------------------------------------------------------------------------------------- report


def _ms(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


#: The tables: per method, our columns and SKADA's; the speed-up is taken against the last SKADA column.
TABLES = {
    "DANN": (("dann",), ("skada-dann-default", "skada-dann-repaired")),
    "DAN": (("dan", "dan-hidden"), ("skada-dan",)),
    "Deep CORAL": (("coral",), ("skada-coral",)),
}
LABELS = {
    "dann": "ours",
    "skada-dann-default": "SKADA as shipped",
    "skada-dann-repaired": "SKADA, head repaired",
    "dan": "ours (hidden + logits)",
    "dan-hidden": "ours (hidden)",
    "skada-dan": "SKADA (hidden)",
    "coral": "ours (logits)",
    "skada-coral": "SKADA (logits)",
}


def summarise(records: list[dict]) -> str:
    """Markdown, one table per method: target accuracy (mean ± std over seeds), seconds per fit as
    wall (CPU), and the speed-up, SKADA's mean seconds over ours (2.0x: ours trains twice as fast).

    The average row averages the per-pair means; a column measured on fewer pairs than the table
    says over how many it averages.
    """
    pairs = [p for p in ALL_PAIRS if any((r["source"], r["target"]) == p for r in records)]

    def cell(method, pair):
        rs = [r for r in records if r["method"] == method and (r["source"], r["target"]) == pair]
        if not rs:
            return None
        keys = ("accuracy", "fit_seconds", "fit_cpu_seconds")
        return {"accs": [r["accuracy"] for r in rs], **{k: float(np.mean([r[k] for r in rs])) for k in keys}}

    blocks = []
    for title, (ours, theirs) in TABLES.items():
        methods = [m for m in (*ours, *theirs) if any(r["method"] == m for r in records)]
        if not methods:
            continue
        mine, ref = methods[0], theirs[-1] if theirs[-1] in methods else None
        head = ["pair", *(LABELS[m] for m in methods), *(f"{LABELS[m]} s/run" for m in methods)]
        if ref:
            head.append("speed-up")
        rows, per = [], {m: [] for m in methods}
        for p in pairs:
            cells = {m: cell(m, p) for m in methods}
            if cells[mine] is None:
                continue
            row = [f"{SHORT[p[0]]}->{SHORT[p[1]]}"]
            row += [_ms(c["accs"]) if c else "n/a" for c in cells.values()]
            row += [f"{c['fit_seconds']:.1f} ({c['fit_cpu_seconds']:.1f})" if c else "n/a" for c in cells.values()]
            if ref and cells[ref]:
                c0, c1 = cells[mine], cells[ref]
                sw, sc = c1["fit_seconds"] / c0["fit_seconds"], c1["fit_cpu_seconds"] / c0["fit_cpu_seconds"]
                row.append(f"{sw:.2f}x ({sc:.2f}x)")
            elif ref:
                row.append("n/a")
            rows.append(row)
            for m, c in cells.items():
                if c:
                    per[m].append(c)
        if len(rows) > 1:
            n = len(rows)
            row = [f"**average of {n}**"]
            for m in methods:
                note = "" if len(per[m]) == n else f" ({len(per[m])} pairs)"
                row.append(f"**{np.mean([c['accuracy'] for c in per[m]]):.4f}**{note}")
            for m in methods:
                row.append(
                    f"{np.mean([c['fit_seconds'] for c in per[m]]):.1f} "
                    f"({np.mean([c['fit_cpu_seconds'] for c in per[m]]):.1f})"
                )
            if ref:
                both = [(a, b) for a, b in zip(per[mine], per[ref], strict=False)] if len(per[ref]) == n else []
                if both:
                    sw = np.mean([b["fit_seconds"] for _, b in both]) / np.mean([a["fit_seconds"] for a, _ in both])
                    sc = np.mean([b["fit_cpu_seconds"] for _, b in both]) / np.mean(
                        [a["fit_cpu_seconds"] for a, _ in both]
                    )
                    row.append(f"**{sw:.2f}x** ({sc:.2f}x)")
                else:
                    row.append("n/a")
            rows.append(row)
        table = [head, ["---"] * len(head), *rows]
        blocks.append(f"{title}\n\n" + "\n".join("| " + " | ".join(r) + " |" for r in table))
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--pairs", choices=("four", "rest", "all"), default="four", help="B->D, D->E, E->K, K->B; the other 8; all 12"
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--comparisons", nargs="+", choices=list(COMPARISONS), default=list(COMPARISONS))
    ap.add_argument("--out", default=None, help="folder for skada_compare_PAIRS.json / .md")
    ap.add_argument("--check", action="store_true", help="only print the domain-head gradient check")
    ap.add_argument("--summarise", nargs="+", metavar="JSON", help="only print the tables of earlier runs' files")
    ap.add_argument(
        "--cold", type=int, metavar="N", help="only time N pairs of fresh processes, one DANN fit each (B->D)"
    )
    args = ap.parse_args(argv)
    if args.summarise:
        print(summarise([r for f in args.summarise for r in json.loads(Path(f).read_text())["runs"]]))
        return 0
    if args.cold:
        return cold_start(args.cold, args.out)

    torch.set_num_threads(1)
    import skada
    import skorch

    if args.check:
        print(json.dumps(check_domain_gradients(), indent=2))
        return 0
    warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")  # SKADA's default head

    env = {
        "transferkit": transferkit.__version__,
        "skada": skada.__version__,
        "skorch": skorch.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    print(json.dumps(env), file=sys.stderr)
    pairs = {"four": FOUR_PAIRS, "rest": [p for p in ALL_PAIRS if p not in FOUR_PAIRS], "all": ALL_PAIRS}[args.pairs]
    records: list[dict] = []
    t_start = time.perf_counter()
    for source, target in pairs:
        data = load_pair(source, target)
        for seed in range(args.seeds):
            for comp in args.comparisons:
                ours, theirs = COMPARISONS[comp]
                order = [("ours", ours)] + [("skada", m) for m in theirs]
                if seed % 2:  # alternate who goes first, so drift in machine load hits both
                    order = order[::-1]
                for side, method in order:
                    run = run_ours if side == "ours" else run_skada
                    rec = {"source": source, "target": target, "seed": seed, "side": side, "method": method}
                    rec.update(run(method, seed, data))
                    records.append(rec)
                    print(
                        f"[{time.perf_counter() - t_start:6.0f} s] {SHORT[source]}->{SHORT[target]} seed {seed} "
                        f"{method:<20} acc {rec['accuracy']:.4f}  fit {rec['fit_seconds']:.2f} s "
                        f"(CPU {rec['fit_cpu_seconds']:.2f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
        # after every pair, so a stopped run keeps what it measured
        save(args.out, f"skada_compare_{args.pairs}", env, records)
    print(summarise(records))
    return 0


def cold_start(repeats: int, out: str | None) -> int:
    """Whole processes, start to exit: ``transferkit run dann`` against ``skada_cold_script.py`` on
    books -> dvd with the same recipe, ``repeats`` pairs, alternating which goes first."""
    import subprocess

    from transferkit.datasets import data_dir

    folder = data_dir() / "amazon_reviews_dann"
    files = [str(folder / f) for f in ("books_train.svmlight", "dvd_train.svmlight", "dvd_test.svmlight")]
    ours = [sys.executable, "-m", "transferkit", "run", "dann", "--source", "amazon:books", "--target", "amazon:dvd"]
    ours += ["--preprocess", "binary", "--epochs", "30", "--lr", "1e-3", "--batch-size", "64", "--seed", "0"]
    ours += ["--set", "lambda_schedule=constant", "--set", f"lambda_max={DANN_LAMBDA}", "--set", "hidden=50", "-q"]
    theirs = [sys.executable, str(Path(__file__).with_name("skada_cold_script.py")), *files]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    records = []
    for i in range(repeats):
        order = [("ours", ours), ("skada", theirs)]
        for side, command in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - t0
            records.append({"side": side, "repeat": i, "seconds": seconds, "stdout_tail": done.stdout[-200:]})
            print(f"[cold {i}] {side:<5} {seconds:.2f} s", file=sys.stderr, flush=True)
    mean = {side: float(np.mean([r["seconds"] for r in records if r["side"] == side])) for side in ("ours", "skada")}
    summary = (
        f"cold start, books -> dvd, {repeats} pairs of processes: transferkit {mean['ours']:.2f} s, "
        f"SKADA {mean['skada']:.2f} s, ours / SKADA {mean['ours'] / mean['skada']:.2f}"
    )
    print(summary)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "skada_cold.json").write_text(json.dumps({"runs": records, "summary": summary}, indent=1))
    return 0


def save(out: str | None, name: str, env: dict, records: list[dict]) -> None:
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "domain_head_check": check_domain_gradients(), "runs": records}
    (Path(out) / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (Path(out) / f"{name}.md").write_text(summarise(records) + "\n")


if __name__ == "__main__":
    sys.exit(main())
