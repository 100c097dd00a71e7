"""Torch building blocks (no training logic): gradient reversal, backbones, discriminators, MMD/CORAL."""

from transferkit.nn.backbones import BACKBONES, StagedNet, build_backbone, dann_digits_net, lenet, shallow_net
from transferkit.nn.discriminator import DomainDiscriminator
from transferkit.nn.divergences import coral_loss, gaussian_kernel, mmd2
from transferkit.nn.grl import GradientReversal, ganin_lambda, grad_reverse

__all__ = [
    "BACKBONES",
    "DomainDiscriminator",
    "GradientReversal",
    "StagedNet",
    "build_backbone",
    "coral_loss",
    "gaussian_kernel",
    "mmd2",
    "dann_digits_net",
    "ganin_lambda",
    "grad_reverse",
    "lenet",
    "shallow_net",
]
