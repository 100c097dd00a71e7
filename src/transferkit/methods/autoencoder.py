r"""A one-hidden-layer autoencoder as a feature learner (a scikit-learn transformer).

Trained on unlabelled data to reconstruct its input through a narrower sigmoid layer,

.. math:: \min_{W, b, W', b'} \frac{1}{n} \sum_i \lVert x_i - (W' h_i + b') \rVert_2^2
          + \rho\, \mathrm{KL}(\bar h_{\text{target}} \,\Vert\, \bar h), \qquad h_i = \sigma(W x_i + b),

where the optional sparsity term (Ng's sparse autoencoder, the form used in the self-taught
learning literature) pulls every hidden unit's mean activation :math:`\bar h_j` towards a small
target :math:`\bar h_{\text{target}}`:
:math:`\mathrm{KL} = \sum_j t \log\frac{t}{\bar h_j} + (1-t)\log\frac{1-t}{1-\bar h_j}`.
The features of a sample are :math:`h(x)`. Inputs are centred and scaled on the training data.

References: Hinton & Salakhutdinov, Science 2006; Ng, CS294A lecture notes "Sparse autoencoder", 2011.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit._sklearn import CheckedParams, Float32Transformer, check_n_features
from transferkit.data import check_array
from transferkit.methods.base import shared_constraints
from transferkit.train.loop import FitConfig, fit_loop

__all__ = ["Autoencoder", "sparsity_kl"]


def sparsity_kl(h: torch.Tensor, target: float) -> torch.Tensor:
    r""":math:`\sum_j t\log(t/\bar h_j) + (1-t)\log((1-t)/(1-\bar h_j))` over the hidden units of ``h``."""
    mean = h.mean(0).clamp(1e-6, 1 - 1e-6)
    t = torch.as_tensor(target, dtype=h.dtype)
    return (t * torch.log(t / mean) + (1 - t) * torch.log((1 - t) / (1 - mean))).sum()


class _AutoencoderNet(nn.Module):
    def __init__(self, d: int, k: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, k), nn.Sigmoid())
        self.decoder = nn.Linear(k, d)


class _ReconstructionObjective(nn.Module):
    def __init__(self, net: _AutoencoderNet, sparsity: float, sparsity_target: float):
        super().__init__()
        self.net, self.sparsity, self.target = net, sparsity, sparsity_target

    def forward(self, batch, progress: float):
        x = batch["xs"]
        h = self.net.encoder(x)
        reconstruction = ((self.net.decoder(h) - x) ** 2).sum(1).mean()
        loss = reconstruction + (self.sparsity * sparsity_kl(h, self.target) if self.sparsity else 0.0)
        return {"loss": loss, "reconstruction": reconstruction}


class Autoencoder(Float32Transformer, CheckedParams, TransformerMixin, BaseEstimator):
    """Sigmoid autoencoder features learnt on unlabelled data.

    Training takes the parameters of every network method (``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``seed``, ``device``, ``n_threads``, ``precision``, ``verbose``; see :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    n_hidden : int
        Width of the hidden layer (the features).
    sparsity : float
        :math:`\\rho`, weight of the sparsity penalty (0: a plain autoencoder).
    sparsity_target : float
        The mean activation the penalty pulls each hidden unit towards.
    """

    _parameter_constraints = {
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "sparsity": [Interval(Real, 0, np.inf, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        **shared_constraints(
            "epochs", "batch_size", "lr", "weight_decay", "seed", "device", "n_threads", "precision", "verbose"
        ),
    }

    def __init__(
        self,
        n_hidden: int = 256,
        sparsity: float = 0.0,
        sparsity_target: float = 0.05,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        seed: int = 0,
        device: str = "auto",
        n_threads: int | None = None,
        precision: str = "float32",
        verbose: bool = False,
    ):
        self.n_hidden = n_hidden
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device
        self.n_threads = n_threads
        self.precision = precision
        self.verbose = verbose

    def _prepare(self, X) -> np.ndarray:
        X = check_array(X, "X")
        X = X.reshape(len(X), -1)
        if hasattr(self, "mean_"):
            check_n_features(X.shape[1], len(self.mean_), self)
        return X

    def fit(self, X, y=None):
        """Train on unlabelled ``X`` (images are flattened); ``y`` is ignored."""
        self._validate_params()  # before the data: every hyperparameter named with what it allows
        X = self._prepare(X)
        self.mean_, self.std_ = X.mean(0), X.std(0) + 1e-3
        Z = ((X - self.mean_) / self.std_).astype(np.float32)
        torch.manual_seed(self.seed)
        net = _AutoencoderNet(Z.shape[1], int(self.n_hidden))
        config = FitConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            progress=self.verbose,
            desc="autoencoder",
        )
        objective = _ReconstructionObjective(net, float(self.sparsity), float(self.sparsity_target))
        self.fit_result_ = fit_loop(objective, {"xs": Z}, None, config)
        self.history_ = self.fit_result_.history
        self.model_ = net.cpu().eval()
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """Hidden activations :math:`h(x)`, shape (n_samples, n_hidden)."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this Autoencoder is not fitted yet; call fit(X_unlabelled) first.")
        Z = (self._prepare(X) - self.mean_) / self.std_
        # in float64: a float32 product may round differently with the rows in another order
        linear = self.model_.encoder[0]
        W, b = linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()
        return expit(Z.astype(np.float64) @ W.T + b).astype(np.float32)

    def reconstruction_error(self, X) -> float:
        """Mean squared reconstruction error per sample (in the standardised input space)."""
        Z = ((self._prepare(X) - self.mean_) / self.std_).astype(np.float32)
        with torch.no_grad():
            x = torch.from_numpy(Z)
            return float(((self.model_.decoder(self.model_.encoder(x)) - x) ** 2).sum(1).mean())
