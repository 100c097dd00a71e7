"""``transferkit demo``: the tour of the four quadrants on embedded digits, with a report."""

from __future__ import annotations

from transferkit.cli._common import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "demo",
        "a tour of the four quadrants on embedded digits: fine-tuning, DANN, zero-shot DAP, self-taught learning "
        "and clustering, each against its baseline (offline, about a minute on 2 cores), with a report",
        "transferkit demo --out transferkit-demo   # then open transferkit-demo/report.md",
    )
    p.add_argument("--out", default="transferkit-demo", help="report folder (default: ./transferkit-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed of every training and draw")
    p.add_argument("--quick", action="store_true", help="a few epochs only (for smoke tests)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.protocols.demo import run_demo

    run_demo(out=args.out, seed=args.seed, quick=args.quick, verbose=not args.quiet)
    return 0
