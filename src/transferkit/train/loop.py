"""The one training loop.

Device placement, backward, the optimiser step, the learning-rate schedule, data-parallel
training, checkpoints and progress live here and nowhere else. A method only writes a
:class:`torch.nn.Module` whose ``forward(batch, progress)`` returns its objective::

    class SourceOnlyObjective(nn.Module):
        def forward(self, batch, progress):
            loss = F.cross_entropy(self.net(batch["xs"]), batch["ys"])
            return {"loss": loss}

    result = fit_loop(SourceOnlyObjective(net), {"xs": Xs, "ys": ys}, {"xt": Xt}, FitConfig())

``progress`` runs from 0 to 1 over training, so every schedule (learning rate, the GRL
coefficient) is an explicit function of it, logged, and restored exactly on resume.

Under ``torchrun`` the same call trains data-parallel (DDP; gloo on CPU, NCCL on GPUs): every
rank draws the same global batch and takes its slice, so a run on N processes follows the
one-process run up to floating-point noise.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse
import torch
from torch import nn

from transferkit.data import PairedBatches
from transferkit.train import distributed, optim
from transferkit.train.checkpoint import CheckpointManager
from transferkit.train.schedules import lr_at
from transferkit.train.threads import MacCounter, choose_threads

__all__ = ["PRECISIONS", "FitConfig", "FitResult", "fit_loop", "resolve_device"]

#: The arithmetic a forward pass may run in (:attr:`FitConfig.precision`).
PRECISIONS = ("float32", "bfloat16")

CHECKPOINT_FORMAT = 1


@dataclass
class FitConfig:
    """How to train; every field is a plain value, so a config is logged and compared as is.

    ``lr_schedule="ganin"`` is :math:`\\mu_0 / (1 + \\alpha p)^\\beta`. ``checkpoint_every`` counts
    optimiser steps (0: at the end of every epoch only).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_alpha: float = 10.0
    lr_beta: float = 0.75
    seed: int = 0
    device: str = "auto"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    resume: bool = True
    progress: bool = True
    desc: str = "train"
    grad_clip: float = 0.0
    #: Intra-op threads while training; None: one for a small step, torch's setting for a large one
    #: (:mod:`transferkit.train.threads`). The caller's setting is restored afterwards.
    n_threads: int | None = None
    #: ``"bfloat16"``: the forward pass under :func:`torch.autocast` in bfloat16 (matrix products and
    #: convolutions in bfloat16, losses and reductions in float32, the weights and the optimiser in
    #: float32); ``"float32"``: everything in float32.
    precision: str = "float32"
    #: What the trained weights are of: the method and every hyperparameter that changes them (plain
    #: values). A checkpoint written for another identity is refused on resume.
    identity: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Check every field and coerce NumPy scalars and paths to plain Python values."""
        for name in ("epochs", "batch_size", "seed", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{name}={v!r}; expected an integer.")
            setattr(self, name, int(v))
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected a positive integer.")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={self.checkpoint_every!r}; expected 0 (each epoch) or more steps.")
        for name in ("lr", "momentum", "weight_decay", "lr_alpha", "lr_beta", "grad_clip"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ValueError(f"{name}={v!r}; expected a finite number.")
            setattr(self, name, float(v))
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr!r}; expected a positive finite number.")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip={self.grad_clip!r}; expected 0 (off) or a positive gradient-norm bound.")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}; expected 'adam' or 'sgd'.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; expected one of {', '.join(map(repr, PRECISIONS))}.")
        lr_at(self.lr_schedule, 0.0, 1.0)  # raises on an unknown schedule name
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)

    def fingerprint(self) -> dict:
        """The fields that determine the trained weights (what a resumed run must share)."""
        skip = ("progress", "resume", "device", "desc", "checkpoint_dir", "checkpoint_every", "n_threads")
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class FitResult:
    """What a training run produced: per-epoch averages of every logged scalar, and timing."""

    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_at_step: int | None = None


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: the local CUDA device when present (the rank's own under torchrun), else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}, but this machine has no CUDA device; use 'cpu' or 'auto'.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}, but there are {torch.cuda.device_count()} CUDA devices.")
    return resolved


def _param_groups(module: nn.Module, base_lr: float) -> list[dict]:
    groups = module.param_groups() if hasattr(module, "param_groups") else [{"params": module.parameters()}]
    out = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        if params:
            mult = float(g.get("lr_mult", 1.0))
            out.append({"params": params, "lr": base_lr * mult, "lr_mult": mult})
    if not out:
        raise ValueError("the model has no trainable parameters (all frozen?); nothing to fit.")
    return out


def _make_optimizer(module: nn.Module, cfg: FitConfig) -> optim.Adam | optim.SGD:
    groups = _param_groups(module, cfg.lr)
    if cfg.optimizer == "sgd":
        return optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _to_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    if t.is_floating_point():
        t = t.float()
    elif t.dtype != torch.bool:
        t = t.long()
    return t.to(device, non_blocking=True)


#: The largest share of a GPU's free memory that a dense training array may take to be kept on the GPU
#: for the whole run (each batch then gathered there, with no copy from the host per step).
DEVICE_DATA_SHARE = 0.25


def _fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether an array of ``nbytes`` may stay resident on the CUDA ``device`` (:data:`DEVICE_DATA_SHARE`)."""
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_SHARE * free


class _Rows:
    """One array of a domain, converted once, from which each step takes its rows.

    A dense array becomes a tensor once (not once per step): on a CUDA device it is copied there
    whole when it fits (:data:`DEVICE_DATA_SHARE`), so each batch is gathered on the device; else it
    stays in host memory and each batch is copied over. A SciPy sparse matrix stays
    sparse: each batch is a sparse COO tensor, which :class:`torch.nn.Linear` multiplies without
    densifying, so a first layer over bag-of-words inputs costs what its non-zeros cost. The batch's
    non-zeros are gathered straight from the CSR arrays (a few vectorised NumPy operations), not
    through SciPy's row indexing, which builds a new matrix on every step.
    """

    def __init__(self, a, channels_last: bool = False, device: torch.device | None = None):
        self.channels_last = channels_last
        if scipy.sparse.issparse(a):
            a = scipy.sparse.csr_matrix(a, dtype=np.float32)
            a.sum_duplicates()  # canonical: sorted, unique column indices per row
            self.sparse, self.shape = True, a.shape
            self.indptr, self.indices, self.values = a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data
        else:
            self.sparse, self.data = False, _to_tensor(a, torch.device("cpu"))
            if device is not None and device.type == "cuda" and _fits_on(device, self.data.nbytes):
                self.data = self.data.to(device)

    def take(self, idx: np.ndarray, device: torch.device) -> torch.Tensor:
        if not self.sparse:
            rows = self.data[torch.from_numpy(idx).to(self.data.device, non_blocking=True)]
            if self.channels_last and rows.dim() == 4:  # images, for a network trained channels-last
                rows = rows.contiguous(memory_format=torch.channels_last)
            return rows.to(device, non_blocking=True)
        starts = self.indptr[idx]
        lengths = self.indptr[idx + 1] - starts
        row = np.repeat(np.arange(len(idx), dtype=np.int64), lengths)
        # position of each gathered non-zero in the CSR arrays: its row's start plus its rank within the row
        first = np.cumsum(lengths) - lengths
        at = np.arange(row.size, dtype=np.int64) + np.repeat(starts - first, lengths)
        indices = torch.from_numpy(np.stack([row, self.indices[at]]))
        batch = torch.sparse_coo_tensor(
            indices,
            torch.from_numpy(self.values[at]),
            (len(idx), self.shape[1]),
            is_coalesced=True,
            check_invariants=False,
        )
        return batch.to(device)


def to_batch(X, device: torch.device) -> torch.Tensor:
    """Rows of inputs as a tensor for the network: a dense array as it is, a canonical CSR matrix as a
    sparse COO tensor (which :class:`torch.nn.Linear` multiplies at the cost of its non-zeros)."""
    if not scipy.sparse.issparse(X):
        return torch.from_numpy(np.ascontiguousarray(X)).to(device, non_blocking=True)
    rows = X.tocoo()
    indices = torch.from_numpy(np.vstack([rows.row, rows.col]).astype(np.int64))
    values = torch.from_numpy(np.asarray(rows.data, dtype=np.float32))
    batch = torch.sparse_coo_tensor(indices, values, rows.shape, is_coalesced=True, check_invariants=False)
    return batch.to(device)


def _rng_state(np_state: dict) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy_epoch": np_state,
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def fit_loop(
    module: nn.Module,
    source: dict[str, np.ndarray],
    target: dict[str, np.ndarray] | None,
    config: FitConfig,
    on_epoch_end: Callable[[int, nn.Module, dict[str, float]], dict[str, float] | None] | None = None,
) -> FitResult:
    """Train ``module`` by minimising the ``"loss"`` its forward returns.

    Parameters
    ----------
    module : nn.Module
        ``forward(batch: dict[str, Tensor], progress: float) -> dict[str, Tensor]`` with a scalar
        ``"loss"``; other scalar entries are averaged per epoch into the history. An optional
        ``param_groups()`` returns ``[{"params": ..., "lr_mult": m}, ...]``.
    source, target : dict of str to ndarray or scipy.sparse matrix
        Arrays indexed together per domain (e.g. ``{"xs": X, "ys": y}`` and ``{"xt": X}``); one
        epoch walks once through the larger domain while the smaller one is cycled. ``target``
        may be ``None`` for single-domain training. A sparse matrix arrives in ``forward`` as a
        sparse COO batch (for a first :class:`~torch.nn.Linear` layer).
    config : FitConfig
    on_epoch_end : callable, optional
        ``f(epoch, module, epoch_log)`` called on every rank after each epoch (module in eval
        mode); a returned dict is merged into that epoch's history entry (diagnostics).

    Returns
    -------
    FitResult
    """
    config.validate()
    if config.n_threads is not None and (isinstance(config.n_threads, bool) or int(config.n_threads) < 1):
        raise ValueError(f"n_threads={config.n_threads!r}; expected a positive integer or None.")
    caller = torch.get_num_threads()
    try:
        return _fit_loop(module, source, target, config, on_epoch_end, caller)
    finally:
        torch.set_num_threads(caller)  # the caller's setting, whatever happened
        if CHANNELS_LAST and _has_conv2d(module):  # the network leaves in the default layout it came in
            module.to(memory_format=torch.contiguous_format)


#: Train 2-D convolutional networks on the CPU in the channels-last layout (NHWC), in which oneDNN's
#: convolutions run faster: 24-30 % less time per step on the digit networks (benchmarks/conv_step.py).
#: The weights return to the default layout after training. False trains in the default layout.
CHANNELS_LAST = True


def _has_conv2d(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def _fit_loop(module, source, target, config: FitConfig, on_epoch_end, caller_threads: int) -> FitResult:
    n_s = _common_length(source, "source")
    n_t = _common_length(target, "target") if target else n_s
    rank, world = distributed.init_from_env()
    device = resolve_device(config.device)
    module.to(device)
    channels_last = CHANNELS_LAST and device.type == "cpu" and _has_conv2d(module)
    if channels_last:  # before the optimiser is made: its state takes the parameters' layout
        module.to(memory_format=torch.channels_last)
    train_module = distributed.wrap(module, device)
    optimizer = _make_optimizer(module, config)

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np_rng = np.random.default_rng(config.seed)
    batches = PairedBatches(n_s, n_t, config.batch_size, np_rng)
    steps_per_epoch = len(batches)
    total_steps = steps_per_epoch * config.epochs
    if world > 1 and batches.batch_size % world:
        raise ValueError(
            f"batch_size={batches.batch_size} is not divisible by the {world} processes; "
            "choose a multiple so every rank gets an equal share of each batch."
        )

    manager = CheckpointManager(config.checkpoint_dir) if config.checkpoint_dir else None
    result = FitResult()
    start_step, epoch_acc, epoch_np_state = 0, {}, np_rng.bit_generator.state
    fingerprint = {
        **config.fingerprint(),
        "data": _data_fingerprint(source, target),
        "architecture": _architecture(module),
        "steps_per_epoch": steps_per_epoch,
    }
    if manager and not config.resume and rank == 0:
        manager.clear()  # a fresh run must not mix its checkpoints with an earlier run's
    if manager and config.resume and manager.paths():  # the fresh state is copied only when there is a resume
        fresh = (copy.deepcopy(module.state_dict()), copy.deepcopy(optimizer.state_dict()), torch.get_rng_state())
        for state in manager.loadable():
            if state.get("config") != fingerprint:
                raise ValueError(
                    f"the checkpoint in {config.checkpoint_dir!r} was written by another run (other settings or "
                    f"data): {_diff(state.get('config'), fingerprint)}. Use a fresh checkpoint_dir or resume=False."
                )
            try:  # a checkpoint that loads but does not fit (shapes, RNG bytes, history) is damaged too
                module.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                start_step = int(state["step"])
                result.history = [dict(h) for h in state["history"]]
                epoch_acc = dict(state["epoch_acc"])
                epoch_np_state = state["rng"]["numpy_epoch"]
                np.random.default_rng().bit_generator.state = epoch_np_state  # refuses a malformed state
                _set_rng_state(state["rng"])
            except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                warnings.warn(
                    f"a checkpoint in {config.checkpoint_dir!r} could not be restored ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); falling back to the previous one.",
                    stacklevel=2,
                )
                module.load_state_dict(fresh[0])
                optimizer.load_state_dict(fresh[1])
                torch.set_rng_state(fresh[2])
                start_step, result.history, epoch_acc = 0, [], {}
                epoch_np_state = np_rng.bit_generator.state
                continue
            result.resumed_at_step = start_step
            break

    def checkpoint(step: int, acc: dict, np_state: dict) -> None:
        if manager is None or rank != 0:
            return
        manager.save(
            {
                "format": CHECKPOINT_FORMAT,
                "config": fingerprint,
                "model": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "history": result.history,
                "epoch_acc": acc,
                "rng": _rng_state(np_state),
            },
            step,
        )

    rows_s = {k: _Rows(v, channels_last, device) for k, v in source.items()}
    rows_t = {k: _Rows(v, channels_last, device) for k, v in (target or {}).items()}
    show = config.progress and rank == 0
    bar = _progress_bar(total_steps, start_step, config.desc, show)
    t0 = time.perf_counter()
    step = start_step
    # threads: the first step runs on one thread while its multiply-adds are counted; the rest on one
    # thread too when that step was small, else on the caller's setting (transferkit.train.threads)
    torch.set_num_threads(config.n_threads or 1)
    counting = MacCounter(module) if config.n_threads is None else None
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.precision == "bfloat16"
        else contextlib.nullcontext()
    )
    for epoch in range(start_step // steps_per_epoch, config.epochs):
        skip = step - epoch * steps_per_epoch  # > 0 only in the epoch a run resumes in
        np_rng.bit_generator.state = epoch_np_state
        module.train()
        for i, (idx_s, idx_t) in enumerate(batches):
            if i < skip:  # replay the shuffle up to where the checkpoint was taken
                continue
            p = step / total_steps
            lr = lr_at(config.lr_schedule, p, config.lr, config.lr_alpha, config.lr_beta)
            for g in optimizer.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            batch = {k: v.take(distributed.shard(idx_s, rank, world), device) for k, v in rows_s.items()}
            batch.update({k: v.take(distributed.shard(idx_t, rank, world), device) for k, v in rows_t.items()})
            with autocast:
                out = train_module(batch, p)
            loss = out["loss"].float()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at step {step} (epoch {epoch}); lower lr={config.lr:g} "
                    "or check the inputs' scale."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:  # bounds the step when the adversarial game spikes
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            optimizer.step()
            if counting is not None:
                torch.set_num_threads(choose_threads(counting.stop(), None, caller_threads))
                counting = None
            step += 1
            for k, v in out.items():
                epoch_acc[k] = epoch_acc.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
            epoch_acc["_n"] = epoch_acc.get("_n", 0.0) + 1
            epoch_acc["lr"] = lr
            bar.update(1)
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step % steps_per_epoch:
                checkpoint(step, epoch_acc, epoch_np_state)
        n = epoch_acc.pop("_n", 1.0)
        log = {"epoch": epoch + 1, "lr": epoch_acc.pop("lr", lr)}
        log.update({k: v / n for k, v in epoch_acc.items()})
        if on_epoch_end is not None:
            module.eval()
            with torch.no_grad():
                extra = on_epoch_end(epoch, module, log)
            log.update(extra or {})
        result.history.append(log)
        bar.set_postfix({k: f"{log[k]:.3g}" for k in ("loss", "domain_acc") if k in log}, refresh=False)
        epoch_acc, epoch_np_state = {}, np_rng.bit_generator.state
        checkpoint(step, epoch_acc, epoch_np_state)
    bar.close()
    module.eval()
    result.steps = step
    result.seconds = time.perf_counter() - t0
    return result


def _data_fingerprint(source: dict, target: dict | None) -> dict:
    """Shapes and a CRC of (a prefix of) every array: resuming on other data is refused."""
    out = {}
    for k, v in {**source, **(target or {})}.items():
        if scipy.sparse.issparse(v):
            v = scipy.sparse.csr_matrix(v)
            parts = (v.indptr, v.indices, v.data)
            crcs = [zlib.crc32(np.ascontiguousarray(p)[: 1 << 18].tobytes()) for p in parts]
            out[k] = [list(v.shape), f"sparse {v.dtype}", crcs]
            continue
        a = np.ascontiguousarray(v)
        out[k] = [list(a.shape), str(a.dtype), zlib.crc32(a.reshape(-1)[: 1 << 18].tobytes())]
    return out


def _architecture(module: torch.nn.Module) -> list:
    """The names and shapes of every parameter and buffer, as a count and a CRC: another network is refused."""
    layout = ";".join(f"{k}:{tuple(v.shape)}" for k, v in module.state_dict().items())
    return [len(module.state_dict()), zlib.crc32(layout.encode())]


def _diff(old: dict | None, new: dict, prefix: str = "") -> str:
    """The entries in which two fingerprints differ, nested ones by their own name (``lambda_max``)."""
    if not isinstance(old, dict):
        return "no configuration recorded"
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and k != "data":
            out.append(_diff(a, b, f"{prefix}{k}."))
        else:
            out.append(f"{prefix}{k}: checkpoint {a!r} vs now {b!r}")
    return "; ".join(out)


def _common_length(arrays: dict[str, np.ndarray] | None, name: str) -> int:
    if not arrays:
        raise ValueError(f"{name} has no arrays; expected e.g. {{'x{name[0]}': X}}.")
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{name} arrays differ in length: {lengths}; expected one row per sample in each.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{name} is empty; expected at least one sample.")
    return n


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *a, **k):
        pass

    def close(self):
        pass


def _progress_bar(total: int, initial: int, desc: str, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, unit="step", leave=False, dynamic_ncols=True)
