"""Train once, predict later: every method saved to a folder and loaded back, without pickle."""

import json
import pickle

import numpy as np
import pytest

from transferkit import Domain, load
from transferkit.datasets import make_blobs_shift
from transferkit.methods import CLUSTERING, MANY_TASKS, POOLED, REGISTRY, REGRESSORS, ZERO_SHOT
from transferkit.persist import FORMAT_VERSION, MANIFEST
from transferkit.semantics import ClassDescriptions

FAST = {"epochs": 1, "source_epochs": 1, "pretrain_epochs": 1, "n_estimators": 2, "n_components": 2}
SMALL = {
    "auto": {"candidates": {"dann": {}}, "n_resamples": 20},
    "stc": {"n_feature_clusters": 2},
    "itcc": {"n_feature_clusters": 2},
    "meda": {"n_components": 1},  # two features: one-dimensional subspaces (the geodesic needs 2d <= D)
}


@pytest.fixture(scope="module")
def task():
    return make_blobs_shift(n_source=90, n_target=90, seed=0)


def _make(cls, **extra):
    params = cls().get_params()
    return cls(**{k: v for k, v in {**FAST, **SMALL.get(cls.name, {}), **extra}.items() if k in params})


def _fit(cls, task):
    """A small fit of ``cls``, and what its predictions are read from."""
    est = _make(cls)
    X = task.target_test.X
    if cls.name in MANY_TASKS:
        y = task.source.y
        if cls.name == "multitask":
            est.fit({"a": (task.source.X, y), "b": (task.source.X, y % 2)})
        else:
            est.add_task("a", task.source.X, y)
            est.add_task("b", task.source.X, y % 2)
        return est, lambda e: e.predict(X, task="b")
    if cls.name in ZERO_SHOT:
        descriptions = ClassDescriptions(vectors=np.eye(4, dtype=np.float32), names=list("abcd"), labels=np.arange(4))
        return est.fit(task.source.X, task.source.y, descriptions), lambda e: e.predict(X)
    if cls.name in CLUSTERING:
        counts = np.abs  # co-clustering reads non-negative data
        est.fit(counts(task.target.X), counts(task.source.X)) if cls.name == "stc" else est.fit(counts(task.target.X))
        return est, lambda e: e.labels_
    if cls.name in POOLED:
        bridge = Domain(0.5 * (task.source.X[:60] + task.target.X[:60]), None, "bridge")
        return _make(cls, base="dann").fit(task.source, task.target, [bridge]), lambda e: e.predict(X)
    source, target = task.source, task.target
    if getattr(cls, "task", "") == "regression":
        source, target = Domain(source.X, source.y.astype(float)), Domain(task.target_test.X, task.target_test.y * 1.0)
    elif cls.setting.target_labels:
        target = task.target_test
    if not cls.setting.source_labels:
        source = source.unlabelled()
    est.fit(source, target if cls.setting.target else None)
    if hasattr(est, "predict_proba") and getattr(cls, "task", "") != "regression":
        return est, lambda e: e.predict_proba(X)
    return est, lambda e: e.predict(X)


EVERY = sorted({**REGISTRY, **REGRESSORS, **ZERO_SHOT, **MANY_TASKS, **CLUSTERING, **POOLED}.items())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name,cls", EVERY, ids=[n for n, _ in EVERY])
def test_a_saved_model_predicts_as_the_fitted_one(name, cls, task, tmp_path):
    est, predicted = _fit(cls, task)
    est.save(tmp_path / "model")
    back = load(tmp_path / "model")
    assert type(back) is cls and back.get_params().keys() == est.get_params().keys()
    np.testing.assert_array_equal(predicted(back), predicted(est))
    for path in (tmp_path / "model").rglob("*"):  # nothing in the folder is a pickle
        assert not path.is_file() or not path.read_bytes().startswith(b"\x80"), path


class _Foreign:
    """Any class of another package: skops would rebuild it, so it must be refused."""

    def __init__(self):
        self.x = 1


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def _saved(task, tmp_path):
    from transferkit import CORAL

    path = tmp_path / "model"
    CORAL().fit(task.source, task.target).save(path)
    return path


def test_loading_never_executes_a_payload(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _saved(task, tmp_path)
    (path / "model_.skops").write_bytes(pickle.dumps(_Boom()))  # a pickle where the classifier was
    with pytest.raises(ValueError):
        load(path)
    path = _saved(task, tmp_path)
    (path / "arrays.safetensors").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ValueError, match="arrays.safetensors is damaged"):
        load(path)
    assert not (tmp_path / "PWNED").exists()


def test_a_skops_file_with_foreign_types_is_refused(task, tmp_path):
    import skops.io

    path = _saved(task, tmp_path)
    (path / "model_.skops").write_bytes(skops.io.dumps(_Foreign()))
    with pytest.raises(ValueError, match="holds types outside scikit-learn.*_Foreign"):
        load(path)


def _edit_manifest(path, **changes):
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(changes)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_a_newer_format_another_class_or_an_interrupted_save_is_refused(task, tmp_path):
    path = _saved(task, tmp_path)
    _edit_manifest(path, format_version=FORMAT_VERSION + 1, transferkit_version="9.0")
    with pytest.raises(ValueError, match=r"saved by transferkit 9.0 in format version 2.*Upgrade transferkit"):
        load(path)
    path = _saved(task, tmp_path)
    _edit_manifest(path, method="tca")
    with pytest.raises(ValueError, match="holds a CORAL, but 'tca' is TCA"):
        load(path)
    _edit_manifest(path, format="something-else")
    with pytest.raises(ValueError, match="is not a transferkit model"):
        load(path)
    (path / MANIFEST).unlink()
    with pytest.raises(ValueError, match="not a saved transferkit model, or its save was interrupted"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load(tmp_path / "nowhere")


def test_a_network_that_does_not_fit_its_settings_is_refused(task, tmp_path):
    from transferkit import DANN

    path = tmp_path / "dann"
    DANN(epochs=1, hidden=8).fit(task.source, task.target).save(path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["params"]["hidden"] = {"json": 16}
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not fit the one DANN's settings build"):
        load(path)


def test_what_cannot_be_saved_is_refused_by_name(task, tmp_path):
    from torch import nn

    from transferkit import CORAL, DANN

    with pytest.raises(ValueError, match="not fitted yet"):
        CORAL().save(tmp_path / "a")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        CORAL().fit(task.source, task.target).save(tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").exists()
    from transferkit.nn.backbones import build_backbone

    net = build_backbone("shallow", (2,), 3, hidden=8)
    assert isinstance(net, nn.Module)
    model = DANN(backbone=net, epochs=1).fit(task.source, task.target)
    with pytest.raises(ValueError, match="backbone is a .* module; a saved model rebuilds its network"):
        model.save(tmp_path / "b")


def test_saving_again_replaces_an_earlier_save(task, tmp_path):
    from transferkit import CORAL

    path = _saved(task, tmp_path)
    CORAL(reg=5.0).fit(task.source, task.target).save(path)
    assert load(path).reg == 5.0


def test_a_model_saved_before_a_parameter_existed_loads_with_the_value_it_was_built_with(task, tmp_path):
    from transferkit import SHOT

    path = tmp_path / "shot"
    model = SHOT(epochs=1, source_epochs=2, hidden=8, bottleneck=4, bottleneck_design="ddc")
    model.fit(task.source, task.target).save(path)
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["params"]["bottleneck_design"]  # as saved before SHOT had the paper's bottleneck
    del manifest["params"]["refresh_statistics"]  # ... and before it refreshed its BatchNorm statistics
    (path / MANIFEST).write_text(json.dumps(manifest))
    loaded = load(path)
    assert loaded.bottleneck_design == "ddc" and loaded.refresh_statistics is False
    np.testing.assert_array_equal(loaded.predict(task.target_test.X), model.predict(task.target_test.X))
