"""Conservative training: L2-SP, LwF's distillation loss, the frozen old model (transferkit.nn.regularisers)."""

import copy
import io
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferkit.nn import (
    L2SP,
    DistillationLoss,
    OldModelOutputs,
    StagedNet,
    distillation_loss,
    l2sp_penalty,
    transfer_layers,
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
    torch.manual_seed(seed)
    stages = OrderedDict(
        block1=nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2)),
        block2=nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU()),
    )
    return StagedNet(stages, nn.Linear(16, n_classes), 16)


def data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"xs": rng.normal(size=(n, D)).astype(np.float32), "ys": rng.integers(0, K, n)}


def config(**kw) -> FitConfig:
    return FitConfig(**{**dict(epochs=5, batch_size=16, lr=0.02, progress=False, device="cpu", seed=0), **kw})


class FineTuneObjective(nn.Module):
    """Target cross-entropy plus, optionally, a parameter-level and an output-level term."""

    def __init__(self, net, reg=None, old=None, lam=1.0):
        super().__init__()
        self.net, self.reg, self.old, self.lam = net, reg, old, lam

    def forward(self, batch, progress):
        logits = self.net(batch["xs"])
        loss = F.cross_entropy(logits, batch["ys"])
        if self.reg is not None:
            loss = loss + self.reg(self.net)
        if self.old is not None:
            loss = loss + self.lam * distillation_loss(logits, self.old(batch["xs"]))
        return {"loss": loss}


def pretrained_pair():
    """A network trained on a source task, and a target network with its two stages copied."""
    source = bn_net(1)
    fit_loop(FineTuneObjective(source), data(256, seed=1), None, config(epochs=3))
    target = bn_net(2)
    transfer_layers(source, target, names=["block1", "block2"])
    return source, target


def distance(net: nn.Module, anchor: dict[str, torch.Tensor]) -> float:
    params = dict(net.named_parameters())
    return float(sum((params[k].detach() - w0).pow(2).sum() for k, w0 in anchor.items()) ** 0.5)


# ---------------------------------------------------------------------------------------------- L2-SP


def test_l2sp_matches_the_papers_formula_in_numpy():
    net = bn_net(0)
    reg = L2SP(net, ["block1", "block2"], alpha=0.3, beta=0.05, per_layer={"block2": 2.5})
    w0 = {k: v.detach().numpy().copy() for k, v in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    expected = 0.0
    for name, w in net.named_parameters():
        w = w.detach().numpy()
        if name.startswith("stages.block1."):  # Omega = a/2 sum_S lam_l |w - w0|^2 + b/2 |w_new|^2
            expected += 0.3 / 2 * 1.0 * np.sum((w - w0[name]) ** 2)
        elif name.startswith("stages.block2."):
            expected += 0.3 / 2 * 2.5 * np.sum((w - w0[name]) ** 2)
        else:  # the head: no pretrained counterpart, plain L2
            expected += 0.05 / 2 * np.sum(w**2)
    assert set(reg.anchor()) == {k for k in w0 if k.startswith("stages.")}
    assert reg(net).item() == pytest.approx(expected, rel=1e-5)


def test_l2sp_gradient_pulls_toward_the_anchor_and_decays_new_layers():
    net = bn_net(0)
    reg = L2SP(net, "block1", alpha=0.7, beta=0.2)
    w0 = net.stages.block1[0].weight.detach().clone()
    with torch.no_grad():
        net.stages.block1[0].weight.add_(1.0)
    reg(net).backward()
    # dOmega/dw = alpha (w - w0) on S, beta w on the rest
    torch.testing.assert_close(net.stages.block1[0].weight.grad, 0.7 * (net.stages.block1[0].weight - w0))
    torch.testing.assert_close(net.head.weight.grad, 0.2 * net.head.weight.detach())


def test_l2sp_penalty_accepts_any_anchor_dict():
    net = nn.Linear(3, 2)
    zero = {"weight": torch.zeros(2, 3)}  # anchored at zero: plain weight decay on the weight
    expected = 0.5 * (net.weight**2).sum() + 0.5 * 0.5 * (net.bias**2).sum()
    assert l2sp_penalty(net, zero, alpha=1.0, beta=0.5).item() == pytest.approx(expected.item(), rel=1e-6)


def test_l2sp_keeps_a_fine_tuned_network_closer_to_its_pretrained_weights():
    _, target = pretrained_pair()
    reg = L2SP(target, ["block1", "block2"], alpha=1.0, beta=0.01)
    anchor = {k: v.clone() for k, v in reg.anchor().items()}
    zeros = {k: torch.zeros_like(v) for k, v in anchor.items()}
    nets = {}
    for name, term in [
        ("none", None),
        ("l2", lambda net: l2sp_penalty(net, zeros, alpha=1.0, beta=0.01)),  # same strength, toward 0
        ("l2sp", reg),
    ]:
        nets[name] = copy.deepcopy(target)
        objective = FineTuneObjective(nets[name])
        objective.reg = term
        fit_loop(objective, data(24, seed=2), None, config(epochs=30, batch_size=8, lr=0.02))
    d = {name: distance(net, anchor) for name, net in nets.items()}
    assert d["none"] > 0.5
    assert d["l2sp"] < 0.5 * d["none"], d
    assert d["l2sp"] < 0.5 * d["l2"], d


def test_l2sp_anchors_survive_a_checkpoint_and_a_resumed_regulariser_stays_conservative(tmp_path):
    net = bn_net(0)
    objective = FineTuneObjective(net, L2SP(net, ["block1", "block2"], alpha=1.0))
    saved_anchor = {k: v.clone() for k, v in objective.reg.anchor().items()}
    cfg = config(epochs=2, checkpoint_dir=str(tmp_path))
    fit_loop(objective, data(32, seed=3), None, cfg)
    assert any(k.startswith("reg.w0.stages.block1.") for k in objective.state_dict())

    other = bn_net(7)  # a fresh objective whose anchors start elsewhere
    resumed = FineTuneObjective(other, L2SP(other, ["block1", "block2"], alpha=1.0))
    assert not all(torch.equal(resumed.reg.anchor()[k], saved_anchor[k]) for k in saved_anchor)
    result = fit_loop(resumed, data(32, seed=3), None, cfg)  # resumes from the last checkpoint
    assert result.resumed_at_step == result.steps
    for k, v in resumed.reg.anchor().items():
        assert torch.equal(v, saved_anchor[k]), k
    # still conservative toward the original w0: at w0 the anchored term vanishes
    at_w0 = copy.deepcopy(other)
    with torch.no_grad():
        for k, p in at_w0.named_parameters():
            if k in saved_anchor:
                p.copy_(saved_anchor[k])
    assert resumed.reg(at_w0).item() == pytest.approx(l2sp_penalty(at_w0, saved_anchor, 0.0, 0.01).item())

    buf = io.BytesIO()  # and a plain state_dict round trip through torch.save
    torch.save(objective.reg.state_dict(), buf)
    fresh = L2SP(bn_net(9), ["block1", "block2"])
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert all(torch.equal(fresh.anchor()[k], saved_anchor[k]) for k in saved_anchor)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(anchor_layers=["blok1"]), r"model has no layer or sub-module 'blok1'. Did you mean 'block1'"),
        (dict(anchor_layers=["block1"], alpha=-1.0), r"alpha=-1.0; expected a non-negative finite number"),
        (dict(anchor_layers=["block1"], per_layer={"head": 2.0}), r"per_layer names \['head'\], which are not in"),
        (dict(anchor_layers=["stages.block1.2"]), r"hold no parameters"),
    ],
)
def test_l2sp_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        L2SP(bn_net(0), **kwargs)


def test_l2sp_penalty_refuses_a_foreign_anchor():
    with pytest.raises(ValueError, match=r"anchor names parameters the model does not have: \['fc.weight'\]"):
        l2sp_penalty(nn.Linear(2, 2), {"fc.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"anchor\['weight'\] has shape \(3, 2\) but the parameter has \(2, 2\)"):
        l2sp_penalty(nn.Linear(2, 2), {"weight": torch.zeros(3, 2)})


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "0.1"])
@pytest.mark.parametrize("arg", ["alpha", "beta"])
def test_l2sp_names_a_weight_that_is_not_a_non_negative_number(arg, value):
    message = rf"^{arg}={re.escape(repr(value))}; expected a non-negative finite number\.$"
    with pytest.raises(ValueError, match=message):
        L2SP(bn_net(0), "block1", **{arg: value})
    with pytest.raises(ValueError, match=message):
        l2sp_penalty(nn.Linear(2, 2), {}, **{arg: value})


def test_l2sp_names_its_other_arguments():
    for make in (lambda: L2SP("net", "block1"), lambda: l2sp_penalty("net", {})):
        with pytest.raises(TypeError, match=r"^model must be a torch.nn.Module; got str\.$"):
            make()
    with pytest.raises(TypeError, match=r"^anchor_layers=5; expected a layer name or a list of layer names\.$"):
        L2SP(bn_net(0), 5)
    with pytest.raises(ValueError, match=r"^anchor_layers: model has no layer or sub-module 'blok1'"):
        L2SP(bn_net(0), ["block1", "blok1"])
    with pytest.raises(ValueError, match=r"^per_layer\['block1'\]=-1; expected a non-negative finite number\.$"):
        L2SP(bn_net(0), "block1", per_layer={"block1": -1})
    many = {f"x{i}": torch.zeros(1) for i in range(7)}  # the first five missing names, the first five parameters
    message = r"does not have: \['x0', 'x1', 'x2', 'x3', 'x4'\]; the model's parameters start \['stages"
    with pytest.raises(ValueError, match=message):
        l2sp_penalty(bn_net(0), many)
    with pytest.raises(
        ValueError, match=r"start \['stages.block1.0.weight', 'stages.block1.0.bias', '[^']+', '[^']+', '[^']+'\]\."
    ):
        l2sp_penalty(bn_net(0), many)


def test_l2sp_defaults_are_alpha_0_1_and_beta_0_01():
    net = bn_net(0)
    reg = L2SP(net, "block1")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    expected = L2SP(bn_net(0), "block1", alpha=0.1, beta=0.01)(net)
    assert (reg.alpha, reg.beta) == (0.1, 0.01)
    assert reg(net).item() == pytest.approx(expected.item(), rel=1e-6)
    assert l2sp_penalty(net, reg.anchor()).item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_most_specific_listed_module_sets_a_parameters_weight():
    net = bn_net(0)
    reg = L2SP(net, ["stages", "stages.block2"], per_layer={"stages": 2.0, "stages.block2": 5.0})
    assert {k: v for k, v in reg.lam.items() if k.startswith("stages.block1.")} == {
        "stages.block1.0.weight": 2.0, "stages.block1.0.bias": 2.0,
        "stages.block1.1.weight": 2.0, "stages.block1.1.bias": 2.0,
    }  # fmt: skip
    assert {v for k, v in reg.lam.items() if k.startswith("stages.block2.")} == {5.0}
    reg = L2SP(net, ["stages.block2", "stages"], per_layer={"stages": 2.0, "stages.block2": 5.0})  # any order
    assert {v for k, v in reg.lam.items() if k.startswith("stages.block2.")} == {5.0}


def test_a_model_without_parameters_has_a_zero_penalty():
    assert torch.equal(l2sp_penalty(nn.ReLU(), {}), torch.zeros(()))


# ----------------------------------------------------------------------------------- distillation


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("T, t_squared", [(1.0, False), (2.0, False), (2.0, True), (5.0, True)])
def test_distillation_loss_matches_lwf_formula_in_numpy(T, t_squared):
    rng = np.random.default_rng(0)
    new, old = rng.normal(size=(7, 4)) * 3, rng.normal(size=(7, 4)) * 3
    # L_old = -sum_i y'_i log yhat'_i, y' = softmax(old / T), yhat' = softmax(new / T); batch mean
    y_old, y_new = np_softmax(old / T), np_softmax(new / T)
    expected = -np.mean(np.sum(y_old * np.log(y_new), axis=1)) * (T**2 if t_squared else 1.0)
    z = torch.tensor(new, requires_grad=True)
    loss = DistillationLoss(T, t_squared)(z, torch.tensor(old))
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    loss.backward()  # dL/dz = c / (n T) (yhat' - y')
    c = T**2 if t_squared else 1.0
    np.testing.assert_allclose(z.grad.numpy(), c / (7 * T) * (y_new - y_old), rtol=1e-8, atol=1e-12)


def test_distillation_loss_is_smallest_when_the_outputs_agree():
    old = torch.randn(5, 3)
    at_old = distillation_loss(old.clone(), old)
    entropy = -(F.softmax(old / 2, 1) * F.log_softmax(old / 2, 1)).sum(1).mean() * 4
    assert at_old.item() == pytest.approx(entropy.item(), rel=1e-6)  # cross-entropy = entropy at agreement
    assert distillation_loss(old + torch.randn(5, 3), old) > at_old


@pytest.mark.parametrize("T", [0, 0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_distillation_refuses_a_temperature_that_is_not_positive_and_finite(T):
    message = rf"^T={re.escape(repr(T))}; expected a positive temperature \(2 in Learning without Forgetting\)\.$"
    with pytest.raises(ValueError, match=message):
        DistillationLoss(T=T)
    with pytest.raises(ValueError, match=message):
        distillation_loss(torch.zeros(4, 3), torch.zeros(4, 3), T=T)


def test_distillation_errors():
    with pytest.raises(
        ValueError, match=r"^new_logits \(4, 3\) and old_logits \(4, 2\): expected the same shape \(n, classes\)\.$"
    ):
        distillation_loss(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(TypeError, match="^new_logits and old_logits must be tensors; got ndarray, Tensor.$"):
        distillation_loss(np.zeros((4, 3)), torch.zeros(4, 3))
    with pytest.raises(TypeError, match="must be tensors; got Tensor, list.$"):
        distillation_loss(torch.zeros(4, 3), [[0.0] * 3] * 4)


def test_distillation_defaults_are_lwfs_temperature_2_with_hintons_t_squared():
    new, old = torch.randn(6, 4), torch.randn(6, 4)
    expected = distillation_loss(new, old, T=2.0, t_squared=True)
    assert DistillationLoss()(new, old).item() == pytest.approx(expected.item(), rel=1e-12)
    assert distillation_loss(new, old).item() == pytest.approx(expected.item(), rel=1e-12)
    assert expected.item() != pytest.approx(distillation_loss(new, old, T=2.0, t_squared=False).item())


def test_old_model_outputs_pass_keyword_arguments_through():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x, scale=1.0):
            return self.w * x * scale

    old = OldModelOutputs(Scaled())
    torch.testing.assert_close(old(torch.ones(2), scale=3.0), torch.full((2,), 3.0))


def kl_to_old(new: nn.Module, old: nn.Module, x: torch.Tensor) -> float:
    new.eval(), old.eval()
    with torch.no_grad():
        p = F.log_softmax(old(x), 1)
        return float(F.kl_div(F.log_softmax(new(x), 1), p, log_target=True, reduction="batchmean"))


def test_distillation_keeps_the_new_outputs_close_to_the_old_networks():
    source, _ = pretrained_pair()
    target = data(24, seed=4)  # labels unrelated to what the source network predicts
    held_out = torch.from_numpy(data(200, seed=5)["xs"])
    nets = {}
    for name, old in (("plain", None), ("lwf", OldModelOutputs(source))):
        nets[name] = copy.deepcopy(source)
        fit_loop(FineTuneObjective(nets[name], old=old, lam=1.0), target, None, config(epochs=30, batch_size=8))
    kl = {name: kl_to_old(net, source, held_out) for name, net in nets.items()}
    kl_train = {name: kl_to_old(net, source, torch.from_numpy(target["xs"])) for name, net in nets.items()}
    assert kl["plain"] > 0.05
    assert kl["lwf"] < 0.5 * kl["plain"], kl
    assert kl_train["lwf"] < 0.5 * kl_train["plain"], kl_train


# ------------------------------------------------------------------------------------ the old model


def test_old_model_outputs_holds_buffers_only_and_answers_like_the_old_model():
    source = bn_net(3)
    for m in source.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
    old = OldModelOutputs(source)
    assert list(old.parameters()) == []
    names = {f"model.{k}" for k in source.state_dict()}
    assert {k for k, _ in old.named_buffers()} == names == set(old.state_dict())
    x = torch.randn(10, D)
    source.eval()
    expected = source(x).detach()
    old.train()  # pinned in eval mode: no dropout, BatchNorm statistics neither used from the batch nor updated
    assert not old.model.training and not old.model.stages.block1[1].training
    running = old.model.stages.block1[1].running_mean.clone()
    out = old(x)
    assert torch.equal(out, expected) and not out.requires_grad
    assert torch.equal(old.model.stages.block1[1].running_mean, running)
    with torch.no_grad():  # a copy: the original may go on training
        source.head.weight.add_(1.0)
    assert torch.equal(old(x), expected)


def test_old_model_outputs_round_trip_through_a_state_dict():
    a, b = bn_net(1), bn_net(2)
    old_a, old_b = OldModelOutputs(a), OldModelOutputs(b)
    x = torch.randn(6, D)
    assert not torch.equal(old_a(x), old_b(x))
    buf = io.BytesIO()
    torch.save(FineTuneObjective(bn_net(0), old=old_a).state_dict(), buf)
    resumed = FineTuneObjective(bn_net(0), old=old_b)
    resumed.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert torch.equal(resumed.old(x), old_a(x))
    # the objective's optimiser sees only the new network's parameters
    assert {id(p) for p in resumed.parameters()} == {id(p) for p in resumed.net.parameters()}


def test_old_model_outputs_handles_recurrent_networks():
    torch.manual_seed(0)
    gru_a, gru_b = nn.GRU(4, 5, batch_first=True), nn.GRU(4, 5, batch_first=True)
    old_a, old_b = OldModelOutputs(gru_a), OldModelOutputs(gru_b)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(old_a(x)[0], gru_a(x)[0].detach())
    old_b.load_state_dict(old_a.state_dict())
    old_b.to(torch.float64)  # replaces every buffer tensor; the GRU must follow
    torch.testing.assert_close(old_b(x.double())[0], gru_a.double()(x.double())[0].detach())
    with pytest.raises(TypeError, match="old_model must be a torch.nn.Module; got str"):
        OldModelOutputs("net")


def test_distillation_reads_the_classes_on_the_last_axis_of_any_shape():
    rng = np.random.default_rng(1)
    new, old = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 5))  # (n, steps, classes)
    y_old, y_new = np_softmax(old / 2.0), np_softmax(new / 2.0)
    expected = -np.mean(np.sum(y_old * np.log(y_new), axis=-1)) * 4.0  # averaged over every leading axis
    loss = distillation_loss(torch.tensor(new), torch.tensor(old), T=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_the_whole_model_listed_with_a_module_anchors_the_rest_at_its_own_weight():
    net = bn_net(0)
    # "" is the whole model: the head falls to it; the stages keep their own, more specific entry
    reg = L2SP(net, ["", "stages"], per_layer={"": 2.0, "stages": 5.0})
    assert reg.lam["stages.block1.0.weight"] == 5.0 and reg.lam["head.weight"] == 2.0
    assert L2SP(net, ["stages", ""], per_layer={"": 2.0, "stages": 5.0}).lam == reg.lam
