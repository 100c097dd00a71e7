r"""Multitask learning with hard parameter sharing: shared lower layers, one head per task.

Caruana (1997); the lecture's two pictures. Tasks :math:`t = 1 \dots T`, each with its own labelled
sample :math:`\{(x_i^t, y_i^t)\}` (a sample labelled for some tasks only appears in those tasks'
data). The network is

.. math:: f_t(x) = h_t\big(\phi(u_{g(t)}(x))\big),

with :math:`u_g` an input layer per *input space* :math:`g` (one shared input layer when all tasks
share their inputs; task-specific input layers when they do not, the lecture's second picture),
:math:`\phi` the shared middle and :math:`h_t` the task's head (softmax classifier or linear
regressor). Training minimises the weighted sum of the task losses

.. math:: \min \sum_t w_t\, L_t, \qquad L_t = \frac{1}{n_t}\sum_i \ell_t\big(f_t(x_i^t), y_i^t\big),

with the weights of :mod:`transferkit.nn.task_weighting` (equal, uncertainty, DWA, GradNorm) and
PCGrad as an option. Each step draws one batch from the pooled samples of all tasks (a task is
seen in proportion to its size); a task absent from a batch adds nothing. Regression targets are
standardised per task for training (so no task dominates through its units) and mapped back at
prediction.

References
----------
R. Caruana, "Multitask Learning", Machine Learning 28, 1997. A. Kendall, Y. Gal, R. Cipolla,
CVPR 2018. Z. Chen et al., GradNorm, ICML 2018. S. Liu, E. Johns, A. Davison, CVPR 2019 (DWA).
T. Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from transferkit._sklearn import CheckedParams
from transferkit.data import check_array
from transferkit.methods.base import Setting, fit_identity, shared_constraints, store_params
from transferkit.methods.persistent import Persistent
from transferkit.nn.task_weighting import WEIGHTINGS, TaskWeighting, pcgrad
from transferkit.train.loop import FitConfig, fit_loop, resolve_device

__all__ = ["MultiTask", "MultiTaskNet", "relative_change"]

KINDS = ("classification", "regression")


def _module_key(name: str) -> str:
    """A task or input-space name as a submodule name: torch refuses "." (file names have one)."""
    return str(name).replace(".", "\u00b7")


class MultiTaskNet(nn.Module):
    """Input layers per input space, a shared middle, a head per task."""

    def __init__(self, in_dims: Mapping[str, int], hidden: tuple[int, ...], out_dims: Mapping[str, int], groups):
        super().__init__()
        width = hidden[0]
        self.inputs = nn.ModuleDict(
            {_module_key(g): nn.Sequential(nn.Linear(d, width), nn.ReLU()) for g, d in in_dims.items()}
        )
        layers: list[nn.Module] = []
        for a, b in zip(hidden[:-1], hidden[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({_module_key(t): nn.Linear(hidden[-1], k) for t, k in out_dims.items()})
        self.groups = dict(groups)  # task -> input space

    def last_shared_weight(self) -> nn.Parameter:
        """The weight of the last layer every task goes through (GradNorm's :math:`W`)."""
        linears = [m for m in self.shared if isinstance(m, nn.Linear)]
        if linears:
            return linears[-1].weight
        (only,) = self.inputs.values()  # one input space: its layer is shared
        return only[0].weight

    def shared_parameters(self) -> list[nn.Parameter]:
        params = list(self.shared.parameters())
        if len(self.inputs) == 1:
            params = list(self.inputs.parameters()) + params
        return params

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[_module_key(task)](self.shared(self.inputs[_module_key(self.groups[task])](x)))


class MultiTaskObjective(nn.Module):
    """The weighted sum of per-task losses over a batch that mixes the tasks' samples."""

    def __init__(self, net: MultiTaskNet, tasks, kinds, widths, weighting: TaskWeighting, use_pcgrad: bool):
        super().__init__()
        self.net, self.tasks, self.kinds, self.widths = net, list(tasks), list(kinds), list(widths)
        self.weighting, self.use_pcgrad = weighting, use_pcgrad
        # per input space, once: its tasks' indices and its input width
        self.group_tasks = {
            g: torch.tensor([k for k, name in enumerate(self.tasks) if _module_key(net.groups[name]) == g])
            for g in net.inputs
        }
        self.group_width = {
            g: max(w for name, w in zip(self.tasks, self.widths, strict=True) if _module_key(net.groups[name]) == g)
            for g in net.inputs
        }

    def task_losses(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, t, y = batch["x"], batch["task"], batch["y"]
        # the shared middle runs once over the whole batch; each input space's layer over its rows
        h = None
        for g, layer in self.net.inputs.items():
            rows = torch.isin(t, self.group_tasks[g].to(t.device))
            if not bool(rows.any()):
                continue
            u = layer(x[rows, : self.group_width[g]])
            if h is None:
                h = u.new_zeros((len(x), u.shape[1]))
            h = h.index_put((torch.nonzero(rows).flatten(),), u)
        h = self.net.shared(h)
        losses, present = [], []
        for k, (name, kind) in enumerate(zip(self.tasks, self.kinds, strict=True)):
            m = t == k
            if not bool(m.any()):
                losses.append(x.new_zeros(()))
                present.append(False)
                continue
            out = self.net.heads[_module_key(name)](h[m])
            if kind == "classification":
                losses.append(F.cross_entropy(out, y[m].long()))
            else:
                losses.append(F.mse_loss(out.squeeze(1), y[m]))
            present.append(True)
        return torch.stack(losses), torch.tensor(present, device=x.device)

    def forward(self, batch, progress: float):
        losses, present = self.task_losses(batch)
        shared_w = self.net.last_shared_weight() if self.weighting.method == "gradnorm" else None
        loss, w = self.weighting(losses, present, progress, shared_w)
        if self.use_pcgrad and self.training:
            idx = torch.nonzero(present).flatten().tolist()
            loss = loss + pcgrad([w[k] * losses[k] for k in idx], self.net.shared_parameters())
        log = {"loss": loss, "tasks_in_batch": present.float().sum()}
        return log


def relative_change(multi: Mapping[str, float], single: Mapping[str, float], lower_is_better=()) -> float:
    r"""Average relative change against single-task models, in percent (Maninis et al., CVPR 2019).

    .. math:: \Delta = \frac{100}{T}\sum_t (-1)^{l_t}\,\frac{M_t - M_t^{\text{single}}}{M_t^{\text{single}}},

    :math:`l_t = 1` for the metrics in ``lower_is_better`` (so a positive :math:`\Delta` is a gain).
    """
    if set(multi) != set(single):
        raise ValueError(f"the tasks differ: multitask {sorted(multi)} vs single-task {sorted(single)}.")
    terms = []
    for t, m in multi.items():
        s = single[t]
        if s == 0:
            raise ValueError(f"task {t!r}: the single-task metric is 0; the relative change is undefined.")
        sign = -1.0 if t in lower_is_better else 1.0
        terms.append(sign * (m - s) / abs(s))
    return 100.0 * float(np.mean(terms))


class MultiTask(Persistent, CheckedParams, BaseEstimator):
    """Hard parameter sharing over several tasks, each a classification or a regression.

    Training (Adam) takes the parameters of every network method (``epochs``, ``batch_size``, ``lr``,
    ``weight_decay``, ``seed``, ``device``, ``n_threads``, ``precision``, ``checkpoint_dir``, ``verbose``;
    see :class:`~transferkit.methods.dann.DANN`).

    Parameters
    ----------
    hidden : tuple of int
        Widths of the input layer(s) and the shared middle: ``(64, 32)`` is an input layer of 64
        units (shared, or one per input space) and one shared layer of 32.
    weighting : {"equal", "uncertainty", "dwa", "gradnorm"}
        How the task losses are combined (:mod:`transferkit.nn.task_weighting`).
    pcgrad : bool
        Project conflicting task gradients on the shared layers (Yu et al. 2020).
    sampling : {"proportional", "balanced"}
        How batches mix the tasks: in proportion to their sizes, or balanced (every task's samples
        drawn with replacement up to the largest task's size, so a scarce task appears in every
        batch as often as the others instead of about once).
    temperature, alpha : float
        DWA's :math:`\\tau` (2) and GradNorm's :math:`\\alpha` (1.5).
    """

    name = "multitask"
    setting = Setting(source_labels=True, target_labels=True)
    description = "hard parameter sharing: shared layers, a head per task; task weighting and PCGrad"
    paper = "Caruana 1997; Kendall et al. CVPR 2018; Chen et al. ICML 2018; Liu et al. CVPR 2019; Yu et al. 2020"

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 32),
        weighting: str = "equal",
        pcgrad: bool = False,
        sampling: str = "proportional",
        temperature: float = 2.0,
        alpha: float = 1.5,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        n_threads: int | None = None,
        precision: str = "float32",
        checkpoint_dir: str | None = None,
        verbose: bool = False,
    ):
        store_params(self, locals())

    # ------------------------------------------------------------------------------ checks
    def _check_tasks(self, tasks, kinds, groups):
        if not isinstance(tasks, Mapping) or not tasks:
            raise ValueError(f"tasks={type(tasks).__name__}; expected a non-empty dict of task name -> (X, y).")
        kinds = {t: "classification" for t in tasks} if kinds is None else dict(kinds)
        groups = {t: "input" for t in tasks} if groups is None else dict(groups)
        for name, table in (("kinds", kinds), ("groups", groups)):
            missing, extra = sorted(set(tasks) - set(table)), sorted(set(table) - set(tasks))
            if missing or extra:
                raise ValueError(f"{name} must name every task once: missing {missing}, unknown {extra}.")
        data = {}
        for t, pair in tasks.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"tasks[{t!r}] is {type(pair).__name__}; expected a tuple (X, y).")
            X = check_array(pair[0], f"tasks[{t!r}] X", allow_nd=False)
            y = np.asarray(pair[1])
            if y.shape != (len(X),):
                raise ValueError(f"tasks[{t!r}] y has shape {y.shape}; expected ({len(X)},), one label per row of X.")
            if kinds[t] not in KINDS:
                raise ValueError(f"kinds[{t!r}]={kinds[t]!r}; expected one of {KINDS}.")
            if kinds[t] == "classification":
                if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
                    raise ValueError(
                        f"tasks[{t!r}] is a classification task, but its labels are not whole numbers "
                        f"(e.g. {y[~(y == np.round(y))][:3].tolist()}); declare kinds[{t!r}]='regression'."
                    )
                if len(np.unique(y)) < 2:
                    raise ValueError(
                        f"tasks[{t!r}] y has a single class ({np.unique(y).tolist()}); expected two or more."
                    )
            else:
                if y.dtype.kind not in "biuf":
                    raise ValueError(
                        f"tasks[{t!r}] is a regression task, but its labels are {y.dtype} (e.g. {y[:3].tolist()}); "
                        f"expected numbers, or declare kinds[{t!r}]='classification'."
                    )
                y = y.astype(np.float64)
                if not np.all(np.isfinite(y)):
                    raise ValueError(f"tasks[{t!r}] y has NaN or infinite values; expected finite regression targets.")
            data[t] = (X, y)
        widths = {}
        for t, (X, _) in data.items():
            g = groups[t]
            if widths.setdefault(g, X.shape[1]) != X.shape[1]:
                raise ValueError(
                    f"tasks[{t!r}] has {X.shape[1]} features, other tasks of input space {g!r} have {widths[g]}; "
                    "give it its own input space in groups=."
                )
        return data, kinds, groups, widths

    # ------------------------------------------------------------------------------ fit
    _parameter_constraints = {
        **shared_constraints("epochs", "batch_size", "lr", "weight_decay", "seed", "device"),
        **shared_constraints("n_threads", "precision", "checkpoint_dir", "verbose"),
        "hidden": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "alpha": [Interval(Real, 0, np.inf, closed="left")],
        "temperature": [Interval(Real, 0, np.inf, closed="neither")],
        "pcgrad": ["boolean"],
        "sampling": [StrOptions({"proportional", "balanced"})],
        "weighting": [StrOptions(set(WEIGHTINGS))],
    }

    def _rebuild_module(self, name: str):
        if name != "model_":
            return None
        widths = {self.groups_[t]: self.n_features_[t] for t in self.tasks_}
        out = {t: len(self.classes_[t]) if self.kinds_[t] == "classification" else 1 for t in self.tasks_}
        return MultiTaskNet(widths, tuple(int(h) for h in np.atleast_1d(self.hidden)), out, self.groups_)

    def fit(self, tasks: Mapping[str, tuple], kinds: Mapping[str, str] | None = None, groups=None):
        """Fit on ``tasks``: task name -> ``(X, y)``.

        ``kinds``: task -> ``"classification"`` (default) or ``"regression"``. ``groups``: task ->
        input-space name; tasks of one input space share the input layer (default: all one).
        """
        self._validate_params()
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden))
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden={self.hidden!r}; expected one or more positive widths.")
        t0 = time.perf_counter()
        data, kinds, groups, widths = self._check_tasks(tasks, kinds, groups)
        if len(hidden) == 1 and len(widths) > 1:  # one input layer per space and no middle: nothing is shared
            raise ValueError(
                f"hidden={self.hidden!r} is the input layers alone, and the tasks come in {len(widths)} input spaces, "
                "so no layer would be shared; give hidden a second width for the shared middle."
            )
        self.tasks_ = list(data)
        self.kinds_, self.groups_ = kinds, groups
        self.n_features_ = {t: X.shape[1] for t, (X, _) in data.items()}
        self.classes_, self.target_scale_ = {}, {}
        width_max = max(self.n_features_.values())
        xs, ts, ys = [], [], []
        largest = max(len(y) for _, y in data.values())
        rng = np.random.default_rng(self.seed)
        for k, (t, (X, y)) in enumerate(data.items()):
            if kinds[t] == "classification":
                self.classes_[t] = np.unique(y)
                code = np.searchsorted(self.classes_[t], y).astype(np.float32)
            else:
                mu, sd = float(y.mean()), float(y.std()) or 1.0
                self.target_scale_[t] = (mu, sd)
                code = ((y - mu) / sd).astype(np.float32)
            if self.sampling == "balanced" and len(y) < largest:  # every task as many rows as the largest
                idx = np.concatenate([np.arange(len(y)), rng.choice(len(y), largest - len(y), replace=True)])
                X, code = X[idx], code[idx]
            xs.append(np.pad(X, ((0, 0), (0, width_max - X.shape[1]))))  # narrower input spaces: zero-padded
            ts.append(np.full(len(X), k, np.int64))
            ys.append(code)
        torch.manual_seed(self.seed)
        out_dims = {t: len(self.classes_[t]) if kinds[t] == "classification" else 1 for t in self.tasks_}
        net = MultiTaskNet(widths, hidden, out_dims, groups)
        weighting = TaskWeighting(
            [kinds[t] for t in self.tasks_], self.weighting, self.epochs, self.temperature, self.alpha
        )
        objective = MultiTaskObjective(
            net,
            self.tasks_,
            [kinds[t] for t in self.tasks_],
            [self.n_features_[t] for t in self.tasks_],
            weighting,
            self.pcgrad,
        )
        config = FitConfig(
            epochs=self.epochs,
            batch_size=min(self.batch_size, sum(map(len, xs))),
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            checkpoint_dir=self.checkpoint_dir,
            progress=self.verbose,
            desc=self.name,
            identity=fit_identity(self),
        )
        arrays = {"x": np.concatenate(xs), "task": np.concatenate(ts), "y": np.concatenate(ys)}
        self.fit_result_ = fit_loop(objective, arrays, None, config)
        self.history_ = self.fit_result_.history
        self.objective_, self.model_ = objective, net.eval()
        self.task_weights_ = dict(zip(self.tasks_, weighting.weights().cpu().tolist(), strict=True))
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------------------ predict
    def _check_task(self, task: str) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this MultiTask is not fitted yet; call fit(tasks) first.")
        if task not in self.tasks_:
            raise ValueError(f"task={task!r} has no head; this model's tasks: {self.tasks_}.")

    def _outputs(self, X, task: str) -> np.ndarray:
        self._check_task(task)
        X = check_array(X, "X", allow_nd=False)
        if X.shape[1] != self.n_features_[task]:
            raise ValueError(f"X has {X.shape[1]} features; task {task!r} was fitted on {self.n_features_[task]}.")
        device = resolve_device(self.device)
        self.model_.to(device)
        with torch.no_grad():
            return self.model_(torch.from_numpy(X).to(device), task).float().cpu().numpy()

    def predict_proba(self, X, task: str) -> np.ndarray:
        """Class probabilities of a classification ``task``, columns ordered as ``classes_[task]``."""
        self._check_task(task)
        if self.kinds_.get(task) == "regression":
            raise ValueError(f"task {task!r} is a regression; predict_proba is for classification tasks.")
        z = self._outputs(X, task)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def predict(self, X, task: str) -> np.ndarray:
        """Labels (classification) or values (regression, in the original units) for ``task``."""
        self._check_task(task)
        if self.kinds_.get(task) == "regression":
            mu, sd = self.target_scale_[task]
            return self._outputs(X, task)[:, 0] * sd + mu
        return self.classes_[task][self.predict_proba(X, task).argmax(1)]

    def score(self, X, y, task: str) -> float:
        """Accuracy on a classification ``task``; R² (1 - SSE / SST) on a regression task."""
        y = np.asarray(y)
        prediction = self.predict(X, task)
        if len(y) != len(prediction):
            raise ValueError(f"y has {len(y)} labels but X has {len(prediction)} samples; expected one per sample.")
        if self.kinds_.get(task) == "regression":
            spread = float(np.sum((y - y.mean()) ** 2))
            if spread == 0:
                raise ValueError(f"y is constant ({y[0]}); R^2 needs targets that vary.")
            return 1.0 - float(np.sum((y - prediction) ** 2)) / spread
        return float(np.mean(prediction == y))
