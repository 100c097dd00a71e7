"""Run every benchmark behind benchmarks/RESULTS.md and write its tables to benchmarks/out/.

    python benchmarks/run_all.py                 # all, 5 seeds
    python benchmarks/run_all.py amazon --seeds 2

Each table is also one `transferkit bench NAME --seeds S --out benchmarks/out` command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferkit.protocols.bench import BENCHMARKS, run_benchmark

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help=f"benchmarks: {', '.join(BENCHMARKS)}")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    for name in args.names:
        run_benchmark(name, seeds=args.seeds, out=str(OUT))


if __name__ == "__main__":
    main()
