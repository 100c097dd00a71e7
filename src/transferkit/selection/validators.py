r"""Label-free validators: score an adapted model without looking at target labels.

In unsupervised domain adaptation the target has no labels, so the usual validation set does not
exist; yet every method has a weight (DANN's :math:`\lambda`, an MMD weight) or a stopping epoch
to choose. Each validator below scores a fitted model from what is legitimately available: a
labelled *held-out* source sample and the unlabelled target sample.

Every validator returns a score where **higher is better** (risks and entropies are negated), so
selection is always an ``argmax``.

``source``
    Accuracy on the held-out source sample: the naive choice, blind to the shift.
``iwv``
    Importance-weighted validation (Sugiyama, Krauledat & Müller, JMLR 2007): the source
    validation accuracy with each sample weighted by the density ratio
    :math:`w(x) = p_t(x) / p_s(x)`, so that it estimates the target accuracy under covariate shift,
    self-normalised: :math:`\sum_i w_i [\hat y_i = y_i] / \sum_i w_i`.
``dev``
    Deep embedded validation (You, Wang, Chen, Long & Wang, ICML 2019): importance weighting on the
    model's learnt features, with a control variate that cuts its variance,

    .. math:: \mathcal R_{DEV} = \overline{w\ell} + \eta\, \overline{w} - \eta, \qquad
              \eta = -\frac{\widehat{\mathrm{Cov}}(w\ell, w)}{\widehat{\mathrm{Var}}(w)},

    with :math:`\ell` the cross-entropy of each source validation sample; the score is
    :math:`-\mathcal R_{DEV}`.
``dev-error``
    The same estimator with the 0-1 loss :math:`\ell = [\hat y \ne y]` (You et al. define DEV for
    any loss): an estimate of the target *error rate*, the quantity users choose by. The
    cross-entropy also rewards a less confident model, so between methods that are calibrated
    differently (Deep CORAL against DANN) ``dev`` can prefer the one that errs more; the error rate
    cannot, and it needs no probabilities (hard classifiers are scored too). The score is
    :math:`-\mathcal R_{DEV}` with that loss.
``entropy``
    Mean prediction entropy on the target (Morerio, Cavazza & Murino, ICLR 2018): confident target
    predictions as a proxy for correct ones; the score is :math:`-\frac1{n_t}\sum_j H(p(\cdot|x_j))`.
    It rewards collapse onto one class, so read it next to the predicted class balance.
``reverse``
    Reverse (circular) validation (Zhong et al., ECML 2010; Ganin et al., JMLR 2016, Sec. 5.1.2):
    label the target with the model, train a reverse classifier on the pseudo-labelled target
    (logistic regression on the model's features), and score it on the held-out source. A model
    whose target labels are consistent with the source scores high.
``oracle``
    Accuracy on labelled target data. It **looks at target labels**: an upper bound for
    comparison, never model selection; every output that uses it says so.

A score can be untrustworthy without being wrong arithmetic; :func:`untrusted` names why, and
selection (:func:`~transferkit.selection.select`, ``select_epoch``) never picks on such a score:

- hard (one-hot) probabilities: every model's entropy is 0, and DEV's cross-entropy losses are
  0 or unbounded (a 1-nearest-neighbour classifier, a tree);
- a held-out source sample smaller than :data:`MIN_HELD_OUT`: its accuracy moves by several points
  between two draws, more than the differences being chosen between;
- an impossible score: a negative DEV risk (a cross-entropy risk is never below 0; the control
  variate overshoots when the importance weights are too variable for the sample), or an error
  rate outside [0, 1].

The density ratio is estimated discriminatively (Bickel, Brückner & Scheffer, ICML 2007): a
logistic-regression domain classifier on the features, its source predictions cross-fitted (each
source validation sample is scored by a classifier that did not see it), and
:math:`w = \frac{n_s}{n_t} \frac{p(t|x)}{p(s|x)}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Evidence",
    "Terms",
    "MIN_HELD_OUT",
    "VALIDATORS",
    "density_ratio",
    "dev_risk",
    "weight_diagnostics",
    "evidence_from_model",
    "get_validator",
    "is_hard",
    "prob_better",
    "untrusted",
    "validate",
]

#: The fewest held-out source samples whose (weighted) accuracy a choice is made on. The standard error
#: of an accuracy near 0.8 on 100 samples is 4 points, about the gains being chosen between.
MIN_HELD_OUT = 100


@dataclass
class Evidence:
    """What a validator may look at, as arrays computed from one fitted model.

    ``source_*`` describe the labelled held-out source sample, ``target_*`` the unlabelled target
    sample; ``target_y`` is only ever filled for the oracle.
    """

    source_proba: np.ndarray | None = None
    source_y: np.ndarray | None = None  # indices into the proba columns
    source_features: np.ndarray | None = None
    target_proba: np.ndarray | None = None
    target_features: np.ndarray | None = None
    target_y: np.ndarray | None = None
    #: The last density ratio computed, with the feature arrays and seed it came from: IWV, DEV and
    #: DEV-error of one model share it (on 30,000-d features it is most of a grid's cost).
    _ratio: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def importance_weights(self, seed: int) -> np.ndarray:
        """:func:`density_ratio` of the source features to the target's, computed once per arrays and seed.

        The arrays are recognised by identity: assign new ones rather than change them in place.
        """
        fs, ft = self.source_features, self.target_features
        kept = self._ratio
        if kept is None or kept[0] is not fs or kept[1] is not ft or kept[2] != seed:
            w = density_ratio(fs, ft, seed)
            w.setflags(write=False)  # shared between validators: no one may change it for the others
            kept = self._ratio = (fs, ft, seed, w)
        return kept[3]


def _need(evidence: Evidence, validator: str, *fields: str) -> None:
    what = {
        "source_proba": "predictions on a labelled held-out source sample (source_val)",
        "source_y": "the labels of the held-out source sample (source_val)",
        "source_features": "features of the held-out source sample (source_val)",
        "target_proba": "predictions on the unlabelled target sample (target)",
        "target_features": "features of the unlabelled target sample (target)",
        "target_y": "labelled target data (target_test): the oracle reads target labels",
    }
    for f in fields:
        if getattr(evidence, f) is None:
            raise ValueError(f"validator {validator!r} cannot score without {what[f]}.")


def density_ratio(source_features: np.ndarray, target_features: np.ndarray, seed: int = 0, folds: int = 5):
    r"""Importance weights :math:`w(x_i) = p_t(x_i)/p_s(x_i)` of the source samples, shape (n_s,).

    A logistic-regression domain classifier on standardised features; each source sample is scored
    by the fold that did not train on it. The weights estimate the ratio of densities, so their mean
    over the source is close to 1 when the estimate is calibrated.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs = np.asarray(source_features, dtype=np.float64).reshape(len(source_features), -1)
    ft = np.asarray(target_features, dtype=np.float64).reshape(len(target_features), -1)
    if len(fs) < folds or len(ft) < folds:
        raise ValueError(
            f"density_ratio needs at least {folds} source and {folds} target samples; got {len(fs)} and {len(ft)}."
        )
    X = np.concatenate([fs, ft])
    d = np.r_[np.zeros(len(fs)), np.ones(len(ft))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    p_t = cross_val_predict(clf, X, d, cv=cv, method="predict_proba")[: len(fs), 1]
    p_t = np.clip(p_t, 1e-6, 1 - 1e-6)
    return (len(fs) / len(ft)) * p_t / (1.0 - p_t)


def dev_risk(weights: np.ndarray, losses: np.ndarray) -> float:
    r"""Deep embedded validation risk :math:`\overline{w\ell} + \eta\overline{w} - \eta` (You et al. 2019, Alg. 1)."""
    w = np.asarray(weights, dtype=np.float64)
    wl = w * np.asarray(losses, dtype=np.float64)
    var_w = np.var(w, ddof=1)
    # eta is the optimal control-variate coefficient; with constant weights there is nothing to correct
    eta = 0.0 if var_w <= 1e-12 else -np.cov(wl, w, ddof=1)[0, 1] / var_w
    return float(wl.mean() + eta * w.mean() - eta)


@dataclass(frozen=True)
class Terms:
    """A validator's score as a statistic of per-sample terms, so that it can be recomputed on a resample.

    ``of(idx)`` is the score on the rows ``idx`` of the ``domain`` sample (``"source"``: the held-out
    source, ``"target"``: the unlabelled target); ``of(np.arange(n))`` is the score itself. What is
    fitted once per model (the density ratio, the reverse classifier) stays fixed across resamples.
    ``diagnostics`` says how much the score rests on: for the importance-weighted validators, the
    weights' effective sample size and mean (:func:`weight_diagnostics`).
    """

    domain: str
    n: int
    of: Callable[[np.ndarray], float]
    diagnostics: dict = field(default_factory=dict)

    def score(self) -> float:
        return self.of(np.arange(self.n))


def prob_better(a: Terms, b: Terms, n_resamples: int = 1000, seed: int = 0) -> float:
    """The paired-bootstrap probability that score ``a`` beats score ``b``: the fraction of resamples
    of the shared sample (drawn with replacement, the same rows for both) on which ``a`` scores higher.

    Both terms must describe the same rows of the same sample (one validator, one held-out split).
    """
    if a.domain != b.domain or a.n != b.n:
        raise ValueError(f"cannot pair terms over {a.domain} ({a.n} rows) and {b.domain} ({b.n} rows).")
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(n_resamples):
        idx = rng.integers(0, a.n, a.n)
        wins += a.of(idx) > b.of(idx)
    return wins / n_resamples


def _correct(e: Evidence) -> np.ndarray:
    return (e.source_proba.argmax(1) == e.source_y).astype(np.float64)


def _source_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "source", "source_proba", "source_y")
    correct = _correct(e)
    return Terms("source", len(correct), lambda i: float(np.mean(correct[i])))


def weight_diagnostics(w: np.ndarray) -> dict:
    r"""How far importance weights can be trusted: their effective sample size
    :math:`(\sum_i w_i)^2 / \sum_i w_i^2` (Kong 1992; :math:`n` for equal weights, 1 when one sample
    holds all the weight) and their mean, which is 1 for a calibrated density ratio whose source
    covers the target (a mean far below 1: target regions no source sample reaches)."""
    w = np.asarray(w, dtype=np.float64)
    total = float(w.sum())
    ess = total**2 / float(np.sum(w**2)) if total > 0 else 0.0
    return {"effective_sample_size": ess, "mean_weight": float(w.mean())}


def _iwv_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "iwv", "source_proba", "source_y", "source_features", "target_features")
    w = e.importance_weights(seed)
    correct = _correct(e)
    return Terms("source", len(w), lambda i: float(np.sum(w[i] * correct[i]) / np.sum(w[i])), weight_diagnostics(w))


def _dev_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "dev", "source_proba", "source_y", "source_features", "target_features")
    w = e.importance_weights(seed)
    losses = -np.log(np.clip(e.source_proba[np.arange(len(e.source_y)), e.source_y], 1e-12, None))
    return Terms("source", len(w), lambda i: -dev_risk(w[i], losses[i]), weight_diagnostics(w))


def _dev_error_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "dev-error", "source_proba", "source_y", "source_features", "target_features")
    w = e.importance_weights(seed)
    errors = 1.0 - _correct(e)
    return Terms("source", len(w), lambda i: -dev_risk(w[i], errors[i]), weight_diagnostics(w))


def _entropy_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "entropy", "target_proba")
    p = np.clip(e.target_proba, 1e-12, 1.0)
    negentropy = np.sum(p * np.log(p), axis=1)
    return Terms("target", len(negentropy), lambda i: float(np.mean(negentropy[i])))


def _reverse_terms(e: Evidence, seed: int) -> Terms:
    _need(e, "reverse", "source_y", "source_features", "target_proba", "target_features")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pseudo = e.target_proba.argmax(1)
    fs = e.source_features.reshape(len(e.source_features), -1)
    ft = e.target_features.reshape(len(e.target_features), -1)
    if len(np.unique(pseudo)) < 2:  # a collapsed model: its reverse classifier is a constant
        agrees = (e.source_y == pseudo[0]).astype(np.float64)
    else:
        reverse = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(ft, pseudo)
        agrees = (reverse.predict(fs) == e.source_y).astype(np.float64)
    return Terms("source", len(agrees), lambda i: float(np.mean(agrees[i])))


def _scored(terms: Callable[[Evidence, int], Terms]) -> Callable[[Evidence, int], float]:
    """The validator's score: its terms over every row."""
    return lambda e, seed: terms(e, seed).score()


_source, _iwv, _dev, _dev_error, _entropy, _reverse = map(
    _scored, (_source_terms, _iwv_terms, _dev_terms, _dev_error_terms, _entropy_terms, _reverse_terms)
)


def _oracle(e: Evidence, seed: int) -> float:
    _need(e, "oracle", "target_proba", "target_y")
    return float(np.mean(e.target_proba.argmax(1) == e.target_y))


def is_hard(proba: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether every row of ``proba`` puts all its mass on one class (a one-hot, graded-nothing output)."""
    proba = np.asarray(proba)
    return bool(len(proba) and np.all(proba.max(1) >= 1.0 - tol))


def untrusted(name: str, evidence: Evidence, score: float) -> str | None:
    """Why validator ``name``'s ``score`` on ``evidence`` cannot be trusted to choose with, or ``None``."""
    if not np.isfinite(score):
        return f"the {name} score is {score}"
    if name == "entropy" and is_hard(evidence.target_proba):
        return "the model's target probabilities are hard (one-hot), so every model's entropy is 0"
    if name == "dev" and is_hard(evidence.source_proba):
        return "the model's probabilities are hard (one-hot), so DEV's cross-entropy losses are 0 or unbounded"
    if name == "dev" and score > 0:
        return f"DEV estimated an impossible negative risk ({-score:.4f}); the importance weights vary too much"
    if name == "dev-error" and not -1.0 <= score <= 0.0:
        return f"DEV estimated an impossible error rate ({-score:.4f}); the importance weights vary too much"
    uses_source = name in ("source", "iwv", "dev", "dev-error", "reverse")
    if uses_source and evidence.source_y is not None and len(evidence.source_y) < MIN_HELD_OUT:
        return f"the held-out source sample has {len(evidence.source_y)} samples (fewer than {MIN_HELD_OUT})"
    return None


@dataclass(frozen=True)
class Validator:
    name: str
    score: Callable[[Evidence, int], float]
    uses_target_labels: bool
    description: str
    #: The score as per-sample terms (:class:`Terms`), for a paired bootstrap between two models.
    terms: Callable[[Evidence, int], Terms] | None = None


#: Every validator by name; all return "higher is better".
VALIDATORS: dict[str, Validator] = {
    v.name: v
    for v in (
        Validator("source", _source, False, terms=_source_terms, description="accuracy on held-out source data"),
        Validator(
            "iwv",
            _iwv,
            False,
            terms=_iwv_terms,
            description="importance-weighted source accuracy (Sugiyama et al. 2007)",
        ),
        Validator("dev", _dev, False, terms=_dev_terms, description="deep embedded validation (You et al. 2019)"),
        Validator(
            "dev-error",
            _dev_error,
            False,
            terms=_dev_error_terms,
            description="deep embedded validation of the error rate (0-1 loss; You et al. 2019)",
        ),
        Validator(
            "entropy",
            _entropy,
            False,
            terms=_entropy_terms,
            description="negative mean target prediction entropy (Morerio et al. 2018)",
        ),
        Validator(
            "reverse",
            _reverse,
            False,
            terms=_reverse_terms,
            description="reverse validation (Zhong et al. 2010; Ganin et al. 2016)",
        ),
        Validator("oracle", _oracle, True, "target accuracy: READS TARGET LABELS, an upper bound only"),
    )
}


def get_validator(name: str) -> Validator:
    """The validator registered as ``name``; a clear error listing the known names otherwise."""
    if name not in VALIDATORS:
        raise ValueError(f"unknown validator {name!r}; known validators: {', '.join(VALIDATORS)}.")
    return VALIDATORS[name]


def evidence_from_model(model, source_val=None, target=None, target_test=None) -> Evidence:
    """Evaluate a fitted estimator once on the data the validators may use.

    ``source_val`` is a labelled held-out source :class:`~transferkit.data.Domain` (never trained
    on), ``target`` the unlabelled target sample, ``target_test`` labelled target data, read only by
    the oracle. Features are the model's ``transform`` where it has one, else its inputs.
    """
    from transferkit.data import as_domain

    def features(X):
        return model.transform(X) if hasattr(model, "transform") else np.asarray(X).reshape(len(X), -1)

    def label_index(y):
        idx = np.searchsorted(model.classes_, y)
        idx = np.clip(idx, 0, len(model.classes_) - 1)
        if not np.all(model.classes_[idx] == y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(model.classes_.tolist()))
            raise ValueError(f"labels {unknown[:5]} are not among the classes the model was fitted on.")
        return idx

    e = Evidence()
    if source_val is not None:
        source_val = as_domain(source_val, "source_val")
        if source_val.y is None:
            raise ValueError("source_val has no labels; the validators need a labelled held-out source sample.")
        e.source_proba = model.predict_proba(source_val.X)
        e.source_y = label_index(source_val.y)
        e.source_features = features(source_val.X)
    if target is not None:
        target = as_domain(target, "target")
        e.target_proba = model.predict_proba(target.X)
        e.target_features = features(target.X)
    if target_test is not None:
        target_test = as_domain(target_test, "target_test")
        if target_test.y is None:
            raise ValueError("target_test has no labels; the oracle scores against target labels.")
        e.target_y = label_index(target_test.y)
        e.target_proba = model.predict_proba(target_test.X)  # the oracle's predictions are on these samples
    return e


def validate(name: str, model, source_val=None, target=None, target_test=None, seed: int = 0) -> float:
    """Score one fitted ``model`` with the validator ``name`` (higher is better).

    Only the oracle reads ``target_test``; the others refuse it, so a label can never leak into a
    label-free score by accident.
    """
    v = get_validator(name)
    if target_test is not None and not v.uses_target_labels:
        raise ValueError(f"validator {name!r} is label-free; it takes no target_test (labelled target data).")
    if v.uses_target_labels:
        return v.score(evidence_from_model(model, target_test=target_test), seed)
    return v.score(evidence_from_model(model, source_val, target), seed)
