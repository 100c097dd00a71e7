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
:math:`q = (1-p, \dots, 1-p, 1)`. The layer's output is :math:`h = \tanh(W \bar x)`; layers are
stacked on each other's outputs and the representation is the input concatenated with every
layer's output. It is learnt on unlabelled source **and** target data, so the features it finds
carry over between domains; any method can then use them (``transferkit run ... --features msda``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from transferkit.data import check_array

__all__ = ["MSDA", "msda_layer"]


def msda_layer(X: np.ndarray, p: float, reg: float = 1e-5) -> np.ndarray:
    """The closed-form marginalised denoiser of one layer (Chen et al. 2012, Algorithm 1).

    Parameters
    ----------
    X : array of shape (n_samples, d)
    p : float
        Corruption probability, in [0, 1).
    reg : float
        Ridge term added to the diagonal of :math:`\\mathbb{E}[Q]` (not on the bias), as in the
        authors' code.

    Returns
    -------
    W : array of shape (d, d + 1)
        Maps ``[x, 1]`` to the reconstruction of ``x``.
    """
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1), dtype=X.dtype)]).astype(np.float64)
    S = Xb.T @ Xb
    q = np.full(d + 1, 1.0 - p)
    q[-1] = 1.0  # the bias is never corrupted
    Q = S * np.outer(q, q)
    np.fill_diagonal(Q, q * np.diag(S))
    P = S[:d, :] * q[None, :]
    ridge = reg * np.eye(d + 1)
    ridge[-1, -1] = 0.0
    # W = P (Q + ridge)^{-1}; Q is symmetric, so solve (Q + ridge) W^T = P^T
    return np.linalg.solve(Q + ridge, P.T).T


class MSDA(TransformerMixin, BaseEstimator):
    """Marginalized stacked denoising autoencoder (scikit-learn transformer).

    Parameters
    ----------
    n_layers : int
        Stacked layers (5 in the DANN paper's Amazon experiments).
    noise : float
        Corruption probability :math:`p` (0.5 there; Chen et al. tune it per task).
    reg : float
        Ridge regularisation of each layer's solve.
    keep_input : bool
        Output ``[x, h_1, ..., h_L]`` (the paper's representation) or only ``[h_1, ..., h_L]``.
    max_features : int, optional
        Learn on the first ``max_features`` input columns only (the mSDA code's cheap variant for
        very wide inputs keeps the most frequent words; the Amazon columns are frequency-ordered).

    Attributes
    ----------
    weights_ : list of ndarray
        The layers' :math:`W`.
    """

    def __init__(
        self, n_layers: int = 5, noise: float = 0.5, reg: float = 1e-5, keep_input: bool = True, max_features=None
    ):
        self.n_layers = n_layers
        self.noise = noise
        self.reg = reg
        self.keep_input = keep_input
        self.max_features = max_features

    def _check_params(self) -> None:
        if isinstance(self.n_layers, bool) or not isinstance(self.n_layers, (int, np.integer)) or self.n_layers < 1:
            raise ValueError(f"n_layers={self.n_layers!r}; expected a positive integer.")
        if not (0.0 <= self.noise < 1.0):
            raise ValueError(f"noise={self.noise!r}; expected a corruption probability in [0, 1).")
        if not (self.reg >= 0):
            raise ValueError(f"reg={self.reg!r}; expected a non-negative number.")

    def fit(self, X, y=None):
        """Learn the layers on unlabelled data ``X`` (stack source and target rows). ``y`` is ignored."""
        self._check_params()
        X = check_array(X, "X", allow_nd=False).astype(np.float64)
        self.n_features_in_ = X.shape[1]
        h = X[:, : self.max_features] if self.max_features else X
        self.weights_ = []
        for _ in range(self.n_layers):
            W = msda_layer(h, self.noise, self.reg)
            self.weights_.append(W)
            h = np.tanh(np.hstack([h, np.ones((len(h), 1))]) @ W.T)
        return self

    def transform(self, X) -> np.ndarray:
        """``[x, h_1, ..., h_L]`` (or ``[h_1, ..., h_L]``) as float32."""
        if not hasattr(self, "weights_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this MSDA is not fitted yet; call fit(X) on unlabelled source and target data.")
        X = check_array(X, "X", allow_nd=False).astype(np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; this MSDA was fitted on {self.n_features_in_}.")
        h = X[:, : self.max_features] if self.max_features else X
        outs = [X] if self.keep_input else []
        for W in self.weights_:
            h = np.tanh(np.hstack([h, np.ones((len(h), 1))]) @ W.T)
            outs.append(h)
        return np.hstack(outs).astype(np.float32)
