r"""Domain-adversarial training of neural networks (DANN).

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015;
Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 17(59), 2016.

A feature extractor :math:`G_f`, a label predictor :math:`G_y` and a domain classifier
:math:`G_d` play for the saddle point of

.. math::

    E(\theta_f, \theta_y, \theta_d) = \frac{1}{n}\sum_{i=1}^{n} L_y^i(\theta_f, \theta_y)
        - \lambda \Big( \frac{1}{n}\sum_{i=1}^{n} L_d^i(\theta_f, \theta_d)
        + \frac{1}{n'}\sum_{i=n+1}^{N} L_d^i(\theta_f, \theta_d) \Big),

:math:`G_d` minimising the domain loss and :math:`G_f` maximising it, so the features become
discriminative for the labels and indistinguishable between domains. A gradient reversal layer
between :math:`G_f` and :math:`G_d` turns this into one ordinary backward pass. The adaptation
factor follows :math:`\lambda_p = \lambda_{max}(2/(1+e^{-\gamma p}) - 1)` (Sec. 5.2.2); the
domain classifier learns at the full rate, as in the authors' Caffe release.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.base import AdaptationMethod, Setting
from transferkit.nn.backbones import StagedNet
from transferkit.nn.discriminator import DomainDiscriminator
from transferkit.nn.grl import ganin_lambda, grad_reverse


def domain_adversarial_loss(d_source: torch.Tensor, d_target: torch.Tensor) -> torch.Tensor:
    r"""The domain classifier's loss :math:`L_d`: binary cross-entropy, source 0, target 1.

    .. math:: L_d = -\frac{1}{n+n'}\Big(\sum_{i \le n} \log(1-\sigma(d_i)) + \sum_{i > n} \log \sigma(d_i)\Big)

    Takes logits, so it never saturates into a zero gradient.
    """
    logits = torch.cat([d_source, d_target])
    labels = torch.cat([torch.zeros_like(d_source), torch.ones_like(d_target)])
    return F.binary_cross_entropy_with_logits(logits, labels)


class DANNObjective(nn.Module):
    """:math:`L_y + L_d` with the features fed to :math:`G_d` through :math:`R_{\\lambda_p}`."""

    def __init__(
        self,
        net: StagedNet,
        discriminator: nn.Module,
        adapt_at: str,
        lambda_max: float,
        lambda_schedule: str,
        gamma: float,
    ):
        super().__init__()
        self.net = net
        self.discriminator = discriminator
        self.adapt_at = adapt_at
        self.lambda_max = lambda_max
        self.lambda_schedule = lambda_schedule
        self.gamma = gamma
        self._per_domain_batches = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())

    def features(self, xs: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The source and target features at ``adapt_at``."""
        if self._per_domain_batches:  # batch statistics stay per domain, as the paper trains
            return self.net.forward_to(xs, self.adapt_at), self.net.forward_to(xt, self.adapt_at)
        # no batch statistics: one pass over both domains is the same computation, cheaper
        return self.net.forward_to(torch.cat([xs, xt]), self.adapt_at).split([len(xs), len(xt)])

    def grl_lambda(self, progress: float) -> float:
        """The adaptation factor at this point of training."""
        if self.lambda_schedule == "constant":
            return self.lambda_max
        return self.lambda_max * ganin_lambda(progress, self.gamma)

    def forward(self, batch, progress: float):
        xs, ys, xt = batch["xs"], batch["ys"], batch["xt"]
        h_s, h_t = self.features(xs, xt)
        logits = self.net.forward_from(h_s, self.adapt_at)
        loss_y = F.cross_entropy(logits, ys)
        coeff = self.grl_lambda(progress)
        d_s = self.discriminator(grad_reverse(h_s, coeff))
        d_t = self.discriminator(grad_reverse(h_t, coeff))
        loss_d = domain_adversarial_loss(d_s, d_t)
        with torch.no_grad():
            domain_acc = 0.5 * ((d_s < 0).float().mean() + (d_t > 0).float().mean())
        return {
            "loss": loss_y + loss_d,
            "loss_y": loss_y.detach(),
            "loss_d": loss_d.detach(),
            "grl_lambda": torch.tensor(coeff),
            "domain_acc": domain_acc,
            "source_acc": (logits.argmax(1) == ys).float().mean(),
        }


@dataclass(eq=False, repr=False, kw_only=True)
class DANN(AdaptationMethod):
    """Domain-adversarial neural network (gradient reversal).

    Parameters
    ----------
    backbone : str or nn.Module
        ``"auto"`` (shallow net for vectors, the paper's CNN for 28x28 images, LeNet for smaller),
        a name from :data:`transferkit.nn.BACKBONES`, or any network of your own (a torchvision
        ResNet, a timm or Hugging Face model, a :class:`StagedNet`): it is copied, never changed;
        its features (``feature_layer``) feed a new head for the source's classes, and the domain
        classifier sees them.
    feature_layer : str, optional
        For a module backbone: the layer, by module name, whose output (flattened) is the feature;
        default the input of its last ``nn.Linear``, the classifier it came with.
    hidden : int
        Hidden width of the shallow network (50 in the paper).
    adapt_at : str, optional
        The stage whose output is aligned; default the backbone's ``adapt_at``.
    disc_hidden : tuple of int
        Hidden widths of the domain classifier; ``(100,)`` as in the paper's digits network.
    disc_dropout : float
        Dropout after each hidden layer of the domain classifier (0; the paper's Office network and
        CDAN's code use 0.5 with two wide layers).
    lambda_max : float
        Final adaptation factor :math:`\\lambda` (1 in the paper's schedule).
    lambda_schedule : {"ganin", "constant"}
        Ramp :math:`\\lambda` from 0 with Ganin's schedule, or hold it constant.
    gamma : float
        Steepness of the ramp (10).
    epochs : int
        Training epochs.
    batch_size : int
        Samples per step (per domain, for two-domain methods).
    lr : float
        Initial learning rate.
    optimizer : {"adam", "sgd"}
        The optimiser.
    momentum : float
        Momentum of SGD.
    weight_decay : float
        L2 weight decay.
    lr_schedule : {"constant", "ganin"}
        Constant, or Ganin's annealing ``lr / (1 + 10 p) ** 0.75``; with SGD and momentum 0.9 it is
        the paper's recipe.
    grad_clip : float
        Bound on the gradient norm of each step (0: off); keeps the adversarial game from
        spiking (see benchmarks/RESULTS.md, MNIST -> MNIST-M).
    diagnostics : bool
        Log per epoch, on fixed subsets of the training inputs (no labels): the proxy A-distance
        and MMD between source and target features, the entropy of target predictions and the
        share of the most predicted class; a collapse to one class raises a warning.
    select_epoch : str or None
        A label-free validator (``"dev"``, ``"iwv"``, ``"entropy"``, ``"reverse"``, ``"source"``;
        see :mod:`transferkit.selection.validators`) that scores the network after every epoch on a
        held-out ``select_fraction`` of the source and the unlabelled target; the weights of the
        best epoch are kept (``selected_epoch_``, scores in ``history_``). ``None``: the last epoch.
    select_fraction : float
        The share of the labelled source held out for ``select_epoch`` (not trained on).
    seed : int
        Seeds initialisation and batch order: the same seed gives the same model.
    device : str
        ``"auto"`` uses CUDA when available.
    n_threads : int, optional
        CPU threads while training; ``None``: one for a small network (a training step under 1e8
        multiply-adds), torch's setting otherwise (:mod:`transferkit.train.threads`); the caller's
        setting is restored afterwards.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs the forward pass under :func:`torch.autocast` (matrix products and
        convolutions in bfloat16; losses, weights and the optimiser in float32): faster on GPUs and
        CPUs with bfloat16 units, at some accuracy. Prediction stays in float32.
    checkpoint_dir : str, optional
        Save atomic checkpoints there and resume from the newest good one.
    verbose : bool
        Show progress on stderr.
    """

    name = "dann"
    setting = Setting(source_labels=True, target_labels=False)
    description = "domain-adversarial training: a gradient reversal layer makes features domain-invariant"
    paper = "Ganin et al., Domain-Adversarial Training of Neural Networks, JMLR 2016"

    _parameter_constraints = {
        **AdaptationMethod._parameter_constraints,
        "adapt_at": [str, None],
        "disc_hidden": [tuple, list],
        "disc_dropout": [Interval(Real, 0, 1, closed="left")],
        "gamma": [Interval(Real, 0, np.inf, closed="neither")],
    }

    adapt_at: str | None = None
    disc_hidden: tuple[int, ...] = (100,)
    disc_dropout: float = 0.0
    lambda_max: float = 1.0
    lambda_schedule: str = "ganin"
    gamma: float = 10.0

    def _domain_classifier(self, width: int) -> DomainDiscriminator:
        """A new domain classifier of ``width`` inputs with this estimator's hidden widths and dropout."""
        return DomainDiscriminator(width, tuple(self.disc_hidden), self.disc_dropout)

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:
        adapt_at = self.adapt_at or net.adapt_at
        width = net.stage_width(adapt_at)
        self.discriminator_ = self._domain_classifier(width)
        return DANNObjective(net, self.discriminator_, adapt_at, self.lambda_max, self.lambda_schedule, self.gamma)
