"""LoRA on Linear and Conv2d layers: the formula, the frozen base, and fine-tuning with it."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit import Domain, FineTune, load
from transferkit.nn.lora import LoRAConv2d, LoRAL2SP, LoRALinear, add_lora, lora_l2sp, lora_parameters


def test_lora_linear_is_the_papers_formula():
    torch.manual_seed(0)
    base = nn.Linear(5, 3)
    layer = LoRALinear(base, r=2, alpha=4.0)
    assert torch.equal(layer(torch.ones(1, 5)), base(torch.ones(1, 5)))  # B = 0: the pretrained function
    with torch.no_grad():
        layer.B.normal_()
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    W0, b = base.weight.detach().numpy(), base.bias.detach().numpy()
    A, B = layer.A.detach().numpy(), layer.B.detach().numpy()
    expected = x @ W0.T + b + (4.0 / 2) * x @ A.T @ B.T  # h = W0 x + (alpha / r) B A x
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.delta().detach().numpy(), 2.0 * B @ A, rtol=1e-6)


def test_lora_conv_equals_a_convolution_with_the_updated_kernel():
    torch.manual_seed(0)
    base = nn.Conv2d(3, 4, 3, padding=1, stride=2)
    layer = LoRAConv2d(base, r=2)
    with torch.no_grad():
        layer.B.weight.normal_()
    merged = nn.Conv2d(3, 4, 3, padding=1, stride=2)
    with torch.no_grad():
        merged.weight.copy_(base.weight + layer.delta())
        merged.bias.copy_(base.bias)
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(layer(x), merged(x), rtol=1e-5, atol=1e-5)


def test_add_lora_trains_r_times_in_plus_out_parameters_per_layer_and_freezes_the_rest():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 2))
    names = add_lora(net, r=3, exclude=("4",))
    assert names == ["0", "2"]
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for p in lora_parameters(net))
    assert trainable == 3 * 1 * 9 + 4 * 3 + 3 * (144 + 10)  # conv: A (3 x 1 x 3 x 3), B (4 x 3); linear: r (in + out)
    assert not any(p.requires_grad for p in net[4].parameters()) and not net[0].base.weight.requires_grad
    assert add_lora(net, r=2) == ["4"]  # adapted layers are not adapted twice
    with pytest.raises(ValueError, match="r=0; expected a positive integer rank"):
        add_lora(nn.Linear(2, 2), r=0)
    with pytest.raises(ValueError, match="has no nn.Linear or nn.Conv2d layer"):
        add_lora(nn.Sequential(nn.ReLU()))


def test_lora_l2sp_is_half_alpha_times_the_squared_update_plus_the_decay_of_new_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    add_lora(net, r=2, exclude=("2",))
    net[2].requires_grad_(True)
    with torch.no_grad():
        net[0].B.normal_()
    delta = (net[0].delta() ** 2).sum().item()
    head = sum((p**2).sum().item() for p in net[2].parameters())
    assert lora_l2sp(net).item() == pytest.approx(delta)
    assert LoRAL2SP(alpha=0.3, beta=0.05)(net).item() == pytest.approx(0.15 * delta + 0.025 * head, rel=1e-5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fine_tuning_with_lora_keeps_the_copied_weights_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    source = Domain(rng.normal(size=(200, 6)).astype(np.float32) + y[:, None], y)
    target = Domain(source.X[:40] + 0.5, y[:40])
    model = FineTune(lora=2, conservative="l2sp", source_epochs=3, epochs=5, seed=0).fit(source, target)
    hidden = model.model_.stages["hidden"][0]
    assert isinstance(hidden, LoRALinear) and model.lora_layers_ == ["stages.hidden.0"]
    assert model.objective_.l2sp.__class__ is LoRAL2SP
    # the copied base weight is the source network's, unchanged by training; the update is not zero
    torch.testing.assert_close(hidden.base.weight, model.source_model_.stages["hidden"][0].weight)
    assert hidden.B.abs().sum() > 0 and not hidden.base.weight.requires_grad
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict_proba(target.X), model.predict_proba(target.X))
    with pytest.raises(ValueError, match="lora trains a low-rank update beside frozen weights"):
        FineTune(lora=2, freeze=True, epochs=1, source_epochs=1).fit(source, target)
