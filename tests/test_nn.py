"""Torch building blocks: gradient reversal, Ganin's schedules, backbones, discriminator."""

import math

import numpy as np
import pytest
import torch

from transferkit.nn import DomainDiscriminator, GradientReversal, build_backbone, ganin_lambda, grad_reverse
from transferkit.train import ganin_lr


@pytest.mark.parametrize("coeff", [0.0, 0.3, 1.0, 2.5])
def test_grad_reverse_is_identity_forward_and_negated_scaled_backward(coeff):
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = grad_reverse(x, coeff)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -coeff * w.numpy(), rtol=1e-6)


def test_gradient_reversal_module_uses_its_coefficient():
    layer = GradientReversal(0.5)
    x = torch.ones(2, 2, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -0.5))
    layer.coeff = 2.0
    x.grad = None
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -2.0))


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_ganin_lambda_matches_formula(p):
    # JMLR 2016, Sec. 5.2.2: lambda_p = 2 / (1 + exp(-10 p)) - 1
    assert ganin_lambda(p) == pytest.approx(2.0 / (1.0 + np.exp(-10.0 * p)) - 1.0, rel=1e-12)


def test_ganin_lambda_runs_from_zero_to_one():
    assert ganin_lambda(0.0) == 0.0
    assert ganin_lambda(1.0) == pytest.approx(1.0, abs=1e-4)
    values = [ganin_lambda(p) for p in np.linspace(0, 1, 11)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("p", [0.0, 0.25, 1.0])
def test_ganin_lr_matches_formula(p):
    # mu_p = mu_0 / (1 + alpha p)^beta with alpha = 10, beta = 0.75
    assert ganin_lr(p, 0.01) == pytest.approx(0.01 / (1 + 10 * p) ** 0.75, rel=1e-12)


def test_discriminator_returns_one_logit_per_sample_and_passes_gradient():
    disc = DomainDiscriminator(8, (16,))
    h = torch.randn(4, 8, requires_grad=True)
    out = disc(h)
    assert out.shape == (4,)
    # a logit, not a probability: values outside [0, 1] are possible and the BCE gradient flows
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones(4))
    loss.backward()
    assert h.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "name,shape,stages",
    [
        ("shallow", (20,), ("hidden",)),
        ("dann-digits", (3, 28, 28), ("conv1", "conv2", "fc1", "fc2")),
        ("lenet", (1, 16, 16), ("conv1", "conv2", "fc1")),
        ("lenet", (1, 28, 28), ("conv1", "conv2", "fc1")),
    ],
)
def test_backbones_have_named_stages_and_split_forward(name, shape, stages):
    torch.manual_seed(0)
    net = build_backbone(name, shape, n_classes=7)
    assert net.stage_names == stages
    x = torch.randn(3, *shape)
    logits = net(x)
    assert logits.shape == (3, 7)
    for s in stages:
        h = net.forward_to(x, s)
        assert torch.allclose(net.forward_from(h, s), logits, atol=1e-6)
        if s in net.stage_dims:
            assert h.flatten(1).shape[1] == net.stage_dims[s]
    taps = net.forward_taps(x, stages[:1])
    assert set(taps) == {stages[0], "logits"}
    net.reset_classifier(4)
    assert net(x).shape == (3, 4)


def test_auto_backbone_and_errors():
    assert build_backbone("auto", (10,), 2).stage_names == ("hidden",)
    assert "fc2" in build_backbone("auto", (1, 28, 28), 10).stage_names
    assert build_backbone("auto", (1, 16, 16), 10).stage_names[-1] == "fc1"
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        build_backbone("resnet", (10,), 2)
    with pytest.raises(ValueError, match="needs feature vectors"):
        build_backbone("shallow", (1, 8, 8), 2)
    with pytest.raises(ValueError, match="unknown stage 'fc9'"):
        build_backbone("shallow", (10,), 2).forward_to(torch.zeros(1, 10), "fc9")


def test_shallow_net_sigmoid_option():
    net = build_backbone("shallow", (5,), 2, activation="sigmoid")
    with torch.no_grad():
        h = net.forward_to(torch.randn(4, 5) * 100, "hidden")
    assert float(h.min()) >= 0 and float(h.max()) <= 1
    assert math.isfinite(float(net(torch.randn(1, 5)).sum().detach()))


def test_time_series_get_the_1d_cnn_and_any_length_works():
    from transferkit.nn.backbones import build_backbone

    net = build_backbone("auto", (3, 128), n_classes=4)
    assert net.stage_names == ("conv1", "conv2", "pool")
    assert net(torch.zeros(2, 3, 128)).shape == (2, 4)
    assert net(torch.zeros(2, 3, 50)).shape == (2, 4)  # global pooling over time
    assert net.forward_to(torch.zeros(2, 3, 128), net.adapt_at).shape == (2, net.stage_dims["pool"])
    with pytest.raises(ValueError, match="length 4 or more"):
        build_backbone("conv1d", (3, 2), n_classes=4)
    with pytest.raises(ValueError, match=r"series of shape \(channels, length\)"):
        build_backbone("conv1d", (1, 16, 16), n_classes=4)


def test_gradient_reversal_by_default_negates_the_gradient_exactly():
    x = torch.randn(4, 3, requires_grad=True)
    GradientReversal()(x).sum().backward()
    torch.testing.assert_close(x.grad, -torch.ones(4, 3))  # coefficient 1: the paper's R(x)


def test_grad_reverse_function_by_default_negates_the_gradient_exactly():
    x = torch.randn(4, 3, requires_grad=True)
    grad_reverse(x).sum().backward()
    torch.testing.assert_close(x.grad, -torch.ones(4, 3))
