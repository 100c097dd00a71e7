r"""Layer transfer, freezing, gradual unfreezing and discriminative learning rates.

The building blocks of fine-tuning with labelled source and a few labelled target examples
(Hung-yi Lee's lecture, "layer transfer"; Yosinski et al. 2014): train a network on the source,
copy some of its layers into a fresh target network, and train the target network with the copied
layers either frozen ("only train the rest layers", for very little target data) or fine-tuned.

*Layers.* :func:`layer_names` defines the layers that ``first=``/``last=`` count: a
:class:`~transferkit.nn.backbones.StagedNet`'s stages followed by its head; an ``nn.Sequential``'s
children; any other module's top-level children. Outside a ``StagedNet`` only children that own
parameters or buffers count (a ``ReLU`` or ``Flatten`` has nothing to copy or freeze, and counting
it would make "the first two layers" of ``Sequential(Linear, ReLU, Linear)`` a linear layer and an
activation). Any dotted module path (``model.get_submodule``) is a layer too when named
explicitly, which is how timm and HuggingFace models are addressed (``"blocks.0"``,
``"bert.encoder.layer.3"``). Parameters owned directly by the root module (a ViT's ``pos_embed``)
belong to no child, so they are never part of a layer.

*Freezing* (:func:`freeze`) makes a layer's parameters ``requires_grad=False`` *and* pins the layer
in eval mode: its ``train`` method is shadowed by an instance attribute that always switches to
eval, so ``model.train()`` (which reaches every sub-module through ``train``) leaves the layer's
BatchNorm running statistics and Dropout untouched. A frozen layer is therefore bit-identical
after training, and it behaves the same in training and at test time. The lock lives on the
module object: it survives ``copy.deepcopy`` and pickling, is not part of ``state_dict``, and has
to be set again on a model rebuilt from a state dict (as ``requires_grad`` has).

*Gradual unfreezing* (Howard & Ruder, ULMFiT 2018, Sec. 3.3) trains the top layer first and
unfreezes one more layer, from the top down, at fixed points of training progress
:math:`p \in [0, 1]` (:class:`GradualUnfreezing`). *Discriminative fine-tuning* (Sec. 3.2) gives
each layer its own learning rate, :math:`\eta^{l-1} = \eta^{l} / 2.6` from the top down
(:func:`discriminative_lr_mults`); :func:`layerwise_param_groups` turns per-layer multipliers into
the ``[{"params": ..., "lr_mult": m}]`` groups :func:`~transferkit.train.fit_loop` reads from an
objective's ``param_groups()``.

Put together in a training objective for :func:`~transferkit.train.fit_loop`::

    target = build_backbone("lenet", shape, n_classes)                 # fresh
    copied = transfer_layers(source, target, first=2)                 # conv1, conv2 from the source
    schedule = GradualUnfreezing.per_epoch(layer_names(target), epochs=10)
    mults = discriminative_lr_mults(layer_names(target), decay=2.6)

    class Objective(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.l2sp = net, L2SP(net, copied)              # anchors: buffers, checkpointed

        def param_groups(self):
            return layerwise_param_groups(self.net, mults)

        def forward(self, batch, progress):
            schedule.apply(self.net, progress)                        # here, not in __init__
            loss = F.cross_entropy(self.net(batch["xs"]), batch["ys"]) + self.l2sp(self.net)
            return {"loss": loss}

References
----------
J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural
networks?", NIPS 2014.
J. Howard, S. Ruder, "Universal Language Model Fine-tuning for Text Classification", ACL 2018.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping, Sequence

from torch import nn

from transferkit.nn.backbones import ModuleFeatures, StagedNet

__all__ = [
    "layer_names",
    "transfer_layers",
    "freeze",
    "unfreeze",
    "frozen_layers",
    "GradualUnfreezing",
    "discriminative_lr_mults",
    "layerwise_param_groups",
]


# --------------------------------------------------------------------------------------------- layers


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _layer_paths(model: nn.Module) -> dict[str, str]:
    """Layer name -> dotted module path, in forward order (see the module docstring)."""
    if isinstance(model, StagedNet):
        stages = list(model.stages.items())
        if len(stages) == 1 and isinstance(stages[0][1], ModuleFeatures):  # any network: its own layers
            prefix = f"stages.{stages[0][0]}.module"
            inner = stages[0][1].module
            paths = {name: f"{prefix}.{name}" for name, child in inner.named_children() if _has_state(child)}
        else:
            paths = {name: f"stages.{name}" for name in model.stage_names}
        paths["head"] = "head"
        return paths
    return {name: name for name, child in model.named_children() if _has_state(child)}


def layer_names(model: nn.Module) -> list[str]:
    """The layers ``first=``/``last=`` count, from the input to the output.

    A :class:`StagedNet`'s stages and then ``"head"`` (for a network wrapped by
    :func:`~transferkit.nn.backbones.from_module`, the wrapped network's own top-level layers); an
    ``nn.Sequential``'s children; any other module's top-level children. Outside a ``StagedNet``,
    children without parameters or buffers (activations, pooling, dropout) are not layers.
    """
    _check_module(model, "model")
    return list(_layer_paths(model))


def _check_module(model, arg: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{arg} must be a torch.nn.Module; got {type(model).__name__}.")


def _as_names(names, arg: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"{arg}={names!r}; expected a layer name or a list of layer names.") from None
    if not names:
        raise ValueError(f"{arg} is empty; expected at least one layer name.")
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{arg} contains {n!r} ({type(n).__name__}); expected layer names as strings.")
    return list(dict.fromkeys(names))  # drop repeats, keep order


def _resolve(model: nn.Module, names: Sequence[str], arg: str = "names", what: str = "model") -> dict[str, str]:
    """Layer name or dotted path -> dotted module path; unknown names raise with suggestions."""
    layers = _layer_paths(model)
    out = {}
    for name in names:
        if name in layers:
            out[name] = layers[name]
            continue
        try:
            model.get_submodule(name)
        except AttributeError:
            known = list(layers) + [p for p, _ in model.named_modules() if p and p not in layers.values()]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"{arg}: {what} has no layer or sub-module {name!r}.{hint} Its layers: {list(layers)}; "
                "any dotted module path (e.g. 'encoder.layer.3') is accepted too."
            ) from None
        out[name] = name
    return out


def _count(value, arg: str, n_layers: int, layers: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg}={value!r}; expected a number of layers (an int).")
    if not 1 <= value <= n_layers:
        raise ValueError(f"{arg}={value}; expected 1 to {n_layers}, the model has {n_layers} layers: {layers}.")
    return value


# ------------------------------------------------------------------------------------ layer transfer


def transfer_layers(
    source_model: nn.Module,
    target_model: nn.Module,
    first: int | None = None,
    last: int | None = None,
    names: Sequence[str] | str | None = None,
    freeze: bool = False,
) -> list[str]:
    """Copy layers of a trained source network into a target network (layer transfer).

    Parameters
    ----------
    source_model, target_model : nn.Module
        Networks of the same layer structure; the target's other layers keep their values (a
        fresh initialisation, typically).
    first, last : int, optional
        Copy the first (input side) or last (output side) N of :func:`layer_names`. Images
        usually transfer the first layers, speech the last ones (the lecture; Yosinski et al.).
    names : str or list of str, optional
        Copy exactly these layers: names from :func:`layer_names` or dotted module paths
        (``"blocks.0"``). Give exactly one of ``first``, ``last``, ``names``.
    freeze : bool
        Also :func:`freeze` the copied layers in ``target_model``.

    Returns
    -------
    list of str
        The copied layers' names, input side first.

    Copying loads each source layer's ``state_dict`` into the target layer of the same name:
    parameters and buffers (BatchNorm running statistics) alike. Every layer is checked before
    anything is copied, so a failed call leaves ``target_model`` unchanged.
    """
    _check_module(source_model, "source_model")
    _check_module(target_model, "target_model")
    given = {k: v for k, v in (("first", first), ("last", last), ("names", names)) if v is not None}
    if len(given) != 1:
        got = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "none"
        raise ValueError(f"give exactly one of first=, last= or names=; got {got}.")

    if names is not None:
        selected = _as_names(names, "names")
        src_paths = _resolve(source_model, selected, "names", "source_model")
        dst_paths = _resolve(target_model, selected, "names", "target_model")
    else:
        src_layers, dst_layers = layer_names(source_model), layer_names(target_model)
        if src_layers != dst_layers:
            raise ValueError(
                f"source_model and target_model differ in layer structure: source layers {src_layers}, target "
                f"layers {dst_layers}. Pick layers present in both with names=[...]."
            )
        if first is not None:
            selected = src_layers[: _count(first, "first", len(src_layers), src_layers)]
        else:
            selected = src_layers[-_count(last, "last", len(src_layers), src_layers) :]
        src_paths = dst_paths = _layer_paths(source_model)

    pairs = []
    for name in selected:
        src = source_model.get_submodule(src_paths[name])
        dst = target_model.get_submodule(dst_paths[name])
        s_state, d_state = src.state_dict(), dst.state_dict()
        if list(s_state) != list(d_state):
            only_s = [k for k in s_state if k not in d_state]
            only_d = [k for k in d_state if k not in s_state]
            raise ValueError(
                f"layer {name!r} differs in structure between source_model ({type(src).__name__}) and target_model "
                f"({type(dst).__name__}): entries only in the source {only_s}, only in the target {only_d}."
            )
        for key, value in s_state.items():
            if value.shape != d_state[key].shape:
                raise ValueError(
                    f"layer {name!r}: {key!r} has shape {tuple(value.shape)} in source_model but "
                    f"{tuple(d_state[key].shape)} in target_model; copy only layers whose shapes agree "
                    "(a head for another number of classes stays in the target)."
                )
        pairs.append((src, dst, s_state))
    for _, dst, s_state in pairs:
        dst.load_state_dict(s_state)  # copy_ into the target's own tensors, buffers included
    if freeze:
        _freeze(target_model, selected)
    return selected


# ------------------------------------------------------------------------------------------ freezing


class _EvalModeLock:
    """Stands in for a frozen module's ``train``: whatever mode is asked for, it goes to eval.

    An instance attribute shadows ``nn.Module.train``, and ``nn.Module.train`` reaches children
    through their ``train`` attribute, so ``model.train()`` on any ancestor ends here.
    """

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, mode: bool = True) -> nn.Module:
        return type(self.module).train(self.module, False)


def _is_locked(module: nn.Module) -> bool:
    return isinstance(module.__dict__.get("train"), _EvalModeLock)


def _lock_eval(module: nn.Module) -> None:
    if not _is_locked(module):
        object.__setattr__(module, "train", _EvalModeLock(module))
    module.train(False)


def freeze(model: nn.Module, names: Sequence[str] | str) -> None:
    """Freeze layers: no gradient, and eval mode for good (BatchNorm statistics, Dropout).

    Parameters
    ----------
    model : nn.Module
    names : str or list of str
        Layer names (:func:`layer_names`) or dotted module paths; ``""`` is the whole model.

    The layers' parameters get ``requires_grad=False`` and the layers stay in eval mode however
    often ``model.train()`` is called, so after training they are bit-identical, running
    statistics included. A parameter shared with an unfrozen layer is frozen there too.
    """
    _check_module(model, "model")
    _freeze(model, names)


def _freeze(model: nn.Module, names) -> None:  # transfer_layers' ``freeze`` argument shadows freeze()
    for path in _resolve(model, _as_names(names, "names")).values():
        layer = model.get_submodule(path)
        for p in layer.parameters():
            p.requires_grad_(False)
        _lock_eval(layer)


def unfreeze(model: nn.Module, names: Sequence[str] | str) -> None:
    """Undo :func:`freeze` for whole layers: gradients again, and the model's train/eval mode.

    Unfreezing a layer unfreezes everything inside it, sub-modules frozen on their own included.
    A layer inside a frozen one cannot be unfrozen alone (its parent would keep it in eval mode):
    unfreeze the parent and freeze the other parts.
    """
    _check_module(model, "model")
    for name, path in _resolve(model, _as_names(names, "names")).items():
        parts = path.split(".") if path else []
        for i in range(len(parts)):
            prefix = ".".join(parts[:i])
            if _is_locked(model.get_submodule(prefix)):
                raise ValueError(
                    f"names: {name!r} lies inside the frozen {prefix or 'model'!r}; unfreeze {prefix!r} and "
                    "freeze the parts that should stay frozen."
                )
        layer = model.get_submodule(path)
        for m in layer.modules():
            if _is_locked(m):
                del m.__dict__["train"]
        for p in layer.parameters():
            p.requires_grad_(True)
        layer.train(model.training)


def frozen_layers(model: nn.Module) -> list[str]:
    """Dotted paths of the modules :func:`freeze` has locked (``""`` for the model itself)."""
    _check_module(model, "model")
    return [path for path, m in model.named_modules() if _is_locked(m)]


# -------------------------------------------------------------------------------- gradual unfreezing


def _check_progress(progress) -> float:
    if isinstance(progress, bool) or not isinstance(progress, numbers.Real) or not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress={progress!r}; expected a number in [0, 1] (the training loop's progress).")
    return float(progress)


class GradualUnfreezing:
    r"""Unfreeze layers from the top down as training progresses (ULMFiT, Sec. 3.3).

    Layer :math:`\ell` (counted from the top, :math:`\ell = 0` the output layer) is trainable from
    progress :math:`p_\ell` on:

    .. math:: p_\ell = \max(0, \ell - s + 1)\,\Delta, \qquad \Delta = \frac{1}{L - s + 1}\ \text{by default},

    with :math:`L` layers of which the top :math:`s` (``start``) train from the beginning. The
    default :math:`\Delta` splits training into :math:`L - s + 1` equal phases; with one epoch per
    phase that is Howard & Ruder's "unfreeze the next lower layer after each epoch, then train all
    layers until the end".

    Parameters
    ----------
    layers : list of str
        The layers to schedule, from the input to the output (e.g. :func:`layer_names`); layer
        names or dotted module paths. Layers not listed are left alone.
    interval : float, optional
        :math:`\Delta`, the progress between two unfreezings; ``(L - s) * interval`` must be below 1
        so every layer is unfrozen before training ends.
    start : int
        :math:`s`, how many top layers train from the start (1: the new head).

    Use it inside an objective: call :meth:`apply` at the top of ``forward(batch, progress)``,
    never in the constructor. :func:`~transferkit.train.fit_loop` builds its optimiser from the
    parameters that require gradients *before* the first step, so the layers to be unfrozen later
    must still be trainable then; while frozen they get no gradient, which the optimiser skips
    (no update, no weight decay, no momentum). Which layers are frozen is a function of progress
    alone, so a resumed run is exact. Under DDP the objective sets ``find_unused_parameters = True``.
    """

    def __init__(self, layers: Sequence[str], interval: float | None = None, start: int = 1):
        self.layers = _as_names(layers, "layers")
        n = len(self.layers)
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start <= n:
            raise ValueError(f"start={start!r}; expected 1 to {n}, the number of layers trainable from the start.")
        self.start = start
        events = n - start
        if interval is None:
            self.interval = 1.0 / (events + 1)
            self.unfreeze_at = self._thresholds(lambda j: j / (events + 1))
            return
        if isinstance(interval, bool) or not isinstance(interval, numbers.Real) or not math.isfinite(interval):
            raise ValueError(f"interval={interval!r}; expected a positive number (progress between unfreezings).")
        if interval <= 0 or events * interval >= 1:
            raise ValueError(
                f"interval={interval!r}: {events} layers unfreeze one every interval, so the last at progress "
                f"{events * interval:g}; expected a positive interval below {1 / max(events, 1):g} so that "
                "every layer trains before the end."
            )
        self.interval = float(interval)
        self.unfreeze_at = self._thresholds(lambda j: j * self.interval)

    def _thresholds(self, at) -> dict[str, float]:
        """``{layer: p_l}`` with ``p_l = at(j)``, ``j`` the layer's turn (0 for the top ``start``)."""
        n = len(self.layers)
        return {name: float(at(max(0, n - 1 - i - self.start + 1))) for i, name in enumerate(self.layers)}

    @classmethod
    def per_epoch(
        cls, layers: Sequence[str], epochs: int, epochs_per_layer: int = 1, start: int = 1
    ) -> GradualUnfreezing:
        """Unfreeze one more layer every ``epochs_per_layer`` epochs of an ``epochs``-epoch run.

        The points fall exactly on epoch boundaries: :func:`~transferkit.train.fit_loop`'s progress
        at the first step of epoch :math:`e` is :math:`e / \\text{epochs}`, which is the threshold.
        A loop that counts epochs asks for ``apply(model, e / epochs)`` at the start of epoch ``e``.
        """
        for arg, v in (("epochs", epochs), ("epochs_per_layer", epochs_per_layer)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{arg}={v!r}; expected a positive integer.")
        self = cls(layers, start=start)
        events = len(self.layers) - self.start
        if events * epochs_per_layer >= epochs:
            raise ValueError(
                f"epochs={epochs}: {events} layers unfreeze one every {epochs_per_layer} epoch(s), the last at epoch "
                f"{events * epochs_per_layer}; expected epochs > {events * epochs_per_layer} so every layer trains."
            )
        self.interval = epochs_per_layer / epochs
        # j * epochs_per_layer / epochs, not j * interval: the same rational as fit_loop's step / total
        self.unfreeze_at = self._thresholds(lambda j: j * epochs_per_layer / epochs)
        return self

    def trainable(self, progress: float) -> list[str]:
        """The scheduled layers that train at ``progress``, input side first."""
        p = _check_progress(progress)
        return [name for name in self.layers if p >= self.unfreeze_at[name]]

    def frozen(self, progress: float) -> list[str]:
        """The scheduled layers still frozen at ``progress``, input side first."""
        p = _check_progress(progress)
        return [name for name in self.layers if p < self.unfreeze_at[name]]

    def apply(self, model: nn.Module, progress: float) -> list[str]:
        """Freeze and unfreeze ``model``'s layers for ``progress``; returns the frozen ones."""
        frozen = set(self.frozen(progress))
        paths = _resolve(model, self.layers, "layers")
        for name in self.layers:
            locked = _is_locked(model.get_submodule(paths[name]))
            if name in frozen and not locked:
                freeze(model, name)
            elif name not in frozen and locked:
                unfreeze(model, name)
        return [name for name in self.layers if name in frozen]

    def __repr__(self) -> str:
        at = ", ".join(f"{k}: {v:.3g}" for k, v in self.unfreeze_at.items())
        return f"GradualUnfreezing({{{at}}})"


# ----------------------------------------------------------------------- discriminative learning rates


def discriminative_lr_mults(layers: Sequence[str], decay: float = 2.6) -> dict[str, float]:
    r"""Learning-rate multipliers falling by ``decay`` per layer toward the input (ULMFiT, Sec. 3.2).

    .. math:: m_{L} = 1, \qquad m_{\ell - 1} = m_\ell / d, \qquad \text{so } m_\ell = d^{-(L - \ell)},

    with :math:`d` = ``decay``, for layers :math:`1 \ldots L` listed from the input to the output;
    Howard & Ruder use 2.6.
    """
    layers = _as_names(layers, "layers")
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not math.isfinite(decay) or decay <= 0:
        raise ValueError(f"decay={decay!r}; expected a positive number (2.6 in ULMFiT; 1 gives equal rates).")
    n = len(layers)
    return {name: float(decay) ** -(n - 1 - i) for i, name in enumerate(layers)}


def layerwise_param_groups(model: nn.Module, lr_mult: Mapping[str, float], default_mult: float = 1.0) -> list[dict]:
    """Parameter groups ``[{"params", "lr_mult", "name"}]`` with a learning-rate multiplier per layer.

    Parameters
    ----------
    model : nn.Module
    lr_mult : dict of str to float
        Layer name or dotted module path -> multiplier of the base learning rate (e.g.
        :func:`discriminative_lr_mults`). A parameter under several listed modules follows the
        most specific (longest path).
    default_mult : float
        For the parameters under no listed layer (one group named ``"rest"``, if any).

    Every parameter appears in exactly one group, whether or not it requires gradients now, so
    layers unfrozen later are in the optimiser. :func:`~transferkit.train.fit_loop` sets each
    group's learning rate to ``lr * lr_mult`` at every step; return these groups from the
    objective's ``param_groups()``.
    """
    _check_module(model, "model")
    if not isinstance(lr_mult, Mapping) or not lr_mult:
        raise TypeError(f"lr_mult={lr_mult!r}; expected a non-empty dict of layer name to multiplier.")
    for k, v in {**lr_mult, "default_mult": default_mult}.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise ValueError(f"lr_mult[{k!r}]={v!r}; expected a non-negative finite number.")
    paths = _resolve(model, list(lr_mult), "lr_mult")
    owner: dict[int, str] = {}
    for name in sorted(paths, key=lambda n: -len(paths[n].split("."))):  # most specific first
        for p in model.get_submodule(paths[name]).parameters():
            owner.setdefault(id(p), name)
    groups = {name: [] for name in lr_mult}
    rest = []
    for p in model.parameters():
        (groups[owner[id(p)]] if id(p) in owner else rest).append(p)
    out = [{"params": ps, "lr_mult": float(lr_mult[n]), "name": n} for n, ps in groups.items() if ps]
    if rest:
        out.append({"params": rest, "lr_mult": float(default_mult), "name": "rest"})
    return out
