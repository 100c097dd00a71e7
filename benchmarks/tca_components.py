"""TCA's number of components, chosen across data sets: TCA at m = 10, 30 and 100 against its own
classifier (logistic regression) on the raw features, on the suite's tasks (seed 0, at most 2000
samples per domain, as in ``transferkit bench suite``).

    python benchmarks/tca_components.py > benchmarks/out/tca_components.md

Prints a Markdown table of target accuracies; progress on stderr.
"""

from __future__ import annotations

import sys
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from transferkit import TCA
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table

TASKS = (
    "synthetic covariate",
    "synthetic blobs",
    "mushroom enlarging->tapering",
    "newsgroups comp-vs-sci 1->2",
    "newsgroups rec-vs-talk 2->1",
    "amazon400 books->kitchen",
    "amazon400 dvd->books",
    "amazon400 electronics->dvd",
    "digits16 mnist->usps",
    "digits16 usps->mnist",
)


def main() -> None:
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    for task in (t for t in suite_tasks() if t.name in TASKS):
        source, target, test = task_data(task, 0, 2000)
        flat = [d.X.reshape(len(d), -1) for d in (source, target, test)]
        row = {"task": task.name, "logistic regression": LogisticRegression(max_iter=2000).fit(flat[0], source.y)}
        row["logistic regression"] = f"{row['logistic regression'].score(flat[2], test.y):.3f}"
        for m in (10, 30, 100):
            try:
                row[f"TCA m={m}"] = f"{TCA(n_components=m).fit(source, target).score(test):.3f}"
            except ValueError:  # more components than the kernel's numerical rank
                row[f"TCA m={m}"] = "-"
        row["TCA auto"] = f"{TCA().fit(source, target).score(test):.3f}"
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
