"""``transferkit advise``: which quadrant you are in, the methods that fit, and the sources ranked."""

from __future__ import annotations

from transferkit.cli._common import add_command, print_json
from transferkit.runs import PREPROCESS, UsageError


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "advise",
        "which quadrant you are in, the methods that fit, and candidate sources ranked by transferability",
        "transferkit advise --source digits:mnist --source fashion:mnist --target digits:usps --target-labels 10",
    )
    p.add_argument(
        "--source", action="append", metavar="DATASET:DOMAIN|PATH", help="a candidate source (repeatable; or a file)"
    )
    p.add_argument("--target", metavar="DATASET:DOMAIN|PATH", help="the target domain (or a file)")
    p.add_argument("--label-column", default="label", metavar="NAME", help="CSV files: the column holding the labels")
    p.add_argument(
        "--target-labels", type=int, default=0, metavar="K", help="labelled target samples per class you have (0: none)"
    )
    p.add_argument("--unlabelled-source", action="store_true", help="the sources' labels are not available")
    p.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        default="none",
        help="feature transform fitted on the sources and the target (standardize pools them; standardize-domain "
        "standardises each by its own mean and spread)",
    )
    p.add_argument(
        "--class-descriptions",
        action="store_true",
        help="you have a description of every class (attributes or names): offer the zero-shot methods",
    )
    p.add_argument(
        "--check",
        choices=("probe", "finetune"),
        default="probe",
        help="negative-transfer check: linear probes (fast) or fine-tuning against training from scratch in "
        "5 folds (ten trainings per source; the fairer check for images)",
    )
    p.add_argument("--epochs", type=int, default=10, help="training of the quick source networks (LogME, LEEP, NCE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.advice import advise
    from transferkit.datasets import load_domain
    from transferkit.runs.inputs import fit_preprocess, mapped

    if not args.source or not args.target:
        raise UsageError("advise needs --source (one or more) and --target, DATASET:DOMAIN each.")
    sources = {}
    for key in args.source:
        d = load_domain(key, "train", label_column=args.label_column)
        sources[key] = d.unlabelled() if args.unlabelled_source else d
    target = load_domain(args.target, "train", label_column=args.label_column)
    f_sources, f_target = fit_preprocess(args.preprocess, list(sources.values()), target)
    sources = {k: mapped(d, f) for (k, d), f in zip(sources.items(), f_sources, strict=True)}
    target = mapped(target, f_target)
    if args.target_labels:
        target = target.few_shot(args.target_labels, args.seed)
    else:
        target = target.unlabelled()
    try:
        advice = advise(
            sources,
            target,
            seed=args.seed,
            epochs=args.epochs,
            check=args.check,
            class_descriptions=args.class_descriptions,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print_json({"source": args.source, "target": args.target, **advice.as_dict()})
    else:
        print(advice.to_text())
    return 0
