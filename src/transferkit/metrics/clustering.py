r"""Clustering quality against true classes: accuracy under the best matching, and NMI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score

__all__ = ["clustering_accuracy", "nmi"]


def _pair(y_true, labels) -> tuple[np.ndarray, np.ndarray]:
    y_true, labels = np.asarray(y_true), np.asarray(labels)
    if y_true.ndim != 1 or y_true.shape != labels.shape:
        raise ValueError(f"y_true {y_true.shape} and labels {labels.shape} must be 1-D arrays of one length.")
    if len(y_true) == 0:
        raise ValueError("clustering quality of zero samples is undefined; got empty arrays.")
    return y_true, labels


def clustering_accuracy(y_true, labels) -> float:
    r"""Accuracy of the clusters under the one-to-one cluster-to-class matching that maximises it.

    :math:`\max_{\pi} \frac1n \sum_i [\pi(c_i) = y_i]` over injective maps :math:`\pi` from clusters
    to classes (the Hungarian algorithm on the contingency table); clusters beyond the number of
    classes count as wrong.
    """
    y_true, labels = _pair(y_true, labels)
    classes, y_idx = np.unique(y_true, return_inverse=True)
    clusters, c_idx = np.unique(labels, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (c_idx, y_idx), 1)
    r, c = linear_sum_assignment(-table)
    return float(table[r, c].sum() / len(y_true))


def nmi(y_true, labels) -> float:
    """Normalised mutual information between clusters and classes (arithmetic normalisation), in [0, 1]."""
    y_true, labels = _pair(y_true, labels)
    return float(normalized_mutual_info_score(y_true, labels))
