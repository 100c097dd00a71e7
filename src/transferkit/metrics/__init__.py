"""Metrics: accuracy, label-free prediction statistics, divergences between domains, zero-shot and
clustering scores, and transferability estimates."""

from transferkit.metrics.classification import accuracy, class_balance, is_collapsed, prediction_entropy
from transferkit.metrics.clustering import clustering_accuracy, nmi
from transferkit.metrics.divergence import mmd, proxy_a_distance
from transferkit.metrics.transferability import h_score, leep, logme, nce
from transferkit.metrics.zeroshot import gzsl_scores, harmonic_mean, per_class_accuracy, seen_unseen_curve

__all__ = [
    "accuracy",
    "class_balance",
    "clustering_accuracy",
    "gzsl_scores",
    "h_score",
    "harmonic_mean",
    "is_collapsed",
    "leep",
    "logme",
    "mmd",
    "nce",
    "nmi",
    "per_class_accuracy",
    "prediction_entropy",
    "proxy_a_distance",
    "seen_unseen_curve",
]
