"""Yosinski et al.'s layer-transfer sweep with every knob (see :mod:`transferkit.protocols.layer_transfer`).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/layer_transfer.py --seeds 5 --epochs 7

``transferkit bench layer-transfer`` runs the same with the defaults.
"""

import argparse
from pathlib import Path

from transferkit.protocols.layer_transfer import OUT, SPLITS, run_layer_transfer


def cli(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Layer transfer, accuracy on B (Yosinski et al. 2014)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--n-train", type=int, default=5000, help="at most this many training images per task")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=list(SPLITS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    run_layer_transfer(args.seeds, args.epochs, args.n_train, args.out, tuple(args.splits))


if __name__ == "__main__":
    cli()
