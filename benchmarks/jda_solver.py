"""JDA's eigen solver: the dense d x d solve against ARPACK's Lanczos iteration, time and agreement.

Each round of JDA (and BDA) solves X H X^T a = phi (X M X^T + mu I) a for the k = 100 leading
directions. ``eigen_solver="dense"`` forms both d x d matrices; ``"arpack"`` works from products
with the samples only, and reads bag-of-words samples as CSR. Both solve the same problem, so the
pseudo-labels and target predictions should agree; the table gives the fit time of each in one
process, one after the other, their ratio, and the share of target predictions on which they agree.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/jda_solver.py   # about 6 min

Tasks: the suite's raw Amazon books -> kitchen (5000 features, 2000 + 2000 reviews), where "auto"
picks ARPACK, and the suite's 16x16 USPS -> MNIST (256 pixels), where it keeps the dense solve.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from transferkit import BDA, JDA
from transferkit.protocols.suite import suite_tasks, task_data
from transferkit.report import markdown_table

TASKS = ("amazon books->kitchen", "digits16 usps->mnist")


def timed_fit(cls, solver: str, source, target):
    t0 = time.perf_counter()
    model = cls(eigen_solver=solver).fit(source, target)
    return model, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated suite task names")
    args = parser.parse_args()
    rows = []
    for task in suite_tasks(only=[t.strip() for t in args.tasks.split(",")]):
        source, target, test = task_data(task, 0, 2000)
        for cls in (JDA, BDA):
            fits = {}
            for solver in ("dense", "arpack"):
                fits[solver] = timed_fit(cls, solver, source, target)
                print(f"[jda-solver] {task.name} {cls.__name__} {solver}: {fits[solver][1]:.1f} s", file=sys.stderr)
            (dense, t_dense), (arpack, t_arpack) = fits["dense"], fits["arpack"]
            rows.append(
                {
                    "task": task.name,
                    "method": cls.__name__,
                    "features": int(np.prod(source.feature_shape)),
                    "dense (s)": f"{t_dense:.1f}",
                    "arpack (s)": f"{t_arpack:.1f}",
                    "arpack / dense": f"{t_arpack / t_dense:.3f}",
                    "accuracy dense / arpack": f"{dense.score(test):.4f} / {arpack.score(test):.4f}",
                    "predictions agree": f"{np.mean(dense.predict(test.X) == arpack.predict(test.X)):.4f}",
                }
            )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
