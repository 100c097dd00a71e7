"""The convolutional path: GFLOP/s of a DANN training step on the digit networks, against the matmul peak.

One optimiser step of DANN's objective (label loss on a source batch, domain loss on a source and a
target batch through the gradient reversal) on the MNIST-M network (the DANN paper's CNN, 3x28x28)
and on LeNet (1x28x28), at the benchmarks' batch size (64) and larger. Its FLOPs are counted by
``torch.utils.flop_counter`` (forward and backward); the time is the median of ``--steps`` steps
after a warm-up. The peak is a float32 ``torch.mm`` of 2048 x 2048 at the same thread count, in the
same run. Each lever is tried in turn: the default (contiguous NCHW), ``channels_last`` memory
format, and ``torch.compile`` (when it works on this CPU).

``--fit`` also times whole DANN fits on MNIST -> MNIST-M (the suite's 2000 samples per domain, 3
epochs) with the library's channels-last training on and off, alternating, best of ``--repeats``.

    python benchmarks/conv_step.py --threads 1 --steps 30 --fit
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from transferkit import DANN
from transferkit.nn.backbones import build_backbone
from transferkit.report import markdown_table

NETWORKS = {"MNIST-M DANN CNN": ("dann-digits", (3, 28, 28)), "LeNet": ("lenet", (1, 28, 28))}


def peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def make_step(backbone: str, shape: tuple, batch: int, lever: str):
    torch.manual_seed(0)
    net = build_backbone(backbone, shape, 10)
    objective = DANN()._objective(net, 10)
    optimiser = torch.optim.Adam(objective.parameters(), lr=1e-3)
    batch_data = {
        "xs": torch.randn(batch, *shape),
        "ys": torch.randint(0, 10, (batch,)),
        "xt": torch.randn(batch, *shape),
    }
    if lever == "channels_last":
        objective = objective.to(memory_format=torch.channels_last)
        batch_data["xs"] = batch_data["xs"].contiguous(memory_format=torch.channels_last)
        batch_data["xt"] = batch_data["xt"].contiguous(memory_format=torch.channels_last)
    forward = torch.compile(objective) if lever == "torch.compile" else objective

    def step():
        optimiser.zero_grad(set_to_none=True)
        forward(batch_data, 0.5)["loss"].backward()
        optimiser.step()

    return objective, batch_data, step


def count_flops(objective, batch_data) -> int:
    with FlopCounterMode(display=False) as counter:
        objective(batch_data, 0.5)["loss"].backward()
    objective.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_step(step, steps: int) -> float:
    for _ in range(5):  # warm-up (and compilation)
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fit_seconds(repeats: int, epochs: int = 3) -> dict[str, float]:
    import warnings

    import transferkit.train.loop as loop
    from transferkit.protocols.suite import SuiteTask, task_data

    source, target, _ = task_data(SuiteTask("mnist->mnist-m", "digits:mnist", "digits:mnistm"), 0, 2000)
    best = {"default layout": float("inf"), "channels-last": float("inf")}
    for _ in range(repeats):
        for name in best:  # alternating, so that a busy spell hits both
            loop.CHANNELS_LAST = name == "channels-last"
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                DANN(epochs=epochs, seed=0).fit(source, target)
            best[name] = min(best[name], time.perf_counter() - t0)
    loop.CHANNELS_LAST = True
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--fit", action="store_true", help="also time whole DANN fits, layout on and off")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = peak_gflops()
    rows = []
    for name, (backbone, shape) in NETWORKS.items():
        for batch in map(int, args.batches.split(",")):
            for lever in ("default", "channels_last", "torch.compile"):
                try:
                    objective, data, step = make_step(backbone, shape, batch, lever)
                    flops = count_flops(objective, data)
                    seconds = time_step(step, args.steps)
                except Exception as err:  # torch.compile needs a working C++ toolchain
                    rows.append({"network": name, "batch": batch, "lever": lever, "note": type(err).__name__})
                    continue
                gflops = flops / seconds / 1e9
                rows.append(
                    {
                        "network": name,
                        "batch": batch,
                        "lever": lever,
                        "GFLOP per step": f"{flops / 1e9:.3f}",
                        "ms per step": f"{1e3 * seconds:.2f}",
                        "GFLOP/s": f"{gflops:.1f}",
                        "of peak": f"{100 * gflops / peak:.0f} %",
                        "note": "",
                    }
                )
    print(f"Peak (float32 torch.mm 2048 x 2048, {args.threads} thread(s)): {peak:.1f} GFLOP/s\n")
    print(markdown_table(rows))
    if args.fit:
        best = fit_seconds(args.repeats)
        ratio = best["channels-last"] / best["default layout"]
        print("\nDANN fit, MNIST -> MNIST-M, 3 epochs: " + ", ".join(f"{k} {v:.1f} s" for k, v in best.items()))
        print(f"channels-last / default: {ratio:.2f}")


if __name__ == "__main__":
    main()
