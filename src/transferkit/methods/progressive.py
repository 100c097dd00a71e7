r"""Progressive neural networks: a new column per task, lateral connections from the frozen old ones.

Rusu et al., "Progressive Neural Networks", arXiv:1606.04671, 2016. Task :math:`k` gets a fresh
column; its layer :math:`i` sees its own previous layer and, through an *adapter*, the previous
layer of every earlier column :math:`j < k`:

.. math::

    h_i^{(k)} = f\Big(W_i^{(k)} h_{i-1}^{(k)}
        + \sum_{j<k} U_i^{(k:j)}\, \sigma\big(V_i^{(k:j)}\, \alpha_i^{(k:j)} h_{i-1}^{(j)}\big)\Big),

with :math:`\alpha` a learnt scalar (initialised at 1; the paper initialises it at random),
:math:`V` a projection to a narrower space (a 1x1 convolution for convolutional layers) and
:math:`\sigma` a ReLU (the paper's adapters, Sec. 2). The output layer is laterally connected
too. Earlier columns are frozen (no gradient, evaluation mode), so what they compute for their own
tasks stays bit-identical: no forgetting, by construction. The price is growth: every column adds
its own parameters and adapters to all earlier columns.

Columns are MLPs (``layers=(64, 64)``) or CNNs (``layers=("c16", "c32", 64)``: 3x3 convolutions
with 2x2 max-pooling, then fully connected layers).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from torch import nn

from transferkit._sklearn import CheckedParams
from transferkit.data import check_array
from transferkit.methods.base import Setting, shared_constraints, store_params
from transferkit.methods.persistent import Persistent
from transferkit.nn.transfer import freeze
from transferkit.train.diagnostics import training_warnings
from transferkit.train.loop import FitConfig, fit_loop, resolve_device

__all__ = ["ProgressiveNetwork", "ProgressiveColumn"]


def _parse_layers(layers) -> list[tuple[str, int]]:
    out = []
    for spec in layers:
        if isinstance(spec, str) and spec.startswith("c") and spec[1:].isdigit():
            out.append(("conv", int(spec[1:])))
        elif isinstance(spec, (int, np.integer)) and not isinstance(spec, bool) and spec > 0:
            out.append(("linear", int(spec)))
        else:
            raise ValueError(f"layers entry {spec!r}; expected a width (int) or 'cN' for a convolution of N channels.")
    kinds = [k for k, _ in out]
    if "linear" in kinds and "conv" in kinds[kinds.index("linear") :]:
        raise ValueError(f"layers={list(layers)!r}: convolutions must come before the fully connected layers.")
    return out


class _Adapter(nn.Module):
    """:math:`U\\,\\sigma(V\\,\\alpha h)`: one lateral connection from an earlier column's layer."""

    def __init__(self, conv: bool, d_in: int, d_out: int, reduce: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))
        # no biases: the paper's V and U are matrices (the layer's own term carries the bias), so
        # alpha = 0 cuts the connection exactly
        make = (lambda a, b: nn.Conv2d(a, b, 1, bias=False)) if conv else (lambda a, b: nn.Linear(a, b, bias=False))
        self.V = make(d_in, reduce)
        self.U = make(reduce, d_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.U(F.relu(self.V(self.alpha * h)))


class ProgressiveColumn(nn.Module):
    """One task's column; ``n_previous`` earlier columns feed every layer after the first."""

    def __init__(self, in_shape: tuple[int, ...], layers, n_out: int, n_previous: int, reduce: int = 16):
        super().__init__()
        spec = _parse_layers(layers)
        self.in_shape = tuple(in_shape)
        self.layers, self.laterals, self.kinds = nn.ModuleList(), nn.ModuleList(), []
        shape = self.in_shape
        for i, (kind, width) in enumerate(spec + [("out", n_out)]):
            conv = kind == "conv"
            if conv:
                if len(shape) != 3:
                    raise ValueError(f"a convolution needs image inputs (channels, height, width); got {shape}.")
                layer = nn.Conv2d(shape[0], width, 3, padding=1)
                next_shape = (width, shape[1] // 2, shape[2] // 2)
            else:
                d = int(np.prod(shape))
                layer = nn.Linear(d, width)
                next_shape = (width,)
            self.layers.append(layer)
            self.kinds.append(kind)
            # lateral adapters from the previous layer of each earlier column (none into the first layer)
            if i > 0:
                d_prev = shape[0] if conv else int(np.prod(shape))
                self.laterals.append(nn.ModuleList([_Adapter(conv, d_prev, width, reduce) for _ in range(n_previous)]))
            else:
                self.laterals.append(nn.ModuleList())
            shape = next_shape

    def forward(
        self, x: torch.Tensor, previous: Sequence[list[torch.Tensor]] = (), usage: list | None = None
    ) -> tuple[torch.Tensor, list]:
        """The output and the list of hidden activations (what later columns read).

        With ``usage`` a list, each layer appends the mean over samples of
        :math:`\\lVert U\\sigma(V\\alpha h^{(j)})\\rVert / \\lVert W h^{(k)}\\rVert` for every earlier column
        :math:`j`: how much of the layer's input comes through each lateral connection.
        """
        hidden, h = [], x
        for i, (layer, kind, adapters) in enumerate(zip(self.layers, self.kinds, self.laterals, strict=True)):
            if kind != "conv" and h.dim() > 2:
                h = h.flatten(1)
            pre = layer(h)
            own = pre.detach().flatten(1).norm(dim=1).clamp_min(1e-12) if usage is not None else None
            ratios = []
            for adapter, acts in zip(adapters, previous if adapters else (), strict=True):
                a = acts[i - 1]
                if kind != "conv" and a.dim() > 2:
                    a = a.flatten(1)
                lateral = adapter(a)
                if own is not None:
                    ratios.append((lateral.detach().flatten(1).norm(dim=1) / own).mean().item())
                pre = pre + lateral
            if usage is not None and adapters:
                usage.append(ratios)
            if kind == "out":  # the last layer: its pre-activation is the output
                break
            h = F.max_pool2d(F.relu(pre), 2) if kind == "conv" else F.relu(pre)
            hidden.append(h)
        return pre, hidden


class _ColumnObjective(nn.Module):
    """Column ``k``'s cross-entropy on its task's labels; its training accuracy logged as ``task_acc``."""

    def __init__(self, columns: nn.ModuleList, k: int):
        super().__init__()
        self.columns, self.k = columns, k

    def forward(self, batch, progress: float):
        out = run_columns(self.columns, batch["x"], self.k)
        return {"loss": F.cross_entropy(out, batch["y"]), "task_acc": (out.argmax(1) == batch["y"]).float().mean()}


def run_columns(columns: nn.ModuleList, x: torch.Tensor, k: int) -> torch.Tensor:
    """Column ``k``'s output on ``x``, the earlier columns run (frozen) for its lateral inputs."""
    previous = []
    k_read = k if any(len(a) for a in columns[k].laterals) else 0  # an independent column reads none
    for j in range(k_read):
        with torch.no_grad():  # frozen: no gradient reaches the old columns
            _, acts = columns[j](x, previous)
        previous.append(acts)
    out, _ = columns[k](x, previous)
    return out


class ProgressiveNetwork(Persistent, CheckedParams, BaseEstimator):
    """A progressive network over a sequence of tasks (classification; ``fit`` takes them in order).

    Each column trains (Adam) with the parameters of every network method (``epochs``, ``batch_size``, ``lr``,
    ``seed``, ``device``, ``n_threads``, ``precision``, ``verbose``; see :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    layers : sequence
        Each column's layers: widths for fully connected layers, ``"cN"`` for 3x3 convolutions
        of N channels with 2x2 max-pooling (before the fully connected ones).
    reduce : int
        Width of the adapters' projection :math:`V`.
    lateral : bool
        ``False`` gives independent columns (no adapters): the no-transfer control.
    """

    name = "progressive"
    setting = Setting(source_labels=True, target_labels=True)
    description = "a new column per task with lateral adapters from the frozen earlier columns"
    paper = "Rusu et al., Progressive Neural Networks, arXiv:1606.04671, 2016"

    def __init__(
        self,
        layers=(64, 64),
        reduce: int = 16,
        lateral: bool = True,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int = 0,
        device: str = "auto",
        n_threads: int | None = None,
        precision: str = "float32",
        verbose: bool = False,
    ):
        store_params(self, locals())

    _parameter_constraints = {
        **shared_constraints("epochs", "batch_size", "lr", "seed", "device", "n_threads", "precision", "verbose"),
        "layers": [tuple, list],
        "lateral": ["boolean"],
        "reduce": [Interval(Integral, 1, None, closed="left")],
    }

    def fit(self, tasks: Mapping[str, tuple]):
        """Train one column per task, in the order given: ``{name: (X, y), ...}``."""
        if not isinstance(tasks, Mapping) or not tasks:
            raise ValueError(f"tasks={type(tasks).__name__}; expected a non-empty dict of task name -> (X, y).")
        for name, (X, y) in tasks.items():
            self.add_task(name, X, y)
        return self

    def _rebuild_module(self, name: str):
        if name != "columns_":
            return None
        columns = nn.ModuleList(
            ProgressiveColumn(
                self.input_shape_, self.layers, len(self.classes_[t]), k if self.lateral else 0, self.reduce
            )
            for k, t in enumerate(self.tasks_)
        )
        for column in columns:
            freeze(column, "")  # as after training: every column stays as it is when a task is added
        return columns

    def add_task(self, name: str, X, y):
        """Add a column for task ``name`` and train it; every earlier column stays frozen."""
        self._validate_params()
        X = check_array(X, f"task {name!r} X")
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"task {name!r} y has shape {y.shape}; expected ({len(X)},).")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"task {name!r} y holds NaN or infinity; expected a class label for every sample.")
        try:  # continuous labels are a regression task, which a column of classifiers cannot learn
            check_classification_targets(y)
        except ValueError:
            raise ValueError(
                f"task {name!r} y holds continuous values ({y[:3].tolist()}, ...); expected class labels."
            ) from None
        if not hasattr(self, "columns_"):
            self.columns_, self.tasks_, self.classes_, self.input_shape_ = nn.ModuleList(), [], {}, X.shape[1:]
            self.parameters_per_column_, self.fit_seconds_, self.history_ = [], {}, {}
        if name in self.tasks_:
            raise ValueError(f"task {name!r} already has a column; tasks so far: {self.tasks_}.")
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"task {name!r} has inputs of shape {X.shape[1:]}; the earlier columns take {self.input_shape_}, "
                "and every column reads the same input (resize or embed it first)."
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"task {name!r} y has a single class ({classes.tolist()}); expected two or more.")
        t0 = time.perf_counter()
        k = len(self.columns_)
        torch.manual_seed(self.seed + k)
        column = ProgressiveColumn(self.input_shape_, self.layers, len(classes), k if self.lateral else 0, self.reduce)
        for old in self.columns_:
            freeze(old, "")  # no gradient, and eval mode however often the loop calls train()
        self.columns_.append(column)
        objective = _ColumnObjective(self.columns_, k)
        config = FitConfig(
            epochs=self.epochs,
            batch_size=min(self.batch_size, len(X)),
            lr=self.lr,
            seed=self.seed + k,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            progress=self.verbose,
            desc=f"column {k} ({name})",
        )
        code = np.searchsorted(classes, y).astype(np.int64)
        history = fit_loop(objective, {"x": X, "y": code}, None, config).history
        self.history_[name] = history
        for message in training_warnings(history, n_classes=len(classes), labelled="task"):
            warnings.warn(f"{type(self).__name__}: column {k} ({name!r}): {message}", RuntimeWarning, stacklevel=2)
        self.tasks_.append(name)
        self.classes_[name] = classes
        self.parameters_per_column_.append(sum(p.numel() for p in column.parameters()))
        self.fit_seconds_[name] = time.perf_counter() - t0
        self.columns_.eval()
        return self

    def lateral_usage(self, X, task: str) -> list[list[float]]:
        """How much each lateral connection of ``task``'s column contributes on ``X``.

        Per layer with adapters, one number per earlier column: the mean over samples of the
        lateral input's norm relative to the norm of the column's own input to that layer (0: the
        connection is unused; 1: it weighs as much as the column's own path).
        """
        self._check_task(task)
        X = self._check_X(X)
        k = self.tasks_.index(task)
        if not any(len(a) for a in self.columns_[k].laterals):
            return []
        device = resolve_device(self.device)
        self.columns_.to(device).eval()
        per_batch, sizes = [], []
        with torch.no_grad():
            for i in range(0, len(X), 1024):  # each batch's mean ratios, weighted by its size
                x = torch.from_numpy(X[i : i + 1024]).to(device)
                previous, usage = [], []
                for j in range(k):
                    previous.append(self.columns_[j](x, previous)[1])
                self.columns_[k](x, previous, usage=usage)
                per_batch.append(usage)
                sizes.append(len(x))
        return np.average(np.array(per_batch), axis=0, weights=sizes).tolist()

    @property
    def lateral_scales_(self) -> dict[str, list[list[float]]]:
        """The learnt :math:`\\alpha` of each column: per layer, one per earlier column it reads."""
        out = {}
        for name, column in zip(getattr(self, "tasks_", []), getattr(self, "columns_", []), strict=True):
            out[name] = [[a.alpha.item() for a in adapters] for adapters in column.laterals if len(adapters)]
        return out

    def _check_task(self, task: str) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("this ProgressiveNetwork is not fitted yet; call fit(tasks) first.")
        if task not in self.tasks_:
            raise ValueError(f"task={task!r} has no column; this model's tasks: {self.tasks_}.")

    def _check_X(self, X) -> np.ndarray:
        X = check_array(X, "X")
        if X.shape[1:] != self.input_shape_:
            raise ValueError(f"X has samples of shape {X.shape[1:]}; the columns take {self.input_shape_}.")
        return X

    def predict_proba(self, X, task: str) -> np.ndarray:
        """Class probabilities of ``task`` (its column, reading the earlier ones)."""
        self._check_task(task)
        X = self._check_X(X)
        device = resolve_device(self.device)
        self.columns_.to(device).eval()
        k = self.tasks_.index(task)
        outs = []
        with torch.no_grad():
            for i in range(0, len(X), 1024):
                outs.append(
                    torch.softmax(run_columns(self.columns_, torch.from_numpy(X[i : i + 1024]).to(device), k), 1)
                )
        return torch.cat(outs).cpu().numpy()

    def predict(self, X, task: str) -> np.ndarray:
        """Labels of ``task``."""
        self._check_task(task)
        return self.classes_[task][self.predict_proba(X, task).argmax(1)]

    def score(self, X, y, task: str) -> float:
        """Accuracy on ``task``."""
        y = np.asarray(y)
        prediction = self.predict(X, task)
        if y.shape != prediction.shape:
            raise ValueError(f"y has shape {y.shape}; expected {prediction.shape}, one label per sample of X.")
        return float(np.mean(prediction == y))
