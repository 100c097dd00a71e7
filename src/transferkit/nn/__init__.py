"""Torch building blocks (no training logic): gradient reversal, backbones, discriminators, MMD/CORAL,
layer transfer, freezing and conservative-training regularisers (L2-SP, distillation)."""

from transferkit.nn.backbones import BACKBONES, StagedNet, build_backbone, dann_digits_net, lenet, shallow_net
from transferkit.nn.discriminator import DomainDiscriminator
from transferkit.nn.divergences import coral_loss, gaussian_kernel, mmd2
from transferkit.nn.grl import GradientReversal, ganin_lambda, grad_reverse
from transferkit.nn.regularisers import L2SP, DistillationLoss, OldModelOutputs, distillation_loss, l2sp_penalty
from transferkit.nn.transfer import (
    GradualUnfreezing,
    discriminative_lr_mults,
    freeze,
    frozen_layers,
    layer_names,
    layerwise_param_groups,
    transfer_layers,
    unfreeze,
)

__all__ = [
    "BACKBONES",
    "DistillationLoss",
    "DomainDiscriminator",
    "GradientReversal",
    "GradualUnfreezing",
    "L2SP",
    "OldModelOutputs",
    "StagedNet",
    "build_backbone",
    "coral_loss",
    "discriminative_lr_mults",
    "distillation_loss",
    "freeze",
    "frozen_layers",
    "gaussian_kernel",
    "mmd2",
    "dann_digits_net",
    "ganin_lambda",
    "grad_reverse",
    "l2sp_penalty",
    "layer_names",
    "layerwise_param_groups",
    "lenet",
    "shallow_net",
    "transfer_layers",
    "unfreeze",
]
