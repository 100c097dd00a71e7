"""transferkit.train.optim: torch.optim's Adam and SGD updates, without torch.optim's compiler hooks."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from transferkit.train import optim


def _net(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).to(dtype)


def _groups(net):
    return [
        {"params": list(net[0].parameters()), "lr_mult": 0.1},
        {"params": list(net[2].parameters()), "lr_mult": 1.0},
    ]


def _train(net, opt, steps=15, start=0):
    """Steps with an lr that changes every step, the way the training loop sets it."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(32, 7, generator=g, dtype=next(net.parameters()).dtype)
    y = torch.randint(0, 3, (32,), generator=g)
    for i in range(start, start + steps):
        for group in opt.param_groups:
            group["lr"] = 0.02 * (1 + i % 3) * group["lr_mult"]
        loss = torch.nn.functional.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _unfused(opt):
    opt._fused = False  # the ordinary tensor operations, as where the fused kernel is missing
    return opt


KINDS = [
    ("adam", dict(weight_decay=0.0)),
    ("adam", dict(weight_decay=0.01)),
    ("sgd", dict(momentum=0.0, weight_decay=0.0)),
    ("sgd", dict(momentum=0.9, weight_decay=0.01)),
]


@pytest.mark.parametrize("kind, kwargs", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_steps_are_torch_optims_fused_and_plain(kind, kwargs, dtype):
    net_a, net_b, net_c, net_d = (_net(dtype) for _ in range(4))
    torch_cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    our_cls = optim.Adam if kind == "adam" else optim.SGD
    fused_theirs = _train(net_a, torch_cls(_groups(net_a), lr=0.02, fused=True, **kwargs))
    fused_ours = _train(net_b, our_cls(_groups(net_b), lr=0.02, **kwargs))
    plain_theirs = _train(net_c, torch_cls(_groups(net_c), lr=0.02, **kwargs))
    plain_ours = _train(net_d, _unfused(our_cls(_groups(net_d), lr=0.02, **kwargs)))
    assert torch.equal(fused_ours, fused_theirs)  # the same kernel
    assert torch.allclose(plain_ours, plain_theirs, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14)
    assert not torch.equal(fused_ours, _train(_net(dtype), our_cls(_groups(_net(dtype)), lr=0.02, **kwargs), steps=1))


def _numpy_adam(theta, grads, lr, b1, b2, eps, wd):
    m = v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        theta = theta - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return theta


def _numpy_sgd(theta, grads, lr, mu, wd):
    b = None
    for g in grads:
        g = g + wd * theta
        b = g if b is None else mu * b + g
        theta = theta - lr * b
    return theta


@pytest.mark.parametrize("fused", [True, False])
def test_adam_and_sgd_match_the_formulas_in_numpy(fused):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]

    def run(opt_cls, **kw):
        p = torch.nn.Parameter(torch.tensor(theta0))
        opt = opt_cls([p], **kw)
        opt._fused = fused
        for g in grads:
            p.grad = torch.tensor(g)
            opt.step()
        return p.detach().numpy()

    np.testing.assert_allclose(
        run(optim.Adam, lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.05),
        _numpy_adam(theta0, grads, 0.1, 0.8, 0.9, 1e-3, 0.05),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        run(optim.SGD, lr=0.1, momentum=0.7, weight_decay=0.05), _numpy_sgd(theta0, grads, 0.1, 0.7, 0.05), rtol=1e-12
    )


@pytest.mark.parametrize("kind, kwargs", KINDS)
@pytest.mark.parametrize("writer", ["ours", "torch.optim"])
def test_a_saved_state_continues_exactly_whoever_wrote_it(kind, kwargs, writer):
    """Stopping after 5 steps, saving and loading the state, then 7 more steps: the 12 steps in one go.
    A state written by torch.optim (the checkpoints of earlier versions) loads as well."""
    our_cls = optim.Adam if kind == "adam" else optim.SGD
    torch_cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    net = _net()
    whole = _train(net, our_cls(_groups(net), lr=0.02, **kwargs), steps=12)

    net = _net()
    first = (
        our_cls(_groups(net), lr=0.02, **kwargs)
        if writer == "ours"
        else torch_cls(_groups(net), lr=0.02, fused=True, **kwargs)
    )
    _train(net, first, steps=5)
    weights, state = {k: v.clone() for k, v in net.state_dict().items()}, first.state_dict()
    resumed = _net()
    resumed.load_state_dict(weights)
    second = our_cls(_groups(resumed), lr=0.02, **kwargs)
    second.load_state_dict(state)
    assert torch.equal(_train(resumed, second, steps=7, start=5), whole)
    restarted = _net()
    restarted.load_state_dict(weights)  # the same weights without the state: another trajectory
    if kind == "adam" or kwargs["momentum"]:
        assert not torch.equal(
            _train(restarted, our_cls(_groups(restarted), lr=0.02, **kwargs), steps=7, start=5), whole
        )


def test_parameters_in_another_dense_layout_reach_the_kernel_as_flat_views_and_step_alike():
    """A column-major weight (the sparse input layer's) or channels-last convolution weights: the fused
    kernel gets one-dimensional views of the same memory, and the steps are those of a contiguous copy."""
    column = torch.randn(5, 4).t()  # a 4 x 5 view of column-major memory
    channels_last = torch.randn(3, 2, 4, 4).contiguous(memory_format=torch.channels_last)
    for t in (column, channels_last):
        views = optim._flat([t, t.clone(), torch.zeros_like(t)])  # zeros_like keeps the layout
        assert all(v.dim() == 1 and v.is_contiguous() for v in views)
        assert views[0].data_ptr() == t.data_ptr() and torch.equal(views[0].sort().values, t.flatten().sort().values)
    mixed = [column, column.contiguous()]  # layouts differ: left as they are
    assert optim._flat(mixed) is mixed

    for kind in ("adam", "sgd"):
        cls = optim.Adam if kind == "adam" else optim.SGD
        kw = {"momentum": 0.9} if kind == "sgd" else {}
        p_col = torch.nn.Parameter(torch.randn(6, 3).t())
        p_row = torch.nn.Parameter(p_col.detach().contiguous())
        a, b = cls([p_col], lr=0.1, **kw), cls([p_row], lr=0.1, **kw)
        for i in range(4):
            g = torch.randn(3, 6, generator=torch.Generator().manual_seed(i))
            p_col.grad, p_row.grad = g.t().contiguous().t(), g.clone()
            a.step()
            b.step()
        # alike up to rounding (the kernel's vector and scalar loops meet other elements in the other order)
        assert torch.allclose(p_col.detach(), p_row.detach(), rtol=0, atol=1e-6) and p_col.t().is_contiguous()


def test_bad_parameter_lists_and_foreign_states_are_refused():
    net = _net()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": list(net.parameters())}, {"params": [net[0].weight]}])
    state = optim.Adam(_groups(net)).state_dict()
    with pytest.raises(ValueError, match="other parameter groups"):
        optim.Adam(list(net.parameters())).load_state_dict(state)


def test_training_never_imports_torchs_compiler():
    """torch.optim's first step imports torch._dynamo (about a second of every process); ours must not."""
    code = """
import sys
import numpy as np
from transferkit.methods.dann import DANNObjective
from transferkit.nn.backbones import shallow_net
from transferkit.nn.discriminator import DomainDiscriminator
from transferkit.train import FitConfig, fit_loop
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype("float32")
y = (X[:, 0] > 0).astype("int64")
for opt in ("adam", "sgd"):
    objective = DANNObjective(shallow_net(4, 2, hidden=8), DomainDiscriminator(8, (8,)), "hidden", 1.0, "ganin", 10.0)
    config = FitConfig(epochs=1, batch_size=16, optimizer=opt, momentum=0.9, grad_clip=1.0, progress=False)
    fit_loop(objective, {"xs": X, "ys": y}, {"xt": X + 1}, config)
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
