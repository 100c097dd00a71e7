"""Sparse data end to end: the peak memory of a DANN fit on large bag-of-words-like domains, the
share of a DANN step spent building its sparse batches, and the first layer's time on them.

Each size runs in a fresh process (peak RSS is per process): random CSR counts for a source and a
target of ``n`` rows each, ``Domain`` built from them (kept sparse), ``DANN(epochs=1)`` fitted and
the target predicted. Reports the non-zeros' size, the dense float32 size the same data would take,
the process's peak resident memory, and the fit's time.

The first layer: its forward and backward on one such step's 128 reviews, ``torch.nn.Linear`` on the
sparse COO batch against ``transferkit.nn.sparse.SparseInputLinear`` (same weights; medians of five
alternating rounds of 500 steps).

The batch share: DANN with the ``bench amazon`` recipe on books -> dvd (binarised counts, 30 epochs
of 64 + 64 reviews) is timed whole, then the same number of sparse batches (two per step) is built
alone from the same matrices; the ratio is the share.

    OMP_NUM_THREADS=1 python benchmarks/sparse_memory.py             # about 2 min on one core

Goals: 100k x 5000 at 0.2 % trains under 1.5 GiB peak; 200k x 50k with 10M non-zeros trains at all;
building sparse batches costs under 5 % of a DANN step.
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


def _books_dvd():
    """The ``bench amazon`` pair: books -> dvd, binarised counts, the training splits."""
    from transferkit.datasets import load_task
    from transferkit.runs import preprocess

    task = load_task("amazon:books", "amazon:dvd")
    source, target, _ = preprocess("binary", task.source, task.target, task.target_test)
    return source, target


def batch_share() -> dict:
    import numpy as np
    import torch

    from transferkit import DANN
    from transferkit.train.loop import _Rows

    torch.set_num_threads(1)
    source, target = _books_dvd()
    target = target.unlabelled()
    model = DANN(epochs=30, batch_size=64, lr=1e-3, hidden=50, lambda_max=0.1, lambda_schedule="constant", seed=0)
    model.fit(source, target)  # warm-up: the first fit in a process pays one-off costs
    t0 = time.perf_counter()
    model.fit(source, target)
    fit = time.perf_counter() - t0
    steps = model.fit_result_.steps
    rows = [_Rows(model._batchable(d.X, True)) for d in (source, target)]
    rng = np.random.default_rng(0)
    draws = [[rng.permutation(len(d))[:64] for _ in range(steps)] for d in (source, target)]
    t0 = time.perf_counter()
    for r, idx in zip(rows, draws, strict=True):
        for i in idx:
            r.take(i, torch.device("cpu"))
    build = time.perf_counter() - t0
    return {
        "DANN step (ms)": round(1000 * fit / steps, 2),
        "sparse batches per step (ms)": round(1000 * build / steps, 3),
        "share": f"{100 * build / fit:.1f} %",
    }


def first_layer(repeats: int = 500) -> dict:
    """The first layer's forward and backward on one DANN step's batch (64 + 64 binarised reviews, 5000 -> 50):
    torch's ``nn.Linear`` on the sparse COO batch against ``SparseInputLinear``, same weights, same batch."""
    import numpy as np
    import scipy.sparse
    import torch

    from transferkit.nn.sparse import SparseInputLinear
    from transferkit.train.loop import to_batch

    torch.set_num_threads(1)
    source, target = _books_dvd()
    rng = np.random.default_rng(0)
    cpu = torch.device("cpu")
    batches = [to_batch(scipy.sparse.csr_matrix(d.X)[rng.permutation(len(d))[:64]], cpu) for d in (source, target)]
    x = torch.cat(batches)  # as DANN stacks its source and target rows
    grad = torch.randn(len(x), 50)
    torch.manual_seed(0)
    ours = SparseInputLinear(x.shape[1], 50)
    plain = torch.nn.Linear(x.shape[1], 50)
    plain.load_state_dict(ours.state_dict())

    def seconds(layer) -> float:
        def step():
            layer.zero_grad(set_to_none=True)
            layer(x).backward(grad)

        for _ in range(20):
            step()
        t0 = time.perf_counter()
        for _ in range(repeats):
            step()
        return (time.perf_counter() - t0) / repeats

    # alternate the two, so that a change in the machine's load hits both
    times = {"nn.Linear": [], "SparseInputLinear": []}
    for _ in range(5):
        times["nn.Linear"].append(seconds(plain))
        times["SparseInputLinear"].append(seconds(ours))
    step_plain, step_ours = (float(np.median(v)) for v in times.values())
    for layer in (ours, plain):
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)
    return {
        "nn.Linear, COO batch (ms)": round(1000 * step_plain, 3),
        "SparseInputLinear (ms)": round(1000 * step_ours, 3),
        "ratio": round(step_ours / step_plain, 2),
        "largest gradient difference": f"{float((ours.weight.grad - plain.weight.grad).abs().max()):.1e}",
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
    print()
    print(markdown_table([batch_share()]))
    print()
    print(markdown_table([first_layer()]))


if __name__ == "__main__":
    main()
