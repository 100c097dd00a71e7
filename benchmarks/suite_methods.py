"""The suite's tables for some of its methods, on the tasks (and seeds) where all of them finished.

    python benchmarks/suite_methods.py benchmarks/records/suite_full_seed0.json --methods dann,cdan,jda,bda,shot,tent

Several record files are read in order; a unit (task, method, seed) in a later file replaces the same
unit of an earlier one (a rerun after a default changed). ``--out FILE`` writes the merged records.

Prints ``summarise_suite``'s Markdown: defaults per task, gains per method and protocol (label-free
picks and the oracle where the method has a grid), and the validators over those grids.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transferkit.protocols.suite import summarise_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=Path, nargs="+")
    parser.add_argument("--methods", required=True, help="comma-separated; source-only is always included")
    parser.add_argument("--out", type=Path, default=None, help="write the merged records (JSON) here")
    args = parser.parse_args()
    methods = ["source-only", *[m for m in args.methods.split(",") if m != "source-only"]]
    merged: dict = {}
    for path in args.records:  # later files win
        for r in json.loads(path.read_text()):
            merged[(r["task"], r["method"], r["seed"])] = {k: v for k, v in r.items() if k != "seal"}
    records = [r for r in merged.values() if r["method"] in methods]
    have: dict = {}
    for r in records:
        have.setdefault((r["task"], r["seed"]), set()).add(r["method"])
    keep = {k for k, v in have.items() if v >= set(methods)}
    records = [r for r in records if (r["task"], r["seed"]) in keep]
    if args.out is not None:
        args.out.write_text(json.dumps(records, indent=1))
    print(summarise_suite(records))


if __name__ == "__main__":
    main()
