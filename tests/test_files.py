"""Your own data: CSV, .npz and image folders as domains, from Python and from `transferkit run`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.datasets import load_domain, load_task
from transferkit.datasets.files import is_file_key, load_file


def _write_csv(path, X, y=None, label="label", names=None):
    cols = [f"f{i}" for i in range(X.shape[1])]
    with open(path, "w") as f:
        f.write(",".join(cols + ([label] if y is not None else [])) + "\n")
        for i, row in enumerate(X):
            cells = [repr(float(v)) for v in row] + (
                [str(names[y[i]] if names is not None else y[i])] if y is not None else []
            )
            f.write(",".join(cells) + "\n")
    return path


@pytest.fixture
def csv_pair(tmp_path, blobs):
    names = np.array(["cat", "dog", "alpaca"])
    src = _write_csv(tmp_path / "source.csv", blobs.source.X, blobs.source.y, "y", names)
    tgt = _write_csv(tmp_path / "target.csv", blobs.target_test.X, blobs.target_test.y, "y", names)
    unl = _write_csv(tmp_path / "unlabelled.csv", blobs.target.X)
    return src, tgt, unl


def test_csv_round_trip_with_class_names(csv_pair, blobs):
    src, _, _ = csv_pair
    d = load_file(src, label_column="y")
    np.testing.assert_allclose(d.X, blobs.source.X, rtol=1e-6)
    assert list(np.unique(d.y)) == ["alpaca", "cat", "dog"]
    assert d.name == str(src)
    # without the right --label-column, the class names would be read as a feature: refused by name
    with pytest.raises(ValueError, match="column 'y'.*not a number.*--label-column"):
        load_file(src, label_column="label")


def test_file_split_is_stratified_disjoint_and_stable(csv_pair):
    _, tgt, _ = csv_pair
    every, train, test = (load_file(tgt, s, label_column="y") for s in ("all", "train", "test"))
    assert len(train) + len(test) == len(every)
    rows = {tuple(r) for r in train.X}
    assert not rows & {tuple(r) for r in test.X}
    for c in np.unique(every.y):  # each class keeps a quarter in the test part
        assert abs(np.sum(test.y == c) - 0.25 * np.sum(every.y == c)) <= 1
    np.testing.assert_array_equal(load_file(tgt, "test", label_column="y").X, test.X)


def test_load_task_on_files(csv_pair):
    src, tgt, unl = csv_pair
    task = load_task(str(src), str(tgt), label_column="y")
    assert len(task.source) == 300 and task.target.y is None and task.target_test.y is not None
    unlabelled = load_task(str(src), str(unl), label_column="y")
    assert unlabelled.target_test is None and len(unlabelled.target) == 300


def test_npz_any_shape(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2, 50)).astype(np.float32)  # a time series per sample
    y = np.arange(40) % 2
    np.savez(tmp_path / "series.npz", X=X, y=y)
    d = load_domain(str(tmp_path / "series.npz"), "all")
    assert d.X.shape == (40, 2, 50) and set(d.y) == {0, 1}
    np.savez(tmp_path / "bad.npz", data=X)
    with pytest.raises(ValueError, match="expected 'X'"):
        load_file(tmp_path / "bad.npz")


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, brightness in (("cats", 40), ("dogs", 200)):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for i in range(4):
            pixels = np.clip(rng.normal(brightness, 10, size=(12, 10)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / c / f"{i}.png")
    d = load_file(tmp_path / "pets")
    assert d.X.shape == (8, 1, 12, 10) and list(np.unique(d.y)) == ["cats", "dogs"]
    assert d.X[d.y == "dogs"].mean() > d.X[d.y == "cats"].mean()
    assert load_file(tmp_path / "pets", image_size=(16, 16)).X.shape == (8, 1, 16, 16)
    (tmp_path / "pets" / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\['empty'\] hold no images"):
        load_file(tmp_path / "pets")


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b\n1,2\n3\n", "line 3: 1 fields, but the header has 2"),
        ("a,a\n1,2\n", "repeated column names"),
        ("a\n", "expected a header row and at least one sample"),
        ("a,label\n1,x\nnan,y\n", "NaN or infinity"),
        ("a,label\n1,0\n2,\n3,1\n", r"label column 'label' is empty on line\(s\) 3; fill those labels"),
    ],
)
def test_bad_csv(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_file(tmp_path / "bad.csv")


def test_missing_file_and_keys():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_file("no/such/file.csv")
    assert is_file_key("data/mine.csv") and is_file_key("x.npz") and not is_file_key("digits:mnist")


def test_cli_runs_a_csv_end_to_end(csv_pair, tmp_path, capsys):
    src, tgt, unl = csv_pair
    assert (
        main(
            [
                "run",
                "dann",
                "--source",
                str(src),
                "--target",
                str(tgt),
                "--label-column",
                "y",
                "--epochs",
                "5",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert 0 <= record["target_accuracy"] <= 1 and record["n_target_test"] == 75
    predictions = tmp_path / "p.csv"
    argv = ["run", "dann", "--source", str(src), "--target", str(unl), "--label-column", "y", "--epochs", "5"]
    assert main(argv + ["--predictions", str(predictions), "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["target_accuracy"] is None
    lines = predictions.read_text().splitlines()
    assert lines[0] == "index,prediction" and len(lines) == 301
    assert {line.split(",")[1] for line in lines[1:]} <= {"cat", "dog", "alpaca"}


def test_cli_on_image_folders(tmp_path, capsys):
    """A folder with one subfolder of images per class, for source and target, through `run`."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for domain, shift in (("photos", 0), ("cartoons", 60)):
        for c, (row0, row1) in (("bars", (2, 6)), ("blocks", (8, 14))):
            (tmp_path / domain / c).mkdir(parents=True)
            for i in range(12):
                pixels = rng.integers(0, 40, size=(16, 16)) + shift
                pixels[row0:row1] += 150  # the class is where the bright band is
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(tmp_path / domain / c / f"{i}.png")
    argv = ["run", "source-only", "--source", str(tmp_path / "photos"), "--target", str(tmp_path / "cartoons")]
    assert main(argv + ["--epochs", "3", "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["n_source"] == 24 and record["n_target_test"] == 6 and 0 <= record["target_accuracy"] <= 1


def test_unlabelled_image_folder_of_another_size_as_target(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16)).astype(np.uint8)).save(tmp_path / "src" / c / f"{i}.png")
    (tmp_path / "tgt").mkdir()
    for i in range(5):  # no class folders: unlabelled, and 20x20
        Image.fromarray(rng.integers(0, 255, (20, 20)).astype(np.uint8)).save(tmp_path / "tgt" / f"{i}.png")
    task = load_task(str(tmp_path / "src"), str(tmp_path / "tgt"))
    assert task.target_test is None and task.source.feature_shape == task.target.feature_shape == (1, 20, 20)


def test_cli_multitask_and_transitive_on_files(csv_pair, tmp_path, capsys):
    """File names hold dots and slashes: they still name tasks and pool domains."""
    src, tgt, unl = csv_pair
    argv = ["run", "multitask", "--tasks", f"{src},{tgt}", "--label-column", "y", "--epochs", "2", "--json", "-q"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record["tasks"]) == {str(src), str(tgt)}
    argv = ["run", "transitive", "--source", str(src), "--target", str(tgt), "--pool", str(unl)]
    assert main(argv + ["--label-column", "y", "--set", "base=source-only", "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "transitive" and record["hyperparameters"]["base"] == "source-only"
    assert record["path"] in ([], [str(unl)]) and 0 <= record["target_accuracy"] <= 1


def test_csv_encoding_bom_and_blank_lines(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufefflabel,a\n0,1.5\n1,2.5\n\n\n".encode())
    d = load_file(tmp_path / "bom.csv")  # the mark is not part of the label column's name; blank lines end nothing
    assert d.y.tolist() == [0, 1] and d.X.shape == (2, 1)
    (tmp_path / "latin.csv").write_bytes("a,label\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv is not UTF-8 text"):
        load_file(tmp_path / "latin.csv")


def test_labels_of_different_kinds_are_refused_not_scored_zero(tmp_path, capsys):
    from transferkit import Domain, SourceOnly, TrAdaBoost

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    names, numbers = np.array(["cat", "dog"])[np.arange(60) % 2], np.arange(60) % 2
    with pytest.raises(ValueError, match=r"source.y holds class names \('cat', 'dog'\) and target.y numbers"):
        TrAdaBoost().fit(Domain(X, names), Domain(X, numbers))
    model = SourceOnly(epochs=1).fit(Domain(X, names))
    with pytest.raises(ValueError, match=r"none of the labels scored \(0, 1\) is a class this model was fitted on"):
        model.score(Domain(X, numbers))
    header = "a,b,c,label\n"
    (tmp_path / "s.csv").write_text(
        header + "".join(f"{r[0]},{r[1]},{r[2]},{n}\n" for r, n in zip(X, names, strict=True))
    )
    (tmp_path / "t.csv").write_text(
        header + "".join(f"{r[0]},{r[1]},{r[2]},{n}\n" for r, n in zip(X, numbers, strict=True))
    )
    code = main(["run", "source-only", "--source", str(tmp_path / "s.csv"), "--target", str(tmp_path / "t.csv"),
                 "--epochs", "1", "-q"])  # fmt: skip
    assert code == 2 and "is a class this model was fitted on" in capsys.readouterr().err


def test_a_misspelled_label_column_names_the_columns_that_exist(tmp_path, capsys):
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    (tmp_path / "s.csv").write_text("a,b,diagnosis\n" + rows)
    code = main(["run", "dann", "--source", str(tmp_path / "s.csv"), "--target", str(tmp_path / "s.csv"),
                 "--label-column", "diagnosys", "--epochs", "1", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no column 'diagnosys'" in err and "its columns: a, b, diagnosis" in err


def test_truncated_and_misnamed_files_give_one_clear_line(tmp_path):
    import gzip

    X, y = np.random.default_rng(0).random((50, 3)).astype(np.float32), np.arange(50) % 2
    np.savez(tmp_path / "full.npz", X=X, y=y)
    with gzip.open(tmp_path / "full.csv.gz", "wt") as f:
        f.write("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{v}\n" for r, v in zip(X, y, strict=True)))
    for name in ("full.npz", "full.csv.gz"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=rf"cut-{name} is damaged or truncated"):
            load_file(tmp_path / f"cut-{name}")
    np.save(tmp_path / "bare.npy", X)
    (tmp_path / "bare.npy").rename(tmp_path / "bare.npz")
    with pytest.raises(ValueError, match=r"bare.npz holds one bare array \(an .npy file named .npz\)"):
        load_file(tmp_path / "bare.npz")


def test_image_folders_open_one_file_at_a_time_and_name_a_broken_image(tmp_path, monkeypatch):
    import subprocess
    import sys

    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "many" / c).mkdir(parents=True)
        for i in range(150):
            Image.fromarray(np.full((4, 4), i, np.uint8)).save(tmp_path / "many" / c / f"{i}.png")
    script = (  # 300 images under a limit of 64 open files
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from transferkit.datasets.files import load_file\n"
        "print(load_file(sys.argv[1]).X.shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "many")], capture_output=True, text=True)
    assert proc.returncode == 0 and "(300, 1, 4, 4)" in proc.stdout, proc.stderr
    (tmp_path / "many" / "a" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"broken.png cannot be read as an image"):
        load_file(tmp_path / "many")
    (tmp_path / "many" / "a" / "broken.png").unlink()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)  # every 4x4 image is now a 'decompression bomb'
    with pytest.raises(ValueError, match=r"cannot be read as an image \(DecompressionBombError"):
        load_file(tmp_path / "many")


def test_a_truncated_mat_file_of_a_registered_data_set_gives_one_clear_line(tmp_path, monkeypatch):
    from pathlib import Path

    from transferkit.datasets import _common, load_domain

    source = Path(_common.data_dir()) / "landmine_mtl" / "LandmineData.mat"
    if not source.exists():
        pytest.skip("the landmine data is not in TRANSFERKIT_DATA")
    (tmp_path / "landmine_mtl").mkdir()
    data = source.read_bytes()
    (tmp_path / "landmine_mtl" / "LandmineData.mat").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path))
    _common.read_mat.cache_clear()
    with pytest.raises(ValueError, match=r"LandmineData.mat is damaged or truncated .*copy it again"):
        load_domain("landmine:1")
