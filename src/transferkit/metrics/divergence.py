r"""How different two domains look: the proxy A-distance and MMD on arrays of features."""

from __future__ import annotations

import numpy as np

from transferkit.data import check_array

__all__ = ["proxy_a_distance", "mmd"]


def proxy_a_distance(
    source: np.ndarray, target: np.ndarray, test_size: float = 0.5, seed: int = 0, C: float = 1.0
) -> float:
    r"""Proxy A-distance :math:`\hat d_A = 2(1 - 2\epsilon)` (Ben-David et al., NIPS 2007).

    :math:`\epsilon` is the held-out error of a linear classifier trained to tell source from
    target samples (Ganin et al., JMLR 2016, Sec. 5.1.5 use a linear SVM). 0 means the domains
    cannot be told apart; 2 means they are perfectly separable. Errors above 0.5 are clipped.

    Parameters
    ----------
    source, target : array of shape (n, d) and (m, d)
        Features (flattened when higher-dimensional).
    test_size : float
        Fraction held out to measure :math:`\epsilon`, stratified by domain.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    Xs = check_array(np.asarray(source).reshape(len(source), -1), "source")
    Xt = check_array(np.asarray(target).reshape(len(target), -1), "target")
    if Xs.shape[1] != Xt.shape[1]:
        raise ValueError(f"source has {Xs.shape[1]} features and target {Xt.shape[1]}; expected the same.")
    if len(Xs) < 4 or len(Xt) < 4:
        raise ValueError(f"proxy_a_distance needs at least 4 samples per domain; got {len(Xs)} and {len(Xt)}.")
    X = np.concatenate([Xs, Xt])
    d = np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]
    X_tr, X_te, d_tr, d_te = train_test_split(X, d, test_size=test_size, random_state=seed, stratify=d)
    scaler = StandardScaler().fit(X_tr)
    clf = LinearSVC(C=C, dual="auto", max_iter=5000).fit(scaler.transform(X_tr), d_tr)
    err = float(np.mean(clf.predict(scaler.transform(X_te)) != d_te))
    return 2.0 * (1.0 - 2.0 * min(err, 0.5))


def mmd(source: np.ndarray, target: np.ndarray, kernel: str = "gaussian", estimator: str = "unbiased") -> float:
    """Squared MMD between two arrays of features (see :func:`transferkit.nn.mmd2`)."""
    import torch

    from transferkit.nn.divergences import mmd2

    Xs = check_array(np.asarray(source).reshape(len(source), -1), "source")
    Xt = check_array(np.asarray(target).reshape(len(target), -1), "target")
    return float(mmd2(torch.from_numpy(Xs).double(), torch.from_numpy(Xt).double(), kernel=kernel, estimator=estimator))
