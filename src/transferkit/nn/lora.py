r"""LoRA: low-rank adaptation of the Linear and Conv2d layers of any module.

Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang & Chen, "LoRA: Low-Rank Adaptation of Large Language
Models", ICLR 2022. A pretrained weight :math:`W_0 \in \mathbb{R}^{d_{out} \times d_{in}}` is frozen
and a low-rank update is learnt beside it,

.. math:: h = W_0 x + \frac{\alpha}{r} B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\;
          B \in \mathbb{R}^{d_{out} \times r},

with :math:`A` drawn at random (Kaiming-uniform) and :math:`B = 0`, so that training starts from the
pretrained network exactly. For a convolution, :math:`A` is a convolution with the layer's kernel,
stride and padding into :math:`r` channels and :math:`B` a 1x1 convolution back to the output
channels. Only :math:`A` and :math:`B` train: :math:`r (d_{in} + d_{out})` parameters per layer
instead of :math:`d_{in} d_{out}`.

Conservative training composes with it: the update of a LoRA layer is :math:`\Delta W =
\frac{\alpha}{r} BA`, so L2-SP's pull towards the pretrained weights, :math:`\lVert W - W_0 \rVert^2`,
is :math:`\lVert \Delta W \rVert^2` (:func:`lora_l2sp`); LwF distils the outputs and needs nothing
else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LoRAConv2d", "LoRAL2SP", "LoRALinear", "add_lora", "lora_l2sp", "lora_parameters"]


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update :math:`\\frac{\\alpha}{r} BA`."""

    def __init__(self, base: nn.Linear, r: int, alpha: float | None = None):
        super().__init__()
        self.base, self.r = base, int(r)
        self.scale = (alpha if alpha is not None else r) / r
        base.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """:math:`\\Delta W = \\frac{\\alpha}{r} BA`, shaped like the base weight."""
        return self.scale * self.B @ self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * nn.functional.linear(nn.functional.linear(x, self.A), self.B)


class LoRAConv2d(nn.Module):
    """A frozen ``nn.Conv2d`` plus a trainable rank-``r`` update: a convolution into ``r`` channels
    with the layer's kernel, then a 1x1 convolution back (zero-initialised)."""

    def __init__(self, base: nn.Conv2d, r: int, alpha: float | None = None):
        super().__init__()
        if base.groups != 1:
            raise ValueError(f"LoRA on a grouped convolution (groups={base.groups}) is not supported.")
        self.base, self.r = base, int(r)
        self.scale = (alpha if alpha is not None else r) / r
        base.requires_grad_(False)
        self.A = nn.Conv2d(base.in_channels, r, base.kernel_size, base.stride, base.padding, base.dilation, bias=False)
        self.B = nn.Conv2d(r, base.out_channels, 1, bias=False)
        nn.init.kaiming_uniform_(self.A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.B.weight)

    def delta(self) -> torch.Tensor:
        """:math:`\\Delta W`, shaped like the base kernel: :math:`B` (out x r) times :math:`A` (r x in x k x k)."""
        return self.scale * torch.einsum("or,rikl->oikl", self.B.weight[:, :, 0, 0], self.A.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.B(self.A(x))


def add_lora(module: nn.Module, r: int = 4, alpha: float | None = None, exclude: tuple[str, ...] = ()) -> list[str]:
    """Replace every ``nn.Linear`` and ``nn.Conv2d`` of ``module`` (in place) by its LoRA version, except
    those named in ``exclude`` or inside them; freeze everything else. Returns the adapted layers' names."""
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r={r!r}; expected a positive integer rank.")
    module.requires_grad_(False)
    names = []
    present = [n for n, m in module.named_modules() if isinstance(m, (LoRALinear, LoRAConv2d))]
    for name, layer in list(module.named_modules()):
        if not name or any(name == e or name.startswith(e + ".") for e in exclude):
            continue
        if any(name == p or name.startswith(p + ".") for p in present):  # already adapted
            continue
        if isinstance(layer, nn.Linear):
            wrapped = LoRALinear(layer, r, alpha)
        elif isinstance(layer, nn.Conv2d) and layer.groups == 1:
            wrapped = LoRAConv2d(layer, r, alpha)
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, wrapped)
        names.append(name)
    if not names:
        raise ValueError(
            f"{type(module).__name__} has no nn.Linear or nn.Conv2d layer outside {list(exclude)}; LoRA has "
            "nothing to adapt."
        )
    return names


def lora_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The trainable LoRA factors of ``module``."""
    out = []
    for m in module.modules():
        if isinstance(m, LoRALinear):
            out += [m.A, m.B]
        elif isinstance(m, LoRAConv2d):
            out += [m.A.weight, m.B.weight]
    return out


def lora_l2sp(module: nn.Module) -> torch.Tensor:
    """:math:`\\sum_\\ell \\lVert \\Delta W_\\ell \\rVert^2` over the LoRA layers: the squared distance of the
    effective weights from the pretrained ones."""
    terms = [m.delta().pow(2).sum() for m in module.modules() if isinstance(m, (LoRALinear, LoRAConv2d))]
    return torch.stack(terms).sum() if terms else torch.zeros(())


class LoRAL2SP(nn.Module):
    r"""L2-SP on a LoRA network: :math:`\frac{\alpha}{2} \sum_\ell \lVert \Delta W_\ell \rVert^2 +
    \frac{\beta}{2} \lVert w_{new} \rVert^2`, the new (trainable, non-LoRA) parameters decayed toward 0,
    as :class:`~transferkit.nn.regularisers.L2SP` does for the layers it does not anchor."""

    def __init__(self, alpha: float = 0.1, beta: float = 0.01):
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, model: nn.Module) -> torch.Tensor:
        lora = {id(p) for p in lora_parameters(model)}
        new = [p for p in model.parameters() if p.requires_grad and id(p) not in lora]
        decay = torch.stack([p.pow(2).sum() for p in new]).sum() if new else torch.zeros(())
        return 0.5 * self.alpha * lora_l2sp(model) + 0.5 * self.beta * decay
