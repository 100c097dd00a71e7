"""Transitive transfer: the path choice, gradual transfer along it, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import Domain, SourceOnly
from transferkit.methods.transitive import TransitiveTransfer, cheapest_path, domain_distances

BASE = SourceOnly(epochs=20, batch_size=64, lr=1e-2, hidden=16, device="cpu")


def rotated(angle_deg, n=300, seed=0, labelled=True):
    """Two Gaussian classes at +-2 along a direction rotated by ``angle_deg``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.deg2rad(angle_deg)
    mean = np.stack([np.cos(a), np.sin(a)]) * 2
    X = (np.where(y[:, None] == 1, mean, -mean) + 0.6 * rng.normal(size=(n, 2))).astype(np.float32)
    return Domain(X, y if labelled else None, f"{angle_deg} degrees")


def test_cheapest_path_prefers_small_steps_when_jumps_are_squared():
    # a chain 0 - 1 - 2 - 3 with unit steps; the direct jump 0 -> 3 has distance 2.5
    D = np.array([[0, 1, 2, 2.5], [1, 0, 1, 2], [2, 1, 0, 1], [2.5, 2, 1, 0]], float)
    assert cheapest_path(D**2, 0, 3) == [0, 1, 2, 3]  # 3 < 6.25
    assert cheapest_path(D, 0, 3) == [0, 3]  # 2.5 < 3: with p = 1 the direct edge wins


def test_domain_distances_grow_with_the_angle():
    domains = [rotated(a).X for a in (0, 30, 90)]
    D = domain_distances(domains, "mmd")
    assert D[0, 1] < D[0, 2] and np.allclose(D, D.T) and np.all(np.diag(D) == 0)


def test_gradual_transfer_through_the_chosen_bridge_beats_the_direct_jump():
    source, target = rotated(0, seed=0), rotated(90, seed=1)
    pool = [rotated(a, seed=10 + a, labelled=False) for a in (15, 30, 45, 60, 75)]
    far = rotated(45, seed=99, labelled=False)
    pool.append(Domain(far.X + 6.0, None, "shifted"))  # a distractor far from both
    # (a linear domain classifier cannot tell these symmetric mixtures apart at any angle: use the MMD)
    bridged = TransitiveTransfer(base=BASE, criterion="mmd").fit(source, target.unlabelled(), pool)
    direct = BASE.fit(source)
    assert len(bridged.path_) >= 3 and 5 not in bridged.path_  # several small steps; never the distractor
    assert bridged.path_ == sorted(bridged.path_)  # in order of angle
    assert bridged.score(target) > direct.score(target) + 0.2
    assert bridged.predict_proba(target.X).shape == (300, 2)


def test_forced_and_direct_paths():
    source, target = rotated(0, seed=0), rotated(90, seed=1)
    pool = [rotated(45, seed=3, labelled=False)]
    forced = TransitiveTransfer(base=BASE, path=[0]).fit(source, target.unlabelled(), pool)
    direct = TransitiveTransfer(base=BASE, path="direct").fit(source, target.unlabelled(), pool)
    assert forced.path_ == [0] and direct.path_ == [] and len(forced.steps_) == 2 and len(direct.steps_) == 1


def test_bad_input():
    source, target = rotated(0), rotated(90)
    with pytest.raises(ValueError, match="pool is empty"):
        TransitiveTransfer(base=BASE).fit(source, target.unlabelled(), [])
    with pytest.raises(ValueError, match=r"pool\[0\] has labels"):
        TransitiveTransfer(base=BASE).fit(source, target.unlabelled(), [rotated(45)])
    with pytest.raises(ValueError, match=r"pool\[0\] has samples of shape \(3,\)"):
        TransitiveTransfer(base=BASE).fit(source, target.unlabelled(), [np.zeros((10, 3))])
    with pytest.raises(ValueError, match="'criterion' parameter of TransitiveTransfer .* Got 'kl'"):
        TransitiveTransfer(base=BASE, criterion="kl").fit(source, target.unlabelled(), [rotated(45).unlabelled()])
    with pytest.raises(ValueError, match="target has labels"):
        TransitiveTransfer(base=BASE).fit(source, target, [rotated(45).unlabelled()])
