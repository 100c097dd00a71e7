"""Metrics: accuracy, label-free prediction statistics and divergences between domains."""

from transferkit.metrics.classification import accuracy, class_balance, is_collapsed, prediction_entropy
from transferkit.metrics.divergence import mmd, proxy_a_distance

__all__ = ["accuracy", "class_balance", "is_collapsed", "mmd", "prediction_entropy", "proxy_a_distance"]
