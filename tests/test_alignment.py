"""DDC, DAN and Deep CORAL: the discrepancy term shapes the gradient and shrinks the domain gap."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferkit import DAN, DDC, DeepCORAL
from transferkit.datasets import make_blobs_shift
from transferkit.methods.alignment import AlignmentObjective
from transferkit.nn import build_backbone, coral_loss, mmd2
from transferkit.nn.backbones import add_bottleneck


def test_objective_gradient_is_classification_plus_lambda_discrepancy():
    torch.manual_seed(0)
    net = add_bottleneck(build_backbone("shallow", (5,), 3, hidden=8), 6)
    obj = AlignmentObjective(net, ("bottleneck", "logits"), mmd2, lambda_max=0.7)
    batch = {"xs": torch.randn(8, 5), "ys": torch.randint(0, 3, (8,)), "xt": torch.randn(8, 5) + 1}
    params = list(net.parameters())
    g_total = torch.autograd.grad(obj(batch, 0.5)["loss"], params)
    taps = net.forward_taps(torch.cat([batch["xs"], batch["xt"]]), ["bottleneck"])
    ce = F.cross_entropy(taps["logits"][:8], batch["ys"])
    d = mmd2(taps["bottleneck"][:8], taps["bottleneck"][8:]) + mmd2(taps["logits"][:8], taps["logits"][8:])
    g_ce = torch.autograd.grad(ce, params, retain_graph=True)
    g_d = torch.autograd.grad(d, params)
    assert sum(float(g.abs().sum()) for g in g_d) > 0
    for gt, gc, gd in zip(g_total, g_ce, g_d, strict=True):
        torch.testing.assert_close(gt, gc + 0.7 * gd, rtol=1e-5, atol=1e-7)


def test_bottleneck_becomes_the_adapted_stage():
    net = add_bottleneck(build_backbone("dann-digits", (1, 28, 28), 10), 32)
    assert net.stage_names[-1] == "bottleneck" and net.adapt_at == "bottleneck"
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="bottleneck width"):
        add_bottleneck(net, 0)


def test_default_layers_follow_the_papers():
    digits = build_backbone("dann-digits", (1, 28, 28), 10)
    assert DAN()._default_taps(digits) == ("fc1", "fc2", "logits")  # fc6-fc8 analogue
    assert DAN()._default_taps(build_backbone("shallow", (4,), 2)) == ("hidden", "logits")
    assert DeepCORAL()._default_taps(digits) == ("logits",)
    with pytest.raises(ValueError, match="unknown layers"):
        DAN(taps=("fc9",), epochs=1).fit(*_blobs()[:2])
    with pytest.raises(ValueError, match="mmd_estimator"):
        DAN(mmd_estimator="cubic", epochs=1).fit(*_blobs()[:2])


def _blobs():
    t = make_blobs_shift(n_classes=3, n_source=400, n_target=400, n_features=2, seed=0)
    return t.source, t.target, t.target_test


def _gap(model, source, target, measure):
    with torch.no_grad():
        taps = model.objective_.taps
        fs = model.model_.forward_taps(torch.from_numpy(source.X), [t for t in taps if t != "logits"])
        ft = model.model_.forward_taps(torch.from_numpy(target.X), [t for t in taps if t != "logits"])
        return sum(float(measure(fs[t].flatten(1), ft[t].flatten(1))) for t in taps)


@pytest.mark.parametrize(
    "cls,measure,kw",
    [
        (DDC, lambda a, b: mmd2(a, b, kernel="linear"), {"lambda_max": 1.0, "bottleneck": 16}),
        (DAN, mmd2, {"lambda_max": 1.0}),  # a full weight: the mechanism, not the default, is under test
        (DAN, mmd2, {"lambda_max": 1.0, "mmd_estimator": "linear"}),
        (DeepCORAL, coral_loss, {}),
    ],
)
def test_fitting_shrinks_the_discrepancy_it_penalises(cls, measure, kw):
    source, target, _ = _blobs()
    common = dict(epochs=60, hidden=32, seed=0, **kw)
    aligned = cls(**common).fit(source, target)
    free = cls(**{**common, "lambda_max": 0.0}).fit(source, target)
    gap_aligned, gap_free = _gap(aligned, source, target, measure), _gap(free, source, target, measure)
    assert gap_aligned < 0.7 * gap_free, (gap_aligned, gap_free)
    assert np.isfinite(aligned.history_[-1]["discrepancy"])


def test_too_few_target_samples_and_bad_kernels_are_refused():
    import numpy as np

    from transferkit import Domain
    from transferkit.methods import CORAL, DAN, DeepCORAL

    rng = np.random.default_rng(0)
    source = Domain(rng.normal(size=(40, 4)).astype("float32"), np.arange(40) % 2, "s")
    one = Domain(rng.normal(size=(1, 4)).astype("float32"), None, "t")
    for cls in (DAN, DeepCORAL, CORAL):
        with pytest.raises(ValueError, match="target has 1 sample.*needs at least 2"):
            cls().fit(source, one)
    with pytest.raises(ValueError, match="kernel_multipliers=.*positive"):
        DAN(kernel_multipliers=(1.0, 0.0), epochs=1).fit(source, source.unlabelled())


def test_each_method_penalises_its_papers_discrepancy():
    """DDC: the linear-kernel MMD, the squared distance between the means; Deep CORAL: ||C_S - C_T||_F^2 / 4d^2;
    DAN: the Gaussian multi-kernel U-statistic with the chosen estimator and bandwidth multiples (NumPy)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 3)), rng.normal(1.0, 2.0, size=(12, 3))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ddc = float(DDC()._discrepancy()(ta, tb))
    assert ddc == pytest.approx(np.sum((a.mean(0) - b.mean(0)) ** 2), rel=1e-10)
    cov = lambda z: np.cov(z, rowvar=False)  # noqa: E731
    assert float(DeepCORAL()._discrepancy()(ta, tb)) == pytest.approx(
        np.sum((cov(a) - cov(b)) ** 2) / (4 * 3**2), rel=1e-8
    )
    z = np.vstack([a, b])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    scale = d2.sum() / (24 * 23)
    for multipliers in ((1.0,), (0.5, 2.0)):
        k = sum(np.exp(-d2 / (2 * m * scale)) for m in multipliers) / len(multipliers)
        kxx, kyy, kxy = k[:12, :12], k[12:, 12:], k[:12, 12:]
        u = (kxx.sum() - np.trace(kxx)) / 132 + (kyy.sum() - np.trace(kyy)) / 132 - 2 * kxy.mean()
        got = float(DAN(kernel_multipliers=multipliers)._discrepancy()(ta, tb))
        assert got == pytest.approx(u, rel=1e-6)
    linear = float(DAN(mmd_estimator="linear")._discrepancy()(ta, tb))
    assert linear == pytest.approx(float(mmd2(ta, tb, estimator="linear")), rel=1e-12)
    assert linear != pytest.approx(float(DAN()._discrepancy()(ta, tb)), rel=1e-3)


def test_the_ganin_schedule_ramps_the_trade_off_and_the_history_logs_each_term():
    """lambda_p = lambda_max (2 / (1 + exp(-10 p)) - 1) under "ganin"; the logged terms are L_y, D and lambda_p."""
    from transferkit.methods.alignment import AlignmentObjective
    from transferkit.nn import build_backbone

    torch.manual_seed(0)
    net = build_backbone("shallow", (4,), 2, hidden=6)
    objective = AlignmentObjective(net, ("hidden",), lambda a, b: mmd2(a, b, kernel="linear"), 0.5, "ganin")
    for p in (0.0, 0.1, 0.4, 1.0):
        assert objective.trade_off(p) == pytest.approx(0.5 * (2 / (1 + np.exp(-10 * p)) - 1), rel=1e-12)
    g = torch.Generator().manual_seed(1)
    xs, xt, ys = torch.randn(8, 4, generator=g), torch.randn(6, 4, generator=g) + 1, torch.arange(8) % 2
    out = objective({"xs": xs, "ys": ys, "xt": xt}, 0.1)
    with torch.no_grad():
        hs, ht = net.forward_to(xs, "hidden").numpy(), net.forward_to(xt, "hidden").numpy()
        logits = net(xs).numpy().astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss_y = -log_p[np.arange(8), ys.numpy()].mean()
    gap = np.sum((hs.mean(0) - ht.mean(0)) ** 2)
    lam = 0.5 * (2 / (1 + np.exp(-1.0)) - 1)
    assert out["loss_y"].item() == pytest.approx(loss_y, rel=1e-5)
    assert out["discrepancy"].item() == pytest.approx(gap, rel=1e-5)
    assert out["trade_off"].item() == pytest.approx(lam, rel=1e-6)
    assert out["loss"].item() == pytest.approx(loss_y + lam * gap, rel=1e-5)
    assert 0 < np.mean(logits.argmax(1) == ys.numpy()) < 1
    assert out["source_acc"].item() == pytest.approx(np.mean(logits.argmax(1) == ys.numpy()))
    source, target, _ = _blobs()
    ramped = DDC(epochs=3, lambda_schedule="ganin", lambda_max=0.5, seed=0).fit(source, target)
    lams = [h["trade_off"] for h in ramped.history_]
    assert lams[0] < lams[1] < lams[2] < 0.5


def test_the_adaptation_layer_has_the_width_asked_for():
    """DDC inserts its adaptation layer (256 wide by default) before the classifier and aligns it; 0: none."""
    source, target, _ = _blobs()
    for bottleneck in (256, 16):
        model = DDC(epochs=1, bottleneck=bottleneck, seed=0).fit(source, target)
        assert model.model_.adapt_at == "bottleneck" and model.model_.feature_dim == bottleneck
        assert model.objective_.taps == ("bottleneck",)
    plain = DDC(epochs=1, bottleneck=0, seed=0).fit(source, target)
    assert "bottleneck" not in plain.model_.stage_names
