"""Self-taught learning: sparse coding against a NumPy solver, feature learners, the estimator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from transferkit import Domain
from transferkit.methods.autoencoder import Autoencoder, sparsity_kl
from transferkit.methods.self_taught import SelfTaught
from transferkit.methods.sparse_coding import SparseCoding


def sparse_world(seed=0, n=1500, d=30, k=12, active=2, noise=0.05):
    """Samples that are sparse combinations of ``k`` unit-norm bases in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(k, d))
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    A = np.zeros((n, k))
    for i in range(n):
        A[i, rng.choice(k, active, replace=False)] = rng.uniform(1, 3, size=active) * rng.choice([-1, 1], active)
    X = A @ B + noise * rng.normal(size=(n, d))
    return X.astype(np.float32), A, B


def ista(x, B, beta, steps=5000):
    """min_a ||x - a B||^2 + beta ||a||_1 by iterative soft thresholding (Raina et al., eq. 2)."""
    L = 2 * np.linalg.norm(B @ B.T, 2)
    a = np.zeros(len(B))
    for _ in range(steps):
        g = -2 * (x - a @ B) @ B.T
        z = a - g / L
        a = np.sign(z) * np.maximum(np.abs(z) - beta / L, 0)
    return a


def test_activations_solve_raina_equation_2():
    X, _, _ = sparse_world()
    sc = SparseCoding(n_bases=12, beta=0.1, n_iter=20).fit(X)
    A = sc.transform(X[:5])
    Z = (X[:5] - sc.mean_) / sc.std_
    for a, z in zip(A, Z, strict=True):
        ref = ista(z.astype(np.float64), sc.bases_.astype(np.float64), 0.1)
        np.testing.assert_allclose(a, ref, atol=2e-3)
    assert np.allclose(np.linalg.norm(sc.bases_, axis=1), 1, atol=1e-4)  # ||b_j|| <= 1, active at the optimum


def test_objective_is_equation_2_summed_at_the_solved_activations():
    """objective(X) = sum_i ||z_i - a_i B||^2 + beta ||a_i||_1 at the activations of eq. 2, on the scaled inputs;
    no smaller than ISTA's optimum, and below what no activation (a = 0) or doubled ones cost."""
    X, _, _ = sparse_world(n=300)
    sc = SparseCoding(n_bases=12, beta=0.4, n_iter=5).fit(X)
    Z = ((X[:8] - sc.mean_) / sc.std_).astype(np.float64)
    B = sc.bases_.astype(np.float64)

    def eq2(A):
        return float(((Z - A @ B) ** 2).sum() + 0.4 * np.abs(A).sum())

    A = sc.transform(X[:8]).astype(np.float64)
    assert sc.objective(X[:8]) == pytest.approx(eq2(A), rel=1e-5)
    optimum = eq2(np.array([ista(z, B, 0.4) for z in Z]))
    assert optimum - 1e-4 <= sc.objective(X[:8]) <= optimum + 1e-3
    assert sc.objective(X[:8]) < min(eq2(np.zeros_like(A)), eq2(2 * A))


def test_sparse_coding_scales_inputs_and_learns_for_n_iter_full_passes():
    """Inputs are centred on the unlabelled mean and divided by the mean norm of the centred samples (with
    scale=True, each feature by its deviation first); an offset added to every sample changes nothing;
    the bases are learnt for exactly n_iter passes of 256-sample batches."""
    X, _, _ = sparse_world(n=300)
    X = X * np.linspace(0.5, 3.0, X.shape[1], dtype=np.float32)  # features of different spreads
    for scale in (False, True):
        sc = SparseCoding(n_bases=6, n_iter=3, scale=scale).fit(X)
        per_feature = X.std(0) + 1e-6 if scale else np.ones(X.shape[1])
        norm = np.linalg.norm((X - X.mean(0)) / per_feature, axis=1).mean()
        np.testing.assert_allclose(sc.mean_, X.mean(0), rtol=1e-6)
        np.testing.assert_allclose(sc.std_, per_feature * norm, rtol=1e-5)
        shifted = SparseCoding(n_bases=6, n_iter=3, scale=scale).fit(X + 100.0)
        np.testing.assert_allclose(shifted.bases_, sc.bases_, atol=1e-3)
        codes = sc.transform(X[:20])
        assert codes.dtype == np.float32
        np.testing.assert_allclose(shifted.transform(X[:20] + 100.0), codes, atol=1e-3)
    # no early stop: 40 passes of the 2 batches of 300 rows (scikit-learn's default would stop after 9 here)
    long = SparseCoding(n_bases=12, beta=2.0, n_iter=40).fit(sparse_world(n=300)[0])
    assert (long.dictionary_learner_.n_iter_, long.dictionary_learner_.n_steps_) == (40, 80)
    small = X * 1e-3  # samples of mean norm under 1 are scaled up by it, not by the 1e-12 floor
    norm = np.linalg.norm(small - small.mean(0), axis=1).mean()
    assert norm < 1
    np.testing.assert_allclose(SparseCoding(n_bases=6, n_iter=1).fit(small).std_, norm, rtol=1e-5)
    assert SparseCoding(n_bases=6, n_iter=1).fit(X[:257]).dictionary_learner_.n_steps_ == 2  # batches of 256
    narrow = X.copy()
    narrow[:, 0] *= 1e-3  # a feature whose deviation is near the 1e-6 that guards it
    sc = SparseCoding(n_bases=6, n_iter=1, scale=True).fit(narrow)
    per_feature = narrow.std(0) + 1e-6
    np.testing.assert_allclose(
        sc.std_, per_feature * np.linalg.norm((narrow - narrow.mean(0)) / per_feature, axis=1).mean(), rtol=1e-5
    )
    assert SparseCoding().get_params() == {"n_bases": 256, "beta": 0.1, "n_iter": 10, "scale": False, "seed": 0}
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError) as err:
        SparseCoding().transform(X)
    assert str(err.value) == "this SparseCoding is not fitted yet; call fit(X_unlabelled) first."
    with pytest.raises(ValueError) as err:
        sc.transform(np.where(X > 1, np.nan, X))
    assert str(err.value).startswith("X contains NaN or infinity")


def test_sparse_coding_recovers_the_generating_bases():
    X, _, B = sparse_world()
    sc = SparseCoding(n_bases=12, beta=0.3, n_iter=100).fit(X)
    cos = np.abs(sc.bases_ @ B.T)
    assert np.median(cos.max(0)) > 0.95  # most true bases have a learnt twin
    random = np.abs(SparseCoding(n_bases=12, beta=0.3, n_iter=1).fit(X[:20]).bases_ @ B.T)
    assert np.median(cos.max(0)) > np.median(random.max(0))
    A = sc.transform(X)
    assert np.mean(np.abs(A) > 1e-6) < 0.4  # sparse activations


def test_sparsity_kl_matches_formula():
    import torch

    h = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    t = 0.05
    m = np.array([0.2, 0.6])
    ref = np.sum(t * np.log(t / m) + (1 - t) * np.log((1 - t) / (1 - m)))
    assert float(sparsity_kl(h, t)) == pytest.approx(ref, rel=1e-5)


def test_sparsity_kl_clamps_dead_and_saturated_units_in_the_inputs_precision():
    """A unit that is always 0 or always 1 gives a finite penalty: its mean is clamped into [1e-6, 1 - 1e-6]."""
    import torch

    h = torch.tensor([[0.0, 1.0, 0.25], [0.0, 1.0, 0.5]], dtype=torch.float64)
    t = 0.05
    m = np.array([1e-6, 1 - 1e-6, 0.375])
    ref = np.sum(t * np.log(t / m) + (1 - t) * np.log((1 - t) / (1 - m)))
    got = sparsity_kl(h, t)
    assert got.dtype == torch.float64 and float(got) == pytest.approx(ref, rel=1e-12)


def test_autoencoder_objective_features_and_error_against_numpy():
    """The training loss is the mean over samples of the squared error summed over features, plus rho KL;
    features are sigmoid(W z + b) and the error is measured on z = (x - mean) / (std + 1e-3)."""
    import torch
    from scipy.special import expit

    from transferkit.methods.autoencoder import _AutoencoderNet, _ReconstructionObjective

    X, _, _ = sparse_world(n=64, d=10, k=4)
    torch.manual_seed(0)
    net = _AutoencoderNet(10, 3).double()
    x = torch.from_numpy(X.astype(np.float64))
    W, b = net.encoder[0].weight.detach().numpy(), net.encoder[0].bias.detach().numpy()
    V, c = net.decoder.weight.detach().numpy(), net.decoder.bias.detach().numpy()
    H = expit(X @ W.T + b)
    error = float((((H @ V.T + c) - X) ** 2).sum(1).mean())
    with torch.no_grad():
        plain = _ReconstructionObjective(net, 0.0, 0.05)({"xs": x}, 0.0)
        sparse = _ReconstructionObjective(net, 2.0, 0.05)({"xs": x}, 0.0)
    assert set(plain) == {"loss", "reconstruction"}
    assert float(plain["reconstruction"]) == pytest.approx(error, rel=1e-10)
    assert float(plain["loss"]) == pytest.approx(error, rel=1e-10)
    m, t = H.mean(0), 0.05
    kl = np.sum(t * np.log(t / m) + (1 - t) * np.log((1 - t) / (1 - m)))
    assert float(sparse["loss"]) == pytest.approx(error + 2.0 * kl, rel=1e-10)

    ae = Autoencoder(n_hidden=3, epochs=2, device="cpu").fit(X)
    np.testing.assert_allclose(ae.mean_, X.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ae.std_, X.std(0) + 1e-3, rtol=1e-6)
    Z = (X.astype(np.float64) - X.mean(0)) / (X.std(0) + 1e-3)
    enc, dec = ae.model_.encoder[0], ae.model_.decoder
    W, b = enc.weight.detach().double().numpy(), enc.bias.detach().double().numpy()
    H = ae.transform(X)
    assert H.dtype == np.float32
    np.testing.assert_allclose(H, expit(Z @ W.T + b), rtol=1e-5, atol=1e-6)
    V, c = dec.weight.detach().double().numpy(), dec.bias.detach().double().numpy()
    expected = float((((expit(Z @ W.T + b) @ V.T + c) - Z) ** 2).sum(1).mean())
    assert ae.reconstruction_error(X) == pytest.approx(expected, rel=1e-4)
    assert "reconstruction" in ae.history_[-1]


def test_autoencoder_trains_on_standardised_inputs_with_its_own_settings(monkeypatch, capsys):
    """An offset added to every sample changes nothing (the inputs are standardised before training); every
    training setting reaches the loop; progress is shown, under the learner's name, only with verbose."""
    from transferkit.methods import autoencoder

    X, _, _ = sparse_world(n=120, d=10, k=4)
    ae = Autoencoder(n_hidden=3, epochs=3, device="cpu").fit(X)
    shifted = Autoencoder(n_hidden=3, epochs=3, device="cpu").fit(X + 50.0)
    np.testing.assert_allclose(shifted.transform(X + 50.0), ae.transform(X), atol=1e-4)
    assert len(ae.history_) == 3 and "reconstruction" in ae.history_[0]
    assert capsys.readouterr().err == ""
    Autoencoder(n_hidden=3, epochs=1, device="cpu", verbose=True).fit(X)
    assert "autoencoder" in capsys.readouterr().err
    seen = {}
    real = autoencoder.fit_loop

    def spy(objective, data, target, config):
        seen.update(config=config, dtype=data["xs"].dtype)
        return real(objective, data, target, config)

    monkeypatch.setattr(autoencoder, "fit_loop", spy)
    Autoencoder(n_hidden=3, epochs=2, batch_size=7, lr=0.02, weight_decay=0.5, seed=3, device="cpu").fit(X)
    c = seen["config"]
    assert (c.epochs, c.batch_size, c.lr, c.weight_decay, c.seed, c.device) == (2, 7, 0.02, 0.5, 3, "cpu")
    assert (c.progress, c.desc, seen["dtype"]) == (False, "autoencoder", np.float32)


def test_autoencoder_defaults_and_messages():
    from sklearn.exceptions import NotFittedError

    assert Autoencoder().get_params() == {
        "n_hidden": 256, "sparsity": 0.0, "sparsity_target": 0.05, "epochs": 20, "batch_size": 128, "lr": 1e-3,
        "weight_decay": 1e-5, "seed": 0, "device": "auto", "n_threads": None,
        "precision": "float32", "verbose": False,
    }  # fmt: skip
    with pytest.raises(NotFittedError) as err:
        Autoencoder().transform(np.zeros((2, 3)))
    assert str(err.value) == "this Autoencoder is not fitted yet; call fit(X_unlabelled) first."
    X = np.random.default_rng(0).random((20, 5))
    with pytest.raises(ValueError) as err:
        Autoencoder(n_hidden=2, epochs=1).fit(np.where(X > 0.9, np.nan, X))
    assert str(err.value).startswith("X contains NaN or infinity")
    ae = Autoencoder(n_hidden=2, epochs=1, device="cpu").fit(X)
    with pytest.raises(ValueError) as err:
        ae.transform(X[:, :4])
    assert str(err.value) == "X has 4 features, but Autoencoder is expecting 5 features as input."


def test_autoencoder_reconstructs_better_than_chance_and_sparsity_lowers_activity():
    X, _, _ = sparse_world(d=20, k=5)
    plain = Autoencoder(n_hidden=8, epochs=30, device="cpu").fit(X)
    sparse = Autoencoder(n_hidden=8, epochs=30, sparsity=3.0, device="cpu").fit(X)
    baseline = float(((X - X.mean(0)) / (X.std(0) + 1e-3)).var(0).sum())  # error of predicting the mean
    assert plain.reconstruction_error(X) < 0.5 * baseline
    assert sparse.transform(X).mean() < plain.transform(X).mean()
    with pytest.raises(ValueError, match="expecting 20 features"):
        plain.transform(X[:, :10])


@pytest.mark.parametrize("features", ["raw", "pca", "sparse-coding", "autoencoder", "msda"])
def test_self_taught_learns_features_on_the_source_only(features):
    Xu, _, _ = sparse_world(seed=1)
    Xl, A, _ = sparse_world(seed=2, n=80)
    y = (A[:, 0] != 0).astype(int)
    model = SelfTaught(features=features, n_components=12).fit(Domain(Xu), Domain(Xl, y))
    if features != "raw":
        assert model.feature_map_.n_features_in_ == Xu.shape[1]
        fresh = clone(model.feature_map_).fit(Xu)
        if features != "autoencoder":  # deterministic learners: refitting on the source alone reproduces them
            np.testing.assert_allclose(model.transform(Xl), fresh.transform(Xl), rtol=1e-4, atol=1e-5)
    assert model.predict(Xl).shape == (80,) and model.predict_proba(Xl).shape == (80, 2)
    assert model.score(Xl, y) > 0.6


def test_self_taught_beats_raw_pixels_when_structure_is_only_in_the_unlabelled_data():
    """Labels follow which basis is active; with 24 noisy labelled samples in 200 dimensions the sparse
    code (learnt on unlabelled samples of the same bases) shows it, the raw inputs much less."""
    Xu, _, B = sparse_world(seed=3, n=3000, d=200, k=12, active=1, noise=0.4)
    rng = np.random.default_rng(4)
    k = rng.integers(0, 12, size=624)
    Xl = (rng.uniform(1, 3, size=(624, 1)) * B[k] + 0.4 * rng.normal(size=(624, 200))).astype(np.float32)
    y = k % 2
    train, test = slice(0, 24), slice(24, None)
    sc = SelfTaught(features="sparse-coding", n_components=12, beta=0.2).fit(Domain(Xu), Domain(Xl[train], y[train]))
    raw = SelfTaught(features="raw").fit(Domain(Xu), Domain(Xl[train], y[train]))
    assert sc.score(Xl[test], y[test]) > raw.score(Xl[test], y[test]) + 0.1  # measured: 0.93 against 0.73


def test_bad_input():
    Xu, _, _ = sparse_world(n=200)
    Xl, A, _ = sparse_world(seed=2, n=40)
    y = (A[:, 0] != 0).astype(int)
    with pytest.raises(ValueError, match="source has labels"):
        SelfTaught().fit(Domain(Xu, np.zeros(200, dtype=int)), Domain(Xl, y))
    with pytest.raises(ValueError, match="target has no labels"):
        SelfTaught().fit(Domain(Xu), Domain(Xl))
    with pytest.raises(ValueError, match="features='ica'"):
        SelfTaught(features="ica").fit(Domain(Xu), Domain(Xl, y))
    model = SelfTaught(features="sparse-coding", n_components=8).fit(Domain(Xu), Domain(Xl, y))
    with pytest.raises(ValueError, match="expecting 30 features"):
        model.predict(Xl[:, :10])
    with pytest.raises(ValueError, match="SparseCoding is expecting 30 features"):
        model.feature_map_.transform(Xl[:, :10])


def test_each_feature_learner_gets_the_estimators_settings():
    """n_components, beta, seed and verbose reach the named learner; a transformer of one's own is cloned;
    mSDA is the 3-layer, p = 0.5 stack; the defaults are sparse coding with Raina et al.'s sizes."""
    from sklearn.decomposition import PCA, FastICA

    from transferkit.methods.msda import MSDA

    est = SelfTaught(n_components=7, beta=0.3, seed=4, verbose=True)
    maps = {f: est.set_params(features=f)._feature_map() for f in ("pca", "sparse-coding", "autoencoder", "msda")}
    assert isinstance(maps["pca"], PCA) and maps["pca"].get_params()["n_components"] == 7
    assert maps["pca"].get_params()["random_state"] == 4
    assert {k: maps["sparse-coding"].get_params()[k] for k in ("n_bases", "beta", "seed")} == {
        "n_bases": 7, "beta": 0.3, "seed": 4,
    }  # fmt: skip
    assert {k: maps["autoencoder"].get_params()[k] for k in ("n_hidden", "seed", "verbose")} == {
        "n_hidden": 7, "seed": 4, "verbose": True,
    }  # fmt: skip
    assert isinstance(maps["msda"], MSDA) and (maps["msda"].n_layers, maps["msda"].noise) == (3, 0.5)
    assert est.set_params(features="raw")._feature_map() is None
    own = FastICA(n_components=3)
    cloned = est.set_params(features=own)._feature_map()
    assert cloned is not own and cloned.get_params() == own.get_params()

    class FitOnly:
        def fit(self, X, y=None):
            return self

    with pytest.raises(TypeError, match="or a transformer"):
        SelfTaught(features=FitOnly())._feature_map()
    with pytest.raises(TypeError) as err:
        SelfTaught(features=object())._feature_map()
    assert str(err.value).startswith("features=<object object at") and str(err.value).endswith(
        "; expected one of ('raw', 'pca', 'sparse-coding', 'autoencoder', 'msda') or a transformer."
    )
    with pytest.raises(ValueError) as err:
        SelfTaught(features="ica")._feature_map()
    assert str(err.value) == (
        "features='ica'; expected one of raw, pca, sparse-coding, autoencoder, msda or a transformer."
    )
    assert SelfTaught().get_params() == {
        "features": "sparse-coding", "n_components": 256, "beta": 0.1, "classifier": None, "seed": 0,
        "verbose": False,
    }  # fmt: skip


def test_pca_components_up_to_the_smaller_side_of_the_unlabelled_data():
    Xu, _, _ = sparse_world(seed=1, n=12, d=30)
    Xl, A, _ = sparse_world(seed=2, n=40, d=30)
    y = (A[:, 0] != 0).astype(int)
    model = SelfTaught(features="pca", n_components=12).fit(Domain(Xu), Domain(Xl, y))
    assert model.transform(Xl).shape == (40, 12) and 0 < model.fit_seconds_ < 60
    np.testing.assert_array_equal(model.predict(Xl), model.model_.predict(model.transform(Xl)))
    from sklearn.neighbors import KNeighborsClassifier

    own = SelfTaught(features="pca", n_components=12, classifier=KNeighborsClassifier(1)).fit(Domain(Xu), Domain(Xl, y))
    assert isinstance(own.model_[-1], KNeighborsClassifier) and own.score(Xl, y) == 1.0  # 1-NN on its training set
    # scikit-learn's form: one pooled X, the unlabelled source rows marked by sample_domain > 0 and y = -1
    pooled = SelfTaught(features="pca", n_components=12).fit(
        np.r_[Xu, Xl], np.r_[np.full(12, -1), y], sample_domain=np.r_[np.ones(12, int), -np.ones(40, int)]
    )
    np.testing.assert_allclose(pooled.transform(Xl), model.transform(Xl), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError) as err:
        SelfTaught(features="pca", n_components=13).fit(Domain(Xu), Domain(Xl, y))
    assert str(err.value) == "n_components=13 for PCA on 12 unlabelled samples of 30 features; expected at most 12."
    with pytest.raises(ValueError) as err:
        SelfTaught(features="pca", n_components=3).fit(Domain(Xu), Domain(Xl, np.zeros(40, dtype=int)))
    assert str(err.value) == "target.y has a single class ([0]); expected at least two."


def test_fit_classifier_keeps_the_features_and_retrains_the_classifier():
    Xu, _, _ = sparse_world(seed=1, n=400)
    Xl, A, _ = sparse_world(seed=2, n=80)
    y = (A[:, 0] != 0).astype(int)
    model = SelfTaught(features="pca", n_components=5).fit(Domain(Xu), Domain(Xl[:40], y[:40]))
    components = model.feature_map_.components_.copy()
    first = model.model_
    model.fit_classifier(Domain(Xl[40:], y[40:] + 3))
    np.testing.assert_array_equal(model.feature_map_.components_, components)
    assert model.model_ is not first and list(model.classes_) == [3, 4]
    assert set(np.unique(model.predict(Xl))) <= {3, 4}
    with pytest.raises(ValueError, match="single class"):
        model.fit_classifier(Domain(Xl, np.zeros(80, dtype=int)))
    for bad, message in (
        (Domain(Xl), "target has no labels; the classifier learns from labelled target data."),
        (Domain(Xl[:, :20], y), "target has samples of shape (20,); the features were learnt on (30,)."),
        ((np.where(Xl > 1, np.inf, Xl), y), "target.X contains NaN or infinity"),
    ):
        with pytest.raises(ValueError) as err:
            model.fit_classifier(bad)
        assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: SparseCoding(n_bases=0), "n_bases"),
        (lambda: SparseCoding(beta=0.0), "beta"),
        (lambda: SparseCoding(n_iter=2.5), "n_iter"),
        (lambda: SparseCoding(n_bases=True), "n_bases"),
        (lambda: Autoencoder(n_hidden=0), "n_hidden"),
        (lambda: Autoencoder(sparsity_target=1.0), "sparsity_target"),
        (lambda: Autoencoder(sparsity=-0.1), "sparsity"),
        (lambda: Autoencoder(epochs=0), "epochs"),
        (lambda: Autoencoder(lr=float("nan")), "lr"),
    ],
)
def test_the_feature_learners_name_a_bad_hyperparameter_before_reading_the_data(make, param):
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of \w+ must be"):
        make().fit(object())  # never read: the parameters are checked first
