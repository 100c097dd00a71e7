"""MDAN: several labelled sources, a domain classifier each, the soft maximum of their DANN losses."""

import numpy as np
import pytest
import torch

from transferkit import MDAN, Domain, load
from transferkit.datasets import make_blobs_shift
from transferkit.methods.mdan import MDANObjective, pool_sources


@pytest.fixture(scope="module")
def sources():
    a, b = make_blobs_shift(n_source=150, n_target=150, seed=0), make_blobs_shift(n_source=150, n_target=150, seed=1)
    return [a.source, Domain(b.source.X + 0.5, b.source.y, "second")], a.target, a.target_test


def test_pooling_keeps_each_rows_source_and_refuses_bad_lists(sources):
    (s1, s2), _, _ = sources
    pooled, ids = pool_sources([s1, s2], "DANN")
    assert len(pooled) == 300 and ids.tolist() == [0] * 150 + [1] * 150
    np.testing.assert_array_equal(pooled.X[150:], s2.X)
    with pytest.raises(ValueError, match="expected a list of two or more labelled Domains"):
        pool_sources(s1, "DANN")
    with pytest.raises(ValueError, match=r"sources\[1\] has no labels"):
        pool_sources([s1, s2.unlabelled()], "DANN")
    names = Domain(s2.X, np.array(["a", "b", "c"])[s2.y], "named")
    with pytest.raises(ValueError, match=r"sources\[0\].y holds numbers .* and sources\[1\].y class names"):
        pool_sources([s1, names], "DANN")


def test_the_loss_is_the_soft_maximum_of_the_per_source_losses(sources):
    (s1, s2), target, _ = sources
    model = MDAN(epochs=1, seed=0).fit([s1, s2], target)
    objective = model.objective_
    assert len(model.discriminator_) == 2 and model.sources_ == [s1.name, "second"]
    batch = {
        "xs": torch.from_numpy(np.r_[s1.X[:8], s2.X[:8]]),
        "ys": torch.from_numpy(np.r_[s1.y[:8], s2.y[:8]]).long(),
        "ds": torch.tensor([0] * 8 + [1] * 8),
        "xt": torch.from_numpy(target.X[:8]),
    }
    objective.eval()
    out = objective(batch, 0.5)
    per_source = []  # each source's DANN loss by hand, with its own domain classifier
    from transferkit.methods.dann import domain_adversarial_loss

    net = objective.net
    h_s, h_t = net.forward_to(batch["xs"], objective.adapt_at), net.forward_to(batch["xt"], objective.adapt_at)
    logits = net.forward_from(h_s, objective.adapt_at)
    for k in (0, 1):
        m = batch["ds"] == k
        ly = torch.nn.functional.cross_entropy(logits[m], batch["ys"][m])
        ld = domain_adversarial_loss(model.discriminator_[k](h_s[m]), model.discriminator_[k](h_t))
        per_source.append((ly + ld).item())
    expected = np.log(np.exp(per_source).sum())  # gamma = 1
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert out["loss_max"].item() == pytest.approx(max(per_source), rel=1e-5)


def test_mdan_adapts_predicts_and_saves(sources, tmp_path):
    (s1, s2), target, test = sources
    model = MDAN(epochs=5, seed=0).fit([s1, s2], target)
    assert model.score(test) > 0.5
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(test.X), model.predict(test.X))
    assert isinstance(model.objective_, MDANObjective)


def test_run_mdan_takes_several_sources_on_the_command_line(tmp_path, capsys):
    import json

    from transferkit.cli import main

    tasks = [make_blobs_shift(n_source=120, n_target=120, seed=s) for s in (0, 1)]
    paths = []
    for i, d in enumerate((tasks[0].source, tasks[1].source, tasks[0].target_test)):
        path = tmp_path / f"d{i}.csv"
        np.savetxt(path, np.c_[d.X, d.y], delimiter=",", header="a,b,label", comments="")
        paths.append(str(path))
    argv = ["run", "mdan", "--source", f"{paths[0]},{paths[1]}", "--target", paths[2], "--epochs", "3"]
    assert main([*argv, "--preprocess", "standardize", "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "mdan" and record["sources"] == paths[:2] and record["target_accuracy"] is not None
    assert main(["run", "mdan", "--source", paths[0], "--target", paths[2], "-q"]) == 2
    assert "learns from two or more sources" in capsys.readouterr().err


def test_a_multi_source_run_standardises_each_domain_by_its_own_statistics(tmp_path, monkeypatch):
    from transferkit.methods import mdan
    from transferkit.runs import RunOptions
    from transferkit.runs.multisource import run_multisource

    rng = np.random.default_rng(0)
    paths = []
    for i, (gain, offset) in enumerate(((1.0, 0.0), (2.0, 10.0), (3.0, -5.0))):  # two sources and a target
        y = rng.integers(0, 2, 80)
        X = gain * (rng.normal(size=(80, 2)) + 2.0 * y[:, None]) + offset
        path = tmp_path / f"d{i}.csv"
        np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,label", comments="")
        paths.append(str(path))
    seen = {}
    monkeypatch.setattr(mdan.MDAN, "fit", lambda self, sources, target: seen.update(s=sources, t=target) or self)
    monkeypatch.setattr(mdan.MDAN, "score", lambda self, test: seen.update(test=test) or 0.0)
    options = RunOptions(preprocess="standardize-domain", quiet=True)
    run_multisource("mdan", f"{paths[0]},{paths[1]}", paths[2], options)
    for d in (*seen["s"], seen["t"]):  # every training domain: mean 0 and spread 1 by its own statistics
        np.testing.assert_allclose(d.X.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(d.X.std(0), 1, atol=1e-4)


def test_pooling_names_each_bad_source_in_full(sources):
    (s1, s2), _, _ = sources
    for bad in (s1, [s1], (s1,), s1.X):
        with pytest.raises(ValueError) as err:
            pool_sources(bad, "DANN")
        assert str(err.value) == (
            f"sources is {type(bad).__name__}; expected a list of two or more labelled Domains (one source: DANN)."
        )
    narrow = Domain(s1.X[:, :1], s1.y, "narrow")
    with pytest.raises(ValueError) as err:
        pool_sources([s1, narrow], "DANN")
    assert str(err.value) == f"sources[1] has samples of shape (1,), sources[0] {s1.feature_shape}; expected the same."
    with pytest.raises(ValueError) as err:
        pool_sources([s1, s2, narrow], "DANN")  # the third differs from the first, the second does not
    assert str(err.value) == f"sources[2] has samples of shape (1,), sources[0] {s1.feature_shape}; expected the same."
    with pytest.raises(ValueError, match=r"sources\[1\] has no labels"):
        pool_sources([s1, s2.X], "DANN")  # an array alone: named by its place in the list
    pooled, ids = pool_sources([(s1.X, s1.y), s2], "DANN")
    assert pooled.name == f"sources[0]+{s2.name}" and ids.dtype == np.int64


def test_a_source_too_large_to_densify_is_named(sources, monkeypatch):
    import scipy.sparse

    (s1, s2), _, _ = sources
    monkeypatch.setattr("transferkit.data.memory_bytes", lambda: 1000)  # a machine with 1000 bytes
    sparse = Domain(scipy.sparse.csr_matrix(np.abs(s2.X)), s2.y, "sparse")
    with pytest.raises(ValueError, match=r"^sources\[1\]\.X is sparse, 150 x 2"):
        pool_sources([s1, sparse], "DANN")


def test_pooling_keeps_sparse_sources_sparse_and_densifies_a_mix(sources):
    import scipy.sparse

    (s1, s2), _, _ = sources
    a = Domain(scipy.sparse.csr_matrix(np.abs(s1.X)), s1.y, "a")
    b = Domain(scipy.sparse.csr_matrix(np.abs(s2.X)), s2.y, "b")
    pooled, _ = pool_sources([a, b], "DANN")
    assert scipy.sparse.isspmatrix_csr(pooled.X) or isinstance(pooled.X, scipy.sparse.csr_array)
    np.testing.assert_array_equal(pooled.X.toarray(), np.r_[np.abs(s1.X), np.abs(s2.X)])
    mixed, _ = pool_sources([a, Domain(np.abs(s2.X), s2.y, "dense")], "DANN")
    assert isinstance(mixed.X, np.ndarray)
    np.testing.assert_array_equal(mixed.X, np.r_[np.abs(s1.X), np.abs(s2.X)])
    rng = np.random.default_rng(0)
    words = [scipy.sparse.random(60, 400, density=0.02, format="csr", random_state=r, dtype=np.float32) for r in (1, 2)]
    bags = [Domain(w, np.arange(60) % 2, f"bag {i}") for i, w in enumerate(words)]
    target = Domain(scipy.sparse.random(50, 400, density=0.02, format="csr", random_state=rng, dtype=np.float32))
    # under 5 % non-zeros the batches stay sparse up to the first layer; the per-source masks take rows of its
    # dense output, so the fit is the dense one
    sparse_fit = MDAN(epochs=2, seed=0).fit(bags, target)
    assert sparse_fit._sparse(words[0])
    dense_fit = MDAN(epochs=2, seed=0)
    dense_fit._takes_sparse = lambda: False
    dense_fit.fit(bags, target)
    np.testing.assert_allclose(sparse_fit.predict_proba(target.X), dense_fit.predict_proba(target.X), atol=1e-5)


@pytest.mark.parametrize("gamma_softmax", [0.5, 2.0])
def test_the_features_follow_the_soft_max_weighted_reversed_gradients(sources, gamma_softmax):
    """d/dθ (1/γ) log Σ exp(γ ℓ_k) = Σ_k softmax(γ ℓ)_k ∇ℓ_k, each ℓ_k = L_y^k - λ L_d^k for the features."""
    from transferkit.methods.dann import domain_adversarial_loss

    (s1, s2), target, _ = sources
    model = MDAN(epochs=1, seed=0, gamma_softmax=gamma_softmax, lambda_max=0.6).fit([s1, s2], target)
    objective = model.objective_.eval()
    assert objective.discriminator is objective.discriminators[0]
    batch = {
        "xs": torch.from_numpy(np.r_[s1.X[:8], s2.X[:6]]),
        "ys": torch.from_numpy(np.r_[s1.y[:8], s2.y[:6]]).long(),
        "ds": torch.tensor([0] * 8 + [1] * 6),
        "xt": torch.from_numpy(target.X[:8]),
    }
    net = objective.net
    feats = list(net.stages[objective.adapt_at].parameters())

    def grads(loss):
        return [t.detach().clone() for t in torch.autograd.grad(loss, feats, retain_graph=True)]

    out = objective(batch, 0.4)
    total = grads(out["loss"])
    h_s, h_t = net.forward_to(batch["xs"], objective.adapt_at), net.forward_to(batch["xt"], objective.adapt_at)
    logits = net.forward_from(h_s, objective.adapt_at)
    lam = 0.6 * (2 / (1 + np.exp(-4.0)) - 1)
    losses, parts = [], []
    for k in (0, 1):
        m = batch["ds"] == k
        ly = torch.nn.functional.cross_entropy(logits[m], batch["ys"][m])
        ld = domain_adversarial_loss(model.discriminator_[k](h_s[m]), model.discriminator_[k](h_t))
        losses.append((ly + ld).item())
        parts.append([gy - lam * gd for gy, gd in zip(grads(ly), grads(ld), strict=True)])
    w = np.exp(gamma_softmax * np.array(losses))
    w /= w.sum()
    assert out["loss"].item() == pytest.approx(np.log(np.exp(gamma_softmax * np.array(losses)).sum()) / gamma_softmax)
    assert out["loss_mean"].item() == pytest.approx(np.mean(losses), rel=1e-5)
    for i, g in enumerate(total):
        torch.testing.assert_close(g, float(w[0]) * parts[0][i] + float(w[1]) * parts[1][i], rtol=1e-4, atol=1e-6)
    only_second = objective({**batch, "xs": batch["xs"][8:], "ys": batch["ys"][8:], "ds": batch["ds"][8:]}, 0.4)
    assert only_second["loss"].item() == pytest.approx(losses[1], rel=1e-5)  # an absent source is skipped


def test_several_sources_name_them_pass_sample_domain_on_and_refuse_epoch_selection(sources):
    (s1, s2), target, _ = sources
    model = MDAN(epochs=1, seed=0).fit([(s1.X, s1.y), (s2.X, s2.y)], target)
    assert model.sources_ == ["source 0", "source 1"]
    with pytest.raises(ValueError, match="sample_domain is for fit"):
        MDAN(epochs=1).fit([s1, s2], target, sample_domain=np.zeros(len(s1) + len(s2)))
    with pytest.raises(ValueError) as err:
        MDAN(epochs=1, select_epoch="dev").fit([s1, s2], target)
    assert str(err.value) == "select_epoch holds out part of the source; MDAN does not support it yet."


def test_mdans_domain_classifiers_and_schedule_are_those_asked_for(sources):
    from transferkit.nn import build_backbone

    (s1, s2), target, _ = sources
    model = MDAN(epochs=2, seed=0, disc_hidden=(6,), lambda_schedule="constant", lambda_max=0.2).fit([s1, s2], target)
    for disc in model.discriminator_:
        assert [m.out_features for m in disc.modules() if isinstance(m, torch.nn.Linear)] == [6, 1]
    assert model.objective_.grl_lambda(0.1) == pytest.approx(0.2)
    net = build_backbone("dann-digits", (3, 28, 28), 10)
    estimator = MDAN(adapt_at="conv1")
    estimator._source_ids = np.array([0, 1])
    with pytest.raises(ValueError) as err:
        estimator._objective(net, 10)
    assert str(err.value) == f"adapt_at='conv1': its width is unknown; stages with known widths: {list(net.stage_dims)}"
