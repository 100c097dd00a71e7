r"""TCA: transfer component analysis, a kernel subspace in which the domains' means coincide.

Pan, Tsang, Kwok & Yang, "Domain Adaptation via Transfer Component Analysis", IEEE TNN 22(2), 2011.

With :math:`K` the kernel matrix over the :math:`n = n_s + n_t` pooled samples (source first),
:math:`L` the MMD matrix and :math:`H` the centring matrix,

.. math::

    L_{ij} = \begin{cases} 1/n_s^2 & i, j \in S \\ 1/n_t^2 & i, j \in T \\ -1/(n_s n_t) & \text{otherwise,}
    \end{cases} \qquad H = I_n - \tfrac{1}{n}\mathbf{1}\mathbf{1}^\top,

TCA learns :math:`W \in \mathbb{R}^{n \times m}` (Eq. 8 of the paper):

.. math::

    \min_W \; \mathrm{tr}(W^\top K L K W) + \mu\, \mathrm{tr}(W^\top W)
    \quad \text{s.t.} \quad W^\top K H K W = I_m .

The first term is the squared MMD between the embedded domains, the constraint keeps their
variance. The solution is the :math:`m` leading eigenvectors of :math:`(KLK + \mu I)^{-1} KHK`; that
product is not symmetric, so it is solved here as the symmetric-definite generalised problem

.. math::

    K H K\, w = \lambda\, (K L K + \mu I)\, w,

scaled to meet the constraint. A sample is embedded by :math:`k(x, X)\,W`. The subspace does not
depend on how each column is scaled, but distance-based classifiers do: the constraint gives every
component unit variance on the pooled sample (``whiten=True``), which weighs a component of tiny
eigenvalue as much as the leading one; by default column :math:`i` is scaled by
:math:`\sqrt{\lambda_i}`, so that :math:`W^\top K H K W = \mathrm{diag}(\lambda)`, as PCA's components
keep their variance.

Because :math:`L = e e^\top` with :math:`e_i = 1/n_s` on the source and :math:`-1/n_t` on the
target, :math:`KLK = (Ke)(Ke)^\top` is rank one.

**Scale.** The exact problem costs :math:`O(n^2)` memory and :math:`O(n^3)` time. With a Nyström
approximation :math:`K \approx \tilde K = C W_r^{+} C^\top` on :math:`r` random landmarks
(:math:`C = k(X, Z)`, :math:`W_r = k(Z, Z)`), write :math:`\tilde K = \Phi\Phi^\top` with
:math:`\Phi = C W_r^{-1/2} = U \Sigma V^\top`. The optimal :math:`W` lies in the range of
:math:`U`, :math:`W = U c`, and with :math:`\Psi = \tilde K U = U\Sigma^2` the paper's problem
becomes the :math:`r \times r` problem

.. math::

    \Psi^\top H \Psi\, c = \lambda\, (\delta\delta^\top + \mu I)\, c, \qquad
    \delta = \Psi^\top e = \bar\Psi_S - \bar\Psi_T,

the centred scatter of :math:`\Psi` against a rank-one matrix built from the difference of the
domain means, with the paper's regulariser :math:`\mathrm{tr}(W^\top W) = \mathrm{tr}(c^\top c)`
kept exactly. Only :math:`r \times r` statistics of :math:`C` are needed, accumulated over row
blocks, so memory is :math:`O(r^2 + r d)` beyond the data; with all samples as landmarks the
solution equals the exact one.

``kernel="primal"`` is the linear variant of Long et al.'s TCA/JDA code: a projection
:math:`A \in \mathbb{R}^{d \times m}` of the inputs, :math:`X^\top H X a = \lambda (X^\top L X + \mu I) a`,
regularising :math:`\mathrm{tr}(A^\top A)` (i.e. :math:`\mathrm{tr}(W^\top K W)` for the linear
kernel) instead of :math:`\mathrm{tr}(W^\top W)`; a :math:`d \times d` problem at any :math:`n`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import linear_kernel, polynomial_kernel, rbf_kernel
from sklearn.utils._param_validation import Interval, StrOptions

from transferkit.methods.base import FeatureClassifierMethod, Setting, shared_constraints, store_params

__all__ = ["TCA", "mmd_matrix", "median_gamma", "transfer_components", "tca_objective"]

KERNELS = ("linear", "rbf", "poly", "primal")
APPROXIMATIONS = ("auto", "exact", "nystroem")
#: ``approximation="auto"`` solves the exact n x n problem up to this many pooled samples
#: (three n x n float64 matrices and the n_s x n source rows of the kernel: at most 0.8 GB at 5000), Nyström beyond.
EXACT_MAX_SAMPLES = 5000
#: ``n_components="auto"``: this many components, or as many as the kernel's numerical rank allows. Chosen
#: across the suite's data sets (benchmarks/RESULTS.md, "TCA's number of components").
AUTO_COMPONENTS = 100
#: At most this many pooled samples (evenly strided, no randomness) enter the median heuristic.
MEDIAN_SAMPLES = 1000
MIN_TARGET_SAMPLES = 2
_BLOCK_ELEMENTS = 1 << 22  # kernel rows are computed in blocks of about 32 MB


def mmd_matrix(n_s: int, n_t: int) -> np.ndarray:
    r"""The MMD matrix :math:`L = e e^\top`, :math:`e = (\mathbf{1}_{n_s}/n_s, -\mathbf{1}_{n_t}/n_t)`.

    :math:`\mathrm{tr}(K L) = \lVert \bar\phi_S - \bar\phi_T \rVert^2` is the (biased) squared MMD.
    """
    e = _mmd_vector(n_s, n_t)
    return np.outer(e, e)


def _mmd_vector(n_s: int, n_t: int) -> np.ndarray:
    return np.concatenate([np.full(n_s, 1.0 / n_s), np.full(n_t, -1.0 / n_t)])


def median_gamma(X: np.ndarray) -> float:
    r""":math:`\gamma = 1 / \mathrm{median}_{i<j} \lVert x_i - x_j \rVert^2`, the median heuristic.

    The RBF kernel :math:`\exp(-\gamma \lVert x - y \rVert^2)` then equals :math:`e^{-1}` at the
    median pairwise distance. At most :data:`MEDIAN_SAMPLES` rows, evenly strided, are used.
    """
    Z = X[:: max(1, -(-len(X) // MEDIAN_SAMPLES))]
    sq = np.einsum("ij,ij->i", Z, Z)
    d2 = sq[:, None] + sq[None, :] - 2 * Z @ Z.T
    med = float(np.median(d2[np.triu_indices(len(Z), 1)]))
    if not med > 0:
        raise ValueError("the median heuristic needs distinct samples (median pairwise distance is 0); pass gamma.")
    return 1.0 / med


def transfer_components(scatter: np.ndarray, delta: np.ndarray, mu: float, n_components: int, overwrite=False):
    r"""Leading solutions of :math:`S v = \lambda (\delta\delta^\top + \mu I) v`, scaled to :math:`V^\top S V = I`.

    ``scatter`` is :math:`S = KHK` (exact), :math:`\Psi^\top H \Psi` (Nyström) or :math:`X^\top H X`
    (primal); ``delta`` is :math:`Ke`, :math:`\Psi^\top e` or :math:`X^\top e`. Returns the
    eigenvalues (descending) and the (p, m) matrix of components. ``overwrite=True`` lets the solver
    destroy ``scatter`` (one n x n copy less).
    """
    p = len(delta)
    rhs = np.outer(delta, delta)
    rhs[np.diag_indices(p)] += mu
    # both matrices are symmetric: their transposes are the Fortran-ordered arrays LAPACK works in, no copy
    lam, V = scipy.linalg.eigh(
        scatter.T,
        rhs.T,
        subset_by_index=[p - n_components, p - 1],
        driver="gvx",
        overwrite_a=overwrite,
        overwrite_b=True,
    )
    lam, V = lam[::-1], V[:, ::-1]
    return lam, V / np.sqrt(np.clip(lam, np.finfo(float).tiny, None))  # eigh gives V^T rhs V = I


def tca_objective(K: np.ndarray, n_s: int, W: np.ndarray, mu: float) -> float:
    r"""The paper's objective :math:`\mathrm{tr}(W^\top K L K W) + \mu\,\mathrm{tr}(W^\top W)`."""
    KWe = (K @ W).T @ _mmd_vector(n_s, len(K) - n_s)
    return float(KWe @ KWe + mu * np.sum(W * W))


class TCA(FeatureClassifierMethod):
    """TCA: embed both domains in the kernel subspace of Pan et al., then train any classifier.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Trained on the embedded source; default logistic regression (the JDA benchmarks use 1-NN).
    n_components : int or "auto"
        The subspace dimension :math:`m`. ``"auto"``: :data:`AUTO_COMPONENTS` (100), or as many as have
        non-zero variance when the kernel's numerical rank is lower (low-dimensional inputs). The paper's
        small :math:`m` (10-60) loses to the classifier on the raw features on our text and image data
        (benchmarks/RESULTS.md).
    mu : float
        The trade-off :math:`\\mu > 0` between the MMD and the regulariser (larger: less adaptation).
    kernel : {"rbf", "linear", "poly", "primal"}
        ``"primal"``: a linear projection of the inputs (see the module docstring).
    gamma : float, optional
        RBF / poly scale. Default for ``rbf``: the median heuristic :func:`median_gamma` on the
        pooled sample; for ``poly``: ``1 / n_features``.
    degree, coef0 : int, float
        The polynomial kernel :math:`(\\gamma \\langle x, y \\rangle + c_0)^{d}`.
    whiten : bool
        True: the paper's scale, :math:`W^\\top K H K W = I`. False (default): component :math:`i` keeps
        the variance :math:`\\lambda_i` (same subspace; see the module docstring).
    approximation : {"auto", "exact", "nystroem"}
        ``"auto"``: exact up to :data:`EXACT_MAX_SAMPLES` pooled samples, Nyström beyond.
    n_landmarks : int
        Nyström landmarks, drawn uniformly without replacement from the pooled sample (``seed``);
        all samples when there are fewer.
    seed : int
        Landmark draw and the estimator's ``random_state``.

    Attributes
    ----------
    eigenvalues_ : ndarray
        The generalised eigenvalues, descending.
    basis_ : ndarray or None
        The points the kernel is evaluated against (None for ``primal``).
    projection_ : ndarray
    approximation_ : str
    gamma_ : float
    model_ : estimator
        The fitted classifier.
    """

    name = "tca"
    setting = Setting(source_labels=True, target_labels=False)
    description = "transfer component analysis: kernel subspace minimising the MMD between domains"
    paper = "Pan, Tsang, Kwok & Yang, Domain Adaptation via Transfer Component Analysis, IEEE TNN 2011"

    _parameter_constraints = {
        **shared_constraints("estimator", "seed"),
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "mu": [Interval(Real, 0, np.inf, closed="neither")],
        "kernel": [StrOptions(set(KERNELS))],
        "gamma": [Interval(Real, 0, np.inf, closed="neither"), None],
        "degree": [Interval(Integral, 1, None, closed="left")],
        "coef0": [Interval(Real, -np.inf, np.inf, closed="neither")],
        "whiten": ["boolean"],
        "approximation": [StrOptions(set(APPROXIMATIONS))],
        "n_landmarks": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator=None,
        n_components: int | str = "auto",
        mu: float = 1.0,
        kernel: str = "rbf",
        gamma: float | None = None,
        degree: int = 2,
        coef0: float = 1.0,
        whiten: bool = False,
        approximation: str = "auto",
        n_landmarks: int = 1000,
        seed: int = 0,
    ):
        store_params(self, locals())

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        """What the parameter constraints, one parameter at a time, cannot say."""
        if self.kernel == "primal" and self.approximation == "nystroem":
            raise ValueError("approximation='nystroem' approximates a kernel; kernel='primal' is a d x d problem.")

    def _kernel(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return linear_kernel(X, Y)
        if self.kernel == "rbf":
            return rbf_kernel(X, Y, gamma=self.gamma_)
        return polynomial_kernel(X, Y, degree=self.degree, gamma=self.gamma_, coef0=self.coef0)

    def _blocks(self, n: int, width: int):
        step = max(1, _BLOCK_ELEMENTS // max(width, 1))
        return (slice(i, min(i + step, n)) for i in range(0, n, step))

    # ------------------------------------------------------------------ fit
    def fit(self, source, target=None, sample_domain=None):
        """Fit on a labelled ``source`` and an unlabelled ``target`` (samples are flattened)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        self._check_params()
        n_s, n_t = len(source), len(target)
        if n_t < MIN_TARGET_SAMPLES:
            raise ValueError(
                f"target has {n_t} sample; TCA estimates the target distribution from its sample and needs "
                f"at least {MIN_TARGET_SAMPLES} target samples."
            )
        X = np.concatenate([source.X.reshape(n_s, -1), target.X.reshape(n_t, -1)]).astype(np.float64)
        n, d = X.shape
        mode = self.approximation
        if self.kernel == "primal":
            mode = "primal"
        elif mode == "auto":
            mode = "exact" if n <= EXACT_MAX_SAMPLES else "nystroem"
        limit = {"primal": min(d, n - 1), "exact": n - 1, "nystroem": min(self.n_landmarks, n - 1)}[mode]
        auto = self.n_components == "auto"
        m = min(AUTO_COMPONENTS, limit) if auto else self.n_components
        if m > limit:
            what = {
                "primal": f"min(n_features, n_s + n_t - 1) = min({d}, {n - 1})",
                "exact": f"n_s + n_t - 1 = {n_s} + {n_t} - 1, the rank of the centred kernel matrix K H K",
                "nystroem": f"min(n_landmarks, n_s + n_t - 1) = min({self.n_landmarks}, {n - 1})",
            }[mode]
            raise ValueError(f"n_components={self.n_components} exceeds {what}; expected n_components <= {limit}.")
        self.gamma_ = self.gamma
        if self.gamma is None and self.kernel == "rbf":
            self.gamma_ = median_gamma(X)
        e = _mmd_vector(n_s, n_t)
        K_source = None  # k(X_s, basis), when the fit has computed it already

        if mode == "primal":
            scatter, delta, self.basis_ = _centred_scatter(X), X.T @ e, None
            lam, P = transfer_components(scatter, delta, self.mu, m)
        elif mode == "exact":
            K = self._kernel(X, X)
            K_source = K[:n_s].copy()  # the classifier's inputs below: the most costly rows not to compute twice
            delta = K @ e
            K -= K.mean(0)  # H K (K symmetric), so that K H K = (HK)^T (HK)
            scatter = K.T @ K
            del K
            lam, P = transfer_components(scatter, delta, self.mu, m, overwrite=True)
            self.basis_ = X
        else:
            lam, P = self._fit_nystroem(X, e, m, auto)
        tol = lam[0] * n * np.finfo(float).eps
        if auto:  # as many components as have variance, up to AUTO_COMPONENTS
            keep = lam > tol
            lam, P = lam[keep], P[:, keep]
        elif not lam[-1] > tol:
            rank = int(np.sum(lam > tol))
            raise ValueError(
                f"n_components={self.n_components} but only {rank} transfer components have non-zero variance "
                f"(numerical rank of the centred {self.kernel} kernel on {d} features); "
                f"expected n_components <= {rank}."
            )
        self.eigenvalues_, self.approximation_ = lam, mode
        self.projection_ = P if self.whiten else P * np.sqrt(lam)
        self.input_shape_ = source.feature_shape
        est = clone(self.estimator) if self.estimator is not None else LogisticRegression(max_iter=2000)
        if "random_state" in est.get_params():
            est.set_params(random_state=self.seed)
        Z_source = self._embed(X[:n_s]) if K_source is None else K_source @ self.projection_
        self.model_ = est.fit(Z_source, source.y)
        self.classes_ = self.model_.classes_
        return self

    def _fit_nystroem(self, X: np.ndarray, e: np.ndarray, m: int, auto: bool):
        n = len(X)
        r = min(self.n_landmarks, n)
        Z = X[np.sort(np.random.default_rng(self.seed).choice(n, r, replace=False))] if r < n else X
        s, Q = np.linalg.eigh(self._kernel(Z, Z))
        keep = s > s[-1] * r * np.finfo(float).eps
        P0 = Q[:, keep] / np.sqrt(s[keep])  # Phi = C P0, C = k(X, Z)
        # r x r statistics of C, accumulated over row blocks: C^T C, its column sums, and C^T e
        G, total, delta_c = np.zeros((r, r)), np.zeros(r), np.zeros(r)
        for rows in self._blocks(n, r):
            C = self._kernel(X[rows], Z)
            G += C.T @ C
            total += C.sum(0)
            delta_c += C.T @ e[rows]
        sig2, V = np.linalg.eigh(P0.T @ G @ P0)  # Phi^T Phi = V Sigma^2 V^T
        good = sig2 > sig2[-1] * n * np.finfo(float).eps
        T = P0 @ (V[:, good] * np.sqrt(sig2[good]))  # Psi = U Sigma^2 = Phi V Sigma = C T
        mean = total / n
        scatter = T.T @ (G - n * np.outer(mean, mean)) @ T  # Psi^T H Psi
        if auto:
            m = min(m, len(scatter))
        if m > len(scatter):
            raise ValueError(
                f"n_components={self.n_components} exceeds the numerical rank {len(scatter)} of the Nyström kernel "
                f"on {r} landmarks; expected n_components <= {len(scatter)} (or more n_landmarks)."
            )
        lam, c = transfer_components(scatter, T.T @ delta_c, self.mu, m)
        self.basis_ = Z
        return lam, T @ c  # k(x, Z) T c = phi(x) V Sigma c = k~(x, X) U c

    # ------------------------------------------------------------------ predict
    def _embed(self, X: np.ndarray) -> np.ndarray:
        if self.basis_ is None:
            return X @ self.projection_
        out = np.empty((len(X), self.projection_.shape[1]))
        for rows in self._blocks(len(X), len(self.basis_)):
            out[rows] = self._kernel(X[rows], self.basis_) @ self.projection_
        return out

    def _features(self, X) -> np.ndarray:
        return self._embed(X.reshape(len(X), -1).astype(np.float64))

    def transform(self, X) -> np.ndarray:
        """The transfer components :math:`k(x, X_{train})\\,W`, shape (n_samples, n_components)."""
        X = self._check_X(X)
        return self._embed(X.reshape(len(X), -1).astype(np.float64)).astype(np.float32)


def _centred_scatter(X: np.ndarray) -> np.ndarray:
    Xc = X - X.mean(0)
    return Xc.T @ Xc
