r"""Transferability estimates: how well will a source model (or its features) serve a target task?

Each is a pure function of arrays computed on the *labelled target training data* passed through
the source model, before any fine-tuning; a higher score predicts a better result after transfer.
Scores are for *ranking* candidate sources on one target; their scales differ from target to
target and between estimators.

======================  ===========================  ====================  =================================
estimator               needs                        range                 sign
======================  ===========================  ====================  =================================
:func:`logme`           features (n, d), labels      log evidence / n      higher is better
:func:`leep`            source probabilities, labels (-inf, 0]             higher is better
:func:`nce`             source hard labels, labels   [-log C_target, 0]    higher is better
:func:`h_score`         features (n, d), labels      [0, min(d, C - 1)]    higher is better
======================  ===========================  ====================  =================================

References
----------
You, Liu, Wang & Long. LogME: Practical assessment of pre-trained models for transfer learning.
ICML 2021. Nguyen, Hassner, Seeger & Archambeau. LEEP: A new measure to evaluate transferability of
learned representations. ICML 2020. Tran, Nguyen & Hassner. Transferability and hardness of
supervised classification tasks (NCE). ICCV 2019. Bao, Li, Huang, Zhang, Tong & Zheng. An
information-theoretic approach to transferability in task transfer learning (H-score). ICIP 2019.
"""

from __future__ import annotations

import numpy as np

__all__ = ["h_score", "leep", "logme", "nce"]


def _labels(y, n: int, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} has shape {y.shape}; expected a 1-D array of labels.")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but there are {n} samples; expected one label per sample.")
    classes, idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"{name} has a single class ({classes.tolist()}); transferability to a one-class task is undefined."
        )
    return classes, idx


def _features(F, name: str = "features") -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] < 2 or F.shape[1] < 1:
        raise ValueError(f"{name} has shape {F.shape}; expected (n_samples, n_features) with n_samples >= 2.")
    if not np.isfinite(F).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return F


def _probabilities(P, name: str = "source_proba") -> np.ndarray:
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1 or P.shape[1] < 2:
        raise ValueError(f"{name} has shape {P.shape}; expected (n_samples, n_source_classes) probabilities.")
    if not np.isfinite(P).all() or (P < 0).any() or not np.allclose(P.sum(1), 1.0, atol=1e-4):
        worst = float(np.abs(P.sum(1) - 1).max()) if np.isfinite(P).all() else float("nan")
        raise ValueError(
            f"{name} must hold probabilities: non-negative rows that sum to 1 (largest deviation {worst:.3g}"
            f"{', negative entries' if (P < 0).any() else ''}). Apply a softmax to logits first."
        )
    return P


def leep(source_proba, y) -> float:
    r"""LEEP (Nguyen et al. 2020, eq. 2): the log expected empirical prediction.

    With :math:`\theta(x_i)` the source model's distribution over its own labels :math:`z`,
    :math:`\hat P(y, z) = \frac1n \sum_{i: y_i = y} \theta(x_i)_z`, :math:`\hat P(y \mid z) =
    \hat P(y, z) / \sum_{y'} \hat P(y', z)`:

    .. math:: T = \frac1n \sum_i \log \sum_z \hat P(y_i \mid z)\, \theta(x_i)_z \;\in (-\infty, 0].
    """
    P = _probabilities(source_proba)
    _, idx = _labels(y, len(P))
    joint = np.zeros((idx.max() + 1, P.shape[1]))
    np.add.at(joint, idx, P)
    joint /= len(P)
    conditional = joint / np.maximum(joint.sum(0, keepdims=True), 1e-300)  # P(y | z)
    eep = (P * conditional[idx]).sum(1)
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


def nce(source_labels, y) -> float:
    r"""Negative conditional entropy :math:`-H(Y \mid Z)` of target labels given source labels (Tran et al. 2019).

    ``source_labels`` are the source model's hard predictions on the target samples (or any
    labelling from the source task). :math:`\in [-\log C, 0]`; 0 when the source label determines
    the target label.
    """
    z = np.asarray(source_labels)
    _, y_idx = _labels(y, len(z))
    if z.ndim != 1:
        raise ValueError(f"source_labels has shape {z.shape}; expected a 1-D array of hard labels.")
    _, z_idx = np.unique(z, return_inverse=True)
    joint = np.zeros((y_idx.max() + 1, z_idx.max() + 1))
    np.add.at(joint, (y_idx, z_idx), 1.0)
    joint /= len(z)
    pz = joint.sum(0, keepdims=True)
    mask = joint > 0
    return float(np.sum(joint[mask] * np.log((joint / pz)[mask])))


def h_score(features, y) -> float:
    r"""H-score (Bao et al. 2019): :math:`\mathrm{tr}(\mathrm{cov}(f)^{+}\,\mathrm{cov}(\mathbb E[f \mid y]))`.

    The share of the features' variance explained by the class means, summed over directions;
    the pseudo-inverse keeps it defined for rank-deficient features. :math:`\in [0, \min(d, C-1)]`.
    """
    F = _features(features)
    classes, idx = _labels(y, len(F))
    F = F - F.mean(0)
    cov = F.T @ F / len(F)
    means = np.zeros((len(classes), F.shape[1]))
    np.add.at(means, idx, F)
    means /= np.bincount(idx)[:, None]
    g = means[idx]  # E[f | y] for every sample
    cov_g = g.T @ g / len(F)
    # pseudo-inverse through the symmetric eigendecomposition: with fewer samples than feature
    # dimensions cov is singular, and eigh is more robust there than the general SVD of pinv
    w, V = np.linalg.eigh(cov)
    keep = w > 1e-10 * max(float(w.max()), 1e-300)
    cov_pinv = (V[:, keep] / w[keep]) @ V[:, keep].T
    return float(np.trace(cov_pinv @ cov_g))


def _logme_one(s: np.ndarray, U: np.ndarray, t: np.ndarray, n: int, max_iter: int = 100, tol: float = 1e-5):
    """Maximise the evidence of ``t`` given features with squared singular values ``s`` and left vectors ``U``."""
    d = len(s)
    z = U.T @ t  # coordinates of t along the singular directions
    residual_perp = float(t @ t - z @ z)  # the part of t outside the column space of F

    def norms(alpha: float, beta: float) -> tuple[float, float]:
        """||m||^2 and ||F m - t||^2 of the posterior mean m at (alpha, beta)."""
        m2 = float(np.sum((beta * np.sqrt(s) * z / (alpha + beta * s)) ** 2))
        return m2, float(np.sum((alpha * z / (alpha + beta * s)) ** 2)) + residual_perp

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma = float(np.sum(beta * s / (alpha + beta * s)))
        m2, res2 = norms(alpha, beta)
        new_alpha = gamma / max(m2, 1e-12)
        new_beta = (n - gamma) / max(res2, 1e-12)
        done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2, res2 = norms(alpha, beta)
    evidence = (
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * res2
        - alpha / 2 * m2
        - 0.5 * np.sum(np.log(alpha + beta * s))
    )
    return evidence / n, alpha, beta


def logme(features, y) -> float:
    r"""LogME (You et al. 2021): the maximum log evidence of the labels given the features, per sample.

    For every class, a Bayesian linear model :math:`t = w^\top f + \epsilon` with
    :math:`w \sim \mathcal N(0, \alpha^{-1} I)`, :math:`\epsilon \sim \mathcal N(0, \beta^{-1})`
    and one-hot targets :math:`t`; the evidence

    .. math:: \mathcal L(\alpha, \beta) = \tfrac n2 \log\beta + \tfrac d2 \log\alpha - \tfrac n2 \log 2\pi
              - \tfrac\beta2 \lVert F m - t\rVert^2 - \tfrac\alpha2 \lVert m\rVert^2 - \tfrac12 \log\lvert A\rvert,

    :math:`A = \alpha I + \beta F^\top F`, :math:`m = \beta A^{-1} F^\top t`, is maximised by the
    paper's fixed-point updates :math:`\gamma = \sum_i \frac{\beta\sigma_i}{\alpha + \beta\sigma_i}`,
    :math:`\alpha = \gamma / m^\top m`, :math:`\beta = (n - \gamma)/\lVert Fm - t\rVert^2` (computed
    through one SVD of :math:`F`). LogME is :math:`\mathcal L / n` averaged over the classes. With
    fewer samples than feature dimensions the labels can be fitted exactly and :math:`\beta` grows
    without bound; the iteration then stops after ``max_iter`` steps, as the paper's code stops
    after a fixed number.
    """
    F = _features(features)
    classes, idx = _labels(y, len(F))
    n, d = F.shape
    U, sv, _ = np.linalg.svd(F, full_matrices=False)
    s = np.zeros(d)
    s[: len(sv)] = sv**2  # sigma_i, the eigenvalues of F^T F (zeros beyond the rank)
    U_full = np.zeros((n, d))
    U_full[:, : U.shape[1]] = U
    scores = []
    for c in range(len(classes)):
        t = (idx == c).astype(np.float64)
        scores.append(_logme_one(s, U_full, t, n)[0])
    return float(np.mean(scores))
