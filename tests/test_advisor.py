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
        return negative_transfer._verdict(np.array([0.2, 0.3, 0.2]), np.array([0.6, 0.7, 0.6]), 1.0, 3)

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


def test_only_methods_that_can_run_on_the_data_are_offered(task):
    names = lambda advice: {m["name"] for m in advice.methods}  # noqa: E731
    tabular = names(advise({"blobs": task.source}, task.target, epochs=1))
    assert {"dann", "coral", "tca"} <= tabular
    assert not tabular & {"dap", "attribute-embedding", "devise", "conse", "transitive"}  # no descriptions, no pool
    described = names(advise({"a": task.source, "b": task.source}, task.target, epochs=1, class_descriptions=True))
    assert {"dap", "devise", "transitive"} <= described
    images = Domain(np.zeros((40, 1, 4, 4), np.float32) + np.arange(40)[:, None, None, None] % 3, np.arange(40) % 2)
    offered = names(advise({"img": images}, images.unlabelled(), epochs=1))
    assert "dann" in offered and not offered & {"coral", "tca"}  # these take feature vectors


def test_every_number_printed_is_explained(task):
    text = advise({"blobs": task.source}, task.target, epochs=1).to_text()
    assert "a_distance" in text and "0 indistinguishable, 2 perfectly separable" in text
    text = advise({"blobs": task.source}, task.target_test.few_shot(10, seed=0), epochs=2).to_text()
    for name in ("logme", "leep", "nce", "gain", "std_err"):
        assert f"  {name:<10} " in text.split("What the numbers mean:")[1]


def test_advise_command_preprocesses_and_offers_zero_shot_only_when_asked(capsys):
    import json

    from transferkit.cli import main

    args = ["advise", "--source", "demo:mnist", "--target", "demo:usps", "--epochs", "1", "--json"]
    assert main([*args, "--preprocess", "standardize-domain"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "dap" not in {m["name"] for m in plain["methods"]}
    assert main([*args, "--class-descriptions"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert "dap" in {m["name"] for m in described["methods"]}
    assert plain["ranking"][0]["a_distance"] != described["ranking"][0]["a_distance"]  # the transform reached it
