r"""JDA: joint distribution adaptation, TCA's marginal alignment plus class-conditional alignment
with pseudo-labels, iterated.

Long, Wang, Ding, Sun & Yu, "Transfer Feature Learning with Joint Distribution Adaptation", ICCV
2013. With :math:`X \in \mathbb{R}^{d \times n}` the pooled samples (source first, each scaled to unit
norm), :math:`H` the centring matrix and the MMD matrices

.. math::

    (M_0)_{ij} = \begin{cases} \frac{1}{n_s^2} & i, j \in S \\ \frac{1}{n_t^2} & i, j \in T \\
    \frac{-1}{n_s n_t} & \text{otherwise,} \end{cases} \qquad
    (M_c)_{ij} = \begin{cases} \frac{1}{n_s^{(c) 2}} & i, j \in S^{(c)} \\
    \frac{1}{n_t^{(c) 2}} & i, j \in T^{(c)} \\ \frac{-1}{n_s^{(c)} n_t^{(c)}} & i \in S^{(c)}, j \in T^{(c)}
    \text{ or the reverse} \\ 0 & \text{otherwise,} \end{cases}

(:math:`T^{(c)}`: the target samples *pseudo-labelled* :math:`c`), JDA learns the projection
:math:`A \in \mathbb{R}^{d \times k}` of

.. math::

    \min_A \sum_{c=0}^{C} \mathrm{tr}(A^\top X M_c X^\top A) + \lambda \lVert A \rVert_F^2
    \quad \text{s.t.} \quad A^\top X H X^\top A = I,

the :math:`k` leading solutions of :math:`X H X^\top a = \phi\,(X M X^\top + \lambda I)\, a` with
:math:`M = C M_0 + \sum_{c=1}^{C} M_c` (the authors' code weighs the marginal term by the number of
classes :math:`C`, as much as the conditional ones together; the paper's sum weighs all alike).
The classifier trained on the projected source labels the target; the new pseudo-labels give new
:math:`M_c`; ``n_iter`` rounds (10 in the paper). As in the authors' code, :math:`M` is scaled to
unit Frobenius norm and the projected samples to unit norm before the classifier (1-NN in the
paper).

The right-hand side is :math:`B = G G^\top + \lambda I` with :math:`G = X E / \lVert E^\top E \rVert_F^{1/2}`
of only :math:`C + 1` columns (:math:`M = E E^\top`), so for many features the :math:`k` leading solutions
are those of the symmetric :math:`B^{-1/2} X H X^\top B^{-1/2}`, with :math:`B^{-1/2}` in closed form
from the thin SVD of :math:`G`; ARPACK's Lanczos iteration finds them from products with :math:`X` alone
(sparse inputs stay sparse), never forming a :math:`d \times d` matrix.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.base import clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize as unit_rows
from sklearn.utils._param_validation import Interval, StrOptions

from transferkit.methods.base import (
    FeatureClassifierMethod,
    Setting,
    mostly_zeros,
    shared_constraints,
    store_params,
)

__all__ = ["BDA", "JDA", "balance_factor", "jda_mmd_matrix", "jda_mmd_vectors", "leading_directions"]

#: ``eigen_solver="auto"`` uses ARPACK above this many features, the dense solver up to it.
DENSE_MAX_FEATURES = 1000


def jda_mmd_vectors(n_s: int, n_t: int, y_s: np.ndarray, pseudo: np.ndarray | None, classes) -> np.ndarray:
    """The columns :math:`e_c` with :math:`M_c = e_c e_c^\top`, shape (n_s + n_t, 1 + classes): :math:`e_0`
    (the marginal term) and one per class some target sample is pseudo-labelled with (``pseudo=None``:
    :math:`e_0` alone, the first round, which is TCA)."""
    # the marginal term weighs as much as the C conditional ones together: M_0 = C e_0 e_0^T (the authors' code)
    cols = [np.sqrt(len(classes)) * np.concatenate([np.full(n_s, 1.0 / n_s), np.full(n_t, -1.0 / n_t)])]
    for c in classes if pseudo is not None else ():
        s, t = y_s == c, pseudo == c
        if s.any() and t.any():  # a class no target sample is labelled with has no conditional term
            ec = np.zeros(n_s + n_t)
            ec[:n_s][s] = 1.0 / s.sum()
            ec[n_s:][t] = -1.0 / t.sum()
            cols.append(ec)
    return np.stack(cols, axis=1)


def jda_mmd_matrix(n_s: int, n_t: int, y_s: np.ndarray, pseudo: np.ndarray | None, classes) -> np.ndarray:
    r""":math:`M = C M_0 + \sum_c M_c` over the pooled samples (source first), as an (n, n) matrix."""
    E = jda_mmd_vectors(n_s, n_t, y_s, pseudo, classes)
    return E @ E.T


def leading_directions(
    X, G: np.ndarray, mu: float, k: int, solver: str = "dense", seed: int = 0, scatter: np.ndarray | None = None
) -> np.ndarray:
    r"""The :math:`k` leading solutions of :math:`X H X^\top a = \phi\,(G G^\top + \mu I)\, a`, largest
    :math:`\phi` first, shape (d, k), normalised so that :math:`A^\top (G G^\top + \mu I) A = I`.

    ``X`` holds the samples as rows, (n, d), dense or CSR; ``G`` is (d, m) with m small. ``"dense"``
    forms both d x d matrices and solves the generalised problem; ``"arpack"`` finds the leading
    eigenvectors :math:`u` of :math:`B^{-1/2} X H X^\top B^{-1/2}` by Lanczos iteration and returns
    :math:`a = B^{-1/2} u`, from products with ``X`` only. ``scatter``: :math:`X H X^\top` for the dense
    solver, when the caller has it (it does not change between JDA's rounds).
    """
    n, d = X.shape
    if solver == "dense":
        if scatter is None:
            scatter = centred_scatter(X)
        _, V = scipy.linalg.eigh(scatter, G @ G.T + mu * np.eye(d), subset_by_index=[d - k, d - 1])
        return V[:, ::-1]
    mean = np.asarray(X.mean(axis=0)).ravel()
    # B = G G^T + mu I = U (S^2 + mu) U^T + mu (I - U U^T), so B^{-1/2} is known in closed form
    U, s, _ = np.linalg.svd(G, full_matrices=False)
    root = 1.0 / np.sqrt(s**2 + mu)

    def b_inv_sqrt(V: np.ndarray) -> np.ndarray:
        UtV = U.T @ V
        return (V - U @ UtV) / np.sqrt(mu) + U @ (root.reshape(-1, *[1] * (V.ndim - 1)) * UtV)

    def scatter(V: np.ndarray) -> np.ndarray:  # X H X^T V = X^T X V - n m m^T V, centring without a dense Xc
        return X.T @ (X @ V) - n * np.multiply.outer(mean, mean @ V)

    def product(V: np.ndarray) -> np.ndarray:
        return b_inv_sqrt(scatter(b_inv_sqrt(V)))

    op = LinearOperator((d, d), matvec=product, matmat=product, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(d)  # ARPACK's own start vector is not seeded
    phi, Uk = eigsh(op, k=k, which="LA", v0=v0, tol=0)
    return b_inv_sqrt(Uk[:, np.argsort(phi)[::-1]])


def centred_scatter(X) -> np.ndarray:
    r""":math:`X H X^\top` in samples-as-rows form: the (d, d) scatter of the rows of ``X`` about their mean."""
    X = X.toarray() if sp.issparse(X) else X
    Xc = X - X.mean(0)
    return Xc.T @ Xc


class JDA(FeatureClassifierMethod):
    """JDA: a linear projection aligning the marginal and the class-conditional distributions.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Labels the target each round and is the final classifier; default 1-NN, as in the paper.
    n_components : int or "auto"
        The subspace dimension :math:`k`; ``"auto"``: 100, as in the paper, or the number of features
        (or samples) when that is smaller.
    mu : float
        The regulariser :math:`\\lambda` on :math:`\\lVert A \\rVert_F^2` (0.1 for the digits in the paper).
    n_iter : int
        Rounds of pseudo-labelling (10 in the paper); 1 is TCA with :math:`M_0` only.
    normalize : bool
        Scale every sample to unit norm before the projection, and every projected sample after it
        (the authors' code).
    eigen_solver : {"auto", "dense", "arpack"}
        How the generalised eigenproblem is solved each round: ``"dense"`` (both d x d matrices, exact),
        ``"arpack"`` (Lanczos iteration on products with the samples, for many features; sparse inputs
        stay sparse; needs ``n_components`` under the number of features), ``"auto"``: ARPACK above
        :data:`DENSE_MAX_FEATURES` features. Both give the same subspace.
    seed : int
        Passed to the estimator's ``random_state`` when it has one, and seeds ARPACK's start vector.

    Attributes
    ----------
    projection_ : ndarray, shape (d, k)
    pseudo_labels_ : ndarray
        The target's labels after the last round.
    history_ : list of dict
        Per round: the share of target pseudo-labels that changed.
    """

    name = "jda"
    setting = Setting(source_labels=True, target_labels=False)
    description = "joint distribution adaptation: marginal and class-conditional MMD with target pseudo-labels"
    paper = "Long, Wang, Ding, Sun & Yu, Transfer Feature Learning with Joint Distribution Adaptation, ICCV 2013"
    min_target_samples = 2

    _parameter_constraints = {
        **shared_constraints("estimator", "seed"),
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "mu": [Interval(Real, 0, np.inf, closed="neither")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "eigen_solver": [StrOptions({"auto", "dense", "arpack"})],
    }

    def __init__(
        self,
        estimator=None,
        n_components: int | str = "auto",
        mu: float = 0.1,
        n_iter: int = 10,
        normalize: bool = True,
        eigen_solver: str = "auto",
        seed: int = 0,
    ):
        store_params(self, locals())

    def _takes_sparse(self) -> bool:
        return self.eigen_solver != "dense"

    def _unit(self, Z):
        """``Z`` with every row scaled to unit norm (all-zero rows kept), dense or CSR, with ``normalize``."""
        return unit_rows(Z) if self.normalize else Z

    def fit(self, source, target=None, sample_domain=None):
        """Fit on a labelled ``source`` and an unlabelled ``target`` (samples are flattened)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        n_s, n_t = len(source), len(target)
        X = self._unit(_pooled(source.X, target.X))
        d = X.shape[1]
        limit = min(d, n_s + n_t - 1)
        k = min(100, limit) if self.n_components == "auto" else self.n_components
        if k > limit:
            raise ValueError(
                f"n_components={k} exceeds min(n_features, n_s + n_t - 1) = min({d}, {n_s + n_t - 1}); "
                f"expected n_components <= {limit}."
            )
        solver = self.eigen_solver
        if solver == "auto":
            solver = "arpack" if d > DENSE_MAX_FEATURES and k < d else "dense"
        if solver == "arpack" and k >= d:
            raise ValueError(
                f"eigen_solver='arpack' finds fewer directions than features; n_components={k} with {d} features. "
                "Use eigen_solver='dense'."
            )
        if solver == "dense" and sp.issparse(X):
            X = X.toarray()
        elif solver == "arpack" and not sp.issparse(X) and mostly_zeros(X):
            X = sp.csr_matrix(X)  # mostly zeros (bag-of-words): ARPACK's products cost the non-zeros only
        scatter = centred_scatter(X) if solver == "dense" else None  # the same in every round
        classes = np.unique(source.y)
        base = clone(self.estimator) if self.estimator is not None else KNeighborsClassifier(n_neighbors=1)
        if "random_state" in base.get_params():
            base.set_params(random_state=self.seed)
        pseudo, self.history_, Z = None, [], X
        for _ in range(self.n_iter):
            # X^T M X from M = E E^T without the n x n matrix; M scaled to unit Frobenius norm, as the
            # authors' code does: ||E E^T||_F = ||E^T E||_F
            E = jda_mmd_vectors(n_s, n_t, source.y, pseudo, classes)
            balance = self._balance(Z, source.y, pseudo, n_s) if pseudo is not None else None
            if balance is not None:  # (1 - mu) C M_0 + mu sum_c M_c, as BDA weighs them
                E[:, 0] *= np.sqrt(1.0 - balance)
                E[:, 1:] *= np.sqrt(balance)
            G = (X.T @ E) / np.sqrt(np.linalg.norm(E.T @ E))  # B = G G^T + mu I
            A = leading_directions(X, np.asarray(G), self.mu, k, solver, self.seed, scatter=scatter)
            Z = self._unit(np.asarray(X @ A))
            model = clone(base).fit(Z[:n_s], source.y)
            new = model.predict(Z[n_s:])
            changed = 1.0 if pseudo is None else float(np.mean(new != pseudo))
            self.history_.append({"changed": changed, **({"balance": balance} if balance is not None else {})})
            pseudo = new
        self.projection_, self.model_, self.pseudo_labels_ = A, model, pseudo
        self.classes_ = model.classes_
        self.input_shape_ = source.feature_shape
        return self

    def _balance(self, Z: np.ndarray, y_s: np.ndarray, pseudo: np.ndarray, n_s: int) -> float | None:
        """The weight of the conditional terms against the marginal one; None: JDA's (C M_0 + sum_c M_c)."""
        return None

    def _features(self, X) -> np.ndarray:
        X = X.astype(np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return self._unit(np.asarray(self._unit(X) @ self.projection_))

    def transform(self, X) -> np.ndarray:
        """The projected samples :math:`A^\\top x` (unit-normalised with ``normalize``), shape (n, k)."""
        return self._features(self._check_X(X))


class BDA(JDA):
    """BDA: JDA with a balance factor :math:`\\mu` between the marginal and the conditional terms.

    Wang, Chen, Hu, Yu & Li, "Balanced Distribution Adaptation for Transfer Learning", ICDM 2017:
    :math:`M = (1-\\mu)\\, C M_0 + \\mu \\sum_c M_c` (:math:`\\mu = 0.5` is JDA). With ``balance="auto"``
    :math:`\\mu` is estimated each round from proxy A-distances on the current projection, the
    marginal one :math:`d_M` and one per class :math:`d_c` (target classes by their pseudo-labels):
    :math:`\\hat\\mu = 1 - d_M / (d_M + \\sum_c d_c)`: the more the classes differ, the more they weigh.

    Parameters are those of :class:`JDA`, and ``balance``: a number in [0, 1], or ``"auto"``.
    """

    name = "bda"
    description = "balanced distribution adaptation: JDA with an estimated weight between marginal and conditional"
    paper = "Wang, Chen, Hu, Yu & Li, Balanced Distribution Adaptation for Transfer Learning, ICDM 2017"

    _parameter_constraints = {
        **JDA._parameter_constraints,
        "balance": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
    }

    def __init__(
        self,
        estimator=None,
        n_components="auto",
        mu: float = 0.1,
        n_iter: int = 10,
        normalize: bool = True,
        balance="auto",
        eigen_solver: str = "auto",
        seed: int = 0,
    ):
        store_params(self, locals())

    def _balance(self, Z: np.ndarray, y_s: np.ndarray, pseudo: np.ndarray, n_s: int) -> float:
        if self.balance != "auto":
            return float(self.balance)
        return balance_factor(Z[:n_s], Z[n_s:], y_s, pseudo, self.seed)


def _pooled(Xs, Xt):
    """The source rows then the target rows as float64 samples-as-rows: CSR if either is sparse."""
    if sp.issparse(Xs) or sp.issparse(Xt):
        return sp.vstack([sp.csr_matrix(Xs), sp.csr_matrix(Xt)], format="csr", dtype=np.float64)
    return np.concatenate([Xs.reshape(len(Xs), -1), Xt.reshape(len(Xt), -1)]).astype(np.float64)


def balance_factor(Zs: np.ndarray, Zt: np.ndarray, y_s: np.ndarray, pseudo: np.ndarray, seed: int = 0) -> float:
    r"""BDA's estimate :math:`\hat\mu = 1 - d_M / (d_M + \sum_c d_c)` from proxy A-distances: the marginal one
    between the domains, one per class between the source samples of class c and the target samples
    pseudo-labelled c (classes with fewer than 4 samples on either side are left out)."""
    from transferkit.metrics.divergence import proxy_a_distance

    d_m = proxy_a_distance(Zs, Zt, seed=seed)
    d_c = 0.0
    for c in np.unique(y_s):
        s, t = Zs[y_s == c], Zt[pseudo == c]
        if len(s) >= 4 and len(t) >= 4:
            d_c += proxy_a_distance(s, t, seed=seed)
    if d_m + d_c <= 0:
        return 0.5  # nothing tells the domains apart: weigh both alike
    return float(np.clip(1.0 - d_m / (d_m + d_c), 0.0, 1.0))
