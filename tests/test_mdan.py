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
    pooled, ids = pool_sources([s1, s2])
    assert len(pooled) == 300 and ids.tolist() == [0] * 150 + [1] * 150
    np.testing.assert_array_equal(pooled.X[150:], s2.X)
    with pytest.raises(ValueError, match="expected a list of two or more labelled Domains"):
        pool_sources(s1)
    with pytest.raises(ValueError, match=r"sources\[1\] has no labels"):
        pool_sources([s1, s2.unlabelled()])
    names = Domain(s2.X, np.array(["a", "b", "c"])[s2.y], "named")
    with pytest.raises(ValueError, match=r"sources\[0\].y holds numbers .* and sources\[1\].y class names"):
        pool_sources([s1, names])


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
