"""Layer transfer, freezing, gradual unfreezing and discriminative learning rates (transferkit.nn.transfer)."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferkit.nn import (
    GradualUnfreezing,
    StagedNet,
    discriminative_lr_mults,
    freeze,
    frozen_layers,
    layer_names,
    layerwise_param_groups,
    transfer_layers,
    unfreeze,
)
from transferkit.train.loop import FitConfig, fit_loop

D, K = 6, 3


@pytest.fixture(autouse=True)
def one_thread():
    """The networks here are tiny: a second intra-op thread only adds contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bn_net(seed: int, n_classes: int = K) -> StagedNet:
    """Three stages (two with BatchNorm, the first with Dropout too) and a linear head."""
    torch.manual_seed(seed)
    stages = OrderedDict(
        block1=nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3)),
        block2=nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU()),
        block3=nn.Sequential(nn.Linear(16, 8), nn.ReLU()),
    )
    net = StagedNet(stages, nn.Linear(8, n_classes), 8)
    for m in net.modules():  # non-default running statistics, so copying them is visible
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(seed + 1)
    return net


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def data(n: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"xs": rng.normal(size=(n, D)).astype(np.float32), "ys": rng.integers(0, K, n)}


class CrossEntropy(nn.Module):
    """Cross-entropy on the source batch; optional gradual unfreezing and parameter groups."""

    def __init__(self, net, schedule=None, lr_mult=None):
        super().__init__()
        self.net, self.schedule, self.lr_mult = net, schedule, lr_mult

    def param_groups(self):
        if self.lr_mult is None:
            return [{"params": self.parameters()}]
        return layerwise_param_groups(self.net, self.lr_mult)

    def forward(self, batch, progress):
        if self.schedule is not None:
            self.schedule.apply(self.net, progress)
        return {"loss": F.cross_entropy(self.net(batch["xs"]), batch["ys"])}


def config(**kw) -> FitConfig:
    base = dict(epochs=3, batch_size=16, lr=0.05, progress=False, device="cpu", seed=0)
    return FitConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------------- layers


class Encoder(nn.Module):
    """A HuggingFace-like layout: embeddings, encoder.layer.N, a pooler-free classifier."""

    def __init__(self, n_classes=K):
        super().__init__()
        self.embeddings = nn.Linear(D, 8)
        self.act = nn.Tanh()
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3)])
        self.classifier = nn.Linear(8, n_classes)

    def forward(self, x):
        h = self.act(self.embeddings(x))
        for block in self.encoder.layer:
            h = block(h)
        return self.classifier(h)


def test_layer_names_of_staged_sequential_and_other_modules():
    assert layer_names(bn_net(0)) == ["block1", "block2", "block3", "head"]
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 4), nn.Flatten(), nn.Linear(4, 2))
    assert layer_names(seq) == ["0", "3", "5"]  # children without state are not layers
    assert layer_names(Encoder()) == ["embeddings", "encoder", "classifier"]


def test_transfer_first_copies_parameters_and_buffers_and_leaves_the_rest():
    src, dst = bn_net(1), bn_net(2)
    fresh = snapshot(dst)
    copied = transfer_layers(src, dst, first=2)
    assert copied == ["block1", "block2"]
    for name in ("block1", "block2"):
        s, d = snapshot(src.stages[name]), snapshot(dst.stages[name])
        assert same(s, d)  # running_mean / running_var / num_batches_tracked included
        assert "1.running_mean" in d
    after = snapshot(dst)
    for k, v in after.items():
        if not k.startswith(("stages.block1.", "stages.block2.")):
            assert torch.equal(v, fresh[k]), k
    assert not torch.equal(dst.stages.block3[0].weight, src.stages.block3[0].weight)
    # a copy, not shared storage: training the target does not move the source
    dst.stages.block1[0].weight.data.add_(1.0)
    assert not torch.equal(dst.stages.block1[0].weight, src.stages.block1[0].weight)


def test_transfer_last_copies_the_output_side():
    src, dst = bn_net(1), bn_net(2)
    assert transfer_layers(src, dst, last=2) == ["block3", "head"]
    assert torch.equal(dst.head.weight, src.head.weight)
    assert torch.equal(dst.stages.block3[0].bias, src.stages.block3[0].bias)
    assert not torch.equal(dst.stages.block2[0].weight, src.stages.block2[0].weight)


def test_transfer_names_takes_dotted_module_paths():
    src, dst = Encoder(), Encoder()
    before = snapshot(dst)
    assert transfer_layers(src, dst, names=["embeddings", "encoder.layer.1"]) == ["embeddings", "encoder.layer.1"]
    assert same(snapshot(dst.encoder.layer[1]), snapshot(src.encoder.layer[1]))
    assert same(
        snapshot(dst.encoder.layer[0]),
        {k[len("encoder.layer.0.") :]: v for k, v in before.items() if k.startswith("encoder.layer.0.")},
    )
    assert torch.equal(dst.embeddings.weight, src.embeddings.weight)


def test_transfer_with_freeze_freezes_the_copied_layers():
    src, dst = bn_net(1), bn_net(2)
    transfer_layers(src, dst, first=1, freeze=True)
    assert frozen_layers(dst) == ["stages.block1"]
    assert not any(p.requires_grad for p in dst.stages.block1.parameters())
    assert all(p.requires_grad for p in dst.stages.block2.parameters())


def test_transfer_refuses_other_shapes_naming_the_parameter_and_copies_nothing():
    src, dst = bn_net(1), bn_net(2, n_classes=5)
    before = snapshot(dst)
    with pytest.raises(ValueError, match=r"'head': 'weight' has shape \(3, 8\) in source_model but \(5, 8\)"):
        transfer_layers(src, dst, last=2)
    assert same(before, snapshot(dst))  # block3 was checked fine but not copied: all or nothing
    assert transfer_layers(src, dst, first=3) == ["block1", "block2", "block3"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(first=0), ValueError, r"first=0; expected 1 to 4, the model has 4 layers: \['block1', 'block2'"),
        (dict(last=5), ValueError, r"last=5; expected 1 to 4"),
        (dict(first=True), TypeError, r"first=True; expected a number of layers"),
        (dict(first=1, last=1), ValueError, r"exactly one of first=, last= or names=; got first=1, last=1"),
        (dict(), ValueError, r"exactly one of .* got none"),
        (dict(names=["blok2"]), ValueError, r"source_model has no layer or sub-module 'blok2'. Did you mean 'block2'"),
        (dict(names=[]), ValueError, r"names is empty"),
    ],
)
def test_transfer_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        transfer_layers(bn_net(1), bn_net(2), **kwargs)


def test_transfer_refuses_different_layer_structures():
    other = nn.Sequential(nn.Linear(D, 16), nn.Linear(16, K))
    with pytest.raises(ValueError, match=r"differ in layer structure: source layers \['block1'.*target layers \['0'"):
        transfer_layers(bn_net(1), other, first=1)
    with pytest.raises(ValueError, match=r"target_model has no layer or sub-module 'block1'"):
        transfer_layers(bn_net(1), other, names="block1")
    a = nn.Sequential(nn.Sequential(nn.Linear(D, 4), nn.BatchNorm1d(4)))
    b = nn.Sequential(nn.Sequential(nn.Linear(D, 4), nn.LayerNorm(4)))
    with pytest.raises(ValueError, match=r"layer '0' differs in structure .*only in the source \['1.running_mean'"):
        transfer_layers(a, b, first=1)
    with pytest.raises(TypeError, match="source_model must be a torch.nn.Module; got dict"):
        transfer_layers({}, b, first=1)


# ------------------------------------------------------------------------------------------ freezing


def test_frozen_layer_is_bit_identical_after_training_batchnorm_statistics_included():
    net = bn_net(3)
    freeze(net, "block1")
    frozen_before, block2_before, head_before = (snapshot(m) for m in (net.stages.block1, net.stages.block2, net.head))
    fit_loop(CrossEntropy(net), data(), None, config(weight_decay=1e-2))  # fit_loop calls module.train()
    assert same(frozen_before, snapshot(net.stages.block1))
    block2_after = snapshot(net.stages.block2)
    for k in ("0.weight", "1.running_mean", "1.running_var"):  # the unfrozen BatchNorm layer did update
        assert not torch.equal(block2_before[k], block2_after[k]), k
    assert not torch.equal(head_before["weight"], net.head.weight)


def test_freezing_only_requires_grad_would_let_batchnorm_statistics_drift():
    """The eval-mode lock is the part that keeps running statistics: without it they move."""
    net = bn_net(3)
    for p in net.stages.block1.parameters():
        p.requires_grad_(False)
    before = snapshot(net.stages.block1)
    fit_loop(CrossEntropy(net), data(), None, config(epochs=1))
    assert not torch.equal(before["1.running_mean"], net.stages.block1[1].running_mean)


def test_frozen_layer_stays_in_eval_mode_and_unfreeze_restores_training():
    net = bn_net(0)
    freeze(net, ["block1"])
    net.train()
    assert not net.stages.block1.training and not net.stages.block1[3].training  # Dropout too
    assert net.stages.block2.training
    x = torch.randn(8, D)
    h1, h2 = net.forward_to(x, "block1"), net.forward_to(x, "block1")
    assert torch.equal(h1, h2)  # no dropout noise in a frozen layer
    net.stages.block1.train()  # asking the layer itself changes nothing either
    assert not net.stages.block1[1].training
    unfreeze(net, "block1")
    assert frozen_layers(net) == []
    assert net.stages.block1.training and net.stages.block1[1].training
    assert all(p.requires_grad for p in net.parameters())
    net.eval()
    unfreeze(net, "block2")  # unfreezing follows the model's mode
    assert not net.stages.block2.training


def test_unfreezing_inside_a_frozen_layer_is_refused():
    net = bn_net(0)
    freeze(net, "stages")
    with pytest.raises(ValueError, match=r"'block2' lies inside the frozen 'stages'"):
        unfreeze(net, "block2")
    freeze(net, "head")
    unfreeze(net, ["stages", "head"])
    assert frozen_layers(net) == []


def test_unfreezing_a_layer_unfreezes_its_separately_frozen_parts():
    net = Encoder()
    freeze(net, ["encoder.layer.0", "encoder.layer.2"])
    assert frozen_layers(net) == ["encoder.layer.0", "encoder.layer.2"]
    unfreeze(net, "encoder")
    assert frozen_layers(net) == [] and all(p.requires_grad for p in net.parameters())


def test_freeze_lock_survives_deepcopy_and_pickle_and_stays_out_of_the_state_dict():
    net = bn_net(0)
    keys = list(net.state_dict())
    freeze(net, "block2")
    assert list(net.state_dict()) == keys
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        clone.train()
        assert frozen_layers(clone) == ["stages.block2"]
        assert not clone.stages.block2[1].training and clone.stages.block1[1].training
        assert net.stages.block2.training is False
        unfreeze(clone, "block2")  # the clone's lock is its own
        assert frozen_layers(net) == ["stages.block2"]


# ---------------------------------------------------------------------------------- gradual unfreezing


def test_gradual_unfreezing_follows_its_formula():
    layers = ["a", "b", "c", "d"]
    s = GradualUnfreezing(layers)  # L - s + 1 = 4 equal phases
    assert s.unfreeze_at == {"d": 0.0, "c": 0.25, "b": 0.5, "a": 0.75}
    assert s.trainable(0.0) == ["d"] and s.frozen(0.0) == ["a", "b", "c"]
    assert s.trainable(0.4999) == ["c", "d"] and s.trainable(0.5) == ["b", "c", "d"]
    assert s.frozen(1.0) == []
    s2 = GradualUnfreezing(layers, interval=0.1, start=2)
    for i, name in enumerate(layers):
        from_top = len(layers) - 1 - i
        assert s2.unfreeze_at[name] == pytest.approx(max(0, from_top - 2 + 1) * 0.1)
    s3 = GradualUnfreezing.per_epoch(layers, epochs=7, epochs_per_layer=2)
    assert s3.unfreeze_at == {"d": 0.0, "c": 2 / 7, "b": 4 / 7, "a": 6 / 7}
    steps_per_epoch = 13  # fit_loop's progress at the first step of epoch e is exactly the threshold
    assert s3.trainable(2 * steps_per_epoch / (7 * steps_per_epoch)) == ["c", "d"]
    assert s3.trainable((2 * steps_per_epoch - 1) / (7 * steps_per_epoch)) == ["d"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GradualUnfreezing(["a", "b", "c"], interval=0.5), r"interval=0.5: 2 layers unfreeze .* below 0.5"),
        (lambda: GradualUnfreezing(["a", "b"], start=3), r"start=3; expected 1 to 2"),
        (lambda: GradualUnfreezing.per_epoch(["a", "b", "c"], epochs=2), r"epochs=2: 2 layers .* epochs > 2"),
        (lambda: GradualUnfreezing(["a"]).trainable(1.5), r"progress=1.5; expected a number in \[0, 1\]"),
    ],
)
def test_gradual_unfreezing_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_layer_unfrozen_at_half_training_is_still_before_and_trains_after():
    net = bn_net(4)
    schedule = GradualUnfreezing.per_epoch(layer_names(net), epochs=4)  # block2 unfreezes at p = 0.5
    assert schedule.unfreeze_at["block2"] == 0.5
    objective = CrossEntropy(net, schedule)
    start = {
        name: snapshot(net.get_submodule(p)) for name, p in (("block1", "stages.block1"), ("block2", "stages.block2"))
    }
    seen = []

    def record(epoch, module, log):
        seen.append({name: snapshot(net.stages[name]) for name in ("block1", "block2")})

    # Adam with weight decay: a frozen layer must get no update at all, not a decayed one
    fit_loop(objective, data(), None, config(epochs=4, optimizer="adam", weight_decay=0.1), on_epoch_end=record)
    assert same(seen[0]["block2"], start["block2"]) and same(seen[1]["block2"], start["block2"])  # p < 0.5
    assert not torch.equal(seen[2]["block2"]["0.weight"], start["block2"]["0.weight"])  # trained from p = 0.5
    assert not torch.equal(seen[2]["block2"]["1.running_mean"], start["block2"]["1.running_mean"])
    assert all(same(seen[e]["block1"], start["block1"]) for e in range(3))  # frozen until p = 0.75
    assert not torch.equal(seen[3]["block1"]["0.weight"], start["block1"]["0.weight"])
    assert frozen_layers(net) == []


# ----------------------------------------------------------------------- discriminative learning rates


def test_discriminative_lr_mults_decay_toward_the_input():
    mults = discriminative_lr_mults(["a", "b", "c", "d"])
    assert list(mults) == ["a", "b", "c", "d"]
    np.testing.assert_allclose([mults[k] for k in "abcd"], [2.6**-3, 2.6**-2, 2.6**-1, 1.0], rtol=1e-12)
    for k in "abc":  # eta^{l-1} = eta^l / 2.6
        assert mults[k] == pytest.approx(mults[chr(ord(k) + 1)] / 2.6)
    with pytest.raises(ValueError, match=r"decay=0; expected a positive number"):
        discriminative_lr_mults(["a"], decay=0)


def test_layerwise_param_groups_cover_every_parameter_once():
    net = Encoder()
    freeze(net, "embeddings")  # frozen now, but in the groups: it may be unfrozen later
    groups = layerwise_param_groups(net, {"encoder": 0.5, "encoder.layer.2": 0.9, "embeddings": 0.1})
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())
    by_name = {g["name"]: g for g in groups}
    assert by_name["encoder.layer.2"]["lr_mult"] == 0.9  # the most specific module wins
    assert {id(p) for p in by_name["encoder.layer.2"]["params"]} == {id(p) for p in net.encoder.layer[2].parameters()}
    assert len(by_name["encoder"]["params"]) == 8
    assert by_name["rest"]["lr_mult"] == 1.0 and by_name["rest"]["params"] == list(net.classifier.parameters())
    with pytest.raises(ValueError, match=r"lr_mult\['encoder'\]=-1; expected a non-negative finite number"):
        layerwise_param_groups(net, {"encoder": -1})


def test_fit_loop_applies_the_per_layer_multipliers():
    """One plain SGD step: each layer moves by its multiplier times the step without multipliers."""
    net = bn_net(5)
    mults = discriminative_lr_mults(layer_names(net))
    nets = {"plain": copy.deepcopy(net), "discr": copy.deepcopy(net)}
    cfg = config(epochs=1, batch_size=64, optimizer="sgd", momentum=0.0)
    fit_loop(CrossEntropy(nets["plain"]), data(), None, cfg)
    fit_loop(CrossEntropy(nets["discr"], lr_mult=mults), data(), None, cfg)
    for name, path in (("block1", "stages.block1.0"), ("block3", "stages.block3.0"), ("head", "head")):
        w0 = net.get_submodule(path).weight
        step_plain = nets["plain"].get_submodule(path).weight - w0
        step_discr = nets["discr"].get_submodule(path).weight - w0
        assert step_plain.abs().max() > 0
        torch.testing.assert_close(step_discr, mults[name] * step_plain, rtol=1e-4, atol=1e-7)
