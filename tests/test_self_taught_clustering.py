"""Self-taught clustering: the objective against NumPy mutual information, monotone updates, the gain
from auxiliary data, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferkit.methods.self_taught_clustering import (
    InformationTheoreticCoClustering,
    SelfTaughtClustering,
    co_clustering_loss,
)
from transferkit.metrics.clustering import clustering_accuracy, nmi


def topic_world(seed, n_target=40, n_aux=2000, words=60, d=200, groups=10):
    """Documents drawn from topics over word groups: the target's two classes and six auxiliary topics
    use the same groups, so the auxiliary documents show which words belong together."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), d // groups)

    def topic():
        w = rng.dirichlet(np.full(groups, 0.3))[g]
        return w / w.sum()

    target, aux = [topic() for _ in range(2)], [topic() for _ in range(6)]
    y = rng.integers(0, 2, n_target)
    X = np.array([rng.multinomial(words, target[c]) for c in y], float)
    A = np.array([rng.multinomial(words, aux[c]) for c in rng.integers(0, 6, n_aux)], float)
    return X, y, A


def mutual_information(P):
    px, pz = P.sum(1, keepdims=True), P.sum(0, keepdims=True)
    mask = P > 0
    return float(np.sum(P[mask] * np.log(P[mask] / (px @ pz)[mask])))


def test_loss_is_the_loss_in_mutual_information():
    rng = np.random.default_rng(0)
    P = rng.random((7, 5))
    P /= P.sum()
    rows, cols = np.array([0, 1, 0, 2, 1, 2, 0]), np.array([0, 1, 1, 0, 1])
    Pt = np.zeros((3, 2))
    for x, z in itertools.product(range(7), range(5)):
        Pt[rows[x], cols[z]] += P[x, z]
    assert co_clustering_loss(P, rows, cols) == pytest.approx(mutual_information(P) - mutual_information(Pt))


def test_objective_never_increases():
    X, _, A = topic_world(0)
    model = SelfTaughtClustering(2, 10, n_auxiliary_clusters=6, n_init=3).fit(X, A)
    assert np.all(np.diff(model.objective_) <= 1e-12) and len(model.objective_) > 2
    assert model.labels_.shape == (40,) and model.auxiliary_labels_.shape == (2000,)


def test_auxiliary_data_help_the_small_target_set():
    """On the same small target sets, sharing feature clusters with auxiliary data beats co-clustering alone."""
    gains = []
    for seed in (0, 1):
        X, y, A = topic_world(seed)
        stc = SelfTaughtClustering(2, 10, n_auxiliary_clusters=6, n_init=10).fit(X, A)
        itcc = InformationTheoreticCoClustering(2, 10, n_init=10).fit(X)
        gains.append(nmi(y, stc.labels_) - nmi(y, itcc.labels_))
    assert np.mean(gains) > 0.3, gains  # measured: +0.16 and +0.84
    # fit_predict is fit(X, auxiliary).labels_, the auxiliary data included
    kw = dict(n_clusters=2, n_feature_clusters=10, n_auxiliary_clusters=6, n_init=10)
    np.testing.assert_array_equal(SelfTaughtClustering(**kw).fit_predict(X, A), stc.labels_)
    assert not np.array_equal(SelfTaughtClustering(**kw).fit_predict(X), stc.labels_)


def test_clustering_metrics_match_hand_counts():
    y = np.array([0, 0, 0, 1, 1, 2])
    c = np.array([5, 5, 7, 7, 7, 9])  # best match 5->0, 7->1, 9->2: 5 of 6
    assert clustering_accuracy(y, c) == pytest.approx(5 / 6)
    assert nmi(y, y + 3) == pytest.approx(1.0)
    assert clustering_accuracy(y, np.zeros(6)) == pytest.approx(3 / 6)


def test_bad_input():
    X, _, A = topic_world(0, n_target=10)
    with pytest.raises(ValueError, match="n_clusters=20 but the target has 10 samples"):
        SelfTaughtClustering(20, 5).fit(X, A)
    with pytest.raises(ValueError, match="negative entries"):
        SelfTaughtClustering(2, 5).fit(X - 1, A)
    with pytest.raises(ValueError, match="auxiliary has 100 features but X has 200"):
        SelfTaughtClustering(2, 5).fit(X, A[:, :100])
    with pytest.raises(ValueError, match="n_feature_clusters=500 but there are 200 features; expected at most 200"):
        SelfTaughtClustering(2, 500).fit(X, A)
    with pytest.raises(ValueError) as err:
        SelfTaughtClustering(2, 5, n_auxiliary_clusters=len(A) + 1).fit(X, A)
    assert str(err.value) == (
        f"n_auxiliary_clusters={len(A) + 1} but the auxiliary data has {len(A)} samples; expected at most {len(A)}."
    )
    SelfTaughtClustering(2, 5, n_auxiliary_clusters=len(A) + 1, lam=0.0, n_iter=1, n_init=1).fit(X, A)  # not used
    for bad in ({"n_clusters": None}, {"n_clusters": 1}, {"n_auxiliary_clusters": 0}, {"lam": -1.0}):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"The '{name}' parameter of SelfTaughtClustering must be"):
            SelfTaughtClustering(**bad).fit(X, A)


def test_the_row_and_column_updates_are_dhillons_kl_steps_written_with_loops():
    """Row x goes to argmin_x~ KL(p(Z|x) || p(Z|z~(z)) p(z~(z)|x~)); column z's cost for z~ is
    -sum_x p(x,z) log(p(x|x~(x)) p(x~(x)|z~)), whose argmin is that of p(z) KL(p(X|z) || p^(X|z~))."""
    from transferkit.methods.self_taught_clustering import _column_cost, _row_update

    rng = np.random.default_rng(3)
    P = rng.random((8, 6)) + 0.05
    P /= P.sum()
    rows, cols = np.array([0, 1, 2, 0, 1, 2, 0, 1]), np.array([0, 1, 0, 1, 0, 1])
    Pt = np.array([[P[rows == a][:, cols == b].sum() for b in range(2)] for a in range(3)])
    px, pz = P.sum(1), P.sum(0)
    kl_rows = np.zeros((8, 3))
    for x in range(8):
        p = P[x] / px[x]
        for a in range(3):
            q = np.array([pz[z] / Pt[:, cols[z]].sum() * Pt[a, cols[z]] / Pt[a].sum() for z in range(6)])
            kl_rows[x, a] = np.sum(p * np.log(p / q))
    np.testing.assert_array_equal(_row_update(P, cols, rows, 3, 2), kl_rows.argmin(1))
    cost, kl_cols = np.zeros((6, 2)), np.zeros((6, 2))
    for z in range(6):
        for b in range(2):
            q = np.array([px[x] / Pt[rows[x]].sum() * Pt[rows[x], b] / Pt[:, b].sum() for x in range(8)])
            cost[z, b] = -np.sum(P[:, z] * np.log(q))
            p = P[:, z] / pz[z]
            kl_cols[z, b] = pz[z] * np.sum(p * np.log(p / q))
    np.testing.assert_allclose(_column_cost(P, rows, cols, 3, 2), cost, rtol=1e-12)
    np.testing.assert_array_equal(cost.argmin(1), kl_cols.argmin(1))


def test_the_kept_restart_is_scored_by_the_whole_objective_and_stops_when_nothing_moves():
    """objective_[-1] is J = D(p || p^) + lambda D(q || q^) of the labels kept (eq. 3); every round lowers it
    until the round that changes no assignment, which ends the run (its J is the last value, repeated)."""
    X, _, A = topic_world(2, n_aux=300)
    model = SelfTaughtClustering(2, 10, n_auxiliary_clusters=4, lam=0.5, n_init=4, n_iter=200).fit(X, A)
    P, Q = X / X.sum(), A / A.sum()
    J = co_clustering_loss(P, model.labels_, model.feature_labels_) + 0.5 * co_clustering_loss(
        Q, model.auxiliary_labels_, model.feature_labels_
    )
    history = np.array(model.objective_)
    assert history[-1] == pytest.approx(J, rel=1e-9)
    assert len(history) < 201 and history[-1] == history[-2] and np.all(np.diff(history[:-1]) < 0)
    assert model.feature_labels_.shape == (X.shape[1],) and model.feature_labels_.max() < 10
    images = SelfTaughtClustering(2, 4, n_init=1).fit(X[:, :16].reshape(-1, 4, 4), A[:, :16].reshape(-1, 4, 4))
    assert images.feature_labels_.shape == (16,)  # samples of any shape are flattened


def test_cluster_counts_up_to_the_data_and_the_defaults():
    rng = np.random.default_rng(5)
    X, A = rng.random((6, 8)), rng.random((5, 8))
    fitted = SelfTaughtClustering(6, 8, n_auxiliary_clusters=5, n_init=1, n_iter=2).fit(X, A)  # every bound met
    assert len(set(fitted.feature_labels_)) <= 8
    small = 0.5 * X / X.sum()  # any positive total is normalised away, one under 1 too
    np.testing.assert_array_equal(
        SelfTaughtClustering(2, 2, n_init=1, n_iter=2).fit(small, A).labels_,
        SelfTaughtClustering(2, 2, n_init=1, n_iter=2).fit(X, A).labels_,
    )
    for data, message in (
        (np.zeros((4, 3)), "X is all zeros; there is no distribution to cluster."),
        (-np.ones((4, 3)), "X has negative entries"),
    ):
        with pytest.raises(ValueError) as err:
            SelfTaughtClustering(2, 2).fit(data, A[:, :3])
        assert str(err.value).startswith(message)
    with pytest.raises(ValueError) as err:
        SelfTaughtClustering(2, 2).fit(X, -A)
    assert str(err.value) == (
        "auxiliary has negative entries; co-clustering treats the data as a joint distribution of samples and "
        "features, so it needs non-negative values (counts, pixel intensities)."
    )
    with pytest.raises(ValueError) as err:
        InformationTheoreticCoClustering(2, 2).fit(X, A)
    assert str(err.value) == "InformationTheoreticCoClustering clusters the target alone; use SelfTaughtClustering."
    itcc = InformationTheoreticCoClustering(2, 4, n_init=2, seed=3).fit(X)
    alone = SelfTaughtClustering(2, 4, lam=0.0, n_init=2, seed=3).fit(X, A)
    np.testing.assert_array_equal(itcc.labels_, alone.labels_)
    assert SelfTaughtClustering().get_params() == {
        "n_clusters": 2, "n_feature_clusters": 32, "n_auxiliary_clusters": None, "lam": 1.0, "n_iter": 50,
        "n_init": 5, "seed": 0,
    }  # fmt: skip
    assert InformationTheoreticCoClustering().get_params() == {
        "n_clusters": 2, "n_feature_clusters": 32, "n_iter": 50, "n_init": 5, "seed": 0,
    }  # fmt: skip


def test_the_restart_kept_is_the_one_of_lowest_final_objective():
    """n_init restarts from one seeded generator, in turn; the labels kept are those of the restart whose
    last J is lowest (replayed here through the same private steps and generator)."""
    X, _, A = topic_world(3, n_aux=300)
    model = SelfTaughtClustering(2, 10, n_auxiliary_clusters=4, n_init=6, seed=7).fit(X, A)
    P, Q = X / X.sum(), A / A.sum()
    rng = np.random.default_rng(7)
    runs = [model._run(P, Q, 2, 4, 10, rng) for _ in range(6)]
    finals = [history[-1] for _, history in runs]
    assert len(set(np.round(finals, 12))) > 1  # the restarts end apart: the choice matters
    best = runs[int(np.argmin(finals))][0]
    np.testing.assert_array_equal(model.labels_, best.rows)
    assert model.objective_[-1] == min(finals)


@pytest.mark.parametrize("with_auxiliary", [False, True])
def test_one_round_moves_the_rows_then_the_columns_by_the_new_rows_cost(with_auxiliary):
    """A round of _run: rows (target and auxiliary) by the row step on the current columns, then columns by
    the argmin of the target's column cost plus lambda times the auxiliary's, both on the new rows."""
    from transferkit.methods.self_taught_clustering import _column_cost, _row_update

    rng = np.random.default_rng(5)
    P = rng.random((12, 9)) ** 3 + 0.01
    P /= P.sum()
    Q = rng.random((20, 9)) ** 3 + 0.01 if with_auxiliary else None
    if Q is not None:
        Q /= Q.sum()
    model = SelfTaughtClustering(3, 3, n_auxiliary_clusters=2, lam=0.7, n_iter=1)
    state, history = model._run(P, Q, 3, 2, 3, np.random.default_rng(0))
    draw = np.random.default_rng(0)  # the same initial labels
    rows, cols = draw.integers(0, 3, 12), draw.integers(0, 3, 9)
    aux = draw.integers(0, 2, 20) if Q is not None else None
    new_rows = _row_update(P, cols, rows, 3, 3)
    cost = _column_cost(P, new_rows, cols, 3, 3)
    if Q is not None:
        aux = _row_update(Q, cols, aux, 2, 3)
        cost = cost + 0.7 * _column_cost(Q, aux, cols, 2, 3)
    assert len(history) == 2 and history[1] < history[0]  # the round was kept: it lowered the objective
    np.testing.assert_array_equal(state.rows, new_rows)
    np.testing.assert_array_equal(state.cols, cost.argmin(1))
    assert (state.cols != cols).any()  # the columns moved, so a wrong column cost shows
    if Q is not None:
        np.testing.assert_array_equal(state.aux_rows, aux)


def test_a_round_that_raises_the_objective_is_not_kept_and_ends_the_run():
    """In exact arithmetic no round raises J; where rounding would, the run ends on the labels before it."""
    rng = np.random.default_rng(2)
    P = rng.random((10, 6)) + 0.05
    P /= P.sum()
    model = SelfTaughtClustering(2, 3, n_iter=5)
    losses = iter([1.0, 2.0, 0.5])  # the first round's objective is above the start's
    model._objective = lambda *args: next(losses)
    state, history = model._run(P, None, 2, 2, 3, np.random.default_rng(0))
    draw = np.random.default_rng(0)
    np.testing.assert_array_equal(state.rows, draw.integers(0, 2, 10))  # the initial labels, kept
    np.testing.assert_array_equal(state.cols, draw.integers(0, 3, 6))
    assert history == [1.0] and state.loss == 1.0
