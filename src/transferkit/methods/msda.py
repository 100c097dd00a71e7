r"""Marginalized stacked denoising autoencoder (mSDA), a closed-form feature learner.

Chen, Xu, Weinberger & Sha, "Marginalized Denoising Autoencoders for Domain Adaptation",
ICML 2012.

Each layer is a linear denoiser :math:`W` that reconstructs the inputs from copies in which every
feature is zeroed with probability :math:`p`, with the corruption marginalised out: in the limit of
infinitely many corrupted copies the squared loss
:math:`\frac{1}{2mn}\sum_{j=1}^{m}\sum_{i=1}^{n} \lVert x_i - W\tilde x_{i,j}\rVert^2` is minimised by

.. math::

    W = \mathbb{E}[P]\,\mathbb{E}[Q]^{-1}, \qquad
    \mathbb{E}[Q]_{\alpha\beta} = S_{\alpha\beta}\, q_\alpha q_\beta \ (\alpha \ne \beta),\quad
    \mathbb{E}[Q]_{\alpha\alpha} = S_{\alpha\alpha}\, q_\alpha, \qquad
    \mathbb{E}[P]_{\alpha\beta} = S_{\alpha\beta}\, q_\beta,

with :math:`S = \bar X \bar X^\top` the scatter matrix of the inputs with a constant bias feature,
:math:`q = (1-p, \dots, 1-p, 1)` (the bias is never corrupted). The layer's output is
:math:`h = \tanh(W \bar x)`; layers are stacked on each other's outputs and the representation is
the input concatenated with every layer's output. It is learnt on unlabelled source **and** target
data, so the features it finds carry over between domains; any method can then use them
(``transferkit run ... --features msda``).

**Computation.** Row :math:`\alpha` of :math:`\mathbb{E}[P]` is row :math:`\alpha` of
:math:`\mathbb{E}[Q]` divided by :math:`q_\alpha`, except on the diagonal, so with the ridge
:math:`\hat Q = \mathbb{E}[Q] + \eta\,\mathrm{diag}(1, \dots, 1, 0)` the solve collapses to

.. math::

    W = \mathrm{diag}(q)^{-1} [I_d \; 0]
        - \mathrm{diag}\big(\eta / q_\alpha + (1 - q_\alpha) S_{\alpha\alpha}\big)\, [\hat Q^{-1}]_{1:d,\,:},

one Cholesky factorisation and inverse of the SPD :math:`\hat Q` (:math:`d^3` flops) instead of an LU
solve with :math:`d` right-hand sides (:math:`\tfrac83 d^3`); :math:`\mathbb{E}[P]` is never
formed. The scatter and the forward passes run in float32 (one GEMM each; the scatter of integer
counts is exact while its entries stay below :math:`2^{24}`, on the Amazon reviews they reach
:math:`10^5`; that of tanh outputs agrees with float64 to about 1e-7 relative); the factorisation
runs in float64, since :math:`\hat Q` can be ill-conditioned.

**What the papers did on the Amazon reviews** (matched by the defaults): Ganin et al. (JMLR 2016,
Sec. 5.1.4) "generate the mSDA representations using a corruption probability of 50% and a number
of layers of 5 ... we use the concatenation of the output of the 5 layers and the original input
... 30 000 dimensions", learnt per source-target pair on both unlabelled training samples. Their
code (``mSDA.py`` and ``experiments_amazon.py`` in GRAAL-Research/domain_adversarial_neural_network)
fits it on the raw 5000-d count vectors of the source and target training files, ridge
:math:`\eta = 10^{-5}` not applied to the bias, tanh outputs. Chen et al.'s own MATLAB code
(``mDA.m``, ``mSDA.m``, ``examples/sentiment.m``) is the same solve and ridge, but fits the layers on
binarised inputs (``double(xx>0)``) while concatenating the raw input: ``binarize=True`` here.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.linalg import lapack
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval

from transferkit._sklearn import CheckedParams, Float32Transformer, check_n_features
from transferkit.data import check_array

__all__ = ["MSDA", "msda_layer"]


def _with_bias(X: np.ndarray) -> np.ndarray:
    """:math:`\\bar X = [X, 1]`, in ``X``'s dtype."""
    Xb = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
    Xb[:, :-1] = X
    Xb[:, -1] = 1.0
    return Xb


def _spd_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of the symmetric positive definite float64 ``A`` (C-contiguous), overwriting ``A``.

    LAPACK ``dpotrf`` + ``dpotri`` in place on ``A``'s buffer (``A.T`` is its Fortran-ordered view
    and equals ``A``); ``dpotri`` fills one triangle, mirrored here in blocks of rows.
    """
    m = A.shape[0]
    chol, info = lapack.dpotrf(A.T, lower=0, overwrite_a=1, clean=0)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"the corrupted scatter matrix is not positive definite (leading minor {info}); "
            "a feature that is constant zero needs reg > 0."
        )
    inv, info = lapack.dpotri(chol, lower=0, overwrite_c=1)
    if info != 0:  # pragma: no cover - dpotri fails only where dpotrf already did
        raise np.linalg.LinAlgError(f"LAPACK dpotri failed (info={info}).")
    T = inv.T  # C-ordered; its lower triangle holds the inverse
    block = 512
    for k in range(0, m, block):
        e = min(k + block, m)
        diag = T[k:e, k:e]
        upper = np.triu_indices(e - k, 1)
        diag[upper] = diag.T[upper]
        T[k:e, e:] = T[e:, k:e].T
    return T


def msda_layer(X: np.ndarray, p: float, reg: float = 1e-5) -> np.ndarray:
    """The closed-form marginalised denoiser of one layer (Chen et al. 2012, Algorithm 1).

    Parameters
    ----------
    X : array of shape (n_samples, d)
        Float64 input is kept in float64 throughout; anything else is scattered in float32.
    p : float
        Corruption probability, in [0, 1).
    reg : float
        Ridge term :math:`\\eta` added to the diagonal of :math:`\\mathbb{E}[Q]` (not on the bias),
        as in the authors' code (:math:`10^{-5}`).

    Returns
    -------
    W : float64 array of shape (d, d + 1)
        Maps ``[x, 1]`` to the reconstruction of ``x``.
    """
    X = np.asarray(X)
    X = X if X.dtype == np.float64 else X.astype(np.float32)
    d = X.shape[1]
    Xb = _with_bias(X)
    Q = np.asarray(Xb.T @ Xb, dtype=np.float64)  # S, overwritten into Q + ridge below
    del Xb
    S_diag = Q.diagonal().copy()
    q = np.full(d + 1, 1.0 - p)
    q[-1] = 1.0  # the bias is never corrupted
    Q *= q  # E[Q]_ab = S_ab q_a q_b off the diagonal ...
    Q *= q[:, None]
    np.fill_diagonal(Q, q * S_diag)  # ... and S_aa q_a on it
    Q.flat[: d * (d + 2) : d + 2] += reg
    W = _spd_inverse(Q)[:d]  # rows 1..d of (Q + ridge)^{-1}, turned into W in place
    W *= -(reg / q[:d] + (1.0 - q[:d]) * S_diag[:d])[:, None]
    W.flat[:: d + 2] += 1.0 / q[:d]
    return W


def _layer_forward(h: np.ndarray, W: np.ndarray) -> np.ndarray:
    """:math:`\\tanh(W [h; 1])` for the rows of ``h`` (float32, ``W`` of shape (d, d + 1))."""
    out = h @ W[:, :-1].T
    out += W[:, -1]
    return np.tanh(out, out=out)


class MSDA(Float32Transformer, CheckedParams, TransformerMixin, BaseEstimator):
    """Marginalized stacked denoising autoencoder (scikit-learn transformer).

    Parameters
    ----------
    n_layers : int
        Stacked layers (5 in the DANN paper's Amazon experiments).
    noise : float
        Corruption probability :math:`p` (0.5 there; Chen et al. tune it per task).
    reg : float
        Ridge regularisation :math:`\\eta` of each layer's solve (1e-5 in both papers' code).
    keep_input : bool
        Output ``[x, h_1, ..., h_L]`` (the papers' representation) or only ``[h_1, ..., h_L]``.
    binarize : bool
        Learn the layers on ``x > 0`` (Chen et al.'s code for word counts) rather than on ``x``;
        the kept input is ``x`` itself either way. The DANN code feeds the raw counts (``False``).
    max_features : int, optional
        Learn on the first ``max_features`` input columns only (the mSDA code's cheap variant for
        very wide inputs keeps the most frequent words; the Amazon columns are frequency-ordered).

    Attributes
    ----------
    weights_ : list of float32 ndarray of shape (d, d + 1)
        The layers' :math:`W`, with ``d`` the width the layers work at.
    """

    _parameter_constraints = {
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "noise": [Interval(Real, 0, 1, closed="left")],
        "reg": [Interval(Real, 0, np.inf, closed="left")],  # finite: reg=inf would turn every feature to NaN
        "keep_input": ["boolean"],
        "binarize": ["boolean"],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_layers: int = 5,
        noise: float = 0.5,
        reg: float = 1e-5,
        keep_input: bool = True,
        binarize: bool = False,
        max_features=None,
    ):
        self.n_layers = n_layers
        self.noise = noise
        self.reg = reg
        self.keep_input = keep_input
        self.binarize = binarize
        self.max_features = max_features

    def _layer_input(self, X: np.ndarray) -> np.ndarray:
        h = X[:, : self.max_features] if self.max_features else X
        return (h > 0).astype(np.float32) if self.binarize else np.ascontiguousarray(h)

    def _fit(self, X) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fit the layers; return the checked ``X`` and the training rows' outputs ``[h_1, ..., h_L]``."""
        self._validate_params()
        X = check_array(X, "X", allow_nd=False)
        self.n_features_in_ = X.shape[1]
        h = self._layer_input(X)
        self.weights_, outputs = [], []
        for _ in range(self.n_layers):
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, by name
                W = msda_layer(h, self.noise, self.reg).astype(np.float32)  # float64 buffer freed here
            if not np.isfinite(W).all():  # the scatter matrix overflowed: squares of |x| near 1e19 exceed float64
                raise ValueError(
                    f"X has values up to {np.abs(X).max():.3g}, too large for mSDA's closed form (its scatter "
                    "matrix overflows); scale the features first (e.g. --preprocess standardize)."
                )
            self.weights_.append(W)
            h = _layer_forward(h, W)
            outputs.append(h)
        return X, outputs

    def _stack(self, X: np.ndarray, outputs: list[np.ndarray]) -> np.ndarray:
        blocks = ([X] if self.keep_input else []) + outputs
        Z = np.empty((len(X), sum(b.shape[1] for b in blocks)), dtype=np.float32)
        start = 0
        for b in blocks:
            Z[:, start : start + b.shape[1]] = b
            start += b.shape[1]
        return Z

    def fit(self, X, y=None):
        """Learn the layers on unlabelled data ``X`` (stack source and target rows). ``y`` is ignored."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X).transform(X)``, reusing the layer outputs computed while fitting."""
        return self._stack(*self._fit(X))

    def transform(self, X) -> np.ndarray:
        """``[x, h_1, ..., h_L]`` (or ``[h_1, ..., h_L]``) as float32."""
        if not hasattr(self, "weights_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this MSDA is not fitted yet; call fit(X) on unlabelled source and target data.")
        X = check_array(X, "X", allow_nd=False)
        check_n_features(X.shape[1], self.n_features_in_, self)
        h, outputs = self._layer_input(X), []
        for W in self.weights_:
            h = _layer_forward(h, W)
            outputs.append(h)
        return self._stack(X, outputs)
