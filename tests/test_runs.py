"""The run layer: one function for a name or an estimator, keys or Domains, and the same record either way."""

import numpy as np
import pytest

from transferkit import Domain, SourceOnly, TargetOnly
from transferkit.datasets import load_domain
from transferkit.runs import RunOptions, UsageError, run

QUICK = RunOptions(epochs=1, n_source=200, quiet=True)


def _comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("seconds", "history", "source", "target")}


def test_a_name_and_an_estimator_give_the_same_record():
    by_name = run("source-only", "demo:mnist", "demo:usps", QUICK)
    by_estimator = run(SourceOnly(epochs=5, hidden=50), "demo:mnist", "demo:usps", QUICK)  # options win: 1 epoch
    assert _comparable(by_name.record) == _comparable(by_estimator.record)
    assert by_name.record["hyperparameters"]["epochs"] == 1
    assert isinstance(by_estimator.estimator, SourceOnly) and hasattr(by_estimator.estimator, "model_")


def test_domains_give_the_record_of_their_keys():
    mnist, usps, usps_test = (load_domain(k, s) for k, s in (("demo:mnist", "train"), ("demo:usps", "train"),
                                                               ("demo:usps", "test")))  # fmt: skip
    by_key = run("source-only", "demo:mnist", "demo:usps", QUICK).record
    by_domain = run("source-only", mnist, usps, QUICK, target_test=usps_test).record
    assert _comparable(by_key) == _comparable(by_domain)
    assert by_domain["source"] == mnist.name
    unscored = run("source-only", mnist, usps, QUICK).record  # no test sample given: no score
    assert unscored["target_accuracy"] is None and unscored["n_target_test"] == 0


def test_k_labelled_target_examples_are_drawn_from_a_target_domain():
    mnist, usps = load_domain("demo:mnist"), load_domain("demo:usps")
    record = run(TargetOnly(epochs=1), mnist, usps, RunOptions(target_labels=2, quiet=True)).record
    assert record["n_target"] == 2 * len(np.unique(usps.y)) and record["target_labels_per_class"] == 2
    with pytest.raises(UsageError, match="has no labels"):
        run(TargetOnly(epochs=1), mnist, usps.unlabelled(), RunOptions(target_labels=2, quiet=True))


def test_bad_input_is_refused_before_any_data_is_read():
    with pytest.raises(UsageError, match="--set nonsense: not a hyperparameter"):
        run("dann", "nowhere:at-all", "demo:usps", RunOptions(params={"nonsense": 1}))
    with pytest.raises(UsageError, match="--grid lambda: not a hyperparameter"):
        run("dann", "nowhere:at-all", "demo:usps", RunOptions(select="dev", grid={"lambda": [0.1]}))
    with pytest.raises(UsageError, match="two DATASET:DOMAIN keys"):
        run("source-only", load_domain("demo:mnist"), "demo:usps", QUICK)
    with pytest.raises(UsageError, match="needs --source and --target"):
        run("dann", "demo:mnist", None)
    with pytest.raises(UsageError, match="give this method by name"):
        from transferkit import DAP

        run(DAP(), "demo:mnist")


def test_a_target_domain_is_adapted_to_without_its_labels(monkeypatch):
    seen = {}

    def fit(self, source, target=None, sample_domain=None):
        seen["target_y"] = target.y
        raise KeyboardInterrupt  # stop here: only what fit received matters

    from transferkit import DANN

    monkeypatch.setattr(DANN, "fit", fit)
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    with pytest.raises(KeyboardInterrupt):
        run("dann", Domain(X, y, "s"), Domain(X + 1, y, "t"), RunOptions(quiet=True))
    assert seen["target_y"] is None


def _gain_offset_shift(seed=0):
    from helpers_data import gain_offset_shift

    return gain_offset_shift(seed)


def test_standardize_domain_uses_each_domains_own_statistics():
    from transferkit.runs import preprocess

    source, target, test = _gain_offset_shift()
    s, t, tt = preprocess("standardize-domain", source, target, test)
    for d in (s, t):
        np.testing.assert_allclose(d.X.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(d.X.std(0), 1, atol=1e-4)
    expected = (test.X - target.X.mean(0)) / (target.X.std(0) + 1e-8)  # the test part by the target's statistics
    np.testing.assert_allclose(tt.X, expected, rtol=1e-5, atol=1e-5)
    _, pooled_t, _ = preprocess("standardize", source, target, test)
    assert np.abs(pooled_t.X.mean(0)).min() > 0.5  # one pooled mean leaves the offset between the domains


def test_coral_needs_per_domain_standardisation_under_a_gain_and_offset():
    source, target, test = _gain_offset_shift()
    scores = {
        prep: run("coral", source, target, RunOptions(preprocess=prep), target_test=test).record["target_accuracy"]
        for prep in ("standardize", "standardize-domain")
    }
    assert scores["standardize-domain"] > 0.8 > scores["standardize"] + 0.1, scores


def test_run_settings_and_flags_a_method_cannot_use_are_refused_not_ignored():
    with pytest.raises(UsageError, match=r"--set seed=5: seed is a run setting; use --seed instead"):
        run("dann", "demo:mnist", "demo:usps", RunOptions(params={"seed": 5}))
    with pytest.raises(UsageError, match=r"--set device='cpu': device is a run setting; use --device"):
        run("dann", "demo:mnist", "demo:usps", RunOptions(params={"device": "cpu"}))
    with pytest.raises(UsageError, match=r"--target-labels 5: stc draws no labelled target examples"):
        run("stc", "newsgroups:comp-vs-sci-2", "newsgroups:comp-vs-sci-1", RunOptions(target_labels=5))


def test_unwritable_outputs_and_a_missing_device_fail_before_any_training(tmp_path, monkeypatch):
    import os

    import transferkit.runs.pair as pair

    monkeypatch.setattr(pair, "load_pair", lambda *a, **k: pytest.fail("data was read before the check"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # running as root: every folder is writable
        (tmp_path / "file").write_text("")
        locked = tmp_path / "file"  # a file where a folder should be
    for flag, value in (("out", locked / "run"), ("checkpoint_dir", locked / "ckpt")):
        with pytest.raises(UsageError, match=f"--{flag.replace('_', '-')} .*"):
            run("source-only", "demo:mnist", "demo:usps", RunOptions(**{flag: str(value)}))
    with pytest.raises(UsageError, match=r"--predictions .* is not a writable folder"):
        run("source-only", "demo:mnist", "demo:usps", RunOptions(predictions=str(tmp_path / "no" / "p.csv")))
    if not __import__("torch").cuda.is_available():
        with pytest.raises(UsageError, match=r"--device: device='cuda', but this machine has no CUDA device"):
            run("source-only", "demo:mnist", "demo:usps", RunOptions(device="cuda"))
