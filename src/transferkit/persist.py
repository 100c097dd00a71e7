"""Train once, predict later: a fitted estimator saved to a folder and loaded back, without pickle.

``est.save(path)`` writes a folder:

``transferkit.json``
    The manifest, written last (a folder without it is an interrupted save and is refused): the
    format and its version, the library version, the method, its hyperparameters, and how each
    fitted attribute is stored.
``arrays.safetensors``
    Every numeric array and every network's weights (safetensors: tensors and a JSON header only).
``NAME.skops``
    scikit-learn parts (a classifier on top of learnt features, boosting's base learners), in
    skops' format, loaded with only scikit-learn, NumPy, SciPy and transferkit types trusted.
``NAME/``
    A nested transferkit estimator (Auto's choice), saved the same way.

:func:`load` rebuilds the estimator from its hyperparameters, rebuilds each network from them and
the saved shapes, and loads the weights; nothing in the folder is executed. What a model needs only
to go on training (the optimiser's objective, the source network of fine-tuning, the domain
classifier of DANN) is not saved; the manifest lists it under ``dropped``. A loaded model predicts,
transforms and scores exactly as the saved one did.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from transferkit.methods.registry import method_named, registered

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "transferkit-model"
#: Bumped whenever a saved folder changes in a way an older reader cannot follow.
FORMAT_VERSION = 1
MANIFEST = "transferkit.json"
ARRAYS = "arrays.safetensors"
#: Modules whose types a skops file may hold; anything else is refused unread.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "transferkit.", "builtins.")
#: Fitted attributes that only training needs; a loaded model predicts without them.
TRAINING_ONLY = ("objective_", "source_model_", "discriminator_", "source_state_")


def _version() -> str:
    from transferkit._version import __version__

    return __version__


def _plain(value) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (numbers, strings, lists, dicts of them)."""
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return not (isinstance(value, float) and not math.isfinite(value))
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class _Writer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.tensors: dict = {}

    def encode(self, name: str, value, what: str):
        """The manifest entry of ``value``; its data goes to the arrays file, a skops file or a sub-folder."""
        import torch
        from sklearn.base import BaseEstimator
        from torch import nn

        if isinstance(value, np.generic):
            value = value.item()
        if _plain(value):
            return {"json": value}
        if isinstance(value, float):  # nan or inf
            return {"float": repr(value)}
        if isinstance(value, tuple) and _plain(list(value)):
            return {"tuple": list(value)}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                key = f"array:{name}"
                self.tensors[key] = torch.from_numpy(np.array(value, copy=True, order="C"))  # never shares memory
                return {"array": key}
            if value.dtype.kind in "OU" and value.ndim == 1 and _plain(value.tolist()):
                return {"strings": value.tolist(), "dtype": "object" if value.dtype.kind == "O" else "str"}
        if isinstance(value, nn.Module):
            for k, t in value.state_dict().items():
                self.tensors[f"module:{name}.{k}"] = t.detach().cpu().contiguous()
            return {"module": name}
        if registered(type(value)):
            save(value, self.folder / name)
            return {"estimator": name}
        if isinstance(value, list) and value and all(registered(type(v)) for v in value):  # transitive's steps
            for i, v in enumerate(value):
                save(v, self.folder / f"{name}.{i}")
            return {"estimators": [f"{name}.{i}" for i in range(len(value))]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):  # per-task attributes
            return {"dict": {k: self.encode(f"{name}.{k}", v, what) for k, v in value.items()}}
        if isinstance(value, (list, tuple)) and not any(_is_module(v) for v in value):
            return {"list": [self.encode(f"{name}.{i}", v, what) for i, v in enumerate(value)]}
        if type(value).__name__ == "ClassDescriptions":  # a zero-shot method's class table
            fields = {f: getattr(value, f) for f in ("vectors", "names", "labels", "kind", "dim_names")}
            return {"descriptions": {f: self.encode(f"{name}.{f}", v, what) for f, v in fields.items()}}
        if isinstance(value, BaseEstimator) or (
            isinstance(value, list) and value and all(isinstance(v, BaseEstimator) for v in value)
        ):
            import skops.io

            try:
                data = skops.io.dumps(value)
            except (TypeError, NotImplementedError) as err:  # e.g. a network inside a scikit-learn wrapper
                raise ValueError(f"{what} {name} cannot be saved without pickle ({err}).") from None
            (self.folder / f"{name}.skops").write_bytes(data)
            return {"skops": f"{name}.skops"}
        raise ValueError(
            f"{what} {name}={type(value).__name__} cannot be saved without pickle; expected numbers, strings, "
            "arrays, networks built from the estimator's settings, or scikit-learn estimators."
        )


def save(estimator, path) -> Path:
    """Save the fitted ``estimator`` to the folder ``path`` (created; an earlier save there is replaced)."""
    from safetensors.torch import save_file

    if not registered(type(estimator)):
        raise ValueError(f"estimator is a {type(estimator).__name__}; expected a fitted transferkit method.")
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(estimator)):
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet; fit it before saving it.")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path {folder} is a file; expected a folder to save the model into.")
    params, dropped = {}, []
    for k, v in estimator.get_params(deep=False).items():
        if k == "checkpoint_dir":  # a run setting of the machine that trained it
            v = None
        if _is_source(v):
            if k == "backbone":
                raise ValueError(
                    f"backbone is a {type(v).__name__} module; a saved model rebuilds its network from its settings, "
                    "which a module given as an object is not. Save est.model_.state_dict() with safetensors "
                    "and rebuild the module in your code."
                )
            dropped.append(k)  # a source network to transfer from: training needs it, predicting does not
            v = None
        params[k] = v
    if folder.exists() and any(folder.iterdir()) and not (folder / MANIFEST).exists():
        raise ValueError(f"path {folder} holds other files; expected a new folder or an earlier saved model.")
    try:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    except OSError as err:
        raise ValueError(f"path {folder}: cannot write the model there ({err.strerror}).") from None
    w = _Writer(folder)
    params = {k: w.encode(f"param.{k}", v, "hyperparameter") for k, v in params.items()}
    attributes = {}
    for k, v in vars(estimator).items():
        if not k.endswith("_") or k.startswith("_"):
            continue
        if k in TRAINING_ONLY or k.endswith("_result_") or (_is_module(v) and estimator._rebuild_module(k) is None):
            dropped.append(k)  # what only training needs, or a network no setting describes (Auto's alias)
            continue
        attributes[k] = w.encode(k, v, "fitted attribute")
    save_file(w.tensors, str(folder / ARRAYS))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "transferkit_version": _version(),
        "method": type(estimator).name,
        "class": type(estimator).__name__,
        "params": params,
        "attributes": attributes,
        "dropped": dropped,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: its presence marks a complete save
    return folder


def _is_module(value) -> bool:
    from torch import nn

    return isinstance(value, nn.Module)


def _is_source(value) -> bool:
    """A network to transfer from, or a list of them (MS-SHOT's)."""
    if isinstance(value, (list, tuple)) and value:
        return all(_is_module(v) for v in value)
    return _is_module(value)


class _Reader:
    def __init__(self, folder: Path, tensors: dict):
        self.folder = folder
        self.tensors = tensors

    def decode(self, name: str, spec: dict):
        kind, value = next(iter(spec.items()))
        if kind == "json":
            return value
        if kind == "float":
            return float(value)
        if kind == "tuple":
            return tuple(value)
        if kind == "strings":
            return np.array(value, dtype=object if spec.get("dtype") == "object" else str)
        if kind == "array":
            return self.tensors[value].numpy()
        if kind == "module":
            prefix = f"module:{value}."
            return {k[len(prefix) :]: t for k, t in self.tensors.items() if k.startswith(prefix)}
        if kind == "estimator":
            return load(self.folder / value)
        if kind == "estimators":
            return [load(self.folder / v) for v in value]
        if kind == "dict":
            return {k: self.decode(f"{name}.{k}", v) for k, v in value.items()}
        if kind == "list":
            return [self.decode(f"{name}.{i}", v) for i, v in enumerate(value)]
        if kind == "descriptions":
            from transferkit.semantics import ClassDescriptions

            return ClassDescriptions(**{f: self.decode(f"{name}.{f}", v) for f, v in value.items()})
        if kind == "skops":
            return _load_skops(self.folder / value)
        raise ValueError(f"{self.folder / MANIFEST}: {name} is stored as {kind!r}, which this version cannot read.")


def _load_skops(path: Path):
    import zipfile

    import skops.io

    data = path.read_bytes()
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is damaged or not a skops file ({type(err).__name__}: {err}).") from None
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if foreign:
        raise ValueError(f"{path} holds types outside scikit-learn, NumPy and SciPy ({', '.join(foreign)}); refused.")
    return skops.io.loads(data, trusted=untrusted)


def load(path):
    """The estimator saved in the folder ``path`` by ``est.save(path)``; nothing in it is executed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path {folder}: no such folder; expected a model saved with est.save(path).")
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise ValueError(f"{folder} has no {MANIFEST}: not a saved transferkit model, or its save was interrupted.")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{manifest_path} is damaged ({err}); save the model again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path} is not a transferkit model (format {manifest.get('format')!r}).")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{folder} was saved by transferkit {manifest.get('transferkit_version')} in format version {version}; "
            f"this transferkit ({_version()}) reads format versions up to {FORMAT_VERSION}. Upgrade transferkit."
        )
    cls = method_named(manifest.get("method"))
    if cls.__name__ != manifest.get("class"):
        raise ValueError(f"{folder} holds a {manifest.get('class')}, but {manifest.get('method')!r} is {cls.__name__}.")
    try:
        tensors = load_file(str(folder / ARRAYS))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{folder / ARRAYS} is damaged or missing ({err}); save the model again.") from None
    r = _Reader(folder, tensors)
    params = {k: r.decode(f"param.{k}", spec) for k, spec in manifest["params"].items()}
    # a parameter added after the model was saved: the value that reproduces the saved network
    est = cls(**{**getattr(cls, "_absent_params_mean", {}), **params})
    modules = {}
    for k, spec in manifest["attributes"].items():
        value = r.decode(k, spec)
        if "module" in spec:
            modules[k] = value
        else:
            setattr(est, k, value)
    for k, state in modules.items():  # last: a network's shape comes from the other fitted attributes
        net = est._rebuild_module(k)
        if net is None:
            raise ValueError(f"{folder}: the network {k} cannot be rebuilt by {cls.__name__}.")
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise ValueError(
                f"{folder}: the saved network does not fit the one {cls.__name__}'s settings build ({first})."
            ) from None
        setattr(est, k, net.eval())
    return est
