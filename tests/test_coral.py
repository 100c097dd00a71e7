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
    with pytest.raises(ValueError, match="reg="):
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
