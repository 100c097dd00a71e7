r"""Fine-tuning with layer transfer and conservative training, and the target-only baseline.

Labelled source data, a few labelled target examples (down to one per class). A network is
trained on the source (or given: ``source_model``); some of its layers are copied into a fresh
target network (Yosinski et al. 2014: the first :math:`n` for images, the last for speech), frozen
or not, and the target network is trained on the labelled target examples with

.. math::

    \min_w \; \frac{1}{m}\sum_{j=1}^{m} \ell\big(f_w(x_j), y_j\big)
    + \frac{\alpha}{2}\lVert w_S - w_S^0\rVert^2 + \frac{\beta}{2}\lVert w_{\bar S}\rVert^2
    + \lambda_o T^2\, \mathrm{H}\big(\sigma(z^{old}(x_j)/T),\ \sigma(\hat z^{old}(x_j)/T)\big),

the second and third terms optional (``conservative``): L2-SP (Li, Grandvalet & Davoine, ICML 2018) keeps
the copied layers :math:`S` near their pretrained values :math:`w^0`; the output-level term
(Learning without Forgetting, Li & Hoiem, ECCV 2016) keeps an *old-task head* on the new features,
:math:`\hat z^{old} = h^{old}(\phi_w(x))`, close to what the source network said on the same
target inputs, :math:`z^{old}(x)` (Hinton et al.'s :math:`T^2` scaling). Both anchors are buffers,
so a resumed run is as conservative as an uninterrupted one.

References
----------
J. Yosinski, J. Clune, Y. Bengio, H. Lipson, "How transferable are features in deep neural
networks?", NIPS 2014. X. Li, Y. Grandvalet, F. Davoine, "Explicit Inductive Bias for Transfer
Learning with Convolutional Networks", ICML 2018. Z. Li, D. Hoiem, "Learning without Forgetting",
ECCV 2016. J. Howard, S. Ruder, ULMFiT, ACL 2018 (gradual unfreezing, discriminative rates).
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from transferkit.methods.base import (
    LearntFeatures,
    Setting,
    TransferMethod,
    fit_identity,
    network_for,
    shared_constraints,
    store_params,
)
from transferkit.methods.source_only import SourceOnly
from transferkit.nn.backbones import StagedNet
from transferkit.nn.lora import LoRAL2SP, add_lora
from transferkit.nn.regularisers import L2SP, OldModelOutputs, distillation_loss
from transferkit.nn.transfer import (
    GradualUnfreezing,
    discriminative_lr_mults,
    freeze,
    layer_names,
    layerwise_param_groups,
    transfer_layers,
)
from transferkit.train.checkpoint import why_not_loaded
from transferkit.train.diagnostics import training_warnings
from transferkit.train.loop import FitConfig, fit_loop

__all__ = ["FineTune", "TargetOnly", "parse_copy", "load_source_model"]

CONSERVATIVE = ("l2sp", "lwf")


def parse_copy(copy_spec) -> dict:
    """``"all"``, ``"body"``, ``"none"``, ``"first:N"``, ``"last:N"`` or ``"names:a,b"`` as keyword arguments."""
    if copy_spec in (None, "none"):
        return {}
    if copy_spec == "all":
        return {"all": True}
    if copy_spec == "body":
        return {"body": True}
    kind, sep, value = str(copy_spec).partition(":")
    if sep and kind in ("first", "last"):
        try:
            return {kind: int(value)}
        except ValueError:
            pass
    if sep and kind == "names" and value:
        return {"names": [v for v in value.split(",") if v]}
    raise ValueError(f"copy={copy_spec!r}; expected 'all', 'body', 'none', 'first:N', 'last:N' or 'names:a,b'.")


def load_source_model(path: str | os.PathLike, net: StagedNet) -> StagedNet:
    """Load a saved network into ``net``: a plain ``state_dict`` or a transferkit checkpoint (never executes code)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"source_model={str(path)!r}: no such file.") from None
    except Exception as exc:  # pickle errors, a non-torch file, code that weights_only refuses
        raise ValueError(
            f"source_model={str(path)!r} is neither a transferkit checkpoint nor a plain state_dict "
            f"({why_not_loaded(exc)})."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a fit_loop checkpoint of an objective
        state = {k[len("net.") :]: v for k, v in state["model"].items() if k.startswith("net.")}
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"source_model={str(path)!r} holds no state_dict of tensors.")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"source_model={str(path)!r} does not fit the network: missing {missing[:4]}, unexpected {unexpected[:4]}."
        )
    return net


class FineTuneObjective(nn.Module):
    """Target cross-entropy plus the conservative terms; gradual unfreezing applied per step."""

    def __init__(self, net, l2sp, old_model, old_head, lwf_weight: float, T: float, schedule):
        super().__init__()
        self.net, self.l2sp, self.old_model, self.old_head = net, l2sp, old_model, old_head
        self.lwf_weight, self.T, self.schedule = lwf_weight, T, schedule
        self.groups = None  # per-layer learning rates (``lr_decay``), else one group
        self.find_unused_parameters = schedule is not None  # under DDP, layers still frozen get no gradient

    def param_groups(self):
        return self.groups if self.groups is not None else [{"params": list(self.parameters())}]

    def forward(self, batch, progress: float):
        if self.schedule is not None:
            self.schedule.apply(self.net, progress)
        x, y = batch["x"], batch["y"]
        h = self.net.forward_to(x, self.net.stage_names[-1])
        logits = self.net.head(h)
        loss_y = F.cross_entropy(logits, y)
        out = {"loss_y": loss_y.detach(), "target_acc": (logits.argmax(1) == y).float().mean()}
        loss = loss_y
        if self.l2sp is not None:
            omega = self.l2sp(self.net)
            loss = loss + omega
            out["l2sp"] = omega.detach()
        if self.old_model is not None:
            distill = distillation_loss(self.old_head(h), self.old_model(x), T=self.T)
            loss = loss + self.lwf_weight * distill
            out["lwf"] = distill.detach()
        out["loss"] = loss
        return out


class FineTune(LearntFeatures, TransferMethod):
    """Train on the source, copy layers into a fresh network, train it on a few labelled target examples.

    Parameters
    ----------
    backbone : str or nn.Module
        The network of both models (``"auto"``: chosen from the input shape). Any module (a
        torchvision ResNet, a timm or Hugging Face model) is copied as given: its current weights
        are the initialisation of every fit, its features feed a new head for the target's classes.
    feature_layer : str, optional
        For a module backbone: the layer (module name) whose output is the feature; default the
        input of its last ``nn.Linear``.
    copy : str
        Which layers of the source network to copy: ``"body"`` (every layer but the head: the
        target's classes are other classes), ``"all"`` (every stage; the head too when the
        label sets agree), ``"first:N"``, ``"last:N"``, ``"names:a,b"`` (layer names as listed by
        :func:`~transferkit.nn.layer_names`, or dotted module paths), or ``"none"``.
    freeze : bool
        Freeze the copied layers (no gradient, BatchNorm statistics pinned): "train only the rest".
    conservative : str or None
        ``"l2sp"``, ``"lwf"`` or ``"l2sp+lwf"``: the regularisers in the module docstring.
    alpha : float
        L2-SP weight toward the pretrained weights (0.1, Li et al. 2018).
    beta : float
        L2-SP weight toward 0 on the layers that were not copied (0.01, Li et al. 2018).
    lwf_weight : float
        :math:`\\lambda_o`, the weight of the output-level term (1, Li & Hoiem 2016).
    temperature : float
        :math:`T`, the distillation temperature of the output-level term (2, Li & Hoiem 2016).
    gradual_unfreezing : bool
        Unfreeze from the top down in equal phases of training (ULMFiT).
    lr_decay : float or None
        Discriminative learning rates: each layer below the top gets the rate divided by ``lr_decay``.
    lora : int or None
        LoRA (Hu et al., ICLR 2022) of this rank on every Linear and Conv2d layer but the head: the
        copied weights stay frozen and a low-rank update trains beside each (with the head). With
        ``conservative="l2sp"`` the pull toward the source weights is on the update,
        :math:`\\lVert \\Delta W \rVert^2`; with ``"lwf"`` the old outputs are distilled as usual.
    source_model : str, StagedNet or None
        A trained source network (a module, a saved state_dict or a transferkit checkpoint);
        ``None`` trains one on the source for ``source_epochs``.
    epochs : int
        Training epochs of the target network.
    batch_size : int
        Samples per step.
    lr : float
        Initial learning rate of the target network.
    optimizer : {"adam", "sgd"}
        The optimiser.
    momentum : float
        Momentum of SGD.
    weight_decay : float
        L2 weight decay.
    source_epochs : int
        Training epochs of the source network, when ``source_model`` is None.
    source_lr : float
        Learning rate of the source network.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"``: both networks' forward passes under bfloat16 autocast (see
        :class:`~transferkit.methods.dann.DANN`).
    """

    name = "finetune"
    setting = Setting(source_labels=True, target_labels=True)
    description = "layer transfer from a source network, frozen or fine-tuned, optionally conservative (L2-SP, LwF)"
    paper = "Yosinski et al., NIPS 2014; Li et al., ICML 2018 (L2-SP); Li & Hoiem, ECCV 2016 (LwF)"
    uses_source = True

    _parameter_constraints = {
        **shared_constraints(
            "backbone", "feature_layer", "hidden", "epochs", "batch_size", "lr", "optimizer", "momentum",
            "weight_decay", "seed", "device", "n_threads", "precision", "checkpoint_dir", "verbose",
        ),
        "copy": [str, None],
        "freeze": ["boolean"],
        "conservative": [str, None],
        "alpha": [Interval(Real, 0, np.inf, closed="left")],
        "beta": [Interval(Real, 0, np.inf, closed="left")],
        "lwf_weight": [Interval(Real, 0, np.inf, closed="left")],
        "temperature": [Interval(Real, 0, np.inf, closed="neither")],
        "source_epochs": [Interval(Integral, 1, None, closed="left")],
        "source_lr": [Interval(Real, 0, np.inf, closed="neither")],
        "source_model": [str, os.PathLike, nn.Module, None],
        "gradual_unfreezing": ["boolean"],
        "lr_decay": [Interval(Real, 1, np.inf, closed="left"), None],
        "lora": [Interval(Integral, 1, None, closed="left"), None],
    }  # fmt: skip

    def __init__(
        self,
        backbone="auto",
        feature_layer: str | None = None,
        hidden: int = 50,
        copy: str = "all",
        freeze: bool = False,
        conservative: str | None = None,
        alpha: float = 0.1,
        beta: float = 0.01,
        lwf_weight: float = 1.0,
        temperature: float = 2.0,
        gradual_unfreezing: bool = False,
        lr_decay: float | None = None,
        lora: int | None = None,
        source_model=None,
        source_epochs: int = 10,
        source_lr: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        n_threads: int | None = None,
        precision: str = "float32",
        checkpoint_dir: str | None = None,
        verbose: bool = False,
    ):
        store_params(self, locals())

    # ----------------------------------------------------------------------------- pieces
    def _new_net(self, input_shape, n_classes: int) -> StagedNet:
        net = network_for(self.backbone, self.feature_layer, self.hidden, input_shape, n_classes)
        if isinstance(self.backbone, StagedNet):  # a fresh head for these classes, whatever the given one
            net.reset_classifier(n_classes)
        return net

    def _rebuild_module(self, name: str) -> nn.Module | None:
        if name != "model_":
            return None
        net = self._new_net(self.input_shape_, len(self.classes_))
        if self.lora is not None:
            add_lora(net, self.lora, exclude=("head",))
        return net

    def _source_net(self, source) -> StagedNet:
        if isinstance(self.source_model, nn.Module):
            return copy.deepcopy(self.source_model).eval()
        n_source_classes = len(np.unique(source.y))
        if self.source_model is not None:
            torch.manual_seed(self.seed)
            return load_source_model(self.source_model, self._new_net(source.feature_shape, n_source_classes)).eval()
        trained = SourceOnly(
            backbone=self.backbone,
            feature_layer=self.feature_layer,
            hidden=self.hidden,
            epochs=self.source_epochs,
            lr=self.source_lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            checkpoint_dir=os.path.join(self.checkpoint_dir, "source") if self.checkpoint_dir else None,
            verbose=self.verbose,
        ).fit(source)
        return trained.model_.cpu().eval()

    def _check_params(self) -> list[str]:
        parts = [p for p in (self.conservative or "").split("+") if p]
        unknown = [p for p in parts if p not in CONSERVATIVE]
        if unknown:
            raise ValueError(f"conservative={self.conservative!r}; expected 'l2sp', 'lwf', 'l2sp+lwf' or None.")
        if self.lora is not None and (self.freeze or self.gradual_unfreezing):
            raise ValueError(
                "lora trains a low-rank update beside frozen weights; freeze and gradual_unfreezing do not apply."
            )
        if self.freeze and self.gradual_unfreezing:
            raise ValueError("freeze=True with gradual_unfreezing=True: choose one (gradual unfreezing thaws them).")
        return parts

    # ----------------------------------------------------------------------------- fit
    def fit(self, source, target=None, sample_domain=None):
        """Fit on labelled ``source`` and a few labelled ``target`` examples."""
        source, target = self._check_fit_data(source, target, sample_domain)
        t0 = time.perf_counter()
        spec = parse_copy(self.copy)
        parts = self._check_params()
        self.classes_ = np.unique(target.y)
        if len(self.classes_) < 2:
            raise ValueError(f"target.y has a single class ({self.classes_.tolist()}); expected at least two.")
        y = np.searchsorted(self.classes_, target.y).astype(np.int64)
        self.input_shape_ = target.feature_shape
        old = self._source_net(source) if (spec or "lwf" in parts) and self.uses_source else None
        torch.manual_seed(self.seed)
        net = self._new_net(self.input_shape_, len(self.classes_))
        copied: list[str] = []
        if spec and old is not None:
            if spec.get("body"):
                copied = transfer_layers(old, net, names=[n for n in layer_names(net) if n != "head"])
            elif spec.get("all"):
                same_head = old.head.weight.shape == net.head.weight.shape
                names = [n for n in layer_names(net) if n != "head" or same_head]
                copied = transfer_layers(old, net, names=names)
            else:
                copied = transfer_layers(old, net, **spec)
            if self.freeze:
                freeze(net, copied)
        self.copied_layers_ = copied
        if self.lora is not None:  # the copied weights stay as they are; a rank-r update of each trains beside them
            self.lora_layers_ = add_lora(net, self.lora, exclude=("head",))
            net.head.requires_grad_(True)
        l2sp = None
        if "l2sp" in parts and copied:  # with LoRA, the pull toward the source weights is on the update
            l2sp = LoRAL2SP(self.alpha, self.beta) if self.lora else L2SP(net, copied, alpha=self.alpha, beta=self.beta)
        if "l2sp" in parts and not copied:
            raise ValueError("conservative='l2sp' anchors copied layers; copy='none' copies nothing.")
        old_model = old_head = None
        if "lwf" in parts:
            old_model = OldModelOutputs(old)
            old_head = copy.deepcopy(old.head)  # the old task's head, trained on the new features
            old_head.requires_grad_(True)
        trainable_layers = [n for n in layer_names(net) if n not in (copied if self.freeze else [])]
        schedule = GradualUnfreezing(layer_names(net)) if self.gradual_unfreezing else None
        objective = FineTuneObjective(net, l2sp, old_model, old_head, self.lwf_weight, self.temperature, schedule)
        if self.lr_decay is not None:
            mults = discriminative_lr_mults(layer_names(net), self.lr_decay)
            groups = layerwise_param_groups(net, mults)
            rest = [p for n, p in objective.named_parameters() if not n.startswith("net.")]
            objective.groups = groups + [{"params": rest}]  # the old head, at the base rate (none: dropped)
        self.trainable_layers_ = trainable_layers
        config = FitConfig(
            epochs=self.epochs,
            batch_size=min(self.batch_size, len(target)),
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            checkpoint_dir=os.path.join(self.checkpoint_dir, "target") if self.checkpoint_dir else None,
            progress=self.verbose,
            desc=self.name,
            identity=fit_identity(self, "target"),
        )
        self.fit_result_ = fit_loop(objective, {"x": target.X, "y": y}, None, config)
        self.history_ = self.fit_result_.history
        self.warnings_ = training_warnings(self.history_, n_classes=len(self.classes_), labelled="target")
        for message in self.warnings_:
            warnings.warn(f"{type(self).__name__}: {message}", RuntimeWarning, stacklevel=2)
        self.objective_, self.model_ = objective, net.eval()
        self.source_model_ = old
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    # ----------------------------------------------------------------------------- predict
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        return self._batched(X, lambda x: torch.softmax(self.model_(x), 1))

    def transform(self, X) -> np.ndarray:
        """The target network's features before its head."""
        return self._batched(X, lambda x: self.model_.forward_to(x, self.model_.stage_names[-1]).flatten(1))


class TargetOnly(FineTune):
    """The baseline: the same network trained on the labelled target examples alone; the source is ignored.

    Parameters are the training parameters of :class:`FineTune`.
    """

    name = "target-only"
    description = "the network trained on the few labelled target examples alone (the no-transfer baseline)"
    paper = "baseline of every fine-tuning table (e.g. 'baseB' of Yosinski et al., NIPS 2014)"
    uses_source = False
    # nothing is transferred: the FineTune switches, fixed
    copy, freeze, conservative, source_model, gradual_unfreezing = "none", False, None, None, False
    alpha = beta = lwf_weight = temperature = source_epochs = source_lr = lr_decay = lora = None

    def __init__(
        self,
        backbone="auto",
        feature_layer: str | None = None,
        hidden: int = 50,
        epochs: int = 50,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        n_threads: int | None = None,
        precision: str = "float32",
        checkpoint_dir: str | None = None,
        verbose: bool = False,
    ):
        store_params(self, locals())
