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


@pytest.mark.parametrize("seed", range(5))
def test_cheapest_path_is_dijkstras_and_keeps_the_first_of_equal_paths(seed):
    from scipy.sparse.csgraph import dijkstra

    rng = np.random.default_rng(seed)
    W = rng.random((12, 12)) ** 3  # many indirect routes are cheaper; nodes are reached more than once
    np.fill_diagonal(W, 0.0)
    for start, end in ((0, 11), (3, 1), (5, 0), (7, 9)):
        cost, previous = dijkstra(W, indices=start, return_predecessors=True)
        path = [end]
        while path[-1] != start:
            path.append(int(previous[path[-1]]))
        got = cheapest_path(W, start, end)
        assert got == path[::-1] and got[0] == start and got[-1] == end
        assert sum(W[a, b] for a, b in zip(got, got[1:], strict=False)) == pytest.approx(cost[end])
    tie = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], float)
    assert cheapest_path(tie, 0, 2) == [0, 2]  # a bridge must be strictly cheaper than the direct jump
    assert cheapest_path(tie, 1, 1) == [1]
    cut = np.array([[0, np.inf], [np.inf, 0]])
    with pytest.raises(ValueError) as err:
        cheapest_path(cut, 0, 1)
    assert str(err.value) == "no path of finite cost leads from domain 0 to domain 1; W has inf between them."


def test_domain_distances_are_the_criteria_on_seeded_subsamples():
    from transferkit.metrics.divergence import mmd, proxy_a_distance

    domains = [rotated(a, n=60, seed=a).X for a in (0, 40, 80)]
    for criterion in ("mmd", "a-distance"):
        D = domain_distances(domains, criterion, max_samples=25, seed=4)
        rng = np.random.default_rng(4)
        take = [X[rng.permutation(len(X))[:25]] for X in domains]
        for i, j in ((0, 1), (0, 2), (1, 2)):
            expected = (
                mmd(take[i], take[j], estimator="biased")
                if criterion == "mmd"
                else proxy_a_distance(take[i], take[j], seed=4)
            )
            assert D[i, j] == pytest.approx(expected) and D[j, i] == D[i, j]
        assert np.all(np.diag(D) == 0)
    np.testing.assert_array_equal(domain_distances(domains), domain_distances(domains, "a-distance", 500, 0))
    with pytest.raises(ValueError) as err:
        domain_distances(domains, "kl")
    assert str(err.value) == "criterion='kl'; expected 'a-distance' or 'mmd'."


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


def test_the_distances_use_its_settings_and_the_defaults_are_the_papers():
    source, target = rotated(0, n=80, seed=0), rotated(90, n=80, seed=1, labelled=False)
    pool = [rotated(45, n=80, seed=3, labelled=False)]
    model = TransitiveTransfer(base=_Recorder(), criterion="mmd", max_samples=30, seed=2).fit(source, target, pool)
    expected = domain_distances([source.X, pool[0].X, target.X], "mmd", 30, 2)
    np.testing.assert_array_equal(model.distances_, expected)
    route = [0, *[i + 1 for i in model.path_], 2]
    assert model.path_cost_ == pytest.approx(sum(expected[a, b] ** 2 for a, b in zip(route, route[1:], strict=False)))
    pooled = TransitiveTransfer(base=_Recorder(), criterion="mmd", max_samples=30, seed=2).fit(
        np.r_[source.X, target.X], np.r_[source.y, np.full(80, -1)], pool,
        sample_domain=np.r_[np.ones(80, int), -np.ones(80, int)],
    )  # fmt: skip
    np.testing.assert_array_equal(pooled.distances_, model.distances_)
    proba = model.predict_proba(target.X)
    assert proba.dtype == model.model_.predict_proba(target.X).dtype
    assert TransitiveTransfer().get_params() == {
        "base": None, "criterion": "a-distance", "power": 2.0, "max_samples": 500, "keep": 0.9, "path": "auto",
        "seed": 0,
    }  # fmt: skip


def test_bad_input():
    source, target = rotated(0), rotated(90)
    with pytest.raises(ValueError) as err:
        TransitiveTransfer(base=BASE).fit(source, target.unlabelled(), None)
    assert str(err.value) == (
        "pool is empty; transitive transfer chooses intermediate domains from a pool of unlabelled domains "
        "(pool=[X_1, X_2, ...]). For direct transfer, fit the base method itself."
    )
    with pytest.raises(ValueError, match=r"^pool\[1\]\.X contains NaN or infinity"):
        TransitiveTransfer(base=BASE).fit(source, target.unlabelled(), [rotated(45).X, np.full((5, 2), np.nan)])
    for bad, name in (
        ({"power": 0.0}, "power"),
        ({"keep": 0.0}, "keep"),
        ({"keep": 1.5}, "keep"),
        ({"path": "x"}, "path"),
    ):
        with pytest.raises(ValueError, match=f"The '{name}' parameter of TransitiveTransfer must be"):
            TransitiveTransfer(base=BASE, **bad).fit(source, target.unlabelled(), [rotated(45).unlabelled()])
    TransitiveTransfer(base=_Recorder(), keep=1.0, path=[0]).fit(source, target.unlabelled(), [rotated(45).X])
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


class _Recorder:
    """A stand-in base method: class 1 with probability sigmoid(x0), and a record of what each step fitted on."""

    from transferkit.methods.base import Setting

    setting = Setting(source_labels=True, target_labels=False, target=False)
    fitted: list = []

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, source, target=None):
        _Recorder.fitted.append(source)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p1 = 1 / (1 + np.exp(-np.asarray(X)[:, 0]))
        return np.stack([1 - p1, p1], 1)

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def test_each_step_keeps_the_most_confident_pseudo_labels():
    rng = np.random.default_rng(0)
    source = Domain(rng.normal(size=(40, 2)).astype(np.float32), np.arange(40) % 2, "s")
    bridge = rng.normal(size=(40, 2)).astype(np.float32) * 3
    target = Domain(rng.normal(size=(40, 2)).astype(np.float32))
    _Recorder.fitted.clear()
    TransitiveTransfer(base=_Recorder(), path=[0], keep=0.25).fit(source, target, [bridge])
    kept = _Recorder.fitted[1]  # what the second step learnt from: the bridge, pseudo-labelled
    confident = bridge[np.argsort(-np.abs(bridge[:, 0]))[:10]]  # the 10 farthest from the boundary x0 = 0
    assert sorted(map(tuple, kept.X.tolist())) == sorted(map(tuple, confident.tolist()))
    np.testing.assert_array_equal(kept.y, (kept.X[:, 0] > 0).astype(int))


@pytest.mark.parametrize("name", ["dap", "transitive"])
def test_a_base_that_does_not_adapt_between_domains_is_refused_by_name(name):
    source, target = rotated(0), rotated(30, labelled=False)
    with pytest.raises(ValueError) as err:
        TransitiveTransfer(base=name).fit(source, target, [rotated(15).unlabelled()])
    cls = {"dap": "DAP", "transitive": "TransitiveTransfer"}[name]
    assert str(err.value) == (
        f"base='{name}': each step adapts a method from one domain to the next; {cls} does not "
        "(e.g. base='dann' or 'source-only')."
    )


class _AdaptingRecorder(_Recorder):
    """As _Recorder, but a method for an unlabelled target: it records what each step adapted to."""

    from transferkit.methods.base import Setting

    setting = Setting(source_labels=True, target_labels=False)
    targets: list = []

    def fit(self, source, target=None):
        _AdaptingRecorder.targets.append(target)
        return super().fit(source, target)


def test_each_step_adapts_from_the_last_labels_to_the_next_domain():
    rng = np.random.default_rng(1)
    source = Domain(rng.normal(size=(30, 2)).astype(np.float32), np.arange(30) % 2, "s")
    pool = [rng.normal(size=(20, 2)).astype(np.float32) + i for i in range(3)]
    target = Domain(rng.normal(size=(25, 2)).astype(np.float32) + 3)
    _Recorder.fitted.clear()
    _AdaptingRecorder.targets.clear()
    model = TransitiveTransfer(base=_AdaptingRecorder(), path=[2, 0], keep=0.5).fit(source, target, pool)
    assert [t.name for t in _AdaptingRecorder.targets] == ["pool[2]", "pool[0]", "target"]
    np.testing.assert_array_equal(_AdaptingRecorder.targets[0].X, pool[2])
    np.testing.assert_array_equal(_AdaptingRecorder.targets[2].X, target.X)
    assert all(t.y is None for t in _AdaptingRecorder.targets)
    assert [d.name for d in _Recorder.fitted] == ["s", "pool[2] (pseudo-labelled)", "pool[0] (pseudo-labelled)"]
    assert [len(d) for d in _Recorder.fitted] == [30, 10, 10]  # keep = 0.5 of 20
    assert model.path_ == [2, 0] and len(model.steps_) == 3 and 0 < model.fit_seconds_ < 60
    tiny = TransitiveTransfer(base=_Recorder(), path=[0], keep=0.01).fit(source, target, pool)
    assert len(_Recorder.fitted[-1]) == 2  # never fewer than two samples for the next step
    assert tiny.steps_[-1] is tiny.model_
    with pytest.raises(ValueError) as err:
        TransitiveTransfer(base=_Recorder(), path=[3]).fit(source, target, pool)
    assert str(err.value) == "path=[3] names pool indices outside 0..2."
    _Recorder.fitted.clear()
    auto = TransitiveTransfer(base=_Recorder(), criterion="mmd", power=1.0).fit(source, target, pool)
    assert _Recorder.fitted[0].name == "s"  # every route starts at the labelled source
    D = domain_distances([source.X, *pool, target.X], "mmd", 500, 0)
    route = cheapest_path(D, 0, 4)  # power 1: the distances themselves
    assert [0, *[i + 1 for i in auto.path_], 4] == route
    assert auto.path_cost_ == pytest.approx(sum(D[a, b] for a, b in zip(route, route[1:], strict=False)))


def test_a_class_lost_along_the_way_gets_probability_zero():
    source = Domain(np.array([[-2.0, 0], [-1, 0], [1, 0], [2, 0], [3, 0]], np.float32), np.array([0, 0, 1, 1, 2]))
    target = Domain(np.array([[-1.0, 0], [1, 0], [2, 0]], np.float32))
    model = TransitiveTransfer(base=_Recorder(), path=[0]).fit(source, target, [target.X])
    proba = model.predict_proba(target.X)
    assert model.classes_.tolist() == [0, 1, 2] and proba.shape == (3, 3)
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    np.testing.assert_allclose(proba[:, :2], model.model_.predict_proba(target.X))


@pytest.mark.parametrize("power, path, cost", [(2.0, [0, 1], 3.0), (1.0, [], 2.5)])
def test_the_route_minimises_the_distances_to_the_power_p(monkeypatch, power, path, cost):
    """A chain source - pool[0] - pool[1] - target of unit steps, the direct jump 2.5: squared, three small
    steps cost 3 < 6.25; with p = 1 the jump costs 2.5 < 3."""
    from transferkit.methods import transitive

    D = np.array([[0, 1, 2, 2.5], [1, 0, 1, 2], [2, 1, 0, 1], [2.5, 2, 1, 0]], float)
    monkeypatch.setattr(transitive, "domain_distances", lambda *a, **k: D)
    rng = np.random.default_rng(2)
    source = Domain(rng.normal(size=(20, 2)).astype(np.float32), np.arange(20) % 2)
    pool = [rng.normal(size=(20, 2)).astype(np.float32) for _ in range(2)]
    model = TransitiveTransfer(base=_Recorder(), power=power).fit(source, Domain(pool[0]), pool)
    assert model.path_ == path and model.path_cost_ == pytest.approx(cost)
