"""``transferkit bench NAME``: reproduce a paper table; ``bench list`` names them."""

from __future__ import annotations

from transferkit.cli._common import add_command
from transferkit.runs import UsageError

LAYER_TRANSFER = "Yosinski et al. 2014: BnB, BnB+, AnB, AnB+ against n, similar and dissimilar split"
SUITE = "every pair we have x every unsupervised method: defaults, label-free selection per validator, oracle"


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "bench",
        "reproduce a paper table (`transferkit bench list`)",
        "transferkit bench amazon --seeds 5 --out benchmarks/out",
    )
    p.add_argument("name", nargs="?", default=None, help="benchmark name; omit or `list` to list them")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration")
    p.add_argument("--out", default=None, help="folder for the JSON results and the table")
    p.add_argument("--quick", action="store_true", help="one pair, one seed, few epochs (smoke test)")
    p.add_argument("--json", action="store_true", help="print a JSON list of run records on stdout")
    p.add_argument(
        "--methods", default=None, help="comma-separated columns to run (default: all), e.g. 'DAN,Deep CORAL'"
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="suite only: comma-separated task families or names to run (default: all), e.g. 'amazon400,newsgroups'",
    )
    p.add_argument(
        "--only-seeds",
        default=None,
        help="suite only: comma-separated seeds to run instead of 0 .. SEEDS-1, e.g. '1,2' to add seeds to a run",
    )
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.protocols.bench import BENCHMARKS, run_benchmark

    if args.name is None or args.name == "list":
        for name, b in BENCHMARKS.items():
            print(f"{name:<16} {b.description}")
        print(f"{'layer-transfer':<16} {LAYER_TRANSFER}")
        print(f"{'suite':<16} {SUITE}")
        return 0
    if args.name == "layer-transfer":
        return _layer_transfer(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if args.tasks is not None and args.name != "suite":
        raise UsageError(f"--tasks is for `bench suite`; the {args.name!r} benchmark has its own fixed tasks.")
    if args.only_seeds is not None and args.name != "suite":
        raise UsageError(f"--only-seeds is for `bench suite`; the {args.name!r} benchmark runs seeds 0 .. --seeds-1.")
    if args.name == "suite":
        return _suite(args, methods)
    try:
        run_benchmark(args.name, seeds=args.seeds, out=args.out, as_json=args.json, quick=args.quick, methods=methods)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return 0


def _layer_transfer(args) -> int:
    from pathlib import Path

    from transferkit.protocols import layer_transfer

    seeds, epochs, n_train = (1, 1, 500) if args.quick else (args.seeds, 7, 5000)
    out = Path(args.out) if args.out else layer_transfer.OUT
    layer_transfer.run_layer_transfer(seeds, epochs, n_train, out, quiet=args.json)
    if args.json:
        print((out / "layer_transfer.json").read_text())
    return 0


def _suite(args, methods) -> int:
    from transferkit.cli._common import print_json
    from transferkit.protocols.suite import run_suite, suite_tasks, summarise_suite

    try:
        tasks = None if args.tasks is None else suite_tasks(args.quick, [t.strip() for t in args.tasks.split(",")])
        seeds = args.seeds if args.only_seeds is None else _seeds(args.only_seeds)
        records = run_suite(seeds=seeds, out=args.out, quick=args.quick, methods=methods, tasks=tasks, verbose=True)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print_json(records)
    else:
        print(summarise_suite(records))
    return 0


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--only-seeds {text!r}; expected comma-separated whole numbers, e.g. '1,2'.") from None
