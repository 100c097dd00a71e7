"""The command line: listings, a JSON run, the demo, and one-line errors for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit import __version__
from transferkit.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_methods_lists_every_registered_method_by_quadrant(capsys):
    from transferkit import REGISTRY, REGRESSORS
    from transferkit.methods import CLUSTERING, MANY_TASKS, MULTI_SOURCE, POOLED, ZERO_SHOT

    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0
    assert "labelled source, unlabelled target:" in out
    assert "unlabelled source, unlabelled target:" in out
    every = {**REGISTRY, **REGRESSORS, **MANY_TASKS, **ZERO_SHOT, **CLUSTERING, **POOLED, **MULTI_SOURCE}
    for name, cls in every.items():
        assert name in out and cls.paper in out
    code, out, _ = run_cli(["methods", "--json"], capsys)
    rows = json.loads(out)
    assert {r["name"] for r in rows} == set(every)
    assert next(r for r in rows if r["name"] == "stc")["quadrant"] == "unlabelled source, unlabelled target"
    assert next(r for r in rows if r["name"] == "devise")["task"] == "zero-shot"
    assert next(r for r in rows if r["name"] == "multitask")["task"] == "many tasks"
    assert next(r for r in rows if r["name"] == "tradaboost-r2")["task"] == "regression"
    assert next(r for r in rows if r["name"] == "dann")["target_labels"] is False


def test_datasets_lists_domains_and_presence(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path))
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    assert str(tmp_path) in out and "TRANSFERKIT_DATA" in out
    assert "amazon" in out and "missing" in out
    code, out, _ = run_cli(["datasets", "--json"], capsys)
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows["demo:mnist"]["present"] is True
    assert rows["amazon:books"]["present"] is False


def test_run_json_prints_one_object_with_the_required_fields():
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "transferkit.cli",
        "run",
        "dann",
        "--source",
        "demo:mnist",
        "--target",
        "demo:usps",
        "--epochs",
        "1",
        "--seed",
        "3",
        "--json",
        "--set",
        "lambda_max=0.5",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)  # stdout is exactly one JSON document
    for key in (
        "method",
        "source",
        "target",
        "seed",
        "target_accuracy",
        "seconds",
        "version",
        "hyperparameters",
    ):
        assert key in record
    assert record["method"] == "dann" and record["seed"] == 3 and record["version"] == __version__
    assert 0 <= record["target_accuracy"] <= 1
    assert record["hyperparameters"]["lambda_max"] == 0.5 and record["hyperparameters"]["epochs"] == 1
    assert "step" in proc.stderr, "progress goes to stderr"


def test_run_writes_report_with_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        [
            "run",
            "source-only",
            "--source",
            "demo:mnist",
            "--target",
            "demo:usps",
            "--epochs",
            "1",
            "-q",
            "--out",
            str(out),
            "--plot",
            "--n-source",
            "200",
        ],
        capsys,
    )
    assert code == 0 and "target accuracy" in stdout
    assert json.loads((out / "run.json").read_text())["n_source"] == 200
    assert (out / "tsne.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["run", "dnn", "--source", "demo:mnist", "--target", "demo:usps"],
            "unknown method 'dnn'. Did you mean 'dann'? Known methods: ",
        ),
        (["run", "dann", "--source", "demo:mnst", "--target", "demo:usps"], "demo:mnst"),
        (["run", "dann", "--source", "imagenet:dogs", "--target", "demo:usps"], "imagenet"),
        (
            ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--target-labels", "5"],
            "target labels would never be used",
        ),
        (
            ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--set", "lamda=1"],
            "not a hyperparameter",
        ),
        (["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--set", "epochs"], "KEY=VALUE"),
        (["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--plot"], "add --out DIR"),
        (["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--copy", "first:2"], "--copy: dann"),
        (
            ["run", "finetune", "--source", "demo:mnist", "--target", "demo:usps", "--target-labels", "1"]
            + ["--source-model", "/nonexistent/model.pt"],
            "no such file",
        ),
        (
            ["run", "finetune", "--source", "demo:mnist", "--target", "demo:usps", "--target-labels", "1"]
            + ["--copy", "first:9", "--epochs", "1", "--set", "source_epochs=1"],
            "first=9",
        ),
        (
            ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--epochs", "0"],
            "The 'epochs' parameter of DANN must be an int in the range [1, inf). Got 0",
        ),
        (["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--grid", "lambda_max=1,2"], "--select"),
        (
            ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--select", "oracle"],
            "--grid candidates only",
        ),
        (
            ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--select", "dve", "--grid", "lr=1"],
            "unknown validator 'dve'",
        ),
        (["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--grid", "lamda=1"], "--grid lamda"),
        (
            [
                "run",
                "source-only",
                "--source",
                "demo:mnist",
                "--target",
                "demo:usps",
                "--select",
                "dev",
                "--grid",
                "lr=1",
            ],
            "nothing to adapt",
        ),
    ],
)
def test_bad_input_gives_one_clear_line(args, message, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_missing_data_directory_says_how_to_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path / "nowhere"))
    code, _, err = run_cli(["run", "dann", "--source", "amazon:books", "--target", "amazon:kitchen"], capsys)
    assert code == 2 and "TRANSFERKIT_DATA" in err


def test_demo_quick_writes_the_report(tmp_path, capsys):
    code, out, _ = run_cli(["demo", "--quick", "-q", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert "| DANN | " in out and "| source-only |" in out
    report = (tmp_path / "report.md").read_text()
    pictures = ("tsne.png", "curves.png", "samples.png", "layer_transfer.png", "zeroshot_confusion.png", "clusters.png")
    for png in pictures:
        assert f"({png})" in report
        assert (tmp_path / png).stat().st_size > 1000
    results = json.loads((tmp_path / "results.json").read_text())
    quadrants = [r["quadrant"] for r in results["rows"]]
    for q in ("labelled source, labelled target", "labelled source, unlabelled target",
              "unlabelled source, labelled target", "unlabelled source, unlabelled target"):  # fmt: skip
        assert q in quadrants
    assert len(results["fine-tuning"]["curve"]) == len(results["fine-tuning"]["layers"]) + 1


def test_help_of_every_command_shows_an_example(capsys):
    for cmd in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            main(cmd)
        assert "transferkit run dann --source amazon:books" in capsys.readouterr().out


def test_run_on_msda_features(capsys, tmp_path):
    from transferkit.datasets._registry import domain_info

    if not domain_info("amazon400:books").present():
        pytest.skip("amazon400 data not present")
    code, out, _ = run_cli(
        [
            "run",
            "dann",
            "--source",
            "amazon400:books",
            "--target",
            "amazon400:dvd",
            "--features",
            "msda",
            "--epochs",
            "1",
            "-q",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    record = json.loads(out)
    assert record["features"] == "msda" and 0 <= record["target_accuracy"] <= 1
    code, _, err = run_cli(
        ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--features", "msda"], capsys
    )
    assert code == 2 and "needs feature vectors" in err


def test_few_labelled_target_for_tradaboost(capsys):
    from transferkit.datasets._registry import domain_info

    if not domain_info("mushroom:tapering").present():
        pytest.skip("mushroom data not present")
    args = ["run", "tradaboost", "--source", "mushroom:enlarging", "--target", "mushroom:tapering", "-q", "--json"]
    code, out, _ = run_cli([*args, "--target-labels", "5", "--set", "n_estimators=5"], capsys)
    assert code == 0
    record = json.loads(out)
    assert record["n_target"] == 10 and record["target_labels_per_class"] == 5
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--target-labels K" in err
    code, _, err = run_cli([*args, "--target-labels", "5", "--epochs", "3"], capsys)
    assert code == 2 and "--epochs" in err


@pytest.mark.parametrize("validator", ["dev", "oracle"])
def test_run_select_chooses_among_the_grid_and_flags_the_oracle(validator, capsys):
    args = ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--epochs", "1"]  # 267 held out
    args += ["--n-target", "300", "-q", "--json", "--select", validator, "--grid", "lambda_max=0.0,1.0"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    selection = json.loads(out)["selection"]
    assert [c["params"]["lambda_max"] for c in selection["candidates"]] == [0.0, 1.0]
    scores = [c[validator] for c in selection["candidates"]]
    assert selection["best_params"] == selection["candidates"][scores.index(max(scores))]["params"]
    assert "warnings" not in selection
    assert selection["uses_target_labels"] == (validator == "oracle")
    assert ("ORACLE" in err) == (validator == "oracle") and ("ORACLE" in selection.get("note", "")) == (
        validator == "oracle"
    )


def test_run_select_on_a_small_held_out_sample_keeps_the_defaults_and_says_so(capsys):
    args = ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--epochs", "1", "--n-source", "300"]
    args += ["--n-target", "300", "-q", "--json", "--select", "dev", "--grid", "lambda_max=0.0,0.5"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    selection = json.loads(out)["selection"]  # 60 held-out samples: no score decides
    assert selection["best_params"] == {"lambda_max": 0.0}  # not DANN's own 1.0 among them: the first
    assert "could not choose" in selection["warnings"][0] and "60 samples" in selection["warnings"][0]
    assert all("60 samples" in c["untrusted"]["dev"] for c in selection["candidates"])


def test_run_select_without_grid_chooses_the_epoch(capsys):
    args = ["run", "dann", "--source", "demo:mnist", "--target", "demo:usps", "--epochs", "2", "--n-source", "300"]
    code, out, err = run_cli(args + ["--n-target", "300", "-q", "--select", "entropy"], capsys)
    assert code == 0, err
    assert "selected by entropy" in out and "{'epoch': 1}" in out and "{'epoch': 2}" in out


def test_run_regression_reports_r2_and_rmse(capsys):
    from transferkit.datasets._registry import domain_info

    if not domain_info("school:1").present():
        pytest.skip("School data not present (set TRANSFERKIT_DATA)")
    args = ["run", "tradaboost-r2", "--source", "school:1", "--target", "school:2", "--target-labels", "10"]
    code, out, err = run_cli(args + ["--json", "--set", "n_estimators=5"], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert record["n_target"] == 10 and "target_accuracy" not in record
    assert record["target_r2"] <= 1.0 and record["target_rmse"] > 0


def test_finetune_from_a_saved_source_model(tmp_path, capsys):
    common = ["--source", "demo:mnist", "--target", "demo:usps", "-q", "--n-source", "300"]
    code, _, err = run_cli(["run", "source-only", *common, "--epochs", "1", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert (tmp_path / "model.pt").exists()
    args = ["run", "finetune", *common, "--target-labels", "2", "--copy", "first:2", "--freeze", "--epochs", "2"]
    code, out, err = run_cli(args + ["--source-model", str(tmp_path / "model.pt"), "--json"], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert record["n_target"] == 20 and record["hyperparameters"]["copy"] == "first:2"
    assert record["hyperparameters"]["freeze"] is True


def test_bench_layer_transfer_is_listed_and_runs_the_sweep(capsys, monkeypatch, tmp_path):
    import transferkit.protocols.layer_transfer as lsb

    code, out, _ = run_cli(["bench", "list"], capsys)
    assert code == 0 and "layer-transfer" in out
    calls = []

    def fake_main(seeds, epochs, n_train, out, quiet=False):
        calls.append((seeds, epochs, n_train, Path(out), quiet))
        (Path(out) / "layer_transfer.json").write_text("[]")
        return ""

    monkeypatch.setattr(lsb, "run_layer_transfer", fake_main)
    assert run_cli(["bench", "layer-transfer", "--seeds", "3", "--out", str(tmp_path)], capsys)[0] == 0
    assert run_cli(["bench", "layer-transfer", "--quick", "--json", "--out", str(tmp_path)], capsys)[1].strip() == "[]"
    assert calls == [(3, 7, 5000, tmp_path, False), (1, 1, 500, tmp_path, True)]


def test_bench_saves_each_run_and_a_rerun_skips_finished_runs(monkeypatch, tmp_path, capsys):
    import transferkit.protocols.bench as bench
    from transferkit import runs

    demo = bench.Benchmark(
        name="toy",
        description="toy",
        pairs=[("demo:mnist", "demo:usps")],
        methods={"source-only": ("source-only", {"epochs": 1}), "DANN": ("dann", {"epochs": 1})},
    )
    monkeypatch.setitem(bench.BENCHMARKS, "toy", demo)
    calls = []

    def fake_run(method, source, target, options):
        calls.append((method, options.seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third run
        return runs.RunResult({"target_accuracy": 0.5, "seconds": 0.0, "seed": options.seed}, None)

    monkeypatch.setattr(runs, "run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        bench.run_benchmark("toy", seeds=2, out=str(tmp_path))
    assert len(json.loads((tmp_path / "toy.partial.json").read_text())) == 2  # both finished runs kept
    calls.clear()
    records = bench.run_benchmark("toy", seeds=2, out=str(tmp_path))
    assert calls == [("dann", 0), ("dann", 1)]  # only what was missing
    assert len(records) == 4 and len(json.loads((tmp_path / "toy.json").read_text())) == 4
    calls.clear()
    assert len(bench.run_benchmark("toy", seeds=2, out=str(tmp_path), methods=["DANN"])) == 2 and not calls
    with pytest.raises(ValueError, match=r"methods=\['DAN'\]: not columns of 'toy'"):
        bench.run_benchmark("toy", seeds=2, methods=["DAN"])
    code, _, err = run_cli(["bench", "toy", "--methods", "DAN"], capsys)
    assert code != 0 and "its columns: ['source-only', 'DANN']" in err
    table = (tmp_path / "toy.md").read_text()
    assert "DANN" in table and "source-only" not in table.split("\n\n")[-1]  # only the columns that ran


def test_run_multitask_reports_every_task_and_the_means(capsys):
    code, out, _ = run_cli(
        ["run", "multitask", "--tasks", "demo:mnist,demo:usps", "--epochs", "2", "--quiet", "--json"], capsys
    )
    record = json.loads(out)
    assert code == 0 and record["tasks"] == ["demo:mnist", "demo:usps"]
    assert set(record["per_task"]) == {"demo:mnist", "demo:usps"}
    accs = [m["accuracy"] for m in record["per_task"].values()]
    assert record["mean_accuracy"] == pytest.approx(sum(accs) / 2) and min(accs) > 0.3


def test_run_progressive_scores_every_task_after_each_column(capsys):
    code, out, _ = run_cli(
        ["run", "progressive", "--sequence", "demo:mnist,demo:usps", "--epochs", "1", "--quiet", "--json"], capsys
    )
    record = json.loads(out)
    first, second = record["stages"]
    assert first["accuracy"]["demo:mnist"] == second["accuracy"]["demo:mnist"]  # the frozen column forgets nothing
    assert len(record["parameters_per_column"]) == 2 and len(record["lateral_scales"]["demo:usps"]) == 2
    assert record["lateral_usage"]["demo:mnist"] == [] and len(record["lateral_usage"]["demo:usps"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "multitask"], "multitask needs --tasks"),
        (["run", "multitask", "--tasks", "demo:mnist", "--source", "demo:usps"], "drop --source/--target"),
        (["run", "multitask", "--tasks", "nosuch"], "'nosuch' is neither a dataset"),
        (["run", "multitask", "--tasks", "demo:mnist,demo:mnist"], "names a task twice"),
        (["run", "progressive", "--sequence", "demo:mnist"], "needs two or more"),
        (["run", "dann", "--source", "demo:mnist"], "dann needs --source and --target"),
    ],
)
def test_run_many_tasks_bad_input(argv, message, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code != 0 and message in err


def test_run_zeroshot_json_on_embedded_digits(capsys):
    code, out, _ = run_cli(
        ["run", "dap", "--source", "demo:mnist", "--unseen", "3,7,9", "--epochs", "2", "--json"], capsys
    )
    record = json.loads(out)
    assert code == 0 and record["method"] == "dap" and record["unseen_classes"] == [3, 7, 9]
    assert {"zsl", "seen", "unseen", "H", "ausuc", "target_accuracy"} <= set(record)
    assert 3 not in record["seen_classes"] and record["zsl"] == record["target_accuracy"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "dap", "--source", "demo:mnist"], "need --unseen"),
        (["run", "dap", "--source", "demo:mnist", "--unseen", "3,11"], "lacks"),
        (["run", "dap", "--source", "demo:mnist", "--target", "demo:usps", "--unseen", "3,7"], "no --target"),
        (["run", "conse", "--source", "amazon:books", "--unseen", "0,1"], "no class descriptions"),
    ],
)
def test_run_zeroshot_bad_input(args, message, capsys):
    code, _, err = run_cli(args, capsys)
    assert code != 0 and message in err


def _need(*folders):
    from transferkit.datasets import data_dir

    missing = [f for f in folders if not (data_dir() / f).exists()]
    if missing:
        pytest.skip(f"data not available: {missing}")


def test_run_stc_and_itcc_json(capsys):
    _need("malsar_mtl")
    args = ["--target", "newsgroups:comp-vs-sci-1", "--n-target", "120", "--set", "n_init=2", "--json"]
    code, out, _ = run_cli(["run", "stc", "--source", "newsgroups:comp-vs-sci-2", "--n-source", "400", *args], capsys)
    stc = json.loads(out)
    assert code == 0 and stc["n_target"] == 120 and stc["n_auxiliary"] == 400
    assert 0.5 <= stc["clustering_accuracy"] <= 1 and 0 <= stc["nmi"] <= 1
    code, out, _ = run_cli(["run", "itcc", *args], capsys)
    assert json.loads(out)["n_auxiliary"] == 0
    code, _, err = run_cli(["run", "itcc", "--source", "newsgroups:comp-vs-sci-2", *args], capsys)
    assert code != 0 and "clusters the target alone" in err


def test_run_transitive_json(capsys):
    _need("mnist_small")
    chain = ["run", "transitive", "--source", "rotmnist:0", "--target", "rotmnist:30", "--pool", "rotmnist:15"]
    code, out, _ = run_cli([*chain, "--set", "base=SourceOnly(epochs=1)", "--json"], capsys)
    assert code != 0  # base must be a registered name from the command line, not code
    code, out, _ = run_cli([*chain, "--set", "path=[0]", "--epochs", "2", "--json", "-q"], capsys)
    record = json.loads(out)
    assert code == 0 and record["path"] == ["rotmnist:15"] and 0 <= record["target_accuracy"] <= 1
    code, _, err = run_cli(chain[:6], capsys)
    assert code != 0 and "needs --pool" in err


def test_run_self_taught_reads_no_source_labels(capsys):
    code, out, _ = run_cli(
        [
            "run",
            "self-taught",
            "--source",
            "demo:mnist",
            "--target",
            "demo:usps",
            "--target-labels",
            "5",
            "--set",
            "features='pca'",
            "--set",
            "n_components=20",
            "--json",
        ],
        capsys,
    )
    record = json.loads(out)
    assert code == 0 and record["method"] == "self-taught" and record["target_accuracy"] > 0.3


def test_advise_json(capsys):
    _need("mnist_usps_jda")
    code, out, _ = run_cli(
        [
            "advise",
            "--source",
            "digits16:mnist",
            "--target",
            "digits16:usps",
            "--target-labels",
            "5",
            "--epochs",
            "1",
            "--json",
        ],
        capsys,
    )
    record = json.loads(out)
    assert code == 0 and record["quadrant"] == "labelled source, labelled target"
    assert record["ranking"][0]["source"] == "digits16:mnist" and "logme" in record["ranking"][0]
    code, _, err = run_cli(["advise", "--target", "digits16:usps"], capsys)
    assert code != 0 and "needs --source" in err


def test_bench_runs_the_real_path_end_to_end(monkeypatch, tmp_path, capsys):
    """No mock: `bench` builds real run options and trains (it once crashed on every real benchmark)."""
    import transferkit.protocols.bench as bench

    toy = bench.Benchmark(
        name="toy",
        description="toy",
        pairs=[("demo:mnist", "demo:usps")],
        methods={"source-only": ("source-only", {"epochs": 1}), "DANN": ("dann", {"epochs": 1, "lambda_max": 0.1})},
        sizes={"demo:mnist": 300},
    )
    monkeypatch.setitem(bench.BENCHMARKS, "toy", toy)
    code, out, err = run_cli(["bench", "toy", "--seeds", "1", "--json", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    records = json.loads(out)
    assert [r["column"] for r in records] == ["source-only", "DANN"]
    assert records[1]["hyperparameters"]["lambda_max"] == 0.1 and records[0]["n_source"] == 300
    from transferkit.datasets._registry import domain_info

    if domain_info("digits:usps").present():
        code, out, err = run_cli(["bench", "digits", "--quick", "--json", "--methods", "source-only"], capsys)
        assert code == 0, err
        assert json.loads(out)[0]["n_source"] == 2000  # the ADDA size of the real benchmark


def test_method_names_in_any_case_and_warnings_in_one_line(capsys):
    args = ["--source", "demo:mnist", "--target", "demo:usps", "--epochs", "1", "--n-source", "200", "-q"]
    code, out, err = run_cli(["run", "Source_Only", *args], capsys)
    assert code == 0 and out.startswith("source-only:")
    warned = [line for line in err.splitlines() if "never fitted" in line]
    assert warned and all(line.startswith("transferkit: warning: SourceOnly:") for line in warned)
    assert ".py:" not in err  # no file path, no source line
    code, _, err = run_cli(["run", "stcc", "--target", "demo:usps"], capsys)
    assert code == 2 and "unknown method 'stcc'. Did you mean 'stc'?" in err


def test_the_command_freezes_the_heap_after_its_work_so_exit_skips_the_last_sweep(monkeypatch):
    """``transferkit`` (the console script and ``python -m transferkit``) is ``cli.command``: the work,
    then ``gc.freeze()``, which spares the exit a collection over every object torch made."""
    import gc
    import importlib.metadata
    import pathlib

    from transferkit import cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    assert cli.command() == 3 and calls == ["main", "freeze"]
    scripts = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "transferkit"]
    assert [e.value for e in scripts] == ["transferkit.cli:command"]
    assert "sys.exit(command())" in (pathlib.Path(cli.__file__).parent.parent / "__main__.py").read_text()
