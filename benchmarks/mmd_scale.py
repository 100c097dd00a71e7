"""MMD at scale: time and peak memory of each estimator of ``transferkit.nn.divergences.mmd2`` with
its default bandwidths, without gradients, at 5k to 50k samples per domain (64-d Gaussian features,
the target shifted by 0.5 in every dimension). Each size and estimator runs in a fresh process so
the peak resident memory is its own; one thread.

    OMP_NUM_THREADS=1 python benchmarks/mmd_scale.py --sizes 5000 10000 20000 50000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one(estimator: str, n: int) -> dict:
    import resource

    import torch

    from transferkit.nn.divergences import mmd2

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g) + 0.5
    t0 = time.perf_counter()
    with torch.no_grad():
        value = mmd2(x, y, estimator=estimator).item()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # MiB
    return {
        "estimator": estimator,
        "n per domain": n,
        "MMD²": f"{value:.4f}",
        "seconds": f"{seconds:.2f}",
        "peak MiB": f"{peak:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 50000])
    parser.add_argument("--estimators", nargs="+", default=["linear", "unbiased", "biased"])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    from transferkit.report import markdown_table

    rows = []
    for estimator in args.estimators:
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", estimator, str(n)], capture_output=True, text=True)
            if out.returncode != 0:
                rows.append(
                    {"estimator": estimator, "n per domain": n, "MMD²": "failed", "seconds": "", "peak MiB": ""}
                )
                print(out.stderr[-500:], file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout))
            print(rows[-1], file=sys.stderr, flush=True)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
