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
    out = objective(batch, 0.5)
    assert out["domain_acc"].item() == pytest.approx(np.mean((d > 0) == labels))
    assert 0 < np.mean((d > 0) == labels) < 1 and np.any((d > 0) & (d <= 1))  # a threshold of 1 would differ
    log_p = np.log(g[:6])
    ys = task.source.y[:6]
    assert out["loss_y"].item() == pytest.approx(-log_p[np.arange(6), ys].mean(), rel=1e-5)
    assert out["grl_lambda"].item() == pytest.approx(2 / (1 + np.exp(-5.0)) - 1, rel=1e-6)


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


@pytest.mark.parametrize("schedule,progress", [("ganin", 0.3), ("constant", 0.3)])
def test_the_network_descends_the_label_loss_and_ascends_the_weighted_domain_loss(schedule, progress):
    """Through the reversal layer every parameter of the network gets g_y - lambda g_d, where L_d reaches the
    predictions through the entropy weights only (the map conditions on them without training them)."""
    from transferkit.nn import build_backbone

    torch.manual_seed(0)
    net = build_backbone("shallow", (6,), 3, hidden=8)
    objective = CDAN(lambda_max=0.7, lambda_schedule=schedule, disc_hidden=(5,))._objective(net, 3)
    g = torch.Generator().manual_seed(1)
    batch = {"xs": torch.randn(10, 6, generator=g), "ys": torch.randint(0, 3, (10,), generator=g),
             "xt": torch.randn(8, 6, generator=g) + 2.0}  # fmt: skip
    feats, head = list(net.stages["hidden"].parameters()), list(net.head.parameters())

    def grads(loss, params):
        return [t.detach().clone() for t in torch.autograd.grad(loss, params, retain_graph=True)]

    def domain_loss(p_map, p_weights):
        d = objective.discriminator(objective.mapping(torch.cat([f_s, f_t]), p_map)).reshape(-1)
        h = -(p_weights * torch.log(p_weights)).sum(1)
        w = 1 + torch.exp(-h)
        w = torch.cat([w[:10] / w[:10].detach().mean(), w[10:] / w[10:].detach().mean()])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(d, labels, reduction="none")
        return (w * bce).mean()

    out = objective(batch, progress)
    f_s, f_t = net.forward_to(batch["xs"], "hidden"), net.forward_to(batch["xt"], "hidden")
    logits = torch.cat([net.forward_from(f_s, "hidden"), net.forward_from(f_t, "hidden")])
    p = torch.softmax(logits, 1)
    labels = torch.cat([torch.zeros(10), torch.ones(8)])
    lam = 0.7 if schedule == "constant" else 0.7 * (2 / (1 + np.exp(-10 * progress)) - 1)
    assert objective.grl_lambda(progress) == pytest.approx(lam)
    loss_y = torch.nn.functional.cross_entropy(logits[:10], batch["ys"])
    loss_d = domain_loss(p.detach(), p)
    assert out["loss_d"].item() == pytest.approx(loss_d.item(), rel=1e-6)
    for params in (feats, head):
        total, g_y, g_d = grads(out["loss"], params), grads(loss_y, params), grads(loss_d, params)
        for gt, gy, gd in zip(total, g_y, g_d, strict=True):
            torch.testing.assert_close(gt, gy - lam * gd, rtol=1e-5, atol=1e-7)
    # the head reads the domain loss through the weights alone, and does read it
    through_weights = grads(domain_loss(p.detach(), p), head)
    assert sum(float(t.abs().sum()) for t in through_weights) > 1e-6
    constant = grads(domain_loss(p.detach(), p.detach()), feats)
    assert sum(float(t.abs().sum()) for t in constant) > 1e-6  # the map's path reaches the features
    objective.weight_gradient = False  # the ablation: constant weights leave the head to the label loss
    for gt, gy in zip(grads(objective(batch, progress)["loss"], head), grads(loss_y, head), strict=True):
        torch.testing.assert_close(gt, gy, rtol=1e-5, atol=1e-7)
    widths = [m.out_features for m in objective.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [5, 1]


def test_randomized_dim_none_keeps_the_full_outer_product_however_large():
    from transferkit.nn import build_backbone

    net = build_backbone("shallow", (6,), 3, hidden=2000)  # 2000 x 3 > 4096
    assert CDAN(randomized_dim=16)._objective(net, 3).mapping.out_features == 16
    full = CDAN(randomized_dim=None)._objective(net, 3)
    assert not full.mapping.randomized and full.mapping.out_features == 6000
    assert full.discriminator.net[1].in_features == 6000
    f, g = torch.randn(4, 2000), torch.softmax(torch.randn(4, 3), 1)
    torch.testing.assert_close(full.mapping(f, g), (f[:, :, None] * g[:, None, :]).flatten(1))


def test_the_random_map_is_fixed_by_the_seed_alone():
    torch.manual_seed(1)
    a = MultilinearMap(7, 3, randomized_dim=16, seed=4)
    torch.manual_seed(2)
    b = MultilinearMap(7, 3, randomized_dim=16, seed=4)
    c = MultilinearMap(7, 3, randomized_dim=16, seed=5)
    torch.testing.assert_close(a.R_f, b.R_f)
    torch.testing.assert_close(a.R_g, b.R_g)
    assert not torch.allclose(a.R_f, c.R_f) and not torch.allclose(a.R_g, c.R_g)
    assert not torch.allclose(a.R_f[:3, :3], a.R_g[:, :3])  # one generator, drawn on: R_g is not R_f again
    from transferkit.nn import build_backbone

    net = build_backbone("shallow", (6,), 3, hidden=2000)  # 2000 x 3 > 4096: the random map
    mapping = CDAN(seed=5, randomized_dim=16)._objective(net, 3).mapping
    torch.testing.assert_close(mapping.R_f, MultilinearMap(2000, 3, 16, seed=5).R_f)
    torch.testing.assert_close(MultilinearMap(7, 3, 16).R_f, MultilinearMap(7, 3, 16, seed=0).R_f)  # seed 0 default
    assert MultilinearMap(7, 3).out_features == 21 and not hasattr(MultilinearMap(7, 3), "R_f")


@pytest.mark.parametrize("hidden,randomized", [(2048, False), (2049, True)])
def test_the_exact_map_is_used_up_to_4096_entries(hidden, randomized):
    from transferkit.nn import build_backbone

    net = build_backbone("shallow", (6,), 2, hidden=hidden)
    objective = CDAN()._objective(net, 2)
    assert objective.mapping.randomized is randomized
    assert objective.mapping.out_features == (1024 if randomized else hidden * 2)


def test_a_stage_of_unknown_width_is_refused():
    from transferkit.nn import build_backbone

    net = build_backbone("dann-digits", (3, 28, 28), 10)
    with pytest.raises(ValueError) as err:
        CDAN(adapt_at="conv1")._objective(net, 10)
    assert str(err.value) == f"adapt_at='conv1': its width is unknown; stages with known widths: {list(net.stage_dims)}"


def test_the_conditioned_width_comes_from_the_stage_or_the_classifiers_input():
    """A stage with a known width uses it; the last stage, the classifier's input, is always known."""
    from collections import OrderedDict

    from transferkit.nn import build_backbone
    from transferkit.nn.backbones import StagedNet

    digits = build_backbone("dann-digits", (3, 28, 28), 10)
    conv = CDAN(adapt_at="conv2", randomized_dim=32)._objective(digits, 10)
    assert conv.mapping.R_f.shape == (digits.stage_dims["conv2"], 32)
    stages = OrderedDict(a=torch.nn.Linear(6, 4), b=torch.nn.Linear(4, 5))
    net = StagedNet(stages, torch.nn.Linear(5, 3), 5, adapt_at="a", stage_dims={"a": 4})
    last = CDAN()._objective(net, 3)  # "b" has no entry in stage_dims: the feature width, 5
    assert last.adapt_at == "b" and last.mapping.out_features == 5 * 3
    unknown_first = StagedNet(stages, torch.nn.Linear(5, 3), 5, adapt_at="a", stage_dims={"b": 5})
    with pytest.raises(ValueError, match="adapt_at='a'"):  # neither listed nor the last stage
        CDAN(adapt_at="a")._objective(unknown_first, 3)


def test_the_weights_gradient_reaching_the_logits_against_numpy():
    """d/dz of CDAN+E's loss on the classifier's bias, in NumPy: the label loss's (p - y)/n_s, minus lambda
    times the weighted domain loss's, which reaches the logits through w alone:
    dw_i/dz_i = exp(-H_i) p_i (log p_i + H_i) / c, c the (constant) mean of 1 + exp(-H) over i's domain."""
    from transferkit.nn import build_backbone

    torch.manual_seed(2)
    net = build_backbone("shallow", (5,), 4, hidden=6)
    objective = CDAN(lambda_max=0.8, lambda_schedule="constant", disc_hidden=(7,))._objective(net, 4)
    g = torch.Generator().manual_seed(3)
    n_s, n_t = 9, 7
    batch = {"xs": torch.randn(n_s, 5, generator=g), "ys": torch.randint(0, 4, (n_s,), generator=g),
             "xt": torch.randn(n_t, 5, generator=g) + 1.0}  # fmt: skip
    (grad,) = torch.autograd.grad(objective(batch, 0.5)["loss"], [net.head.bias])
    with torch.no_grad():
        f = torch.cat([net.forward_to(batch["xs"], "hidden"), net.forward_to(batch["xt"], "hidden")])
        z = net.forward_from(f, "hidden").double().numpy()
        p_map = torch.softmax(torch.from_numpy(z), 1).float()
        d = objective.discriminator(objective.mapping(f, p_map)).reshape(-1).double().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H = -(p * np.log(p)).sum(1)
    labels = np.r_[np.zeros(n_s), np.ones(n_t)]
    q = 1 / (1 + np.exp(-d))
    bce = -(labels * np.log(q) + (1 - labels) * np.log(1 - q))
    c = np.r_[np.full(n_s, (1 + np.exp(-H[:n_s])).mean()), np.full(n_t, (1 + np.exp(-H[n_s:])).mean())]
    dw_dz = (np.exp(-H) / c)[:, None] * p * (np.log(p) + H[:, None])
    d_domain = (bce[:, None] * dw_dz).sum(0) / (n_s + n_t)
    y = np.eye(4)[batch["ys"].numpy()]
    d_label = (p[:n_s] - y).sum(0) / n_s
    np.testing.assert_allclose(grad.double().numpy(), d_label - 0.8 * d_domain, rtol=1e-4, atol=1e-7)
    assert np.abs(0.8 * d_domain).max() > 1e-4  # the weights' share is there to be seen
