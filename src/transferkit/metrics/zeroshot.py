r"""Zero-shot metrics: per-class top-1 accuracy and the generalized protocol.

Xian, Lampert, Schiele & Akata ("Zero-shot learning -- the good, the bad and the ugly", CVPR
2017 / TPAMI 2018) fix the protocol used here:

- **ZSL**: the candidates are the unseen classes only; the score is the *mean per-class* top-1
  accuracy, so that a frequent class cannot carry the average,

  .. math:: \mathrm{acc}_{\mathcal Y} = \frac{1}{|\mathcal Y|} \sum_{c\in\mathcal Y}
            \frac{\#\{\text{correct predictions in } c\}}{\#\{\text{samples in } c\}}.

- **GZSL**: the candidates are seen *and* unseen classes; :math:`\mathrm{acc}_S` is the per-class
  accuracy on test samples of seen classes, :math:`\mathrm{acc}_U` on those of unseen classes, and
  their harmonic mean :math:`H = 2\,\mathrm{acc}_S\,\mathrm{acc}_U / (\mathrm{acc}_S + \mathrm{acc}_U)`
  is the headline (an arithmetic mean would reward a model that ignores the unseen classes).

- **Calibrated stacking** (Chao, Changpinyo, Gong & Sha, ECCV 2016): a model trained on seen
  classes scores them too high; subtract :math:`\gamma` from every seen class's score before the
  argmax. Sweeping :math:`\gamma` traces the seen-unseen accuracy curve, and its area (AUSUC) is a
  calibration-free summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GZSLScores",
    "SeenUnseenCurve",
    "calibrated_stacking",
    "gzsl_scores",
    "harmonic_mean",
    "per_class_accuracy",
    "seen_unseen_curve",
]


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-D arrays of one length.")
    if len(y_true) == 0:
        raise ValueError("per-class accuracy of zero samples is undefined; got empty arrays.")
    return y_true, y_pred


def per_class_accuracy(y_true, y_pred, classes=None) -> float:
    """Mean over classes of the top-1 accuracy within each class.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_samples,)
    classes : array-like, optional
        The classes to average over (default: those present in ``y_true``). A class listed here
        with no sample in ``y_true`` is an error: its accuracy is undefined.

    Returns
    -------
    float in [0, 1]
    """
    y_true, y_pred = _labels(y_true, y_pred)
    classes = np.unique(y_true) if classes is None else np.unique(np.asarray(classes))
    accs = []
    for c in classes:
        mask = y_true == c
        if not mask.any():
            raise ValueError(f"classes lists {c!r}, which has no sample in y_true; its accuracy is undefined.")
        accs.append(np.mean(y_pred[mask] == c))
    return float(np.mean(accs))


def harmonic_mean(seen: float, unseen: float) -> float:
    r""":math:`H = 2su/(s+u)`, and 0 when both accuracies are 0."""
    return 0.0 if seen + unseen == 0 else float(2 * seen * unseen / (seen + unseen))


@dataclass(frozen=True)
class GZSLScores:
    """Generalized zero-shot accuracies: per-class top-1 on seen and on unseen test classes, and H."""

    seen: float
    unseen: float
    H: float

    def as_dict(self) -> dict[str, float]:
        return {"seen": self.seen, "unseen": self.unseen, "H": self.H}


def gzsl_scores(y_true, y_pred, seen_classes, unseen_classes) -> GZSLScores:
    """Seen and unseen per-class accuracy of predictions made among *all* classes, and their H.

    ``y_true`` holds test samples of both kinds; each sample counts towards ``seen`` or ``unseen``
    by its true class. A true class in neither list is an error.
    """
    y_true, y_pred = _labels(y_true, y_pred)
    seen, unseen = np.unique(np.asarray(seen_classes)), np.unique(np.asarray(unseen_classes))
    both = np.intersect1d(seen, unseen)
    if len(both):
        raise ValueError(f"seen_classes and unseen_classes overlap: {both.tolist()}; a class is one or the other.")
    stray = np.setdiff1d(np.unique(y_true), np.concatenate([seen, unseen]))
    if len(stray):
        raise ValueError(f"y_true has classes {stray.tolist()} that are neither seen nor unseen.")
    is_seen = np.isin(y_true, seen)
    if is_seen.all() or not is_seen.any():
        kind = "seen" if is_seen.all() else "unseen"
        raise ValueError(f"y_true holds only {kind} classes; GZSL needs test samples of seen and of unseen classes.")
    s = per_class_accuracy(y_true[is_seen], y_pred[is_seen])
    u = per_class_accuracy(y_true[~is_seen], y_pred[~is_seen])
    return GZSLScores(seen=s, unseen=u, H=harmonic_mean(s, u))


def calibrated_stacking(scores: np.ndarray, seen_mask, gamma: float) -> np.ndarray:
    r"""Scores with :math:`\gamma` subtracted from every seen class's column (Chao et al. 2016, eq. 4).

    Parameters
    ----------
    scores : ndarray, shape (n_samples, n_classes)
    seen_mask : array-like of bool, shape (n_classes,)
        True for the columns of seen classes.
    gamma : float
        0 is the uncalibrated model; larger values move predictions towards unseen classes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    seen_mask = np.asarray(seen_mask, dtype=bool)
    if scores.ndim != 2 or seen_mask.shape != (scores.shape[1],):
        raise ValueError(
            f"scores {scores.shape} and seen_mask {seen_mask.shape} do not fit: expected (n_samples, n_classes) "
            "and (n_classes,)."
        )
    if not np.isfinite(gamma):
        raise ValueError(f"gamma={gamma!r}; expected a finite number.")
    return scores - gamma * seen_mask


@dataclass(frozen=True)
class SeenUnseenCurve:
    """Seen and unseen per-class accuracy along a sweep of the calibration ``gamma``; ``auc`` is AUSUC."""

    gamma: np.ndarray
    seen: np.ndarray
    unseen: np.ndarray
    auc: float

    def best_H(self) -> tuple[float, float]:
        """The largest harmonic mean on the curve and the gamma that gives it (an *oracle* choice on test labels)."""
        h = np.array([harmonic_mean(s, u) for s, u in zip(self.seen, self.unseen, strict=True)])
        i = int(h.argmax())
        return float(h[i]), float(self.gamma[i])


def seen_unseen_curve(scores, y_true, classes, seen_mask, n_points: int = 101) -> SeenUnseenCurve:
    """Sweep calibrated stacking from "always seen" to "always unseen" (Chao et al. 2016, Sec. 3.2).

    Parameters
    ----------
    scores : ndarray, shape (n_samples, n_classes)
        Scores over all classes, column ``j`` for ``classes[j]``.
    y_true : array-like, shape (n_samples,)
        Test samples of seen and unseen classes.
    classes : array-like, shape (n_classes,)
    seen_mask : array-like of bool, shape (n_classes,)
    n_points : int
        Gammas are spread over the range where the decision changes (plus both ends).

    Returns
    -------
    SeenUnseenCurve
        With ``auc`` the area under unseen accuracy against seen accuracy (trapezoids).
    """
    scores = np.asarray(scores, dtype=np.float64)
    classes, seen_mask = np.asarray(classes), np.asarray(seen_mask, dtype=bool)
    y_true = np.asarray(y_true)
    if scores.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"scores has shape {scores.shape}; expected (len(y_true), len(classes)) = ({len(y_true)}, {len(classes)})."
        )
    seen, unseen = classes[seen_mask], classes[~seen_mask]
    # the gap between the best seen and best unseen score decides each sample; sweep across all gaps
    gap = scores[:, seen_mask].max(1) - scores[:, ~seen_mask].max(1)
    lo, hi = float(gap.min()), float(gap.max())
    gammas = np.unique(np.concatenate([[lo - 1.0], np.linspace(lo, hi, n_points), [hi + 1.0]]))
    s_acc, u_acc = [], []
    for g in gammas:
        pred = classes[calibrated_stacking(scores, seen_mask, g).argmax(1)]
        r = gzsl_scores(y_true, pred, seen, unseen)
        s_acc.append(r.seen)
        u_acc.append(r.unseen)
    s_acc, u_acc = np.array(s_acc), np.array(u_acc)
    order = np.argsort(s_acc, kind="stable")
    x, yv = s_acc[order], u_acc[order]
    auc = float(np.sum((x[1:] - x[:-1]) * (yv[1:] + yv[:-1]) / 2))  # trapezoids
    return SeenUnseenCurve(gamma=gammas, seen=s_acc, unseen=u_acc, auc=auc)
