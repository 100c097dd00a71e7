"""Metrics against NumPy versions of their formulas."""

import numpy as np
import pytest

from transferkit.metrics import accuracy, class_balance, is_collapsed, mmd, prediction_entropy, proxy_a_distance


def test_prediction_entropy_matches_formula():
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]])
    expected = np.mean([np.log(2), 0.0, -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))])
    assert prediction_entropy(p) == pytest.approx(expected, rel=1e-12)


def test_class_balance_and_collapse():
    np.testing.assert_allclose(class_balance(np.array([0, 0, 2, 1]), 3), [0.5, 0.25, 0.25])
    assert is_collapsed(np.zeros(100, dtype=int), 10)
    assert not is_collapsed(np.arange(100) % 10, 10)


def test_proxy_a_distance_ranges_from_same_to_separable():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    assert proxy_a_distance(a, b) < 0.3
    assert proxy_a_distance(a, b + 5.0) == pytest.approx(2.0)


def test_proxy_a_distance_is_two_times_one_minus_two_error(monkeypatch):
    # with the classifier's held-out error fixed at 0.2, d_A = 2 (1 - 2 * 0.2) = 1.2
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 0.8
    from sklearn.svm import LinearSVC

    class Fixed(LinearSVC):
        def predict(self, X):
            d = np.r_[np.zeros(100), np.ones(100)]
            flip = np.zeros(200, bool)
            flip[:40] = True  # 40 of 200 wrong
            return np.where(flip, 1 - d, d)

    monkeypatch.setattr("sklearn.svm.LinearSVC", Fixed)
    from sklearn import model_selection

    monkeypatch.setattr(
        model_selection,
        "train_test_split",
        lambda X, d, **k: (X[::2], X[1::2], d[::2], np.r_[np.zeros(100), np.ones(100)]),
    )
    assert proxy_a_distance(a, b) == pytest.approx(1.2)


def test_mmd_wrapper_and_errors():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 2))
    assert mmd(a, a + 3) > mmd(a, rng.normal(size=(50, 2)))
    with pytest.raises(ValueError, match="expected the same"):
        proxy_a_distance(a, np.zeros((50, 3)))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="n_samples > 0"):
        prediction_entropy(np.zeros((0, 2)))
    assert accuracy(np.array([1, 2, 3]), np.array([1, 2, 0])) == pytest.approx(2 / 3)
