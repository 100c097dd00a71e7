"""DANN: the domain loss reaches the feature extractor, reversed and scaled by lambda."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from transferkit import DANN, SourceOnly
from transferkit.methods.dann import DANNObjective, domain_adversarial_loss
from transferkit.nn import DomainDiscriminator, build_backbone, ganin_lambda


def test_domain_loss_matches_numpy_binary_cross_entropy():
    rng = np.random.default_rng(0)
    ds, dt = rng.normal(size=7), rng.normal(size=5)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    # L_d = -(sum_source log(1 - sigma(d)) + sum_target log sigma(d)) / (n + n')
    expected = -(np.log(1 - sig(ds)).sum() + np.log(sig(dt)).sum()) / 12
    got = domain_adversarial_loss(torch.tensor(ds), torch.tensor(dt))
    assert float(got) == pytest.approx(expected, rel=1e-10)


def _objective(lambda_max=1.0, schedule="ganin"):
    torch.manual_seed(0)
    net = build_backbone("shallow", (6,), 3, hidden=8)
    disc = DomainDiscriminator(8, (5,))
    return DANNObjective(net, disc, "hidden", lambda_max, schedule, 10.0)


@pytest.mark.parametrize("progress,lambda_max", [(0.1, 1.0), (0.5, 1.0), (0.9, 0.3)])
def test_feature_gradient_is_label_gradient_minus_lambda_times_domain_gradient(progress, lambda_max):
    obj = _objective(lambda_max)
    g = torch.Generator().manual_seed(1)
    batch = {
        "xs": torch.randn(10, 6, generator=g),
        "ys": torch.randint(0, 3, (10,), generator=g),
        "xt": torch.randn(10, 6, generator=g) + 2.0,
    }
    feats = list(obj.net.stages["hidden"].parameters())

    def grads(loss):
        return [t.detach().clone() for t in torch.autograd.grad(loss, feats, retain_graph=True)]

    g_total = grads(obj(batch, progress)["loss"])
    # the two parts of the objective, computed without any gradient reversal
    h_s = obj.net.forward_to(batch["xs"], "hidden")
    h_t = obj.net.forward_to(batch["xt"], "hidden")
    g_y = grads(F.cross_entropy(obj.net.forward_from(h_s, "hidden"), batch["ys"]))
    g_d = grads(domain_adversarial_loss(obj.discriminator(h_s), obj.discriminator(h_t)))
    lam = lambda_max * ganin_lambda(progress)
    assert obj.grl_lambda(progress) == pytest.approx(lam)
    assert sum(float(t.abs().sum()) for t in g_d) > 1e-6, "the domain loss sends no gradient to the features"
    for gt, gy, gd in zip(g_total, g_y, g_d, strict=True):
        torch.testing.assert_close(gt, gy - lam * gd, rtol=1e-5, atol=1e-7)


def test_discriminator_descends_the_domain_loss_unreversed():
    obj = _objective()
    batch = {"xs": torch.randn(8, 6), "ys": torch.randint(0, 3, (8,)), "xt": torch.randn(8, 6)}
    params = list(obj.discriminator.parameters())
    g_total = torch.autograd.grad(obj(batch, 0.7)["loss"], params)
    h_s = obj.net.forward_to(batch["xs"], "hidden").detach()
    h_t = obj.net.forward_to(batch["xt"], "hidden").detach()
    g_d = torch.autograd.grad(domain_adversarial_loss(obj.discriminator(h_s), obj.discriminator(h_t)), params)
    for a, b in zip(g_total, g_d, strict=True):
        torch.testing.assert_close(a, b)


def test_domain_loss_changes_the_model(blobs):
    """The failure seen in other libraries: DANN identical to DANN without its domain loss."""
    kw = dict(epochs=5, hidden=16, seed=0)
    with_d = DANN(**kw).fit(blobs.source, blobs.target)
    without = DANN(lambda_max=0.0, **kw).fit(blobs.source, blobs.target)
    p1 = with_d.predict_proba(blobs.target_test.X)
    p0 = without.predict_proba(blobs.target_test.X)
    assert not np.allclose(p1, p0, atol=1e-4)


def _domain_separability(model, source, target):
    fs, ft = model.transform(source.X), model.transform(target.X)
    X = np.concatenate([fs, ft])
    d = np.r_[np.zeros(len(fs)), np.ones(len(ft))]
    return cross_val_score(LogisticRegression(max_iter=2000), X, d, cv=3).mean()


def test_dann_makes_features_less_domain_separable_than_source_only():
    from transferkit.datasets import make_blobs_shift

    blobs = make_blobs_shift(n_classes=3, n_source=400, n_target=400, n_features=2, seed=0)
    kw = dict(epochs=150, hidden=32, seed=0)
    so = SourceOnly(**kw).fit(blobs.source)
    dann = DANN(**kw).fit(blobs.source, blobs.target)
    sep_so = _domain_separability(so, blobs.source, blobs.target)
    sep_dann = _domain_separability(dann, blobs.source, blobs.target)
    assert sep_dann < sep_so - 0.05, (sep_so, sep_dann)
    assert dann.history_[-1]["grl_lambda"] > 0.9
    assert dann.history_[0]["grl_lambda"] < dann.history_[-1]["grl_lambda"]


def test_one_pass_over_both_domains_equals_two_passes_without_batch_statistics():
    obj = _objective()
    assert not obj._per_domain_batches  # the shallow net has no BatchNorm: one pass is allowed
    g = torch.Generator().manual_seed(2)
    batch = {"xs": torch.randn(9, 6, generator=g), "ys": torch.arange(9) % 3, "xt": torch.randn(7, 6, generator=g)}
    torch.manual_seed(0)  # the discriminator has no dropout here, but keep the draw fixed anyway
    one = obj(batch, 0.5)["loss"]
    grads_one = torch.autograd.grad(one, list(obj.parameters()))
    obj._per_domain_batches = True
    two = obj(batch, 0.5)["loss"]
    grads_two = torch.autograd.grad(two, list(obj.parameters()))
    assert one.item() == pytest.approx(two.item(), rel=1e-6)
    for a, b in zip(grads_one, grads_two, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batchnorm_networks_keep_per_domain_passes():
    torch.manual_seed(0)
    net = build_backbone("dann-digits", (3, 28, 28), 10)
    obj = DANNObjective(net, DomainDiscriminator(net.feature_dim, (8,)), net.adapt_at, 1.0, "ganin", 10.0)
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert obj._per_domain_batches == has_bn


@pytest.mark.parametrize("method", ["dann", "ddc", "dan", "deep-coral"])
def test_one_sparse_and_one_dense_domain_train_together(method):
    """Bag-of-words source (under 5 % non-zeros) and a dense or all-zero target: one representation for both."""
    from transferkit import Domain
    from transferkit.methods import get_method

    rng = np.random.default_rng(0)
    Xs = (rng.random((80, 50)) < 0.02).astype(np.float32)
    ys = np.arange(80) % 2
    for Xt in (rng.random((60, 50)).astype(np.float32), np.zeros((60, 50), np.float32)):
        model = get_method(method)(epochs=1).fit(Domain(Xs, ys), Domain(Xt))
        assert model.predict(Xt).shape == (60,)


def test_batchnorm_statistics_come_from_one_domain_at_a_time():
    """With BatchNorm, the source logits are those of the source batch alone, as the paper trains."""
    from collections import OrderedDict

    from transferkit.nn.backbones import StagedNet

    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU())
    net = StagedNet(OrderedDict(hidden=body), torch.nn.Linear(8, 3), 8, stage_dims={"hidden": 8})
    obj = DANNObjective(net, DomainDiscriminator(8, (4,)), "hidden", 1.0, "constant", 10.0).train()
    xs, xt = torch.randn(9, 6), torch.randn(7, 6) * 3 + 2  # very different batch statistics
    sizes = []
    body[1].register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    obj({"xs": xs, "ys": torch.arange(9) % 3, "xt": xt}, 0.5)
    assert sorted(sizes) == [7, 9]  # two passes, never one of 16


def test_the_logged_terms_are_the_losses_and_the_domain_classifiers_accuracy():
    """The history's terms against NumPy: L_y, L_d, and the domain accuracy (source logit < 0, target > 0)."""
    obj = _objective()
    g = torch.Generator().manual_seed(3)
    xs, xt = torch.randn(9, 6, generator=g), torch.randn(7, 6, generator=g)
    # shift the domain classifier's bias so its logits straddle zero unevenly between the domains
    with torch.no_grad():
        d_s = obj.discriminator(obj.net.forward_to(xs, "hidden")).reshape(-1)
        d_t = obj.discriminator(obj.net.forward_to(xt, "hidden")).reshape(-1)
        obj.discriminator.net[-1].bias -= torch.cat([d_s, d_t]).median()
        d_s = obj.discriminator(obj.net.forward_to(xs, "hidden")).reshape(-1).numpy()
        d_t = obj.discriminator(obj.net.forward_to(xt, "hidden")).reshape(-1).numpy()
        logits = obj.net(xs).numpy().astype(np.float64)
    ys = torch.arange(9) % 3
    out = obj({"xs": xs, "ys": ys, "xt": xt}, 0.5)
    expected_acc = 0.5 * (np.mean(d_s < 0) + np.mean(d_t > 0))
    assert 0 < np.mean(d_s < 0) < 1 or 0 < np.mean(d_t > 0) < 1  # neither term is trivially 0 or 1
    assert out["domain_acc"].item() == pytest.approx(expected_acc)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss_y = -log_p[np.arange(9), ys.numpy()].mean()
    assert out["loss_y"].item() == pytest.approx(loss_y, rel=1e-5)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    loss_d = -(np.log(1 - sig(d_s)).sum() + np.log(sig(d_t)).sum()) / 16
    assert out["loss_d"].item() == pytest.approx(loss_d, rel=1e-5)
    assert out["source_acc"].item() == pytest.approx(np.mean(logits.argmax(1) == ys.numpy()))


def test_a_constant_schedule_holds_lambda_through_training(blobs):
    model = DANN(epochs=3, lambda_schedule="constant", lambda_max=0.3, seed=0).fit(blobs.source, blobs.target)
    assert [round(h["grl_lambda"], 6) for h in model.history_] == [0.3, 0.3, 0.3]
    assert model.objective_.lambda_schedule == "constant"
    ramped = DANN(epochs=3, lambda_max=0.3, seed=0).fit(blobs.source, blobs.target)
    assert all(h["grl_lambda"] < 0.3 for h in ramped.history_[:-1])


def test_the_domain_classifier_has_the_hidden_widths_asked_for():
    net = build_backbone("shallow", (6,), 3, hidden=8)
    objective = DANN(disc_hidden=(7, 5))._objective(net, 3)
    widths = [m.out_features for m in objective.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [7, 5, 1]


@pytest.mark.parametrize("method", ["dann", "cdan", "mdan"])
def test_the_domain_classifier_drops_out_as_asked_while_training(method):
    from transferkit import CDAN, MDAN

    net = build_backbone("shallow", (6,), 3, hidden=8)

    def discriminator(**params):
        model = {"dann": DANN, "cdan": CDAN, "mdan": MDAN}[method](disc_hidden=(64, 64), **params)
        model._source_ids = np.array([0, 1])  # MDAN's two sources; the others ignore it
        model._objective(net, 3)
        return model.discriminator_[0] if method == "mdan" else model.discriminator_

    d = discriminator(disc_dropout=0.5)
    assert [m.p for m in d.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    x = torch.randn(32, d.net[1].in_features)
    torch.manual_seed(0)
    d.train()
    assert not torch.allclose(d(x), d(x))  # a fresh mask on every pass
    d.eval()
    torch.testing.assert_close(d(x), d(x))
    assert not any(isinstance(m, torch.nn.Dropout) for m in discriminator().modules())  # off by default


@pytest.mark.parametrize("bad", [1.0, -0.1, "half"])
def test_a_bad_disc_dropout_is_refused_by_name_before_training(blobs, bad):
    with pytest.raises((ValueError, TypeError), match="disc_dropout"):
        DANN(disc_dropout=bad, epochs=1).fit(blobs.source, blobs.target)


def test_a_stage_of_unknown_width_is_refused_naming_the_known_ones():
    net = build_backbone("dann-digits", (3, 28, 28), 10)
    with pytest.raises(ValueError) as err:
        DANN(adapt_at="conv1")._objective(net, 10)
    assert str(err.value) == (
        f"adapt_at='conv1': its width is unknown; stages with known widths: {list(net.stage_dims)}"
    )


def test_the_ramp_follows_gamma():
    """lambda_p = lambda_max (2 / (1 + exp(-gamma p)) - 1) with the gamma asked for, not the paper's 10."""
    net = build_backbone("shallow", (6,), 3, hidden=8)
    objective = DANN(gamma=4.0, lambda_max=0.5)._objective(net, 3)
    for p in (0.1, 0.5, 0.9):
        assert objective.grl_lambda(p) == pytest.approx(0.5 * (2 / (1 + np.exp(-4.0 * p)) - 1), rel=1e-12)
