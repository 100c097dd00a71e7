"""What torch.optim's compiler hooks cost: transferkit's own Adam against ``torch.optim.Adam(fused=True)``.

Three measurements, each side by side in one run, order alternating:

- **step**: ``zero_grad`` + ``step`` on the review network (5000 -> 50 -> 2, with DANN's
  50 -> 100 -> 1 domain head), gradients held fixed; median microseconds over ``--steps`` steps.
- **fresh process**: a new Python process that imports torch and transferkit, then builds a
  5000 -> 50 layer and its optimiser and takes one step (timed from the layer to the end of the
  step); median seconds over ``--repeats`` processes. torch.optim's first ``add_param_group``
  imports ``torch._dynamo``.
- **fit**: whole DANN fits on Amazon books -> dvd (binary 5000-d inputs, hidden 50, Adam lr 1e-3,
  30 epochs of 64 + 64 reviews, constant lambda 0.1: the SKADA comparison's recipe) in one process,
  the training loop's optimiser swapped between the two; best of ``--repeats`` fits each. Needs
  ``TRANSFERKIT_DATA``.

    OMP_NUM_THREADS=1 python benchmarks/optim_step.py --steps 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from transferkit.report import markdown_table
from transferkit.train import loop, optim

SIDES = ("torch.optim (fused)", "transferkit.train.optim")


def _network() -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    net = torch.nn.ModuleList(
        [torch.nn.Linear(5000, 50), torch.nn.Linear(50, 2), torch.nn.Linear(50, 100), torch.nn.Linear(100, 1)]
    )
    return list(net.parameters())


def _make(side: str, params, lr: float = 1e-3):
    if side == SIDES[0]:
        return torch.optim.Adam(params, lr=lr, fused=True)
    return optim.Adam(params, lr=lr)


def time_steps(steps: int) -> dict[str, float]:
    """Median microseconds of zero_grad + step, the two sides interleaved in blocks of 100 steps."""
    runs = {}
    for side in SIDES:
        params = _network()
        opt = _make(side, params)
        for _ in range(20):  # warm-up; also pays torch.optim's one-time import
            for p in params:
                p.grad = torch.ones_like(p)
            opt.step()
        runs[side] = (params, opt, [])
    for _ in range(steps // 100):
        for params, opt, times in runs.values():
            grads = [torch.full_like(p, 1e-3) for p in params]
            for _ in range(100):
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                opt.step()
                times.append(time.perf_counter() - t0)
    return {side: 1e6 * statistics.median(times) for side, (_, _, times) in runs.items()}


FRESH = """
import time, torch
import transferkit.train.optim  # both sides: what a transferkit run has imported before it trains
t0 = time.perf_counter()
torch.manual_seed(0)
ps = list(torch.nn.Linear(5000, 50).parameters())
{make}
for p in ps:
    p.grad = torch.ones_like(p)
opt.step()
print(time.perf_counter() - t0)
"""


def time_fresh(repeats: int) -> dict[str, float]:
    """Median seconds from building the network to the end of its first step, in a new process."""
    makes = {
        SIDES[0]: "opt = torch.optim.Adam(ps, lr=1e-3, fused=True)",
        SIDES[1]: "opt = transferkit.train.optim.Adam(ps, lr=1e-3)",
    }
    times = {side: [] for side in SIDES}
    for i in range(repeats):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            out = subprocess.run([sys.executable, "-c", FRESH.format(make=makes[side])], capture_output=True, text=True)
            times[side].append(float(out.stdout.strip().splitlines()[-1]))
    return {side: statistics.median(t) for side, t in times.items()}


def time_fits(repeats: int) -> dict[str, tuple[float, float]]:
    """Best fit seconds and the target accuracy of DANN on books -> dvd with each optimiser."""
    from transferkit import DANN
    from transferkit.runs.inputs import load_pair
    from transferkit.runs.options import RunOptions

    pair = load_pair("amazon:books", "amazon:dvd", RunOptions(preprocess="binary"))
    original = loop._make_optimizer

    def torch_optim(module, cfg):
        return torch.optim.Adam(
            loop._param_groups(module, cfg.lr), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )

    best = {side: (float("inf"), 0.0) for side in SIDES}
    try:
        for i in range(repeats):
            for side in SIDES if i % 2 == 0 else SIDES[::-1]:
                loop._make_optimizer = torch_optim if side == SIDES[0] else original
                model = DANN(
                    epochs=30, lr=1e-3, batch_size=64, hidden=50, lambda_schedule="constant", lambda_max=0.1,
                    seed=0, verbose=False,
                )  # fmt: skip
                t0 = time.perf_counter()
                model.fit(pair.source, pair.target)
                seconds = time.perf_counter() - t0
                best[side] = (min(best[side][0], seconds), float(model.score(pair.target_test)))
                print(f"[fit {i}] {side}: {seconds:.2f} s", file=sys.stderr, flush=True)
    finally:
        loop._make_optimizer = original
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-fit", action="store_true", help="skip the whole DANN fits (no data needed)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    step = time_steps(args.steps)
    fresh = time_fresh(args.repeats)
    fits = {} if args.no_fit else time_fits(args.repeats)
    ours, theirs = SIDES[1], SIDES[0]
    rows = []
    for side in SIDES:
        row = {"optimiser": side, "zero_grad + step (µs)": f"{step[side]:.0f}"}
        row["fresh process to first step (s)"] = f"{fresh[side]:.3f}"
        if fits:
            row["DANN fit, best (s)"], row["target accuracy"] = f"{fits[side][0]:.2f}", f"{fits[side][1]:.4f}"
        rows.append(row)
    ratio = {"optimiser": "ours / torch.optim", "zero_grad + step (µs)": f"{step[ours] / step[theirs]:.2f}"}
    ratio["fresh process to first step (s)"] = f"{fresh[ours] / fresh[theirs]:.2f}"
    if fits:
        ratio["DANN fit, best (s)"] = f"{fits[ours][0] / fits[theirs][0]:.2f}"
    rows.append(ratio)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
