"""FineTune and TargetOnly: what is copied stays copied, what is frozen stays put, the regularisers hold."""

import numpy as np
import pytest
import torch

from transferkit import Domain
from transferkit.datasets import make_blobs_shift
from transferkit.methods import FineTune, TargetOnly
from transferkit.methods.finetune import parse_copy
from transferkit.nn import layer_names


@pytest.fixture(scope="module")
def task():
    t = make_blobs_shift(n_classes=3, n_source=300, n_target=300, n_features=4, seed=0)
    pool = t.target_test  # labelled target: 5 per class to train on, the rest to test
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(pool.y == c), 5, replace=False) for c in range(3)])
    rest = np.setdiff1d(np.arange(len(pool)), idx)
    return t.source, pool.subset(np.sort(idx)), pool.subset(rest)


def _state(net, stage):
    return net.stages[stage].state_dict()


FAST = dict(source_epochs=5, epochs=20, hidden=16)


def test_copied_and_frozen_layers_keep_the_source_weights(task):
    source, target, _ = task
    model = FineTune(copy="first:1", freeze=True, **FAST).fit(source, target)
    assert model.copied_layers_ == ["hidden"]
    for k, v in _state(model.source_model_, "hidden").items():
        assert torch.equal(v, _state(model.model_, "hidden")[k])
    # without freeze the copied layer trains on: it moves away from the source weights
    unfrozen = FineTune(copy="first:1", freeze=False, **FAST).fit(source, target)
    moved = [
        not torch.equal(v, _state(unfrozen.model_, "hidden")[k])
        for k, v in _state(model.source_model_, "hidden").items()
    ]
    assert any(moved)


def test_l2sp_keeps_the_copied_weights_closer_to_the_pretrained_ones(task):
    source, target, _ = task

    def drift(model):
        return sum(
            (p - q).pow(2).sum().item()
            for p, q in zip(model.model_.parameters(), model.source_model_.parameters(), strict=True)
        )

    plain = FineTune(lr=1e-2, **FAST).fit(source, target)
    conservative = FineTune(conservative="l2sp", alpha=10.0, lr=1e-2, **FAST).fit(source, target)
    assert drift(conservative) < 0.5 * drift(plain)
    assert "l2sp" in conservative.history_[-1]


def test_lwf_keeps_the_old_task_outputs(task):
    source, target, test = task
    X = torch.from_numpy(test.X)

    def old_task_gap(model):  # KL(old model || old head on the new features) on target inputs
        with torch.no_grad():
            h = model.model_.forward_to(X, model.model_.stage_names[-1])
            head = model.objective_.old_head if model.objective_.old_head is not None else model.source_model_.head
            p_old = torch.softmax(model.source_model_(X), 1)
            return torch.sum(p_old * (p_old.log() - torch.log_softmax(head(h), 1)), 1).mean().item()

    plain = FineTune(lr=1e-2, **FAST).fit(source, target)
    lwf = FineTune(conservative="lwf", lwf_weight=5.0, lr=1e-2, **FAST).fit(source, target)
    assert old_task_gap(lwf) < 0.5 * old_task_gap(plain)


def test_target_only_never_looks_at_the_source(task):
    source, target, test = task
    shuffled = Domain(source.X[::-1].copy(), np.random.default_rng(1).permutation(source.y), "other")
    a = TargetOnly(epochs=10, hidden=16).fit(source, target).predict_proba(test.X)
    b = TargetOnly(epochs=10, hidden=16).fit(shuffled, target).predict_proba(test.X)
    np.testing.assert_array_equal(a, b)


def test_source_model_from_a_file(task, tmp_path):
    source, target, _ = task
    first = FineTune(**FAST).fit(source, target)
    path = tmp_path / "source.pt"
    torch.save(first.source_model_.state_dict(), path)
    again = FineTune(source_model=str(path), **FAST).fit(source, target)
    for p, q in zip(again.source_model_.parameters(), first.source_model_.parameters(), strict=True):
        assert torch.equal(p, q)
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="source_model=.*bad.pt.*neither a transferkit checkpoint nor a plain"):
        FineTune(source_model=str(bad), **FAST).fit(source, target)
    torch.save({"weights": [1, 2]}, bad)
    with pytest.raises(ValueError, match="holds no state_dict of tensors"):
        FineTune(source_model=str(bad), **FAST).fit(source, target)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"copy": "first:9"}, "first=9"),
        ({"copy": "names:hiden"}, "hiden"),
        ({"copy": "middle:2"}, "copy='middle:2'"),
        ({"copy": "none", "conservative": "l2sp"}, "copies nothing"),
        ({"conservative": "ewc"}, "conservative='ewc'"),
        ({"freeze": True, "gradual_unfreezing": True}, "choose one"),
        (
            {"lr_decay": 0.5},
            "'lr_decay' parameter of FineTune must be .* Got 0.5",
        ),
    ],
)
def test_bad_parameters_are_named(task, params, message):
    source, target, _ = task
    with pytest.raises(ValueError, match=message):
        FineTune(**{**FAST, "source_epochs": 1, "epochs": 1, **params}).fit(source, target)


def test_parse_copy():
    assert parse_copy("first:2") == {"first": 2} and parse_copy("last:1") == {"last": 1}
    assert parse_copy("names:conv1,fc1") == {"names": ["conv1", "fc1"]}
    assert parse_copy("none") == {} and parse_copy("all") == {"all": True} and parse_copy("body") == {"body": True}


def test_copy_body_copies_every_layer_but_the_head(task):
    source, target, _ = task
    model = FineTune(copy="body", **FAST).fit(source, target)
    assert "head" not in model.copied_layers_ and model.copied_layers_ == [
        n for n in layer_names(model.model_) if n != "head"
    ]
    everything = FineTune(copy="all", **FAST).fit(source, target)
    assert everything.copied_layers_[-1] == "head"  # same label set here: "all" takes the head too


def test_lwf_distils_at_the_temperature_it_is_given(task, monkeypatch):
    import transferkit.methods.finetune as finetune

    source, target, _ = task
    temperatures = []
    real = finetune.distillation_loss

    def recording(new, old, T=2.0, **kw):
        temperatures.append(T)
        return real(new, old, T=T, **kw)

    monkeypatch.setattr(finetune, "distillation_loss", recording)
    FineTune(conservative="lwf", temperature=4.0, epochs=1, source_epochs=1).fit(source, target)
    assert temperatures and set(temperatures) == {4.0}
