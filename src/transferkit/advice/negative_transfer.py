r"""Will the source help or hurt? A check of negative transfer on the labelled target data that exists.

Negative transfer is transfer that does worse than learning from the target alone (learning to
drive from riding a bicycle). Before committing to a source, compare the two on the labelled
target samples at hand: the same classifier, the same stratified folds, once on the target inputs
as they are (target-only) and once on the target samples *as the source represents them* (the
source network's features, a feature map learnt on the source, or any transform).
:func:`transfer_gain` returns the per-fold accuracies, the mean gain and its standard error, and a
verdict:

- ``"likely negative"`` when the gain is below zero by more than ``z`` standard errors;
- ``"likely positive"`` when it is above zero by more than ``z`` standard errors;
- ``"uncertain"`` otherwise (too few labelled samples to tell).

The folds are paired, and the K-fold split is repeated with fresh shuffles (``repeats``). The
standard error is the corrected resampled one of Nadeau & Bengio (2003), as Bouckaert & Frank
(2004) apply it to repeated K-fold: over the :math:`J = rK` per-fold differences :math:`d_j`,

.. math:: \widehat{\mathrm{se}} = \sqrt{\Big(\frac1J + \frac{n_\text{test}}{n_\text{train}}\Big)\,
          \hat\sigma^2_d}, \qquad \frac{n_\text{test}}{n_\text{train}} = \frac{1}{K-1},

because folds that share training samples are not independent: the naive :math:`\hat\sigma_d/\sqrt{J}`
is too small, and on the suite it called helpful sources harmful (``benchmarks/RESULTS.md``).

:func:`finetune_gain` asks the same question of networks: the source network fine-tuned on each
fold against the same network trained from scratch. It costs two trainings per fold, and on
images it is the fairer comparison: a linear probe on raw pixels is a much weaker target-only
learner than a CNN trained from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["TransferGain", "transfer_gain", "finetune_gain"]


@dataclass(frozen=True)
class TransferGain:
    """Cross-validated accuracy with the source's representation against target-only, fold by fold."""

    transfer: np.ndarray
    target_only: np.ndarray
    gain: float
    std_err: float
    verdict: str

    @property
    def likely_negative(self) -> bool:
        return self.verdict == "likely negative"

    def as_dict(self) -> dict:
        return {
            "transfer_accuracy": float(self.transfer.mean()),
            "target_only_accuracy": float(self.target_only.mean()),
            "gain": self.gain,
            "std_err": self.std_err,
            "verdict": self.verdict,
        }


def transfer_gain(
    X_transfer, X_target, y, classifier=None, cv: int = 5, z: float = 1.0, seed: int = 0, repeats: int = 10
) -> TransferGain:
    """Compare a classifier on the source's representation of the target samples with target-only.

    Parameters
    ----------
    X_transfer : array-like, shape (n, d1)
        The labelled target samples as the source represents them.
    X_target : array-like, shape (n, ...)
        The same samples as they are (flattened).
    y : array-like, shape (n,)
        Their labels.
    classifier : scikit-learn classifier, optional
        Default: logistic regression on standardised inputs.
    cv : int
        Stratified folds (reduced to the smallest class's size when that is smaller).
    z : float
        How many standard errors away from zero a gain must be for a verdict.
    repeats : int
        How many times the K-fold split is drawn afresh (the probes are cheap; more repeats, a
        steadier mean).
    """
    from transferkit.data import check_array

    A, B = check_array(X_transfer, "X_transfer"), check_array(X_target, "X_target")  # finite numbers, or a clear error
    A, B, y = A.reshape(len(A), -1), B.reshape(len(B), -1), np.asarray(y)
    if not (len(A) == len(B) == len(y)):
        raise ValueError(
            f"X_transfer has {len(A)} samples, X_target {len(B)} and y {len(y)}; expected the same labelled "
            "target samples in both views."
        )
    if not (isinstance(repeats, (int, np.integer)) and repeats >= 1):
        raise ValueError(f"repeats={repeats!r}; expected a whole number of at least 1.")
    folds = _folds(y, cv)
    base = classifier if classifier is not None else make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    transfer, alone = [], []
    for train, test in splitter.split(B, y):
        transfer.append(np.mean(clone(base).fit(A[train], y[train]).predict(A[test]) == y[test]))
        alone.append(np.mean(clone(base).fit(B[train], y[train]).predict(B[test]) == y[test]))
    return _verdict(np.array(transfer), np.array(alone), z, folds)


def finetune_gain(
    source_model, X, y, cv: int = 5, z: float = 1.0, seed: int = 0, epochs: int = 30, **training
) -> TransferGain:
    """Fine-tuning the source network against the same network trained from scratch, fold by fold.

    The costlier and more faithful form of :func:`transfer_gain`: on each fold, the source
    network with a new head is fine-tuned on the training part (``FineTune(copy="body")``), and the
    same architecture is trained on it from scratch (``TargetOnly``), with the same epochs and
    seed. Both are scored on the held-out part. This compares what transfer actually does with
    what target-only learning actually does, where :func:`transfer_gain` compares linear probes.

    Parameters
    ----------
    source_model : torch.nn.Module
        The source network (a :class:`~transferkit.nn.backbones.StagedNet`, e.g. ``model_`` of a
        fitted estimator).
    X : array-like, shape (n, ...)
        The labelled target samples, in the network's input shape.
    y : array-like, shape (n,)
    cv : int
        Stratified folds (reduced to the smallest class's size when that is smaller).
    z : float
        How many standard errors away from zero a gain must be for a verdict.
    seed : int
        Seeds initialisation and batch order: the same seed gives the same model.
    epochs : int
        Training epochs of both networks on every fold.
    **training
        Further training parameters of both (``lr``, ``batch_size``, ``device``...).
    """
    from torch import nn

    from transferkit.data import Domain
    from transferkit.methods.finetune import FineTune, TargetOnly

    if not isinstance(source_model, nn.Module):
        raise TypeError(f"source_model is {type(source_model).__name__}; expected the source network (nn.Module).")
    target = Domain(X, y, "target")
    folds = _folds(target.y, cv)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    transfer, alone = [], []
    for train, test in splitter.split(target.X.reshape(len(target), -1), target.y):
        part, held_out = target.subset(train), target.subset(test)
        # source_model is a network, so FineTune reads no source data: the first argument is a placeholder
        tuned = FineTune(copy="body", source_model=source_model, epochs=epochs, seed=seed, **training)
        transfer.append(tuned.fit(part, part).score(held_out))
        alone.append(TargetOnly(epochs=epochs, seed=seed, **training).fit(part, part).score(held_out))
    return _verdict(np.array(transfer), np.array(alone), z, folds)


def _folds(y: np.ndarray, cv: int) -> int:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"y has a single class ({classes.tolist()}); there is no classification task to compare on.")
    folds = min(int(cv), int(counts.min()))
    if folds < 2:
        raise ValueError(
            f"the smallest class has {counts.min()} labelled sample(s); at least 2 per class are needed to "
            "cross-validate transfer against target-only."
        )
    return folds


def _verdict(transfer: np.ndarray, alone: np.ndarray, z: float, folds: int) -> TransferGain:
    """The paired gain, its corrected standard error, and the verdict of the module docstring."""
    diff = transfer - alone
    gain = float(diff.mean())
    std_err = float(np.sqrt((1 / len(diff) + 1 / (folds - 1)) * diff.var(ddof=1)))
    if gain < -z * std_err and gain < 0:
        verdict = "likely negative"
    elif gain > z * std_err and gain > 0:
        verdict = "likely positive"
    else:
        verdict = "uncertain"
    return TransferGain(transfer, alone, gain, std_err, verdict)
