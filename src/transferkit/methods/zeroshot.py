"""The base of every zero-shot method: seen classes in training, any described class at test time.

A zero-shot model is fitted on samples of the *seen* classes and a table of
:class:`~transferkit.semantics.ClassDescriptions` for every class, seen or not; it then scores a
sample against any class in the table. ``predict(X)`` chooses among the unseen classes (the ZSL
protocol), ``predict(X, classes="all")`` among all of them (generalized ZSL), where
``calibration`` subtracts a constant from the seen classes' scores (calibrated stacking, Chao et
al. 2016).

Hyperparameters are chosen on a validation split *of the seen classes* (:func:`seen_class_split`,
:func:`select_on_seen_classes`): some seen classes play the unseen ones, so the real unseen test
classes are never looked at.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import clone

from transferkit.data import Domain, as_domain, check_array
from transferkit.methods.base import Setting, TransferMethod, fit_identity, hidden_kwargs, shared_constraints
from transferkit.metrics.zeroshot import calibrated_stacking, gzsl_scores, per_class_accuracy, seen_unseen_curve
from transferkit.nn.backbones import StagedNet, build_backbone
from transferkit.semantics import ClassDescriptions
from transferkit.train.diagnostics import training_warnings
from transferkit.train.loop import FitConfig, FitResult, fit_loop, resolve_device

__all__ = [
    "SoftmaxObjective",
    "ZeroShotMethod",
    "ZeroShotSelection",
    "evaluate_zeroshot",
    "seen_class_split",
    "select_on_seen_classes",
    "select_on_split",
]


class SoftmaxObjective(torch.nn.Module):
    """Cross-entropy over the seen classes: the visual classifier DeViSE starts from and ConSE uses."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch, progress: float):
        logits = self.net(batch["xs"])
        loss = torch.nn.functional.cross_entropy(logits, batch["ys"])
        return {"loss": loss, "source_acc": (logits.argmax(1) == batch["ys"]).float().mean()}


@dataclass(eq=False, repr=False, kw_only=True)
class ZeroShotMethod(TransferMethod):
    """Fitted on seen classes with descriptions of all classes; predicts among described classes.

    Subclasses implement ``_fit_seen(X, y_idx, S_seen)`` (``y_idx`` indexes the rows of
    ``S_seen``, the seen classes' descriptions) and ``_scores(X, S)`` (compatibility of every
    sample with every row of ``S``; larger is better).
    """

    setting: ClassVar[Setting] = Setting(source_labels=True, target_labels=False, target=False)
    #: The description kinds the method can use.
    kinds: ClassVar[tuple[str, ...]] = ("attributes", "word vectors")
    _parameter_constraints: ClassVar[dict] = shared_constraints(
        "backbone",
        "hidden",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "seed",
        "device",
        "n_threads",
        "precision",
        "checkpoint_dir",
        "verbose",
    )

    # the training parameters every zero-shot network shares (documented in DANN); subclasses add their own
    backbone: object = "auto"
    hidden: int = 256
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    n_threads: int | None = None
    precision: str = "float32"
    checkpoint_dir: str | None = None
    verbose: bool = False

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, descriptions: ClassDescriptions | None = None, unseen=None):
        """Fit on samples of seen classes.

        Parameters
        ----------
        X : array-like or Domain
            Training samples (images or feature vectors), or a labelled :class:`Domain`.
        y : array-like, shape (n_samples,)
            Their labels; every label must have a row in ``descriptions``.
        descriptions : ClassDescriptions
            One row per class, seen and unseen.
        unseen : array-like, optional
            The classes the model will be asked about; default: every described class absent
            from ``y``. A class here that also appears in ``y`` is an error.
        """
        self._validate_params()  # before the data: every hyperparameter named with what it allows
        t0 = time.perf_counter()
        if isinstance(X, (Domain, tuple)):
            if y is not None and descriptions is None and isinstance(y, ClassDescriptions):
                descriptions, y = y, None
            domain = as_domain(X, "X")
            X, y = domain.X, domain.y if y is None else y
        if descriptions is None or not isinstance(descriptions, ClassDescriptions):
            raise TypeError(
                f"descriptions is {type(descriptions).__name__}; expected a ClassDescriptions with one row per "
                "class (transferkit.semantics.attribute_table or embed_class_names)."
            )
        if descriptions.kind not in self.kinds:
            raise ValueError(
                f"{type(self).__name__} needs descriptions of kind {' or '.join(map(repr, self.kinds))}; got "
                f"{descriptions.kind!r}."
            )
        if y is None:
            raise ValueError(f"y is None; {type(self).__name__} learns from labelled samples of the seen classes.")
        X = check_array(X, "X")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y has shape {y.shape}; expected ({len(X)},), one label per sample of X.")
        rows = descriptions.index(y, "y")
        seen_rows = np.unique(rows)
        if len(seen_rows) < 2:
            only = descriptions.labels[seen_rows].tolist()
            raise ValueError(f"y has a single class ({only}); expected at least two seen classes.")
        seen = descriptions.labels[seen_rows]
        if unseen is None:
            unseen = np.setdiff1d(descriptions.labels, seen)
        else:
            unseen = descriptions.labels[descriptions.index(np.asarray(unseen).ravel(), "unseen")]
            overlap = np.intersect1d(unseen, seen)
            if len(overlap):
                raise ValueError(
                    f"unseen classes {overlap.tolist()} also appear in y (the seen classes); a class is either "
                    "seen in training or unseen, never both."
                )
        self.descriptions_ = descriptions
        self.classes_ = descriptions.labels
        self.seen_classes_ = np.sort(seen)
        self.unseen_classes_ = np.sort(np.asarray(unseen))
        self.input_shape_ = tuple(X.shape[1:])
        self._seen_rows_ = descriptions.index(self.seen_classes_)
        y_idx = np.searchsorted(self._seen_rows_, rows)  # position among the seen classes
        self._fit_seen(X, y_idx.astype(np.int64), descriptions.vectors[self._seen_rows_])
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _fit_seen(self, X: np.ndarray, y_idx: np.ndarray, S_seen: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _scores(self, X: np.ndarray, S: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ prediction
    def candidates(self, classes="unseen") -> np.ndarray:
        """The class labels a prediction chooses among: ``"unseen"``, ``"seen"``, ``"all"`` (both) or a list."""
        self._check_is_fitted()
        if isinstance(classes, str):
            every = np.sort(np.concatenate([self.seen_classes_, self.unseen_classes_]))
            pools = {"unseen": self.unseen_classes_, "seen": self.seen_classes_, "all": every}
            if classes not in pools:
                raise ValueError(f"classes={classes!r}; expected 'unseen', 'seen', 'all' or a list of class labels.")
            chosen = pools[classes]
            if len(chosen) == 0:
                raise ValueError(f"there are no {classes} classes: every described class was seen in training.")
            return chosen
        chosen = np.asarray(classes).ravel()
        return self.descriptions_.labels[self.descriptions_.index(chosen, "classes")]

    def decision_function(self, X, classes="unseen") -> np.ndarray:
        """Scores of every sample against every candidate class, shape (n_samples, n_candidates)."""
        X = self._check_X(X)
        labels = self.candidates(classes)
        S = self.descriptions_.vectors[self.descriptions_.index(labels)]
        return self._scores(X, S)

    def predict(self, X, classes="unseen", calibration: float = 0.0) -> np.ndarray:
        """The best-scoring candidate class of every sample.

        ``calibration`` (gamma) is subtracted from the seen classes' scores before the argmax
        (calibrated stacking); it matters only when seen classes are among the candidates.
        """
        labels = self.candidates(classes)
        scores = self.decision_function(X, labels)
        if calibration:
            scores = calibrated_stacking(scores, np.isin(labels, self.seen_classes_), calibration)
        return labels[scores.argmax(1)]

    def predict_proba(self, X, classes="unseen") -> np.ndarray:
        """A softmax over the candidates' scores (a ranking turned into weights, not calibrated odds)."""
        scores = self.decision_function(X, classes)
        z = np.exp(scores - scores.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def score(self, X, y=None, classes="unseen") -> float:
        """Mean per-class top-1 accuracy among ``classes`` (the ZSL metric of Xian et al.)."""
        domain = as_domain((X, y) if y is not None else X, "domain")  # its arrays named X and y
        if domain.y is None:
            raise ValueError("score needs labels: pass a labelled Domain or score(X, y).")
        return per_class_accuracy(domain.y, self.predict(domain.X, classes))

    def unseen_gap(self, X) -> np.ndarray:
        """Best seen-class score minus best unseen-class score of every sample (among all classes).

        Calibrated stacking with gamma sends a sample to an unseen class exactly when its gap is
        below gamma.
        """
        labels = self.candidates("all")
        seen_mask = np.isin(labels, self.seen_classes_)
        if seen_mask.all():
            raise ValueError("there are no unseen classes to calibrate towards.")
        scores = self.decision_function(X, labels)
        return scores[:, seen_mask].max(1) - scores[:, ~seen_mask].max(1)

    def calibration_for_rate(self, X_seen, rate: float) -> float:
        """The gamma that sends a fraction ``rate`` of the samples ``X_seen`` to unseen classes.

        Score scales differ from model to model, so a gamma chosen on a validation model does not
        carry over to the model refitted on all seen classes; the *rate* at which it moves seen
        samples to unseen classes does. :func:`select_on_split` measures that rate on the
        validation model's training samples; this maps it back onto this model's own.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate={rate!r}; expected a fraction in [0, 1].")
        gap = self.unseen_gap(X_seen)
        return float(np.quantile(gap, rate))

    # ------------------------------------------------------------------ shared training helpers
    def _fit_config(self, desc: str, epochs: int | None = None, lr: float | None = None) -> FitConfig:
        return FitConfig(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            lr=self.lr if lr is None else lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            checkpoint_dir=None if self.checkpoint_dir is None else f"{self.checkpoint_dir}/{desc}",
            progress=self.verbose,
            desc=f"{self.name}:{desc}",
            identity=fit_identity(self, desc),
        )

    def _rebuild_module(self, name: str):
        if name != "model_":
            return None
        return self._build(self._n_out())

    def _n_out(self) -> int:  # pragma: no cover - each method's visual network
        raise NotImplementedError

    def _build(self, n_out: int) -> StagedNet:
        """The visual network (``backbone``) with ``n_out`` outputs."""
        torch.manual_seed(self.seed)
        return build_backbone(
            self.backbone, self.input_shape_, n_out, **hidden_kwargs(self.backbone, self.input_shape_, self.hidden)
        )

    def _train(self, objective, X, y_idx, desc: str, **config) -> FitResult:
        """One training step on the seen classes; a step that logs ``source_acc`` (its accuracy on them) is
        warned about when it never fitted them or diverged, as every network method's training is."""
        result = fit_loop(objective, {"xs": X, "ys": y_idx}, None, self._fit_config(desc, **config))
        for message in training_warnings(result.history, n_classes=len(self.seen_classes_)):
            warnings.warn(f"{type(self).__name__}: {message}", RuntimeWarning, stacklevel=3)
        return result

    def _forward(self, net: torch.nn.Module, X: np.ndarray, fn=None, batch_size: int = 1024) -> np.ndarray:
        """``fn(net, x)`` (default ``net(x)``) over ``X`` in batches, without gradients."""
        device = resolve_device(self.device)
        net.to(device).eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                x = torch.from_numpy(X[i : i + batch_size]).to(device)
                out.append((net(x) if fn is None else fn(net, x)).float().cpu().numpy())
        return np.concatenate(out)


def seen_class_split(seen_classes, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split the seen classes into training classes and validation classes (which play "unseen").

    The validation protocol of Xian et al.: hyperparameters are chosen on classes that are seen
    in the benchmark but held out of training, never on the unseen test classes.
    """
    seen_classes = np.unique(np.asarray(seen_classes))
    if not 1 <= n_val <= len(seen_classes) - 2:
        raise ValueError(
            f"n_val={n_val} with {len(seen_classes)} seen classes; expected 1 <= n_val <= {len(seen_classes) - 2} "
            "so that at least two classes remain for training."
        )
    rng = np.random.default_rng(seed)
    val = np.sort(rng.choice(seen_classes, n_val, replace=False))
    return np.setdiff1d(seen_classes, val), val


def evaluate_zeroshot(model: ZeroShotMethod, X_unseen, y_unseen, X_seen=None, y_seen=None, calibration=0.0) -> dict:
    """ZSL accuracy on unseen test classes and, given seen test samples, the GZSL scores.

    Returns a dict with ``zsl`` (per-class top-1 among unseen classes) and, when ``X_seen`` is
    given, ``seen``, ``unseen``, ``H`` (predictions among all classes, with ``calibration``) and
    ``ausuc`` (the area under the seen-unseen curve, calibration-free).
    """
    X_unseen = check_array(X_unseen, "X_unseen")  # named here, before score reads it as plain X
    out = {"zsl": model.score(X_unseen, y_unseen, classes="unseen")}
    if X_seen is None:
        return out
    X = np.concatenate([check_array(X_seen, "X_seen"), X_unseen])
    y = np.concatenate([np.asarray(y_seen), np.asarray(y_unseen)])
    labels = model.candidates("all")
    scores = model.decision_function(X, labels)
    seen_mask = np.isin(labels, model.seen_classes_)
    pred = labels[calibrated_stacking(scores, seen_mask, calibration).argmax(1)]
    out.update(gzsl_scores(y, pred, model.seen_classes_, model.unseen_classes_).as_dict())
    out["ausuc"] = seen_unseen_curve(scores, y, labels, seen_mask).auc
    return out


@dataclass(frozen=True)
class ZeroShotSelection:
    """What :func:`select_on_split` chose: the grid point and the GZSL calibration.

    ``gamma`` is the calibration that maximised H on the validation split; ``unseen_rate`` the
    share of the validation model's training samples that this gamma sends to unseen classes,
    for :meth:`ZeroShotMethod.calibration_for_rate` on a refitted model. ``log`` holds every grid
    point with its validation ZSL accuracy, best H and gamma.
    """

    params: dict
    gamma: float
    unseen_rate: float
    log: list = field(default_factory=list)


def select_on_split(
    estimator: ZeroShotMethod,
    grid: list[dict],
    descriptions: ClassDescriptions,
    fit: tuple,
    val_unseen: tuple,
    val_seen: tuple,
    max_rate_samples: int = 2000,
) -> ZeroShotSelection:
    """Choose a grid point and the GZSL calibration on a given validation split.

    ``fit = (X, y)`` trains each point; ``val_unseen`` holds samples of classes absent from
    ``fit`` (they play the unseen classes), ``val_seen`` held-out samples of the ``fit`` classes.
    The point with the best ZSL accuracy on ``val_unseen`` wins; its calibration gamma is the one
    that maximises H over ``val_seen`` and ``val_unseen`` together (Chao et al. 2016 tune it on
    validation data in this way).
    """
    if not grid:
        raise ValueError("grid is empty; expected at least one dict of hyperparameters.")
    (X_fit, y_fit), (X_u, y_u), (X_s, y_s) = fit, val_unseen, val_seen
    val_classes = np.unique(y_u)
    take = np.random.default_rng(0).permutation(len(X_fit))[:max_rate_samples]
    log = []
    for point in grid:
        model = clone(estimator).set_params(**point)
        model.fit(X_fit, y_fit, descriptions, unseen=val_classes)
        zsl = model.score(X_u, y_u)
        labels = np.concatenate([model.seen_classes_, model.unseen_classes_])
        X, y = np.concatenate([X_s, X_u]), np.concatenate([y_s, y_u])
        curve = seen_unseen_curve(model.decision_function(X, labels), y, labels, np.isin(labels, model.seen_classes_))
        best_h, gamma = curve.best_H()
        rate = float(np.mean(model.unseen_gap(X_fit[take]) < gamma))
        log.append({**point, "val_zsl": zsl, "val_H": best_h, "gamma": gamma, "unseen_rate": rate})
    best = max(log, key=lambda r: r["val_zsl"])
    return ZeroShotSelection({k: best[k] for k in grid[0]}, best["gamma"], best["unseen_rate"], log)


def select_on_seen_classes(
    estimator: ZeroShotMethod,
    grid: list[dict],
    X,
    y,
    descriptions: ClassDescriptions,
    n_val: int,
    seed: int = 0,
    holdout: float = 0.2,
) -> ZeroShotSelection:
    """Choose hyperparameters and the GZSL calibration on seen classes only.

    Some seen classes (``n_val``, drawn with ``seed``) play the unseen ones; ``holdout`` of the
    remaining classes' samples play the seen test samples; see :func:`select_on_split`.

    Returns
    -------
    ZeroShotSelection
    """
    X = check_array(X, "X")
    y = np.asarray(y)
    train_classes, val_classes = seen_class_split(np.unique(y), n_val, seed)
    rng = np.random.default_rng(seed)
    is_train = np.isin(y, train_classes)
    hold = is_train & (rng.random(len(y)) < holdout)
    fit = is_train & ~hold
    is_val = np.isin(y, val_classes)
    return select_on_split(estimator, grid, descriptions, (X[fit], y[fit]), (X[is_val], y[is_val]), (X[hold], y[hold]))
