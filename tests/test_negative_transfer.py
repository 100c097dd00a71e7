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
    assert r.transfer.shape == r.target_only.shape == (50,)  # 5 folds, drawn 10 times
    assert transfer_gain(good, X, y, repeats=1).transfer.shape == (5,)


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


def test_the_standard_error_is_nadeau_and_bengios_corrected_one_against_numpy():
    from transferkit.advice.negative_transfer import _verdict

    transfer = np.array([0.8, 0.7, 0.9, 0.6, 0.8, 0.75, 0.85, 0.7, 0.8, 0.65])
    alone = np.array([0.7, 0.7, 0.8, 0.7, 0.6, 0.7, 0.8, 0.75, 0.7, 0.7])
    d = transfer - alone
    J, K = len(d), 5  # two repeats of 5 folds
    s2 = np.sum((d - d.mean()) ** 2) / (J - 1)
    expected = np.sqrt((1 / J + 1 / (K - 1)) * s2)  # (1/J + n_test/n_train) s^2, n_test/n_train = 1/(K-1)
    r = _verdict(transfer, alone, 1.0, K)
    assert r.std_err == pytest.approx(expected, rel=1e-12) and r.gain == pytest.approx(d.mean())
    # the naive s/sqrt(J) would call this gain positive; the corrected error does not
    assert d.mean() > np.sqrt(s2 / J) and r.verdict == "uncertain"


def test_bad_input():
    X, y = target()
    with pytest.raises(ValueError, match="X_transfer has 119 samples, X_target 120 and y 120"):
        transfer_gain(X[:-1], X, y)
    with pytest.raises(ValueError, match="single class"):
        transfer_gain(X, X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="at least 2 per class"):
        transfer_gain(X, X, np.r_[np.zeros(len(y) - 1), 1])
    with pytest.raises(ValueError, match=r"repeats=0; expected a whole number of at least 1"):
        transfer_gain(X, X, y, repeats=0)


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
