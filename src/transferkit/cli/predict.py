"""``transferkit predict``: apply a saved model to a CSV, an .npz file or an image folder."""

from __future__ import annotations

import csv
import sys

from transferkit.cli._common import add_command, print_json


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "predict",
        "apply a model saved by `run --out DIR` to new samples, with the preprocessing it was trained with",
        "transferkit predict --model runs/dann --input new_reviews.csv --output predictions.csv",
    )
    p.add_argument("--model", required=True, help="a run's --out folder (or the model folder inside it)")
    p.add_argument("--input", required=True, help="a CSV or .npz file, or a folder of images")
    p.add_argument("--output", help="where to write the predictions as CSV (default: stdout)")
    p.add_argument("--label-column", help="CSV: the label column, if the file has one (default: the training run's)")
    p.add_argument("--task", help="multitask and progressive models: the task to predict for")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout (the CSV needs --output)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.runs.options import UsageError
    from transferkit.runs.predict import predict_file

    if args.json and not args.output:
        raise UsageError("--json prints a summary; give --output FILE for the predictions themselves.")
    result = predict_file(args.model, args.input, args.label_column, args.task)
    rows = zip(result.index, result.predictions.tolist(), strict=True)
    if args.output:
        try:
            with open(args.output, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["index", "prediction"])
                writer.writerows(rows)
        except OSError as err:
            raise UsageError(f"--output {args.output}: cannot write it ({err.strerror}).") from None
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(["index", "prediction"])
        writer.writerows(rows)
    summary = {"method": result.method, "n": len(result.index), "accuracy": result.accuracy, "output": args.output}
    if args.json:
        print_json(summary)
    elif result.accuracy is not None:
        print(f"accuracy on the labelled input: {result.accuracy:.4f} ({len(result.index)} samples)", file=sys.stderr)
    return 0
