"""``transferkit run --out DIR`` saves the model; ``transferkit predict`` applies it with the same preprocessing."""

import csv
import json

import numpy as np
import pytest

from transferkit import load
from transferkit.cli import main
from transferkit.datasets import make_blobs_shift

NAMES = np.array(["cat", "dog", "alpaca"])


def _csv(path, X, y=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"] + (["y"] if y is not None else []))
        for i, x in enumerate(X):
            w.writerow([*x.tolist()] + ([NAMES[y[i]]] if y is not None else []))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A DANN run on standardised CSV inputs whose scale is far from 1, saved with --out."""
    d = tmp_path_factory.mktemp("run")
    t = make_blobs_shift(seed=0)
    scale = np.array([100.0, -3.0])
    files = {
        "s": _csv(d / "s.csv", t.source.X * scale + 50, t.source.y),
        "t": _csv(d / "t.csv", t.target_test.X * scale + 50, t.target_test.y),
        "u": _csv(d / "u.csv", t.target.X * scale + 50),
    }
    argv = ["run", "dann", "--source", files["s"], "--target", files["t"], "--label-column", "y"]
    assert main([*argv, "--epochs", "5", "--preprocess", "standardize", "--out", str(d / "out"), "-q"]) == 0
    return d, files


def test_predict_applies_the_saved_model_with_the_training_preprocessing(trained, capsys):
    d, files = trained
    capsys.readouterr()
    out = d / "p.csv"
    assert main(["predict", "--model", str(d / "out"), "--input", files["t"], "--output", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == [str(i) for i in range(500)]
    # by hand: the statistics saved beside the model, then the model
    inputs = json.loads((d / "out" / "model" / "inputs.json").read_text())["preprocess"]
    X = np.loadtxt(files["t"], delimiter=",", skiprows=1, usecols=(0, 1))
    Z = ((X - np.array(inputs["mean"])) / np.array(inputs["std"])).astype(np.float32)
    expected = load(d / "out" / "model").predict(Z)
    assert [r[1] for r in rows[1:]] == expected.tolist()
    y = np.loadtxt(files["t"], delimiter=",", skiprows=1, usecols=(2,), dtype=str)
    assert summary["accuracy"] == pytest.approx(np.mean(expected == y)) and summary["n"] == 500
    raw = load(d / "out" / "model").predict(X.astype(np.float32))  # without the preprocessing: another answer
    assert np.mean(raw == expected) < 0.9


def test_predict_on_an_unlabelled_file_writes_csv_to_stdout(trained, capsys):
    d, files = trained
    capsys.readouterr()
    assert main(["predict", "--model", str(d / "out" / "model"), "--input", files["u"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "index,prediction" and len(lines) == 501
    assert {line.split(",")[1] for line in lines[1:]} <= set(NAMES)


def test_predict_names_each_image_by_its_file(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "new"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(12):
                pixels = (rng.random((8, 8)) * 60 + (180 if c == "b" else 0)).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / c / f"{c}{i}.png")
    src, new = str(tmp_path / "train"), str(tmp_path / "new")
    argv = ["run", "source-only", "--source", src, "--target", new, "--epochs", "3", "--out", str(tmp_path / "o")]
    assert main([*argv, "-q"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "o"), "--input", new]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [
        f"{c}/{c}{i}.png" for c in "ab" for i in sorted(range(12), key=str)
    ]


def test_bad_predict_requests_get_one_clear_line(trained, tmp_path, capsys):
    d, files = trained
    wide = _csv(tmp_path / "wide.csv", np.ones((4, 3)))
    with open(wide) as f:
        text = f.read().replace("a,b\n", "a,b,c\n", 1)
    (tmp_path / "wide.csv").write_text(text)
    cases = [
        (["--model", str(tmp_path), "--input", files["t"]], "no saved model there"),
        (["--model", str(d / "out"), "--input", str(tmp_path / "none.csv")], "--input .*: no such file"),
        (["--model", str(d / "out"), "--input", wide], r"has samples of shape \(3,\); the model takes \(2,\)"),
        (["--model", str(d / "out"), "--input", files["t"], "--task", "a"], "learns one task"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["predict", *argv]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and __import__("re").search(message, err), err


def test_run_predictions_cover_every_row_of_the_target_file(trained, tmp_path):
    d, files = trained
    out = tmp_path / "p.csv"
    argv = ["run", "tradaboost", "--source", files["s"], "--target", files["t"], "--label-column", "y"]
    assert main([*argv, "--target-labels", "5", "--set", "n_estimators=3", "--predictions", str(out), "-q"]) == 0
    rows = list(csv.reader(out.open()))[1:]
    assert [r[0] for r in rows] == [str(i) for i in range(500)]  # every row of t.csv, not the 15 it trained on
