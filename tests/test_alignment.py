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
