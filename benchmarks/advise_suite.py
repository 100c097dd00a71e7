"""``advise``'s negative-transfer verdicts, measured on the suite's tasks.

For each task and seed (the suite's data: at most 2000 samples per domain), ``k`` labelled target
samples per class are drawn from the target test split; they are what the user has. ``advise``
trains its quick source network on the labelled source and gives its verdict on those samples
(``check="probe"``: a classifier on the source network's features against one on the raw inputs,
paired folds, "likely positive" / "likely negative" beyond one standard error, else "uncertain").

The truth is the same comparison made where ``advise`` cannot look: the two classifiers, trained
on all ``k`` labelled samples per class, scored on the rest of the target test split (hundreds to
thousands of samples). A verdict is right when its sign matches the true gain's, with a gain within
0.5 points counted as a tie (neither verdict is wrong on a tie).

    python benchmarks/advise_suite.py --shots 5,20 --seeds 2 --out benchmarks/out/advise_suite.json

Prints Markdown tables (per task, then per number of shots); progress on stderr; resumes from --out.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _records import Records
from transferkit.advice import advise, transfer_gain
from transferkit.data import Domain
from transferkit.methods.source_only import SourceOnly
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table

TIE = 0.5  # points
PROBE = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))  # advise's own default probe


def draw_shots(test: Domain, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``k`` samples per class (the labelled target) and of the rest (where the truth is measured)."""
    rng = np.random.default_rng([seed, k])
    shots = np.concatenate([rng.permutation(np.flatnonzero(test.y == c))[:k] for c in np.unique(test.y)])
    return np.sort(shots), np.setdiff1d(np.arange(len(test)), shots)


def one(task, seed: int, k: int) -> dict:
    source, _, test = task_data(task, seed, 2000)
    shots, rest = draw_shots(test, k, seed)
    labelled = test.subset(shots)
    advice = advise({"source": source}, labelled, seed=seed)
    row = advice.ranking[0]
    # the truth: the same two probes, trained on every labelled shot, scored on the unseen rest; advise's
    # source network is the same seeded SourceOnly fit, so the features are those it judged
    net = SourceOnly(epochs=10, seed=seed, device="cpu").fit(source)
    flat = test.X.reshape(len(test), -1)
    features = net.transform(test.X)
    y = test.y
    transfer = clone(PROBE).fit(features[shots], y[shots]).score(features[rest], y[rest])
    alone = clone(PROBE).fit(flat[shots], y[shots]).score(flat[rest], y[rest])
    same = transfer_gain(features[shots], flat[shots], y[shots], seed=seed).gain
    if not np.isclose(same, row["gain"]):
        raise RuntimeError(f"{task.name}: the source network differs from advise's ({same} vs {row['gain']})")
    return {
        "task": task.name,
        "seed": seed,
        "k": k,
        "verdict": row["verdict"],
        "estimated_gain": row["gain"],
        "std_err": row["std_err"],
        "true_gain": transfer - alone,
        "transfer": transfer,
        "target_only": alone,
    }


def truth(gain: float) -> str:
    return "helps" if 100 * gain > TIE else "hurts" if 100 * gain < -TIE else "tie"


def right(verdict: str, gain: float) -> bool | None:
    """Whether a verdict was right; None for "uncertain" (no claim made)."""
    if verdict == "uncertain":
        return None
    return truth(gain) != ("hurts" if verdict == "likely positive" else "helps")


def tables(rows: list[dict]) -> str:
    per_task = []
    for r in rows:
        per_task.append(
            {
                "task": r["task"],
                "seed": r["seed"],
                "k": r["k"],
                "verdict": r["verdict"],
                "estimated gain": f"{100 * r['estimated_gain']:+.1f} ± {100 * r['std_err']:.1f}",
                "true gain": f"{100 * r['true_gain']:+.1f}",
                "right": {True: "yes", False: "NO", None: "-"}[right(r["verdict"], r["true_gain"])],
            }
        )
    summary = []
    for k in sorted({r["k"] for r in rows}):
        at = [r for r in rows if r["k"] == k]
        claims = [r for r in at if r["verdict"] != "uncertain"]
        losses = [r for r in at if truth(r["true_gain"]) == "hurts"]
        helps = [r for r in at if truth(r["true_gain"]) == "helps"]
        errors = [abs(r["estimated_gain"] - r["true_gain"]) for r in at]
        summary.append(
            {
                "shots per class": k,
                "runs": len(at),
                "verdicts given (not uncertain)": len(claims),
                "right / given": f"{sum(bool(right(r['verdict'], r['true_gain'])) for r in claims)}/{len(claims)}",
                "real losses flagged": f"{sum(r['verdict'] == 'likely negative' for r in losses)}/{len(losses)}",
                "real gains called positive": f"{sum(r['verdict'] == 'likely positive' for r in helps)}/{len(helps)}",
                "false alarms (negative on a gain)": sum(r["verdict"] == "likely negative" for r in helps),
                "mean |estimated - true| (points)": f"{100 * np.mean(errors):.1f}",
            }
        )
    return markdown_table(summary) + "\n\n" + markdown_table(per_task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", default="5,20", help="labelled target samples per class, comma-separated")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--tasks", default=None, help="task families or names, comma-separated (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/advise_suite.json"))
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    shots = [int(k) for k in args.shots.split(",")]
    only = None if args.tasks is None else [t.strip() for t in args.tasks.split(",")]
    records = Records(args.out, {"shots": shots, "seeds": args.seeds})
    for task in suite_tasks(only=only):
        for seed in range(args.seeds):
            for k in shots:
                r = records.ensure({"task": task.name, "seed": seed, "k": k}, one, task, seed, k)
                if r is None:
                    continue
                print(
                    f"[advise] {task.name} seed {seed} k={k}: {r['verdict']}, estimated "
                    f"{100 * r['estimated_gain']:+.1f}, true {100 * r['true_gain']:+.1f}",
                    file=sys.stderr,
                    flush=True,
                )
    print(tables(records.rows))


if __name__ == "__main__":
    main()
