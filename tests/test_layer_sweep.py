"""The layer-transfer sweep (Yosinski et al. 2014) on a tiny synthetic pair of tasks."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from transferkit import Domain
from transferkit.advice.layer_sweep import (
    CONDITIONS,
    layer_transfer_sweep,
    plot_layer_sweep,
    summarize_layer_sweep,
    train_base,
    transfer_run,
)
from transferkit.nn.backbones import StagedNet

D, WIDTH = 10, 16
FAST = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp3(input_shape, n_classes) -> StagedNet:
    """Three dense layers (L = 3) and a head."""
    stages = OrderedDict(
        fc1=nn.Sequential(nn.Linear(input_shape[0], WIDTH), nn.ReLU()),
        fc2=nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU()),
        fc3=nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU()),
    )
    return StagedNet(stages, nn.Linear(WIDTH, n_classes), WIDTH)


def blobs(classes, n_per_class, seed):
    """Gaussian classes around fixed random centres (the same centre for a class in every call)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(0, 2.0, (10, D))
    y = np.repeat(np.asarray(classes), n_per_class)
    return Domain(centres[y] + rng.normal(0, 1.0, (len(y), D)), y, f"blobs{list(classes)}")


@pytest.fixture(scope="module")
def tasks():
    a, b = (0, 1, 2), (3, 4, 5)
    return {"a": blobs(a, 40, 1), "b": blobs(b, 40, 2), "test_a": blobs(a, 20, 3), "test_b": blobs(b, 20, 4)}


def layer_state(net: StagedNet, name: str) -> dict:
    return {k: v.detach().clone() for k, v in net.stages[name].state_dict().items()}


def same(s1: dict, s2: dict) -> bool:
    return all(torch.equal(s1[k], s2[k]) for k in s1)


def dist(s1: dict, s2: dict) -> float:
    return float(sum(((s1[k] - s2[k]) ** 2).sum() for k in s1) ** 0.5)


def test_records_complete(tasks):
    records = layer_transfer_sweep(
        tasks["a"], tasks["b"], tasks["test_b"], backbone=mlp3, seeds=[0, 1], split="toy", progress=False, **FAST
    )
    expected = {(s, c, 0) for s in (0, 1) for c in ("baseA", "baseB")}
    expected |= {(s, c, n) for s in (0, 1) for c in CONDITIONS for n in (1, 2, 3)}
    assert len(records) == len(expected) == 28
    assert {(r["seed"], r["condition"], r["n"]) for r in records} == expected
    keys = {"split", "seed", "condition", "n", "copied", "run_seed", "accuracy", "seconds", "epochs"}
    for r in records:
        assert set(r) == keys
        assert r["split"] == "toy" and r["epochs"] == 2
        assert r["copied"] == ",".join(["fc1", "fc2", "fc3"][: r["n"]])
        if r["condition"] == "baseA":
            assert math.isnan(r["accuracy"])  # no test_a given
        else:
            assert 0.0 <= r["accuracy"] <= 1.0
    # every network is its own draw: no two runs share an initialisation and batch order
    assert len({r["run_seed"] for r in records}) == len(records)


def test_bnb_with_every_layer_is_baseB(tasks):
    """BnB at n = L copies all of B's layers and freezes them: only the new head is trained."""
    base = train_base(tasks["b"], tasks["test_b"], backbone=mlp3, seed=0, **FAST)
    run = transfer_run(
        base.model, tasks["b"], tasks["b"], tasks["test_b"], 3, condition="BnB", backbone=mlp3, seed=0, **FAST
    )
    for name in ("fc1", "fc2", "fc3"):
        assert same(layer_state(run.model, name), layer_state(base.model, name))
    X = torch.from_numpy(tasks["test_b"].X)
    with torch.no_grad():
        assert torch.equal(run.model.forward_features(X), base.model.forward_features(X))
        assert not torch.equal(run.model.head.weight, base.model.head.weight)  # the head is always new
    assert run.record["copied"] == "fc1,fc2,fc3"


def test_anb_frozen_layers_are_a_and_fine_tuned_ones_start_there(tasks):
    base_a = train_base(tasks["a"], tasks["test_a"], backbone=mlp3, seed=0, role="baseA", **FAST)
    base_b = train_base(tasks["b"], tasks["test_b"], backbone=mlp3, seed=0, **FAST)
    args = (base_a.model, tasks["a"], tasks["b"], tasks["test_b"], 2)
    frozen = transfer_run(*args, condition="AnB", backbone=mlp3, seed=0, **FAST)
    for name in ("fc1", "fc2"):
        assert same(layer_state(frozen.model, name), layer_state(base_a.model, name))
    assert not same(layer_state(frozen.model, "fc3"), layer_state(base_a.model, "fc3"))  # fresh, not copied

    tuned = transfer_run(*args, condition="AnB+", backbone=mlp3, seed=0, **FAST)
    for name in ("fc1", "fc2"):
        a, t, b = layer_state(base_a.model, name), layer_state(tuned.model, name), layer_state(base_b.model, name)
        assert not same(t, a)  # fine-tuned on B ...
        assert dist(t, a) < 0.5 * dist(b, a)  # ... from A's weights, not from a fresh draw


def test_sweep_is_reproducible_and_subsets(tasks):
    kw = {"backbone": mlp3, "ns": [2], "conditions": ["AnB"], "seeds": [3], "progress": False, **FAST}
    r1 = layer_transfer_sweep(tasks["a"], tasks["b"], tasks["test_b"], test_a=tasks["test_a"], **kw)
    r2 = layer_transfer_sweep(tasks["a"], tasks["b"], tasks["test_b"], test_a=tasks["test_a"], **kw)
    assert [(r["condition"], r["n"]) for r in r1] == [("baseA", 0), ("baseB", 0), ("AnB", 2)]
    assert [r["accuracy"] for r in r1] == [r["accuracy"] for r in r2]
    assert 0.0 <= r1[0]["accuracy"] <= 1.0  # baseA scored on test_a


def test_summary_and_plot(tasks, tmp_path):
    records = layer_transfer_sweep(
        tasks["a"],
        tasks["b"],
        tasks["test_b"],
        backbone=mlp3,
        ns=[1, 3],
        seeds=[0],
        split="toy",
        progress=False,
        **FAST,
    )
    rows = summarize_layer_sweep(records)
    assert [r["condition"] for r in rows] == ["baseB", *CONDITIONS]  # baseA has no test accuracy here
    assert list(rows[0]) == ["condition", "n=0", "n=1", "n=3"]
    acc = {(r["condition"], r["n"]): r["accuracy"] for r in records}
    assert rows[1]["n=3"] == f"{acc[('BnB', 3)]:.4f} ± 0.0000"
    assert rows[0]["n=0"] == f"{acc[('baseB', 0)]:.4f} ± 0.0000" and rows[0]["n=1"] == ""
    path = plot_layer_sweep(records + [{**r, "split": "other"} for r in records], tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_refused(tasks):
    a, b, tb = tasks["a"], tasks["b"], tasks["test_b"]
    kw = {"backbone": mlp3, "progress": False}
    with pytest.raises(ValueError, match="disjoint"):
        layer_transfer_sweep(a, blobs((2, 3), 5, 0), tb, **kw)
    with pytest.raises(ValueError, match="test_b .* has no labels"):
        layer_transfer_sweep(a, b, tb.unlabelled(), **kw)
    with pytest.raises(TypeError, match="data_a is a tuple"):
        layer_transfer_sweep((a.X, a.y), b, tb, **kw)
    with pytest.raises(ValueError, match="never shows"):
        layer_transfer_sweep(a, b, blobs((3, 6), 5, 0), **kw)
    with pytest.raises(ValueError, match=r"ns=\[4\]; expected numbers of copied layers in 1\.\.3"):
        layer_transfer_sweep(a, b, tb, ns=[4], **kw)
    with pytest.raises(ValueError, match="conditions"):
        layer_transfer_sweep(a, b, tb, conditions=["AnA"], **kw)
    with pytest.raises(ValueError, match="seeds"):
        layer_transfer_sweep(a, b, tb, seeds=[], **kw)
    with pytest.raises(ValueError, match="epochs=0"):
        layer_transfer_sweep(a, b, tb, epochs=0, **kw)
    with pytest.raises(ValueError, match="backbone='resnet'"):
        layer_transfer_sweep(a, b, tb, backbone="resnet", progress=False)
    with pytest.raises(ValueError, match="condition='baseB'"):
        transfer_run(mlp3((D,), 3), a, b, tb, 1, condition="baseB", backbone=mlp3)
