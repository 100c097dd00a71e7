"""The domain-adaptation suite: three protocols per unit, gains against source-only, resumable."""

import json

import numpy as np
import pytest

from transferkit.protocols import suite
from transferkit.protocols.suite import SuiteTask, run_suite, summarise_suite

BLOBS = [SuiteTask("synthetic blobs", "synthetic:blobs", "synthetic:blobs")]


def test_a_unit_has_the_defaults_every_validators_pick_and_the_oracle(tmp_path):
    records = run_suite(out=tmp_path, quick=True, methods=["coral"], tasks=BLOBS, verbose=False)
    assert [(r["method"], r["seed"]) for r in records] == [("source-only", 0), ("coral", 0)]
    coral = records[1]
    accuracies = [c["accuracy"] for c in coral["candidates"]]
    assert [c["params"] for c in coral["candidates"]] == [{"reg": r} for r in suite.GRIDS["coral"]["reg"]]
    assert coral["oracle"] == max(accuracies)
    for v, pick in coral["picks"].items():
        assert pick["accuracy"] == accuracies[pick["index"]]
        assert pick["regret"] == pytest.approx(max(accuracies) - pick["accuracy"])
        scores = [c[v] for c in coral["candidates"]]
        if pick["fell_back"] is None:  # a trusted pick is the validator's argmax
            assert scores[pick["index"]] == max(scores)
    table = (tmp_path / "suite.md").read_text()
    assert "| synthetic blobs |" in table and "label-free (dev)" in table and "oracle" in table
    assert (tmp_path / "suite.png").stat().st_size > 1000
    assert json.loads((tmp_path / "suite.json").read_text()) == records


def test_the_suite_resumes_after_the_last_finished_unit(tmp_path, monkeypatch):
    run_suite(out=tmp_path, quick=True, methods=["coral"], tasks=BLOBS, verbose=False)
    calls = []
    original = suite._unit
    monkeypatch.setattr(suite, "_unit", lambda *a: calls.append(a[1]) or original(*a))
    records = run_suite(out=tmp_path, quick=True, methods=["coral", "tca"], tasks=BLOBS, verbose=False)
    assert calls == ["tca"] and [r["method"] for r in records] == ["source-only", "coral", "tca"]


def test_progress_counts_this_runs_units_only_when_the_saved_run_holds_others(tmp_path, capsys):
    run_suite(out=tmp_path, quick=True, methods=["coral"], tasks=BLOBS, verbose=False)
    run_suite(out=tmp_path, quick=True, methods=["tca"], tasks=BLOBS)  # source-only is saved; coral is not asked
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[suite")]
    assert len(lines) == 1 and lines[0].startswith("[suite 2/2] synthetic blobs tca seed 0")


def test_gains_and_wins_against_a_numpy_count():
    records = [
        {"task": t, "method": m, "seed": s, "defaults": acc}
        for t, accs in (("a", (0.5, 0.6)), ("b", (0.8, 0.7)), ("c", (0.6, 0.603)))
        for s in (0, 1)
        for m, acc in zip(("source-only", "dann"), accs, strict=True)
    ]
    gains = suite._gains(records)[("dann", "defaults")]
    np.testing.assert_allclose([np.mean(gains[t]) for t in "abc"], [0.1, -0.1, 0.003])
    assert suite._wtl(gains) == "1/1/1"  # +10 wins, -10 loses, +0.3 ties (within 0.5 points)
    table = summarise_suite(records)
    assert "+0.1 (1/1/1)" in table  # the mean gain in points: (10 - 10 + 0.3) / 3


def test_records_of_an_earlier_version_without_a_validator_are_summarised_with_those_that_have_it():
    def unit(task, validators, acc):
        picks = {
            v: {"index": 0, "accuracy": acc, "regret": 0.0, "spearman": 0.5, "fell_back": None} for v in validators
        }
        return {"task": task, "method": "dann", "seed": 0, "defaults": acc, "candidates": [{}, {}], "picks": picks,
                "oracle": acc}  # fmt: skip

    old = [v for v in suite.VALIDATORS if v != "dev-error"]
    records = [
        {"task": "a", "method": "source-only", "seed": 0, "defaults": 0.5},
        {"task": "b", "method": "source-only", "seed": 0, "defaults": 0.5},
        unit("a", old, 0.6),
        unit("b", suite.VALIDATORS, 0.7),
    ]
    table = summarise_suite(records)
    assert "| dev-error | +0.50 | 0.0 | 0/1 |" in table and "| dev | +0.50 | 0.0 | 0/2 |" in table
    assert "dev-error" not in summarise_suite(records[:3])  # no record scored by it: no row for it


def test_unknown_methods_are_refused_by_name():
    with pytest.raises(ValueError, match=r"methods=\['dnn'\]: not in the suite"):
        run_suite(methods=["dnn"], tasks=BLOBS, quick=True, verbose=False)


def test_the_suite_is_a_bench_command(capsys):
    from transferkit.cli import main

    assert main(["bench", "list"]) == 0
    assert "suite" in capsys.readouterr().out


def test_a_forged_or_incomplete_partial_record_is_run_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    run_suite(out=tmp_path, quick=True, methods=["coral", "tca"], tasks=BLOBS, verbose=False)
    path = tmp_path / "suite.partial.json"
    records = json.loads(path.read_text())
    records[1]["defaults"] = 0.99  # a forged accuracy
    del records[0]["seconds"]  # a record missing a field; the third is left as written
    path.write_text(json.dumps(records))
    calls = []
    original = suite._unit
    monkeypatch.setattr(suite, "_unit", lambda *a: calls.append(a[1]) or original(*a))
    again = run_suite(out=tmp_path, quick=True, methods=["coral", "tca"], tasks=BLOBS, verbose=False)
    err = capsys.readouterr().err
    assert sorted(calls) == ["coral", "source-only"] and 0.99 not in [r["defaults"] for r in again]
    assert "record 2 is run again: it was changed after it was written" in err and "record 1 is run again" in err
    from transferkit.protocols.partial import load_partial, save_partial

    save_partial(path, [{"task": "t", "method": "coral", "seed": 0, "quick": True}])  # sealed, but incomplete
    assert load_partial(path, ("task", "defaults")) == []
    assert "lacks ['defaults']" in capsys.readouterr().err
    path.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="not a list of run records"):
        run_suite(out=tmp_path, quick=True, methods=["coral"], tasks=BLOBS, verbose=False)


def test_tasks_are_chosen_by_family_or_name_and_unknown_ones_refused():
    names = [t.name for t in suite.suite_tasks(only=["newsgroups", "synthetic blobs"])]
    assert names == [
        "synthetic blobs",
        "newsgroups comp-vs-sci 1->2",
        "newsgroups comp-vs-sci 2->1",
        "newsgroups rec-vs-talk 1->2",
        "newsgroups rec-vs-talk 2->1",
    ]
    assert [t.name for t in suite.suite_tasks(only=["amazon"])][0] == "amazon books->dvd"  # not amazon400
    with pytest.raises(ValueError, match=r"tasks=\['amazon500'\]: no such task or family; the families: \["):
        suite.suite_tasks(only=["amazon500"])


def test_the_speaker_pairs_are_suite_tasks_with_registered_sources_and_targets_of_one_label_set():
    from transferkit.datasets import domain_info

    tasks = suite.suite_tasks()
    for t in tasks:
        if not t.source.startswith("synthetic:"):
            assert domain_info(t.source).n_classes == domain_info(t.target).n_classes, t.name
    pairs = {(t.source, t.target) for t in tasks}
    assert {("spoken:en", f"spoken:{v}") for v in ("en-speaker-20", "en-child", "en-deep")} <= pairs
    assert [t.name for t in suite.suite_tasks(only=["spoken"])] == [
        "spoken en->en-speaker-20",
        "spoken en->en-child",
        "spoken en->en-deep",
    ]


def test_the_command_line_passes_the_chosen_tasks_and_refuses_them_elsewhere(monkeypatch, capsys):
    from transferkit.cli import main

    seen = {}
    monkeypatch.setattr(suite, "run_suite", lambda **kw: seen.update(kw) or [])
    monkeypatch.setattr(suite, "summarise_suite", lambda records: "")
    assert main(["bench", "suite", "--quick", "--tasks", "synthetic blobs, mushroom"]) == 0
    assert [t.name for t in seen["tasks"]] == ["synthetic blobs", "mushroom enlarging->tapering"]
    assert main(["bench", "amazon", "--tasks", "amazon"]) == 2
    assert "--tasks is for `bench suite`" in capsys.readouterr().err


def test_the_msda_family_learns_its_features_once_per_task_and_seed(monkeypatch):
    """``amazon-msda`` tasks load the raw reviews with ``features="msda"``; the methods of one task and
    seed share one load (mSDA is learnt once), while tasks without learnt features load afresh each time."""
    import types

    import transferkit.datasets

    tasks = suite.suite_tasks(only=["amazon-msda"])
    assert len(tasks) == 12 and {t.features for t in tasks} == {"msda"}
    assert tasks[0].source == "amazon:books" and tasks[0].preprocess == "none"
    asked = []

    def fake_load_pair(source, target, options):
        asked.append(options.features)
        return types.SimpleNamespace(source=f"S{len(asked)}", target="T", target_test="E")

    monkeypatch.setattr(suite, "load_pair", fake_load_pair)
    monkeypatch.setattr(transferkit.datasets, "load_domain", lambda key, split="train", **kw: [0] * 2000)
    suite._loaded_and_kept.cache_clear()
    msda, raw = tasks[0], suite.suite_tasks(only=["amazon books->dvd"])[0]
    first, again = suite.task_data(msda, 0, 2000), suite.task_data(msda, 0, 2000)
    assert first is again and asked == ["msda"]
    suite.task_data(msda, 1, 2000)  # another seed: loaded again
    suite.task_data(raw, 0, 2000), suite.task_data(raw, 0, 2000)
    assert asked == ["msda", "msda", "none", "none"]
    suite._loaded_and_kept.cache_clear()


def test_a_list_of_seeds_runs_those_seeds_only_and_adds_them_to_the_run(tmp_path, monkeypatch):
    calls = []
    original = suite._unit
    monkeypatch.setattr(suite, "_unit", lambda *a: calls.append((a[1], a[2])) or original(*a))
    records = run_suite(seeds=[1], out=tmp_path, methods=["coral"], tasks=BLOBS, verbose=False)
    assert calls == [("source-only", 1), ("coral", 1)] and {r["seed"] for r in records} == {1}
    records = run_suite(seeds=2, out=tmp_path, methods=["coral"], tasks=BLOBS, verbose=False)
    assert calls[2:] == [("source-only", 0), ("coral", 0)]  # seed 1 resumed from the run above
    assert sorted((r["seed"], r["method"]) for r in records) == [(0, "coral"), (0, "source-only"),
                                                                 (1, "coral"), (1, "source-only")]  # fmt: skip


@pytest.mark.parametrize(
    ("seeds", "match"),
    [
        (0, r"seeds=0; expected a number of seeds >= 1"),
        ([], r"seeds=\[\]; expected a number of seeds >= 1, or a non-empty list"),
        ([1, -1], r"seeds=\[1, -1\]; expected"),
        ("12", r"seeds='12'; expected"),
        ([1.5], r"seeds=\[1.5\]; expected"),
        ([2, 2], r"seeds=\[2, 2\]: a seed is named twice"),
    ],
)
def test_bad_seeds_are_refused_by_name_before_any_run(seeds, match, monkeypatch):
    monkeypatch.setattr(suite, "_unit", lambda *a: pytest.fail("ran a unit"))
    with pytest.raises(ValueError, match=match):
        run_suite(seeds=seeds, methods=["coral"], tasks=BLOBS, verbose=False)
    with pytest.raises(ValueError, match=r"quick=True; the quick run has one seed, 0"):
        run_suite(seeds=[1], quick=True, methods=["coral"], tasks=BLOBS, verbose=False)


def test_the_command_line_runs_only_the_seeds_named(monkeypatch, capsys):
    from transferkit.cli import main

    seen = {}
    monkeypatch.setattr(suite, "run_suite", lambda **kw: seen.update(kw) or [])
    monkeypatch.setattr(suite, "summarise_suite", lambda records: "")
    assert main(["bench", "suite", "--only-seeds", "1,2", "--tasks", "synthetic blobs"]) == 0
    assert seen["seeds"] == [1, 2]
    assert main(["bench", "suite", "--only-seeds", "1,x"]) == 2
    assert "--only-seeds '1,x'; expected comma-separated whole numbers" in capsys.readouterr().err
    assert main(["bench", "amazon", "--only-seeds", "1"]) == 2
    assert "--only-seeds is for `bench suite`" in capsys.readouterr().err


def test_records_sealed_on_another_machine_are_run_again_with_one_line_that_says_so(tmp_path, monkeypatch, capsys):
    from transferkit.protocols.partial import load_partial, save_partial

    path = tmp_path / "suite.partial.json"
    records = [{"task": "t", "method": m, "seed": 0, "defaults": 0.5} for m in ("source-only", "coral", "tca")]
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "machine-a"))
    save_partial(path, records)
    assert load_partial(path, ("task", "defaults")) == records  # read back on the machine that wrote them
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "machine-b"))
    assert load_partial(path, ("task", "defaults")) == []
    err = capsys.readouterr().err
    assert "none of its 3 records passes its check under this machine's key" in err and "machine-b" in err
    assert err.count("\n") == 1  # one line, not one per record
