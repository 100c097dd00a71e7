"""The thread policy, measured: a small and a large fit at one thread, two threads and the policy's
choice, on an idle machine and beside one busy process (a pure-Python loop on one core).

Small: DANN's defaults (the shallow network) on 400-d vectors, 2000 per domain, 10 epochs. Large: a
5000 -> 1024 -> 2 network, batches of 1024 (the step the issue measured at 86 % of the matmul peak),
3 epochs. Seconds per fit, best of ``--repeats``, in one process, one configuration at a time.

    python benchmarks/threads.py --repeats 3 > benchmarks/out/threads.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
import warnings

import numpy as np
import torch

from transferkit import DANN, Domain
from transferkit.report import markdown_table


def _busy() -> None:
    while True:
        pass


def _data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    Xs = (rng.normal(size=(n, d)) + 0.3 * y[:, None]).astype(np.float32)
    Xt = (rng.normal(size=(n, d)) + 0.1).astype(np.float32)
    return Domain(Xs, y), Domain(Xt)


def _time(make, source, target, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        make().fit(source, target)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    torch.set_num_threads(2)  # torch's default on this 2-core machine
    fits = {
        "small (shallow DANN, 400-d)": (_data(2000, 400), dict(epochs=10)),
        "large (5000 -> 1024 -> 2, batch 1024)": (_data(4096, 5000), dict(hidden=1024, batch_size=1024, epochs=3)),
    }
    rows = []
    for busy in (False, True):
        proc = mp.Process(target=_busy, daemon=True) if busy else None
        if proc:
            proc.start()
        try:
            for name, ((source, target), params) in fits.items():
                t = {
                    label: _time(lambda n=n, p=params: DANN(seed=0, n_threads=n, **p), source, target, args.repeats)
                    for label, n in (("1 thread", 1), ("2 threads", 2), ("policy", None))
                }
                best = min(t["1 thread"], t["2 threads"])
                rows.append(
                    {
                        "fit": name,
                        "machine": "beside a busy process" if busy else "idle",
                        **{k: f"{v:.2f}" for k, v in t.items()},
                        "policy / best fixed": f"{t['policy'] / best:.2f}",
                    }
                )
                print(rows[-1], file=sys.stderr, flush=True)
        finally:
            if proc:
                proc.terminate()
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
