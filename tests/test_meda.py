"""MEDA: the geodesic flow kernel against its integral, the alignment terms at work, bad settings named."""

import numpy as np
import pytest

from transferkit import Domain
from transferkit.methods.meda import MEDA, geodesic_flow_kernel


def _orthonormal(rng, D, d):
    return np.linalg.qr(rng.normal(size=(D, d)))[0]


def test_the_geodesic_flow_kernel_is_the_integral_over_the_geodesic_of_the_paper():
    import scipy.linalg

    rng = np.random.default_rng(0)
    D, d = 12, 3
    Ps, Pt = _orthonormal(rng, D, d), _orthonormal(rng, D, d)
    # Gong et al. (CVPR 2012): Ps^T Pt = U1 Gamma V^T, Rs^T Pt = -U2 Sigma V^T, Phi(t) = Ps U1 Gamma(t) - Rs U2 Sigma(t)
    Rs = scipy.linalg.null_space(Ps.T)
    U1, gamma, Vt = np.linalg.svd(Ps.T @ Pt)
    theta = np.arccos(np.clip(gamma, -1, 1))
    U2 = -(Rs.T @ Pt @ Vt.T) / np.sin(theta)

    def phi(t):
        return Ps @ U1 * np.cos(t * theta) - Rs @ U2 * np.sin(t * theta)

    assert np.allclose(phi(1) @ phi(1).T, Pt @ Pt.T)  # the geodesic ends at the target subspace
    ts = np.linspace(0, 1, 4001)
    G = np.trapezoid(np.stack([phi(t) @ phi(t).T for t in ts]), ts, axis=0)
    B, C = geodesic_flow_kernel(Ps, Pt)
    np.testing.assert_allclose(B.T @ B, np.eye(2 * d), atol=1e-10)
    np.testing.assert_allclose(B @ C @ B.T, G, atol=1e-7)
    same = geodesic_flow_kernel(Ps, Ps)  # one subspace: no angle, G is its projection
    np.testing.assert_allclose(same[0] @ same[1] @ same[0].T, Ps @ Ps.T, atol=1e-10)
    np.testing.assert_array_equal(same[0][:, d:], 0.0)  # no angle: no direction out of the subspace


@pytest.fixture(scope="module")
def digits():
    from transferkit.datasets import load_domain

    try:
        S, T = load_domain("digits16:usps", "all"), load_domain("digits16:mnist", "all")
    except FileNotFoundError:
        pytest.skip("the JDA digit files are not in TRANSFERKIT_DATA")
    rng = np.random.default_rng(0)
    i, j = rng.permutation(len(S))[:500], rng.permutation(len(T))[:500]
    flat = lambda d: d.X.reshape(len(d), -1)  # noqa: E731
    return Domain(flat(S)[i], S.y[i]), Domain(flat(T)[j]), T.y[j]


def test_the_alignment_terms_lift_the_kernel_classifier_on_usps_to_mnist(digits):
    source, target, y = digits
    acc = lambda m: np.mean(m.predict(target.X) == y)  # noqa: E731
    meda = MEDA().fit(source, target)
    unaligned = MEDA(mmd_weight=0.0, manifold_weight=0.0).fit(source, target)
    marginal = MEDA(balance=0.0).fit(source, target)
    flat = MEDA(manifold_weight=0.0).fit(source, target)
    assert acc(meda) > acc(unaligned) + 0.1  # 0.584 against 0.396 when measured
    assert acc(meda) > acc(marginal) + 0.05  # the class-conditional terms (0.458 marginal only)
    assert acc(meda) > acc(flat) + 0.03  # the Laplacian term (0.518 without it)
    assert len(meda.history_) == 10 and all(0 <= h["balance"] <= 1 for h in meda.history_)
    np.testing.assert_array_equal(meda.predict(target.X), meda.pseudo_labels_)  # the last round's labels
    proba = meda.predict_proba(target.X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(meda.classes_[proba.argmax(1)], meda.predict(target.X))


def test_bad_settings_are_named_before_any_fitting():
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(30, 6)), np.arange(30) % 2), Domain(rng.normal(size=(30, 6)))
    with pytest.raises(ValueError, match=r"n_components=4 exceeds min\(n_features // 2, n_samples - 1\) = 3"):
        MEDA(n_components=4).fit(source, target)
    with pytest.raises(ValueError, match="needs at least 2 features"):
        MEDA().fit(Domain(source.X[:, :1], source.y), Domain(target.X[:, :1]))
    with pytest.raises(ValueError, match="'ridge' parameter of MEDA"):
        MEDA(ridge=0).fit(source, target)
    assert MEDA().fit(source, target).transform(target.X).shape == (30, 6)  # d = 3 on 6 features: 2d numbers


def test_the_laplacian_is_the_papers_on_the_cosine_weighted_neighbour_graph():
    """L = I - D^{-1/2} W D^{-1/2}, W_ij = cos(z_i, z_j) where j is among the p nearest of i or i of j (NumPy)."""
    from transferkit.methods.meda import normalized_laplacian

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(9, 4))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    p = 3
    d2 = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    near = np.zeros((9, 9), bool)
    for i in range(9):
        near[i, np.argsort(d2[i])[:p]] = True  # itself first, then its p - 1 nearest others
    near |= near.T
    np.fill_diagonal(near, True)
    W = np.where(near, np.clip(Z @ Z.T, 0, None), 0.0)
    D = W.sum(1)
    expected = np.eye(9) - W / np.sqrt(np.outer(D, D))
    np.testing.assert_allclose(normalized_laplacian(Z, p).toarray(), expected, atol=1e-12)
    three = normalized_laplacian(Z[:3], 10).toarray()  # more neighbours asked than samples: each of the others
    W3 = np.clip(Z[:3] @ Z[:3].T, 0, None)
    np.testing.assert_allclose(three, np.eye(3) - W3 / np.sqrt(np.outer(W3.sum(1), W3.sum(1))), atol=1e-12)


def test_scores_become_a_distribution_uniform_where_every_score_is_at_most_zero():
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(30, 6)), np.arange(30) % 3), Domain(rng.normal(size=(30, 6)))
    model = MEDA(n_iter=2).fit(source, target)
    F = np.array([[2.0, -1.0, 1.0], [-0.5, -0.1, -3.0], [0.0, 0.0, 4.0]])
    model.decision_function = lambda X: F
    np.testing.assert_allclose(model.predict_proba(np.zeros((3, 6))), [[2 / 3, 0, 1 / 3], [1 / 3] * 3, [0, 0, 1]])
    Z = model.transform(target.X)
    scores = model.model_.decision_function(Z)
    np.testing.assert_array_equal(model.model_.predict(Z), model.classes_[scores.argmax(1)])


def test_manifold_features_are_unit_rows_and_a_zero_row_stays_zero():
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(30, 6)), np.arange(30) % 3), Domain(rng.normal(size=(30, 6)))
    model = MEDA(n_iter=1).fit(source, target)
    X = np.vstack([3 * target.X[:4], np.zeros((1, 6))])
    Z = model.transform(X)
    raw = X @ model.mapping_
    np.testing.assert_allclose(Z[:4], raw[:4] / np.linalg.norm(raw[:4], axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(Z[4], 0.0)


def test_the_subspace_dimension_and_the_documented_defaults():
    rng = np.random.default_rng(0)
    source, target = Domain(rng.normal(size=(30, 50)), np.arange(30) % 2), Domain(rng.normal(size=(30, 50)))
    assert MEDA(n_iter=1).fit(source, target).transform(target.X).shape == (30, 40)  # auto: d = 20 of 25 possible
    two = Domain(source.X[:, :2], source.y), Domain(target.X[:, :2])
    assert MEDA(n_iter=1).fit(*two).transform(target.X[:, :2]).shape == (30, 2)  # two features: d = 1
    few = Domain(source.X[:4], source.y[:4]), Domain(target.X[:3])  # d <= n_source - 1 = 3, n_target - 1 = 2
    assert MEDA(n_iter=1, n_components=2, balance=0.5).fit(*few).transform(target.X).shape == (30, 4)
    with pytest.raises(ValueError, match=r"n_components=3 exceeds min\(n_features // 2, n_samples - 1\) = 2"):
        MEDA(n_iter=1, n_components=3, balance=0.5).fit(*few)
    fewer_source = Domain(source.X[:3], np.array([0, 1, 0])), Domain(target.X[:5])  # n_source - 1 = 2 bounds d
    with pytest.raises(ValueError, match=r"n_components=3 exceeds min\(n_features // 2, n_samples - 1\) = 2"):
        MEDA(n_iter=1, n_components=3, balance=0.5).fit(*fewer_source)
    assert MEDA().get_params() == {
        "n_components": "auto", "mmd_weight": 10.0, "ridge": 0.1, "manifold_weight": 1.0,
        "n_neighbors": 10, "n_iter": 10, "balance": "auto", "seed": 0,
    }  # fmt: skip


def test_the_first_pseudo_labels_are_one_nearest_neighbours_and_fits_repeat():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    source = Domain(rng.normal(size=(40, 8)), np.arange(40) % 3)
    target = Domain(rng.normal(size=(40, 8)) + 0.3)
    model = MEDA(n_iter=1).fit(source, target)
    Z = model.transform(np.r_[source.X, target.X])
    first = KNeighborsClassifier(n_neighbors=1).fit(Z[:40], source.y).predict(Z[40:])
    assert model.history_[0]["changed"] == pytest.approx(np.mean(model.pseudo_labels_ != first))
    assert 0 < model.history_[0]["changed"] < 1
    again = MEDA(n_iter=3).fit(source, target)
    assert again.history_ == MEDA(n_iter=3).fit(source, target).history_  # the balance estimate is seeded
    X = np.r_[source.X, target.X]
    y = np.r_[source.y, np.full(40, -1)]
    sklearn_style = MEDA(n_iter=3).fit(X, y, sample_domain=np.r_[np.ones(40, int), -np.ones(40, int)])
    np.testing.assert_array_equal(sklearn_style.pseudo_labels_, again.pseudo_labels_)


@pytest.mark.parametrize("mu", [0.2, 0.9])
def test_the_first_rounds_coefficients_solve_the_papers_system_with_the_balanced_mmd(mu):
    """beta = ((E + lambda M + rho L) K + eta I)^{-1} E Y with M = ((1 - mu) C M_0 + mu sum_c M_c) / ||.||_F,
    the M_c from the first 1-NN pseudo-labels: written out in NumPy from the paper's Eq. and BDA's M."""
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.neighbors import KNeighborsClassifier

    from transferkit.methods.jda import jda_mmd_matrix
    from transferkit.methods.meda import normalized_laplacian

    rng = np.random.default_rng(4)
    source = Domain(rng.normal(size=(30, 8)), np.arange(30) % 3)
    target = Domain(rng.normal(size=(24, 8)) + 0.4)
    model = MEDA(n_iter=1, balance=mu, mmd_weight=3.0, ridge=0.2, manifold_weight=0.7, n_neighbors=4).fit(
        source, target
    )
    Z = model.transform(np.r_[source.X, target.X])
    K = rbf_kernel(Z, gamma=0.5)
    pseudo = KNeighborsClassifier(n_neighbors=1).fit(Z[:30], source.y).predict(Z[30:])
    classes = np.array([0, 1, 2])
    M0 = jda_mmd_matrix(30, 24, source.y, None, classes)  # C M_0 (the authors' weighting)
    Mc = jda_mmd_matrix(30, 24, source.y, pseudo, classes) - M0  # sum_c M_c
    M = (1 - mu) * M0 + mu * Mc
    M /= np.linalg.norm(M)
    E = np.diag(np.r_[np.ones(30), np.zeros(24)])
    Y = np.zeros((54, 3))
    Y[np.arange(30), source.y] = 1.0
    L = normalized_laplacian(Z, 4).toarray()
    beta = np.linalg.solve((E + 3.0 * M + 0.7 * L) @ K + 0.2 * np.eye(54), E @ Y)
    np.testing.assert_allclose(model.model_.coef_, beta, rtol=1e-6, atol=1e-9)
    assert model.history_[0]["balance"] == mu


def test_the_features_are_the_geodesic_flow_between_each_domains_own_pca_subspace():
    """mapping_ = B C^(1/2) with (B, C) = geodesic_flow_kernel(P_s, P_t): P_s the source's d principal
    directions and P_t the target's (Gong et al.'s subspaces, each domain by itself)."""
    from sklearn.decomposition import PCA

    from transferkit.methods.meda import geodesic_flow_kernel

    rng = np.random.default_rng(4)
    Xs = rng.normal(size=(40, 12)) * np.linspace(3, 0.5, 12)  # different principal directions per domain
    Xt = rng.normal(size=(40, 12)) * np.linspace(0.5, 3, 12) + 1.0
    source, target = Domain(Xs, np.arange(40) % 2), Domain(Xt)
    model = MEDA(n_components=3, n_iter=1, balance=0.5).fit(source, target)
    Ps, Pt = (PCA(3, random_state=0).fit(d.X.astype(np.float64)).components_.T for d in (source, target))
    B, C = geodesic_flow_kernel(Ps, Pt)
    w, Q = np.linalg.eigh(C)
    np.testing.assert_allclose(model.mapping_, B @ (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T, atol=1e-10)
    same = geodesic_flow_kernel(Pt, Pt)[0]  # the target's subspace twice gives another map
    assert not np.allclose(model.mapping_ @ model.mapping_.T, same @ same.T, atol=1e-3)
