"""The advisor: quadrants, methods, source rankings with and without target labels, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import Domain
from transferkit.advice.advisor import advise
from transferkit.datasets import make_blobs_shift


@pytest.fixture(scope="module")
def task():
    return make_blobs_shift(n_classes=3, n_source=300, n_target=300, seed=0)


@pytest.mark.parametrize(
    "source_labels,target_labels,quadrant,member",
    [
        (True, True, "labelled source, labelled target", "finetune"),
        (True, False, "labelled source, unlabelled target", "dann"),
        (False, True, "unlabelled source, labelled target", "self-taught"),
        (False, False, "unlabelled source, unlabelled target", "stc"),
    ],
)
def test_quadrant_and_methods(task, source_labels, target_labels, quadrant, member):
    source = task.source if source_labels else task.source.unlabelled()
    target = task.target_test if target_labels else task.target
    advice = advise({"blobs": source}, target, epochs=2)
    assert advice.quadrant == quadrant
    assert member in [m["name"] for m in advice.methods]
    assert advice.ranking and advice.to_text().startswith(f"You are in the quadrant: {quadrant}")


def test_a_useless_source_ranks_last(task):
    rng = np.random.default_rng(0)
    useless = Domain(rng.normal(size=task.source.X.shape).astype(np.float32), rng.integers(0, 3, len(task.source)))
    target = task.target_test.few_shot(15, seed=0)
    advice = advise({"related": task.source, "noise": useless}, target, epochs=20)
    assert [r["source"] for r in advice.ranking] == ["related", "noise"]
    related, noise = advice.ranking
    assert related["logme"] > noise["logme"] and related["leep"] > noise["leep"]
    assert {"gain", "std_err", "verdict"} <= set(noise)  # the flag itself: tests/test_negative_transfer.py


def test_the_finetune_check_trains_networks_and_warns_in_words(task, monkeypatch):
    from transferkit.advice import negative_transfer

    calls = []

    def fake_finetune_gain(model, X, y, **kw):  # a stand-in that says "hurts", to see it reach the advice
        calls.append(kw)
        return negative_transfer._verdict(np.array([0.2, 0.3, 0.2]), np.array([0.6, 0.7, 0.6]), 1.0)

    monkeypatch.setattr(negative_transfer, "finetune_gain", fake_finetune_gain)
    advice = advise({"s": task.source}, task.target_test.few_shot(5, seed=0), epochs=1, check="finetune")
    assert calls and calls[0]["epochs"] == 30
    assert advice.ranking[0]["verdict"] == "likely negative"
    assert "fine-tuning its network" in advice.warnings[0]
    with pytest.raises(ValueError, match="check='both'"):
        advise({"s": task.source}, task.target_test.few_shot(5, seed=0), check="both")


def test_without_target_labels_the_nearer_source_ranks_first(task):
    near = Domain(task.target.X + 0.05, None)  # nearly the target's own distribution
    advice = advise({"shifted": task.source.unlabelled(), "near": near}, task.target)
    assert advice.ranking[0]["source"] == "near" and "A-distance" in advice.ranked_by
    assert advice.as_dict()["ranking"][0]["a_distance"] < advice.ranking[1]["a_distance"]


def test_bad_input(task):
    with pytest.raises(ValueError, match="sources is empty"):
        advise({}, task.target)
    with pytest.raises(ValueError, match="single class"):
        advise({"s": task.source}, Domain(task.target.X, np.zeros(len(task.target), dtype=int)))
    with pytest.raises(ValueError, match=r"source 'wide' has samples of shape \(3,\)"):
        advise({"wide": Domain(np.zeros((10, 3)), None)}, task.target)
