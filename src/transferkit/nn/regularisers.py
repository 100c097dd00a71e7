r"""Conservative training: keep the fine-tuned network close to the pretrained one.

With only a few labelled target examples, fine-tuning a source-trained network overfits; the
lecture's *conservative training* adds a constraint that the new model stay close to the old one,
either in its parameters or in its outputs on the same inputs.

**Parameter level: L2-SP** (Li, Grandvalet & Davoine 2018). With :math:`w^0` the pretrained
weights of the transferred part :math:`S` and :math:`\bar S` the new layers (no pretrained
counterpart),

.. math::

    \Omega(w) = \frac{\alpha}{2} \sum_{\ell \in S} \lambda_\ell \, \lVert w_\ell - w_\ell^0 \rVert_2^2
              + \frac{\beta}{2} \lVert w_{\bar S} \rVert_2^2,

added to the target loss; :math:`\lambda_\ell = 1` in the paper, per-layer weights are optional.
Plain weight decay pulls toward zero and so away from what the source taught; L2-SP pulls toward
the starting point.

**Output level: Learning without Forgetting** (Li & Hoiem 2016/2017). The old network's outputs
:math:`y_o` on the *target* inputs are recorded, and the new network's outputs :math:`\hat y_o`
on the same inputs are kept close to them with a distillation loss at temperature :math:`T`:

.. math::

    \mathcal{L}_{old}(y_o, \hat y_o) = -\sum_{i} y'^{(i)}_o \log \hat y'^{(i)}_o, \qquad
    y'^{(i)}_o = \frac{\exp(z^{(i)}/T)}{\sum_j \exp(z^{(j)}/T)},

:math:`z` the old logits (and likewise :math:`\hat y'` from the new logits), averaged over the
batch; LwF uses :math:`T = 2`. :func:`distillation_loss` multiplies by :math:`T^2` by default, as
Hinton et al. (2015, Sec. 2) advise, so the soft term's gradients keep their scale when :math:`T`
changes and its weight means the same at any temperature; ``t_squared=False`` gives LwF's
:math:`\mathcal{L}_{old}` exactly. Cross-entropy rather than KL divergence: they differ by the
old outputs' entropy, a constant, so the gradients are the same.

The anchors (:math:`w^0`, the old network) are registered buffers, never parameters: they do not
train, they move with ``.to(device)``, and an objective holding them saves and restores them with
its ``state_dict``, so a resumed run is still conservative toward the *original* weights.

References
----------
X. Li, Y. Grandvalet, F. Davoine, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", ICML 2018.
Z. Li, D. Hoiem, "Learning without Forgetting", ECCV 2016; IEEE TPAMI 40(12), 2017.
G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NIPS Deep
Learning Workshop 2015.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.nn.transfer import _as_names, _check_module, _lock_eval, _resolve

__all__ = ["l2sp_penalty", "L2SP", "distillation_loss", "DistillationLoss", "OldModelOutputs"]


def _nonnegative(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{arg}={value!r}; expected a non-negative finite number.")
    return float(value)


# ---------------------------------------------------------------------------------------------- L2-SP


def l2sp_penalty(
    model: nn.Module,
    anchor: Mapping[str, torch.Tensor],
    alpha: float = 0.1,
    beta: float = 0.01,
    weight: Mapping[str, float] | None = None,
) -> torch.Tensor:
    r"""The L2-SP penalty of ``model``'s parameters (Li et al., ICML 2018).

    .. math::

        \Omega(w) = \frac{\alpha}{2} \sum_{k \in A} \lambda_k \lVert w_k - w^0_k \rVert^2
                  + \frac{\beta}{2} \sum_{k \notin A} \lVert w_k \rVert^2

    Parameters
    ----------
    model : nn.Module
    anchor : dict of str to Tensor
        :math:`w^0`: parameter name (as in ``model.named_parameters()``) -> its pretrained value.
        The parameters named here form :math:`A`; all others get the plain L2 term.
    alpha, beta : float
        Weights of the pull toward :math:`w^0` and of the decay of the new parameters.
    weight : dict of str to float, optional
        :math:`\lambda_k` per anchored parameter name (default 1).

    Returns
    -------
    Tensor
        A scalar, differentiable in the model's parameters.
    """
    _check_module(model, "model")
    alpha, beta = _nonnegative(alpha, "alpha"), _nonnegative(beta, "beta")
    params = dict(model.named_parameters())
    missing = [k for k in anchor if k not in params]
    if missing:
        raise ValueError(
            f"anchor names parameters the model does not have: {missing[:5]}; the model's parameters start "
            f"{list(params)[:5]}. Build the anchor from the same architecture."
        )
    weight = weight or {}
    to_anchor, to_zero = [], []
    for name, w in params.items():
        if name in anchor:
            w0 = anchor[name]
            if w0.shape != w.shape:
                raise ValueError(
                    f"anchor[{name!r}] has shape {tuple(w0.shape)} but the parameter has {tuple(w.shape)}."
                )
            to_anchor.append(weight.get(name, 1.0) * (w - w0).pow(2).sum())
        else:
            to_zero.append(w.pow(2).sum())
    zero = next(iter(params.values())).new_zeros(()) if params else torch.zeros(())
    return 0.5 * alpha * sum(to_anchor, zero) + 0.5 * beta * sum(to_zero, zero)


class _TensorTree(nn.Module):
    """Buffers under dotted names, nested like the model they mirror (``anchor.stages.conv1.0.weight``).

    Entries go straight into ``_modules``/``_buffers``: a path part may be any name the model uses
    (even one that is an ``nn.Module`` attribute), and ``state_dict``/``load_state_dict``/``.to``
    only ever look there.
    """

    def put(self, path: str, tensor: torch.Tensor) -> None:
        *parents, leaf = path.split(".")
        node: nn.Module = self
        for part in parents:
            if part not in node._modules:
                node._modules[part] = _TensorTree()
            node = node._modules[part]
        node._buffers[leaf] = tensor

    def get(self, path: str) -> torch.Tensor:
        *parents, leaf = path.split(".")
        node: nn.Module = self
        for part in parents:
            node = node._modules[part]
        return node._buffers[leaf]

    def paths(self, prefix: str = "") -> Iterator[str]:
        for name in self._buffers:
            yield prefix + name
        for name, child in self._modules.items():
            yield from child.paths(f"{prefix}{name}.")


class L2SP(nn.Module):
    r"""L2-SP: pull the transferred layers toward their pretrained weights, decay the new ones.

    Parameters
    ----------
    model : nn.Module
        The target network *right after* the transfer (e.g. after :func:`transfer_layers`): the
        current weights of ``anchor_layers`` become :math:`w^0`, copied into buffers.
    anchor_layers : str or list of str
        The transferred part :math:`S`: layer names (:func:`~transferkit.nn.layer_names`) or
        dotted module paths. Every other parameter of ``model`` is in :math:`\bar S`.
    alpha, beta : float
        :math:`\alpha` (toward :math:`w^0`) and :math:`\beta` (toward 0, new layers). Li et al.
        choose both by cross-validation; 0.1 and 0.01 are a starting point.
    per_layer : dict of str to float, optional
        :math:`\lambda_\ell` for some of ``anchor_layers`` (default 1); a parameter under several
        listed modules follows the most specific.

    ``forward(model)`` returns :math:`\Omega(w)` for ``model``'s current parameters; ``model`` must
    have the architecture the regulariser was built from (it is not stored here, so the network
    is not registered twice in an objective). The anchors are buffers under ``w0.<parameter
    name>``: checkpointed with an objective that holds this module.
    """

    def __init__(
        self,
        model: nn.Module,
        anchor_layers: Sequence[str] | str,
        alpha: float = 0.1,
        beta: float = 0.01,
        per_layer: Mapping[str, float] | None = None,
    ):
        super().__init__()
        _check_module(model, "model")
        self.alpha, self.beta = _nonnegative(alpha, "alpha"), _nonnegative(beta, "beta")
        names = _as_names(anchor_layers, "anchor_layers")
        paths = _resolve(model, names, "anchor_layers")
        per_layer = dict(per_layer or {})
        unknown = [k for k in per_layer if k not in paths]
        if unknown:
            raise ValueError(f"per_layer names {unknown}, which are not in anchor_layers={names}.")
        lam = {name: _nonnegative(per_layer.get(name, 1.0), f"per_layer[{name!r}]") for name in names}
        self.w0 = _TensorTree()
        self.lam: dict[str, float] = {}  # lambda per anchored parameter name
        by_depth = sorted(names, key=lambda n: -len(paths[n].split(".")) if paths[n] else 0)
        for pname, w in model.named_parameters():
            for layer in by_depth:  # the most specific listed module owns the parameter
                path = paths[layer]
                if not path or pname.startswith(path + "."):
                    self.w0.put(pname, w.detach().clone())
                    self.lam[pname] = lam[layer]
                    break
        if not self.lam:
            raise ValueError(f"anchor_layers={names} hold no parameters; nothing to anchor.")

    def anchor(self) -> dict[str, torch.Tensor]:
        """:math:`w^0`: parameter name -> pretrained value (the buffers themselves)."""
        return {p: self.w0.get(p) for p in self.w0.paths()}

    def forward(self, model: nn.Module) -> torch.Tensor:
        return l2sp_penalty(model, self.anchor(), self.alpha, self.beta, self.lam)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, beta={self.beta:g}, anchored_parameters={len(self.lam)}"


# ----------------------------------------------------------------------------------- distillation


def distillation_loss(
    new_logits: torch.Tensor, old_logits: torch.Tensor, T: float = 2.0, t_squared: bool = True
) -> torch.Tensor:
    r"""LwF's :math:`\mathcal{L}_{old}`: cross-entropy of the new softened outputs to the old ones.

    .. math::

        \mathcal{L} = -\frac{c}{n} \sum_{b=1}^{n} \sum_i \operatorname{softmax}(z_b / T)_i
            \log \operatorname{softmax}(\hat z_b / T)_i, \qquad c = T^2 \text{ or } 1,

    :math:`z` the old network's logits (targets, no gradient), :math:`\hat z` the new network's.

    Parameters
    ----------
    new_logits, old_logits : Tensor of shape (n, C)
        Classes on the last axis; any leading axes are averaged over.
    T : float
        Temperature (2 in LwF); higher spreads the old outputs over more classes.
    t_squared : bool
        Multiply by :math:`T^2` (Hinton et al. 2015) so gradients keep their scale across
        temperatures; ``False`` for LwF's formula as printed.
    """
    if not (torch.is_tensor(new_logits) and torch.is_tensor(old_logits)):
        raise TypeError(
            f"new_logits and old_logits must be tensors; got {type(new_logits).__name__}, {type(old_logits).__name__}."
        )
    if new_logits.shape != old_logits.shape or new_logits.ndim < 2:
        raise ValueError(
            f"new_logits {tuple(new_logits.shape)} and old_logits {tuple(old_logits.shape)}: expected the same "
            "shape (n, classes)."
        )
    if isinstance(T, bool) or not isinstance(T, numbers.Real) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"T={T!r}; expected a positive temperature (2 in Learning without Forgetting).")
    target = F.softmax(old_logits.detach() / T, dim=-1)
    loss = -(target * F.log_softmax(new_logits / T, dim=-1)).sum(-1).mean()
    return loss * (T * T) if t_squared else loss


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`: ``forward(new_logits, old_logits)``."""

    def __init__(self, T: float = 2.0, t_squared: bool = True):
        super().__init__()
        if isinstance(T, bool) or not isinstance(T, numbers.Real) or not math.isfinite(T) or T <= 0:
            raise ValueError(f"T={T!r}; expected a positive temperature (2 in Learning without Forgetting).")
        self.T, self.t_squared = float(T), bool(t_squared)

    def forward(self, new_logits: torch.Tensor, old_logits: torch.Tensor) -> torch.Tensor:
        return distillation_loss(new_logits, old_logits, self.T, self.t_squared)

    def extra_repr(self) -> str:
        return f"T={self.T:g}, t_squared={self.t_squared}"


class OldModelOutputs(nn.Module):
    """A frozen copy of the old network whose weights are buffers: it answers, never trains.

    ``OldModelOutputs(net)`` deep-copies ``net`` and turns every parameter of the copy into a
    buffer of the same name (``model.<name>`` in the state dict): the optimiser never sees it, it
    moves with ``.to(device)``, and it is saved and restored with an objective's ``state_dict``.
    The copy is pinned in eval mode (BatchNorm uses, and never updates, its running statistics;
    no dropout) and ``forward(*args, **kwargs)`` runs it without autograd. Later changes to
    ``net`` do not reach the copy.

    For LwF, call it on the target batch and pass the result to :func:`distillation_loss`, or
    record the outputs once before training (the paper's :math:`y_o`): the copy is deterministic,
    so both give the same targets.
    """

    def __init__(self, old_model: nn.Module):
        super().__init__()
        _check_module(old_model, "old_model")
        model = copy.deepcopy(old_model)
        for m in model.modules():
            for name, p in list(m._parameters.items()):
                if p is not None:  # a None entry (Linear(bias=False)) stays as it is
                    del m._parameters[name]
                    m._buffers[name] = p.detach()
            if isinstance(m, nn.RNNBase):  # RNNs keep their own list of weight tensors
                m._init_flat_weights()
        _lock_eval(model)
        self.model = model

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.model(*args, **kwargs)
