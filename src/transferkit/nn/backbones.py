"""Backbones with ordered, named stages (the timm convention, without forward hooks).

Every network here is a :class:`StagedNet`: an ordered list of named stages followed by a
classifier head. That makes "copy the first N layers", "adapt the features after stage k" and
"tap several layers for multi-layer MMD" one-liners::

    net = dann_digits_net(n_classes=10, in_channels=3)
    net.stage_names                  # ('conv1', 'conv2', 'fc1', 'fc2')
    h = net.forward_to(x, "conv2")   # features the DANN domain classifier sees
    logits = net.forward_from(h, "conv2")
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from transferkit.nn.sparse import SparseInputLinear

__all__ = [
    "StagedNet",
    "shallow_net",
    "dann_digits_net",
    "lenet",
    "conv1d_net",
    "build_backbone",
    "from_module",
    "add_bottleneck",
    "BACKBONES",
]


class StagedNet(nn.Module):
    """A network made of named stages and a classifier head.

    Parameters
    ----------
    stages : OrderedDict[str, nn.Module]
        Run in order; the output of the last one is the penultimate feature vector.
    head : nn.Module
        The classifier applied to the features.
    feature_dim : int
        Width of the last stage's output.
    adapt_at : str, optional
        The stage whose output domain-adaptation methods align by default (for the DANN digits
        network: the convolutional features, as in Ganin et al. 2016). Defaults to the last stage.
    stage_dims : dict, optional
        Output width of each (flattened) stage, for building discriminators at any stage.
    """

    def __init__(
        self,
        stages: OrderedDict[str, nn.Module],
        head: nn.Module,
        feature_dim: int,
        adapt_at: str | None = None,
        stage_dims: dict[str, int] | None = None,
    ):
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.head = head
        self.feature_dim = int(feature_dim)
        self.adapt_at = adapt_at or next(reversed(stages))
        self.stage_dims = dict(stage_dims or {self.adapt_at: feature_dim})
        if self.adapt_at not in self.stages:
            raise ValueError(f"adapt_at={self.adapt_at!r} is not a stage; stages: {list(self.stages)}")

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    def stage_width(self, stage: str, name: str = "adapt_at") -> int:
        """The flattened output width of ``stage`` (a discriminator's input): listed in ``stage_dims``, or
        ``feature_dim`` for the last stage; otherwise refused, naming the argument ``name``."""
        width = self.stage_dims.get(stage) or (self.feature_dim if stage == self.stage_names[-1] else None)
        if width is None:
            raise ValueError(
                f"{name}={stage!r}: its width is unknown; stages with known widths: {list(self.stage_dims)}"
            )
        return width

    def _index(self, stage: str) -> int:
        try:
            return self.stage_names.index(stage)
        except ValueError:
            raise ValueError(f"unknown stage {stage!r}; this network's stages: {list(self.stage_names)}") from None

    def forward_to(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """Run the stages up to and including ``stage``."""
        last = self._index(stage)
        for i, module in enumerate(self.stages.values()):
            x = module(x)
            if i == last:
                break
        return x

    def forward_from(self, h: torch.Tensor, stage: str) -> torch.Tensor:
        """Continue from the output of ``stage`` to the logits."""
        first = self._index(stage) + 1
        for module in list(self.stages.values())[first:]:
            h = module(h)
        return self.head(h)

    def forward_taps(self, x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        """The outputs of the stages named in ``taps`` and the logits (under key ``"logits"``)."""
        for t in taps:
            self._index(t)
        out: dict[str, torch.Tensor] = {}
        for name, module in self.stages.items():
            x = module(x)
            if name in taps:
                out[name] = x
        out["logits"] = self.head(x)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.stages.values():
            x = module(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the head with a freshly initialised linear layer for ``n_classes``."""
        self.head = nn.Linear(self.feature_dim, n_classes)


def shallow_net(
    in_features: int, n_classes: int = 2, hidden: int = 50, activation: str = "relu", batchnorm: bool = False
) -> StagedNet:
    """The DANN paper's shallow network for the Amazon reviews: ``in -> hidden -> classes``.

    Ganin et al. (JMLR 2016, Sec. 5.1.1) use one hidden layer of 50 sigmoid units; ``activation``
    may be ``"sigmoid"`` for that exact form or ``"relu"``.
    """
    act = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid()}.get(activation)
    if act is None:
        raise ValueError(f"activation={activation!r}; expected 'relu' or 'sigmoid'.")
    norm = [nn.BatchNorm1d(hidden)] if batchnorm else []
    # the first layer is the one that meets sparse (bag-of-words) batches
    stages = OrderedDict(hidden=nn.Sequential(SparseInputLinear(in_features, hidden), *norm, act))
    return StagedNet(stages, nn.Linear(hidden, n_classes), hidden, stage_dims={"hidden": hidden})


def linear_net(in_features: int, n_classes: int = 2) -> StagedNet:
    """No hidden layer: the head acts on the input itself (``x -> W x``).

    For fixed features (ResNet-101 vectors of a zero-shot benchmark), this makes a compatibility
    ``head(x) . a`` the bilinear form ``x^T W a`` of ALE / SJE exactly.
    """
    stages = OrderedDict(input=nn.Identity())
    head = SparseInputLinear(in_features, n_classes)
    return StagedNet(stages, head, in_features, stage_dims={"input": in_features})


def _conv_out(in_shape: tuple[int, int, int], body: nn.Module) -> int:
    with torch.no_grad():
        return int(body(torch.zeros(1, *in_shape)).flatten(1).shape[1])


def dann_digits_net(
    n_classes: int = 10, in_shape: tuple[int, int, int] = (3, 28, 28), batchnorm: bool = False
) -> StagedNet:
    """The DANN paper's MNIST architecture (Ganin et al., JMLR 2016, Fig. 4, left).

    Feature extractor conv5x5(32)-pool-conv5x5(48)-pool; label predictor fc(100)-fc(100)-fc(10).
    The domain classifier (fc(100)-fc(1)) attaches after ``conv2``, which is ``adapt_at``.
    ``batchnorm=True`` (``"dann-digits-bn"``): batch normalisation after each convolution, for
    methods that adapt its statistics (TENT).
    """
    c = in_shape[0]
    bn = (lambda k: [nn.BatchNorm2d(k)]) if batchnorm else (lambda k: [])  # noqa: E731
    conv1 = nn.Sequential(nn.Conv2d(c, 32, 5), *bn(32), nn.ReLU(), nn.MaxPool2d(2))
    conv2 = nn.Sequential(nn.Conv2d(32, 48, 5), *bn(48), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    d = _conv_out(in_shape, nn.Sequential(conv1, conv2))
    stages = OrderedDict(
        conv1=conv1,
        conv2=conv2,
        fc1=nn.Sequential(nn.Linear(d, 100), nn.ReLU()),
        fc2=nn.Sequential(nn.Linear(100, 100), nn.ReLU()),
    )
    return StagedNet(
        stages,
        nn.Linear(100, n_classes),
        100,
        adapt_at="conv2",
        stage_dims={"conv2": d, "fc1": 100, "fc2": 100},
    )


def lenet(n_classes: int = 10, in_shape: tuple[int, int, int] = (1, 28, 28), batchnorm: bool = False) -> StagedNet:
    """LeNet as used for digit adaptation (conv5x5(20)-pool-conv5x5(50)-pool-fc(500)).

    Small inputs (16x16 USPS) use padding 2 so the two 5x5 convolutions still fit. Adaptation
    methods align the convolutional features (``adapt_at="conv2"``), as DANN does for digits.
    """
    c, h, _ = in_shape
    pad = 2 if h < 24 else 0
    bn = (lambda k: [nn.BatchNorm2d(k)]) if batchnorm else (lambda k: [])  # noqa: E731
    conv1 = nn.Sequential(nn.Conv2d(c, 20, 5, padding=pad), *bn(20), nn.ReLU(), nn.MaxPool2d(2))
    conv2 = nn.Sequential(nn.Conv2d(20, 50, 5, padding=pad), *bn(50), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    d = _conv_out(in_shape, nn.Sequential(conv1, conv2))
    stages = OrderedDict(conv1=conv1, conv2=conv2, fc1=nn.Sequential(nn.Linear(d, 500), nn.ReLU()))
    return StagedNet(stages, nn.Linear(500, n_classes), 500, adapt_at="conv2", stage_dims={"conv2": d, "fc1": 500})


def conv1d_net(n_classes: int = 2, in_shape: tuple[int, int] = (1, 128), width: int = 32) -> StagedNet:
    """A small 1-D CNN for time series of shape (channels, length).

    Two blocks conv7(width)-BatchNorm-ReLU-pool, then global average pooling over time, so any
    length works, the shape of the fully convolutional baselines for time-series classification
    (Wang, Yan & Oates, IJCNN 2017), made smaller. Adaptation methods align the pooled features
    (``adapt_at="pool"``).
    """
    c, length = in_shape
    if length < 4:
        raise ValueError(f"conv1d needs series of length 4 or more; got inputs of shape {in_shape}.")
    block = lambda i, o: nn.Sequential(nn.Conv1d(i, o, 7, padding=3), nn.BatchNorm1d(o), nn.ReLU(), nn.MaxPool1d(2))  # noqa: E731
    stages = OrderedDict(
        conv1=block(c, width),
        conv2=block(width, 2 * width),
        pool=nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten()),
    )
    d = 2 * width
    return StagedNet(stages, nn.Linear(d, n_classes), d, adapt_at="pool", stage_dims={"pool": d})


def add_bottleneck(net: StagedNet, width: int = 256, design: str = "ddc") -> StagedNet:
    r"""A copy of ``net`` with an adaptation layer of ``width`` units before a new head.

    ``design="ddc"`` (Tzeng et al. 2014): ``fc(width)-ReLU``, a narrow layer between the features and
    the classifier, whose outputs the discrepancy is measured on. ``design="shot"`` (Liang et al.,
    ICML 2020): ``fc(width)-BatchNorm-Dropout(0.5)``, without a ReLU, before a weight-normalised
    classifier :math:`h_k(z) = g_k\, v_k^\top z / \lVert v_k \rVert + b_k`. Its batch statistics
    follow the domain being trained on: in SHOT's target step, the target's.

    The layer becomes the network's ``adapt_at`` stage; the other stages are shared (not copied) with ``net``.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"bottleneck width={width!r}; expected a positive integer.")
    if design not in ("ddc", "shot"):
        raise ValueError(f"bottleneck design={design!r}; expected 'ddc' or 'shot'.")
    head_out = net.head.out_features if isinstance(net.head, nn.Linear) else None
    if head_out is None:
        raise ValueError("add_bottleneck needs a network whose head is one nn.Linear layer.")
    stages = OrderedDict(net.stages.items())
    fc = nn.Linear(net.feature_dim, width)
    head = nn.Linear(width, head_out)
    if design == "ddc":
        stages["bottleneck"] = nn.Sequential(nn.Flatten(), fc, nn.ReLU())
    else:
        stages["bottleneck"] = nn.Sequential(nn.Flatten(), fc, nn.BatchNorm1d(width), nn.Dropout(0.5))
        head = nn.utils.parametrizations.weight_norm(head)
    dims = {**net.stage_dims, "bottleneck": width}
    return StagedNet(stages, head, width, adapt_at="bottleneck", stage_dims=dims)


class _Stop(Exception):
    """Raised by the hook on the feature layer: the rest of the network is not run."""


def _tensor_of(out, where: str) -> torch.Tensor:
    """The tensor a module returned: itself, a Hugging Face-style output's ``logits``, or a tuple's first."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "keys") and "logits" in out.keys():
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ValueError(f"{where} returns a {type(out).__name__}; expected a tensor (or an output with logits).")


class ModuleFeatures(nn.Module):
    """The features of any module: the output of its layer ``layer`` (by module name), flattened; by
    default the input of its last ``nn.Linear`` (the classifier), which is replaced by the identity."""

    def __init__(self, module: nn.Module, layer: str | None = None):
        super().__init__()
        self.layer = layer
        if layer is None:
            linears = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(
                    f"backbone {type(module).__name__} has no nn.Linear classifier; name the layer whose output "
                    "is the feature with feature_layer=."
                )
            parent, _, child = linears[-1].rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, child, nn.Identity())
            self.replaced = linears[-1]
        else:
            names = [n for n, _ in module.named_modules() if n]
            if layer not in names:
                import difflib

                close = difflib.get_close_matches(layer, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
                raise ValueError(
                    f"feature_layer={layer!r} is not a module of the backbone.{hint} Its modules: {shown}."
                )
            self.replaced = None
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer is None:
            return _tensor_of(self.module(x), "the backbone").flatten(1)
        captured = {}

        def hook(_module, _inputs, output):
            captured["out"] = output
            raise _Stop

        handle = self.module.get_submodule(self.layer).register_forward_hook(hook)
        try:
            self.module(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if "out" not in captured:
            raise ValueError(f"feature_layer={self.layer!r} is never run by the backbone's forward.")
        return _tensor_of(captured["out"], f"feature_layer={self.layer!r}").flatten(1)


def from_module(
    module: nn.Module, input_shape: tuple[int, ...], n_classes: int, feature_layer: str | None = None
) -> StagedNet:
    """Any ``nn.Module`` (a torchvision ResNet, a timm model, a Hugging Face vision model) as a
    :class:`StagedNet`: one stage, ``"features"`` (see :class:`ModuleFeatures`), and a new linear head
    for ``n_classes``. The module is deep-copied; the caller's is never changed."""
    import copy

    if isinstance(module, StagedNet):
        net = copy.deepcopy(module)
        if not isinstance(net.head, nn.Linear) or net.head.out_features != n_classes:
            net.reset_classifier(n_classes)
        return net
    body = ModuleFeatures(copy.deepcopy(module), feature_layer)
    was_training = body.training
    body.eval()
    with torch.no_grad():
        try:
            dim = body(torch.zeros((2, *input_shape))).shape[1]
        except (RuntimeError, TypeError) as err:  # the module cannot take these inputs
            first = str(err).splitlines()[0]
            raise ValueError(
                f"backbone {type(module).__name__} cannot run on inputs of shape {tuple(input_shape)} ({first})."
            ) from None
    body.train(was_training)
    return StagedNet(OrderedDict(features=body), nn.Linear(dim, n_classes), dim, stage_dims={"features": dim})


BACKBONES = {
    "shallow": shallow_net,
    "linear": linear_net,
    "dann-digits": dann_digits_net,
    "lenet": lenet,
    "conv1d": conv1d_net,
    # with batch normalisation after each hidden layer or convolution (TENT adapts it)
    "shallow-bn": functools.partial(shallow_net, batchnorm=True),
    "dann-digits-bn": functools.partial(dann_digits_net, batchnorm=True),
    "lenet-bn": functools.partial(lenet, batchnorm=True),
}


def auto_backbone(input_shape: tuple[int, ...]) -> str:
    """The backbone ``"auto"`` stands for: the shallow network for vectors, the 1-D CNN for series,
    the DANN digits CNN for images of 28x28 and more, LeNet for smaller images."""
    if len(input_shape) == 1:
        return "shallow"
    if len(input_shape) == 2:
        return "conv1d"
    return "dann-digits" if len(input_shape) == 3 and input_shape[1] >= 28 else "lenet"


def build_backbone(name: str, input_shape: tuple[int, ...], n_classes: int, **kwargs) -> StagedNet:
    """Build a backbone by name for inputs of ``input_shape`` (without the batch axis).

    ``"auto"`` picks the shallow network for feature vectors, the 1-D CNN for time series
    (channels, length), the DANN digits CNN for images of 28x28 and more, and LeNet for smaller
    images (16x16 USPS).
    """
    if name == "auto":  # the DANN CNN needs 28x28 inputs to keep spatial extent; LeNet pads small digits
        name = auto_backbone(input_shape)
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: 'auto', {', '.join(map(repr, BACKBONES))}.")
    if name in ("shallow", "linear", "shallow-bn"):
        if len(input_shape) != 1:
            raise ValueError(f"backbone {name!r} needs feature vectors; got inputs of shape {input_shape}.")
        return BACKBONES[name](input_shape[0], n_classes, **kwargs)
    if name == "conv1d":
        if len(input_shape) != 2:
            raise ValueError(f"backbone 'conv1d' needs series of shape (channels, length); got {input_shape}.")
        return conv1d_net(n_classes, tuple(input_shape), **kwargs)
    if len(input_shape) != 3:
        raise ValueError(f"backbone {name!r} needs images of shape (channels, height, width); got {input_shape}.")
    return BACKBONES[name](n_classes, tuple(input_shape), **kwargs)
