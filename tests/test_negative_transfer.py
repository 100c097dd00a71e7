"""The negative-transfer check: a useful source representation, a harmful one, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.advice.negative_transfer import transfer_gain


def target(seed=0, n=120, d=20):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d))
    X[:, 0] += 1.0 * (2 * y - 1)  # a weak signal in the raw inputs
    return X, y


def test_a_representation_that_exposes_the_labels_is_positive():
    X, y = target()
    good = np.column_stack([3.0 * (2 * y - 1) + np.random.default_rng(1).normal(size=len(y)), X[:, :2]])
    r = transfer_gain(good, X, y)
    assert r.verdict == "likely positive" and r.gain > 0.1
    assert r.transfer.shape == r.target_only.shape == (5,)


def test_a_representation_that_discards_the_labels_is_negative():
    X, y = target()
    bad = np.random.default_rng(2).normal(size=(len(y), 5))  # the source's features know nothing of y
    r = transfer_gain(bad, X, y)
    assert r.verdict == "likely negative" and r.likely_negative and r.gain < 0
    assert set(r.as_dict()) == {"transfer_accuracy", "target_only_accuracy", "gain", "std_err", "verdict"}


def test_the_same_view_twice_is_uncertain():
    X, y = target()
    r = transfer_gain(X, X, y)
    assert r.gain == 0 and r.verdict == "uncertain"


def test_bad_input():
    X, y = target()
    with pytest.raises(ValueError, match="X_transfer has 119 samples, X_target 120 and y 120"):
        transfer_gain(X[:-1], X, y)
    with pytest.raises(ValueError, match="single class"):
        transfer_gain(X, X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="at least 2 per class"):
        transfer_gain(X, X, np.r_[np.zeros(len(y) - 1), 1])


def test_finetune_gain_sees_a_helpful_and_a_harmful_source_network(blobs):
    """A network trained on plenty of source data helps 5-shot learning; one whose body is dead hurts."""
    import torch

    from transferkit import SourceOnly
    from transferkit.advice.negative_transfer import finetune_gain

    few = blobs.target_test.few_shot(6, seed=0)
    source_net = SourceOnly(epochs=30, seed=0).fit(blobs.source).model_
    helpful = finetune_gain(source_net, few.X, few.y, cv=3, epochs=5)
    dead = SourceOnly(epochs=1, seed=0).fit(blobs.source).model_
    with torch.no_grad():
        for name, p in dead.named_parameters():
            if not name.startswith("head"):
                p.zero_()  # every hidden unit outputs 0 and passes no gradient: nothing can be learnt
    harmful = finetune_gain(dead, few.X, few.y, cv=3, epochs=5)
    assert harmful.verdict == "likely negative" and harmful.gain < 0
    assert helpful.gain > harmful.gain and helpful.verdict != "likely negative"
    np.testing.assert_allclose(harmful.target_only, helpful.target_only)  # the same scratch baseline
    with pytest.raises(TypeError, match="expected the source network"):
        finetune_gain("model.pt", few.X, few.y)
