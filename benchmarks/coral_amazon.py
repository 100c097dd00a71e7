r"""CORAL (Sun, Feng & Saenko, AAAI 2016) against no adaptation on Amazon reviews, 12 pairs, linear classifiers.

CORAL re-colours the labelled source with the target covariance and trains a classifier on it,
which is then applied to the unchanged target features (Algorithm 1 of the paper):

.. math::

    C_S = \mathrm{cov}(D_S) + \lambda I, \quad C_T = \mathrm{cov}(D_T) + \lambda I, \qquad
    A^\star = C_S^{-1/2} C_T^{1/2} = \arg\min_A \lVert A^\top C_S A - C_T \rVert_F^2, \qquad
    f = \mathrm{fit}(D_S A^\star, y_S), \quad \hat y_T = f(D_T),

with the paper's :math:`\lambda = 1` (``reg``). "No adaptation" is the same classifier fitted on
:math:`D_S` itself. Two settings, one command each:

``--features 5000``
    The DANN copy (``amazon:*``), the protocol of ``transferkit bench amazon``: the 2000 labelled
    reviews of ``<source>_train``, the 2000 unlabelled reviews of ``<target>_train`` (their
    covariance is :math:`C_T`), accuracy on ``<target>_test``; 5000-d unigram/bigram counts.
``--features 400``
    ``amazon400:*`` (Chen et al. 2012's top-400-word term frequencies, rows summing to 1), the
    transductive protocol of the CORAL and EasyTL papers: every source review labelled, every
    target review unlabelled for fitting and labelled for evaluation.

Input transforms (fitted on training inputs only, never on labels): ``binary`` (word present or not;
the DANN protocol), ``zscore-domain`` (:math:`(x - \mu_D) / \sigma_D` with each domain's own mean and
standard deviation, :math:`\sigma = 0 \to 1`; the target test split uses the target training
statistics: what the CORAL and EasyTL MATLAB code do with ``zscore``), ``standardize`` (one mean and
deviation from source and target training inputs pooled: ``--preprocess standardize`` of the
command line), ``none``. The paper's ridge of 1 is on the scale of unit-variance features; on binary
or term-frequency features (variances below 0.25) it dominates both covariances.

Classifiers: ``LR C=1`` (L2 logistic regression, lbfgs: deterministic, the seed changes nothing);
``LR C=CV`` (the same with C from {1e-6, 1e-5, ..., 1e4} by 5-fold cross-validated accuracy on the
labelled source, after the CORAL transform where there is one; the seed shuffles the folds). No
choice reads target labels. :math:`A^\star` depends on the pair and the input transform only, so it
is computed once (by ``CORAL.fit``, timed) and shared by every classifier and seed.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/coral_amazon.py --features 5000
    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/coral_amazon.py --features 400

Records go to ``--out`` (``coral_amazon_<features>.json``, rewritten after every pair; ``--resume``
skips the pairs already there) and the tables to ``coral_amazon_<features>.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from transferkit import CORAL, Domain
from transferkit.datasets import load_task
from transferkit.protocols.bench import AMAZON
from transferkit.report import markdown_table, mean_std, to_json
from transferkit.runs import preprocess

PAIRS = [(a, b) for a in AMAZON for b in AMAZON if a != b]
SHORT = {"books": "B", "dvd": "D", "electronics": "E", "kitchen": "K"}
#: C grid, wide: a useful C scales as 1 / ||x||^2, which is below 1 for term frequencies and ~5000 when z-scored.
CS = tuple(10.0**k for k in range(-6, 5))  # 1e-6 ... 1e4
REG = 1.0

#: Input transforms tried per setting, in table order.
PREPROCESS = {"5000": ("binary", "binary+zscore-domain"), "400": ("none", "zscore-domain", "standardize")}

#: benchmarks/RESULTS.md, "DANN on Amazon reviews": our shallow networks on the same 5000-d protocol
#: (binarised inputs), mean over seeds 0-4: (source-only, DANN).
NETWORKS = {
    ("books", "dvd"): (0.7961, 0.8136),
    ("books", "electronics"): (0.7343, 0.8006),
    ("books", "kitchen"): (0.7652, 0.8176),
    ("dvd", "books"): (0.7459, 0.7894),
    ("dvd", "electronics"): (0.7389, 0.7993),
    ("dvd", "kitchen"): (0.7694, 0.8167),
    ("electronics", "books"): (0.7062, 0.7366),
    ("electronics", "dvd"): (0.7152, 0.7673),
    ("electronics", "kitchen"): (0.8470, 0.8584),
    ("kitchen", "books"): (0.7153, 0.7548),
    ("kitchen", "dvd"): (0.7367, 0.7727),
    ("kitchen", "electronics"): (0.8504, 0.8509),
}

#: Sun, Feng & Saenko, AAAI 2016, the sentiment table (four pairs, 400-word bag of words), as transcribed
#: in Wilson & Cook, "A Survey of Unsupervised Deep Domain Adaptation", ACM TIST 2020, Table 4 (columns
#: "CORAL [225]" and "No Adapt. [225]"), percent: (no adaptation, CORAL).
CORAL_PAPER = {
    ("books", "electronics"): (74.7, 76.3),
    ("dvd", "books"): (76.9, 78.3),
    ("electronics", "kitchen"): (82.8, 83.6),
    ("kitchen", "dvd"): (72.2, 73.9),
}


# ----------------------------------------------------------------------------------- inputs
def zscore_domain(source: Domain, target: Domain, target_test: Domain) -> tuple[Domain, Domain, Domain]:
    """Each domain standardised with its own training statistics (MATLAB ``zscore(X, 1)`` per domain)."""

    def stats(X):
        sd = X.std(0)
        return X.mean(0), np.where(sd > 0, sd, 1.0)

    (mu_s, sd_s), (mu_t, sd_t) = stats(source.X), stats(target.X)
    return (
        Domain((source.X - mu_s) / sd_s, source.y, source.name),
        Domain((target.X - mu_t) / sd_t, target.y, target.name),
        Domain((target_test.X - mu_t) / sd_t, target_test.y, target_test.name),
    )


def transform_inputs(name: str, source: Domain, target: Domain, target_test: Domain):
    data = (source, target, target_test)
    for step in name.split("+"):
        data = zscore_domain(*data) if step == "zscore-domain" else preprocess(step, *data)
    return data


# ------------------------------------------------------------------------------ classifiers
def folds(seed: int) -> StratifiedKFold:
    return StratifiedKFold(5, shuffle=True, random_state=seed)


#: label -> factory(seed) of an unfitted scikit-learn classifier
CLASSIFIERS = {
    "LR C=1": lambda seed: LogisticRegression(C=1.0, max_iter=10000),
    "LR C=CV": lambda seed: LogisticRegressionCV(
        Cs=list(CS), cv=folds(seed), scoring="accuracy", l1_ratios=(0.0,), use_legacy_attributes=False, max_iter=10000
    ),
}


def chosen_c(clf) -> float:
    if isinstance(clf, LogisticRegressionCV):
        return float(clf.C_)
    return float(clf.C)


def fit_score(clf, Xs, ys, Xt, yt) -> dict:
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(Xs, ys)
    seconds = time.perf_counter() - t0
    return {
        "accuracy": float(np.mean(clf.predict(Xt) == yt)),
        "C": chosen_c(clf),
        "seconds": round(seconds, 3),
        "convergence_warnings": sum(issubclass(w.category, ConvergenceWarning) for w in caught),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --------------------------------------------------------------------------------------- runs
def run_pair(features: str, source: str, target: str, seeds: list[int]) -> list[dict]:
    """Every (input transform, method, classifier, seed) cell of one pair."""
    family = "amazon" if features == "5000" else "amazon400"
    task = load_task(f"{family}:{source}", f"{family}:{target}")
    records = []
    for prep in PREPROCESS[features]:
        src, tgt, test = transform_inputs(prep, task.source, task.target, task.target_test)
        Xs, Xt = src.X.astype(np.float64), test.X.astype(np.float64)
        base = {"features": features, "source": source, "target": target, "preprocess": prep}
        # the library's code path, timed: CORAL.fit computes A* and fits the first classifier on D_S A*
        t0 = time.perf_counter()
        coral = CORAL(estimator=LogisticRegression(C=1.0, max_iter=10000), reg=REG).fit(src, tgt)
        coral_seconds = time.perf_counter() - t0
        coral_acc = coral.score(test)
        Xs_aligned = Xs @ coral.A_
        for label, make in CLASSIFIERS.items():
            for seed in seeds:
                for method, X_train in (("no adaptation", Xs), ("CORAL", Xs_aligned)):
                    rec = fit_score(make(seed), X_train, src.y, Xt, test.y)
                    rec.update(base, method=method, classifier=label, seed=seed)
                    if method == "CORAL":
                        rec["coral_fit_seconds"] = round(coral_seconds, 1)
                        if label == "LR C=1":  # same classifier as inside CORAL.fit: must agree
                            rec["coral_score"] = coral_acc
                    records.append(rec)
        print(
            f"{source} -> {target} [{prep}]: CORAL fit {coral_seconds:.1f} s, peak RSS {peak_rss_mb():.0f} MB; "
            + "; ".join(
                f"{r['method']}/{r['classifier']} {r['accuracy']:.4f}"
                for r in records[-2 * len(CLASSIFIERS) * len(seeds) :]
                if r["seed"] == seeds[0]
            ),
            file=sys.stderr,
            flush=True,
        )
        del coral, Xs_aligned
    return records


# ------------------------------------------------------------------------------------- tables
def cell(accs: list[float], percent: bool = False) -> str:
    """Mean ± sample std over seeds; one number where every seed gave the same accuracy."""
    a = np.asarray(accs) * (100 if percent else 1)
    if np.all(a == a[0]):
        return f"{a[0]:.2f}" if percent else f"{a[0]:.4f}"
    return mean_std(a) if not percent else f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"


def select(records, **kw):
    return [r for r in records if all(r[k] == v for k, v in kw.items())]


def pair_table(records: list[dict], features: str, prep: str) -> str:
    labels = list(CLASSIFIERS)
    percent = features == "400"
    rows, means = [], {}
    for s, t in PAIRS:
        recs = select(records, source=s, target=t, preprocess=prep)
        if not recs:
            continue
        row = {"pair": f"{SHORT[s]}->{SHORT[t]}"}
        for label in labels:
            for method in ("no adaptation", "CORAL"):
                accs = [r["accuracy"] for r in select(recs, classifier=label, method=method)]
                row[f"{method}, {label}"] = cell(accs, percent)
                means.setdefault((method, label), []).append(np.mean(accs) * (100 if percent else 1))
        row["CORAL fit s"] = f"{select(recs, method='CORAL')[0]['coral_fit_seconds']:.1f}"
        if features == "5000":
            row["source-only net"], row["DANN net"] = (f"{v:.4f}" for v in NETWORKS[(s, t)])
        elif (s, t) in CORAL_PAPER:
            row["paper: NA / CORAL"] = "{:.1f} / {:.1f}".format(*CORAL_PAPER[(s, t)])
        rows.append(row)
    if len(rows) > 1:
        avg = {"pair": f"**average of {len(rows)}**"}
        for (method, label), v in means.items():
            avg[f"{method}, {label}"] = f"**{np.mean(v):.2f}**" if percent else f"**{np.mean(v):.4f}**"
        if features == "5000" and len(rows) == len(PAIRS):
            nets = np.array(list(NETWORKS.values())).mean(0)
            avg["source-only net"], avg["DANN net"] = f"{nets[0]:.4f}", f"{nets[1]:.4f}"
        rows.append(avg)
    columns = list(dict.fromkeys(k for r in rows for k in r))  # some columns fill only a few rows
    return markdown_table(rows, columns)


def summary_table(records: list[dict], features: str) -> str:
    """Every configuration tried: 12-pair average, CORAL minus no adaptation, pairs won, C chosen."""
    rows = []
    percent = features == "400"
    scale = 100 if percent else 1
    for prep in PREPROCESS[features]:
        for label in CLASSIFIERS:
            per_pair = {}
            for s, t in PAIRS:
                recs = select(records, source=s, target=t, preprocess=prep, classifier=label)
                if recs:
                    na = np.mean([r["accuracy"] for r in recs if r["method"] == "no adaptation"])
                    co = np.mean([r["accuracy"] for r in recs if r["method"] == "CORAL"])
                    per_pair[(s, t)] = (na * scale, co * scale)
            if not per_pair:
                continue
            na, co = np.array(list(per_pair.values())).T
            cs = select(records, preprocess=prep, classifier=label)
            fmt = "{:.2f}" if percent else "{:.4f}"
            rows.append(
                {
                    "input": prep,
                    "classifier": label,
                    "no adaptation": fmt.format(na.mean()),
                    "CORAL": fmt.format(co.mean()),
                    "CORAL - NA": ("{:+.2f}" if percent else "{:+.4f}").format(co.mean() - na.mean()),
                    "pairs CORAL > NA": f"{int((co > na).sum())} / {len(na)}",
                    "C chosen (NA; CORAL)": c_summary(cs),
                    "convergence warnings": sum(r["convergence_warnings"] for r in cs),
                }
            )
    return markdown_table(rows)


def c_summary(recs: list[dict]) -> str:
    parts = []
    for method in ("no adaptation", "CORAL"):
        values, counts = np.unique([r["C"] for r in recs if r["method"] == method], return_counts=True)
        parts.append(
            ", ".join(f"{v:g}" + (f" x{c}" if len(values) > 1 else "") for v, c in zip(values, counts, strict=True))
        )
    return "; ".join(parts)


def report(records: list[dict], features: str) -> str:
    n_seeds = len({r["seed"] for r in records})
    fit = [r["coral_fit_seconds"] for r in records if r["method"] == "CORAL"]
    out = [f"Seeds: {n_seeds}. CORAL fit (`CORAL.fit`: both covariances, two eigendecompositions, first classifier):"]
    out.append(f"{np.min(fit):.1f}-{np.max(fit):.1f} s per pair and input transform.\n")
    for prep in PREPROCESS[features]:
        out += [f"### {prep}\n", pair_table(records, features, prep) + "\n"]
    out += ["### every configuration tried (average of the pairs run)\n", summary_table(records, features)]
    return "\n".join(out)


def fit_time() -> None:
    """One ``CORAL().fit`` on books -> dvd, raw 5000-d counts as shipped: seconds and target accuracy."""
    from transferkit import CORAL
    from transferkit.datasets import load_domain

    source, target = load_domain("amazon:books", "train"), load_domain("amazon:dvd", "train")
    t0 = time.perf_counter()
    model = CORAL().fit(source, target.unlabelled())
    seconds = time.perf_counter() - t0
    print(f"CORAL().fit, books -> dvd, 5000-d: {seconds:.1f} s, target accuracy "
          f"{model.score(load_domain('amazon:dvd', 'test')):.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit-time", action="store_true", help="only time one CORAL fit on books -> dvd")
    parser.add_argument("--features", choices=("5000", "400"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pairs", nargs="*", help="e.g. books:dvd (default: all 12)")
    parser.add_argument("--out", default="benchmarks/out")
    parser.add_argument("--resume", action="store_true", help="keep the pairs already in the JSON file")
    args = parser.parse_args()
    if args.fit_time:
        return fit_time()
    if args.features is None:
        parser.error("--features is required (or --fit-time)")
    pairs = [tuple(p.split(":")) for p in args.pairs] if args.pairs else PAIRS
    for p in pairs:
        if p not in PAIRS:
            parser.error(f"--pairs {':'.join(p)}: expected SOURCE:TARGET from {', '.join(AMAZON)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"coral_amazon_{args.features}.json"
    records = json.loads(path.read_text()) if args.resume and path.exists() else []
    done = {(r["source"], r["target"]) for r in records}
    t0 = time.perf_counter()
    for source, target in pairs:
        if (source, target) in done:
            continue
        records += run_pair(args.features, source, target, list(range(args.seeds)))
        path.write_text(to_json(records))
        print(f"[{time.perf_counter() - t0:.0f} s] {source} -> {target} done", file=sys.stderr, flush=True)
    text = report(records, args.features)
    (out / f"coral_amazon_{args.features}.md").write_text(text + "\n")
    print(text)
    print(f"peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
