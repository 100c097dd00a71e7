"""Adam and SGD with momentum, the updates of ``torch.optim``, without its compiler hooks.

``torch.optim``'s optimisers wrap ``step``, ``zero_grad`` and ``add_param_group`` for
``torch.compile``: the first of those calls in a process imports ``torch._dynamo`` (about 1 s of
every fresh process on the 2-core benchmark machine, paid even by code that never compiles), and
every step then passes through the wrappers (about 0.12 ms per step on the 5000 -> 50 review
network, 6 % of a DANN step; ``benchmarks/optim_step.py``). The two classes here keep the
update, the state and the ``state_dict`` layout of ``torch.optim.Adam`` and ``torch.optim.SGD``
and call the same fused ATen kernels ``fused=True`` selects, so a run takes the same steps and a
checkpoint written by either loads in the other.

Adam (Kingma & Ba, ICLR 2015), with the L2 penalty added to the gradient as ``torch.optim.Adam``
does (not AdamW's decoupled decay): for t = 1, 2, ...

    g_t = grad + wd θ_{t-1}
    m_t = β1 m_{t-1} + (1 - β1) g_t,    v_t = β2 v_{t-1} + (1 - β2) g_t²
    θ_t = θ_{t-1} - lr / (1 - β1^t) · m_t / (sqrt(v_t) / sqrt(1 - β2^t) + ε)

SGD with momentum μ and dampening τ (Sutskever et al., ICML 2013, in torch's form):

    g_t = grad + wd θ_{t-1},    b_1 = g_1,    b_t = μ b_{t-1} + (1 - τ) g_t,    θ_t = θ_{t-1} - lr b_t

Where the fused kernel does not cover a device or dtype (older torch on the CPU, for one), the
same arithmetic runs as ordinary tensor operations.

The updates are elementwise, so a parameter stored in another dense layout (a transposed weight,
channels-last convolutions) goes to the kernel as a flat view of its memory, with its gradient and
state in the same layout: the fused kernel takes about twice as long over strided tensors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["SGD", "Adam"]


def _flat(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """One-dimensional views of the memory of tensors that share a dense layout; else as they are."""
    t = tensors[0]
    if t.is_contiguous() or any(u.stride() != t.stride() for u in tensors):
        return tensors
    order = sorted(range(t.dim()), key=lambda i: -t.stride(i))  # the layout's own order of dimensions
    if not t.permute(order).is_contiguous():  # overlapping or with gaps: no flat view
        return tensors
    return [u.permute(order).view(-1) for u in tensors]


def _flattened(*lists: list[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
    """``lists`` of tensors that belong together (parameter, gradient, state), each set as :func:`_flat`."""
    return tuple(map(list, zip(*(_flat(list(group)) for group in zip(*lists, strict=True)), strict=True)))


class _Optimizer:
    """Parameter groups, state and ``state_dict`` in ``torch.optim.Optimizer``'s layout."""

    defaults: dict

    def __init__(self, params: Iterable, defaults: dict):
        groups = list(params)
        if not groups:
            raise ValueError("the optimiser got an empty parameter list.")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: dict[torch.Tensor, dict] = {}
        self._fused = True  # until a kernel refuses the parameters' device or dtype
        seen: set[int] = set()
        for group in groups:
            params = list(group["params"])
            if any(id(p) in seen for p in params):
                raise ValueError("a parameter appears in more than one parameter group.")
            seen.update(id(p) for p in params)
            self.param_groups.append(
                {**defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
            )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError(f"{type(self).__name__} does not take sparse gradients.")
            if params:
                self._step_group(group, params, [p.grad for p in params])

    def _step_group(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def state_dict(self) -> dict:
        """The state in ``torch.optim``'s layout: parameters by their index across the groups."""
        index, groups, start = {}, [], 0
        for group in self.param_groups:
            ids = list(range(start, start + len(group["params"])))
            index.update({id(p): i for p, i in zip(group["params"], ids, strict=True)})
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
            start += len(ids)
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state from :meth:`state_dict` (or from the matching ``torch.optim`` class)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups, strict=False)
        ):
            raise ValueError("the loaded state has other parameter groups than this optimiser's parameters.")
        params = {
            i: p
            for g, own in zip(groups, self.param_groups, strict=True)
            for i, p in zip(g["params"], own["params"], strict=True)
        }
        state = {}
        for key, value in state_dict["state"].items():
            p = params[int(key)]
            state[p] = {
                k: (v.to(p.device, p.dtype if k != "step" else v.dtype).clone() if torch.is_tensor(v) else v)
                for k, v in value.items()
            }
        self.state = state
        for own, g in zip(self.param_groups, groups, strict=True):
            own.update({k: v for k, v in g.items() if k != "params"})


class Adam(_Optimizer):
    """``torch.optim.Adam(params, lr, betas, eps, weight_decay, fused=True)``, without the compiler hooks."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False, maximize=False),
        )

    def _step_group(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.state:  # the step count as the fused kernel keeps it: a float32 scalar beside p
                self.state[p] = {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        m, v = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        torch._foreach_add_(steps, 1.0)
        (beta1, beta2), lr, eps, wd = group["betas"], group["lr"], group["eps"], group["weight_decay"]
        if self._fused:
            try:
                torch._fused_adam_(
                    *_flattened(params, grads, m, v), [], steps,
                    lr=lr, beta1=beta1, beta2=beta2, weight_decay=wd, eps=eps, amsgrad=False, maximize=False,
                )  # fmt: skip
                return
            except (RuntimeError, NotImplementedError, AttributeError):
                self._fused = False  # raised before any update: the same step runs below
        for p, g, m_i, v_i, t in zip(params, grads, m, v, steps, strict=True):
            t = float(t)
            if wd:
                g = g.add(p, alpha=wd)
            m_i.lerp_(g, 1 - beta1)
            v_i.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v_i.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
            p.addcdiv_(m_i, denom, value=-lr / (1 - beta1**t))


class SGD(_Optimizer):
    """``torch.optim.SGD(params, lr, momentum, weight_decay, fused=True)``, without the compiler hooks."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(
            params,
            dict(lr=lr, momentum=momentum, dampening=0.0, weight_decay=weight_decay, nesterov=False, maximize=False),
        )

    def _step_group(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        mu, lr, wd, tau = group["momentum"], group["lr"], group["weight_decay"], group["dampening"]
        first = [mu != 0 and p not in self.state for p in params]  # b_1 = g_1
        for p, g, new in zip(params, grads, first, strict=True):
            if new:
                self.state[p] = {"momentum_buffer": torch.empty_like(g)}
        buffers = [self.state[p]["momentum_buffer"] for p in params] if mu else []
        if self._fused and (all(first) or not any(first)):  # the kernel takes one first-step flag for all
            try:
                flat = _flattened(params, grads, buffers) if mu else (*_flattened(params, grads), [])
                torch._fused_sgd_(
                    *flat, weight_decay=wd, momentum=mu, lr=lr, dampening=tau,
                    nesterov=False, maximize=False, is_first_step=all(first),
                )  # fmt: skip
                return
            except (RuntimeError, NotImplementedError, AttributeError):
                self._fused = False
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if wd:
                g = g.add(p, alpha=wd)
            if mu:
                b = buffers[i]
                if first[i]:
                    b.copy_(g)
                else:
                    b.mul_(mu).add_(g, alpha=1 - tau)
                g = b
            p.add_(g, alpha=-lr)
