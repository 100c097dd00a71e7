"""One run of a method: load the data, fit (or select), score, and leave the record behind.

The application layer's engine: ``transferkit run``, ``transferkit bench``, the demo and the
benchmark scripts all call :func:`run`, which returns the run record (a JSON-ready dict) and the
fitted estimator.

    >>> from transferkit.runs import RunOptions, run
    >>> result = run("dann", "amazon:books", "amazon:dvd", RunOptions(seed=1, preprocess="binary"))
    >>> result.record["target_accuracy"]
"""

from __future__ import annotations

from transferkit.runs.clustering import run_clustering
from transferkit.runs.inputs import RunData, learn_features, load_pair, preprocess
from transferkit.runs.many_tasks import run_many_tasks
from transferkit.runs.multisource import run_multisource
from transferkit.runs.options import FEATURES, PREPROCESS, RunOptions, RunResult, UsageError, parse_value
from transferkit.runs.pair import run_pair
from transferkit.runs.transitive import run_transitive
from transferkit.runs.zeroshot import run_zeroshot

__all__ = [
    "FEATURES",
    "PREPROCESS",
    "RunData",
    "RunOptions",
    "RunResult",
    "UsageError",
    "learn_features",
    "load_pair",
    "parse_value",
    "preprocess",
    "run",
]


def run(method, source=None, target=None, options: RunOptions | None = None, *, target_test=None) -> RunResult:
    """Run ``method`` and return its record.

    Parameters
    ----------
    method : str or estimator
        A registered name (``transferkit methods``) or an estimator of a registered class, which is
        cloned; ``options`` then sets its hyperparameters and run settings as for a name.
    source, target : str or Domain, optional
        ``DATASET:DOMAIN`` keys or your own files, or two :class:`~transferkit.Domain` objects (a
        target Domain is adapted to without its labels). Zero-shot methods take ``source`` only;
        clustering takes ``target`` (and ``stc`` an auxiliary ``source``); multitask and
        progressive networks take neither (``options.tasks`` / ``options.sequence``).
    options : RunOptions, optional
        Seed, sizes, hyperparameters, selection, outputs.
    target_test : Domain, optional
        With a target Domain: the labelled sample to score on (else no score).

    Returns
    -------
    RunResult
        ``record``, the run record: at least method, seed, seconds and version, with the scores of
        the method's kind (``target_accuracy`` for classifiers, ``target_r2`` for regressors,
        per-task metrics for many tasks, ZSL and GZSL scores, clustering accuracy and NMI); and
        ``estimator``, the fitted model.

    Raises
    ------
    UsageError
        For options the method cannot use and bad hyperparameters, before any training.
    """
    from transferkit.methods import CLUSTERING, MANY_TASKS, MULTI_SOURCE, POOLED, ZERO_SHOT, get_method

    options = RunOptions() if options is None else options
    if isinstance(method, str):  # any case, dashes or underscores: "DANN", "source_only"
        method = method.strip().lower().replace("_", "-")
    name = method if isinstance(method, str) else getattr(type(method), "name", "")
    if isinstance(method, str) and not any(
        method in f for f in (MANY_TASKS, ZERO_SHOT, CLUSTERING, POOLED, MULTI_SOURCE)
    ):
        get_method(method)  # an unknown name is named first, with the closest known one
    families = ((MANY_TASKS, run_many_tasks), (ZERO_SHOT, run_zeroshot), (CLUSTERING, run_clustering))
    for family, runner in (*families, (POOLED, run_transitive), (MULTI_SOURCE, run_multisource)):
        if name in family:
            if options.target_labels:
                raise UsageError(
                    f"--target-labels {options.target_labels}: {name} draws no labelled target examples; drop the flag."
                )
            if not isinstance(method, str):
                raise UsageError(f"{name}: give this method by name; its run builds the estimator from the options.")
            return runner(name, source, target, options)
    if _missing(source) or _missing(target):
        raise UsageError(f"{name} needs --source and --target (DATASET:DOMAIN each).")
    return run_pair(method, source, target, options, target_test)


def _missing(domain) -> bool:
    return domain is None or (isinstance(domain, str) and not domain.strip())
