"""Hyperparameter selection for domain adaptation without target labels.

:func:`select` is a grid search whose score is a label-free validator
(:mod:`transferkit.selection.validators`): the labelled source is split into a training part and a
held-out validation part (stratified); every candidate is fitted on the training part and the
unlabelled target, scored, and the best one is refitted on the whole source. Target labels enter
only through the validator named ``oracle``, and the result says so (``uses_target_labels``).

    >>> result = select(DANN(), {"lambda_max": [0.03, 0.1, 0.3]}, source, target.unlabelled(), "dev")
    >>> result.best_params, result.best_estimator_.score(target_test)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, train_test_split

from transferkit.data import Domain, as_domain
from transferkit.selection.validators import VALIDATORS, evidence_from_model, get_validator, untrusted

__all__ = ["SelectionResult", "choose", "select", "score_grid", "split_source", "ORACLE_NOTE"]

ORACLE_NOTE = "selected by the ORACLE: it read target labels, so this is an upper bound, not model selection"


@dataclass
class SelectionResult:
    """Scores of every candidate under every validator asked for, and the choice of the first.

    ``untrusted`` holds, per validator and candidate, why the score cannot be chosen with (``None``
    when it can; see :func:`~transferkit.selection.validators.untrusted`); ``warnings`` says when the
    first validator could not choose and which candidate was kept instead.
    """

    validator: str
    candidates: list[dict]
    scores: dict[str, list[float]]  # validator -> one score per candidate (higher is better)
    best_index: int
    uses_target_labels: bool
    best_estimator_: object = None
    fitted: list = field(default_factory=list, repr=False)  # the candidates fitted on the source's train part
    untrusted: dict[str, list[str | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    default_index: int = 0  # kept when no trusted score decides: the estimator's own settings, else the first

    @property
    def best_params(self) -> dict:
        return self.candidates[self.best_index]

    def choice(self, validator: str) -> int:
        """Index of the candidate ``validator`` would pick (its trusted scores only; a tie keeps the first)."""
        reasons = self.untrusted.get(validator) or [None] * len(self.candidates)
        return choose(self.scores[validator], reasons, self.default_index)[0]

    def to_dict(self) -> dict:
        out = {
            "validator": self.validator,
            "uses_target_labels": self.uses_target_labels,
            "best_params": self.best_params,
            "candidates": [
                {"params": c, **{v: s[i] for v, s in self.scores.items()}} for i, c in enumerate(self.candidates)
            ],
        }
        for i, c in enumerate(out["candidates"]):
            reasons = {v: r[i] for v, r in self.untrusted.items() if r[i] is not None}
            if reasons:
                c["untrusted"] = reasons
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.uses_target_labels:
            out["note"] = ORACLE_NOTE
        return out


def choose(scores: list[float], reasons: list[str | None], fallback: int) -> tuple[int, str | None]:
    """The index of the best trusted score, or ``fallback`` and why when no score can decide.

    Untrusted scores (a reason given) never win. When none is trusted, or every trusted score ties
    with two or more candidates, the scores say nothing about the candidates: ``fallback`` is kept.
    """
    trusted = [i for i, r in enumerate(reasons) if r is None]
    if not trusted:
        return fallback, f"no candidate's score can be trusted ({next(r for r in reasons if r)})"
    values = np.array([scores[i] for i in trusted], dtype=np.float64)
    if len(trusted) > 1 and np.ptp(values) <= 1e-12 * max(1.0, np.abs(values).max()):
        return fallback, f"every candidate scores the same ({values[0]:.6g})"
    return trusted[int(np.argmax(values))], None


def split_source(source: Domain, val_fraction: float, seed: int) -> tuple[Domain, Domain]:
    """A stratified train / held-out validation split of the labelled source."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}; expected a fraction strictly between 0 and 1.")
    if source.y is None:
        raise ValueError("source has no labels; selection holds out labelled source data for validation.")
    _, counts = np.unique(source.y, return_counts=True)
    n_val = int(round(val_fraction * len(source)))
    if counts.min() < 2 or n_val < len(counts) or len(source) - n_val < len(counts):
        raise ValueError(
            f"source has {len(source)} samples (smallest class {counts.min()}); too few to hold out "
            f"val_fraction={val_fraction} for validation with every class on both sides."
        )
    idx_train, idx_val = train_test_split(np.arange(len(source)), test_size=n_val, stratify=source.y, random_state=seed)
    return source.subset(np.sort(idx_train)), source.subset(np.sort(idx_val))


def score_grid(
    estimator,
    grid: dict[str, list],
    source,
    target,
    validators=tuple(v for v in VALIDATORS if v != "oracle"),
    target_test=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    verbose: bool = False,
) -> SelectionResult:
    """Fit ``estimator`` with each parameter combination of ``grid``; score each with every validator.

    The first validator decides ``best_index``. ``target_test`` (labelled) is needed only when
    ``validators`` includes ``oracle``; it is never handed to any other validator.
    """
    validators = [validators] if isinstance(validators, str) else list(validators)
    if not validators:
        raise ValueError("validators is empty; name at least one (e.g. 'dev').")
    for name in validators:
        get_validator(name)
    oracle = [v for v in validators if VALIDATORS[v].uses_target_labels]
    if oracle and target_test is None:
        raise ValueError(f"validator {oracle[0]!r} reads target labels; pass the labelled target_test.")
    if not oracle and target_test is not None:
        raise ValueError("target_test was given, but no validator asked for may read target labels; drop it.")
    candidates = list(ParameterGrid(grid)) if grid else [{}]
    known = estimator.get_params()
    for key in {k for c in candidates for k in c}:
        if key not in known:
            raise ValueError(f"grid names {key!r}, not a hyperparameter of {type(estimator).__name__}.")
    source = as_domain(source, "source")
    target = as_domain(target, "target")
    train, val = split_source(source, val_fraction, seed)
    scores = {v: [] for v in validators}
    reasons = {v: [] for v in validators}
    fitted = []
    for i, params in enumerate(candidates):
        model = _candidate(estimator, params, f"candidate-{i + 1}").fit(train, target)
        label_free = evidence_from_model(model, val, target)
        for v in validators:
            evidence = (
                evidence_from_model(model, target_test=target_test) if VALIDATORS[v].uses_target_labels else label_free
            )
            scores[v].append(VALIDATORS[v].score(evidence, seed))
            reasons[v].append(untrusted(v, evidence, scores[v][-1]))
        fitted.append(model)
        if verbose:
            shown = "  ".join(f"{v} {scores[v][-1]:.4f}" for v in validators)
            print(f"[select {i + 1}/{len(candidates)}] {params}: {shown}", file=sys.stderr, flush=True)
    own = _own(estimator, candidates)
    default = next((i for i, c in enumerate(candidates) if c == own), 0)  # else the first: kept when no score decides
    best, why = choose(scores[validators[0]], reasons[validators[0]], default)
    warnings = []
    if why is not None:
        kept = "the estimator's own settings" if candidates[default] == own else "the first"
        warnings.append(
            f"validator {validators[0]!r} could not choose: {why}; kept {candidates[default]} ({kept} candidate)."
        )
    return SelectionResult(
        validator=validators[0],
        candidates=candidates,
        scores=scores,
        best_index=best,
        uses_target_labels=VALIDATORS[validators[0]].uses_target_labels,
        fitted=fitted,
        untrusted=reasons,
        warnings=warnings,
        default_index=default,
    )


def _candidate(estimator, params: dict, folder: str):
    """A clone with ``params``; a checkpointing estimator checkpoints each candidate in its own sub-folder."""
    model = clone(estimator).set_params(**params)
    checkpoint_dir = model.get_params().get("checkpoint_dir")
    if checkpoint_dir:
        model.set_params(checkpoint_dir=os.path.join(checkpoint_dir, folder))
    return model


def _own(estimator, candidates: list[dict]) -> dict:
    params = estimator.get_params()
    return {k: params[k] for k in candidates[0]}


def select(
    estimator,
    grid: dict[str, list],
    source,
    target,
    validator: str = "dev",
    target_test=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    refit: bool = True,
    verbose: bool = False,
) -> SelectionResult:
    """Choose hyperparameters from ``grid`` by the label-free ``validator``; refit on the whole source.

    ``target`` must come without labels. With ``refit=False`` the chosen model is the one fitted on
    the source's training part. The ``oracle`` validator needs ``target_test`` and the result is
    flagged (``uses_target_labels=True``).
    """
    result = score_grid(estimator, grid, source, target, [validator], target_test, val_fraction, seed, verbose)
    if refit:
        result.best_estimator_ = _candidate(estimator, result.best_params, "refit").fit(source, target)
    else:
        result.best_estimator_ = result.fitted[result.best_index]
    import warnings

    for message in result.warnings:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    if result.uses_target_labels:
        warnings.warn(ORACLE_NOTE, UserWarning, stacklevel=2)
    return result
