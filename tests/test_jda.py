"""JDA: the MMD matrices of the paper, pseudo-label rounds, and the conditional terms at work."""

import numpy as np
import pytest

from transferkit import JDA, Domain
from transferkit.methods.jda import jda_mmd_matrix


def test_the_mmd_matrix_is_the_papers_elementwise():
    y_s, pseudo = np.array([0, 0, 1]), np.array([1, 0, 1, 1])
    n_s, n_t, C = 3, 4, 2
    M = jda_mmd_matrix(n_s, n_t, y_s, pseudo, np.array([0, 1]))
    expected = np.zeros((7, 7))
    dom = np.r_[np.zeros(n_s), np.ones(n_t)]
    lab = np.r_[y_s, pseudo]
    for i in range(7):
        for j in range(7):  # C M_0 (the authors' weighting), then M_c for each class
            expected[i, j] += C * (
                1 / n_s**2 if dom[i] == dom[j] == 0 else 1 / n_t**2 if dom[i] == dom[j] == 1 else -1 / (n_s * n_t)
            )
            for c in (0, 1):
                ns, nt = np.sum(y_s == c), np.sum(pseudo == c)
                if lab[i] == c and lab[j] == c:
                    expected[i, j] += (
                        1 / ns**2 if dom[i] == dom[j] == 0 else 1 / nt**2 if dom[i] == dom[j] else -1 / (ns * nt)
                    )
    np.testing.assert_allclose(M, expected)
    np.testing.assert_allclose(
        jda_mmd_matrix(n_s, n_t, y_s, None, np.array([0, 1])),
        expected * 0
        + C
        * np.outer(
            np.r_[np.full(n_s, 1 / n_s), np.full(n_t, -1 / n_t)], np.r_[np.full(n_s, 1 / n_s), np.full(n_t, -1 / n_t)]
        ),
    )


def _digits():
    from transferkit.datasets import load_domain

    try:
        src, tgt = load_domain("digits16:mnist", "all"), load_domain("digits16:usps", "all")
    except FileNotFoundError:
        pytest.skip("the JDA digit files are not in TRANSFERKIT_DATA")
    flat = lambda d: d.X.reshape(len(d), -1)  # noqa: E731
    return Domain(flat(src), src.y), Domain(flat(tgt)), tgt.y


def test_pseudo_label_rounds_lift_tca_on_the_papers_digits():
    source, target, y = _digits()
    tca_like = JDA(n_iter=1).fit(source, target)
    jda = JDA().fit(source, target)
    acc = lambda m: np.mean(m.predict(target.X) == y)  # noqa: E731
    assert len(jda.history_) == 10 and jda.history_[-1]["changed"] < jda.history_[1]["changed"]
    assert acc(jda) > acc(tca_like) + 0.05  # the class-conditional terms at work (0.673 against 0.575)
    np.testing.assert_array_equal(jda.pseudo_labels_, jda.model_.predict(jda.transform(target.X)[: len(target)]))


def test_bad_settings_are_named():
    X = np.random.default_rng(0).normal(size=(30, 4))
    with pytest.raises(ValueError, match=r"n_components=10 exceeds min\(n_features, n_s \+ n_t - 1\)"):
        JDA(n_components=10).fit(Domain(X[:20], np.arange(20) % 2), Domain(X[20:]))
    with pytest.raises(ValueError, match="'mu' parameter of JDA"):
        JDA(mu=0).fit(Domain(X[:20], np.arange(20) % 2), Domain(X[20:]))


def test_bda_weighs_marginal_against_conditional_and_half_is_jda():
    from transferkit import BDA

    source, target, y = _digits()
    jda = JDA(n_iter=3).fit(source, target)
    half = BDA(balance=0.5, n_iter=3).fit(source, target)
    np.testing.assert_array_equal(half.predict(target.X), jda.predict(target.X))  # mu = 0.5 is JDA
    marginal = BDA(balance=0.0, n_iter=3).fit(source, target)
    tca = JDA(n_iter=1).fit(source, target)
    np.testing.assert_array_equal(marginal.predict(target.X), tca.predict(target.X))  # mu = 0: TCA every round
    auto = BDA(n_iter=3).fit(source, target)
    balances = [h["balance"] for h in auto.history_[1:]]
    assert "balance" not in auto.history_[0] and all(0 <= b <= 1 for b in balances)


def test_bdas_balance_is_one_minus_the_marginal_share_of_the_proxy_a_distances(monkeypatch):
    """mu = 1 - d_M / (d_M + sum_c d_c), classes with under 4 samples on either side left out (BDA, Sec. 3.3)."""
    from transferkit import BDA
    from transferkit.methods.jda import balance_factor
    from transferkit.metrics.divergence import proxy_a_distance

    rng = np.random.default_rng(0)
    y_s = np.r_[np.zeros(17, int), np.ones(4, int), np.full(3, 2), 0]  # class 1: exactly 4; class 2: 3, left out
    pseudo = np.r_[np.zeros(10, int), np.ones(4, int), np.full(6, 2)]  # class 1: exactly 4 target samples too
    Zs = rng.normal(size=(25, 3)) + y_s[:, None]  # 25 source samples
    Zt = rng.normal(size=(20, 3)) + pseudo[:, None] + 2.0
    d_m = proxy_a_distance(Zs, Zt, seed=7)
    d_c = sum(proxy_a_distance(Zs[y_s == c], Zt[pseudo == c], seed=7) for c in (0, 1))
    assert d_m > 0 and d_c > 0
    assert balance_factor(Zs, Zt, y_s, pseudo, seed=7) == pytest.approx(1 - d_m / (d_m + d_c))
    source, target = Domain(Zs, y_s), Domain(Zt)
    bda = BDA(n_iter=2, seed=7).fit(source, target)
    assert bda.history_ == BDA(n_iter=2, seed=7).fit(source, target).history_  # seeded
    tca_round = JDA(n_iter=1).fit(source, target)  # BDA's first round: no conditional terms yet
    Z = tca_round.transform(np.r_[Zs, Zt])
    expected = balance_factor(Z[:25], Z[25:], y_s, tca_round.pseudo_labels_, seed=7)
    assert bda.history_[1]["balance"] == pytest.approx(expected, rel=1e-9)
    with monkeypatch.context() as m:  # nothing tells the domains apart: weigh both alike
        m.setattr("transferkit.metrics.divergence.proxy_a_distance", lambda *a, **k: 0.0)
        assert balance_factor(Zs, Zt, y_s, pseudo, seed=7) == 0.5
    assert BDA().get_params() == {
        "estimator": None, "n_components": "auto", "mu": 0.1, "n_iter": 10, "normalize": True, "balance": "auto",
        "eigen_solver": "auto", "seed": 0,
    }  # fmt: skip


def test_the_first_round_is_the_top_generalised_eigenvectors_in_order():
    """Round 1 solves X H X^T a = phi (X M_0 X^T / ||M_0||_F + mu I) a; A holds the k leading a, largest phi first."""
    import scipy.linalg
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(5)
    Xs, Xt = rng.normal(size=(30, 6)), rng.normal(size=(25, 6)) * 1.5 + 1
    y = (Xs[:, 0] > 0).astype(int)
    model = JDA(n_components=3, n_iter=1, normalize=False, estimator=SGDClassifier(), seed=3).fit(
        Domain(Xs, y), Domain(Xt)
    )
    X = np.r_[Xs, Xt]
    Xc = X - X.mean(0)
    M = jda_mmd_matrix(30, 25, y, None, np.array([0, 1]))
    phi, V = scipy.linalg.eigh(Xc.T @ Xc, X.T @ M @ X / np.linalg.norm(M) + 0.1 * np.eye(6))
    top = V[:, ::-1][:, :3]
    np.testing.assert_allclose(np.abs(model.projection_), np.abs(top), rtol=1e-5, atol=1e-8)
    assert model.history_ == [{"changed": 1.0}]  # the first pseudo-labels: all new
    assert model.model_.random_state == 3 and model.classes_.tolist() == [0, 1]
    np.testing.assert_array_equal(model.predict(Xt), model.model_.predict(Xt @ model.projection_))


def test_arpack_solves_the_generalised_problem_with_its_normalisation(monkeypatch):
    """a = B^{-1/2} u for the leading eigenvectors u of B^{-1/2} X H X^T B^{-1/2}: the dense solution, and
    A^T B A = I, with B = G G^T + mu I; from a CSR X too."""
    import scipy.linalg
    import scipy.sparse as sp

    from transferkit.methods.jda import leading_directions

    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 30)) * (rng.random((40, 30)) < 0.3) + np.linspace(0, 1, 30)  # uncentred
    G = rng.normal(size=(30, 3))
    B = G @ G.T + 0.5 * np.eye(30)
    Xc = X - X.mean(0)
    phi, V = scipy.linalg.eigh(Xc.T @ Xc, B)
    top = V[:, ::-1][:, :6]
    from transferkit.methods import jda

    calls = []
    real = jda.eigsh
    monkeypatch.setattr(jda, "eigsh", lambda *a, **k: calls.append(1) or real(*a, **k))
    for rows in (X, sp.csr_matrix(X)):
        A = leading_directions(rows, G, 0.5, 6, "arpack", seed=1)
        np.testing.assert_allclose(np.abs(A), np.abs(top), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(A.T @ B @ A, np.eye(6), atol=1e-9)
        np.testing.assert_array_equal(leading_directions(rows, G, 0.5, 6, "arpack", seed=1), A)  # seeded start
        np.testing.assert_allclose(np.abs(leading_directions(rows, G, 0.5, 6, "dense")), np.abs(top), rtol=1e-9)
    assert len(calls) == 4  # ARPACK for "arpack" only


def test_arpack_and_dense_jda_agree_and_sparse_inputs_stay_sparse(monkeypatch):
    """Every round of JDA and BDA on a CSR input with more features than samples: ARPACK gives the dense
    solver's pseudo-labels and subspace, reading the CSR matrix as it is; "auto" picks ARPACK above
    DENSE_MAX_FEATURES features."""
    import scipy.sparse as sp

    from transferkit import BDA
    from transferkit.methods import jda

    rng = np.random.default_rng(9)
    signal = np.repeat(np.eye(2), 20, axis=1)  # two classes, each 20 features wide
    ys, yt = np.arange(50) % 2, np.arange(40) % 2
    Xs = (rng.random((50, 40)) < 0.15) + 0.8 * signal[ys] * (rng.random((50, 40)) < 0.5)
    Xt = (rng.random((40, 40)) < 0.15) + 0.8 * signal[yt] * (rng.random((40, 40)) < 0.3)
    source, target = Domain(sp.csr_matrix(Xs), ys), Domain(sp.csr_matrix(Xt))
    seen = []
    real = jda.leading_directions
    monkeypatch.setattr(
        jda, "leading_directions", lambda X, *a, **kw: seen.append((sp.issparse(X), a[-2])) or real(X, *a, **kw)
    )
    for cls in (JDA, BDA):
        dense = cls(n_components=5, n_iter=3, eigen_solver="dense").fit(source, target)
        arpack = cls(n_components=5, n_iter=3, eigen_solver="arpack").fit(source, target)
        np.testing.assert_array_equal(arpack.pseudo_labels_, dense.pseudo_labels_)
        assert [h["changed"] for h in arpack.history_] == [h["changed"] for h in dense.history_]
        np.testing.assert_allclose(np.abs(arpack.transform(Xt)), np.abs(dense.transform(Xt)), atol=1e-7)
        np.testing.assert_array_equal(arpack.predict(sp.csr_matrix(Xt)), dense.predict(Xt))
    assert seen == ([(False, "dense")] * 3 + [(True, "arpack")] * 3) * 2
    seen.clear()
    monkeypatch.setattr(jda, "DENSE_MAX_FEATURES", 39)
    JDA(n_components=5, n_iter=1).fit(source, target)
    monkeypatch.setattr(jda, "DENSE_MAX_FEATURES", 40)
    JDA(n_components=5, n_iter=1).fit(source, target)
    assert seen == [(True, "arpack"), (False, "dense")]
    seen.clear()
    mostly_zeros = Xs * (rng.random(Xs.shape) < 0.1)  # under 5 % non-zeros, given dense: ARPACK reads it as CSR
    assert np.count_nonzero(mostly_zeros) < 0.05 * mostly_zeros.size
    JDA(n_components=5, n_iter=1, eigen_solver="arpack").fit(Domain(mostly_zeros, ys), Domain(mostly_zeros))
    JDA(n_components=5, n_iter=1, eigen_solver="arpack").fit(Domain(Xs, ys), Domain(Xs))
    assert seen == [(True, "arpack"), (False, "arpack")]
    assert not JDA(eigen_solver="dense")._takes_sparse() and JDA()._takes_sparse()
    # one domain sparse, the other dense: pooled as CSR either way, the same model as from dense arrays
    dense_fit = JDA(n_components=5, n_iter=2).fit(Domain(Xs, ys), Domain(Xt))
    for mixed in ((Domain(sp.csr_matrix(Xs), ys), Domain(Xt)), (Domain(Xs, ys), Domain(sp.csr_matrix(Xt)))):
        model = JDA(n_components=5, n_iter=2, eigen_solver="arpack").fit(*mixed)
        np.testing.assert_array_equal(model.pseudo_labels_, dense_fit.pseudo_labels_)
    with pytest.raises(ValueError) as err:
        JDA(n_components=40, eigen_solver="arpack").fit(source, target)
    assert str(err.value) == (
        "eigen_solver='arpack' finds fewer directions than features; n_components=40 with 40 features. "
        "Use eigen_solver='dense'."
    )
    twice = [JDA(n_components=5, n_iter=2, eigen_solver="arpack", seed=3).fit(source, target) for _ in range(2)]
    np.testing.assert_array_equal(twice[0].projection_, twice[1].projection_)  # ARPACK's start vector is seeded
    # as many components as features: "auto" keeps the dense solve, which finds them all
    seen.clear()
    monkeypatch.setattr(jda, "DENSE_MAX_FEATURES", 5)
    JDA(n_components=40, n_iter=1).fit(source, target)
    assert seen == [(False, "dense")]
    seen.clear()
    exactly = np.zeros((50, 40))
    exactly.flat[:: 2000 // 100] = 1.0  # pooled with itself: exactly 5 % non-zeros, not under it
    JDA(n_components=5, n_iter=1, eigen_solver="arpack").fit(Domain(exactly, ys), Domain(exactly))
    assert seen == [(False, "arpack")]


@pytest.mark.parametrize(
    "d_m, d_c, expected",
    [(-0.2, 0.25, 1.0), (0.5, -0.4, 0.0), (0.3, -0.3, 0.5), (0.0, 0.0, 0.5), (0.2, 0.6, 0.75)],
)
def test_bdas_balance_is_clipped_to_a_weight_and_falls_back_to_half(monkeypatch, d_m, d_c, expected):
    """Proxy A-distances can be negative (a classifier worse than chance): mu = 1 - d_M / (d_M + sum_c d_c) is
    clipped into [0, 1], and with d_M + sum_c d_c <= 0 nothing tells the terms apart: mu = 0.5."""
    from transferkit.methods.jda import balance_factor

    rng = np.random.default_rng(12)
    Zs, Zt = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    y = np.arange(8) % 2  # two classes of 4 on each side; each gets d_c / 2
    calls, seeds = iter([d_m, d_c / 2, d_c / 2]), []
    monkeypatch.setattr(
        "transferkit.metrics.divergence.proxy_a_distance", lambda *a, seed: seeds.append(seed) or next(calls)
    )
    assert balance_factor(Zs, Zt, y, y, seed=5) == pytest.approx(expected)
    assert seeds == [5, 5, 5]  # every proxy A-distance is seeded


def test_auto_components_are_the_papers_100_when_the_data_allow_and_the_defaults_are_its():
    rng = np.random.default_rng(11)
    source = Domain(rng.normal(size=(60, 150)), np.arange(60) % 2)
    target = Domain(rng.normal(size=(60, 150)) + 0.5)
    assert JDA(n_iter=1).fit(source, target).projection_.shape == (150, 100)
    assert JDA().get_params() == {
        "estimator": None, "n_components": "auto", "mu": 0.1, "n_iter": 10, "normalize": True,
        "eigen_solver": "auto", "seed": 0,
    }  # fmt: skip


def test_a_class_no_target_sample_is_labelled_with_has_no_conditional_term_and_the_classifier_is_1nn():
    from transferkit.methods.jda import jda_mmd_vectors

    y_s = np.array([0, 0, 1, 1, 2, 2])
    E = jda_mmd_vectors(6, 4, y_s, np.array([0, 0, 2, 2]), np.array([0, 1, 2]))
    assert E.shape == (10, 3)  # e_0, then classes 0 and 2; class 1 has no target sample
    np.testing.assert_allclose(E.sum(0), 0.0, atol=1e-12)  # each column: a source mean minus a target mean
    rng = np.random.default_rng(13)
    Xs, Xt = rng.normal(size=(30, 6)), rng.normal(size=(20, 6)) + 0.3
    ys = np.arange(30) % 2
    model = JDA(n_iter=2).fit(Domain(Xs, ys), Domain(Xt))
    assert model.model_.n_neighbors == 1
    pooled = JDA(n_iter=2).fit(
        np.r_[Xs, Xt], np.r_[ys, np.full(20, -1)], sample_domain=np.r_[np.ones(30, int), -np.ones(20, int)]
    )
    np.testing.assert_array_equal(pooled.pseudo_labels_, model.pseudo_labels_)


def test_the_component_limit_counts_the_pooled_samples():
    rng = np.random.default_rng(6)
    source, target = Domain(rng.normal(size=(3, 10)), np.array([0, 1, 0])), Domain(rng.normal(size=(2, 10)))
    assert JDA(n_components=4, n_iter=1).fit(source, target).projection_.shape == (10, 4)  # n_s + n_t - 1 = 4
    with pytest.raises(ValueError) as err:
        JDA(n_components=5, n_iter=1).fit(source, target)
    assert str(err.value) == (
        "n_components=5 exceeds min(n_features, n_s + n_t - 1) = min(10, 4); expected n_components <= 4."
    )
