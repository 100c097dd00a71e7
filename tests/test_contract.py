"""The estimator contract, for every registered method."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from transferkit import REGISTRY, Domain

FAST = {"epochs": 2, "batch_size": 32}


#: Per-method settings that keep the contract checks fast (the defaults suit real data).
SMALL = {"self-taught": {"n_components": 8}, "auto": {"candidates": {"dann": {}}, "n_resamples": 50}}


def _make(cls, **kw):
    params = cls().get_params()
    return cls(**{k: v for k, v in {**FAST, **SMALL.get(cls.name, {}), **kw}.items() if k in params})


def _target(cls, task):
    """What the method's setting asks for: labelled target, unlabelled target, or none."""
    if not cls.setting.target:
        return None
    return task.target_test if cls.setting.target_labels else task.target


def _source(cls, task):
    """Labelled source, or the same samples without labels for methods that learn from unlabelled source."""
    return task.source if cls.setting.source_labels else task.source.unlabelled()


def _fit(est, task):
    return est.fit(_source(type(est), task), _target(type(est), task))


@pytest.fixture(params=sorted(REGISTRY))
def cls(request):
    return REGISTRY[request.param]


@pytest.fixture
def blobs(cls):
    """The shifted-blobs task, two-class for methods defined for two classes only."""
    from transferkit.datasets import make_blobs_shift

    return make_blobs_shift(n_classes=getattr(cls, "max_classes", 3), n_source=300, n_target=300, seed=0)


def test_setting_is_declared(cls):
    assert cls.name and cls.description and cls.paper
    assert cls.setting.quadrant.startswith(("labelled", "unlabelled"))


def test_clone_and_params_round_trip(cls):
    est = _make(cls, seed=3)
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params
    est.set_params(seed=4)
    assert est.get_params()["seed"] == 4
    assert not any(k.endswith("_") for k in vars(twin)), "constructor must store hyperparameters only"


def test_fit_returns_self_and_predicts(cls, blobs):
    est = _make(cls)
    assert _fit(est, blobs) is est
    pred = est.predict(blobs.target_test.X)
    assert pred.shape == (len(blobs.target_test),)
    assert set(np.unique(pred)) <= set(np.unique(blobs.source.y))
    proba = est.predict_proba(blobs.target_test.X)
    assert proba.shape == (len(blobs.target_test), len(np.unique(blobs.source.y)))
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert est.score(blobs.target_test) == pytest.approx(np.mean(pred == blobs.target_test.y))  # accuracy
    assert hasattr(est, "model_")


@pytest.mark.parametrize("names", [np.array([10, 11, 12]), np.array(["cat", "dog", "alpaca"])])
def test_labels_are_kept(cls, blobs, names):
    """Labels come back as given: numbers that do not start at 0, or class names."""
    with pytest.raises(TypeError, match="Unknown label type"):
        Domain(blobs.source.X, [{"a": 1}] * len(blobs.source))
    est = _make(cls)
    src = Domain(blobs.source.X, names[blobs.source.y] if cls.setting.source_labels else None, "source")
    tgt = _target(cls, blobs)
    if tgt is not None and tgt.y is not None:
        tgt = Domain(tgt.X, names[tgt.y], "target")
    est.fit(src, tgt)
    assert set(np.unique(est.predict(blobs.target_test.X))) <= set(names)
    named = names[blobs.target_test.y]
    expected = np.mean(est.predict(blobs.target_test.X) == named)
    assert est.score(blobs.target_test.X, named) == pytest.approx(expected)  # accuracy on the names


def test_not_fitted_error(cls, blobs):
    with pytest.raises(NotFittedError, match="not fitted"):
        _make(cls).predict(blobs.target_test.X)


def test_same_seed_same_predictions(cls, blobs):
    a = _fit(_make(cls, seed=7), blobs).predict_proba(blobs.target_test.X)
    b = _fit(_make(cls, seed=7), blobs).predict_proba(blobs.target_test.X)
    np.testing.assert_array_equal(a, b)


def test_wrong_setting_errors(cls, blobs):
    est = _make(cls)
    if cls.setting.source_labels:
        with pytest.raises(ValueError, match="source has no labels"):
            est.fit(blobs.source.unlabelled(), _target(cls, blobs))
    else:
        with pytest.raises(ValueError, match="source has labels"):
            est.fit(blobs.source, _target(cls, blobs))
    if cls.setting.target_labels:
        with pytest.raises(ValueError, match="target has no labels"):
            est.fit(_source(cls, blobs), blobs.target)
    if cls.setting.target and not cls.setting.target_labels:
        with pytest.raises(ValueError, match="target has labels"):
            est.fit(blobs.source, blobs.target_test)
        with pytest.raises(ValueError, match="target is None"):
            est.fit(blobs.source, None)


def test_bad_shape_and_single_class_errors(cls, blobs):
    est = _make(cls)
    wide = Domain(np.zeros((10, 3)), np.arange(10) % 2 if cls.setting.target_labels else None, "target")
    if cls.setting.target:
        with pytest.raises(ValueError, match=r"different feature shapes: source \(2,\), target \(3,\)"):
            est.fit(_source(cls, blobs), wide)
    if cls.setting.source_labels:
        one_class = Domain(blobs.source.X, np.zeros(len(blobs.source), dtype=int), "source")
        with pytest.raises(ValueError, match="single class|one class only"):
            est.fit(one_class, _target(cls, blobs))
    else:
        one_class = Domain(blobs.target_test.X, np.zeros(len(blobs.target_test), dtype=int), "target")
        with pytest.raises(ValueError, match="single class|one class only"):
            est.fit(_source(cls, blobs), one_class)
    _fit(est, blobs)
    with pytest.raises(ValueError, match=r"fitted on \(2,\)|expecting 2 features"):
        est.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.predict(np.array([[0.0, np.nan]]))


def test_empty_target_is_refused(cls, blobs):
    if not cls.setting.target:
        pytest.skip("method does not use target data")
    with pytest.raises(ValueError, match=r"target\.X is empty"):
        _make(cls).fit(_source(cls, blobs), np.zeros((0, 2)))


@pytest.mark.parametrize(
    "method, param, value",
    [
        ("dann", "lambda_max", "abc"),
        ("dann", "lambda_max", float("inf")),
        ("dann", "hidden", -1),
        ("dann", "hidden", 2.5),
        ("ddc", "seed", -1),
        ("dan", "weight_decay", -1),
        ("dan", "mmd_estimator", "quadratic"),
        ("deep-coral", "checkpoint_dir", -1),
        ("source-only", "lr", 0.0),
        ("source-only", "optimizer", "rmsprop"),
        ("dann", "select_fraction", 1.0),
    ],
)
def test_bad_hyperparameters_are_named_before_the_data_is_read(method, param, value, monkeypatch):
    from transferkit.methods import get_method

    cls = get_method(method)
    monkeypatch.setattr(cls, "_check_fit_data", lambda *a, **k: pytest.fail("the data was read first"))
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {cls.__name__} must be"):
        cls(**{param: value}).fit(np.zeros((4, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("name", sorted({**__import__("transferkit").REGISTRY, **__import__("transferkit").REGRESSORS}))
def test_every_two_domain_estimator_names_a_bad_seed_before_reading_data(name, monkeypatch):
    from transferkit.methods import get_method

    cls = get_method(name)
    monkeypatch.setattr("transferkit.methods.base.as_domain", lambda *a, **k: pytest.fail("data read first"))
    with pytest.raises(ValueError, match=rf"The 'seed' parameter of {cls.__name__} must be an int in the range"):
        cls(seed=-1).fit(np.zeros((4, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("name", sorted({**__import__("transferkit").REGISTRY, **__import__("transferkit").REGRESSORS}))
def test_a_boolean_for_a_number_is_refused_by_name(name, monkeypatch):
    # scikit-learn's Interval(Integral, ...) takes True as 1: hidden=True would reach torch
    from transferkit.methods import get_method

    cls = get_method(name)
    monkeypatch.setattr("transferkit.methods.base.as_domain", lambda *a, **k: pytest.fail("data read first"))
    with pytest.raises(ValueError, match=rf"The 'seed' parameter of {cls.__name__} must be a number, not a boolean"):
        cls(seed=True).fit(np.zeros((4, 2)), np.zeros((4, 2)))
    if "hidden" in cls().get_params():
        with pytest.raises(ValueError, match=rf"The 'hidden' parameter of {cls.__name__} must be a number"):
            cls(hidden=True).fit(np.zeros((4, 2)), np.zeros((4, 2)))


def test_the_other_estimators_name_a_bad_hyperparameter_first():
    from transferkit import DAP, InformationTheoreticCoClustering, MultiTask, ProgressiveNetwork, SelfTaughtClustering

    X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    cases = [
        (lambda: DAP(epochs=0).fit(X, np.arange(20) % 2), "'epochs' parameter of DAP"),
        (lambda: MultiTask(alpha=-1).fit({"a": (X, np.arange(20) % 2)}), "'alpha' parameter of MultiTask"),
        (lambda: ProgressiveNetwork(reduce=0).add_task("a", X, np.arange(20) % 2), "'reduce' parameter of Progress"),
        (lambda: SelfTaughtClustering(lam=-1).fit(X, X), "'lam' parameter of SelfTaughtClustering"),
        (lambda: InformationTheoreticCoClustering(n_iter=2.5).fit(X), "'n_iter' parameter of InformationTheoretic"),
        # booleans where numbers belong: scikit-learn's intervals alone would take them as 1
        (
            lambda: MultiTask(epochs=True).fit({"a": (X, np.arange(20) % 2)}),
            "'epochs' parameter of MultiTask must be a",
        ),
        (lambda: ProgressiveNetwork(epochs=True).add_task("a", X, np.arange(20) % 2), "'epochs' parameter of Progr"),
        (lambda: SelfTaughtClustering(n_iter=True).fit(X, X), "'n_iter' parameter of SelfTaughtClustering must be"),
    ]
    for fit, message in cases:
        with pytest.raises(ValueError, match=message):
            fit()
