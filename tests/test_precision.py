"""precision="bfloat16": the forward pass under autocast, the weights and the optimiser in float32."""

import functools

import numpy as np
import pytest
import torch

from transferkit import DANN, Domain
from transferkit.datasets.synthetic import make_blobs_shift
from transferkit.train import FitConfig


def _task():
    return make_blobs_shift(n_classes=3, n_source=300, n_target=300, n_features=8, n_test=600, seed=3)


def _dtypes_seen(model: DANN, task) -> set:
    """The dtypes of the hidden layer's outputs while the model trains."""
    seen = set()
    original = DANN._objective

    def objective(self, net, n_classes):
        net.stages["hidden"].register_forward_hook(lambda m, i, out: seen.add(out.dtype) if m.training else None)
        return original(self, net, n_classes)

    DANN._objective = objective
    try:
        model.fit(task.source, task.target)
    finally:
        DANN._objective = original
    return seen


@pytest.mark.parametrize("precision, dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_bfloat16_runs_the_forward_pass_in_bfloat16_and_keeps_float32_weights(precision, dtype):
    task = _task()
    model = DANN(epochs=4, batch_size=32, precision=precision, seed=0)
    assert _dtypes_seen(model, task) == {dtype}
    assert all(p.dtype == torch.float32 for p in model.model_.parameters())
    assert model.predict_proba(task.target_test.X).dtype == np.float32
    assert model.score(task.target_test) > 0.8  # the blobs are easy: bfloat16 must not spoil the fit


def test_bfloat16_trains_close_to_float32_and_not_identically():
    task = _task()
    w32 = DANN(epochs=3, batch_size=32, seed=1).fit(task.source, task.target).model_.head.weight.detach()
    w16 = DANN(epochs=3, batch_size=32, seed=1, precision="bfloat16").fit(task.source, task.target)
    w16 = w16.model_.head.weight.detach()
    assert not torch.equal(w32, w16)
    assert torch.allclose(w32, w16, atol=0.05)


def test_an_unknown_precision_is_refused_before_training():
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="precision"):
        DANN(precision="float16").fit(Domain(X, np.arange(40) % 2), Domain(X))
    with pytest.raises(ValueError, match=r"precision='fp8'; expected one of 'float32', 'bfloat16'"):
        FitConfig(precision="fp8").validate()


@pytest.mark.parametrize("name", ["finetune", "target-only"])
def test_fine_tuning_trains_both_networks_in_the_precision_asked_for(name, monkeypatch):
    from transferkit import REGISTRY
    from transferkit.methods import base, finetune

    task = _task()
    few = Domain(task.target_test.X[:30], task.target_test.y[:30])
    seen = []
    original = finetune.fit_loop

    def spy(module, source, target, config, **kw):
        seen.append(config.precision)
        return original(module, source, target, config, **kw)

    monkeypatch.setattr(finetune, "fit_loop", spy)
    monkeypatch.setattr(base, "fit_loop", spy)  # the source network FineTune trains first
    fast = {"epochs": 2, "source_epochs": 2} if name == "finetune" else {"epochs": 2}
    model = REGISTRY[name](precision="bfloat16", **fast)
    model.fit(task.source, few)
    assert seen == (["bfloat16", "bfloat16"] if name == "finetune" else ["bfloat16"])  # source network, then target
    with pytest.raises(ValueError, match="precision"):
        REGISTRY[name](precision="half").fit(task.source, few)


def _linear_dtypes_while_training(fit) -> set:
    """The dtypes of every linear layer's outputs while ``fit()`` trains (modules in training mode)."""
    seen = set()

    def hook(module, inputs, out):
        if isinstance(module, torch.nn.Linear) and module.training:
            seen.add(out.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        fit()
    finally:
        handle.remove()
    return seen


def _other_networks():
    """Each network estimator outside the adaptation base, with a small fit of its own kind of data."""
    from tests.test_zeroshot import attribute_world

    from transferkit.methods.attribute_embedding import AttributeEmbedding
    from transferkit.methods.autoencoder import Autoencoder
    from transferkit.methods.conse import ConSE
    from transferkit.methods.dap import DAP
    from transferkit.methods.devise import DeViSE
    from transferkit.methods.multitask import MultiTask
    from transferkit.methods.progressive import ProgressiveNetwork

    task = _task()
    X, y = task.source.X, task.source.y
    tasks = {"a": (X[:150], y[:150]), "b": (X[150:], y[150:])}
    Z, yz, desc, seen = attribute_world()
    small = dict(epochs=2, device="cpu")
    return {
        "multitask": (lambda p: MultiTask(precision=p, **small), lambda m: m.fit(tasks)),
        "progressive": (lambda p: ProgressiveNetwork(precision=p, **small), lambda m: m.fit(tasks)),
        "autoencoder": (lambda p: Autoencoder(n_hidden=4, precision=p, **small), lambda m: m.fit(X)),
        "dap": (lambda p: DAP(precision=p, **small), lambda m: m.fit(Z[seen], yz[seen], desc)),
        "attribute-embedding": (
            lambda p: AttributeEmbedding(precision=p, **small),
            lambda m: m.fit(Z[seen], yz[seen], desc),
        ),
        "devise": (lambda p: DeViSE(pretrain_epochs=2, precision=p, **small), lambda m: m.fit(Z[seen], yz[seen], desc)),
        "conse": (lambda p: ConSE(precision=p, **small), lambda m: m.fit(Z[seen], yz[seen], desc)),
    }


@pytest.mark.parametrize(
    "name", ["multitask", "progressive", "autoencoder", "dap", "attribute-embedding", "devise", "conse"]
)
def test_every_other_network_trains_in_the_precision_asked_for(name):
    make, fit = _other_networks()[name]
    for precision, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = make(precision)
        assert _linear_dtypes_while_training(functools.partial(fit, model)) == {dtype}, precision
        modules = [v for v in vars(model).values() if isinstance(v, torch.nn.Module)]
        assert modules and all(p.dtype == torch.float32 for m in modules for p in m.parameters())
    with pytest.raises(ValueError, match="precision"):
        make("half")._validate_params()
