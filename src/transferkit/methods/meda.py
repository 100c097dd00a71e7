r"""MEDA: manifold embedded distribution alignment.

Wang, Feng, Chen, Yu, Huang & Yu, "Visual Domain Adaptation with Manifold Embedded Distribution
Alignment", ACM MM 2018. Two steps:

**1. Manifold feature learning: the geodesic flow kernel** (Gong, Shi, Sha & Grauman, CVPR 2012).
With :math:`P_s, P_t \in \mathbb{R}^{D \times d}` the leading principal directions of each domain,
the geodesic between the two subspaces on the Grassmann manifold is
:math:`\Phi(t) = P_s U_1 \cos(t\Theta) + W \sin(t\Theta)`, :math:`t \in [0, 1]`, where
:math:`P_s^\top P_t = U_1 \cos\Theta\, V^\top` (the principal angles :math:`\Theta`) and
:math:`W = (I - P_s P_s^\top) P_t V \sin(\Theta)^{-1}`, so that :math:`\Phi(0) = P_s U_1` and
:math:`\Phi(1) = P_t V`. Samples are compared through every subspace on the way,
:math:`\langle z_i, z_j \rangle = x_i^\top G x_j` with

.. math::

    G = \int_0^1 \Phi(t)\Phi(t)^\top dt = B \begin{pmatrix} \Lambda_1 & \Lambda_2 \\ \Lambda_2 & \Lambda_3
    \end{pmatrix} B^\top, \quad B = [P_s U_1, W],\;
    \lambda_{1} = \tfrac12 + \tfrac{\sin 2\theta}{4\theta},\; \lambda_{2} = \tfrac{\sin^2\theta}{2\theta},\;
    \lambda_{3} = \tfrac12 - \tfrac{\sin 2\theta}{4\theta},

per principal angle. :math:`B` has orthonormal columns, so :math:`z = C^{1/2} B^\top x` (:math:`2d`
numbers, :math:`C` the middle matrix) has exactly those inner products: the authors' code maps by
:math:`G^{1/2}` in :math:`D` dimensions, with the same Gram matrix.

**2. Dynamic distribution alignment in a kernel classifier.** On the unit-normalised :math:`z`, with
:math:`K` the RBF kernel over the :math:`n = n_s + n_t` pooled samples (source first), :math:`E` the
diagonal indicator of the source, :math:`Y` the one-hot source labels (zero rows for the target),
:math:`L` the normalised Laplacian of the :math:`p`-nearest-neighbour cosine graph and
:math:`M = (1-\mu)\, C M_0 + \mu \sum_c M_c` the balanced MMD matrix of BDA (scaled to unit
Frobenius norm), the classifier :math:`f = K\beta` minimises

.. math::

    \lVert (Y - K\beta)^\top E \rVert_F^2 + \eta\, \mathrm{tr}(\beta^\top K \beta)
    + \lambda\, \mathrm{tr}(\beta^\top K M K \beta) + \rho\, \mathrm{tr}(\beta^\top K L K \beta),

whose solution is :math:`\beta = \big((E + \lambda M + \rho L) K + \eta I\big)^{-1} E Y`. The target's
pseudo-labels (1-NN on the manifold features at first, then :math:`\arg\max f`) give the
class-conditional terms :math:`M_c`; :math:`\mu` is estimated each round from proxy A-distances as in
BDA (the paper's "dynamic" alignment), ``n_iter`` rounds. A new sample is labelled by
:math:`\arg\max_c\, k(z, Z)\,\beta`.

Defaults are the paper's: :math:`d = 20`, :math:`p = 10`, :math:`\lambda = 10`, :math:`\eta = 0.1`,
:math:`\rho = 1`, 10 rounds.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.neighbors import KNeighborsClassifier, kneighbors_graph
from sklearn.preprocessing import normalize
from sklearn.utils._param_validation import Interval, StrOptions

from transferkit.methods.base import Setting, TransferMethod, shared_constraints, store_params
from transferkit.methods.jda import balance_factor, jda_mmd_vectors

__all__ = ["MEDA", "KernelScores", "geodesic_flow_kernel", "normalized_laplacian"]


def geodesic_flow_kernel(Ps: np.ndarray, Pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The geodesic flow kernel of two d-dimensional subspaces (orthonormal columns, D x d) as ``(B, C)``:
    :math:`G = B C B^\\top`, ``B`` (D x 2d) with orthonormal columns (zero where an angle is 0), ``C`` (2d x 2d)."""
    U1, cos, Vt = np.linalg.svd(Ps.T @ Pt)
    PtV = Pt @ Vt.T
    residual = PtV - Ps @ (Ps.T @ PtV)  # the part of the target directions outside the source subspace
    # its column norms are the sines of the principal angles: atan2 keeps small angles that arccos(cos) loses
    # (cos = 1 - 1e-16 would give 1.5e-8, and a direction of rounding noise)
    sin = np.linalg.norm(residual, axis=0)
    theta = np.arctan2(sin, cos)
    W = np.where(sin > 1e-10, residual / np.where(sin > 1e-10, sin, 1.0), 0.0)
    t = np.maximum(theta, 1e-20)  # theta -> 0: lambda1 -> 1, lambda2, lambda3 -> 0
    lam1 = 0.5 + np.sin(2 * t) / (4 * t)
    lam2 = np.sin(t) ** 2 / (2 * t)
    lam3 = 0.5 - np.sin(2 * t) / (4 * t)
    C = np.block([[np.diag(lam1), np.diag(lam2)], [np.diag(lam2), np.diag(lam3)]])
    return np.concatenate([Ps @ U1, W], axis=1), C


def normalized_laplacian(Z: np.ndarray, n_neighbors: int) -> scipy.sparse.csr_matrix:
    """:math:`I - D^{-1/2} W D^{-1/2}` of the symmetric p-nearest-neighbour graph of unit rows ``Z``,
    weighted by cosine similarity (itself included), as in the authors' code."""
    A = kneighbors_graph(Z, min(n_neighbors, len(Z) - 1), mode="distance", include_self=True)
    A.data = np.clip(1.0 - A.data**2 / 2.0, 0.0, None)  # unit rows: cosine = 1 - |z_i - z_j|^2 / 2
    A = A.maximum(A.T).tocsr()
    A.setdiag(1.0)  # self-connected: cos(z, z) = 1
    degree = np.asarray(A.sum(1)).ravel()
    inv_sqrt = scipy.sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return (scipy.sparse.identity(len(Z)) - inv_sqrt @ A @ inv_sqrt).tocsr()


class KernelScores(ClassifierMixin, BaseEstimator):
    r"""The fitted classifier :math:`f(z) = k(z, Z)\,\beta` of MEDA (RBF kernel), one score per class.

    Made by :class:`MEDA` (``model_``), not fitted on its own: ``train_features_`` are :math:`Z`,
    ``coef_`` is :math:`\beta`.
    """

    def __init__(self, gamma: float = 0.5):
        self.gamma = gamma

    def decision_function(self, Z) -> np.ndarray:
        return rbf_kernel(np.asarray(Z, dtype=np.float64), self.train_features_, gamma=self.gamma) @ self.coef_

    def predict(self, Z) -> np.ndarray:
        return self.classes_[self.decision_function(Z).argmax(1)]


class MEDA(TransferMethod):
    """MEDA: a kernel classifier on geodesic-flow features, with balanced marginal and conditional MMD
    and a manifold (Laplacian) term, iterated with target pseudo-labels.

    Parameters
    ----------
    n_components : int or "auto"
        :math:`d`, the dimension of each domain's principal subspace; ``"auto"``: 20 (the paper),
        or half the number of features when that is smaller (the geodesic needs :math:`2d \\le D`).
    mmd_weight : float
        :math:`\\lambda`, the weight of the distribution alignment.
    ridge : float
        :math:`\\eta`, the weight of the kernel ridge penalty.
    manifold_weight : float
        :math:`\\rho`, the weight of the Laplacian term (0 drops it).
    n_neighbors : int
        :math:`p`, neighbours in the graph of the Laplacian.
    n_iter : int
        Rounds of pseudo-labelling.
    balance : float in [0, 1] or "auto"
        :math:`\\mu` between the marginal (0) and the conditional (1) terms; ``"auto"`` estimates it each
        round from proxy A-distances.
    seed : int
        Seeds the principal components' solver and the A-distance classifiers.

    Attributes
    ----------
    mapping_ : ndarray, shape (D, 2d)
        :math:`B C^{1/2}`: a flattened sample times it is its manifold feature before normalisation.
    model_ : KernelScores
        The kernel classifier on the manifold features: ``train_features_`` (:math:`Z`, the pooled
        samples) and ``coef_`` (:math:`\\beta`, shape (n_s + n_t, n_classes)).
    pseudo_labels_ : ndarray
        The target's labels after the last round.
    history_ : list of dict
        Per round: :math:`\\mu` and the share of target pseudo-labels that changed.
    """

    name = "meda"
    setting = Setting(source_labels=True, target_labels=False)
    description = "manifold embedded distribution alignment: geodesic flow features, balanced MMD, a kernel classifier"
    paper = (
        "Wang, Feng, Chen, Yu, Huang & Yu, Visual Domain Adaptation with Manifold Embedded Distribution "
        "Alignment, ACM MM 2018"
    )
    min_target_samples = 2

    _parameter_constraints = {
        **shared_constraints("seed"),
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "mmd_weight": [Interval(Real, 0, np.inf, closed="left")],
        "ridge": [Interval(Real, 0, np.inf, closed="neither")],
        "manifold_weight": [Interval(Real, 0, np.inf, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "balance": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        n_components: int | str = "auto",
        mmd_weight: float = 10.0,
        ridge: float = 0.1,
        manifold_weight: float = 1.0,
        n_neighbors: int = 10,
        n_iter: int = 10,
        balance: float | str = "auto",
        seed: int = 0,
    ):
        store_params(self, locals())

    def _subspaces(self, Xs: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = Xs.shape[1]
        limit = min(D // 2, len(Xs) - 1, len(Xt) - 1)
        if limit < 1:
            raise ValueError(
                f"MEDA needs at least 2 features and 2 samples per domain for its subspaces; got {D} features, "
                f"{len(Xs)} source and {len(Xt)} target samples."
            )
        d = min(20, limit) if self.n_components == "auto" else self.n_components
        if d > limit:
            raise ValueError(
                f"n_components={d} exceeds min(n_features // 2, n_samples - 1) = {limit}; the geodesic between two "
                f"d-dimensional subspaces needs 2d <= n_features. Expected n_components <= {limit}."
            )
        basis = [PCA(d, random_state=self.seed).fit(X).components_.T for X in (Xs, Xt)]
        return basis[0], basis[1]

    def fit(self, source, target=None, sample_domain=None):
        """Fit on a labelled ``source`` and an unlabelled ``target`` (samples are flattened)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        n_s, n_t = len(source), len(target)
        Xs = source.X.reshape(n_s, -1).astype(np.float64)
        Xt = target.X.reshape(n_t, -1).astype(np.float64)
        B, C = geodesic_flow_kernel(*self._subspaces(Xs, Xt))
        w, Q = np.linalg.eigh(C)
        self.mapping_ = B @ (Q * np.sqrt(np.clip(w, 0.0, None))) @ Q.T  # B C^{1/2}
        Z = normalize(np.concatenate([Xs, Xt]) @ self.mapping_)  # unit rows; a zero row stays zero
        n = n_s + n_t
        self.classes_, y_idx = np.unique(source.y, return_inverse=True)
        Y = np.zeros((n, len(self.classes_)))
        Y[np.arange(n_s), y_idx] = 1.0
        source_rows = np.r_[np.ones(n_s), np.zeros(n_t)]
        # sigma^2 = mean squared norm = 1 on unit rows, as the authors' code sets it
        K = rbf_kernel(Z, gamma=0.5)
        L = normalized_laplacian(Z, self.n_neighbors) if self.manifold_weight > 0 else None
        pseudo = KNeighborsClassifier(n_neighbors=1).fit(Z[:n_s], source.y).predict(Z[n_s:])
        self.history_ = []
        for _ in range(self.n_iter):
            mu = (
                float(self.balance)
                if self.balance != "auto"
                else balance_factor(Z[:n_s], Z[n_s:], source.y, pseudo, self.seed)
            )
            Evec = jda_mmd_vectors(n_s, n_t, source.y, pseudo, self.classes_)
            Evec[:, 0] *= np.sqrt(1.0 - mu)  # (1 - mu) C M_0 + mu sum_c M_c, scaled to unit Frobenius norm
            Evec[:, 1:] *= np.sqrt(mu)
            scale = np.linalg.norm(Evec.T @ Evec)
            A = source_rows[:, None] * K + self.ridge * np.eye(n)
            if scale > 0:
                A += (self.mmd_weight / scale) * Evec @ (Evec.T @ K)
            if L is not None:
                A += self.manifold_weight * (L @ K)
            beta = scipy.linalg.solve(A, source_rows[:, None] * Y)
            new = self.classes_[(K[n_s:] @ beta).argmax(1)]
            self.history_.append({"balance": mu, "changed": float(np.mean(new != pseudo))})
            pseudo = new
        self.model_ = KernelScores(gamma=0.5)
        self.model_.train_features_, self.model_.coef_, self.model_.classes_ = Z, beta, self.classes_
        self.pseudo_labels_ = pseudo
        self.input_shape_ = source.feature_shape
        return self

    def transform(self, X) -> np.ndarray:
        """The unit-normalised manifold features :math:`z` of ``X``, shape (n, 2d)."""
        X = self._check_X(X)
        return normalize(X.reshape(len(X), -1).astype(np.float64) @ self.mapping_)

    def decision_function(self, X) -> np.ndarray:
        """:math:`f(x) = k(z, Z)\\,\\beta`, one score per class, shape (n, n_classes)."""
        return self.model_.decision_function(self.transform(X))

    def predict_proba(self, X) -> np.ndarray:
        """The class scores made a distribution (negative parts dropped, rows summing to 1; uniform where
        every score is at most 0). MEDA fits least-squares scores, not probabilities: not calibrated."""
        F = np.clip(self.decision_function(X), 0.0, None)
        total = F.sum(1, keepdims=True)
        return np.where(total > 0, F / np.where(total > 0, total, 1.0), 1.0 / F.shape[1])
