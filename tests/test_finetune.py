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


# ----------------------------------------------------------------------------- what each setting reaches
def _recording_fit_loop(monkeypatch):
    """Record every (objective, its parameter groups, config) that FineTune hands the training loop."""
    import transferkit.methods.finetune as finetune

    calls, real = [], finetune.fit_loop

    def recording(objective, arrays, arrays_t, config, **kw):
        calls.append((objective, objective.param_groups(), config))
        return real(objective, arrays, arrays_t, config, **kw)

    monkeypatch.setattr(finetune, "fit_loop", recording)
    return calls


def test_every_training_setting_reaches_the_target_networks_training(task, tmp_path, monkeypatch):
    from transferkit.methods.base import fit_identity

    source, target, _ = task
    calls = _recording_fit_loop(monkeypatch)
    settings = dict(epochs=2, batch_size=7, lr=0.02, optimizer="sgd", momentum=0.5, weight_decay=0.1, seed=4)
    model = FineTune(hidden=8, source_epochs=1, n_threads=1, verbose=True, checkpoint_dir=str(tmp_path), **settings)
    model.fit(source, target)
    ((_, _, config),) = calls
    assert {k: getattr(config, k) for k in settings} == settings
    assert (config.n_threads, config.progress, config.desc) == (1, True, "finetune")
    assert config.checkpoint_dir == str(tmp_path / "target")
    assert config.identity == fit_identity(model, "target") and config.identity["stage"] == "target"
    calls.clear()
    FineTune(batch_size=100, epochs=1, source_epochs=1, hidden=8).fit(source, target)
    assert calls[0][2].batch_size == len(target) == 15  # never a batch larger than the labelled target
    assert calls[0][2].progress is False  # quiet unless verbose
    calls.clear()
    TargetOnly(epochs=1, hidden=8).fit(source, target)
    assert calls[0][2].desc == "target-only" and calls[0][2].checkpoint_dir is None


def test_the_source_network_is_trained_with_the_source_settings_and_checkpointed_apart(task, tmp_path, capfd):
    from transferkit.methods import SourceOnly

    source, target, _ = task
    settings = dict(hidden=8, optimizer="sgd", momentum=0.5, seed=3)
    model = FineTune(source_epochs=2, source_lr=0.05, epochs=1, verbose=True, checkpoint_dir=str(tmp_path), **settings)
    model.fit(source, target)
    alone = SourceOnly(epochs=2, lr=0.05, **settings).fit(source)
    for (k, v), (k2, v2) in zip(
        model.source_model_.state_dict().items(), alone.model_.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2), k
    assert list((tmp_path / "source").glob("ckpt-*.pt")) and list((tmp_path / "target").glob("ckpt-*.pt"))
    err = capfd.readouterr().err
    assert "source-only" in err and "finetune" in err  # progress of both trainings on stderr


def test_a_module_backbone_and_its_feature_layer_build_both_networks(task):
    source, target, test = task
    backbone = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    model = FineTune(backbone=backbone, feature_layer="0", source_epochs=1, epochs=1).fit(source, target)
    for net in (model.model_, model.source_model_):
        h = net.forward_to(torch.from_numpy(test.X[:5]), net.stage_names[-1])
        assert h.shape == (5, 16)  # module "0"'s output, not the input of the last Linear (8)
    assert model.transform(test.X).shape == (len(test), 16)


def test_transform_gives_the_features_the_head_reads(task):
    source, target, test = task
    model = FineTune(**FAST).fit(source, target)
    X = torch.from_numpy(test.X)
    with torch.no_grad():
        h = model.model_.forward_to(X, model.model_.stage_names[-1])
        np.testing.assert_allclose(model.transform(test.X), h.numpy(), rtol=1e-6)
        p = torch.softmax(model.model_.head(h), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(test.X), p, rtol=1e-5, atol=1e-7)
    assert model.transform(test.X).shape == (len(test), FAST["hidden"])
    big = np.repeat(test.X, 5, axis=0)  # over one batch of 1024
    np.testing.assert_allclose(model.predict_proba(big), np.repeat(p, 5, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.transform(big), np.repeat(h.numpy(), 5, axis=0), rtol=1e-6)


def test_a_given_source_module_is_left_as_it_was(task):
    from transferkit.methods import SourceOnly

    source, target, _ = task
    given = SourceOnly(hidden=16, epochs=3).fit(source).model_.train()
    before = {k: v.clone() for k, v in given.state_dict().items()}
    model = FineTune(source_model=given, conservative="lwf", lr=1e-2, epochs=10, hidden=16).fit(source, target)
    assert model.source_model_ is not given
    assert all(m.training for m in given.modules())  # the copy is put in eval mode, not the caller's module
    for k, v in given.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the old head trains on the new features; the source network's own head stays as given
    assert torch.equal(model.source_model_.head.weight, before["head.weight"])
    assert not torch.equal(model.objective_.old_head.weight, before["head.weight"])


def test_which_settings_train_a_source_network(task):
    source, target, _ = task
    assert FineTune(copy="none", epochs=1, hidden=8).fit(source, target).source_model_ is None
    lwf_only = FineTune(copy="none", conservative="lwf", epochs=1, source_epochs=1, hidden=8).fit(source, target)
    assert lwf_only.source_model_ is not None and lwf_only.copied_layers_ == []
    assert set(lwf_only.history_[-1]) >= {"loss_y", "target_acc", "lwf", "loss"}
    assert TargetOnly(epochs=1, hidden=8).fit(source, target).source_model_ is None
    both = FineTune(conservative="l2sp+lwf", epochs=1, source_epochs=1, hidden=8).fit(source, target)
    assert {"l2sp", "lwf"} <= set(both.history_[-1])


def test_copy_all_leaves_a_head_of_another_label_set_behind(task):
    source, target, _ = task
    binary = target.subset(np.flatnonzero(target.y < 2))
    model = FineTune(copy="all", **FAST).fit(source, binary)
    assert model.copied_layers_ == [n for n in layer_names(model.model_) if n != "head"]
    assert model.predict_proba(binary.X).shape == (len(binary), 2)
    assert set(model.predict(binary.X)) <= {0, 1}
    with pytest.raises(ValueError, match=r"^target.y has a single class \(\[0\]\); expected at least two.$"):
        FineTune(**FAST).fit(source, target.subset(np.flatnonzero(target.y == 0)))


def test_trainable_layers_leave_out_only_frozen_copies(task):
    source, target, _ = task
    frozen = FineTune(copy="first:1", freeze=True, **FAST).fit(source, target)
    assert frozen.trainable_layers_ == ["head"]
    assert FineTune(copy="first:1", **FAST).fit(source, target).trainable_layers_ == ["hidden", "head"]


def test_discriminative_rates_reach_the_optimiser_and_the_old_head_trains_at_the_full_rate(task, monkeypatch):
    source, target, _ = task
    calls = _recording_fit_loop(monkeypatch)
    model = FineTune(lr_decay=4.0, conservative="lwf", **FAST).fit(source, target)
    ((objective, groups, _),) = calls
    by_param = {id(p): g.get("lr_mult", 1.0) for g in groups for p in g["params"]}
    assert len(by_param) == sum(len(g["params"]) for g in groups)  # no parameter in two groups
    net = model.model_
    assert {by_param[id(p)] for p in net.stages["hidden"].parameters()} == {0.25}
    assert {by_param[id(p)] for p in net.head.parameters()} == {1.0}
    assert {by_param[id(p)] for p in objective.old_head.parameters()} == {1.0}
    assert set(by_param) == {id(p) for p in objective.parameters()}
    calls.clear()
    FineTune(**FAST).fit(source, target)
    assert [set(g) for g in calls[0][1]] == [{"params"}]  # one group at the base rate


def test_a_tiny_rate_on_the_copied_layer_keeps_it_near_the_source(task):
    source, target, _ = task

    def drift(model, layer):
        part = lambda net: net.head if layer == "head" else net.stages[layer]  # noqa: E731
        return sum(
            (p - q).pow(2).sum().item()
            for p, q in zip(part(model.model_).parameters(), part(model.source_model_).parameters(), strict=True)
        )

    slow = FineTune(lr_decay=1e4, lr=1e-2, **FAST).fit(source, target)
    plain = FineTune(lr=1e-2, **FAST).fit(source, target)
    assert drift(slow, "hidden") < 1e-3 * drift(plain, "hidden")
    assert drift(slow, "head") > 0.1 * drift(plain, "head")


def test_gradual_unfreezing_thaws_the_copied_layer_halfway(task, monkeypatch):
    from transferkit.nn.transfer import GradualUnfreezing

    source, target, _ = task
    seen, real = [], GradualUnfreezing.apply

    def recording(self, net, progress):
        real(self, net, progress)
        hidden = {p.requires_grad for p in net.stages["hidden"].parameters()}
        head = {p.requires_grad for p in net.head.parameters()}
        assert len(hidden) == len(head) == 1  # a layer thaws whole
        seen.append((progress, *hidden, *head))

    monkeypatch.setattr(GradualUnfreezing, "apply", recording)
    model = FineTune(gradual_unfreezing=True, **FAST).fit(source, target)
    assert model.objective_.find_unused_parameters is True
    assert seen and all(head for _, _, head in seen)
    assert all(hidden == (p >= 0.5) for p, hidden, _ in seen)
    assert any(p < 0.5 for p, _, _ in seen) and any(p >= 0.5 for p, _, _ in seen)
    seen.clear()
    plain = FineTune(**FAST).fit(source, target)
    assert seen == [] and plain.objective_.schedule is None and plain.objective_.find_unused_parameters is False


def test_the_conservative_terms_get_their_weights(task):
    from transferkit.nn.lora import LoRAL2SP
    from transferkit.nn.regularisers import L2SP

    source, target, _ = task
    l2sp = FineTune(conservative="l2sp", alpha=0.7, beta=0.03, **FAST).fit(source, target).objective_.l2sp
    assert isinstance(l2sp, L2SP) and (l2sp.alpha, l2sp.beta) == (0.7, 0.03)
    lora = FineTune(lora=2, conservative="l2sp", alpha=0.7, beta=0.03, **FAST).fit(source, target)
    assert isinstance(lora.objective_.l2sp, LoRAL2SP) and (lora.objective_.l2sp.alpha, lora.objective_.l2sp.beta) == (
        0.7,
        0.03,
    )
    lwf = FineTune(conservative="lwf", lwf_weight=0.3, temperature=3.0, **FAST).fit(source, target).objective_
    assert (lwf.lwf_weight, lwf.T) == (0.3, 3.0)
    assert all(p.requires_grad for p in lwf.old_head.parameters())


def test_lora_trains_an_update_beside_every_copied_layer_and_a_new_head(task, tmp_path):
    from transferkit import load

    source, target, test = task
    model = FineTune(lora=2, **FAST).fit(source, target)
    assert model.lora_layers_ and not any(name.startswith("head") for name in model.lora_layers_)
    assert all(p.requires_grad for p in model.model_.head.parameters())
    np.testing.assert_array_equal(
        load(model.save(tmp_path / "lora")).predict_proba(test.X), model.predict_proba(test.X)
    )


def test_a_saved_fine_tuned_model_predicts_as_before(task, tmp_path):
    from transferkit import load

    source, target, test = task
    model = FineTune(**FAST).fit(source, target)
    loaded = load(model.save(tmp_path / "finetune"))
    np.testing.assert_array_equal(loaded.predict_proba(test.X), model.predict_proba(test.X))
    assert model._rebuild_module("source_model_") is None


def test_the_target_network_that_never_fits_is_reported(task):
    source, target, _ = task
    fitted = FineTune(lr=1e-2, **FAST).fit(source, target)
    assert fitted.warnings_ == [] and fitted.history_[-1]["target_acc"] >= 0.9
    shuffled = Domain(target.X, np.roll(target.y, 1), "shuffled")
    with pytest.warns(RuntimeWarning, match=r"^FineTune: the network never fitted the target: target accuracy"):
        model = FineTune(copy="none", epochs=1, hidden=8, lr=1e-6).fit(source, shuffled)
    assert not any("lambda_max" in m for m in model.warnings_)


def test_lora_excludes_freezing_and_unfreezing_in_full(task):
    source, target, _ = task
    message = "^lora trains a low-rank update beside frozen weights; freeze and gradual_unfreezing do not apply.$"
    for clash in ({"freeze": True}, {"gradual_unfreezing": True}):
        with pytest.raises(ValueError, match=message):
            FineTune(lora=2, epochs=1, source_epochs=1, **clash).fit(source, target)
    with pytest.raises(ValueError, match=r"^freeze=True with gradual_unfreezing=True: choose one \(gradual"):
        FineTune(freeze=True, gradual_unfreezing=True, epochs=1, source_epochs=1).fit(source, target)
    with pytest.raises(ValueError, match=r"^conservative='l2sp' anchors copied layers; copy='none' copies nothing.$"):
        FineTune(copy="none", conservative="l2sp", epochs=1).fit(source, target)


def test_the_documented_defaults():
    assert FineTune().get_params() == dict(
        backbone="auto", feature_layer=None, hidden=50, copy="all", freeze=False, conservative=None, alpha=0.1,
        beta=0.01, lwf_weight=1.0, temperature=2.0, gradual_unfreezing=False, lr_decay=None, lora=None,
        source_model=None, source_epochs=10, source_lr=1e-3, epochs=50, batch_size=32, lr=1e-3, optimizer="adam",
        momentum=0.9, weight_decay=0.0, seed=0, device="auto", n_threads=None, precision="float32",
        checkpoint_dir=None, verbose=False,
    )  # fmt: skip
    assert TargetOnly().get_params() == dict(
        backbone="auto", feature_layer=None, hidden=50, epochs=50, batch_size=32, lr=1e-3, optimizer="adam",
        momentum=0.9, weight_decay=0.0, seed=0, device="auto", n_threads=None, precision="float32",
        checkpoint_dir=None, verbose=False,
    )  # fmt: skip


def test_parse_copy_reads_the_number_after_the_first_colon():
    with pytest.raises(ValueError, match=r"^copy='first:1:2'; expected 'all', 'body', 'none', 'first:N', 'last:N'"):
        parse_copy("first:1:2")
    assert parse_copy("names:a:b,c") == {"names": ["a:b", "c"]}


# ----------------------------------------------------------------------------- loading a source network
def _mark_loaded():  # a payload: loading a file that names it would call it
    _mark_loaded.calls = getattr(_mark_loaded, "calls", 0) + 1
    return {}


class _Payload:
    def __reduce__(self):
        return (_mark_loaded, ())


def test_source_model_files_of_every_kind(task, tmp_path):
    from transferkit.methods import SourceOnly
    from transferkit.methods.finetune import load_source_model
    from transferkit.nn.backbones import build_backbone

    source, target, _ = task
    net = lambda: build_backbone("auto", (4,), 3, hidden=8)  # noqa: E731
    path = tmp_path / "m.pt"
    with pytest.raises(FileNotFoundError, match=rf"^source_model='{tmp_path / 'missing.pt'}': no such file.$"):
        load_source_model(tmp_path / "missing.pt", net())
    torch.save({"model": _Payload()}, path)
    with pytest.raises(ValueError, match=r"\(it holds Python objects other than tensors and plain data, which are"):
        load_source_model(path, net())
    assert getattr(_mark_loaded, "calls", 0) == 0  # refused before anything ran
    for kind in ([torch.zeros(2)], {}, {"w": 1}):
        torch.save(kind, path)
        with pytest.raises(ValueError, match=rf"^source_model='{path}' holds no state_dict of tensors.$"):
            load_source_model(path, net())
    wide = lambda: build_backbone("shallow-bn", (4,), 3, hidden=8)  # noqa: E731  nine tensors: four are named
    state = wide().state_dict()
    torch.save({f"other.{k}": v for k, v in state.items()}, path)
    names = list(state)
    assert len(names) > 4
    with pytest.raises(ValueError) as info:
        load_source_model(path, wide())
    assert str(info.value) == (
        f"source_model='{path}' does not fit the network: missing {names[:4]}, "
        f"unexpected {['other.' + k for k in names[:4]]}."
    )
    torch.save({k: v for k, v in state.items() if k != names[0]}, path)  # one missing, none unexpected
    with pytest.raises(ValueError, match=rf"missing \['{names[0]}'\], unexpected \[\]"):
        load_source_model(path, wide())
    # a transferkit checkpoint of a source network loads as that network
    SourceOnly(hidden=8, epochs=2, checkpoint_dir=str(tmp_path / "ck")).fit(source)
    (ckpt,) = sorted((tmp_path / "ck").glob("ckpt-*.pt"))[-1:]
    trained = SourceOnly(hidden=8, epochs=2).fit(source).model_
    loaded = load_source_model(ckpt, net())
    for (k, v), (k2, v2) in zip(loaded.state_dict().items(), trained.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_a_staged_backbone_gets_a_head_for_the_targets_classes_and_pooled_input_fits_the_same(task, monkeypatch):
    import time

    import transferkit.methods.finetune as finetune
    from transferkit.nn.backbones import build_backbone

    source, target, test = task
    five = build_backbone("auto", (4,), 5, hidden=8)
    model = FineTune(backbone=five, copy="body", source_epochs=1, epochs=2).fit(source, target)
    assert model.model_.head.out_features == 3 and model.predict_proba(test.X).shape == (len(test), 3)
    X, y = np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y])
    sample_domain = np.r_[np.ones(len(source)), -np.ones(len(target))].astype(int)
    t0 = time.perf_counter()
    pooled = FineTune(**FAST).fit(X, y, sample_domain=sample_domain)
    assert 0 < pooled.fit_seconds_ <= time.perf_counter() - t0
    np.testing.assert_array_equal(
        pooled.predict_proba(test.X), FineTune(**FAST).fit(source, target).predict_proba(test.X)
    )
    made = []
    real = finetune.SourceOnly

    class Recording(real):
        def fit(self, *args, **kw):
            made.append(self.get_params())
            return super().fit(*args, **kw)

    monkeypatch.setattr(finetune, "SourceOnly", Recording)
    FineTune(n_threads=1, **FAST).fit(source, target)
    assert made[0]["n_threads"] == 1 and made[0]["hidden"] == FAST["hidden"]
