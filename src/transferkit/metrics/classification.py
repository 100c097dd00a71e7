r"""Metrics of predictions that need no labels (entropy, class balance) and accuracy."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "prediction_entropy", "class_balance", "is_collapsed"]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-D arrays of one length.")
    if len(y_true) == 0:
        raise ValueError("accuracy of zero samples is undefined; got empty arrays.")
    return float(np.mean(y_true == y_pred))


def prediction_entropy(proba: np.ndarray) -> float:
    r"""Mean Shannon entropy of predicted distributions, :math:`-\frac1n\sum_i\sum_c p_{ic}\log p_{ic}` (nats)."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"proba has shape {p.shape}; expected (n_samples, n_classes) with n_samples > 0.")
    return float(-np.mean(np.sum(np.where(p > 0, p * np.log(np.clip(p, 1e-300, None)), 0.0), axis=1)))


def class_balance(y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Fraction of predictions falling in each of ``n_classes`` classes (indices 0..n_classes-1)."""
    y_pred = np.asarray(y_pred)
    if len(y_pred) == 0:
        raise ValueError("class_balance of zero predictions is undefined.")
    return np.bincount(y_pred.astype(np.int64), minlength=n_classes)[:n_classes] / len(y_pred)


def is_collapsed(y_pred: np.ndarray, n_classes: int, threshold: float = 0.95) -> bool:
    """True when one class takes at least ``threshold`` of the predictions of a multi-class model."""
    return n_classes > 1 and float(class_balance(y_pred, n_classes).max()) >= threshold
