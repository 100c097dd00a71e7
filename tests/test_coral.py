"""Shallow CORAL: the re-coloured source has the target's (regularised) covariance."""

import numpy as np
import pytest

from transferkit import CORAL, Domain
from transferkit.methods.coral import coral_transform


def test_recoloured_source_covariance_equals_target_covariance():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    Xt = rng.normal(size=(250, 4)) @ rng.normal(size=(4, 4)) + 2
    A = coral_transform(Xs, Xt, reg=1.0)
    # NumPy form of Algorithm 1: A^T (cov(Ds) + I) A = cov(Dt) + I
    lhs = A.T @ (np.cov(Xs, rowvar=False) + np.eye(4)) @ A
    np.testing.assert_allclose(lhs, np.cov(Xt, rowvar=False) + np.eye(4), rtol=1e-8, atol=1e-8)


def test_coral_helps_when_the_target_is_a_rescaled_source():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    Zs, Zt = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    ys, yt = (Zs.sum(1) > 0).astype(int), (Zt.sum(1) > 0).astype(int)
    S = np.diag([10.0, 2.0])  # target features: the same latent variables, stretched unequally
    source, target = Domain(Zs, ys), Domain(Zt @ S, yt)
    model = CORAL().fit(source, target.unlabelled())
    source_only = LogisticRegression().fit(Zs, ys).score(Zt @ S, yt)
    assert model.score(target) > source_only + 0.1
    # with the ridge, the re-coloured source covariance is cov(Dt) + I - A^T A
    A = model.A_
    expected = np.cov(Zt @ S, rowvar=False) + np.eye(2) - A.T @ A
    np.testing.assert_allclose(np.cov(model.transform(Zs), rowvar=False), expected, rtol=1e-4, atol=1e-4)


def test_errors():
    X = np.random.default_rng(2).normal(size=(20, 3))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=r"The 'reg' parameter of CORAL must be a float in the range \(0.0, inf\)"):
        CORAL(reg=0).fit(Domain(X, y), Domain(X))
    with pytest.raises(ValueError, match="feature vectors"):
        CORAL().fit(Domain(np.zeros((20, 1, 2, 2)) + X[:, :1, None, None], y), Domain(np.zeros((20, 1, 2, 2))))


def test_any_classifier_predicts_and_a_missing_predict_proba_is_named():
    import numpy as np
    from sklearn.svm import LinearSVC

    from transferkit import TCA, Domain
    from transferkit.methods import CORAL

    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(80, 3)), rng.normal(size=(60, 3)) + 0.5
    source, target = Domain(Xs, (Xs[:, 0] > 0).astype(int), "s"), Domain(Xt, None, "t")
    for model in (CORAL(estimator=LinearSVC()), TCA(estimator=LinearSVC(), n_components=2)):
        model.fit(source, target)
        assert set(model.predict(Xt)) <= {0, 1}
        with pytest.raises(AttributeError, match="LinearSVC gives no probabilities"):
            model.predict_proba(Xt)


def test_the_fit_is_algorithm_1_with_the_ridge_asked_for():
    """A = C_S^{-1/2} C_T^{1/2} with C = cov + reg I (NumPy, scipy's matrix square root); the classifier is fitted on
    Xs A, seeded, and the re-coloured features come back as float32."""
    from scipy.linalg import sqrtm
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(3)
    Xs = rng.normal(size=(50, 3)) * 0.1  # small variances: eigenvalues of C_S below 1 with a small ridge
    Xt = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 3))
    y = (Xs[:, 0] > 0).astype(int)

    def algorithm_1(reg):
        cs, ct = np.cov(Xs, rowvar=False) + reg * np.eye(3), np.cov(Xt, rowvar=False) + reg * np.eye(3)
        return np.real(np.linalg.inv(sqrtm(cs)) @ sqrtm(ct))

    np.testing.assert_allclose(coral_transform(Xs, Xt), algorithm_1(1.0), rtol=1e-8, atol=1e-10)
    model = CORAL(reg=0.01, estimator=SGDClassifier(), seed=3).fit(Domain(Xs, y), Domain(Xt))
    np.testing.assert_allclose(model.A_, algorithm_1(0.01), rtol=1e-5, atol=1e-6)  # a Domain holds float32
    assert model.model_.random_state == 3 and model.classes_.tolist() == [0, 1]
    assert model.transform(Xs).dtype == np.float32
    np.testing.assert_allclose(model.transform(Xs), Xs @ algorithm_1(0.01), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(CORAL().fit(Domain(Xs, y), Domain(Xt)).A_, algorithm_1(1.0), rtol=1e-5, atol=1e-6)


def test_coral_takes_both_domains_in_one_array_as_scikit_learn_does():
    rng = np.random.default_rng(4)
    Xs, Xt = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) * 2
    y = (Xs[:, 0] > 0).astype(int)
    a = CORAL().fit(np.r_[Xs, Xt], np.r_[y, np.full(20, -1)], sample_domain=np.r_[np.ones(30, int), -np.ones(20, int)])
    np.testing.assert_allclose(a.A_, CORAL().fit(Domain(Xs, y), Domain(Xt)).A_)


@pytest.mark.parametrize("n_s, n_t", [(12, 30), (30, 12), (9, 11)])
def test_more_features_than_samples_take_the_gram_matrix_and_give_algorithm_1(n_s, n_t):
    """d = 20 against 9-30 samples: each power from the covariance or the Gram matrix, whichever is smaller,
    equals scipy's matrix power of the regularised covariance."""
    from scipy.linalg import fractional_matrix_power

    from transferkit.methods.coral import power_factors

    rng = np.random.default_rng(5)
    Xs, Xt = rng.normal(size=(n_s, 20)) * 3, rng.normal(size=(n_t, 20)) @ rng.normal(size=(20, 20))
    for X in (Xs, Xt):
        C = np.cov(X, rowvar=False) + 0.5 * np.eye(20)
        for p in (-0.5, 0.5):
            U, D = power_factors(X, 0.5, p)
            assert U.shape[1] <= min(len(X) - 1, 20)  # the rank of the covariance at most
            np.testing.assert_allclose(
                0.5**p * np.eye(20) + (U * D) @ U.T, np.real(fractional_matrix_power(C, p)), atol=1e-9
            )
    expected = np.real(fractional_matrix_power(np.cov(Xs, rowvar=False) + np.eye(20), -0.5)) @ np.real(
        fractional_matrix_power(np.cov(Xt, rowvar=False) + np.eye(20), 0.5)
    )
    np.testing.assert_allclose(coral_transform(Xs, Xt), expected, atol=1e-9)


def test_above_the_dense_limit_the_map_is_applied_from_its_factors(monkeypatch):
    from transferkit.methods import coral

    rng = np.random.default_rng(6)
    Xs, Xt = rng.normal(size=(40, 25)), rng.normal(size=(30, 25)) * 2 + 1
    y = (Xs[:, 0] > 0).astype(int)
    dense = CORAL().fit(Domain(Xs, y), Domain(Xt))
    monkeypatch.setattr(coral, "DENSE_LIMIT", 24)
    factored = CORAL().fit(Domain(Xs, y), Domain(Xt))
    assert dense.factors_ is None and factored.A_ is None  # no d x d matrix above the limit
    np.testing.assert_allclose(factored.transform(Xt), dense.transform(Xt), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(factored.predict(Xt), dense.predict(Xt))
