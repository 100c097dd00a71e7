"""CDAN(+E): the multilinear map, the entropy weights, and a domain classifier conditioned on predictions."""

import numpy as np
import pytest
import torch

from transferkit import CDAN
from transferkit.datasets import make_blobs_shift
from transferkit.methods.cdan import MultilinearMap, entropy_weights


def test_the_multilinear_map_is_the_flattened_outer_product_or_its_random_projection():
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=(4, 3)).astype(np.float32), rng.dirichlet(np.ones(2), 4).astype(np.float32)
    outer = MultilinearMap(3, 2)(torch.from_numpy(f), torch.from_numpy(g)).numpy()
    np.testing.assert_allclose(outer, np.stack([np.outer(a, b).ravel() for a, b in zip(f, g, strict=True)]), rtol=1e-6)
    rand = MultilinearMap(3, 2, randomized_dim=8, seed=0)
    Rf, Rg = rand.R_f.numpy(), rand.R_g.numpy()
    expected = (f @ Rf) * (g @ Rg) / np.sqrt(8)  # (R_f f) ⊙ (R_g g) / sqrt(d)
    np.testing.assert_allclose(rand(torch.from_numpy(f), torch.from_numpy(g)).numpy(), expected, rtol=1e-5)


def test_entropy_weights_favour_certain_predictions_and_average_one():
    g = np.array([[0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    h = -(g * np.log(g)).sum(1)
    w = 1 + np.exp(-h)
    np.testing.assert_allclose(entropy_weights(torch.from_numpy(g)).numpy(), w / w.mean(), rtol=1e-6)
    assert w[0] > w[2] > w[1]


def test_entropy_weights_are_normalised_within_each_domain(task):
    """CDAN+E's domain loss against NumPy: w = 1 + exp(-H(g)), mean 1 within the source and within the target."""
    model = CDAN(epochs=20, seed=0).fit(task.source, task.target)
    objective = model.objective_
    # certain source predictions, uncertain target ones (inputs near the origin): normalised over both domains
    # together, the source would weigh more than the target
    xs, xt = torch.from_numpy(task.source.X[:6]), 0.05 * torch.from_numpy(task.target.X[:10])
    batch = {"xs": xs, "ys": torch.from_numpy(task.source.y[:6]).long(), "xt": xt}
    loss_d = objective(batch, 0.5)["loss_d"].item()
    with torch.no_grad():
        f_s, f_t = objective.features(xs, xt)
        logits = torch.cat([objective.net.forward_from(f_s, objective.adapt_at),
                            objective.net.forward_from(f_t, objective.adapt_at)])  # fmt: skip
        g = torch.softmax(logits, 1)
        d = objective.discriminator(objective.mapping(torch.cat([f_s, f_t]).flatten(1), g)).reshape(-1).numpy()
    g = g.numpy().astype(np.float64)
    w = 1 + np.exp((g * np.log(g)).sum(1))
    w[:6], w[6:] = w[:6] / w[:6].mean(), w[6:] / w[6:].mean()
    p = 1 / (1 + np.exp(-d.astype(np.float64)))
    labels = np.r_[np.zeros(6), np.ones(10)]
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert loss_d == pytest.approx(np.mean(w * bce), rel=1e-5)


def _first_linear(module):
    return next(m for m in module.modules() if isinstance(m, torch.nn.Linear))


@pytest.fixture(scope="module")
def task():
    return make_blobs_shift(n_source=200, n_target=200, seed=0)


def test_the_domain_classifier_sees_features_times_predictions(task):
    model = CDAN(epochs=1, seed=0).fit(task.source, task.target)
    objective = model.objective_
    width = model.model_.feature_dim
    assert objective.mapping.out_features == width * 3  # 50 features x 3 classes, under 4096: the exact map
    assert _first_linear(model.discriminator_).in_features == width * 3
    seen = []
    handle = model.discriminator_.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    batch = {"xs": torch.from_numpy(task.source.X[:8]), "ys": torch.from_numpy(task.source.y[:8]).long(),
             "xt": torch.from_numpy(task.target.X[:8])}  # fmt: skip
    out = objective(batch, 0.5)
    handle.remove()
    assert seen == [torch.Size([16, width * 3])] and torch.isfinite(out["loss"])
    wide = CDAN(epochs=1, hidden=2000, seed=0).fit(task.source, task.target)  # 2000 x 3 > 4096: randomized
    assert wide.objective_.mapping.randomized and _first_linear(wide.discriminator_).in_features == 1024


def test_entropy_conditioning_changes_the_domain_loss(task):
    torch.manual_seed(0)
    a = CDAN(epochs=1, seed=0).fit(task.source, task.target)
    batch = {"xs": torch.from_numpy(task.source.X[:32]), "ys": torch.from_numpy(task.source.y[:32]).long(),
             "xt": torch.from_numpy(task.target.X[:32])}  # fmt: skip
    with_e = a.objective_(batch, 0.5)["loss_d"].item()
    a.objective_.entropy_conditioning = False
    without = a.objective_(batch, 0.5)["loss_d"].item()
    assert with_e != pytest.approx(without)
