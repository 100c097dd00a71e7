"""Small data sets the tests share."""

import numpy as np

from transferkit import Domain


def gain_offset_shift(seed=0, n=300, n_test=200):
    """Two Gaussian classes; the target is the same problem seen through a gain of 3 and an offset of 5.

    Source, target (labelled: drop the labels where a method must not see them) and target test.
    """
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        return (rng.normal(size=(n, 2)) + 2.0 * y[:, None]).astype(np.float32), y

    (Xs, ys), (Xt, yt), (Xtt, ytt) = draw(n), draw(n), draw(n_test)
    return Domain(Xs, ys, "s"), Domain(3 * Xt + 5, yt, "t"), Domain(3 * Xtt + 5, ytt, "t-test")
