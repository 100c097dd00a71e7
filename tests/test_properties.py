"""Property-based tests of the input boundary: whatever arrays arrive, a clear error or a valid fit.

For every estimator of the registry, random shapes, dtypes, NaN and infinity, empty domains, one
class, class names or numbers: the outcome is either a ``ValueError`` / ``TypeError`` raised by
transferkit or scikit-learn's validation (never from inside torch or NumPy), or a fit whose
predictions are labels of the source and whose probabilities are finite.
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferkit import REGISTRY, Domain

FAST = {"epochs": 1, "source_epochs": 1, "n_estimators": 3, "n_components": 2, "batch_size": 8}


@st.composite
def domains(draw):
    d = draw(st.integers(1, 4))
    sizes = st.sampled_from([0, 1, *range(6, 25)])  # mostly enough to fit, sometimes empty or one sample
    n_source, n_target = draw(sizes), draw(sizes)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, bool]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    Xs = (rng.normal(size=(n_source, d)) * 3).astype(dtype)
    Xt = (rng.normal(size=(n_target, d)) * 3 + 1).astype(dtype)
    if draw(st.integers(0, 4)) == 0 and n_source and np.issubdtype(Xs.dtype, np.floating):
        Xs[draw(st.integers(0, n_source - 1)), 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    n_classes = draw(st.sampled_from([1, 2, 2, 3, 3]))
    names = draw(st.booleans())
    labels = np.array(["cat", "dog", "emu"])[:n_classes] if names else np.arange(n_classes)
    ys = labels[np.arange(n_source) % n_classes] if n_source else labels[:0]
    yt = labels[np.arange(n_target) % n_classes] if n_target else labels[:0]
    return Xs, ys, Xt, yt


def _raised_by_us(exc: BaseException) -> bool:
    """The error comes from transferkit's or scikit-learn's checks, not from deep inside torch or NumPy."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1].filename if frames else ""
    return "transferkit" in last or "sklearn" in last


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=domains())
def test_any_input_gives_a_clear_error_or_a_valid_fit(name, data):
    cls = REGISTRY[name]
    Xs, ys, Xt, yt = data
    est = cls(**{k: v for k, v in FAST.items() if k in cls().get_params()})
    try:
        source = Domain(Xs, ys if cls.setting.source_labels else None, "source")
        target = Domain(Xt, yt if cls.setting.target_labels else None, "target")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(source, target if cls.setting.target else None)
    except (ValueError, TypeError) as exc:
        assert _raised_by_us(exc), "".join(traceback.format_exception(exc))
        assert str(exc), "an error without a message"
        return
    predictions = est.predict(Xt.astype(np.float32) if len(Xt) else Xs.astype(np.float32))
    known = ys if cls.setting.source_labels else yt  # self-taught learning learns its classes on the target
    assert set(np.unique(predictions)) <= set(np.unique(known))
    if hasattr(est, "predict_proba") and getattr(est, "model_", None) is not None:
        try:
            proba = est.predict_proba(Xs.astype(np.float32))
        except AttributeError:  # a classifier without probabilities says so
            return
        assert np.isfinite(proba).all()
