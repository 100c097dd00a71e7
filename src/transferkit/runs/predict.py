"""``transferkit predict``: a saved model applied to new samples, with the preprocessing it was trained with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit.runs.inputs import transform_from
from transferkit.runs.options import UsageError
from transferkit.runs.outputs import INPUTS

__all__ = ["Predictions", "model_folder", "predict_file"]


@dataclass
class Predictions:
    """One prediction per input sample, each with the sample's row in the file (or the image's path)."""

    index: list
    predictions: np.ndarray
    accuracy: float | None
    method: str


def model_folder(path) -> Path:
    """The saved model's folder: ``path`` itself, or ``path/model`` for a run's ``--out`` folder."""
    from transferkit.persist import MANIFEST

    path = Path(path)
    if not path.exists():
        raise UsageError(f"--model {path}: no such folder; expected a run's --out folder or a saved model.")
    if (path / "model" / MANIFEST).exists():
        return path / "model"
    if not (path / MANIFEST).exists():
        raise UsageError(
            f"--model {path}: no saved model there; `transferkit run ... --out DIR` saves one in DIR/model."
        )
    return path


def predict_file(model, input_path, label_column: str | None = None, task: str | None = None) -> Predictions:
    """Apply the model saved at ``model`` to the samples of ``input_path`` (a CSV or .npz file, or an image folder)."""
    from transferkit.datasets.files import image_files, load_file
    from transferkit.persist import load

    folder = model_folder(model)
    inputs = {"preprocess": {"preprocess": "none"}, "features": "none", "label_column": "label", "feature_shape": None}
    if (folder / INPUTS).exists():
        inputs.update(json.loads((folder / INPUTS).read_text()))
    if inputs["features"] != "none":
        raise UsageError(
            f"--model {model} was trained on --features {inputs['features']}, learnt from its training data and "
            "not saved with the model; predict applies models trained on the inputs as they are."
        )
    est = load(folder)
    if hasattr(est, "labels_") and not hasattr(est, "predict"):
        raise UsageError(
            f"--model {model} is a clustering ({type(est).__name__}): it labels the data it was fitted on."
        )
    shape = inputs["feature_shape"]
    path = Path(input_path)
    if not path.exists():
        raise UsageError(f"--input {path}: no such file or folder.")
    image_size = tuple(shape[-2:]) if shape is not None and len(shape) == 3 and path.is_dir() else None
    domain = load_file(path, label_column=label_column or inputs["label_column"], image_size=image_size)
    if shape is not None and list(domain.X.shape[1:]) != list(shape):  # before the transform, which needs it too
        raise UsageError(
            f"--input {path} has samples of shape {tuple(domain.X.shape[1:])}; the model takes {tuple(shape)}."
        )
    X = transform_from(inputs["preprocess"])(domain.X)
    tasks = getattr(est, "tasks_", None)
    if tasks is not None:
        if task not in tasks:
            raise UsageError(f"--task: {type(est).__name__} predicts for one of its tasks; name one of {tasks}.")
        predictions = est.predict(X, task=task)
    else:
        if task is not None:
            raise UsageError(f"--task {task}: {type(est).__name__} learns one task; drop the flag.")
        predictions = est.predict(X)
    if path.is_dir():
        index = [str(f.relative_to(path)) for f, _ in image_files(path)]
    else:
        index = list(range(len(X)))
    accuracy = None
    if domain.y is not None and getattr(est, "task", "classification") != "regression":
        accuracy = float(np.mean(predictions == domain.y))
    return Predictions(index, predictions, accuracy, type(est).name)
