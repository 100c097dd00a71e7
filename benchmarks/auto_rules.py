"""Auto's decision rule, studied on the fits it makes: which validator, how sure, refit or not.

For each suite task and seed, every candidate of ``Auto()`` is fitted exactly as ``Auto.fit`` fits
it (80 % of the source and the unlabelled target; :meth:`transferkit.Auto.candidate_evidence`), and
what any rule may read is kept per held-out row: the class probabilities, the label, and the
importance weights of the row in the candidate's own feature space. The accuracy of each fitted
model on the target test split is kept beside it, for scoring the rules afterwards, never for a rule.

Rules are then replayed offline (``--rules``) and chosen by leave-one-data-set-out: for each
data set, the rule with the best mean gain over source-only on the *other* data sets is scored on
it. Beside the rules that pick one candidate are those that combine them (``ENSEMBLES``: Auto's vote,
with and without its veto, and Dinu et al.'s least-squares aggregation), and the oracle, the best
candidate by the test labels: a ceiling, which the leave-one-out choice never takes. The chosen
rule's accuracy is that of the model the rule picked (or of the vote of the models), fitted on 80 %
of the source (Auto's ``refit=False``); Auto's own runs in the suite's records show what the refit
on the whole source costs or gains.

    python benchmarks/auto_rules.py --tasks synthetic,mushroom,newsgroups,amazon400 --seeds 3 \\
        --out benchmarks/out/auto_rules            # fits, about 35 min on one core
    python benchmarks/auto_rules.py --out benchmarks/out/auto_rules --rules   # the replay, seconds
    python benchmarks/auto_rules.py --tasks "amazon,digits16,rotmnist,digits,mnist->mnist-m" --seeds 1 \\
        --out benchmarks/out/auto_rules_heldout   # the data sets the rule was not chosen on, about 55 min
    python benchmarks/auto_rules.py --out benchmarks/out/auto_rules benchmarks/out/auto_rules_heldout --rules

``--add cdan`` fits a further method over its suite grid as more candidates of each saved unit (on the
same split: source-only is refitted and must match), and with ``--rules`` lets them join the rules and
the vote; the replay then also scores the vote of Auto's default candidates alone, on the same units.

Progress on stderr; the fits resume from --out (one .npz per task and seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from transferkit import Auto, SourceOnly
from transferkit.methods.auto import DEFAULT_CANDIDATES
from transferkit.protocols.suite import GRIDS, suite_tasks, task_data
from transferkit.report import markdown_table
from transferkit.selection import split_source
from transferkit.selection.validators import Terms, density_ratio, dev_risk, prob_better

TIE = 0.5  # points


def fit_unit(task, seed: int, path: Path) -> None:
    """Fit Auto's candidates on one task and seed; save what the rules read and each model's test accuracy."""
    source, target, test = task_data(task, seed, 2000)
    auto = Auto(seed=seed)
    arrays, meta = {}, []
    for _, candidate, model, e, _ in auto.candidate_evidence(source, target):
        _keep(arrays, meta, candidate, model, e, test, f"{task.name} seed {seed}", seed)
        arrays["y"] = e.source_y  # the same held-out rows for every candidate
        arrays["test_y"] = np.asarray(test.y)  # only for scoring the rules afterwards
    # the same weights for every candidate: the density ratio of the held-out source rows on the raw inputs
    _, val = split_source(source, auto.val_fraction, seed)  # the rows candidate_evidence held out
    arrays["w_input"] = density_ratio(_dense(val.X), _dense(target.X), seed).astype(np.float32)
    meta = {"task": task.name, "seed": seed, "candidates": meta, "baseline": baseline(source, test, seed)}
    arrays["meta"] = np.array(json.dumps(meta))
    _save(path, arrays)


def fit_added(task, seed: int, path: Path, method: str) -> None:
    """Fit ``method`` over its suite grid as one more of Auto's candidates on a unit saved by :func:`fit_unit`,
    into a file beside it. Source-only is fitted again first: its held-out probabilities must equal the
    saved ones, so the added candidates share the unit's split and rows."""
    unit = np.load(path, allow_pickle=False)
    source, target, test = task_data(task, seed, 2000)
    auto = Auto(seed=seed, candidates={method: GRIDS[method]})
    arrays, meta = {}, []
    for i, candidate, model, e, _ in auto.candidate_evidence(source, target):
        if i == 0:
            if not np.allclose(e.source_proba, unit["proba0"], atol=1e-4) or not np.array_equal(e.source_y, unit["y"]):
                raise SystemExit(f"{path}: source-only refitted differs from the saved fit; the units cannot be joined")
            continue
        _keep(arrays, meta, candidate, model, e, test, f"{task.name} seed {seed}", seed)
    arrays["meta"] = np.array(json.dumps({"task": task.name, "seed": seed, "candidates": meta}))
    _save(_added_path(path, method), arrays)


def _keep(arrays: dict, meta: list, candidate, model, e, test, label: str, seed: int) -> None:
    """Add one fitted candidate, as number ``len(meta)``: what the rules read, and its test accuracy beside it."""
    (name, params, prep), j = candidate, len(meta)
    arrays[f"proba{j}"] = e.source_proba.astype(np.float32)
    arrays[f"w{j}"] = density_ratio(e.source_features, e.target_features, seed).astype(np.float32)
    arrays[f"test_pred{j}"] = model.predict(test.X)
    accuracy = float(np.mean(arrays[f"test_pred{j}"] == test.y))
    meta.append({"method": name, "params": params, "preprocess": prep, "accuracy": accuracy})
    print(f"[auto-rules] {label} {name} {params}: {accuracy:.4f}", file=sys.stderr, flush=True)


def _added_path(path: Path, method: str) -> Path:
    return path.with_name(f"{path.stem}.{method}.npz")


def _dense(X) -> np.ndarray:
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    return X.reshape(len(X), -1)


def baseline(source, test, seed: int) -> float:
    """What the rules are compared with: source-only fitted on the whole source (what users would otherwise run)."""
    return float(SourceOnly(seed=seed).fit(source).score(test))


def _save(path: Path, arrays: dict) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def backfill(task, seed: int, path: Path) -> None:
    """Add the whole-source baseline and the test labels to a unit saved without them."""
    z = np.load(path, allow_pickle=False)
    arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if "baseline" in meta and "test_y" in arrays:
        return
    source, _, test = task_data(task, seed, 2000)
    if "baseline" not in meta:
        meta["baseline"] = baseline(source, test, seed)
    arrays["test_y"] = np.asarray(test.y)
    arrays["meta"] = np.array(json.dumps(meta))
    _save(path, arrays)


# --- the rules: each maps one unit's saved evidence to the index of the candidate it keeps (0: source-only)


def _ce(u, i):
    return -np.log(np.clip(u[f"proba{i}"][np.arange(len(u["y"])), u["y"]], 1e-12, None))


def _err(u, i):
    return (u[f"proba{i}"].argmax(1) != u["y"]).astype(np.float64)


def dev_terms(u, i, loss, weights=None) -> Terms:
    """DEV of candidate ``i`` with the weights of its own features, or those saved as ``weights`` for all."""
    w, losses = u[weights or f"w{i}"].astype(np.float64), loss(u, i)
    return Terms("source", len(w), lambda idx: -dev_risk(w[idx], losses[idx]))


def shared(weights: str):
    """DEV with one set of weights for every candidate, so that an adapted model's aligned features cannot
    flatten its own weights: ``"w0"`` (source-only's features) or ``"w_input"`` (the raw inputs)."""
    return lambda u, i, loss: dev_terms(u, i, loss, weights)


def iwv_terms(u, i, loss) -> Terms:
    w, losses = u[f"w{i}"].astype(np.float64), loss(u, i)
    return Terms("source", len(w), lambda idx: -float(np.sum(w[idx] * losses[idx]) / np.sum(w[idx])))


def source_terms(u, i, loss) -> Terms:
    losses = loss(u, i)
    return Terms("source", len(losses), lambda idx: -float(np.mean(losses[idx])))


SCORES = {"dev": dev_terms, "iwv": iwv_terms, "source": source_terms}
SHARED = {"dev@source-only": shared("w0"), "dev@inputs": shared("w_input")}
LOSSES = {"ce": _ce, "01": _err}


def rule(score: str, loss: str, confidence: float, methods=None):
    def choose(u, meta, seed):
        n = len(meta)
        terms = [SCORES[score](u, i, LOSSES[loss]) for i in range(n)]
        scores = [t.score() for t in terms]
        ok = [i for i in range(1, n) if methods is None or meta[i]["method"] in methods]
        best = max(ok, key=lambda i: scores[i])
        if scores[best] <= scores[0]:
            return 0
        if confidence > 0.5 and prob_better(terms[best], terms[0], 300, seed) < confidence:
            return 0
        return best

    return choose


def guarded(confidence: float):
    """DEV on the cross-entropy decides, as ``rule("dev", "ce", confidence)``; the 0-1 loss may veto: the
    candidate is kept only if DEV's estimate of its error rate is not above source-only's."""
    first = rule("dev", "ce", confidence)

    def choose(u, meta, seed):
        pick = first(u, meta, seed)
        if pick == 0:
            return 0
        error = [-dev_terms(u, i, _err).score() for i in (0, pick)]
        return pick if error[1] <= error[0] else 0

    return choose


def tie_broken(confidence: float, score: str = "dev"):
    """DEV on the 0-1 loss decides, as ``rule(score, "01", confidence)``, unless it cannot tell the
    candidates apart at all (every estimated error rate the same, as on a source fitted perfectly):
    then DEV on the cross-entropy decides."""
    by_error, by_ce = rule(score, "01", confidence), rule(score, "ce", confidence)

    def choose(u, meta, seed):
        errors = {round(-SCORES[score](u, i, _err).score(), 12) for i in range(len(meta))}
        return by_ce(u, meta, seed) if len(errors) == 1 else by_error(u, meta, seed)

    return choose


RULES = {f"{s}-{loss} conf {c}": rule(s, loss, c) for s in SCORES for loss in LOSSES for c in (0.5, 0.8, 0.9, 0.95)}
RULES.update({f"dev-ce conf {c}, vetoed by dev-01": guarded(c) for c in (0.5, 0.8, 0.9, 0.95)})
RULES.update({f"dev-01 conf {c}, ties to dev-ce": tie_broken(c) for c in (0.8, 0.9)})


def source_vetoed(confidence: float, veto: float):
    """Auto's rule (``tie_broken(confidence)``), and source-only is kept whenever it classifies the held-out
    source better than the pick in at least ``veto`` of the paired resamples: an adapted model must not buy
    its estimated target gain with a source loss that is itself beyond doubt."""
    first = tie_broken(confidence)

    def choose(u, meta, seed):
        pick = first(u, meta, seed)
        if pick == 0:
            return 0
        worse = prob_better(source_terms(u, 0, _err), source_terms(u, pick, _err), 300, seed)
        return 0 if worse >= veto else pick

    return choose


RULES.update({f"dev-01 conf 0.8, ties to dev-ce, source veto {v}": source_vetoed(0.8, v) for v in (0.8, 0.9, 0.95)})
SCORES.update(SHARED)
RULES.update({f"{s}-{loss} conf {c}": rule(s, loss, c) for s in SHARED for loss in LOSSES for c in (0.5, 0.8, 0.9)})
RULES.update({f"{s}-01 conf {c}, ties to {s}-ce": tie_broken(c, s) for s in SHARED for c in (0.8, 0.9)})


# --- the vote (Auto's combine="vote"): every candidate votes, unless source-only beats the vote beyond a veto


def _majority(labels: list[np.ndarray]) -> np.ndarray:
    """Each row's most frequent label (a tie goes to the smallest), as Auto's vote predicts."""
    classes = np.unique(np.concatenate(labels))
    shares = sum((lab[:, None] == classes[None]).astype(np.float64) for lab in labels)
    return classes[shares.argmax(1)]


def voted(veto: float | None, methods=None):
    """The vote's target accuracy, or source-only's where DEV of the error rate (in source-only's features,
    ``w0``) finds source-only better than the vote in at least ``veto`` of the paired resamples. ``methods``:
    the candidates that vote (source-only always does); every candidate by default."""

    def accuracy(u, meta, seed) -> float:
        keep = [i for i, c in enumerate(meta) if i == 0 or methods is None or c["method"] in methods]
        u = {**u, **{f"{k}{j}": u[f"{k}{i}"] for j, i in enumerate(keep) for k in ("proba", "test_pred")}}
        meta = [meta[i] for i in keep]
        n = len(meta)
        if veto is not None:
            held_out = _majority([u[f"proba{i}"].argmax(1) for i in range(n)])
            w = u["w0"].astype(np.float64)
            errors = [(_err(u, 0)), (held_out != u["y"]).astype(np.float64)]
            t0, t_vote = (Terms("source", len(w), lambda i, e=e: -dev_risk(w[i], e[i])) for e in errors)
            if prob_better(t0, t_vote, 300, seed) >= veto:
                return meta[0]["accuracy"]
        return float(np.mean(_majority([u[f"test_pred{i}"] for i in range(n)]) == u["test_y"]))

    return accuracy


def least_squares(u, meta, seed) -> float:
    """Dinu et al.'s importance-weighted aggregation (ICLR 2023) on the candidates' predicted labels: weights
    c = G^+ g with G_kl the target rows' mean of <h_k, h_l> (one-hot predictions) and g_k the held-out source
    rows' mean of w0 [h_k(x) = y]; the prediction is the class with the largest sum of c_k h_k."""
    n = len(meta)
    preds = [u[f"test_pred{i}"] for i in range(n)]
    classes = np.unique(np.concatenate(preds))
    H = np.stack([(p[:, None] == classes[None]).astype(np.float64) for p in preds])  # k, rows, classes
    G = np.einsum("krc,lrc->kl", H, H) / H.shape[1]
    w = u["w0"].astype(np.float64)
    g = np.array([np.mean(w * (1.0 - _err(u, i))) for i in range(n)])
    c = np.linalg.lstsq(G, g, rcond=None)[0]
    return float(np.mean(classes[np.einsum("k,krc->rc", c, H).argmax(1)] == u["test_y"]))


def oracle(u, meta, seed) -> float:
    """The best single candidate in hindsight, read off the target test labels: a ceiling, never a rule."""
    return max(c["accuracy"] for c in meta)


#: Auto's default candidates, the vote's members when added methods' candidates are loaded beside them.
DEFAULT = tuple(DEFAULT_CANDIDATES)

ENSEMBLES = {
    "vote of every candidate": voted(None),
    "vote of Auto's default candidates": voted(None, DEFAULT),
    **{f"vote, veto {v}": voted(v) for v in (0.8, 0.9, 0.95, 0.99)},
    "least-squares aggregation (Dinu et al.) of the predicted labels": least_squares,
    "oracle: the best candidate in hindsight (a ceiling)": oracle,
}


def load(folder: Path, added: tuple[str, ...] = ()) -> list[tuple[dict, dict]]:
    """Every unit saved in ``folder``, with the candidates of the ``added`` methods appended after Auto's own
    (a unit missing one of them is left out, so that every rule sees the same candidates on every unit)."""
    units = []
    for f in sorted(folder.glob("*_seed[0-9].npz")):
        z = np.load(f, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        u = {k: z[k] for k in z.files if k != "meta"}
        extra = [_added_path(f, m) for m in added]
        if not all(p.exists() for p in extra):
            print(f"[auto-rules] {f.name}: no fits of {added}; left out", file=sys.stderr)
            continue
        for p in extra:
            za = np.load(p, allow_pickle=False)
            n = len(meta["candidates"])
            for j, c in enumerate(json.loads(str(za["meta"]))["candidates"]):
                for key in ("proba", "w", "test_pred"):
                    u[f"{key}{n + j}"] = za[f"{key}{j}"]
                meta["candidates"].append(c)
        units.append((meta, u))
    return units


def replay(units, against: str = "split") -> dict[str, list[tuple[str, str, int, float]]]:
    """Per rule: (data set, task, seed, gain in points over source-only) for every unit.

    ``against="split"``: over source-only fitted on the same 80 % of the source, the comparison the rule
    makes, and the gain that a refit on the whole source carries over (``Auto(refit=True)``).
    ``against="whole"``: the picked model as it is (``refit=False``) over source-only on the whole source.
    """
    out = {}
    for name, choose in RULES.items():
        rows = []
        for meta, u in units:
            cands = meta["candidates"]
            pick = choose(u, cands, meta["seed"])
            base = cands[0]["accuracy"] if against == "split" else meta["baseline"]
            # keeping source-only is the baseline itself
            gain = 0.0 if pick == 0 else 100 * (cands[pick]["accuracy"] - base)
            rows.append((meta["task"].split()[0], meta["task"], meta["seed"], gain))
        out[name] = rows
    for name, accuracy in ENSEMBLES.items():
        rows = []
        for meta, u in units:
            base = meta["candidates"][0]["accuracy"] if against == "split" else meta["baseline"]
            gain = 100 * (accuracy(u, meta["candidates"], meta["seed"]) - base)
            rows.append((meta["task"].split()[0], meta["task"], meta["seed"], gain))
        out[name] = rows
    return out


def _summary(gains) -> str:
    g = np.array(gains)
    return f"{g.mean():+.2f} ({(g > TIE).sum()}/{(abs(g) <= TIE).sum()}/{(g < -TIE).sum()}, worst {g.min():+.1f})"


def _task_means(rows) -> dict[str, float]:
    by = {}
    for _, task, _, g in rows:
        by.setdefault(task, []).append(g)
    return {t: float(np.mean(v)) for t, v in by.items()}


def choose_rule(results: dict, keep) -> str:
    """The rule that meets the goals best on the data sets ``keep`` accepts: the highest mean gain among the
    rules that lose no more than 0.5 points on any task (mean over seeds); if none does, the smallest worst loss."""

    def stats(name):
        rows = [r for r in results[name] if keep(r[0])]
        return np.mean([r[3] for r in rows]), min(_task_means(rows).values())

    scored = {name: stats(name) for name in results}
    safe = [n for n, (_, worst) in scored.items() if worst >= -TIE]
    if safe:
        return max(safe, key=lambda n: scored[n][0])
    return max(scored, key=lambda n: scored[n][1])


def report(units, against: str = "split") -> str:
    results = replay(units, against)
    families = sorted({r[0] for r in next(iter(results.values()))})
    table = []
    for name, rows in results.items():
        tm = _task_means(rows)
        table.append(
            {
                "rule": name,
                "units: mean (W/T/L, worst)": _summary([r[3] for r in rows]),
                "worst task (mean over seeds)": f"{min(tm.values()):+.1f}",
                **{f: f"{np.mean([r[3] for r in rows if r[0] == f]):+.2f}" for f in families},
            }
        )
    if len(families) < 2:  # nothing to leave out
        return markdown_table(table)
    lodo = []
    for held in families:
        rules = {name: rows for name, rows in results.items() if not name.startswith("oracle")}  # reads labels
        chosen = choose_rule(rules, lambda f, held=held: f != held)
        there = [r for r in results[chosen] if r[0] == held]
        lodo.append(
            {
                "held out": held,
                "rule chosen on the others": chosen,
                "its gain there (mean over units)": f"{np.mean([r[3] for r in there]):+.2f}",
                "worst task there": f"{min(_task_means(there).values()):+.1f}",
            }
        )
    return markdown_table(table) + "\n\nLeave one data set out:\n\n" + markdown_table(lodo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="synthetic,mushroom,newsgroups,amazon400")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        nargs="+",
        default=[Path("benchmarks/out/auto_rules")],
        help="one folder to fit into; "
        "with --rules, every folder given is replayed together (data sets left out in turn across all of them)",
    )
    parser.add_argument("--rules", action="store_true", help="replay the rules on the saved fits")
    parser.add_argument(
        "--add",
        default="",
        help="comma-separated methods of the suite's grids (e.g. cdan) fitted as further candidates beside each "
        "saved unit; with --rules, their candidates join every rule's and the vote's",
    )
    parser.add_argument(
        "--against",
        choices=("split", "whole"),
        default="split",
        help="gains over source-only on the same 80 %% (refit=True carries them over) or, for the picked model "
        "as it is (refit=False), over source-only on the whole source",
    )
    args = parser.parse_args()
    added = tuple(m.strip() for m in args.add.split(",") if m.strip())
    unknown = [m for m in added if m not in GRIDS or m == "source-only"]
    if unknown:
        known = sorted(set(GRIDS) - {"source-only"})
        parser.error(f"--add names {unknown}; expected methods of the suite's grids: {known}")
    if args.rules:
        print(report([unit for folder in args.out for unit in load(folder, added)], args.against))
        return
    if len(args.out) > 1:
        parser.error("--out: the fits go into one folder; several are for --rules only.")
    args.out = args.out[0]
    args.out.mkdir(parents=True, exist_ok=True)
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        for seed in range(args.seeds):
            path = args.out / f"{task.name.replace(' ', '_').replace('>', '')}_seed{seed}.npz"
            if not path.exists():
                fit_unit(task, seed, path)
            else:
                backfill(task, seed, path)
            for method in added:
                if not _added_path(path, method).exists():
                    fit_added(task, seed, path, method)


if __name__ == "__main__":
    main()
