"""What a run takes besides the method and the domains, and the checks that fail before training."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, fields

__all__ = [
    "FEATURES",
    "PREPROCESS",
    "RunOptions",
    "RunResult",
    "UsageError",
    "check_grid",
    "method_params",
    "parse_value",
]

PREPROCESS = ("none", "binary", "log1p", "standardize", "standardize-domain")
FEATURES = ("none", "msda")


class UsageError(ValueError):
    """A user error to report in one line, without a traceback."""


@dataclass
class RunOptions:
    """The options of one run; the command line's flags of ``transferkit run`` by the same names.

    Attributes
    ----------
    seed : int
        Seed of initialisation, batches, subsampling and the few-shot draw.
    target_labels : int
        Labelled target examples per class (K in all for regression); only for methods that learn
        from target labels, drawn from the target's train split, never from its test split.
    n_source, n_target : int, optional
        Subsample the source / the unlabelled target to this many samples.
    label_column : str
        CSV files: the column holding the labels.
    preprocess : {"none", "binary", "log1p", "standardize", "standardize-domain"}
        A feature transform fitted on the training inputs only: ``standardize`` with one mean and
        spread over both domains, ``standardize-domain`` with each domain's own (the target test
        part with the unlabelled target's).
    features : {"none", "msda"}
        Features learnt on the unlabelled source and target inputs first.
    epochs, lr, batch_size : optional
        The networks' training length, initial learning rate and samples per step.
    params : dict
        Any other hyperparameter of the method by name (``--set KEY=VALUE``).
    select : str, optional
        A validator: chooses among ``grid``'s candidates, or else a network's epoch.
    grid : dict
        Candidate values by hyperparameter name, for ``select``.
    copy, freeze, conservative, source_model :
        Fine-tuning: the layers copied, whether they are frozen, L2-SP / LwF, the starting network.
    tasks, sequence : str, optional
        Multitask's tasks; progressive networks' tasks in order.
    pool : str, optional
        Transitive transfer's candidate intermediate domains.
    unseen, semantics, calibration :
        Zero-shot: the held-out classes, the class descriptions, the GZSL calibration.
    device, checkpoint_dir :
        Where to train; where to checkpoint (rerun to resume).
    out, plot, predictions :
        Folder for run.json, model.pt and plots; the t-SNE plot; a CSV of target predictions.
    quiet : bool
        No progress on stderr.
    """

    seed: int = 0
    target_labels: int = 0
    n_source: int | None = None
    n_target: int | None = None
    label_column: str = "label"
    preprocess: str = "none"
    features: str = "none"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    params: dict = field(default_factory=dict)
    select: str | None = None
    grid: dict = field(default_factory=dict)
    copy: str | None = None
    freeze: bool = False
    conservative: str | None = None
    source_model: str | None = None
    tasks: str | None = None
    sequence: str | None = None
    pool: str | None = None
    unseen: str | None = None
    semantics: str = "attributes"
    calibration: float = 0.0
    device: str = "auto"
    checkpoint_dir: str | None = None
    out: str | None = None
    plot: bool = False
    predictions: str | None = None
    quiet: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class RunResult:
    """What a run gives back: its record (JSON-ready) and the fitted estimator, for more than the record says."""

    record: dict
    estimator: object


def parse_value(text: str):
    """A Python literal (``0.3``, ``(64, 32)``, ``None``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _check_known(flag: str, names, known: dict) -> None:
    for key in names:
        if key not in known:
            raise UsageError(f"{flag} {key}: not a hyperparameter of this method; known: {', '.join(sorted(known))}")


def method_params(name: str, known: dict, options: RunOptions, flags=("epochs", "lr", "batch_size")) -> dict:
    """The hyperparameters ``options`` sets for a method whose parameters are ``known``.

    ``params`` (``--set``) first; the named flags win over it where given.
    """
    _check_known("--set", options.params, known)
    for key, flag in (("seed", "--seed"), ("device", "--device"), ("checkpoint_dir", "--checkpoint-dir")):
        if key in options.params:  # the run's own flag would silently win over it
            raise UsageError(f"--set {key}={options.params[key]!r}: {key} is a run setting; use {flag} instead.")
    overrides = dict(options.params)
    for flag in flags:
        if getattr(options, flag) is not None:
            if flag not in known:
                raise UsageError(f"--{flag.replace('_', '-')}: {name} has no such hyperparameter (not a network).")
            overrides[flag] = getattr(options, flag)
    return overrides


def check_grid(options: RunOptions, known: dict) -> dict:
    """``options.grid`` checked: known names, lists of candidates, and a validator to choose among them."""
    _check_known("--grid", options.grid, known)
    grid = {k: list(v) for k, v in options.grid.items()}
    if grid and not options.select:
        raise UsageError("--grid needs --select VALIDATOR to choose among the candidates (e.g. --select dev).")
    return grid
