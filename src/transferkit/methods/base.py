"""Base classes of every method: the setting check and the estimator contract.

A method declares its *setting*, which data it learns from (labelled source? labelled target?),
the coordinates of the lecture's map. ``fit`` checks the data against it, so target labels
handed to an unsupervised method are refused rather than silently ignored.

Estimators follow scikit-learn: the constructor only stores hyperparameters (``get_params``,
``set_params`` and ``sklearn.base.clone`` work), fitted state ends in ``_``, ``fit`` returns
``self``; the fitted torch network is ``model_``.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from torch import nn

from transferkit._sklearn import CheckedParams, check_n_features
from transferkit.data import Domain, as_domain, check_array, check_same_features, densify
from transferkit.methods.persistent import Persistent
from transferkit.nn.backbones import BACKBONES, StagedNet, build_backbone, from_module
from transferkit.train.diagnostics import training_warnings
from transferkit.train.loop import PRECISIONS, FitConfig, FitResult, fit_loop, resolve_device, to_batch
from transferkit.train.schedules import LR_SCHEDULES

__all__ = [
    "Setting",
    "TransferMethod",
    "LearntFeatures",
    "FeatureClassifierMethod",
    "NeuralTransferMethod",
    "AdaptationMethod",
    "SHARED_CONSTRAINTS",
    "as_domain",
    "shared_constraints",
    "store_params",
]

#: Vector inputs with fewer non-zeros than this fraction train through sparse batches.
SPARSE_BELOW = 0.05


def mostly_zeros(X: np.ndarray) -> bool:
    """Whether the dense array ``X`` has under :data:`SPARSE_BELOW` of its entries non-zero (bag-of-words),
    so that products with it cost less as CSR."""
    return np.count_nonzero(X) < SPARSE_BELOW * X.size


QUADRANTS = {
    (True, True): "labelled source, labelled target",
    (True, False): "labelled source, unlabelled target",
    (False, True): "unlabelled source, labelled target",
    (False, False): "unlabelled source, unlabelled target",
}


@dataclass(frozen=True)
class Setting:
    """Which labels a method learns from.

    ``target_labels=False`` means the target sample must come without labels; ``target=False``
    means the method does not use target data at all (a baseline such as source-only).
    """

    source_labels: bool
    target_labels: bool
    target: bool = True

    @property
    def quadrant(self) -> str:
        return QUADRANTS[(self.source_labels, self.target_labels)]


def store_params(estimator, params: dict) -> None:
    """Store constructor arguments unchanged, as scikit-learn expects (``store_params(self, locals())``)."""
    for key, value in params.items():
        if key not in ("self", "__class__"):
            setattr(estimator, key, value)


def _chain(callbacks: list):
    """One ``on_epoch_end`` callback that runs ``callbacks`` in order and merges what they log."""
    if not callbacks:
        return None

    def on_epoch_end(epoch, module, log):
        extra = {}
        for callback in callbacks:
            extra.update(callback(epoch, module, {**log, **extra}) or {})
        return extra

    return on_epoch_end


def _is_label_vector(y, X) -> bool:
    """Whether ``fit(X, y)`` was called the scikit-learn way: ``y`` one label per row of ``X``."""
    if isinstance(X, (Domain, tuple)) or y is None or isinstance(y, (Domain, tuple)):
        return False
    if not (isinstance(y, list) or hasattr(y, "shape") or hasattr(y, "__array__")):
        return False
    shape = np.shape(np.asarray(y))
    x_shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(np.asarray(X))
    if not shape or not x_shape or shape[0] != x_shape[0]:
        return False
    # a column of labels, unless it could as well be a one-feature target domain
    return len(shape) == 1 or (shape[1:] == (1,) and x_shape[1:] != (1,))


def unlabelled_rows(y) -> np.ndarray:
    """Where ``y`` says "no label": -1, in numeric labels or among class names (an object array)."""
    y = np.asarray(y)
    if y.dtype == object:
        return np.array([isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v == -1 for v in y])
    if np.issubdtype(y.dtype, np.number):
        return y == -1
    return np.zeros(len(y), bool)


def split_sample_domain(X, y, sample_domain) -> tuple[Domain, Domain]:
    """Source and target rows of one ``(X, y)`` by ``sample_domain`` (positive: source, negative: target).

    The convention of SKADA: one array of samples, so that scikit-learn's ``Pipeline`` and
    ``GridSearchCV`` can carry both domains through their splits. A target label of -1 means
    "no label".
    """
    sample_domain = np.asarray(sample_domain)
    n = len(X)
    if sample_domain.ndim != 1 or len(sample_domain) != n:
        raise ValueError(f"sample_domain has shape {sample_domain.shape}; expected ({n},), one entry per row of X.")
    if not np.issubdtype(sample_domain.dtype, np.integer) or (sample_domain == 0).any():
        raise ValueError(
            f"sample_domain has values {np.unique(sample_domain)[:5].tolist()}; expected non-zero integers: "
            "positive for source rows, negative for target rows."
        )
    is_source = sample_domain > 0
    if is_source.all() or not is_source.any():
        which = "source" if is_source.all() else "target"
        raise ValueError(f"sample_domain marks every row as {which}; expected source (> 0) and target (< 0) rows.")
    X, y = check_array(X, "X"), np.asarray(y)
    return Domain(X[is_source], y[is_source], "source"), Domain(X[~is_source], y[~is_source], "target")


def _plain(value):
    """``value`` as data a checkpoint can hold and compare: numbers, strings, lists, dicts, else its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, nn.Module):  # its layout is fingerprinted from its weights' names and shapes
        return type(value).__name__
    return repr(value)[:500]


def _some(values) -> str:
    shown = np.unique(np.asarray(values))
    return ", ".join(map(repr, shown[:5].tolist())) + (", ..." if len(shown) > 5 else "")


def _check_same_label_kind(source_y, target_y, names: tuple[str, str] = ("source.y", "target.y")) -> None:
    """Refuse class names in one domain and numbers in the other: no label could ever match."""
    kind = lambda y: "class names" if np.asarray(y).dtype.kind in "OUS" else "numbers"  # noqa: E731
    if kind(source_y) != kind(target_y):
        raise ValueError(
            f"{names[0]} holds {kind(source_y)} ({_some(source_y)}) and {names[1]} {kind(target_y)} "
            f"({_some(target_y)}); label both domains the same way."
        )


#: Constraints of hyperparameters that several estimators share, by name, for scikit-learn's validation
#: (``_parameter_constraints``); an estimator takes the ones it has with :func:`shared_constraints`.
SHARED_CONSTRAINTS = {
    "backbone": [StrOptions({"auto", *BACKBONES}), nn.Module],
    "feature_layer": [str, None],
    "hidden": [Interval(Integral, 1, None, closed="left")],
    "epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, np.inf, closed="neither")],
    "optimizer": [StrOptions({"adam", "sgd"})],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "weight_decay": [Interval(Real, 0, np.inf, closed="left")],
    "grad_clip": [Interval(Real, 0, np.inf, closed="left")],
    "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
    "seed": [Interval(Integral, 0, None, closed="left")],
    "device": [str],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "precision": [StrOptions(set(PRECISIONS))],
    "checkpoint_dir": [str, os.PathLike, None],
    "verbose": ["boolean"],
    "n_estimators": [Interval(Integral, 1, None, closed="left")],
    "estimator": [HasMethods(["fit", "predict"]), None],
}


def shared_constraints(*names: str) -> dict:
    """The entries of :data:`SHARED_CONSTRAINTS` for ``names``."""
    return {n: SHARED_CONSTRAINTS[n] for n in names}


def hidden_kwargs(backbone, input_shape: tuple[int, ...], hidden: int) -> dict:
    """``{"hidden": hidden}`` for the built-in shallow networks on feature vectors, else nothing."""
    return {"hidden": hidden} if len(input_shape) == 1 and backbone in ("auto", "shallow", "shallow-bn") else {}


def network_for(backbone, feature_layer, hidden: int, input_shape: tuple[int, ...], n_classes: int) -> StagedNet:
    """The network a neural method trains: any module given as ``backbone`` (its features, a new head; copied,
    never changed), or a built-in network by name."""
    if isinstance(backbone, nn.Module):
        return from_module(backbone, input_shape, n_classes, feature_layer)
    if feature_layer is not None:
        raise ValueError(
            f"feature_layer={feature_layer!r} names a layer of a backbone given as a module; "
            f"backbone={backbone!r} is built by name (its features are its adaptation stage)."
        )
    return build_backbone(backbone, input_shape, n_classes, **hidden_kwargs(backbone, input_shape, hidden))


def fit_identity(estimator, stage: str | None = None) -> dict:
    """The estimator's class and every hyperparameter that changes its trained weights, as plain values.

    The checkpoint fingerprint (:attr:`FitConfig.identity`): a folder written by another method or with
    other settings is refused on resume instead of handing back that run's model.
    """
    run_settings = ("verbose", "device", "checkpoint_dir", "n_threads")
    params = {k: _plain(v) for k, v in estimator.get_params(deep=False).items() if k not in run_settings}
    return {"method": type(estimator).__name__, **({"stage": stage} if stage else {}), **params}


def _accepts_sample_domain(method):
    """``method(X, ..., sample_domain=None)``: SKADA's convention, so code written for it ports over.

    A fitted model predicts every row the same way whichever domain it comes from, so ``sample_domain``
    is only checked (one entry per row of ``X``), never used.
    """

    @functools.wraps(method)
    def wrapped(self, X, *args, sample_domain=None, **kwargs):
        if sample_domain is not None:
            n = len(X.X) if isinstance(X, Domain) else len(X)
            shape = np.shape(sample_domain)
            if shape != (n,):
                raise ValueError(f"sample_domain has shape {shape}; expected ({n},), one entry per row of X.")
        return method(self, X, *args, **kwargs)

    return wrapped


class TransferMethod(Persistent, CheckedParams, BaseEstimator):
    """Base of all methods: the setting check at ``fit`` and the prediction helpers.

    ``predict``, ``predict_proba`` and ``transform`` also take ``sample_domain=`` (SKADA's convention),
    checked and otherwise ignored.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("predict", "predict_proba", "transform"):
            attr = cls.__dict__.get(name)
            if hasattr(attr, "fn"):  # scikit-learn's available_if: wrap the method, keep the descriptor
                attr.fn = _accepts_sample_domain(attr.fn)
            elif attr is not None:
                setattr(cls, name, _accepts_sample_domain(attr))

    name: ClassVar[str] = ""
    setting: ClassVar[Setting]
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: The fewest target samples the method's statistics are defined for (a covariance needs 2).
    min_target_samples: ClassVar[int] = 1
    #: Whether the method adapts to the target while it predicts (test-time adaptation), not at fit.
    test_time: ClassVar[bool] = False

    def _takes_sparse(self) -> bool:
        """Whether this estimator reads sparse (CSR) inputs as they are; others get them expanded at fit."""
        return False

    def _check_fit_data(self, source, target, sample_domain=None) -> tuple[Domain, Domain | None]:
        if hasattr(self, "_parameter_constraints"):  # every hyperparameter named before the data is touched
            self._validate_params()
        label = type(self).__name__
        if _is_label_vector(target, source):
            source, target = self._sklearn_domains(source, target, sample_domain)
        elif sample_domain is not None:
            raise ValueError(
                "sample_domain is for fit(X, y, sample_domain=...), one array holding both domains; "
                "with fit(source, target) the domains are already apart."
            )
        source = as_domain(source, "source")
        keep_sparse = self._takes_sparse()
        if not keep_sparse:
            source = source.dense()
        if self.setting.source_labels and source.y is None:
            raise ValueError(f"source has no labels; {label} ({self.setting.quadrant}) needs labelled source data.")
        if not self.setting.source_labels and source.y is not None:
            raise ValueError(
                f"source has labels, but {label} learns from unlabelled source data; they would be "
                "ignored. Pass source.unlabelled()."
            )
        if self.setting.source_labels and not self._is_regressor():
            classes = np.unique(source.y)  # a regression source may be constant: the target corrects it
            if len(classes) < 2:
                raise ValueError(f"source.y has one class only ({classes.tolist()}); expected at least two classes.")
        if target is None:
            if self.setting.target:
                raise ValueError(f"target is None; {label} ({self.setting.quadrant}) needs target data.")
            self._check_targets(source)
            return source, None
        target = as_domain(target, "target")
        if not keep_sparse:
            target = target.dense()
        if len(target) < self.min_target_samples:
            raise ValueError(
                f"target has {len(target)} sample(s); {label} needs at least {self.min_target_samples} "
                "to estimate its statistics of the target distribution."
            )
        if self.setting.target_labels and target.y is None:
            raise ValueError(f"target has no labels; {label} ({self.setting.quadrant}) needs labelled target data.")
        if not self.setting.target_labels and target.y is not None:
            raise ValueError(
                f"target has labels, but {label} learns from unlabelled target data ({self.setting.quadrant}), "
                "so they would never be used. Pass target.unlabelled() and keep the labelled copy for scoring."
            )
        check_same_features(source, target)
        self._check_targets(source, target)
        if source.y is not None and target.y is not None:
            _check_same_label_kind(source.y, target.y)
        return source, target

    def _is_regressor(self) -> bool:
        """Whether this method predicts numbers (a ``task = "regression"`` class), not classes."""
        return getattr(self, "task", "classification") == "regression"

    def _check_targets(self, *domains) -> None:
        """A classifier refuses continuous labels, as scikit-learn's classifiers do."""
        if not self._is_regressor():
            for d in domains:
                if d is not None and d.y is not None:
                    check_classification_targets(d.y)

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags, TransformerTags

        tags = super().__sklearn_tags__()
        if hasattr(self, "transform"):
            tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        tags.input_tags.sparse = True  # densified, or batched sparse for bag-of-words vectors
        if self._is_regressor():
            tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        else:
            tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        return tags

    def _sklearn_domains(self, X, y, sample_domain) -> tuple[Domain, Domain | None]:
        """``fit(X, y[, sample_domain])``, scikit-learn's calling convention, as the two domains.

        Without ``sample_domain`` every row is labelled training data: the source for a method that
        needs no target, the target for a target-only baseline; methods that need both domains ask
        for ``sample_domain``.
        """
        label = type(self).__name__
        y = np.asarray(y)
        if y.ndim == 2:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is read as y.ravel().",
                DataConversionWarning,
                stacklevel=4,
            )
            y = y.ravel()
        if sample_domain is None:
            if not self.setting.target:
                return Domain(X, y, "source"), None
            if getattr(self, "uses_source", True) is False:
                target = Domain(X, y, "target")
                return target, target
            raise ValueError(
                f"fit(X, y) gives {label} one labelled sample, but it learns from a source and a target "
                f"({self.setting.quadrant}); pass sample_domain (positive for source rows, negative for "
                "target rows), or call fit(source, target) with two Domains."
            )
        source, target = split_sample_domain(X, y, sample_domain)
        if not self.setting.source_labels:  # self-taught learning: the source rows carry -1
            if not unlabelled_rows(source.y).all():
                raise ValueError(
                    f"y holds labels on source rows (sample_domain > 0), but {label} learns from unlabelled "
                    f"source data ({self.setting.quadrant}); set them to -1, which means 'no label'."
                )
            source = source.unlabelled()
        if not self.setting.target_labels:
            if not unlabelled_rows(target.y).all():
                raise ValueError(
                    f"y holds labels on target rows (sample_domain < 0), but {label} learns from unlabelled "
                    f"target data ({self.setting.quadrant}); set them to -1, which means 'no label'."
                )
            target = target.unlabelled()
        return source, target

    @property
    def n_features_in_(self) -> int:
        """Input features per sample (the product of the sample shape, for images)."""
        if not hasattr(self, "input_shape_"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet; n_features_in_ is set by fit.")
        return int(np.prod(self.input_shape_))

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(source, target) first.")

    def _check_X(self, X) -> np.ndarray:
        """``X`` as checked float32 (CSR where the estimator reads sparse inputs), refused unless the model
        is fitted on samples of that shape."""
        self._check_is_fitted()
        X = check_array(X, "X", accept_sparse=self._takes_sparse())
        if tuple(X.shape[1:]) != tuple(self.input_shape_):
            if X.ndim == 2 and len(self.input_shape_) == 1:  # scikit-learn's wording, for vectors
                check_n_features(X.shape[1], self.input_shape_[0], self)
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}; this model was fitted on {tuple(self.input_shape_)}."
            )
        return X

    @_accepts_sample_domain
    def predict(self, X) -> np.ndarray:
        """Predicted class labels, shape (n_samples,)."""
        self._check_is_fitted()
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X, y=None, sample_weight=None) -> float:
        """Accuracy on a labelled :class:`Domain` (or on ``X, y``; rows labelled -1 have no label and are skipped).

        Skipping the -1 rows is what makes ``GridSearchCV`` with ``sample_domain`` select on the
        labelled source rows of each fold, never on target labels.
        """
        if y is not None:
            y = np.asarray(y)
            known = ~unlabelled_rows(y)
            if not known.any():
                raise ValueError("score got only unlabelled rows (y == -1); expected some labelled samples.")
            X, y = check_array(X, "X")[known], y[known]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[known]
        domain = as_domain((X, y) if y is not None else X, "X")
        if domain.y is None:
            raise ValueError("score needs labels: pass a labelled Domain or score(X, y).")
        classes = getattr(self, "classes_", None)
        if classes is not None and not np.isin(domain.y, classes).any():  # accuracy 0 by construction
            raise ValueError(
                f"none of the labels scored ({_some(domain.y)}) is a class this model was fitted on "
                f"({_some(classes)}); are they of another kind (class names against numbers), or another file's?"
            )
        return float(np.average(self.predict(domain.X) == domain.y, weights=sample_weight))


class LearntFeatures:
    """``fit_transform`` for a method whose ``transform`` gives its learnt features."""

    def fit_transform(self, X, y=None, sample_domain=None) -> np.ndarray:
        """``fit(X, y, sample_domain)``, then the learnt features of ``X`` (scikit-learn's convention)."""
        return self.fit(X, y, sample_domain).transform(X.X if isinstance(X, Domain) else X)

    def _batched(self, X, fn, batch_size: int = 1024) -> np.ndarray:
        """``fn`` of the fitted network ``model_`` over ``X`` in batches, without gradients, on ``device``."""
        X = self._check_X(X)
        device = next(self.model_.parameters()).device
        if device.type != resolve_device(self.device).type:
            device = resolve_device(self.device)
            self.model_.to(device)
        self.model_.eval()
        out = []
        with torch.no_grad():
            for i in range(0, X.shape[0], batch_size):
                out.append(fn(to_batch(X[i : i + batch_size], device)).float().cpu().numpy())
        return np.concatenate(out)


class FeatureClassifierMethod(TransferMethod):
    """A feature transform (``_features``) followed by a scikit-learn classifier ``model_``.

    ``predict`` asks the classifier itself, so any classifier works (a linear SVM as in the CORAL
    paper); ``predict_proba`` needs one that has it, and says so otherwise.
    """

    def _features(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        """The classifier's labels on the transformed samples."""
        X = self._check_X(X)  # refuses an unfitted model before model_ is touched
        return self.model_.predict(self._features(X))

    def predict_proba(self, X) -> np.ndarray:
        """The classifier's class probabilities on the transformed samples."""
        X = self._check_X(X)
        if not hasattr(self.model_, "predict_proba"):
            raise AttributeError(
                f"estimator {type(self.model_).__name__} gives no probabilities; use predict, or an estimator "
                "with predict_proba (e.g. LogisticRegression)."
            )
        return self.model_.predict_proba(self._features(X))


@dataclass(eq=False, repr=False, kw_only=True)
class NeuralTransferMethod(LearntFeatures, TransferMethod):
    """A method trained by :func:`~transferkit.train.fit_loop` on a :class:`StagedNet`.

    Subclasses implement ``_objective(net, n_classes)``, returning the module whose forward
    computes the paper's training objective. Hyperparameters are dataclass fields: the training
    parameters every network shares are declared here once (documented in
    :class:`~transferkit.methods.dann.DANN`), and each subclass, decorated with
    ``@dataclass(eq=False, repr=False, kw_only=True)``, adds its own. The generated ``__init__`` is
    a real keyword-only signature that stores every argument unchanged, which scikit-learn's
    ``get_params``, ``set_params`` and ``clone`` read; ``eq=False, repr=False`` keep
    scikit-learn's identity and repr.
    """

    #: Checked at ``fit`` by scikit-learn's parameter validation, which names the parameter, the value
    #: and what is allowed; subclasses extend it with their own.
    _parameter_constraints = shared_constraints(
        "backbone", "feature_layer", "hidden", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
        "grad_clip", "lr_schedule", "seed", "device", "n_threads", "precision", "checkpoint_dir", "verbose",
    )  # fmt: skip

    backbone: object = "auto"
    feature_layer: str | None = None
    hidden: int = 50
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    lr_schedule: str = "constant"
    seed: int = 0
    device: str = "auto"
    n_threads: int | None = None
    precision: str = "float32"
    checkpoint_dir: str | None = None
    verbose: bool = False

    def _fit_config(self, desc: str) -> FitConfig:
        return FitConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            lr_schedule=self.lr_schedule,
            seed=self.seed,
            device=self.device,
            n_threads=self.n_threads,
            precision=self.precision,
            checkpoint_dir=self.checkpoint_dir,
            progress=self.verbose,
            desc=desc,
            identity=fit_identity(self),
        )

    def _build_net(self, input_shape: tuple[int, ...], n_classes: int) -> StagedNet:
        return network_for(self.backbone, self.feature_layer, self.hidden, input_shape, n_classes)

    def _rebuild_module(self, name: str) -> nn.Module | None:
        return self._build_net(self.input_shape_, len(self.classes_)) if name == "model_" else None

    def _objective(self, net: StagedNet, n_classes: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, source, target=None, sample_domain=None):
        """Fit on a labelled ``source`` :class:`Domain` and the ``target`` the setting asks for.

        Also ``fit(X, y, sample_domain=...)``, scikit-learn's convention (see :class:`TransferMethod`).
        """
        self._validate_params()  # before the data: a bad value is named, not met deep inside torch
        source, target = self._check_fit_data(source, target, sample_domain)
        t0 = time.perf_counter()
        self.classes_ = np.unique(source.y)
        select_epoch = getattr(self, "select_epoch", None)
        if select_epoch is not None:
            source, source_val = self._hold_out(source, target, select_epoch)
        y_idx = np.searchsorted(self.classes_, source.y)
        self.input_shape_ = source.feature_shape
        torch.manual_seed(self.seed)
        net = self._build_net(self.input_shape_, len(self.classes_))
        objective = self._objective(net, len(self.classes_))
        arrays_t = {"xt": target.X} if target is not None else None
        callbacks = []
        if getattr(self, "diagnostics", False) and target is not None:
            from transferkit.train.epoch_diagnostics import EpochDiagnostics

            callbacks.append(EpochDiagnostics(net, source.X, target.X, len(self.classes_), seed=self.seed))
        selector = None
        if select_epoch is not None:
            from transferkit.selection.epochs import BestWeights, EpochSelector
            from transferkit.selection.validators import get_validator

            objective.add_module("best_weights", BestWeights(net))  # checkpointed with the objective
            y_val = np.searchsorted(self.classes_, source_val.y)
            selector = EpochSelector(
                net, get_validator(select_epoch), source_val.X, y_val, target.X, objective.best_weights, seed=self.seed
            )
            callbacks.append(selector)
        # one representation for both domains: a sparse batch and a dense one cannot be stacked
        sparse = self._sparse(source.X) and (target is None or self._sparse(target.X))
        if arrays_t is not None:
            arrays_t["xt"] = self._batchable(target.X, sparse)
        self.fit_result_: FitResult = fit_loop(
            objective,
            {"xs": self._batchable(source.X, sparse), "ys": y_idx.astype(np.int64), **self._extra_source_arrays()},
            arrays_t,
            self._fit_config(self.name),
            on_epoch_end=_chain(callbacks),
        )
        self.history_ = self.fit_result_.history
        self.warnings_ = training_warnings(
            self.history_, n_classes=len(self.classes_), alignment="lambda_max" in self.get_params()
        )
        if selector is not None:
            self.selected_epoch_, why = selector.restore(last_epoch=len(self.history_))
            self.warnings_ += [why] if why else []
        for message in self.warnings_:
            warnings.warn(f"{type(self).__name__}: {message}", RuntimeWarning, stacklevel=2)
        self.objective_ = objective
        self.model_ = net.eval()
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _extra_source_arrays(self) -> dict:
        """Arrays batched with the source rows besides ``xs`` and ``ys`` (multi-source: each row's source)."""
        return {}

    def _takes_sparse(self) -> bool:
        """Our vector backbones read CSR inputs as they are: their first operation is a linear layer, which
        multiplies a sparse batch at the cost of its non-zeros, with the same result as the dense product."""
        return isinstance(self.backbone, str) and self.backbone in ("auto", "shallow", "shallow-bn")

    def _sparse(self, X) -> bool:
        """Whether ``X`` should train through sparse batches: a CSR matrix, or mostly zeros (bag-of-words)."""
        if not self._takes_sparse() or X.ndim != 2:
            return False
        return scipy.sparse.issparse(X) or mostly_zeros(X)

    def _batchable(self, X, sparse: bool):
        """``X`` as the training loop should batch it: CSR for sparse batches, else a dense array."""
        return scipy.sparse.csr_matrix(X) if sparse else densify(X)

    def _hold_out(self, source: Domain, target: Domain | None, validator: str):
        """Split off the labelled source sample that ``select_epoch`` validates on."""
        from transferkit.selection.search import split_source
        from transferkit.selection.validators import get_validator

        if get_validator(validator).uses_target_labels:
            raise ValueError(
                f"select_epoch={validator!r} reads target labels, which an estimator never sees; choose a "
                "label-free validator, or compare with the oracle through transferkit.selection.score_grid."
            )
        if target is None:
            raise ValueError(f"select_epoch={validator!r} scores adaptation to a target; this fit has no target.")
        return split_source(source, self.select_fraction, self.seed)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        return self._batched(X, lambda x: torch.softmax(self.model_(x), 1))

    def transform(self, X) -> np.ndarray:
        """The learnt features at the adapted stage (``model_.adapt_at``), flattened."""
        return self._batched(X, lambda x: self.model_.forward_to(x, self.model_.adapt_at).flatten(1))


@dataclass(eq=False, repr=False, kw_only=True)
class AdaptationMethod(NeuralTransferMethod):
    """A network adapted to an unlabelled target: adds the label-free diagnostics and epoch selection."""

    _parameter_constraints = {
        **NeuralTransferMethod._parameter_constraints,
        "diagnostics": ["boolean"],
        "select_epoch": [str, None],
        "select_fraction": [Interval(Real, 0, 1, closed="neither")],
        "lambda_max": [Interval(Real, 0, np.inf, closed="left")],
        "lambda_schedule": [StrOptions({"ganin", "constant"})],
    }

    diagnostics: bool = False
    select_epoch: str | None = None
    select_fraction: float = 0.2
