"""MMD at scale: time and peak memory of each estimator of ``transferkit.nn.divergences.mmd2`` with
its default bandwidths, without gradients, at 5k to 50k samples per domain (64-d Gaussian features,
the target shifted by 0.5 in every dimension). Each size and estimator runs in a fresh process so
the peak resident memory is its own; one thread.

    OMP_NUM_THREADS=1 python benchmarks/mmd_scale.py --sizes 5000 10000 20000 50000

``--minibatch`` times instead what a DAN step asks of it: the unbiased MMD² of a minibatch (64 + 64
samples; 50-d hidden features and 2-d logits, DAN's two taps on the review network), forward and
backward, in one autograd node with the gradient in closed form (the default) against autograd
through the same formula on one pooled kernel matrix (how ``mmd2`` computed it before); median
microseconds, alternating.

    OMP_NUM_THREADS=1 python benchmarks/mmd_scale.py --minibatch
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


def _autograd_mmd2(x, y):
    """The unbiased multi-kernel MMD² of a minibatch by autograd through the formula: one kernel matrix
    of the pooled sample, its three block sums."""
    import torch

    from transferkit.nn.divergences import DEFAULT_BANDWIDTH_MULTIPLIERS, _base_sigma2, gaussian_kernel

    n, m = len(x), len(y)
    z = torch.cat([x, y])
    sigmas2 = _base_sigma2(z) * torch.tensor(DEFAULT_BANDWIDTH_MULTIPLIERS, dtype=z.dtype)
    z = z - z.detach().mean(0)
    k = gaussian_kernel(z, z, sigmas2)
    kxx, kyy, kxy = k[:n, :n].sum(), k[n:, n:].sum(), k[:n, n:].sum()
    return (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m)


def minibatch(repeats: int = 2000) -> list[dict]:
    """Forward + backward of the minibatch MMD², closed form against autograd, per feature width."""
    import statistics

    import torch

    from transferkit.nn.divergences import mmd2

    torch.set_num_threads(1)
    rows = []
    for d in (50, 2):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, d, generator=g).requires_grad_()
        y = (torch.randn(64, d, generator=g) + 0.5).requires_grad_()
        assert abs(mmd2(x, y).item() - _autograd_mmd2(x, y).item()) < 1e-5
        sides = {"closed form": mmd2, "autograd": _autograd_mmd2}
        times = {side: [] for side in sides}
        for i in range(repeats):
            for side in sides if i % 2 == 0 else list(sides)[::-1]:
                t0 = time.perf_counter()
                sides[side](x, y).backward()
                times[side].append(time.perf_counter() - t0)
        median = {side: 1e6 * statistics.median(t[100:]) for side, t in times.items()}
        rows.append(
            {
                "features": f"64 + 64 x {d}",
                "closed form (µs)": f"{median['closed form']:.0f}",
                "autograd (µs)": f"{median['autograd']:.0f}",
                "ratio": f"{median['closed form'] / median['autograd']:.2f}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 50000])
    parser.add_argument("--estimators", nargs="+", default=["linear", "unbiased", "biased"])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--minibatch", action="store_true", help="a DAN step's minibatch MMD², closed form vs autograd")
    args = parser.parse_args()
    if args.minibatch:
        from transferkit.report import markdown_table

        print(markdown_table(minibatch()))
        return
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
