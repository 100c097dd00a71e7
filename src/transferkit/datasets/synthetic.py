"""Seeded synthetic transfer problems with one known kind of dataset shift each.

Every generator returns a :class:`~transferkit.data.Task` whose ``source`` is labelled, whose
``target`` is an unlabelled sample of the target distribution and whose ``target_test`` is a
second, labelled, independent sample of it (``n_test`` samples, default ``n_target``). Same
arguments and seed, same arrays.

=====================  ===========================  ==============================
generator              what changes                 what stays fixed
=====================  ===========================  ==============================
make_covariate_shift   p(x): the input mean moves   p(y|x): one labelling rule
make_label_shift       p(y): the class proportions  p(x|y): the class Gaussians
make_concept_shift     p(y|x): the boundary turns   p(x): the input distribution
make_blobs_shift       p(x|y): rotation + shift     p(y): balanced classes
=====================  ===========================  ==============================
"""

from __future__ import annotations

import numpy as np

from ..data import Domain, Task

__all__ = ["make_blobs_shift", "make_concept_shift", "make_covariate_shift", "make_label_shift"]


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r}; expected an integer >= {minimum}.")
    return int(value)


def _exact_counts(prior: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` samples over classes as close to ``prior`` as integers allow."""
    exact = prior * n
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def _labels(prior: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` shuffled labels whose class counts follow ``prior`` exactly (up to rounding)."""
    return rng.permutation(np.repeat(np.arange(len(prior)), _exact_counts(prior, n)))


def _prior(prior, n_classes: int, name: str, default: np.ndarray) -> np.ndarray:
    if prior is None:
        return default
    p = np.asarray(prior, dtype=np.float64)
    if p.shape != (n_classes,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"{name}={prior!r}; expected {n_classes} non-negative numbers summing to 1.")
    return p


def _rotation(n_features: int, degrees: float) -> np.ndarray:
    """Rotation by ``degrees`` in the plane of the first two features (identity elsewhere)."""
    R = np.eye(n_features)
    a = np.deg2rad(degrees)
    R[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return R


def _task(name: str, source: tuple, target: tuple, test: tuple) -> Task:
    return Task(
        Domain(source[0], source[1], f"{name}:source"),
        Domain(target[0], None, f"{name}:target"),
        Domain(test[0], test[1], f"{name}:target"),
        name=f"synthetic:{name}",
    )


# --------------------------------------------------------------------------------------------
# Covariate shift
# --------------------------------------------------------------------------------------------
def covariate_rule(X: np.ndarray) -> np.ndarray:
    """The fixed labelling rule of :func:`make_covariate_shift`: ``y = 1[x_1 > sin(pi x_0 / 2)]``."""
    return (X[:, 1] > np.sin(np.pi * X[:, 0] / 2)).astype(np.int64)


def make_covariate_shift(
    n_source: int = 500,
    n_target: int = 500,
    n_features: int = 2,
    shift: float = 2.0,
    n_test: int | None = None,
    seed: int = 0,
) -> Task:
    """A binary problem with pure covariate shift: p(x) moves, p(y|x) is fixed.

    Source inputs are ``N(0, I)``; target inputs are ``N(shift * e_0, I)`` (the mean moves by
    ``shift`` along the first feature). Every sample is labelled by the same deterministic,
    nonlinear rule :func:`covariate_rule`, ``y = 1[x_1 > sin(pi x_0 / 2)]``; features beyond the
    first two are irrelevant noise. Near the source the boundary rises, near a target moved by
    2 it falls, so a linear model fitted on the source extrapolates badly while importance
    weighting or a flexible model does not.

    Parameters
    ----------
    n_source, n_target : int
        Sizes of the labelled source and the unlabelled target samples.
    n_features : int
        Input dimension, at least 2.
    shift : float
        Distance between the source and target input means.
    n_test : int, optional
        Size of the labelled target test sample (default ``n_target``).
    seed : int
        Seed of every random draw.

    Returns
    -------
    Task
        float32 inputs, int64 labels in {0, 1}.
    """
    n_s, n_t = _count(n_source, "n_source"), _count(n_target, "n_target")
    n_e = n_t if n_test is None else _count(n_test, "n_test")
    d = _count(n_features, "n_features", 2)
    rng = np.random.default_rng(seed)
    mean_t = np.zeros(d)
    mean_t[0] = shift

    def draw(n: int, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = rng.standard_normal((n, d)) + mean
        return X.astype(np.float32), covariate_rule(X.astype(np.float32))

    return _task("covariate-shift", draw(n_s, np.zeros(d)), draw(n_t, mean_t), draw(n_e, mean_t))


# --------------------------------------------------------------------------------------------
# Label shift
# --------------------------------------------------------------------------------------------
def class_means(n_classes: int, n_features: int, distance: float) -> np.ndarray:
    """Fixed class centres: evenly on a circle of radius ``distance`` in the first two features
    (on a line, ``distance`` apart, when ``n_features == 1``)."""
    means = np.zeros((n_classes, n_features))
    if n_features == 1:
        means[:, 0] = distance * (np.arange(n_classes) - (n_classes - 1) / 2)
    else:
        angles = 2 * np.pi * np.arange(n_classes) / n_classes
        means[:, 0], means[:, 1] = distance * np.cos(angles), distance * np.sin(angles)
    return means


def make_label_shift(
    n_source: int = 500,
    n_target: int = 500,
    n_features: int = 2,
    n_classes: int = 2,
    source_prior=None,
    target_prior=None,
    class_sep: float = 1.0,
    n_test: int | None = None,
    seed: int = 0,
) -> Task:
    """A problem with pure label (prior) shift: p(y) changes, p(x|y) is fixed.

    Class ``k`` draws inputs from ``N(mu_k, I)`` in both domains, with the centres of
    :func:`class_means` (radius ``class_sep``). Only the class proportions differ: the source
    follows ``source_prior`` (default uniform) and the target ``target_prior`` (default
    proportional to 4^-k, e.g. 0.8 / 0.2 for two classes). Class counts match the priors
    exactly up to rounding, so the shift is visible in every sample.

    Parameters
    ----------
    n_source, n_target : int
        Sizes of the labelled source and the unlabelled target samples.
    n_features : int
        Input dimension (1 or more).
    n_classes : int
        Number of classes (2 or more).
    source_prior, target_prior : array-like of shape (n_classes,), optional
        Class proportions of each domain.
    class_sep : float
        Distance of the class centres from the origin.
    n_test : int, optional
        Size of the labelled target test sample (default ``n_target``).
    seed : int
        Seed of every random draw.

    Returns
    -------
    Task
        float32 inputs, int64 labels in 0..n_classes-1.
    """
    n_s, n_t = _count(n_source, "n_source"), _count(n_target, "n_target")
    n_e = n_t if n_test is None else _count(n_test, "n_test")
    d, k = _count(n_features, "n_features"), _count(n_classes, "n_classes", 2)
    p_s = _prior(source_prior, k, "source_prior", np.full(k, 1 / k))
    skew = 4.0 ** -np.arange(k)
    p_t = _prior(target_prior, k, "target_prior", skew / skew.sum())
    means = class_means(k, d, class_sep)
    rng = np.random.default_rng(seed)

    def draw(n: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = _labels(prior, n, rng)
        return (means[y] + rng.standard_normal((n, d))).astype(np.float32), y

    return _task("label-shift", draw(n_s, p_s), draw(n_t, p_t), draw(n_e, p_t))


# --------------------------------------------------------------------------------------------
# Concept shift
# --------------------------------------------------------------------------------------------
def concept_direction(n_features: int, angle: float) -> np.ndarray:
    """The normal of the linear boundary, ``e_0`` turned by ``angle`` degrees towards ``e_1``."""
    return _rotation(n_features, angle)[:, 0]


def make_concept_shift(
    n_source: int = 500,
    n_target: int = 500,
    n_features: int = 2,
    angle: float = 60.0,
    n_test: int | None = None,
    seed: int = 0,
) -> Task:
    """A binary problem with pure concept shift: p(y|x) changes, p(x) is fixed.

    Inputs are ``N(0, I)`` in both domains. The source labels are ``y = 1[x . w_s > 0]`` with
    ``w_s = e_0``; the target labels use ``w_t``, the same normal rotated by ``angle`` degrees in
    the plane of the first two features (:func:`concept_direction`). A point's label therefore
    differs between the domains with probability ``angle / 180``, and no method that sees only
    unlabelled target inputs can detect the change.

    Parameters
    ----------
    n_source, n_target : int
        Sizes of the labelled source and the unlabelled target samples.
    n_features : int
        Input dimension, at least 2.
    angle : float
        Rotation of the decision boundary, in degrees.
    n_test : int, optional
        Size of the labelled target test sample (default ``n_target``).
    seed : int
        Seed of every random draw.

    Returns
    -------
    Task
        float32 inputs, int64 labels in {0, 1}.
    """
    n_s, n_t = _count(n_source, "n_source"), _count(n_target, "n_target")
    n_e = n_t if n_test is None else _count(n_test, "n_test")
    d = _count(n_features, "n_features", 2)
    rng = np.random.default_rng(seed)

    def draw(n: int, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = rng.standard_normal((n, d)).astype(np.float32)
        return X, (X @ normal > 0).astype(np.int64)

    w_s, w_t = concept_direction(d, 0.0), concept_direction(d, angle)
    return _task("concept-shift", draw(n_s, w_s), draw(n_t, w_t), draw(n_e, w_t))


# --------------------------------------------------------------------------------------------
# Rotated and translated blobs
# --------------------------------------------------------------------------------------------
def make_blobs_shift(
    n_classes: int = 3,
    n_source: int = 500,
    n_target: int = 500,
    n_features: int = 2,
    rotation: float = 35.0,
    translation: float = 3.0,
    cluster_std: float = 0.6,
    radius: float = 3.0,
    n_test: int | None = None,
    seed: int = 0,
) -> Task:
    """A multi-class problem whose target is the source rotated and translated.

    Source class ``k`` is a Gaussian blob ``N(mu_k, cluster_std^2 I)`` with the centres of
    :func:`class_means` (on a circle of ``radius``), classes balanced. A target sample is drawn
    the same way and then moved rigidly: ``x -> R x + b``, with ``R`` a rotation by ``rotation``
    degrees in the plane of the first two features and ``b`` of length ``translation`` along
    ``(1, ..., 1)``. So p(y) is fixed and p(x|y) moves by a known invertible map. A source-only
    classifier degrades (the blobs leave their source regions); aligning the domains (even just
    centring each one) recovers most of the accuracy, which makes this the usual sanity check
    for domain adaptation mechanisms.

    Parameters
    ----------
    n_classes : int
        Number of classes (2 or more).
    n_source, n_target : int
        Sizes of the labelled source and the unlabelled target samples.
    n_features : int
        Input dimension, at least 2 (extra dimensions hold isotropic noise).
    rotation : float
        Rotation angle in degrees.
    translation : float
        Length of the translation.
    cluster_std : float
        Standard deviation of each blob.
    radius : float
        Distance of the class centres from the origin.
    n_test : int, optional
        Size of the labelled target test sample (default ``n_target``).
    seed : int
        Seed of every random draw.

    Returns
    -------
    Task
        float32 inputs, int64 labels in 0..n_classes-1.
    """
    k = _count(n_classes, "n_classes", 2)
    n_s, n_t = _count(n_source, "n_source"), _count(n_target, "n_target")
    n_e = n_t if n_test is None else _count(n_test, "n_test")
    d = _count(n_features, "n_features", 2)
    means = class_means(k, d, radius)
    R, b = _rotation(d, rotation), np.full(d, translation / np.sqrt(d))
    rng = np.random.default_rng(seed)

    def draw(n: int, moved: bool) -> tuple[np.ndarray, np.ndarray]:
        y = _labels(np.full(k, 1 / k), n, rng)
        X = means[y] + cluster_std * rng.standard_normal((n, d))
        if moved:
            X = X @ R.T + b
        return X.astype(np.float32), y

    return _task("blobs-shift", draw(n_s, False), draw(n_t, True), draw(n_e, True))
