"""Run every benchmark behind benchmarks/RESULTS.md and write its tables to benchmarks/out/.

    python benchmarks/run_all.py                 # all, 5 seeds (the suite: 3)
    python benchmarks/run_all.py amazon --seeds 2
    python benchmarks/run_all.py suite           # the domain-adaptation suite, a few hours

Each table is also one `transferkit bench NAME --seeds S --out benchmarks/out` command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferkit.protocols.bench import BENCHMARKS, run_benchmark
from transferkit.protocols.suite import run_suite

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [*BENCHMARKS, "suite"]
    parser.add_argument("names", nargs="*", default=names, help=f"benchmarks: {', '.join(names)}")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 5; the suite 3)")
    args = parser.parse_args()
    for name in args.names:
        if name == "suite":
            run_suite(seeds=args.seeds or 3, out=OUT)
        else:
            run_benchmark(name, seeds=args.seeds or 5, out=str(OUT))


if __name__ == "__main__":
    main()
