r"""TENT: test-time adaptation by entropy minimisation of the normalisation layers.

Wang, Shelhamer, Liu, Olshausen & Darrell, "Tent: Fully Test-Time Adaptation by Entropy
Minimization", ICLR 2021.

A network trained on the labelled source is adapted *while it predicts*, on the stream of target
batches it is given, without the source data and without a second pass. Every batch normalisation
layer normalises with the statistics of the current test batch, and only its affine parameters
:math:`\theta = \{\gamma, \beta\}` are updated, one gradient step per batch, to minimise the
Shannon entropy of the predictions,

.. math:: \min_\theta \; H(\hat y) = -\frac1B \sum_{i=1}^{B} \sum_c p(c \mid x_i; \theta) \log p(c \mid x_i; \theta).

The predictions of a batch are those of the forward pass whose entropy is then minimised (the
paper's online setting): a batch is never seen twice. Everything else of the network stays as the
source trained it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.base import NeuralTransferMethod, Setting
from transferkit.methods.source_only import SourceOnlyObjective
from transferkit.nn.backbones import StagedNet, auto_backbone, build_backbone
from transferkit.train.loop import to_batch

__all__ = ["TENT", "entropy"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy :math:`-\\frac1B \\sum_i \\sum_c p_{ic} \\log p_{ic}` of softmax(``logits``)."""
    log_p = torch.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(1).mean()


@dataclass(eq=False, repr=False, kw_only=True)
class TENT(NeuralTransferMethod):
    """Train on the labelled source; adapt the batch normalisation to each target batch as it is predicted.

    Parameters
    ----------
    tent_lr : float
        Learning rate of the test-time updates (Adam, as the paper uses for its digit and CIFAR
        experiments: 1e-3).
    tent_batch_size : int
        Samples per test batch: the statistics each batch is normalised with, and one update each.
    online : bool
        Whether ``predict`` and ``predict_proba`` adapt (``adapt=`` overrides it per call); False
        predicts with the source network as it is.
    shuffle : bool
        Stream the samples of a call in a seeded random order (one pass still), so that each batch's
        statistics are those of the target, not of one class when the file is sorted by class.
    episodic : bool
        True: every call starts again from the source network, and the samples of the call are the
        stream (the same samples always get the same predictions). False: the adaptation carries over
        from call to call, as on a stream that arrives in pieces; :meth:`reset` returns to the source
        network.

    The other parameters are those of :class:`~transferkit.methods.source_only.SourceOnly`;
    ``backbone="auto"`` takes the batch-normalised variant of the usual network (``"shallow-bn"``,
    ``"lenet-bn"``, ``"dann-digits-bn"``). Any module with batch normalisation works.
    """

    name = "tent"
    test_time = True
    setting = Setting(source_labels=True, target_labels=False, target=False)
    description = "test-time adaptation: entropy minimisation of the batch-norm affine parameters, batch by batch"
    paper = (
        "Wang, Shelhamer, Liu, Olshausen & Darrell, Tent: Fully Test-Time Adaptation by Entropy Minimization, ICLR 2021"
    )

    _parameter_constraints = {
        **NeuralTransferMethod._parameter_constraints,
        "tent_lr": [Interval(Real, 0, np.inf, closed="neither")],
        "tent_batch_size": [Interval(Integral, 2, None, closed="left")],
        "online": ["boolean"],
        "episodic": ["boolean"],
        "shuffle": ["boolean"],
    }

    tent_lr: float = 1e-3
    tent_batch_size: int = 128
    online: bool = True
    episodic: bool = True
    shuffle: bool = True

    def _build_net(self, input_shape: tuple[int, ...], n_classes: int) -> StagedNet:
        if self.backbone == "auto":
            name = auto_backbone(input_shape)
            name = {"conv1d": "conv1d"}.get(name, f"{name}-bn")  # the 1-D CNN has batch normalisation already
            kwargs = {"hidden": self.hidden} if name == "shallow-bn" else {}
            return build_backbone(name, input_shape, n_classes, **kwargs)
        return super()._build_net(input_shape, n_classes)

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        if not any(isinstance(m, _NORMS) for m in net.modules()):
            raise ValueError(
                f"backbone {self.backbone!r} has no batch normalisation layer; TENT adapts those. Use "
                "backbone='auto' or a network with BatchNorm."
            )
        return SourceOnlyObjective(net)

    def fit(self, source, target=None, sample_domain=None):
        """Train the source network (TENT adapts later, at prediction time)."""
        super().fit(source, target, sample_domain)
        self.source_state_ = copy.deepcopy(self.model_.state_dict())
        self._start()
        return self

    def _start(self) -> None:
        """The test-time optimiser over the normalisation layers' affine parameters only."""
        self.model_.requires_grad_(False)
        params = []
        for m in self.model_.modules():
            if isinstance(m, _NORMS) and m.affine:
                m.weight.requires_grad_(True)
                m.bias.requires_grad_(True)
                params += [m.weight, m.bias]
        self._optimizer = torch.optim.Adam(params, lr=self.tent_lr)
        self.adapted_batches_ = 0

    def reset(self):
        """Back to the source network: the adaptation so far is forgotten."""
        self._check_is_fitted()
        self.model_.load_state_dict(self.source_state_)
        self._start()
        return self

    def _adapt_batches(self, X: np.ndarray) -> np.ndarray:
        """Predict ``X`` batch by batch, each batch normalised by its own statistics and followed by one
        entropy-minimisation step on the affine parameters."""
        device = next(self.model_.parameters()).device
        net = self.model_
        net.eval()
        for m in net.modules():  # batch statistics: the normalisation layers in training mode
            if isinstance(m, _NORMS):
                m.train()
        # a file sorted by class gives batches of one class, whose statistics normalise the class away:
        # the call's samples are streamed in a seeded random order (still one pass), answers put back
        n = X.shape[0]
        order = np.random.default_rng(self.seed).permutation(n) if self.shuffle else np.arange(n)
        out = np.empty((n, len(self.classes_)), dtype=np.float32)
        for i in range(0, n, self.tent_batch_size):
            rows = order[i : i + self.tent_batch_size]
            logits = net(to_batch(X[rows], device))
            loss = entropy(logits)
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
            out[rows] = torch.softmax(logits.detach(), 1).cpu().numpy()
            self.adapted_batches_ += 1
        net.eval()
        return out

    def predict_proba(self, X, adapt: bool | None = None) -> np.ndarray:
        """Class probabilities; with ``adapt`` (default ``online``) the network adapts on these samples,
        in the order given, as it predicts them."""
        if not (self.online if adapt is None else adapt):
            return super().predict_proba(X)
        X = self._check_X(X)
        if not hasattr(self, "source_state_"):  # a loaded model: its saved weights are the source network
            self.source_state_ = copy.deepcopy(self.model_.state_dict())
            self._start()
        if not self.episodic:
            return self._adapt_batches(X)
        self.reset()
        try:
            return self._adapt_batches(X)
        finally:
            self.reset()  # between calls the model is the source network (what save writes)

    def predict(self, X, adapt: bool | None = None) -> np.ndarray:
        """Predicted labels; adapting as :meth:`predict_proba` does."""
        proba = self.predict_proba(X, adapt=adapt)  # refuses an unfitted model first
        return self.classes_[proba.argmax(1)]
