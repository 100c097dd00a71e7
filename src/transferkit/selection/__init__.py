"""Choosing without target labels: label-free validators, hyperparameter search and the stopping epoch.

- :mod:`~transferkit.selection.validators`: functions of evidence (held-out source predictions,
  target predictions and features) that score a fitted model, higher is better;
- :mod:`~transferkit.selection.search`: :func:`select`, a grid search scored by a validator;
- :mod:`~transferkit.selection.epochs`: the ``on_epoch_end`` callback behind ``select_epoch``.
"""

from transferkit.selection.epochs import BestWeights, EpochSelector
from transferkit.selection.search import ORACLE_NOTE, SelectionResult, score_grid, select, split_source
from transferkit.selection.validators import (
    VALIDATORS,
    Evidence,
    Validator,
    density_ratio,
    dev_risk,
    evidence_from_model,
    get_validator,
    validate,
)

__all__ = [
    "BestWeights",
    "EpochSelector",
    "Evidence",
    "ORACLE_NOTE",
    "SelectionResult",
    "VALIDATORS",
    "Validator",
    "density_ratio",
    "dev_risk",
    "evidence_from_model",
    "get_validator",
    "score_grid",
    "select",
    "split_source",
    "validate",
]
