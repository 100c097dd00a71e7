"""``auto`` on the suite: how its validator was chosen, and what it gives on every task.

Two tables from the suite's records (``transferkit bench suite``; ``auto`` is one of its methods):

1. **Which validator** (chosen on ``--choose-on``, checked on ``--check-on``). Auto's rule is
   replayed on the recorded grids of its default candidates (DANN, DAN, Deep CORAL, each at four
   weights, fitted on 80 % of the source): the candidate with the best validator score is taken when
   it scores above source-only's (also recorded), else source-only is kept. The paired bootstrap
   needs per-sample terms the records do not hold, so this replay is the rule at confidence 0.5.
2. **Auto's own runs** (method ``auto`` in the records, its defaults: ``dev``, confidence 0.9,
   refitted on the whole source): accuracy, gain over source-only, what it chose and how sure it was,
   per task; then the mean gain, wins / ties / losses and the worst loss, against the best
   single method's defaults and the oracle over all of auto's candidates.

    python benchmarks/suite_auto.py benchmarks/records/suite_full_seed0.json \\
        --choose-on synthetic,mushroom,newsgroups,amazon400 --check-on digits16,rotmnist
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from transferkit.methods.auto import DEFAULT_CANDIDATES
from transferkit.report import markdown_table

VALIDATORS = ("source", "iwv", "dev", "entropy", "reverse")
TIE = 0.5  # points


def family(task: str) -> str:
    return task.split()[0]


def _trusted(c: dict, v: str) -> bool:
    return bool(np.isfinite(c[v])) and not (v == "dev" and c[v] > 0)  # a negative DEV risk is never picked


def replay(records: list[dict], validator: str) -> dict[str, float]:
    """Task -> gain in points of auto's rule at confidence 0.5, replayed on the recorded grids."""
    by: dict = {}
    for r in records:
        by.setdefault(r["task"], {})[r["method"]] = r
    gains = {}
    for task, methods in by.items():
        if not all(m in methods and "candidates" in methods[m] for m in ("source-only", *DEFAULT_CANDIDATES)):
            continue
        base = methods["source-only"]
        so = base["candidates"][0]
        pool = [c for m in DEFAULT_CANDIDATES for c in methods[m]["candidates"] if _trusted(c, validator)]
        best = max(pool, key=lambda c: c[validator]) if pool else None
        pick = best if best is not None and _trusted(so, validator) and best[validator] > so[validator] else so
        gains[task] = 100 * (pick["accuracy"] - base["defaults"])
    return gains


def _summary(gains: list[float]) -> str:
    g = np.array(gains)
    return f"{g.mean():+.1f} ({(g > TIE).sum()}/{(abs(g) <= TIE).sum()}/{(g < -TIE).sum()}, worst {g.min():+.1f})"


def validator_table(records, choose_on, check_on) -> list[dict]:
    rows = []
    for v in VALIDATORS:
        gains = replay(records, v)
        row = {"validator": v}
        for label, families in ((", ".join(choose_on), choose_on), (", ".join(check_on), check_on)):
            picked = [g for t, g in gains.items() if family(t) in families]
            row[label] = _summary(picked) if picked else "no task"
        rows.append(row)
    return rows


def auto_table(records, choose_on=()) -> tuple[list[dict], list[dict]]:
    by: dict = {}
    for r in records:
        by.setdefault(r["task"], {})[r["method"]] = r
    rows, gains, best_single, oracle, verdicts = [], [], {}, [], []
    for task, methods in by.items():
        if "auto" not in methods or "source-only" not in methods:
            continue
        base, auto = methods["source-only"]["defaults"], methods["auto"]
        d = auto["decision"]
        gain = 100 * (auto["defaults"] - base)
        gains.append(gain)
        chosen = d["chosen"]["method"] + "".join(f" {k}={v}" for k, v in d["chosen"]["params"].items())
        p = "n/a" if d["p_better"] is None else f"{d['p_better']:.2f}"
        verdicts.append(_verdict(methods, gain, d))
        rows.append(
            {
                "task": task,
                "source-only": f"{base:.3f}",
                "auto": f"{auto['defaults']:.3f} ({gain:+.1f})",
                "chose": chosen,
                "P(best adapted beats source-only)": p,
                "verdict": verdicts[-1],
            }
        )
        for m in DEFAULT_CANDIDATES:
            if m in methods:
                best_single.setdefault(m, []).append(100 * (methods[m]["defaults"] - base))
        if all(m in methods and "candidates" in methods[m] for m in DEFAULT_CANDIDATES):
            accs = [
                c["accuracy"] for m in ("source-only", *DEFAULT_CANDIDATES) for c in methods[m].get("candidates", [])
            ]
            oracle.append(100 * (max(accs) - base))
    summary = [
        {
            "protocol": "auto (defaults: dev, confidence 0.9)",
            "mean gain (W/T/L, worst)": _summary(gains),
            "tasks": len(gains),
            "adapted": sum(by[t]["auto"]["decision"]["adapted"] for t in by if "auto" in by[t]),
        }
    ]
    for m, g in best_single.items():
        if len(g) == len(gains):
            summary.append(
                {"protocol": f"{m} defaults", "mean gain (W/T/L, worst)": _summary(g), "tasks": len(g), "adapted": ""}
            )
    if len(oracle) == len(gains):
        summary.append(
            {
                "protocol": "oracle over auto's candidates (80 % source)",
                "mean gain (W/T/L, worst)": _summary(oracle),
                "tasks": len(oracle),
                "adapted": "",
            }
        )
    held = [t for t in by if "auto" in by[t] and "source-only" in by[t] and family(t) not in choose_on]
    if choose_on and held:  # the tasks of data sets that played no part in choosing auto's defaults
        for m in ("auto", *DEFAULT_CANDIDATES):
            if all(m in by[t] for t in held):
                g = [100 * (by[t][m]["defaults"] - by[t]["source-only"]["defaults"]) for t in held]
                summary.append(
                    {
                        "protocol": f"{m} defaults, data sets not chosen on only",
                        "mean gain (W/T/L, worst)": _summary(g),
                        "tasks": len(g),
                        "adapted": "",
                    }  # fmt: skip
                )
    right = [v for v in verdicts if v.startswith("right")]
    checked = [v for v in verdicts if not v.endswith("(not checked)")]
    unchecked = len(verdicts) - len(checked)
    summary[0]["verdicts right"] = f"{len(right)}/{len(checked)}" + (f" ({unchecked} not checked)" if unchecked else "")
    return rows, summary


def _verdict(methods: dict, gain: float, decision: dict) -> str:
    """Was "adapt" or "don't" right? Adapting is right when it does not lose (gain above -TIE); keeping
    source-only is right when the adapted candidate it turned down (the validator's best, as recorded by
    the suite's grids on the same split) would not have won (gain at most +TIE)."""
    if decision["adapted"]:
        return "right (adapted)" if gain >= -TIE else "wrong (adapted, lost)"
    v = decision.get("validator", "dev")
    if not all("candidates" in methods.get(m, {}) for m in DEFAULT_CANDIDATES):
        return "kept (not checked)"
    pool = [c for m in DEFAULT_CANDIDATES for c in methods[m]["candidates"] if _trusted(c, v)]
    if not pool:
        return "right (kept; nothing to compare)"
    turned_down = 100 * (max(pool, key=lambda c: c[v])["accuracy"] - methods["source-only"]["defaults"])
    return (
        f"right (kept; it would give {turned_down:+.1f})"
        if turned_down <= TIE
        else (f"wrong (kept; it would give {turned_down:+.1f})")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=Path, nargs="+", help="the suite's records (suite.json or partial runs')")
    parser.add_argument("--choose-on", default="synthetic,mushroom,newsgroups,amazon400")
    parser.add_argument("--check-on", default="digits16,rotmnist")
    args = parser.parse_args()
    records = [{k: v for k, v in r.items() if k != "seal"} for p in args.records for r in json.loads(p.read_text())]
    choose_on, check_on = args.choose_on.split(","), args.check_on.split(",")
    print("Auto's rule replayed per validator (confidence 0.5), mean gain over source-only in points:\n")
    print(markdown_table(validator_table(records, choose_on, check_on)))
    rows, summary = auto_table(records, choose_on)
    print("\nAuto per task:\n")
    print(markdown_table(rows))
    print()
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
