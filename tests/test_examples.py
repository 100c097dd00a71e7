"""The runnable examples: they run (quick mode) and the corpus they build is grammatical."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def translation(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("zero_shot_translation", None)
    import zero_shot_translation

    return zero_shot_translation


def test_translation_corpus_agrees_in_gender_and_case(translation):
    render = translation.render
    # the black dog sees the red cat / the red dog: nominative vs accusative masculine in German
    assert render((1, 1, 0, 0, 0), "de") == ["der", "schwarze", "Hund", "sieht", "die", "rote", "Katze"]
    assert render((0, 0, 0, 1, 0), "de") == ["die", "rote", "Katze", "sieht", "den", "roten", "Hund"]
    # French: adjective after the noun, feminine agreement, elision before a vowel
    assert render((4, 1, 1, 2, 2), "fr") == ["la", "souris", "noire", "aime", "l'", "oiseau", "blanc"]
    assert render((4, 1, 1, 2, 2), "en") == ["the", "black", "mouse", "likes", "the", "white", "bird"]


def test_translation_test_contents_never_seen_in_training(translation):
    train, test = translation.contents(500, 100, seed=0)
    assert not set(train) & set(test) and len(test) == 100


def test_translation_example_runs(translation, capsys):
    record = translation.main(["--quick", "--json"])
    results = record["results"]
    assert {"de -> fr (zero-shot)", "de -> en -> fr (pivot)", "de -> fr (trained with de-fr pairs)"} <= set(results)
    assert "de -> fr (zero-shot, with monolingual copies)" in results
    for r in results.values():
        assert all(0.0 <= r[k] <= 1.0 for k in ("exact_match", "token_accuracy", "target_language"))
    assert '"results"' in capsys.readouterr().out


def _example(monkeypatch, name):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop(name, None)
    return __import__(name)


def test_tabular_csv_example_runs(monkeypatch, tmp_path):
    results = _example(monkeypatch, "tabular_csv").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "hospital_a.csv").exists() and (tmp_path / "hospital_b.csv").exists()
    for key in (
        "cli source-only",
        "cli dann",
        "python source-only",
        "python DANN",
        "sklearn GridSearchCV(scaler + DANN)",
    ):
        assert 0.0 <= results[key] <= 1.0
    assert results["lambda_max chosen on source folds"] in (0.1, 1.0)


def test_time_series_example_runs(monkeypatch, tmp_path):
    module = _example(monkeypatch, "time_series")
    X, y = module.simulate(20, "ankle", seed=0)
    assert X.shape == (20, 3, module.LENGTH) and set(y) <= set(range(len(module.ACTIVITIES)))
    results = module.main(["--quick", "--out", str(tmp_path)])
    assert set(results) == {"source-only", "dann"} and all(0.0 <= v <= 1.0 for v in results.values())
