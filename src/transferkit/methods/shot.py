r"""SHOT: source hypothesis transfer, adaptation without the source data.

Liang, Hu & Feng, "Do We Really Need to Access the Source Data? Source Hypothesis Transfer for
Unsupervised Domain Adaptation", ICML 2020.

1. **Source.** The network (features :math:`g`, a bottleneck, the classifier :math:`h`) is trained
   on the labelled source with label smoothing, :math:`\mathcal L_{src} = -\sum_k q_k^{ls} \log
   \delta_k(h(g(x)))`, :math:`q^{ls} = (1-\alpha) q + \alpha/K`, :math:`\alpha = 0.1`.
2. **Target, without the source.** :math:`h` is frozen (the *source hypothesis*); :math:`g` is
   trained on the unlabelled target by information maximisation plus self-supervised pseudo-labels,

   .. math::

       \mathcal L = \underbrace{-\mathbb E_x \sum_k \delta_k \log \delta_k}_{\text{confident}}
       \; + \; \underbrace{\sum_k \hat p_k \log \hat p_k}_{\text{diverse}, \; \hat p = \mathbb E_x \delta(x)}
       \; - \; \beta\, \mathbb E_x \sum_k \mathbb 1[\hat y = k] \log \delta_k,

   where the pseudo-labels :math:`\hat y` come, at the start of every epoch, from class centroids of
   the target features: :math:`c_k^{(0)} = \sum_x \delta_k(x) g(x) / \sum_x \delta_k(x)`,
   :math:`\hat y = \arg\min_k d_{\cos}(g(x), c_k^{(0)})`, then once more with the centroids of the
   labelled features, :math:`c_k^{(1)}`.

The source data are used in step 1 only; step 2 sees the target alone (and a network trained on the
source, which may come from elsewhere: ``source_model``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from transferkit.methods.base import NeuralTransferMethod, Setting
from transferkit.nn.augment import shift_rotate
from transferkit.nn.backbones import StagedNet, add_bottleneck
from transferkit.train.loop import FitConfig, fit_loop, to_batch

__all__ = ["SHOT", "information_maximisation", "centroid_pseudo_labels", "refresh_batchnorm"]


def information_maximisation(logits: torch.Tensor) -> torch.Tensor:
    """:math:`-\\mathbb E_x \\sum_k \\delta_k \\log \\delta_k + \\sum_k \\hat p_k \\log \\hat p_k` (minimised)."""
    p = torch.softmax(logits, 1)
    log_p = torch.log_softmax(logits, 1)
    entropy = -(p * log_p).sum(1).mean()
    mean = p.mean(0)
    return entropy + (mean * torch.log(mean.clamp_min(1e-12))).sum()


def centroid_pseudo_labels(features: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """SHOT's pseudo-labels: nearest (cosine) of the prediction-weighted class centroids, then nearest of
    the centroids of the samples so labelled."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centroids = proba.T @ f / np.maximum(proba.sum(0)[:, None], 1e-12)
    for _ in range(2):
        c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        labels = (f @ c.T).argmax(1)
        one_hot = np.eye(proba.shape[1])[labels]
        keep = one_hot.sum(0) > 0  # a class no sample chose keeps its previous centroid
        centroids[keep] = (one_hot.T @ f)[keep] / one_hot.sum(0)[keep, None]
    return labels


def refresh_batchnorm(net: nn.Module, X, chunk: int = 512) -> None:
    """Set the running statistics of ``net``'s training BatchNorm layers to those of the rows ``X`` under
    its current weights: one pass in train mode, each layer's mean and (unbiased) variance averaged over
    equal chunks of at most ``chunk`` rows. Layers that stay in eval mode (frozen ones) keep theirs."""
    was_training = net.training
    net.train()
    batchnorm = nn.modules.batchnorm._BatchNorm
    norms = [m for m in net.modules() if isinstance(m, batchnorm) and m.training and m.track_running_stats]
    if not norms or X.shape[0] < 2:  # a batch of one has no variance to measure
        net.train(was_training)
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the chunks
    device = next(net.parameters()).device
    with torch.no_grad():
        for rows in np.array_split(np.arange(X.shape[0]), -(-X.shape[0] // chunk)):
            net(to_batch(X[rows], device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    net.train(was_training)


class SourceObjective(nn.Module):
    """Cross-entropy with label smoothing on the labelled source batch, optionally of randomly shifted and
    rotated images (:func:`~transferkit.nn.augment.shift_rotate`)."""

    def __init__(self, net: StagedNet, smoothing: float, augment: bool = False):
        super().__init__()
        self.net, self.smoothing, self.augment = net, smoothing, augment

    def forward(self, batch, progress: float):
        x = shift_rotate(batch["xs"]) if self.augment else batch["xs"]
        logits = self.net(x)
        return {"loss": F.cross_entropy(logits, batch["ys"], label_smoothing=self.smoothing)}


class TargetObjective(nn.Module):
    """Information maximisation plus the pseudo-label term on an unlabelled target batch; ``pseudo``
    (a buffer, checkpointed with the objective) holds the current label of every target sample."""

    def __init__(self, net: StagedNet, n_target: int, beta: float):
        super().__init__()
        self.net, self.beta = net, beta
        self.register_buffer("pseudo", torch.zeros(n_target, dtype=torch.long))

    def forward(self, batch, progress: float):
        logits = self.net(batch["xt"])
        im = information_maximisation(logits)
        pl = F.cross_entropy(logits, self.pseudo[batch["it"]])
        return {"loss": im + self.beta * pl, "im": im.detach(), "pseudo_ce": pl.detach()}


def source_classes(nets, fallback=None) -> np.ndarray:
    """The class labels of given source networks' outputs: those of the fit that trained them (their
    ``class_labels``), else ``fallback``, else the output indices; every network must agree."""
    labels = [(i, np.asarray(n.class_labels)) for i, n in enumerate(nets) if hasattr(n, "class_labels")]
    for i, c in labels[1:]:
        if not np.array_equal(c, labels[0][1]):
            raise ValueError(
                f"source_model[{i}] predicts the classes {c.tolist()}, source_model[{labels[0][0]}] "
                f"{labels[0][1].tolist()}; expected every source to share its classes."
            )
    if labels:
        return labels[0][1]
    return fallback if fallback is not None else np.arange(nets[0].head.out_features)


@dataclass(eq=False, repr=False, kw_only=True)
class SHOT(NeuralTransferMethod):
    """Train on the source, then adapt the features to the target alone with the classifier frozen.

    Parameters
    ----------
    source_epochs : int
        Epochs of the source training (step 1).
    smoothing : float
        Label smoothing :math:`\\alpha` of the source training (0.1).
    beta : float
        Weight :math:`\\beta` of the pseudo-label term (0.3).
    bottleneck : int
        Width of the bottleneck layer before the classifier (256, as in the paper).
    bottleneck_design : {"auto", "shot", "ddc"}
        ``"shot"``, the paper's: fc-BatchNorm-Dropout(0.5) before a weight-normalised classifier
        (see :func:`~transferkit.nn.backbones.add_bottleneck`); ``"ddc"``: fc-ReLU before a plain one.
        ``"auto"``: the paper's for images and sequences (its digit and Office networks), DDC's for
        feature vectors, where the paper's lost 3.3 points on average over the suite's 22 tasks
        (benchmarks/RESULTS.md, "SHOT").
    augment : bool
        Train the source network on images shifted by up to 4 pixels and rotated by up to 10 degrees,
        each batch drawn afresh: the paper's digit augmentation. Images only. Off by default: it
        lifts MNIST <-> USPS to the paper's numbers and ruins MNIST -> MNIST-M (benchmarks/RESULTS.md).
    refresh_statistics : bool
        After every target epoch, set the BatchNorm running statistics to those of the whole target
        under the current weights (:func:`refresh_batchnorm`), so that the pseudo-labels and the
        predictions normalise as the network now computes. False keeps the momentum averages of
        training, as the paper's code does: they lag the features, which every step moves, and on a
        target of 100 utterances (30 steps) they left SHOT predicting one digit for all of them
        (benchmarks/RESULTS.md, "SHOT's batch statistics"). Networks without BatchNorm are unaffected.
    source_model : nn.Module, optional
        A network already trained on the source (``source_model_`` of another fit): step 1 is
        skipped and ``fit(None, target)`` needs no source data at all. Predictions keep the class
        labels of the fit that trained it (the network's ``class_labels``); a network from elsewhere
        predicts its output indices 0, ..., C-1.

    ``epochs`` counts the target epochs; the other parameters are those of
    :class:`~transferkit.methods.source_only.SourceOnly`.

    Attributes
    ----------
    source_model_ : nn.Module
        The network after step 1 (or ``source_model``): ``SHOT(source_model=m.source_model_)`` adapts it
        to another target without the source.
    """

    name = "shot"
    setting = Setting(source_labels=True, target_labels=False)
    description = "source-free adaptation: information maximisation and centroid pseudo-labels, classifier frozen"
    paper = "Liang, Hu & Feng, Do We Really Need to Access the Source Data?, ICML 2020"

    _parameter_constraints = {
        **NeuralTransferMethod._parameter_constraints,
        "source_epochs": [Interval(Integral, 1, None, closed="left")],
        "smoothing": [Interval(Real, 0, 1, closed="left")],
        "beta": [Interval(Real, 0, np.inf, closed="left")],
        "bottleneck": [Interval(Integral, 1, None, closed="left")],
        "bottleneck_design": [StrOptions({"auto", "shot", "ddc"})],
        "augment": ["boolean"],
        "refresh_statistics": ["boolean"],
        "source_model": [nn.Module, None],
    }

    epochs: int = 15
    source_epochs: int = 30
    smoothing: float = 0.1
    beta: float = 0.3
    bottleneck: int = 256
    bottleneck_design: str = "auto"
    augment: bool = False
    refresh_statistics: bool = True
    source_model: object = None

    #: models saved before these parameters existed: the DDC bottleneck, no augmentation, running averages
    _absent_params_mean = {"bottleneck_design": "ddc", "augment": False, "refresh_statistics": False}

    def _build_net(self, input_shape, n_classes: int) -> StagedNet:
        return add_bottleneck(super()._build_net(input_shape, n_classes), self.bottleneck, self._design(input_shape))

    def _source_free_target(self, source, target):
        """The unlabelled ``target`` of a fit that adapts ``source_model``, with no source data."""
        from transferkit.data import as_domain

        if source is not None:
            raise ValueError(
                "source_model replaces the source training, but source data were given too; "
                "call fit(None, target) to adapt source_model, or drop source_model to train on the source."
            )
        target = as_domain(target, "target")
        if target.y is not None:
            raise ValueError(
                f"target has labels, but {type(self).__name__} adapts to unlabelled target data; "
                "pass target.unlabelled()."
            )
        if self.augment:
            raise ValueError("augment=True augments the source training, which source_model skips; drop one.")
        return target

    def _check_augment(self, input_shape) -> None:
        if self.augment and len(input_shape) != 3:
            raise ValueError(
                f"augment=True shifts and rotates images; the source holds samples of shape {input_shape}, "
                "not (channels, height, width)."
            )

    def _design(self, input_shape) -> str:
        if self.bottleneck_design == "auto":
            return "ddc" if len(input_shape) == 1 else "shot"
        return self.bottleneck_design

    def _config(self, epochs: int, desc: str) -> FitConfig:
        config = self._fit_config(desc)
        config.epochs = epochs
        if self.checkpoint_dir:
            config.checkpoint_dir = f"{self.checkpoint_dir}/{desc}"
        return config

    def fit(self, source, target=None, sample_domain=None):
        """Step 1 on ``source`` (skipped with ``source_model``), step 2 on the unlabelled ``target`` alone."""
        self._validate_params()
        if self.source_model is not None:  # source-free: the target and a source network
            target = self._source_free_target(source, target)
            net = copy.deepcopy(self.source_model)
            self.classes_ = source_classes([net], getattr(self, "classes_", None))
            self.input_shape_ = target.feature_shape
        else:
            source, target = self._check_fit_data(source, target, sample_domain)
            self._check_augment(source.feature_shape)
            self.classes_ = np.unique(source.y)
            self.input_shape_ = source.feature_shape
            torch.manual_seed(self.seed)
            net = self._build_net(self.input_shape_, len(self.classes_))
            y = np.searchsorted(self.classes_, source.y).astype(np.int64)
            self.source_result_ = fit_loop(
                SourceObjective(net, self.smoothing, self.augment),
                {"xs": source.X, "ys": y},
                None,
                self._config(self.source_epochs, "source"),
            )
        self.source_model_ = copy.deepcopy(net).eval()  # the source hypothesis, for reuse without the source
        self.source_model_.class_labels = self.classes_  # so that its reuse predicts the same labels
        # step 2: the target alone; the classifier is the source hypothesis, frozen
        net.head.requires_grad_(False)
        objective = TargetObjective(net, len(target), self.beta)
        X_t = target.X

        def relabel(epoch=None, module=None, log=None):
            net.eval()
            with torch.no_grad():
                feats, probs = [], []
                for i in range(0, X_t.shape[0], 512):
                    x = to_batch(X_t[i : i + 512], next(net.parameters()).device)
                    h = net.forward_features(x).flatten(1)
                    feats.append(h.cpu().numpy())
                    probs.append(torch.softmax(net.forward_head(h), 1).cpu().numpy())
            objective.pseudo.copy_(
                torch.from_numpy(centroid_pseudo_labels(np.concatenate(feats), np.concatenate(probs)))
            )
            return {"pseudo_classes": float(len(np.unique(objective.pseudo.cpu().numpy())))}

        return self._adapt(objective, X_t, relabel)

    def _adapt(self, objective: nn.Module, X_t, relabel) -> SHOT:
        """Step 2: train ``objective`` on the target rows ``X_t`` alone, ``relabel`` setting the pseudo-labels
        before the first epoch (with the source network's statistics, as the paper's) and after every one
        (with the target's, if ``refresh_statistics``); its network becomes ``model_``."""

        def after_epoch(epoch, module, log):
            if self.refresh_statistics:
                refresh_batchnorm(objective.net, X_t)
            return relabel(epoch, module, log)

        relabel()
        self.fit_result_ = fit_loop(
            objective,
            {"xt": X_t, "it": np.arange(X_t.shape[0])},
            None,
            self._config(self.epochs, "target"),
            on_epoch_end=after_epoch,
        )
        self.history_ = self.fit_result_.history
        self.warnings_ = []
        self.model_ = objective.net.eval()
        return self
