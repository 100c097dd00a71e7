"""Sparse data end to end: the peak memory of a DANN fit on large bag-of-words-like domains.

Each size runs in a fresh process (peak RSS is per process): random CSR counts for a source and a
target of ``n`` rows each, ``Domain`` built from them (kept sparse), ``DANN(epochs=1)`` fitted and
the target predicted. Reports the non-zeros' size, the dense float32 size the same data would take,
the process's peak resident memory, and the fit's time.

    OMP_NUM_THREADS=1 python benchmarks/sparse_memory.py             # about 5 min on one core

Goals (issue "fast where it counts"): 100k x 5000 at 0.2 % trains under 1.5 GiB peak; 200k x 50k
with 10M non-zeros trains at all.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SIZES = [(100_000, 5000, 0.002), (200_000, 50_000, 0.001)]


def one(n: int, d: int, density: float) -> dict:
    import numpy as np
    import scipy.sparse

    from transferkit import DANN, Domain

    def domain(seed: int, labelled: bool):
        rng = np.random.default_rng(seed)
        nnz = int(n * d * density)
        rows, cols = rng.integers(0, n, nnz), rng.integers(0, d, nnz)
        X = scipy.sparse.csr_matrix((np.ones(nnz, np.float32), (rows, cols)), shape=(n, d))
        y = (X[:, : d // 2].sum(1).A1 > X[:, d // 2 :].sum(1).A1).astype(int) if labelled else None
        return Domain(X, y), X.data.nbytes + X.indices.nbytes + X.indptr.nbytes

    source, bytes_s = domain(0, True)
    target, _ = domain(1, False)
    t0 = time.perf_counter()
    model = DANN(epochs=1, seed=0).fit(source, target)
    model.predict(target.X)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return {
        "n": n,
        "d": d,
        "non-zeros per domain": int(source.X.nnz),
        "CSR per domain (MiB)": round(bytes_s / 2**20, 1),
        "dense per domain (GiB)": round(4 * n * d / 2**30, 2),
        "peak RSS (GiB)": round(peak / 2**30, 2),
        "fit + predict (s)": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n, d, density = args.one
        print(json.dumps(one(int(n), int(d), density)))
        return
    from transferkit.report import markdown_table

    rows = []
    for n, d, density in SIZES:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), str(d), str(density)], capture_output=True, text=True
        )
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            rows.append({"n": n, "d": d, "peak RSS (GiB)": f"failed ({out.returncode})"})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"[sparse-memory] {rows[-1]}", file=sys.stderr, flush=True)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
