"""Training runs that ``tests/test_train.py`` launches in subprocesses (SIGKILL, torchrun).

Usage::

    python tests/helpers_train.py loop  --out W.pt [--ckpt DIR] [--seed S] [--epochs E]
    python tests/helpers_train.py dann  --out DIR  [--seed S] [--epochs E] [--batch-size B]

``--wait-stdin`` makes the process import everything, then wait for a line ``go`` on stdin before
training, so a test can start it early.

``loop`` trains a DANN objective (shallow net + a discriminator with dropout, so the torch RNG
matters) with :func:`fit_loop`, checkpointing every ``--every`` steps (a number that does not
divide the steps per epoch, so checkpoints fall mid-epoch), and writes the final state_dict.

``dann`` fits the :class:`~transferkit.methods.dann.DANN` estimator (plain ``python`` or under
``torchrun``; SGD + Ganin's schedule, so a wrong gradient scale would show in the weights); every
rank writes ``rank<r>.pt`` with its weights, rank 0 also reports the target accuracy.

Each process also writes what it reports as JSON (``<out>.json`` for ``loop``, ``rank<r>.json``
for ``dann``) and prints it as one line ``RESULT {json}`` on stdout (for the logs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from transferkit.datasets.synthetic import make_blobs_shift

# The SIGKILL test's task (about 1.3 ms a step on one thread; the test sets the epochs).
LOOP_TASK = dict(n_classes=3, n_source=600, n_target=400, n_features=8, seed=11)
LOOP_BATCH = 32  # 600 // 32 = 18 steps per epoch
LOOP_EVERY = 5  # checkpoint every 5 steps: does not divide 18, so most checkpoints are mid-epoch

# The torchrun test's task.
DANN_TASK = dict(n_classes=3, n_source=400, n_target=400, n_features=4, n_test=2000, seed=5)


def checksum(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def loop_steps_per_epoch() -> int:
    return LOOP_TASK["n_source"] // LOOP_BATCH


def run_loop(args) -> dict:
    from transferkit.methods.dann import DANNObjective
    from transferkit.nn.backbones import shallow_net
    from transferkit.nn.discriminator import DomainDiscriminator
    from transferkit.train.loop import FitConfig, fit_loop

    task = make_blobs_shift(**LOOP_TASK)
    torch.manual_seed(args.seed)
    net = shallow_net(task.source.X.shape[1], 3, hidden=32)
    disc = DomainDiscriminator(32, (32,), dropout=0.25)
    objective = DANNObjective(net, disc, "hidden", 1.0, "ganin", 10.0)
    config = FitConfig(
        epochs=args.epochs,
        batch_size=LOOP_BATCH,
        lr=1e-2,
        optimizer="sgd",
        momentum=0.9,
        lr_schedule="ganin",
        seed=args.seed,
        device="cpu",
        checkpoint_dir=args.ckpt,
        checkpoint_every=LOOP_EVERY,
        progress=False,
    )
    result = fit_loop(objective, {"xs": task.source.X, "ys": task.source.y}, {"xt": task.target.X}, config)
    state = {k: v.clone() for k, v in objective.state_dict().items()}
    torch.save(state, args.out)
    info = {
        "resumed_at_step": result.resumed_at_step,
        "steps": result.steps,
        "history": result.history,
        "checksum": checksum(state),
    }
    Path(args.out + ".json").write_text(json.dumps(info))
    return info


def run_dann(args) -> dict:
    from transferkit.methods.dann import DANN
    from transferkit.train import distributed

    task = make_blobs_shift(**DANN_TASK)
    model = DANN(
        backbone="shallow",
        hidden=16,
        disc_hidden=(16,),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=0.05,
        optimizer="sgd",
        momentum=0.9,
        lr_schedule="ganin",
        seed=args.seed,
        device="cpu",
    ).fit(task.source, task.target)
    rank, world = distributed.init_from_env()  # already initialised by fit: just reads rank/world
    out = Path(args.out)
    state = {k: v.clone() for k, v in model.objective_.state_dict().items()}
    torch.save(state, out / f"rank{rank}.pt")
    info = {"rank": rank, "world": world, "steps": model.fit_result_.steps, "checksum": checksum(state)}
    if rank == 0:
        info["accuracy"] = model.score(task.target_test)
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["loop", "dann"])
    p.add_argument("--out", required=True)
    p.add_argument("--ckpt", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--wait-stdin", action="store_true", help="start training once a line arrives on stdin")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.wait_stdin:  # lets a test start the process (and pay for the imports) ahead of time
        if sys.stdin.readline().strip() != "go":
            return 3
    info = run_loop(args) if args.mode == "loop" else run_dann(args)
    print("RESULT " + json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
