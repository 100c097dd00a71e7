"""The ``transferkit`` command: a thin shell over :mod:`transferkit.runs` and the library.

    transferkit methods                      the map of methods, by what is labelled
    transferkit datasets                     known datasets and domains, and which are present
    transferkit download NAME                a benchmark's files from their public source, verified
    transferkit run METHOD --source D:S --target D:T [--json]
    transferkit predict --model DIR --input FILE     a saved model applied to new samples
    transferkit advise --source D:S --target D:T  which quadrant, which methods, which source
    transferkit demo [--out DIR]             a tour of the four quadrants on embedded digits, with a report
    transferkit bench NAME [--json]          reproduce a paper table

One module per command, each with ``add_parser(sub)`` and ``handle(args)``. With ``--json``
stdout carries exactly one JSON document; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from collections.abc import Sequence

from transferkit import __version__
from transferkit.cli import advise, bench, datasets, demo, download, methods, predict, run

__all__ = ["build_parser", "main"]

COMMANDS = (methods, datasets, download, run, predict, advise, demo, bench)

EXAMPLES = """examples:
  transferkit methods
  transferkit datasets
  transferkit run dann --source amazon:books --target amazon:kitchen --json
  transferkit run source-only --source digits:mnist --target digits:mnistm --epochs 10
  transferkit run dann --source demo:mnist --target demo:usps --set lambda_max=0.3 --plot --out runs/demo
  transferkit run dann --source amazon:books --target amazon:dvd --select dev --grid lambda_max=0.03,0.1,0.3
  transferkit run auto --source amazon400:books --target amazon400:kitchen --out runs/auto
  transferkit predict --model runs/auto --input new_kitchen_reviews.csv --output predictions.csv
  transferkit run finetune --source digits:mnist --target digits:usps --target-labels 10 --copy first:2 --freeze
  transferkit run dap --source fashion:mnist --unseen 2,3,5
  transferkit run self-taught --source digits:mnist --target fashion:mnist --target-labels 5
  transferkit run stc --source newsgroups:comp-vs-sci-2 --target newsgroups:comp-vs-sci-1
  transferkit run transitive --source rotmnist:0 --target rotmnist:90 --pool rotmnist:30,rotmnist:60
  transferkit demo --out transferkit-demo

data: real benchmark files are read from $TRANSFERKIT_DATA (default ~/.cache/transferkit/data);
the demo: domains ship with the package and need nothing.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning for every combination of labelled and unlabelled source and target data.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"transferkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, without the file path and source line Python adds."""
    print(f"transferkit: warning: {message}", file=sys.stderr)


def command() -> int:
    """The ``transferkit`` command: :func:`main`, then an exit without Python's last sweep of every object.

    At exit the interpreter runs a final garbage collection over every object still alive, and torch
    and scikit-learn create hundreds of thousands: about 0.7 s of every command on the 2-core
    benchmark machine (``benchmarks/skada_compare.py --cold``). Once the work is done and every file
    written and closed, :func:`gc.freeze` takes them out of that sweep; the process then ends.
    """
    code = main()
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    from transferkit.train.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():  # restores the caller's warning display afterwards
            warnings.showwarning = _warning_line
            code = args.func(args)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        return code
    except BrokenPipeError:  # e.g. `transferkit datasets | head`
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as exc:
        # user errors (UsageError is a ValueError): one clear line, no traceback (TRANSFERKIT_DEBUG=1 shows it)
        if os.environ.get("TRANSFERKIT_DEBUG"):
            raise
        print(f"transferkit: error: {exc}", file=sys.stderr)
        return 2
