r"""Auto: adapt without target labels, by a vote of the candidates or the one a validator picks.

The question users ask first is "does adapting help here?". Auto answers it by fitting many
candidate adaptations and combining them, with a label-free check against the no-adaptation
baseline:

1. Hold out a stratified fraction of the labelled source (``val_fraction``). Fit every candidate
   (source-only and each method of ``candidates`` at each grid point) on the rest of the source and
   the unlabelled target; with ``preprocess`` naming ``standardize-domain``, once more on inputs
   standardised per domain (each domain by its own mean and spread, which undoes a shift of every
   feature's mean and scale), where source-only itself is an adapted candidate.
2. Score each with ``validator`` (default ``dev-error``: deep embedded validation, You et al.,
   ICML 2019, of the error rate: an importance-weighted estimate of the target error, comparable
   between methods because it estimates the same quantity for each). Scores the validator cannot
   trust are never relied on (:func:`~transferkit.selection.validators.untrusted`).
3. ``combine="vote"`` (the default): every candidate :math:`h_k`, :math:`k = 1..K`, votes, and each
   class gets its share of the votes,

   .. math:: \hat p(c \mid x) = \frac1K \sum_{k=1}^K \big[\, h_k(x) = c \,\big],
             \qquad \hat y(x) = \arg\max_c \hat p(c \mid x)

   (a tie goes to the first class). The vote is scored by ``validator`` like a candidate, in
   source-only's feature space, and source-only :math:`s` is kept instead only when it beats the vote
   :math:`v` in at least ``veto`` of the paired bootstrap resamples of the held-out rows:
   :math:`\hat P(s \succ v) \ge \texttt{veto}`, with

   .. math:: \hat P(a \succ b) = \frac1B \sum_{b'=1}^B \big[\, V_{b'}(a) > V_{b'}(b) \,\big]

   over resamples :math:`b'` drawing the same rows for both. No single validator pick has to be right:
   the validators' rank correlation with target accuracy is weak on most of the suite's data sets
   (``benchmarks/RESULTS.md``), and a vote needs only most of the candidates to be right on a sample.
   ``combine="best"``: keep source-only unless the best trusted adapted candidate :math:`a^\star`
   beats it with confidence, :math:`\hat P(a^\star \succ s) \ge \texttt{confidence}`; where every
   candidate's error rate is the same (each classifies the held-out source perfectly), DEV on the
   cross-entropy decides instead (``TIE_BREAKERS``).
4. Refit on the whole source and the target (``refit``): every member of the vote, or the one choice.
   ``decision_`` records every candidate's score, :math:`\hat P`, and why.

The default candidates, the combination, the veto and the grids were chosen across the suite's data
sets (``transferkit bench suite``, ``benchmarks/auto_rules.py``; ``benchmarks/RESULTS.md`` gives the
procedure and the check on data that played no part): DANN, DAN and Deep CORAL at four weights each
around their papers' values; the vote, which, replayed on the same fits, gained more than every
rule that picks one candidate on each data set left out, and lost less. DDC, CORAL and TCA lost to
source-only on average there even at their best grid point, so they are candidates only when named;
CDAN+E, added to the vote, lost 6 points on Mushroom and left the other data sets within 1.7, so it
too is a candidate only when named.

References: DA-Bench (Lalou et al., "Realistic evaluation of deep domain adaptation", the SKADA
team) for choosing among methods without target labels; Dinu et al., "Addressing parameter choice
issues in unsupervised domain adaptation by aggregation" (ICLR 2023) for combining the candidates
instead of picking one; Efron & Tibshirani (1993) for the bootstrap.
"""

from __future__ import annotations

import os
import sys
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import ParameterGrid
from sklearn.utils._available_if import _AvailableIfDescriptor
from sklearn.utils._param_validation import Interval, StrOptions

from transferkit.data import Domain, Standardizer
from transferkit.methods.base import Setting, TransferMethod, shared_constraints, store_params
from transferkit.methods.registry import method_named
from transferkit.selection import evidence_from_model, get_validator, split_source
from transferkit.selection.validators import VALIDATORS, Evidence, prob_better, untrusted

#: Candidates when none are given: each method's adaptation weight around its paper's value.
DEFAULT_CANDIDATES: dict[str, dict[str, list]] = {
    "dann": {"lambda_max": [0.03, 0.1, 0.3, 1.0]},
    "dan": {"lambda_max": [0.1, 0.3, 1.0, 3.0]},
    "deep-coral": {"lambda_max": [0.3, 1.0, 3.0, 10.0]},
}

BASELINE = "source-only"
#: The validator that decides when every candidate scores the same by another: the error rate ties when
#: every candidate classifies the held-out source perfectly, where DEV on the cross-entropy still
#: separates them (benchmarks/RESULTS.md, "Auto").
TIE_BREAKERS = {"dev-error": "dev"}
#: The input transforms Auto can try: the inputs as given, or each domain standardised by its own statistics.
PREPROCESS = ("none", "standardize-domain")
#: Training settings handed to every candidate that has them (``None`` keeps each method's own).
_SHARED = ("epochs", "batch_size", "lr")
_RUN = ("seed", "device", "verbose")


class _AvailableIfWithReason(_AvailableIfDescriptor):
    """scikit-learn's ``available_if``, except that an AttributeError raised by the check is the error
    itself: scikit-learn's raises its generic "has no attribute" instead, with the reason only as its cause."""

    def _check(self, obj, owner):
        if not self.check(obj):
            raise AttributeError(f"This {owner.__name__!r} has no attribute {self.attribute_name!r}")


def _available_if_with_reason(check):
    return lambda fn: _AvailableIfWithReason(fn, check, attribute_name=fn.__name__)


class Auto(TransferMethod):
    """Adapt by a vote of many adaptation methods (or pick one) without target labels, or keep source-only.

    Parameters
    ----------
    candidates : dict, optional
        Method name -> grid (hyperparameter -> list of values) of the candidates; source-only is
        always among them. Default :data:`DEFAULT_CANDIDATES`.
    validator : str
        The label-free validator that scores the candidates (``dev-error``, ``dev``, ``iwv``, ``source``,
        ``entropy``, ``reverse``); never the oracle.
    combine : {"vote", "best"}
        ``"vote"``: every candidate votes (see above). ``"best"``: the one candidate the validator picks,
        or source-only unless it is beaten with ``confidence``.
    veto : float
        With ``combine="vote"``: how sure the paired bootstrap must be that source-only beats the vote
        before Auto keeps source-only instead; 1 keeps it only where it wins every resample.
    confidence : float
        With ``combine="best"``: how sure the paired bootstrap must be that the best adapted candidate
        beats source-only before Auto adapts; 0.5 adapts whenever its score is higher.
    val_fraction : float
        The fraction of the labelled source held out for the validator.
    n_resamples : int
        Bootstrap resamples of the held-out rows.
    refit : bool
        ``False``: the vote's members, or an adapted choice, are the very models that were validated
        (fitted on the source without its held-out part), and a kept source-only is fitted on the
        whole source (it is the baseline, and needs no validating). ``True``: each is fitted again on
        the whole source, a new training run that nothing validated (a vote then trains every
        candidate twice).
    preprocess : tuple of str, or str
        The input transforms to try every candidate with: ``"none"`` (the inputs as given; the
        baseline is always source-only on them) and ``"standardize-domain"``. From the command line:
        ``--set "preprocess=('none', 'standardize-domain')"``. With the latter chosen,
        ``predict`` standardises its samples by the target's statistics: they are target samples.
    epochs, batch_size, lr : optional
        Training settings for every candidate that trains a network; ``None`` keeps each method's own.
    seed, device, checkpoint_dir, verbose
        As for the neural methods; each candidate checkpoints in its own sub-folder.

    Attributes
    ----------
    estimators_ : list or None
        Under a vote, its members in the order of :meth:`plan` (the validated models, or fitted on the
        whole source: see ``refit``); source-only alone when the veto kept it. None with ``combine="best"``.
    member_preprocess_ : list of str or None
        The input transform each member reads.
    estimator_ : the chosen method (the validated model, or fitted on the whole source: see ``refit``),
        or the source-only kept by the veto; None while the candidates vote.
    decision_ : dict
        ``combine``; ``chosen`` (method, params and preprocess, or ``"vote"`` and its ``members``),
        ``adapted``, ``why``, ``p_better`` (that the vote, or the best adapted candidate, beats
        source-only), ``vote_score`` (the vote's score by the validator), ``decided_by``
        (``validator``, or its tie-breaker when every candidate tied; each candidate's tied score is then its
        ``tied_score``), and every candidate's ``score``, ``untrusted`` reason and, for the importance-weighted
        validators, its ``weights`` (effective sample size and mean). ``weights_note`` says when the chosen
        candidate's weights are fragile (an effective sample size under 10 % of the held-out rows, or a mean
        outside [0.5, 2]), and is None otherwise. It is a note, not a warning: on the suite's 22 tasks of four
        data sets (3 seeds) it held for 29 of the 34 choices to adapt, and 27 of those 29 gained
        (``benchmarks/RESULTS.md``): it says the estimate rests on few samples, not that the choice is wrong.
    target_mean_, target_std_ : ndarray or None
        The target's statistics when ``standardize-domain`` was chosen, applied to what ``predict`` gets.
    """

    name = "auto"
    setting = Setting(source_labels=True, target_labels=False)
    description = "adapts without target labels: a vote of many adaptation methods, or source-only"
    paper = "model selection as in DA-Bench (Lalou et al.); You et al., ICML 2019 (DEV)"
    min_target_samples = 2

    _parameter_constraints = {
        **shared_constraints("seed", "device", "checkpoint_dir", "verbose"),
        "candidates": [dict, None],
        "validator": [StrOptions({v for v, val in VALIDATORS.items() if not val.uses_target_labels})],
        "confidence": [Interval(Real, 0, 1, closed="both")],
        "val_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_resamples": [Interval(Integral, 1, None, closed="left")],
        "refit": ["boolean"],
        "combine": [StrOptions({"vote", "best"})],
        "veto": [Interval(Real, 0, 1, closed="both")],
        "preprocess": [tuple, list, StrOptions(set(PREPROCESS))],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "lr": [Interval(Real, 0, np.inf, closed="neither"), None],
    }

    def __init__(
        self,
        candidates: dict | None = None,
        validator: str = "dev-error",
        confidence: float = 0.8,
        val_fraction: float = 0.2,
        n_resamples: int = 1000,
        refit: bool = True,
        combine: str = "vote",
        veto: float = 0.99,
        preprocess: tuple = ("none",),
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        device: str = "cpu",
        checkpoint_dir: str | None = None,
        verbose: bool = False,
    ):
        store_params(self, locals())

    def plan(self) -> list[tuple[str, dict, str]]:
        """Every candidate as (method name, its hyperparameters, input transform), source-only on the inputs
        as given first; checked, not fitted."""
        self._validate_params()
        preprocess = [self.preprocess] if isinstance(self.preprocess, str) else list(self.preprocess)
        unknown = [p for p in preprocess if p not in PREPROCESS]
        if unknown or not preprocess or len(set(preprocess)) < len(preprocess):
            raise ValueError(
                f"preprocess={self.preprocess!r}; expected distinct names from {list(PREPROCESS)}, e.g. "
                "('none', 'standardize-domain')."
            )
        candidates = DEFAULT_CANDIDATES if self.candidates is None else self.candidates
        methods = []
        for name, grid in candidates.items():
            cls = method_named(name) if isinstance(name, str) else None
            if cls is None or cls is Auto:
                raise ValueError(f"candidates names {name!r}; expected a method for an unlabelled target.")
            s = cls.setting
            if not (s.source_labels and s.target and not s.target_labels):
                raise ValueError(
                    f"candidates names {name!r} ({s.quadrant}); Auto chooses among methods for a labelled "
                    "source and an unlabelled target."
                )
            if not isinstance(grid, dict):
                raise ValueError(f"candidates[{name!r}] is {grid!r}; expected a grid, e.g. {{'lambda_max': [0.1, 1]}}.")
            known = cls().get_params()
            for key, values in grid.items():
                if key not in known:
                    raise ValueError(f"candidates[{name!r}] names {key!r}, not a hyperparameter of {cls.__name__}.")
                if isinstance(values, str) or not hasattr(values, "__len__") or len(values) == 0:
                    raise ValueError(f"candidates[{name!r}][{key!r}] is {values!r}; expected a non-empty list.")
            if name == BASELINE:
                continue
            methods += [(name, dict(p)) for p in ParameterGrid(grid)] if grid else [(name, {})]
        plan = [(BASELINE, {}, "none")]
        for prep in preprocess:
            if prep != "none":  # source-only on per-domain standardised inputs already adapts (the moments)
                plan.append((BASELINE, {}, prep))
            plan += [(name, params, prep) for name, params in methods]
        if len(plan) < 2:
            raise ValueError("candidates holds no adaptation method; name at least one (e.g. {'dann': {}}).")
        return plan

    def _takes_sparse(self) -> bool:
        """Sparse inputs stay sparse when every candidate reads them so and no input transform is planned."""
        try:
            plan = self.plan()
        except ValueError:
            return False  # fit names the problem
        if any(prep != "none" for _, _, prep in plan):
            return False
        return all(self._make(name, params, "")._takes_sparse() for name, params, _ in plan)

    def _make(self, name: str, params: dict, folder: str, verbose: bool | None = None):
        cls = method_named(name)
        est = cls()
        known = est.get_params()
        settings = {k: getattr(self, k) for k in _SHARED if getattr(self, k) is not None and k in known}
        settings.update({k: getattr(self, k) for k in _RUN if k in known})
        if verbose is not None and "verbose" in known:
            settings["verbose"] = verbose
        if self.checkpoint_dir and "checkpoint_dir" in known:
            settings["checkpoint_dir"] = os.path.join(self.checkpoint_dir, folder)
        est.set_params(**settings, **params)
        return est

    def fit(self, source, target=None, sample_domain=None):
        """Fit every candidate on part of ``source`` and the unlabelled ``target``; keep the choice (see ``refit``)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        plan, inputs, train, val = self._prepare(source, target)
        validator = get_validator(self.validator)
        rows, terms, models, evidences, votes = [], [], [], [], []
        vote = self.combine == "vote"
        for i, (name, params, prep), model, evidence, caught in self._fitted_candidates(
            plan, inputs, train, val, target
        ):
            models.append(None if self.refit else model)  # the validated models are kept only to be returned
            evidences.append(evidence if validator.name in TIE_BREAKERS or (vote and i == 0) else None)
            if vote:  # its votes on the held-out source and on the target (indices into the same classes:
                # every candidate is fitted on the same rows)
                votes.append((evidence.source_proba.argmax(1), evidence.target_proba.argmax(1)))
            t = validator.terms(evidence, self.seed)
            score = t.score()
            rows.append(
                {
                    "method": name,
                    "params": params,
                    "preprocess": prep,
                    "score": score,
                    "untrusted": untrusted(validator.name, evidence, score),
                    **({"weights": t.diagnostics} if t.diagnostics else {}),
                    "warnings": caught,
                }
            )
            terms.append(t)
            if self.verbose:
                print(
                    f"[auto {i + 1}/{len(plan)}] {name} {params} ({prep}): {validator.name} {score:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
        if vote:
            return self._fit_vote(plan, inputs, source, target, val, validator, rows, terms, models, evidences, votes)
        decided_by, tie = validator.name, None
        if validator.name in TIE_BREAKERS and np.ptp([r["score"] for r in rows]) <= 1e-12:
            # every candidate scores the same: this validator tells none apart, the tie-breaker may
            tie, decided_by = rows[0]["score"], TIE_BREAKERS[validator.name]
            rows, terms = self._rescored(rows, evidences, decided_by)
        del evidences
        chosen, p, why = self._decide(rows, terms, decided_by)
        if tie is not None:
            why = f"every candidate scores {tie + 0.0:.4f} by {validator.name}, so {decided_by} decided: {why}"
        name, params, prep = plan[chosen]
        on_target = inputs[prep][1]
        if self.refit or chosen == 0:
            self.estimator_ = self._fit_whole(plan[chosen], inputs, source, target, "refit")
        else:
            self.estimator_ = models[chosen]
        del models
        f = on_target.standardizer if prep == "standardize-domain" else None
        self.target_mean_, self.target_std_ = (None, None) if f is None else (f.mean, f.std)
        self.estimators_, self.member_preprocess_ = None, None
        self.classes_ = self.estimator_.classes_
        self.model_ = getattr(self.estimator_, "model_", None)
        self.input_shape_ = self.estimator_.input_shape_
        self.warnings_ = list(getattr(self.estimator_, "warnings_", []))
        self.decision_ = {
            "validator": validator.name,
            "decided_by": decided_by,
            "confidence": self.confidence,
            "combine": "best",
            "chosen": {"method": name, "params": params, "preprocess": prep},
            "fitted_on": "the whole source" if self.refit or chosen == 0 else "the source less its held-out part",
            "adapted": chosen != 0,
            "p_better": p,
            "why": why,
            "weights_note": _fragile_weights(rows[chosen], len(val)),
            "candidates": rows,
        }
        return self

    def _fit_vote(self, plan, inputs, source, target, val, validator, rows, terms, models, evidences, votes):
        """``combine="vote"``: every candidate votes, unless source-only beats the vote beyond ``veto``."""
        v, n = validator.name, len(plan)
        first = evidences[0]  # the vote is judged in source-only's feature space, where source-only is too
        vote_evidence = Evidence(
            source_proba=_shares([s for s, _ in votes], first.source_proba.shape[1]),
            source_y=first.source_y,
            source_features=first.source_features,
            target_proba=_shares([t for _, t in votes], first.source_proba.shape[1]),
            target_features=first.target_features,
        )
        del evidences
        t_vote = validator.terms(vote_evidence, self.seed)
        vote_score = t_vote.score()
        why_not = untrusted(v, vote_evidence, vote_score) or rows[0]["untrusted"]
        p = None if why_not else prob_better(terms[0], t_vote, self.n_resamples, self.seed)
        vetoed = p is not None and p >= self.veto
        if vetoed:
            why = (
                f"kept source-only: it scores {rows[0]['score']:.4f} by {v}, the vote of the {n} candidates "
                f"{vote_score:.4f}, and beats it in {p:.0%} of bootstrap resamples (the veto needs {self.veto:.0%})"
            )
        elif why_not:
            why = f"the {n} candidates vote; their {v} scores cannot be compared with source-only's ({why_not})"
        else:
            why = (
                f"the {n} candidates vote: {v} {vote_score:.4f} against source-only's {rows[0]['score']:.4f}; "
                f"source-only is better in {p:.0%} of bootstrap resamples (the veto needs {self.veto:.0%})"
            )
        members = [0] if vetoed else list(range(n))
        if self.refit or vetoed:  # a kept source-only is the baseline: fitted on everything, as with "best"
            fitted, said = [], []
            for j, i in enumerate(members):
                if self.verbose:
                    name, params, prep = plan[i]
                    print(f"[auto refit {j + 1}/{len(members)}] {name} {params} ({prep})", file=sys.stderr, flush=True)
                folder = "refit" if vetoed else f"refit-{i + 1}"
                with warnings.catch_warnings(record=True) as caught:  # said once below, not once per member
                    warnings.simplefilter("always", RuntimeWarning)
                    fitted.append(self._fit_whole(plan[i], inputs, source, target, folder, verbose=False))
                said += [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
            if said:
                warnings.warn(
                    f"Auto: {len(said)} warnings from the {len(members)} refitted members, e.g. {said[0]} "
                    "(all of them: warnings_).",
                    RuntimeWarning,
                    stacklevel=3,
                )
        else:
            fitted = models
        del models
        self.estimators_ = fitted
        self.member_preprocess_ = [plan[i][2] for i in members]
        self.estimator_ = fitted[0] if vetoed else None
        f = next((inputs[q][1].standardizer for q in self.member_preprocess_ if q == "standardize-domain"), None)
        self.target_mean_, self.target_std_ = (None, None) if f is None else (f.mean, f.std)
        self.classes_ = np.unique(np.concatenate([est.classes_ for est in fitted]))
        self.model_ = getattr(fitted[0], "model_", None) if vetoed else None
        self.input_shape_ = fitted[0].input_shape_
        self.warnings_ = sorted({str(w) for est in fitted for w in getattr(est, "warnings_", [])})
        self.decision_ = {
            "validator": v,
            "decided_by": v,
            "confidence": self.confidence,
            "combine": "vote",
            "veto": self.veto,
            "chosen": (
                {"method": BASELINE, "params": {}, "preprocess": "none"}
                if vetoed
                else {"method": "vote", "members": [{"method": a, "params": b, "preprocess": c} for a, b, c in plan]}
            ),
            "fitted_on": "the whole source" if self.refit or vetoed else "the source less its held-out part",
            "adapted": not vetoed,
            "p_better": None if p is None else prob_better(t_vote, terms[0], self.n_resamples, self.seed),
            "why": why,
            "vote_score": vote_score,
            "weights_note": None,
            "candidates": rows,
        }
        return self

    def _fit_whole(self, step, inputs, source, target, folder: str, verbose: bool | None = None):
        """The candidate ``step`` of :meth:`plan` fitted on the whole source (and the target, if it reads one)."""
        name, params, prep = step
        on_source, on_target = inputs[prep]
        est = self._make(name, params, folder, verbose)
        return est.fit(on_source(source), on_target(target) if est.setting.target else None)

    def _prepare(self, source: Domain, target: Domain):
        """The plan, each input transform as functions of a Domain (the statistics of each whole domain,
        no labels read), and the stratified train / held-out split of the source."""
        plan = self.plan()
        inputs = {"none": (lambda d: d, lambda d: d)}
        if any(prep == "standardize-domain" for _, _, prep in plan):
            f_source, f_target = Standardizer.fit(source.X), Standardizer.fit(target.X)
            inputs["standardize-domain"] = (_mapped(f_source), _mapped(f_target))
        train, val = split_source(source, self.val_fraction, self.seed)
        return plan, inputs, train, val

    def candidate_evidence(self, source, target=None, sample_domain=None):
        """Fit the candidates one by one as :meth:`fit` does, without choosing or refitting.

        Yields ``(i, (method, params, preprocess), model, evidence, warnings)`` per candidate of
        :meth:`plan`: the model fitted on the training part of ``source`` and the unlabelled ``target``,
        and the :class:`~transferkit.selection.validators.Evidence` every validator scores it on (the
        held-out source and the target). For studying decision rules on the same fits Auto makes.
        """
        source, target = self._check_fit_data(source, target, sample_domain)
        plan, inputs, train, val = self._prepare(source, target)
        yield from self._fitted_candidates(plan, inputs, train, val, target)

    def _fitted_candidates(self, plan, inputs, train: Domain, val: Domain, target: Domain):
        for i, (name, params, prep) in enumerate(plan):
            on_source, on_target = inputs[prep]
            model = self._make(name, params, f"candidate-{i + 1}", verbose=False)
            with warnings.catch_warnings(record=True) as caught:  # kept per candidate, not printed 13 times
                warnings.simplefilter("always", RuntimeWarning)
                model.fit(on_source(train), on_target(target) if model.setting.target else None)
            evidence = evidence_from_model(model, on_source(val), on_target(target))
            said = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
            yield i, (name, params, prep), model, evidence, said

    def _rescored(self, rows: list[dict], evidences: list, name: str) -> tuple[list[dict], list]:
        """``rows`` with each candidate's score (and its trust) by the validator ``name`` instead, and its terms."""
        validator, out, terms = get_validator(name), [], []
        for row, evidence in zip(rows, evidences, strict=True):
            t = validator.terms(evidence, self.seed)
            score = t.score()
            trust = untrusted(name, evidence, score)
            out.append({**row, "score": score, "untrusted": trust, "tied_score": row["score"]})
            terms.append(t)
        return out, terms

    def _decide(self, rows: list[dict], terms: list, v: str | None = None) -> tuple[int, float | None, str]:
        """The index of the choice, the bootstrap probability that the best adapted one beats source-only, and why
        (``v``: the validator whose scores ``rows`` and ``terms`` hold, ``validator`` by default)."""
        v = v or self.validator
        if rows[0]["untrusted"]:
            return (
                0,
                None,
                f"kept source-only: its {v} score cannot be trusted ({rows[0]['untrusted']}), "
                "so nothing can be compared with it",
            )
        trusted = [i for i in range(1, len(rows)) if rows[i]["untrusted"] is None]
        if not trusted:
            return (
                0,
                None,
                f"kept source-only: no adapted candidate's {v} score can be trusted ({rows[1]['untrusted']})",
            )
        best = max(trusted, key=lambda i: rows[i]["score"])
        label = f"{rows[best]['method']} {rows[best]['params']}" + (
            f" on {rows[best]['preprocess']} inputs" if rows[best].get("preprocess", "none") != "none" else ""
        )
        p = prob_better(terms[best], terms[0], self.n_resamples, self.seed)
        if rows[best]["score"] <= rows[0]["score"]:
            return (
                0,
                p,
                (
                    f"kept source-only: it scores {rows[0]['score']:.4f} by {v}, "
                    f"the best adapted candidate ({label}) {rows[best]['score']:.4f}"
                ),
            )
        if p < self.confidence:
            return (
                0,
                p,
                (
                    f"kept source-only: the best adapted candidate ({label}) scores higher by {v} "
                    f"({rows[best]['score']:.4f} against {rows[0]['score']:.4f}), but beats it in only {p:.0%} of "
                    f"bootstrap resamples (needs {self.confidence:.0%})"
                ),
            )
        return (
            best,
            p,
            (
                f"adapted with {label}: {v} {rows[best]['score']:.4f} against source-only's {rows[0]['score']:.4f}, "
                f"higher in {p:.0%} of bootstrap resamples (needs {self.confidence:.0%})"
            ),
        )

    def _inputs(self, X):
        """What the chosen model reads: ``X`` standardised by the target's statistics when that was chosen."""
        if getattr(self, "target_mean_", None) is None:
            return X
        return Standardizer(self.target_mean_, self.target_std_)(X)

    def predict_proba(self, X) -> np.ndarray:
        """The chosen model's class probabilities, or under a vote each class's share of the votes
        (``X``: target samples)."""
        self._check_is_fitted()
        if self.estimator_ is not None:
            return self.estimator_.predict_proba(self._inputs(X))
        picks = []
        for est, prep in zip(self.estimators_, self.member_preprocess_, strict=True):
            label = est.classes_[est.predict_proba(self._inputs(X) if prep != "none" else X).argmax(1)]
            picks.append(np.searchsorted(self.classes_, label))
        return _shares(picks, len(self.classes_))

    def _one_model(self) -> bool:
        """Whether there are features to give: not under a vote (then ``hasattr(auto, "transform")`` is False)."""
        if getattr(self, "estimator_", False) is None:
            raise AttributeError(
                f"Auto has no transform under a vote: the {len(self.estimators_)} candidates vote, each in its "
                "own feature space; use estimators_[i].transform, or Auto(combine='best') for one model's features."
            )
        return True

    @_available_if_with_reason(_one_model)
    def transform(self, X) -> np.ndarray:
        """The chosen model's features (``X``: target samples); not under a vote."""
        self._check_is_fitted()
        return self.estimator_.transform(self._inputs(X))


#: Importance weights count as fragile below this share of the held-out rows as effective sample size, or
#: with a mean outside [1 / MEAN_WEIGHT_RANGE, MEAN_WEIGHT_RANGE] (1 when the source covers the target).
MIN_ESS_SHARE, MEAN_WEIGHT_RANGE = 0.1, 2.0


def _fragile_weights(row: dict, n: int) -> str | None:
    """Why the importance weights behind ``row``'s score are fragile, or None (validators without weights too)."""
    w = row.get("weights")
    if not w:
        return None
    ess, mean = w["effective_sample_size"], w["mean_weight"]
    if ess < MIN_ESS_SHARE * n or not (1 / MEAN_WEIGHT_RANGE <= mean <= MEAN_WEIGHT_RANGE):
        return (
            f"the importance weights behind the chosen candidate's score rest on {ess:.0f} of {n} held-out source "
            f"samples (effective sample size) with mean {mean:.2f} (1 when the source covers the target): the "
            "domains barely overlap there, and the score may be far off; check the choice with another validator"
        )
    return None


def _shares(picks: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Each row's share of the votes per class, from each voter's class indices."""
    shares = np.zeros((len(picks[0]), n_classes))
    for idx in picks:
        shares[np.arange(len(idx)), idx] += 1.0
    return shares / len(picks)


def _mapped(f: Standardizer):
    """A function of a Domain: its samples through ``f``, labels and name kept; ``f`` kept as ``.standardizer``."""

    def apply(d: Domain) -> Domain:
        return Domain(f(d.X), d.y, d.name)

    apply.standardizer = f
    return apply
