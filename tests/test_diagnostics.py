"""Training warnings: a diverged run and a winning discriminator are reported, healthy runs are not."""

import warnings

import numpy as np
import pytest

from transferkit import DANN
from transferkit.train.diagnostics import training_warnings


def _history(source_acc, domain_acc):
    return [
        {"epoch": i + 1, "source_acc": s, "domain_acc": d}
        for i, (s, d) in enumerate(zip(source_acc, domain_acc, strict=True))
    ]


def test_divergence_is_reported_with_the_epochs():
    h = _history([0.5, 0.9, 0.98, 0.7, 0.2], [0.6] * 5)
    (msg,) = training_warnings(h)
    assert "diverged" in msg and "0.980 (epoch 3)" in msg and "0.200 (epoch 5)" in msg


def test_winning_discriminator_is_reported():
    (msg,) = training_warnings(_history([0.9] * 4, [0.9, 0.995, 0.999, 1.0]))
    assert "wins outright" in msg


def test_healthy_run_has_no_warnings():
    assert training_warnings(_history([0.5, 0.8, 0.9, 0.88], [0.8, 0.7, 0.6, 0.55])) == []


def test_estimator_emits_and_keeps_warnings(blobs, monkeypatch):
    import transferkit.methods.base as base

    monkeypatch.setattr(base, "training_warnings", lambda h, **kw: ["training diverged: test"])
    with pytest.warns(RuntimeWarning, match="DANN: training diverged"):
        model = DANN(epochs=1).fit(blobs.source, blobs.target)
    assert model.warnings_ == ["training diverged: test"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(base, "training_warnings", training_warnings)
        assert DANN(epochs=10).fit(blobs.source, blobs.target).warnings_ == []
    assert np.isfinite(model.score(blobs.target_test))


def test_collapse_is_reported():
    h = [{"epoch": 1, "target_top_class_share": 0.4}, {"epoch": 2, "target_top_class_share": 0.97}]
    (msg,) = training_warnings(h)
    assert "collapsed" in msg and "97%" in msg


def test_per_epoch_diagnostics_are_logged_and_need_no_target_labels(blobs):
    model = DANN(epochs=3, diagnostics=True).fit(blobs.source, blobs.target)
    for h in model.history_:
        assert 0.0 <= h["a_distance"] <= 2.0
        assert 0.0 <= h["target_entropy"] <= np.log(3) + 1e-6
        assert 1 / 3 - 1e-9 <= h["target_top_class_share"] <= 1.0
        assert np.isfinite(h["mmd"])
    assert "a_distance" not in DANN(epochs=1).fit(blobs.source, blobs.target).history_[0]


def test_a_run_that_never_fits_the_source_is_reported_given_the_number_of_classes():
    flat = _history([0.10, 0.11, 0.113, 0.112], [0.5] * 4)  # ten classes, stuck at chance (log 10 loss)
    (msg,) = training_warnings(flat, n_classes=10)
    assert "never fitted the source" in msg and "0.112" in msg and "chance is 0.100" in msg
    assert training_warnings(flat) == []  # without the number of classes chance is unknown
    assert training_warnings(_history([0.3, 0.6, 0.9], [0.5] * 3), n_classes=10) == []
    assert training_warnings(_history([0.55, 0.58, 0.59], [0.5] * 3), n_classes=2)  # binary: near 0.5
    # relative to chance: 0.151 on twenty classes has closed 11 % of the way to 1 (it slipped past "chance + 0.1")
    assert training_warnings(_history([0.10, 0.14, 0.151], [0.5] * 3), n_classes=20)
    assert training_warnings(_history([0.2, 0.4, 0.5], [0.5] * 3), n_classes=20) == []


def test_the_messages_name_the_labelled_domain_and_offer_lambda_max_only_for_an_alignment_term():
    flat = [{"epoch": i + 1, "target_acc": a} for i, a in enumerate([0.30, 0.34, 0.33])]
    assert training_warnings(flat, n_classes=3) == []  # the source's accuracy is not logged: nothing to judge
    (msg,) = training_warnings(flat, n_classes=3, labelled="target")
    assert msg == (
        "the network never fitted the target: target accuracy 0.330 at the end, chance is 0.333: "
        "too few epochs or too small a learning rate."
    )
    (msg,) = training_warnings(_history([0.3, 0.3], [0.5, 0.5]), n_classes=3, alignment=True)
    assert msg.endswith(
        "too few epochs or too small a learning rate, or an alignment term that flattened the features before "
        "they formed (then try a smaller lambda_max or lambda_schedule='ganin')."
    )
    fell = [{"epoch": 1, "target_acc": 0.9}, {"epoch": 2, "target_acc": 0.5}]
    (msg,) = training_warnings(fell, labelled="target")
    assert msg == (
        "training diverged: target accuracy fell from 0.900 (epoch 1) to 0.500 (epoch 2); try a smaller lr, "
        "or FitConfig.grad_clip."
    )
    (msg,) = training_warnings(_history([0.9, 0.5], [0.5, 0.5]), alignment=True)
    assert "try a smaller lr or lambda_max, or FitConfig.grad_clip." in msg


def test_only_methods_with_an_alignment_weight_suggest_it(blobs):
    from transferkit.methods import SourceOnly

    shuffled = blobs.source.__class__(blobs.source.X, np.random.default_rng(0).permutation(blobs.source.y), "s")
    with pytest.warns(RuntimeWarning, match=r"never fitted the source") as record:
        SourceOnly(epochs=1, lr=1e-5).fit(shuffled, blobs.target)
    assert not any("lambda_max" in str(w.message) for w in record)
    with pytest.warns(RuntimeWarning, match=r"never fitted the source.*smaller lambda_max"):
        DANN(epochs=1, lr=1e-5).fit(shuffled, blobs.target)
