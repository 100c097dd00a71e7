"""Auto: the method, its weight and whether to adapt, chosen by a label-free validator and a paired bootstrap."""

import json

import numpy as np
import pytest

from transferkit import DANN, Auto, datasets
from transferkit.methods import auto as transferkit_auto
from transferkit.selection.validators import Terms, dev_risk, prob_better

FEW = {"dann": {"lambda_max": [0.1, 1.0]}, "deep-coral": {}}


@pytest.fixture(scope="module")
def shift():
    return datasets.make_covariate_shift(n_source=400, n_target=400, seed=0)


@pytest.fixture(scope="module")
def fitted(shift):
    return Auto(candidates=FEW, epochs=10, n_resamples=200, combine="best").fit(shift.source, shift.target.unlabelled())


def _terms(values: np.ndarray) -> Terms:
    return Terms("source", len(values), lambda i: float(np.mean(values[i])))


def test_prob_better_is_the_paired_bootstrap_of_a_numpy_loop():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.1, 1, 300), rng.normal(0, 1, 300)
    draws = np.random.default_rng(7)
    wins = 0
    for _ in range(500):
        idx = draws.integers(0, 300, 300)
        wins += a[idx].mean() > b[idx].mean()
    assert prob_better(_terms(a), _terms(b), 500, seed=7) == wins / 500
    draws, wins = np.random.default_rng(0), 0  # the defaults: 1000 resamples, seed 0
    for _ in range(1000):
        idx = draws.integers(0, 300, 300)
        wins += a[idx].mean() > b[idx].mean()
    assert prob_better(_terms(a), _terms(b)) == wins / 1000
    # paired: the same rows for both, so a constant lead wins every resample however noisy the rows are
    assert prob_better(_terms(b + 0.01), _terms(b), 200) == 1.0
    assert prob_better(_terms(b), _terms(b.copy()), 200) == 0.0  # a tie is not a win
    with pytest.raises(ValueError, match="cannot pair"):
        prob_better(_terms(a), Terms("target", 300, lambda i: 0.0))


def test_the_terms_of_each_validator_are_its_score_and_resample_by_rows():
    from transferkit.selection.validators import VALIDATORS, Evidence, density_ratio

    rng = np.random.default_rng(0)
    n, m = 150, 200
    proba = rng.dirichlet(np.ones(3), n)
    e = Evidence(
        source_proba=proba,
        source_y=rng.integers(0, 3, n),
        source_features=rng.normal(size=(n, 4)),
        target_proba=rng.dirichlet(np.ones(3), m),
        target_features=rng.normal(0.5, 1, size=(m, 4)),
    )
    for name in ("source", "iwv", "dev", "dev-error", "entropy", "reverse"):
        t = VALIDATORS[name].terms(e, 0)
        assert t.score() == pytest.approx(VALIDATORS[name].score(e, 0))
        assert t.domain == ("target" if name == "entropy" else "source")
    idx = rng.integers(0, n, n)
    w = density_ratio(e.source_features, e.target_features, 0)
    losses = -np.log(proba[np.arange(n), e.source_y])
    assert VALIDATORS["dev"].terms(e, 0).of(idx) == pytest.approx(-dev_risk(w[idx], losses[idx]))
    correct = proba.argmax(1) == e.source_y
    assert VALIDATORS["iwv"].terms(e, 0).of(idx) == pytest.approx(np.sum(w[idx] * correct[idx]) / np.sum(w[idx]))


def _rows(scores):
    return [{"method": m, "params": {}, "score": s, "untrusted": None} for m, s in scores]


def test_a_higher_but_uncertain_score_keeps_source_only():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 200)
    noise = rng.normal(0, 1.0, 200)
    noisy = base + 0.02 + noise - noise.mean()  # higher on average, by much less than its noise
    clear = base + 0.05  # higher on every row
    auto = Auto(n_resamples=500)
    rows = _rows([("source-only", base.mean()), ("dann", noisy.mean()), ("dan", clear.mean() - 1)])
    terms = [_terms(base), _terms(noisy), _terms(clear - 1)]
    assert rows[1]["score"] > rows[0]["score"]
    chosen, p, why = auto._decide(rows, terms)
    assert chosen == 0 and p < 0.9 and "kept source-only" in why and "bootstrap" in why
    assert auto.set_params(confidence=0.5)._decide(rows, terms)[0] in (0, 1)  # a coin toss at 50 %
    rows[2]["score"], terms[2] = clear.mean(), _terms(clear)
    chosen, p, why = Auto(n_resamples=500)._decide(rows, terms)
    assert chosen == 2 and p == 1.0 and why.startswith("adapted with dan")


def test_untrusted_scores_are_never_chosen_and_an_untrusted_baseline_keeps_source_only():
    rows = _rows([("source-only", 0.5), ("dann", 0.9), ("dan", 0.6)])
    terms = [_terms(np.full(200, s)) for s in (0.5, 0.9, 0.6)]
    rows[1]["untrusted"] = "the dev score is nan"
    assert Auto()._decide(rows, terms)[0] == 2
    rows[0]["untrusted"] = "hard probabilities"
    chosen, p, why = Auto()._decide(rows, terms)
    assert chosen == 0 and p is None and "cannot be trusted" in why


def test_an_adapted_choice_is_the_validated_model_unless_refit_and_a_kept_source_only_is_fitted_on_everything(
    shift, monkeypatch
):
    from transferkit import SourceOnly
    from transferkit.methods import auto as auto_module

    fits = []

    def counted(cls):
        real = cls.fit

        def fit(self, source, target=None, sample_domain=None):
            fits.append((cls.name, len(source)))
            return real(self, source, target, sample_domain)

        monkeypatch.setattr(cls, "fit", fit)

    counted(DANN)
    counted(SourceOnly)
    target = shift.target.unlabelled()
    adapt = {"dann": {"lambda_max": [0.3]}}
    monkeypatch.setattr(auto_module.Auto, "_decide", lambda self, rows, terms, v=None: (1, 1.0, "adapted"))
    kept = Auto(candidates=adapt, epochs=3, n_resamples=20, refit=False, combine="best").fit(shift.source, target)
    # source-only and DANN on 80 % of the 400 source samples; the validated DANN is kept, not trained again
    assert kept.decision_["adapted"] and fits == [("source-only", 320), ("dann", 320)]
    assert kept.decision_["fitted_on"] == "the source less its held-out part"
    fits.clear()
    again = Auto(candidates=adapt, epochs=3, n_resamples=20, refit=True, combine="best").fit(shift.source, target)
    assert again.decision_["adapted"] and fits[-1] == ("dann", 400)
    assert again.decision_["fitted_on"] == "the whole source"
    fits.clear()
    monkeypatch.setattr(auto_module.Auto, "_decide", lambda self, rows, terms, v=None: (0, None, "kept"))
    base = Auto(candidates=adapt, epochs=3, n_resamples=20, refit=False, combine="best").fit(shift.source, target)
    assert fits[-1] == ("source-only", 400) and base.decision_["fitted_on"] == "the whole source"


def test_fit_scores_every_candidate_and_keeps_the_choice(fitted, shift):
    d = fitted.decision_
    assert [(r["method"], r["params"]) for r in d["candidates"]] == [
        ("source-only", {}),
        ("dann", {"lambda_max": 0.1}),
        ("dann", {"lambda_max": 1.0}),
        ("deep-coral", {}),
    ]
    chosen = d["chosen"]
    assert type(fitted.estimator_).name == chosen["method"]
    assert {k: fitted.estimator_.get_params()[k] for k in chosen["params"]} == chosen["params"]
    assert fitted.estimator_.get_params()["epochs"] == 10
    if d["adapted"]:
        best = max(d["candidates"][1:], key=lambda r: r["score"])
        assert (best["method"], best["params"]) == (chosen["method"], chosen["params"]) and d[
            "p_better"
        ] >= fitted.confidence
    np.testing.assert_array_equal(fitted.predict(shift.target_test.X), fitted.estimator_.predict(shift.target_test.X))
    assert fitted.score(shift.target_test) == fitted.estimator_.score(shift.target_test)
    json.dumps(d)  # the run record holds it


@pytest.mark.parametrize(
    "params,match",
    [
        ({"candidates": {"dnn": {}}}, "unknown method 'dnn'"),
        ({"candidates": {"dap": {}}}, "candidates names 'dap'"),
        ({"candidates": {"finetune": {}}}, "candidates names 'finetune'"),
        ({"candidates": {"dann": {"lambda": [1]}}}, "names 'lambda', not a hyperparameter of DANN"),
        ({"candidates": {"dann": {"lambda_max": 1.0}}}, r"expected a non-empty list"),
        ({"candidates": {"dann": [0.1]}}, "expected a grid"),
        ({"candidates": {}}, "holds no adaptation method"),
        ({"validator": "oracle"}, "'validator' parameter of Auto must be"),
        ({"confidence": 1.5}, "'confidence' parameter of Auto must be"),
        ({"combine": "average"}, "'combine' parameter of Auto must be"),
        ({"veto": -0.1}, "'veto' parameter of Auto must be"),
        ({"epochs": 0}, "'epochs' parameter of Auto must be"),
    ],
)
def test_bad_settings_are_refused_before_any_training(shift, params, match, monkeypatch):
    monkeypatch.setattr(DANN, "fit", lambda *a, **k: pytest.fail("trained before refusing"))
    with pytest.raises(ValueError, match=match):
        Auto(**params).fit(shift.source, shift.target.unlabelled())


def test_target_labels_are_refused(shift):
    with pytest.raises(ValueError, match="target has labels"):
        Auto(candidates=FEW).fit(shift.source, shift.target_test)


def test_run_auto_records_the_decision(tmp_path, capsys):
    from transferkit.cli import main

    task = datasets.make_covariate_shift(n_source=300, n_target=300, seed=1)
    for name, d in (("s", task.source), ("t", task.target_test)):
        np.savetxt(tmp_path / f"{name}.csv", np.c_[d.X, d.y], delimiter=",", header="a,b,y", comments="")
    argv = ["run", "auto", "--source", str(tmp_path / "s.csv"), "--target", str(tmp_path / "t.csv")]
    assert main([*argv, "--label-column", "y", "--epochs", "2", "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    decision = record["decision"]
    assert record["method"] == "auto" and decision["validator"] == "dev-error"
    assert len(decision["candidates"]) == 13 and decision["why"].startswith(
        ("the 13 candidates vote", "kept source-only")
    )


def test_run_auto_plot_says_a_vote_has_no_feature_space_and_still_saves_the_run(tmp_path, capsys):
    from transferkit.cli import main

    task = datasets.make_covariate_shift(n_source=300, n_target=300, seed=1)
    for name, d in (("s", task.source), ("t", task.target_test)):
        np.savetxt(tmp_path / f"{name}.csv", np.c_[d.X, d.y], delimiter=",", header="a,b,y", comments="")
    argv = ["run", "auto", "--source", str(tmp_path / "s.csv"), "--target", str(tmp_path / "t.csv")]
    out = tmp_path / "run"
    assert main([*argv, "--label-column", "y", "--epochs", "1", "--plot", "--out", str(out), "-q"]) == 0
    assert "auto has no single feature space to plot" in capsys.readouterr().err
    assert (out / "run.json").exists() and (out / "model").is_dir() and not (out / "tsne.png").exists()


def _gain_offset_shift(seed=0):
    """Two classes; the target (unlabelled) is the source's distribution times 3 plus 5 in every feature."""
    from helpers_data import gain_offset_shift

    source, target, test = gain_offset_shift(seed, n=600, n_test=300)
    return source, target.unlabelled(), test


def test_the_plan_tries_every_candidate_on_each_input_transform_and_refuses_unknown_ones():
    plan = Auto(candidates={"dann": {"lambda_max": [0.1, 1.0]}}, preprocess=("none", "standardize-domain")).plan()
    assert plan == [
        ("source-only", {}, "none"),
        ("dann", {"lambda_max": 0.1}, "none"),
        ("dann", {"lambda_max": 1.0}, "none"),
        ("source-only", {}, "standardize-domain"),  # an adapted candidate: each domain's moments matched
        ("dann", {"lambda_max": 0.1}, "standardize-domain"),
        ("dann", {"lambda_max": 1.0}, "standardize-domain"),
    ]
    for bad in (("standardise",), (), ("none", "none")):
        with pytest.raises(
            ValueError, match=r"preprocess=.*expected distinct names from \['none', 'standardize-domain'\]"
        ):
            Auto(preprocess=bad).plan()


def test_auto_chooses_per_domain_standardisation_under_a_gain_and_offset_and_predicts_with_the_targets_statistics(
    tmp_path,
):
    import transferkit

    source, target, test = _gain_offset_shift()
    # held-out source accuracy: this shift separates the raw domains, where importance weights (DEV, IWV) fail
    settings = {
        "candidates": {"deep-coral": {}},
        "validator": "source",
        "epochs": 20,
        "n_resamples": 200,
        "combine": "best",
    }
    auto = Auto(preprocess=("none", "standardize-domain"), **settings).fit(source, target)
    chosen = auto.decision_["chosen"]
    assert chosen["preprocess"] == "standardize-domain" and auto.decision_["adapted"], auto.decision_["why"]
    np.testing.assert_allclose(auto.target_mean_, target.X.mean(0), rtol=1e-6)
    # predict reads target samples through the target's own statistics; the raw samples would be far off
    assert auto.score(test) > 0.85
    assert auto.estimator_.score(test) < 0.7
    unmoved = Auto(**settings).fit(source, target)
    assert unmoved.decision_["chosen"]["preprocess"] == "none" and unmoved.target_mean_ is None
    assert auto.score(test) > unmoved.score(test) + 0.1
    loaded = transferkit.load(auto.save(tmp_path / "auto"))
    np.testing.assert_array_equal(loaded.predict(test.X), auto.predict(test.X))


def test_weight_diagnostics_are_kongs_effective_sample_size_and_the_mean():
    from transferkit.selection.validators import weight_diagnostics

    w = np.array([0.5, 1.0, 1.5, 4.0])
    d = weight_diagnostics(w)
    assert d["effective_sample_size"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert d["mean_weight"] == pytest.approx(1.75)
    assert weight_diagnostics(np.ones(10))["effective_sample_size"] == pytest.approx(10)
    assert weight_diagnostics(np.r_[1.0, np.zeros(9)])["effective_sample_size"] == pytest.approx(1)


def test_a_choice_resting_on_fragile_importance_weights_says_so_in_the_record():
    source, target, _ = _gain_offset_shift()  # the raw domains are apart: DEV's weights barely reach the target
    auto = Auto(candidates={"deep-coral": {}}, validator="dev", epochs=5, n_resamples=50, combine="best").fit(
        source, target
    )
    rows = auto.decision_["candidates"]
    assert all({"effective_sample_size", "mean_weight"} <= set(r["weights"]) for r in rows)
    chosen = next(r for r in rows if (r["method"], r["params"]) == (auto.decision_["chosen"]["method"], {}))
    assert chosen["weights"]["mean_weight"] < 0.5 or chosen["weights"]["effective_sample_size"] < 12
    assert "importance weights behind the chosen candidate's score" in auto.decision_["weights_note"]
    assert "barely overlap" in auto.decision_["weights_note"]
    settled = Auto(candidates={"deep-coral": {}}, validator="source", epochs=5, n_resamples=50, combine="best")
    settled.fit(source, target)
    assert "weights" not in settled.decision_["candidates"][0] and settled.decision_["weights_note"] is None


def test_when_every_error_rate_ties_dev_on_the_cross_entropy_decides(shift, monkeypatch):
    from transferkit.selection.validators import Evidence

    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    fs, ft = rng.normal(size=(120, 3)), rng.normal(size=(60, 3)) + 0.3

    def evidence(confidence):  # every held-out source row right: the error rates tie at 0
        proba = np.where(np.eye(2)[y] == 1, confidence, 1 - confidence)
        return Evidence(source_proba=proba, source_y=y, source_features=fs,
                        target_proba=np.tile([0.5, 0.5], (60, 1)), target_features=ft)  # fmt: skip

    def candidates(self, plan, *args):
        for i, (step, confidence) in enumerate(zip(plan, (0.6, 0.7, 0.99, 0.8), strict=True)):
            yield i, step, None, evidence(confidence), []

    monkeypatch.setattr(Auto, "_fitted_candidates", candidates)
    auto = Auto(candidates=FEW, epochs=2, n_resamples=200, combine="best").fit(shift.source, shift.target.unlabelled())
    d = auto.decision_
    assert d["validator"] == "dev-error" and d["decided_by"] == "dev"
    assert d["chosen"] == {"method": "dann", "params": {"lambda_max": 1.0}, "preprocess": "none"}  # 0.99 on the truth
    assert d["why"].startswith("every candidate scores 0.0000 by dev-error, so dev decided: adapted with dann")
    assert {c["tied_score"] for c in d["candidates"]} == {0.0}
    assert d["candidates"][2]["score"] == max(c["score"] for c in d["candidates"])
    monkeypatch.setitem(transferkit_auto.TIE_BREAKERS, "dev-error", "dev-error")  # no tie-breaker: a tie keeps it
    best = Auto(candidates=FEW, epochs=2, combine="best")
    assert not best.fit(shift.source, shift.target.unlabelled()).decision_["adapted"]


class _Voter:
    """A fitted stand-in that predicts, for the sample whose first feature is r, the class ``labels[r]``."""

    def __init__(self, labels, n_classes=3):
        self.labels, self.classes_, self.input_shape_ = np.asarray(labels), np.arange(n_classes), (2,)

    def predict_proba(self, X):
        return np.eye(len(self.classes_))[self.labels[np.asarray(X)[:, 0].astype(int)]]


def _voting(monkeypatch, tables, y_val, seed=0):
    """Auto's candidates replaced by ``_Voter``s: candidate k labels held-out row r ``tables[k][r]``."""
    from transferkit.selection.validators import Evidence

    rng = np.random.default_rng(seed)
    rows = np.arange(len(y_val))[:, None] * np.ones(2)
    fs, ft = rng.normal(size=(len(y_val), 3)), rng.normal(size=(len(y_val), 3))

    def candidates(self, plan, *args):
        for i, step in enumerate(plan):
            voter = _Voter(tables[i])
            yield (
                i,
                step,
                voter,
                Evidence(voter.predict_proba(rows), np.asarray(y_val), fs, voter.predict_proba(rows), ft),
                [],
            )

    monkeypatch.setattr(Auto, "_fitted_candidates", candidates)
    return rows


TWO = {"dann": {"lambda_max": [0.1, 1.0]}}


def test_the_vote_is_each_classs_share_of_the_candidates_votes_and_predicts_the_majority(shift, monkeypatch):
    table = np.array([[0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 0], [1, 1, 1, 0, 0, 2]])
    tables = np.tile(table, 20)  # 120 held-out rows, so that the validator's score can be trusted
    X = _voting(monkeypatch, tables, y_val=tables[0])
    monkeypatch.setattr(transferkit_auto, "prob_better", lambda a, b, *args: 0.0)  # no veto
    auto = Auto(candidates=TWO, validator="source", refit=False).fit(shift.source, shift.target.unlabelled())
    shares = np.zeros((len(X), 3))
    for votes in tables:
        for r, c in enumerate(votes):
            shares[r, c] += 1 / 3
    np.testing.assert_allclose(auto.predict_proba(X), shares)
    # majorities 0, 1, 1, 2, 0, and a three-way tie that goes to the first class
    np.testing.assert_array_equal(auto.predict(X)[:6], [0, 1, 1, 2, 0, 0])
    d = auto.decision_
    assert d["combine"] == "vote" and d["adapted"] and d["chosen"]["method"] == "vote"
    assert [m["params"] for m in d["chosen"]["members"]] == [{}, {"lambda_max": 0.1}, {"lambda_max": 1.0}]
    # the vote is scored like any candidate: here its held-out accuracy against source-only's labels
    assert d["vote_score"] == pytest.approx(np.mean(shares.argmax(1) == tables[0]))
    assert d["why"].startswith("the 3 candidates vote: source")
    # a vote has no one feature space: transform is not there (as scikit-learn's available_if hides it)
    assert not hasattr(auto, "transform")
    with pytest.raises(AttributeError, match=r"^Auto has no transform under a vote: the 3 candidates vote"):
        auto.transform(X)  # the reason is the error itself, not hidden behind a generic line
    assert hasattr(Auto(), "transform")  # before fit, and with one model, it is


def test_source_only_is_kept_when_it_beats_the_vote_beyond_the_veto(shift, monkeypatch):
    from transferkit import SourceOnly

    y = np.arange(120) % 3
    wrong = (y + 1) % 3
    _voting(monkeypatch, [y, wrong, wrong], y_val=y)  # source-only right on every held-out row, the vote never
    auto = Auto(candidates=TWO, validator="source", epochs=2, refit=False).fit(shift.source, shift.target.unlabelled())
    d = auto.decision_
    assert not d["adapted"] and d["chosen"]["method"] == "source-only" and d["p_better"] == 0.0
    assert d["why"].startswith("kept source-only: it scores 1.0000 by source, the vote of the 3 candidates 0.0000")
    # the baseline kept is fitted on the whole source, as combine="best" keeps it
    assert isinstance(auto.estimator_, SourceOnly) and d["fitted_on"] == "the whole source"
    np.testing.assert_array_equal(auto.predict(shift.target_test.X), auto.estimator_.predict(shift.target_test.X))
    # veto=1: source-only is kept only where it wins every resample, as it does here
    certain = Auto(candidates=TWO, validator="source", veto=1.0, refit=False, epochs=2)
    assert not certain.fit(shift.source, shift.target.unlabelled()).decision_["adapted"]
    # source-only right on 110 rows, the vote on 100: better in most resamples, not in all
    r = np.arange(120)
    adapted = np.where(r >= 100, wrong, y)
    _voting(monkeypatch, [np.where(r < 10, wrong, y), adapted, adapted], y_val=y)
    settings = {"candidates": TWO, "validator": "source", "refit": False, "n_resamples": 500, "epochs": 2}
    lenient = Auto(veto=0.99, **settings).fit(shift.source, shift.target.unlabelled()).decision_
    strict = Auto(veto=0.9, **settings).fit(shift.source, shift.target.unlabelled()).decision_
    assert lenient["adapted"] and not strict["adapted"]
    assert "source-only is better in 9" in lenient["why"] and "the veto needs 99%" in lenient["why"]


def test_the_vote_refits_every_candidate_on_the_whole_source_unless_refit_is_false(shift, monkeypatch):
    import warnings

    from transferkit import SourceOnly

    fits = []

    def counted(cls):
        real = cls.fit

        def fit(self, source, target=None, sample_domain=None):
            fits.append((cls.name, len(source)))
            if len(source) == 400:
                warnings.warn(f"{cls.name} refitted", RuntimeWarning, stacklevel=2)
            return real(self, source, target, sample_domain)

        monkeypatch.setattr(cls, "fit", fit)

    counted(DANN)
    counted(SourceOnly)
    monkeypatch.setattr(transferkit_auto, "prob_better", lambda a, b, *args: 0.0)  # no veto
    target, one = shift.target.unlabelled(), {"dann": {"lambda_max": [0.3]}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = Auto(candidates=one, epochs=2, n_resamples=20).fit(shift.source, target)
    assert fits == [("source-only", 320), ("dann", 320), ("source-only", 400), ("dann", 400)]
    # the members' warnings are said once, together, not once per member
    said = [str(w.message) for w in caught if "refitted" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("Auto: ") and "from the 2 refitted members" in said[0]
    assert "e.g. source-only refitted" in said[0]
    assert [type(e) for e in auto.estimators_] == [SourceOnly, DANN] and auto.estimator_ is None
    assert auto.decision_["fitted_on"] == "the whole source"
    fits.clear()
    validated = Auto(candidates=one, epochs=2, n_resamples=20, refit=False).fit(shift.source, target)
    assert fits == [("source-only", 320), ("dann", 320)]
    assert validated.decision_["fitted_on"] == "the source less its held-out part"


def test_a_saved_vote_predicts_as_it_did_and_members_read_their_own_inputs(tmp_path):
    import transferkit

    source, target, test = _gain_offset_shift()
    auto = Auto(candidates={"deep-coral": {}}, preprocess=("none", "standardize-domain"), epochs=5, n_resamples=50)
    auto.fit(source, target)
    assert auto.member_preprocess_ == ["none", "none", "standardize-domain", "standardize-domain"]
    np.testing.assert_allclose(auto.target_mean_, target.X.mean(0), rtol=1e-6)
    # the members on standardised inputs see the target through its own statistics, the others as given
    by_hand = np.mean(
        [
            est.predict(auto._inputs(test.X) if prep != "none" else test.X)[:, None] == auto.classes_[None]
            for est, prep in zip(auto.estimators_, auto.member_preprocess_, strict=True)
        ],
        axis=0,
    )
    np.testing.assert_allclose(auto.predict_proba(test.X), by_hand)
    loaded = transferkit.load(auto.save(tmp_path / "vote"))
    np.testing.assert_array_equal(loaded.predict_proba(test.X), auto.predict_proba(test.X))
    assert loaded.decision_ == auto.decision_
