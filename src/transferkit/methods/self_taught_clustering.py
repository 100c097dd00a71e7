r"""Self-taught clustering (Dai, Yang, Xue & Yu, ICML 2008) and information-theoretic co-clustering.

A small unlabelled target set :math:`X` is clustered together with a large unlabelled auxiliary set
:math:`Y`; the two are co-clustered with their features :math:`Z`, and they *share the feature
clustering* :math:`\tilde Z`, so the auxiliary data shape the feature clusters that the small target
set alone could not estimate. With :math:`p(X, Z)` and :math:`q(Y, Z)` the normalised non-negative
data matrices (co-occurrence distributions) and :math:`\tilde X, \tilde Y, \tilde Z` the clusters,
the objective is (Dai et al. 2008, eq. 3)

.. math:: \mathcal J = I(X; Z) - I(\tilde X; \tilde Z) + \lambda \bigl[ I(Y; Z) - I(\tilde Y; \tilde Z) \bigr].

By Dhillon, Mallela & Modha (KDD 2003, Lemma 2.1) each bracket is a KL divergence,
:math:`I(X;Z) - I(\tilde X;\tilde Z) = D\bigl(p(X,Z) \,\Vert\, \hat p(X,Z)\bigr)` with
:math:`\hat p(x, z) = p(\tilde x, \tilde z)\, p(x \mid \tilde x)\, p(z \mid \tilde z)`, and it splits over
rows or over columns, which gives the alternating updates (each one lowers :math:`\mathcal J`):

.. math::

    C_X(x) &= \arg\min_{\tilde x} D\bigl(p(Z \mid x) \,\Vert\, \hat p(Z \mid \tilde x)\bigr), \qquad
    C_Y(y) = \arg\min_{\tilde y} D\bigl(q(Z \mid y) \,\Vert\, \hat q(Z \mid \tilde y)\bigr), \\
    C_Z(z) &= \arg\min_{\tilde z}\; p(z)\, D\bigl(p(X \mid z) \,\Vert\, \hat p(X \mid \tilde z)\bigr)
             + \lambda\, q(z)\, D\bigl(q(Y \mid z) \,\Vert\, \hat q(Y \mid \tilde z)\bigr),

with :math:`\hat p(z \mid \tilde x) = p(z \mid \tilde z)\, p(\tilde z \mid \tilde x)` and
:math:`\hat p(x \mid \tilde z) = p(x \mid \tilde x)\, p(\tilde x \mid \tilde z)` (and the same for
:math:`q`). With :math:`\lambda = 0` and no auxiliary data this is information-theoretic co-clustering
of the target alone (:class:`InformationTheoreticCoClustering`, the paper's baseline).

References
----------
Dai, Yang, Xue & Yu. Self-taught clustering. ICML 2008.
Dhillon, Mallela & Modha. Information-theoretic co-clustering. KDD 2003.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import Interval

from transferkit._sklearn import CheckedParams
from transferkit.data import check_array
from transferkit.methods.base import Setting
from transferkit.methods.persistent import Persistent

__all__ = ["InformationTheoreticCoClustering", "SelfTaughtClustering", "co_clustering_loss"]

_EPS = 1e-12


def _joint(X: np.ndarray, name: str) -> np.ndarray:
    X = check_array(X, name, allow_nd=True).reshape(len(X), -1).astype(np.float64)
    if (X < 0).any():
        raise ValueError(
            f"{name} has negative entries; co-clustering treats the data as a joint distribution of samples "
            "and features, so it needs non-negative values (counts, pixel intensities)."
        )
    total = X.sum()
    if total <= 0:
        raise ValueError(f"{name} is all zeros; there is no distribution to cluster.")
    return X / total


def _cluster_joint(P: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k_cols: int) -> np.ndarray:
    """:math:`p(\\tilde x, \\tilde z)`: the joint summed over row and column clusters."""
    R = np.zeros((k_rows, P.shape[0]))
    R[rows, np.arange(P.shape[0])] = 1
    C = np.zeros((P.shape[1], k_cols))
    C[np.arange(P.shape[1]), cols] = 1
    return R @ P @ C


def co_clustering_loss(P: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    r""":math:`D(p \Vert \hat p) = I(X;Z) - I(\tilde X;\tilde Z)` for a normalised joint ``P`` and a co-clustering."""
    k_r, k_c = int(rows.max()) + 1, int(cols.max()) + 1
    Pt = _cluster_joint(P, rows, cols, k_r, k_c)
    px, pz = P.sum(1), P.sum(0)
    pxt, pzt = Pt.sum(1), Pt.sum(0)
    phat = Pt[rows][:, cols] * (px / np.maximum(pxt[rows], _EPS))[:, None] * (pz / np.maximum(pzt[cols], _EPS))[None]
    mask = P > 0
    return float(np.sum(P[mask] * np.log(P[mask] / np.maximum(phat[mask], _EPS))))


def _row_update(P: np.ndarray, cols: np.ndarray, rows: np.ndarray, k_rows: int, k_cols: int) -> np.ndarray:
    """Each row to the row cluster whose :math:`\\hat p(Z \\mid \\tilde x)` is nearest in KL."""
    Pt = _cluster_joint(P, rows, cols, k_rows, k_cols)
    pz, pzt = P.sum(0), Pt.sum(0)
    p_z_given_zt = pz / np.maximum(pzt[cols], _EPS)  # p(z | z~(z))
    p_zt_given_xt = Pt / np.maximum(Pt.sum(1, keepdims=True), _EPS)  # (k_rows, k_cols)
    log_qhat = np.log(np.maximum(p_zt_given_xt[:, cols] * p_z_given_zt[None], _EPS))  # (k_rows, d)
    p_z_given_x = P / np.maximum(P.sum(1, keepdims=True), _EPS)
    return np.argmax(p_z_given_x @ log_qhat.T, axis=1)  # max cross-entropy term = min KL


def _column_cost(P: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k_cols: int) -> np.ndarray:
    """:math:`-\\sum_x p(x, z) \\log \\hat p(x \\mid \\tilde z)` for each feature z and cluster z~: (d, k_cols)."""
    Pt = _cluster_joint(P, rows, cols, k_rows, k_cols)
    px, pxt = P.sum(1), Pt.sum(1)
    p_x_given_xt = px / np.maximum(pxt[rows], _EPS)
    p_xt_given_zt = Pt / np.maximum(Pt.sum(0, keepdims=True), _EPS)  # (k_rows, k_cols)
    log_phat = np.log(np.maximum(p_xt_given_zt[rows] * p_x_given_xt[:, None], _EPS))  # (n, k_cols)
    return -(P.T @ log_phat)


@dataclass(frozen=True)
class _State:
    rows: np.ndarray
    aux_rows: np.ndarray | None
    cols: np.ndarray
    loss: float


class SelfTaughtClustering(Persistent, CheckedParams, ClusterMixin, BaseEstimator):
    """Co-clustering of a small target set with a large auxiliary set that share the feature clusters.

    Parameters
    ----------
    n_clusters : int
        Clusters of the target data (:math:`|\\tilde X|`).
    n_feature_clusters : int
        Shared feature clusters (:math:`|\\tilde Z|`).
    n_auxiliary_clusters : int, optional
        Clusters of the auxiliary data (:math:`|\\tilde Y|`; default ``n_clusters``).
    lam : float
        :math:`\\lambda`, the weight of the auxiliary data's term (1 in Dai et al.'s experiments).
    n_iter : int
        Maximum rounds of the three updates; stops earlier when no assignment changes.
    n_init : int
        Random restarts; the one with the lowest objective is kept.
    seed : int

    Attributes
    ----------
    labels_ : ndarray of int, shape (n_target,)
        The target clustering :math:`C_X`.
    auxiliary_labels_, feature_labels_ : ndarray of int
        :math:`C_Y` and :math:`C_Z`.
    objective_ : list of float
        :math:`\\mathcal J` after each round of the best restart (non-increasing).
    """

    name: ClassVar[str] = "stc"
    setting: ClassVar[Setting] = Setting(source_labels=False, target_labels=False)
    description: ClassVar[str] = (
        "self-taught clustering: target and auxiliary data co-clustered over shared feature clusters"
    )
    paper: ClassVar[str] = "Dai, Yang, Xue & Yu, Self-taught Clustering, ICML 2008"

    def __init__(
        self,
        n_clusters: int = 2,
        n_feature_clusters: int = 32,
        n_auxiliary_clusters: int | None = None,
        lam: float = 1.0,
        n_iter: int = 50,
        n_init: int = 5,
        seed: int = 0,
    ):
        self.n_clusters = n_clusters
        self.n_feature_clusters = n_feature_clusters
        self.n_auxiliary_clusters = n_auxiliary_clusters
        self.lam = lam
        self.n_iter = n_iter
        self.n_init = n_init
        self.seed = seed

    def _check(self, n: int, d: int, m: int | None) -> tuple[int, int, int]:
        """The cluster counts, refused where the data cannot hold them (the constraints checked the rest)."""
        k_y = self.n_clusters if self.n_auxiliary_clusters is None else self.n_auxiliary_clusters
        if self.n_clusters > n:
            raise ValueError(f"n_clusters={self.n_clusters} but the target has {n} samples; expected at most {n}.")
        if self.n_feature_clusters > d:
            raise ValueError(
                f"n_feature_clusters={self.n_feature_clusters} but there are {d} features; expected at most {d}."
            )
        if m is not None and k_y > m:
            raise ValueError(
                f"n_auxiliary_clusters={k_y} but the auxiliary data has {m} samples; expected at most {m}."
            )
        return int(self.n_clusters), int(self.n_feature_clusters), int(k_y)

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 2, None, closed="left")],
        "n_feature_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_auxiliary_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "lam": [Interval(Real, 0, np.inf, closed="left")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
    }

    def fit(self, X, auxiliary=None, y=None):
        """Cluster the target ``X`` (with the ``auxiliary`` data's help); both non-negative, same features.

        ``y`` is accepted for scikit-learn compatibility and ignored: no labels are used.
        """
        self._validate_params()
        P = _joint(X, "X")
        Q = None
        if auxiliary is not None and self.lam > 0:
            Q = _joint(auxiliary, "auxiliary")
            if Q.shape[1] != P.shape[1]:
                raise ValueError(
                    f"auxiliary has {Q.shape[1]} features but X has {P.shape[1]}; the two must share the features."
                )
        k_x, k_z, k_y = self._check(len(P), P.shape[1], None if Q is None else len(Q))
        rng = np.random.default_rng(self.seed)
        best, best_history = None, []
        for _ in range(self.n_init):
            state, history = self._run(P, Q, k_x, k_y, k_z, rng)
            if best is None or state.loss < best.loss:
                best, best_history = state, history
        self.labels_ = best.rows
        self.auxiliary_labels_ = best.aux_rows
        self.feature_labels_ = best.cols
        self.objective_ = best_history
        return self

    def fit_predict(self, X, auxiliary=None, y=None) -> np.ndarray:
        return self.fit(X, auxiliary).labels_

    def _objective(self, P, Q, rows, aux_rows, cols) -> float:
        loss = co_clustering_loss(P, rows, cols)
        if Q is not None:
            loss += self.lam * co_clustering_loss(Q, aux_rows, cols)
        return loss

    def _run(self, P, Q, k_x, k_y, k_z, rng) -> tuple[_State, list[float]]:
        rows = rng.integers(0, k_x, len(P))
        cols = rng.integers(0, k_z, P.shape[1])
        aux_rows = rng.integers(0, k_y, len(Q)) if Q is not None else None
        history = [self._objective(P, Q, rows, aux_rows, cols)]
        for _ in range(self.n_iter):
            new_rows = _row_update(P, cols, rows, k_x, k_z)
            new_aux = _row_update(Q, cols, aux_rows, k_y, k_z) if Q is not None else None
            cost = _column_cost(P, new_rows, cols, k_x, k_z)
            if Q is not None:
                cost = cost + self.lam * _column_cost(Q, new_aux, cols, k_y, k_z)
            new_cols = np.argmin(cost, axis=1)
            loss = self._objective(P, Q, new_rows, new_aux, new_cols)
            if loss > history[-1] + 1e-12:  # an update that does not help ends the run (it cannot, in exact math)
                break
            changed = (
                (new_rows != rows).any() or (new_cols != cols).any() or (Q is not None and (new_aux != aux_rows).any())
            )
            rows, aux_rows, cols = new_rows, new_aux, new_cols
            history.append(loss)
            if not changed:
                break
        return _State(rows, aux_rows, cols, history[-1]), history


class InformationTheoreticCoClustering(SelfTaughtClustering):
    """Information-theoretic co-clustering of the target alone (Dhillon et al. 2003): no auxiliary data."""

    name: ClassVar[str] = "itcc"
    description: ClassVar[str] = (
        "information-theoretic co-clustering of the target alone (self-taught clustering's baseline)"
    )
    paper: ClassVar[str] = "Dhillon, Mallela & Modha, Information-Theoretic Co-clustering, KDD 2003"

    def __init__(
        self, n_clusters: int = 2, n_feature_clusters: int = 32, n_iter: int = 50, n_init: int = 5, seed: int = 0
    ):
        super().__init__(n_clusters, n_feature_clusters, None, 0.0, n_iter, n_init, seed)

    def fit(self, X, auxiliary=None, y=None):
        if auxiliary is not None:
            raise ValueError("InformationTheoreticCoClustering clusters the target alone; use SelfTaughtClustering.")
        return super().fit(X, None)
