"""Any nn.Module as backbone: torchvision-, timm- and Hugging Face-style networks, built here in plain torch."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit import DAN, DANN, DDC, DeepCORAL, Domain, FineTune, SourceOnly, TargetOnly
from transferkit.nn.backbones import from_module


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyResNet(nn.Module):
    """torchvision's layout: conv1, bn1, layer1..., avgpool, fc; a residual forward, not a Sequential."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.layer1, self.layer2 = nn.Sequential(BasicBlock(8)), nn.Sequential(BasicBlock(8))
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TimmStyle(nn.Module):
    """timm's layout: stem, stages, head with global pooling and a ``fc`` inside ``head``."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, stride=2)
        self.stages = nn.Sequential(nn.Conv2d(6, 12, 3), nn.GELU())
        self.head = nn.ModuleDict({"pool": nn.AdaptiveAvgPool2d(1), "fc": nn.Linear(12, 500)})

    def forward(self, x):
        return self.head["fc"](self.head["pool"](self.stages(self.stem(x))).flatten(1))


class HFStyle(nn.Module):
    """Hugging Face's layout: a model body, a classifier, and an output object holding ``logits``."""

    def __init__(self):
        super().__init__()
        self.vit = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh())
        self.classifier = nn.Linear(16, 3)

    def forward(self, pixel_values):
        return {"logits": self.classifier(self.vit(pixel_values)), "hidden_states": None}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    X = rng.normal(size=(120, 1, 8, 8)).astype(np.float32) + y[:, None, None, None] * 1.5
    Xt = rng.normal(size=(80, 1, 8, 8)).astype(np.float32) + 0.3
    return Domain(X, y, "source"), Domain(Xt, None, "target")


@pytest.mark.parametrize("make", [TinyResNet, TimmStyle, HFStyle], ids=["resnet", "timm", "hf"])
def test_the_default_feature_is_the_input_of_the_last_linear(make):
    module = make()
    net = from_module(module, (1, 8, 8), n_classes=2)
    x = torch.randn(4, 1, 8, 8)
    last = [m for m in module.modules() if isinstance(m, nn.Linear)][-1]
    seen = {}
    last.register_forward_hook(lambda m, i, o: seen.setdefault("in", i[0]))
    module.eval(), net.eval()
    module(x)
    torch.testing.assert_close(net.forward_features(x), seen["in"])  # the same features, a new head
    assert net(x).shape == (4, 2) and net.head.in_features == last.in_features
    assert isinstance(last, nn.Linear) and [m for m in module.modules() if isinstance(m, nn.Linear)][-1] is last


def test_a_named_feature_layer_and_its_errors():
    module = TinyResNet()
    net = from_module(module, (1, 8, 8), 3, feature_layer="layer1")
    assert net.feature_dim == 8 * 8 * 8  # layer1's output, flattened; the rest of the network is not run
    with pytest.raises(
        ValueError, match=r"feature_layer='layr1' is not a module of the backbone. Did you mean 'layer1'"
    ):
        from_module(module, (1, 8, 8), 3, feature_layer="layr1")
    with pytest.raises(ValueError, match="cannot run on inputs of shape"):
        from_module(module, (3, 8), 3)
    with pytest.raises(ValueError, match="has no nn.Linear classifier; name the layer"):
        from_module(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 8, 8), 3)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", [DANN, DDC, DAN, DeepCORAL, SourceOnly])
@pytest.mark.parametrize("make", [TinyResNet, TimmStyle, HFStyle], ids=["resnet", "timm", "hf"])
def test_every_adaptation_method_trains_any_module(cls, make, images):
    source, target = images
    module = make()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    model = cls(backbone=module, epochs=2, batch_size=32).fit(source, target if cls.setting.target else None)
    assert model.predict_proba(target.X).shape == (80, 2)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # the caller's module is untouched


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fine_tuning_a_module_copies_its_body_from_the_source_network(images):
    source, _ = images
    target = Domain(source.X[:40], source.y[:40], "target")
    model = FineTune(backbone=TinyResNet(), feature_layer="layer2", copy="body", source_epochs=1, epochs=1).fit(
        source, target
    )
    # the module's own layers (its fc is kept, unused, since layer2 is the feature layer)
    assert model.copied_layers_ == ["conv1", "bn1", "layer1", "layer2", "fc"]
    assert model.predict(target.X).shape == (40,)
    alone = TargetOnly(backbone=TimmStyle(), epochs=1).fit(target, target)
    assert alone.predict(target.X).shape == (40,)


def test_feature_layer_without_a_module_backbone_is_refused(images):
    source, target = images
    with pytest.raises(ValueError, match="feature_layer='fc' names a layer of a backbone given as a module"):
        DANN(feature_layer="fc", epochs=1).fit(source, target)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_layer_transfer_names_the_modules_own_layers(images):
    from transferkit.nn import layer_names

    net = from_module(TinyResNet(), (1, 8, 8), 2)
    assert layer_names(net) == ["conv1", "bn1", "layer1", "layer2", "head"]  # the replaced fc holds nothing
    source, _ = images
    target = Domain(source.X[:40], source.y[:40], "target")
    model = FineTune(backbone=TinyResNet(), copy="first:2", freeze=True, source_epochs=1, epochs=1).fit(source, target)
    assert model.copied_layers_ == ["conv1", "bn1"]
    assert not any(p.requires_grad for p in model.model_.stages["features"].module.conv1.parameters())
    named = FineTune(backbone=TinyResNet(), copy="names:layer1", source_epochs=1, epochs=1).fit(source, target)
    assert named.copied_layers_ == ["layer1"]
