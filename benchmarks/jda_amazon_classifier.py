"""Why JDA loses on the raw Amazon reviews: its classifier, not its projection.

JDA's classifier is 1-NN (the paper's, and the default). On the twelve raw 5000-d Amazon pairs
(the suite's data and sizes, seed 0) this prints, per pair: source-only (the suite's shallow
network), 1-NN on the unit-normalised raw counts with no adaptation, JDA with its defaults, and JDA
with a logistic regression as its classifier. Target labels only score; nothing is chosen here, and
the logistic-regression column is a diagnostic, not a default chosen across data sets.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/jda_amazon_classifier.py   # about 2 min
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from transferkit import JDA, SourceOnly
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table


def main() -> None:
    rows, cols = [], ("source-only", "1-NN, no adaptation", "JDA (1-NN)", "JDA (logistic regression)")
    for task in suite_tasks(only=["amazon"]):
        source, target, test = task_data(task, 0, 2000)
        scores = {
            cols[0]: SourceOnly(seed=0).fit(source).score(test),
            cols[1]: KNeighborsClassifier(1).fit(normalize(source.X), source.y).score(normalize(test.X), test.y),
            cols[2]: JDA().fit(source, target).score(test),
            cols[3]: JDA(estimator=LogisticRegression(max_iter=2000)).fit(source, target).score(test),
        }
        print(f"[jda-amazon] {task.name}: " + ", ".join(f"{v:.4f}" for v in scores.values()), file=sys.stderr)
        rows.append({"task": task.name, **{k: f"{v:.3f}" for k, v in scores.items()}, "_scores": scores})
    rows.append({"task": "**mean**", **{c: f"**{np.mean([r['_scores'][c] for r in rows]):.3f}**" for c in cols}})
    print(markdown_table([{k: v for k, v in r.items() if k != "_scores"} for r in rows]))


if __name__ == "__main__":
    main()
