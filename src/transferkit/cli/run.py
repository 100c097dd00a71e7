"""``transferkit run METHOD``: one method on a source -> target pair (or on tasks, unseen classes, a cluster target)."""

from __future__ import annotations

import argparse

from transferkit.runs.options import FEATURES, PREPROCESS, RunOptions, UsageError, parse_value

EPILOG = """example: transferkit run dann --source amazon:books --target amazon:kitchen --json
         transferkit run multitask --tasks landmine --set weighting=uncertainty --json
         transferkit run progressive --sequence digits:mnist,digits:usps,fashion:mnist
         transferkit run dap --source fashion:mnist --unseen 2,3,5 --json
         transferkit run dann --source mine.csv --target theirs.csv --label-column y --predictions p.csv
list methods with `transferkit methods`, domains with `transferkit datasets`."""

#: Flags with their help; each becomes ``--name`` (underscores as dashes) and a RunOptions field.
_DATA = {
    "label_column": "CSV files: the column holding the labels (default: label); a file without it is unlabelled",
    "predictions": "write the predicted label of every target training sample (all rows of an unlabelled target "
    "file, in file order) to this CSV",
    "tasks": "multitask: a dataset (every domain a task: landmine, school) or comma-separated DATASET:DOMAIN keys",
    "sequence": "progressive: the tasks in order, e.g. digits:mnist,digits:usps,fashion:mnist",
    "pool": "transitive: candidate intermediate domains, e.g. rotmnist:15,rotmnist:30,rotmnist:45",
    "unseen": "zero-shot: the classes held out of training, e.g. 2,3,5 (fashion:mnist pullover, dress, sandal)",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="train one method on a source -> target pair and report target accuracy",
        description="Train METHOD on the labelled train split of --source and the unlabelled train split of "
        "--target; report accuracy on the target's test split. `multitask` learns every task of --tasks at "
        "once (per-task metrics and their mean); `progressive` adds one column per task of --sequence and "
        "scores every task after each.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", help="method name, e.g. dann or source-only (see `transferkit methods`)")
    p.add_argument(
        "--source",
        metavar="DATASET:DOMAIN|PATH",
        help="labelled source domain, e.g. amazon:books, or your own data: a .csv or .npz file or a folder "
        "with one subfolder of images per class",
    )
    p.add_argument(
        "--target",
        metavar="DATASET:DOMAIN|PATH",
        help="target domain, e.g. amazon:kitchen, or a file / folder as for --source; a labelled target file "
        "is split 75/25 (seeded), the 25 %% only scored, never trained on",
    )
    metavars = {"label_column": "NAME", "predictions": "FILE", "tasks": "SPEC", "sequence": "KEYS", "pool": "KEYS"}
    for name, help in _DATA.items():
        default = "label" if name == "label_column" else None
        p.add_argument(f"--{name.replace('_', '-')}", default=default, metavar=metavars.get(name, "LABELS"), help=help)
    p.add_argument(
        "--semantics",
        choices=("attributes", "names"),
        default="attributes",
        help="zero-shot: the shipped attribute table, or class names embedded by MiniLM (the text extra)",
    )
    p.add_argument(
        "--calibration",
        type=float,
        default=0.0,
        metavar="GAMMA",
        help="zero-shot: subtracted from the seen classes' scores in generalized ZSL (calibrated stacking)",
    )
    p.add_argument(
        "--target-labels",
        type=int,
        default=0,
        metavar="K",
        help="labelled target examples per class (only for methods that use target labels)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (initialisation, batches, subsampling)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (method default otherwise)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="samples per domain per step")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any hyperparameter, e.g. --set lambda_max=0.3")
    p.add_argument(
        "--preprocess",
        choices=PREPROCESS,
        default="none",
        help="feature transform fitted on training data (binary suits bag-of-words counts; standardize-domain "
        "standardises each domain by its own mean and spread, which CORAL assumes)",
    )
    p.add_argument(
        "--features",
        choices=FEATURES,
        default="none",
        help="learn features on unlabelled source+target first: msda (Chen et al. 2012, 5 layers, p=0.5)",
    )
    p.add_argument(
        "--select",
        metavar="VALIDATOR",
        default=None,
        help="choose without target labels: source, iwv, dev, dev-error, entropy, reverse; among --grid "
        "candidates, or else the best epoch of a network (oracle reads target labels: --grid only, flagged in "
        "every output)",
    )
    p.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="candidate values for --select, e.g. --grid lambda_max=0.03,0.1,0.3 (repeatable)",
    )
    p.add_argument(
        "--copy",
        default=None,
        metavar="SPEC",
        help="finetune: layers copied from the source network: all, body (all but the head), none, first:N, "
        "last:N, names:a,b",
    )
    p.add_argument("--freeze", action="store_true", help="finetune: freeze the copied layers")
    p.add_argument(
        "--conservative",
        default=None,
        choices=("l2sp", "lwf", "l2sp+lwf"),
        help="finetune: keep close to the source network (L2-SP on weights, LwF on outputs)",
    )
    p.add_argument(
        "--source-model",
        default=None,
        metavar="PATH",
        help="finetune: start from this trained network (a state_dict, e.g. OUT/model.pt of a run, or a checkpoint)",
    )
    p.add_argument("--n-source", type=int, default=None, help="subsample the source to N examples")
    p.add_argument("--n-target", type=int, default=None, help="subsample the unlabelled target to N examples")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint there atomically; rerun to resume")
    p.add_argument("--out", default=None, help="write run.json (and plots) into this folder")
    p.add_argument("--plot", action="store_true", help="with --out: t-SNE of source/target before and after")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def _pairs(items, flag: str, example: str, empty_value: bool) -> dict[str, str]:
    """``KEY=VALUE`` items (repeatable flag) as a dict; the value unparsed."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not (value or empty_value):
            raise UsageError(f"{flag} {item!r}: expected {example}")
        out[key] = value
    return out


def options_from(args) -> RunOptions:
    """The run options the flags give (``--set`` and ``--grid`` values read as Python literals)."""
    params = _pairs(args.set, "--set", "KEY=VALUE, e.g. --set lambda_max=0.3", empty_value=True)
    grid = _pairs(args.grid, "--grid", "KEY=V1,V2,..., e.g. --grid lambda_max=0.03,0.1,0.3", empty_value=False)
    given = {name: getattr(args, name) for name in RunOptions.names() if hasattr(args, name)}
    return RunOptions(
        **{
            **given,
            "params": {k: parse_value(v) for k, v in params.items()},
            "grid": {k: [parse_value(v) for v in values.split(",")] for k, values in grid.items()},
        }
    )


def handle(args) -> int:
    from transferkit.cli.run_text import print_record
    from transferkit.runs import run
    from transferkit.train.distributed import is_main_process

    record = run(args.method, args.source, args.target, options_from(args)).record
    if not is_main_process():  # under torchrun every rank trains; one reports
        return 0
    if args.json:
        from transferkit.cli._common import print_json

        print_json({k: v for k, v in record.items() if k != "history"})
    else:
        print_record(record, args.predictions)
    return 0
