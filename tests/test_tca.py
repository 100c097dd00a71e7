"""TCA: the solved subspace against the paper's objective, the MMD matrix, the mechanism, Nyström."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import rbf_kernel

from transferkit import Domain
from transferkit.datasets import make_covariate_shift
from transferkit.methods import tca as tca_module
from transferkit.methods.tca import TCA, median_gamma, mmd_matrix, tca_objective
from transferkit.metrics.divergence import mmd


def _pair(n_s=40, n_t=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, d))
    Xt = rng.normal(size=(n_t, d)) * np.linspace(1.5, 0.7, d) + np.linspace(1.0, -0.5, d)
    return Domain(Xs, (Xs[:, 0] > 0).astype(int)), Domain(Xt)


def _problem(model, source, target):
    """K, L, H of the pooled sample, as the paper writes them."""
    X = np.concatenate([source.X, target.X]).astype(np.float64)
    n_s, n = len(source), len(X)
    K = rbf_kernel(X, gamma=model.gamma_)
    return K, mmd_matrix(n_s, n - n_s), np.eye(n) - np.ones((n, n)) / n


def _feasible(W, B):
    """W rescaled to satisfy W^T B W = I."""
    s, Q = np.linalg.eigh(W.T @ B @ W)
    return W @ (Q / np.sqrt(s)) @ Q.T


def _residual(K, L, H, mu, W, lam):
    """Relative residual of K H K W = (K L K + mu I) W diag(lam)."""
    lhs = K @ H @ K @ W
    return np.linalg.norm(lhs - (K @ L @ K + mu * np.eye(len(K))) @ W * lam) / np.linalg.norm(lhs)


def test_mmd_matrix_matches_the_definition_and_gives_the_mmd():
    n_s, n_t = 4, 3
    L = mmd_matrix(n_s, n_t)
    ref = np.empty((n_s + n_t, n_s + n_t))
    for i in range(n_s + n_t):
        for j in range(n_s + n_t):
            si, sj = i < n_s, j < n_s
            ref[i, j] = 1 / n_s**2 if si and sj else 1 / n_t**2 if not (si or sj) else -1 / (n_s * n_t)
    np.testing.assert_allclose(L, ref, rtol=1e-15)
    # tr(K L) is the biased squared MMD: mean k(s, s') + mean k(t, t') - 2 mean k(s, t)
    X = np.random.default_rng(0).normal(size=(n_s + n_t, 2))
    K = rbf_kernel(X, gamma=0.5)
    biased = K[:n_s, :n_s].mean() + K[n_s:, n_s:].mean() - 2 * K[:n_s, n_s:].mean()
    np.testing.assert_allclose(np.trace(K @ L), biased, rtol=1e-12)


def test_median_gamma_matches_brute_force():
    X = np.random.default_rng(1).normal(size=(50, 4))
    d2 = [np.sum((X[i] - X[j]) ** 2) for i in range(50) for j in range(i + 1, 50)]
    np.testing.assert_allclose(median_gamma(X), 1 / np.median(d2), rtol=1e-10)


def test_solution_solves_the_paper_objective():
    source, target = _pair()
    mu, m = 0.5, 4
    model = TCA(n_components=m, mu=mu, kernel="rbf", approximation="exact", whiten=True).fit(source, target)
    K, L, H = _problem(model, source, target)
    W, lam = model.projection_, model.eigenvalues_
    assert _residual(K, L, H, mu, W, lam) < 1e-8
    np.testing.assert_allclose(W.T @ K @ H @ K @ W, np.eye(m), atol=1e-8)  # the constraint
    assert np.all(np.diff(lam) < 0)
    # by default the same components keep their variance lambda_i on the pooled sample
    default = TCA(n_components=m, mu=mu, kernel="rbf", approximation="exact").fit(source, target)
    np.testing.assert_allclose(default.projection_, W * np.sqrt(lam), rtol=1e-10)
    V = default.projection_
    np.testing.assert_allclose(V.T @ K @ H @ K @ V, np.diag(lam), rtol=1e-8, atol=1e-8 * lam[0])
    # on the feasible set the objective is sum(1 / lambda) at the solution; random feasible W do worse
    best = tca_objective(K, len(source), W, mu)
    np.testing.assert_allclose(best, np.trace(W.T @ (K @ L @ K + mu * np.eye(len(K))) @ W), rtol=1e-10)
    np.testing.assert_allclose(best, np.sum(1 / lam), rtol=1e-8)
    rng = np.random.default_rng(0)
    others = [tca_objective(K, len(source), _feasible(rng.normal(size=W.shape), K @ H @ K), mu) for _ in range(200)]
    assert best < min(others)
    # transform is k(x, X_train) W: the training embedding is K W
    Z = model.transform(np.concatenate([source.X, target.X]))
    np.testing.assert_allclose(Z, K @ W, rtol=1e-4, atol=1e-5)


def test_symmetric_solver_on_the_nonsymmetric_product_fails_the_checks():
    """SKADA 0.6 hands (KLK + mu I)^-1 KHK to numpy's eigh, which reads one triangle only.

    The product is far from symmetric when mu is small against KLK (here 0.1); the checks that pass
    for our solution (residual ~1e-9, objective below every random feasible W) then fail.
    """
    source, target = _pair()
    mu, m = 0.1, 4
    model = TCA(n_components=m, mu=mu, kernel="rbf", approximation="exact", whiten=True).fit(source, target)
    K, L, H = _problem(model, source, target)
    A, B = K @ L @ K + mu * np.eye(len(K)), K @ H @ K
    vals, vecs = np.linalg.eigh(np.linalg.solve(A, B))
    top = np.argsort(np.abs(vals))[::-1][:m]
    W_bad = _feasible(vecs[:, top], B)
    assert _residual(K, L, H, mu, model.projection_, model.eigenvalues_) < 1e-8
    assert _residual(K, L, H, mu, W_bad, vals[top]) > 0.5
    assert tca_objective(K, len(source), W_bad, mu) > 1.2 * tca_objective(K, len(source), model.projection_, mu)


def test_tca_removes_a_covariate_shift():
    task = make_covariate_shift(n_source=300, n_target=300, seed=0)
    source_only = LogisticRegression().fit(task.source.X, task.source.y).score(task.target_test.X, task.target_test.y)
    model = TCA(kernel="linear", n_components=1, mu=1.0).fit(task.source, task.target)
    raw = mmd(task.source.X, task.target.X)
    mapped = mmd(model.transform(task.source.X), model.transform(task.target.X))
    assert mapped < raw / 20
    assert model.score(task.target_test) > source_only + 0.1
    # without the MMD term (mu -> infinity: kernel PCA) the leading component is the shifted one
    pca_like = TCA(kernel="linear", n_components=1, mu=1e12).fit(task.source, task.target)
    assert mmd(pca_like.transform(task.source.X), pca_like.transform(task.target.X)) > raw / 2


def test_nystroem_with_every_sample_as_landmark_is_exact():
    source, target = _pair()
    n = len(source) + len(target)
    exact = TCA(n_components=4, mu=0.5, approximation="exact").fit(source, target)
    full = TCA(n_components=4, mu=0.5, approximation="nystroem", n_landmarks=n).fit(source, target)
    assert (exact.approximation_, full.approximation_) == ("exact", "nystroem")
    np.testing.assert_allclose(full.eigenvalues_, exact.eigenvalues_, rtol=1e-6)
    Ze, Zn = exact.transform(target.X), full.transform(target.X)
    np.testing.assert_allclose(np.abs(Zn), np.abs(Ze), rtol=1e-3, atol=1e-4)  # components up to sign


def test_nystroem_is_close_with_fewer_landmarks():
    task = make_covariate_shift(n_source=400, n_target=400, n_features=5, seed=3)
    kw = dict(n_components=3, mu=1.0, kernel="rbf")
    exact = TCA(approximation="exact", **kw).fit(task.source, task.target)
    approx = TCA(approximation="nystroem", n_landmarks=200, **kw).fit(task.source, task.target)
    np.testing.assert_allclose(approx.eigenvalues_, exact.eigenvalues_, rtol=0.05)
    # the embedded subspaces nearly coincide: canonical correlations near 1
    X = np.concatenate([task.source.X, task.target.X])
    Qe, Qn = np.linalg.qr(exact.transform(X))[0], np.linalg.qr(approx.transform(X))[0]
    assert np.linalg.svd(Qe.T @ Qn, compute_uv=False).min() > 0.99
    assert approx.score(task.target_test) > exact.score(task.target_test) - 0.02


def test_auto_switches_to_nystroem_beyond_the_exact_limit(monkeypatch):
    source, target = _pair()
    assert TCA(n_components=2).fit(source, target).approximation_ == "exact"
    monkeypatch.setattr(tca_module, "EXACT_MAX_SAMPLES", 50)
    model = TCA(n_components=2, n_landmarks=30, seed=1).fit(source, target)
    assert model.approximation_ == "nystroem" and model.basis_.shape == (30, 3)
    twin = TCA(n_components=2, n_landmarks=30, seed=1).fit(source, target)
    np.testing.assert_array_equal(twin.transform(target.X), model.transform(target.X))


def test_primal_solves_the_d_by_d_problem():
    source, target = _pair()
    X = np.concatenate([source.X, target.X]).astype(np.float64)
    model = TCA(kernel="primal", n_components=2, mu=0.1).fit(source, target)
    A, lam = model.projection_, model.eigenvalues_
    e = np.concatenate([np.full(len(source), 1 / len(source)), np.full(len(target), -1 / len(target))])
    Xc = X - X.mean(0)
    lhs = Xc.T @ Xc @ A
    np.testing.assert_allclose(lhs, (np.outer(X.T @ e, X.T @ e) + 0.1 * np.eye(3)) @ A * lam, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.transform(target.X), target.X @ A, rtol=1e-5)


def test_images_are_flattened():
    source, target = _pair(d=4)
    src = Domain(source.X.reshape(-1, 1, 2, 2), source.y)
    model = TCA(n_components=2).fit(src, Domain(target.X.reshape(-1, 1, 2, 2)))
    assert model.transform(target.X.reshape(-1, 1, 2, 2)).shape == (len(target), 2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mu": 0}, r"'mu' parameter of TCA must be .* Got 0 instead"),
        ({"mu": -1.0}, r"'mu' parameter of TCA must be .* Got -1.0 instead"),
        ({"gamma": 0.0}, r"'gamma' parameter of TCA must be .* Got 0.0 instead"),
        ({"gamma": -2}, r"'gamma' parameter of TCA must be .* Got -2 instead"),
        ({"kernel": "sigmoid"}, r"'kernel' parameter of TCA must be a str among .* Got 'sigmoid' instead"),
        ({"approximation": "rff"}, r"'approximation' parameter of TCA must be a str among .* Got 'rff' instead"),
        ({"gamma": float("inf")}, r"'gamma' parameter of TCA must be .* Got inf instead"),
        ({"gamma": float("nan")}, r"'gamma' parameter of TCA must be .* Got nan instead"),
        ({"degree": 0}, r"'degree' parameter of TCA must be an int in the range \[1, inf\). Got 0"),
        ({"kernel": "primal", "approximation": "nystroem"}, r"approximation='nystroem'"),
        ({"n_components": 0}, r"'n_components' parameter of TCA must be an int in the range \[1, inf\) or a str among"),
        ({"n_landmarks": 0}, r"'n_landmarks' parameter of TCA must be an int in the range \[1, inf\). Got 0"),
        ({"n_components": 70}, r"n_components=70 exceeds n_s \+ n_t - 1 = 40 \+ 30 - 1"),
        ({"kernel": "primal", "n_components": 4}, r"n_components=4 exceeds min\(n_features"),
        ({"kernel": "linear", "n_components": 4}, r"n_components=4 but only 3 transfer components"),
        ({"approximation": "nystroem", "n_landmarks": 5, "n_components": 6}, r"n_components=6 exceeds min\("),
    ],
)
def test_bad_parameters_name_the_argument(params, match):
    source, target = _pair()
    with pytest.raises(ValueError, match=match):
        TCA(**params).fit(source, target)


def test_too_small_target_and_wrong_width():
    source, target = _pair()
    with pytest.raises(ValueError, match="target has 1 sample.*at least 2 target samples"):
        TCA(n_components=2).fit(source, target.X[:1])
    model = TCA(n_components=2).fit(source, target)
    with pytest.raises(ValueError, match="X has 4 features, but TCA is expecting 3 features"):
        model.transform(np.zeros((5, 4)))


def test_auto_components_take_a_hundred_or_as_many_as_have_variance():
    from transferkit.methods.tca import AUTO_COMPONENTS

    rng = np.random.default_rng(0)
    wide = Domain(rng.normal(size=(150, 20)), np.arange(150) % 2), Domain(rng.normal(1, 1, size=(120, 20)))
    assert TCA().fit(*wide).projection_.shape[1] == AUTO_COMPONENTS
    # a linear kernel on 3 features has rank 3: "auto" keeps the 3 (an explicit 4 is refused, above)
    narrow = Domain(rng.normal(size=(40, 3)), np.arange(40) % 2), Domain(rng.normal(size=(30, 3)))
    model = TCA(kernel="linear").fit(*narrow)
    assert model.projection_.shape[1] == 3 and np.all(model.eigenvalues_ > 0)
    nystroem = TCA(approximation="nystroem", n_landmarks=40).fit(*wide)
    assert nystroem.projection_.shape[1] == 40  # at most one component per landmark


def test_median_gamma_strides_over_a_large_sample_and_refuses_identical_samples():
    X = np.random.default_rng(2).normal(size=(2001, 3)) * 0.05  # median squared distance well below 1
    Z = X[::3]  # at most MEDIAN_SAMPLES rows: every ceil(2001 / 1000) = 3rd
    d2 = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    assert median_gamma(X) == pytest.approx(1 / np.median(d2[np.triu_indices(len(Z), 1)]), rel=1e-9)
    with pytest.raises(ValueError) as err:
        median_gamma(np.ones((5, 3)))
    assert str(err.value) == (
        "the median heuristic needs distinct samples (median pairwise distance is 0); pass gamma."
    )


def test_the_documented_defaults():
    assert TCA().get_params() == {
        "estimator": None, "n_components": "auto", "mu": 1.0, "kernel": "rbf", "gamma": None, "degree": 2,
        "coef0": 1.0, "whiten": False, "approximation": "auto", "n_landmarks": 1000, "seed": 0,
    }  # fmt: skip


def test_the_polynomial_kernel_is_gamma_x_y_plus_coef0_to_the_degree():
    source, target = _pair()
    model = TCA(kernel="poly", degree=3, gamma=0.5, coef0=2.0, n_components=2).fit(source, target)
    X, Y = source.X[:4].astype(np.float64), target.X[:5].astype(np.float64)
    np.testing.assert_allclose(model._kernel(X, Y), (0.5 * X @ Y.T + 2.0) ** 3, rtol=1e-12)
    assert model.gamma_ == 0.5 and TCA(kernel="poly", n_components=2).fit(source, target).gamma_ is None


@pytest.mark.parametrize("approximation", ["exact", "nystroem"])
def test_kernel_rows_in_blocks_give_the_same_fit(monkeypatch, approximation):
    source, target = _pair(n_s=60, n_t=50)
    kw = dict(n_components=3, approximation=approximation, n_landmarks=20, seed=0)
    whole = TCA(**kw).fit(source, target)
    monkeypatch.setattr(tca_module, "_BLOCK_ELEMENTS", 7 * 20)  # blocks of a few rows
    blocked = TCA(**kw).fit(source, target)
    np.testing.assert_allclose(blocked.eigenvalues_, whole.eigenvalues_, rtol=1e-9)
    np.testing.assert_allclose(blocked.transform(target.X), whole.transform(target.X), rtol=1e-6, atol=1e-7)


def test_nystroem_drops_the_null_space_of_repeated_landmarks():
    """Every sample a landmark, each twice: the landmark kernel is singular, and the fit is still the exact one."""
    source, target = _pair(n_s=20, n_t=15)
    twice = lambda d: Domain(np.r_[d.X, d.X], None if d.y is None else np.r_[d.y, d.y])  # noqa: E731
    source, target = twice(source), twice(target)
    exact = TCA(n_components=3, mu=0.5, approximation="exact").fit(source, target)
    full = TCA(n_components=3, mu=0.5, approximation="nystroem", n_landmarks=70).fit(source, target)
    np.testing.assert_allclose(full.eigenvalues_, exact.eigenvalues_, rtol=1e-6)
    np.testing.assert_allclose(
        np.abs(full.transform(target.X)), np.abs(exact.transform(target.X)), rtol=1e-3, atol=1e-4
    )


def test_the_limits_on_components_at_their_boundaries(monkeypatch):
    source, target = _pair()
    assert TCA(kernel="primal", n_components=3).fit(source, target).projection_.shape == (3, 3)  # d = 3
    with pytest.raises(ValueError) as err:
        TCA(kernel="primal", n_components=4).fit(source, target)
    assert str(err.value) == (
        "n_components=4 exceeds min(n_features, n_s + n_t - 1) = min(3, 69); expected n_components <= 3."
    )
    assert TCA(approximation="nystroem", n_landmarks=5, n_components=5).fit(source, target).projection_.shape[1] == 5
    with pytest.raises(ValueError) as err:
        TCA(approximation="nystroem", n_landmarks=5, n_components=6).fit(source, target)
    assert str(err.value) == (
        "n_components=6 exceeds min(n_landmarks, n_s + n_t - 1) = min(5, 69); expected n_components <= 5."
    )
    small_s, small_t = _pair(n_s=5, n_t=2)  # two target samples are enough
    assert TCA(n_components=6, gamma=0.1).fit(small_s, small_t).projection_.shape[1] == 6  # n - 1 = 6
    monkeypatch.setattr(tca_module, "EXACT_MAX_SAMPLES", 70)  # exactly n pooled samples: still exact
    assert TCA(n_components=2).fit(source, target).approximation_ == "exact"


def test_tca_takes_both_domains_in_one_array_as_scikit_learn_does():
    source, target = _pair()
    X = np.r_[source.X, target.X]
    y = np.r_[source.y, np.full(len(target), -1)]
    sample_domain = np.r_[np.ones(len(source), int), -np.ones(len(target), int)]
    a = TCA(n_components=2).fit(X, y, sample_domain=sample_domain)
    np.testing.assert_allclose(a.projection_, TCA(n_components=2).fit(source, target).projection_)


def test_the_estimator_is_seeded_and_the_primal_limit_counts_samples():
    from sklearn.linear_model import SGDClassifier

    source, target = _pair()
    model = TCA(estimator=SGDClassifier(), seed=3, n_components=2).fit(source, target)
    assert model.model_.random_state == 3 and model.classes_.tolist() == [0, 1]
    few_s, few_t = _pair(n_s=3, n_t=2, d=6)  # n - 1 = 4 < d = 6: the pooled samples bound the primal subspace
    assert TCA(kernel="primal", n_components=4).fit(few_s, few_t).projection_.shape == (6, 4)
    with pytest.raises(
        ValueError, match=r"min\(n_features, n_s \+ n_t - 1\) = min\(6, 4\); expected n_components <= 4"
    ):
        TCA(kernel="primal", n_components=5).fit(few_s, few_t)


def test_nystroem_drops_the_landmark_kernels_null_space():
    """A degree-2 polynomial kernel on 5 features lives in 21 dimensions: 40 landmarks span it, so Nyström TCA
    is exact, once the landmark kernel's eigenvalues at rounding level (its null space) are dropped."""
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(80, 5)), np.arange(80) % 2), Domain(rng.normal(size=(70, 5)) + 0.5)
    approx = TCA(kernel="poly", n_components=3, approximation="nystroem", n_landmarks=40).fit(source, target)
    exact = TCA(kernel="poly", n_components=3, approximation="exact").fit(source, target)
    assert approx.approximation_ == "nystroem" and approx.basis_.shape == (40, 5)
    np.testing.assert_allclose(approx.eigenvalues_, exact.eigenvalues_, rtol=1e-8)
    X = np.r_[source.X, target.X]
    np.testing.assert_allclose(np.abs(approx.transform(X)), np.abs(exact.transform(X)), rtol=1e-6, atol=1e-6)


def test_more_components_than_the_nystroem_kernels_rank_are_refused_by_name():
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(40, 3)), np.arange(40) % 2), Domain(rng.normal(size=(40, 3)) + 1)
    with pytest.raises(ValueError) as err:  # a linear kernel on 3 features has rank 3, whatever the landmarks
        TCA(n_components=5, kernel="linear", approximation="nystroem", n_landmarks=20).fit(source, target)
    assert str(err.value) == (
        "n_components=5 exceeds the numerical rank 3 of the Nyström kernel on 20 landmarks; expected "
        "n_components <= 3 (or more n_landmarks)."
    )


def test_the_exact_fit_computes_the_pooled_kernel_once_and_trains_on_the_source_embedding(monkeypatch):
    source, target = _pair(n_s=60, n_t=50)
    rows = []
    original = TCA._kernel
    monkeypatch.setattr(TCA, "_kernel", lambda self, X, Y: rows.append(len(X)) or original(self, X, Y))
    model = TCA(n_components=3, approximation="exact").fit(source, target)
    assert rows == [110]  # k(X, X) only: the classifier's source rows are taken from it
    embedded = model._embed(source.X.astype(np.float64))  # what k(X_s, X) W gives when computed afresh
    again = LogisticRegression(max_iter=2000, random_state=0).fit(embedded, source.y)
    np.testing.assert_allclose(model.model_.coef_, again.coef_, rtol=1e-6, atol=1e-8)
