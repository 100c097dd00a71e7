"""The Xian et al. benchmark loader, on small files written in the release's format."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from transferkit.datasets import load_zsl_benchmark

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def write_gbu(root: Path, seed: int = 0, n_per_class: int = 40, val_loc: bool = True, dim: int = 16) -> Path:
    """An AWA2-shaped folder: 8 classes of 4 binary attributes (6 seen, 2 unseen), features linear in them."""
    rng = np.random.default_rng(seed)
    combos = np.array(list(itertools.product([0, 1], repeat=4)), dtype=float)
    A = combos[[1, 2, 4, 8, 3, 12, 5, 10]]
    names = [f"animal{i}" for i in range(8)]
    labels = np.repeat(np.arange(8), n_per_class)
    W = rng.normal(size=(4, dim))
    features = (A[labels] @ W + 0.3 * rng.normal(size=(len(labels), dim))).T  # (dims, images)
    seen, unseen = np.arange(6), np.array([6, 7])
    idx = rng.permutation(len(labels))
    is_seen = np.isin(labels[idx], seen)
    seen_imgs, unseen_imgs = idx[is_seen], idx[~is_seen]
    test_seen, trainval = seen_imgs[: len(seen_imgs) // 5], seen_imgs[len(seen_imgs) // 5 :]
    train_classes, val_classes = np.arange(4), np.array([4, 5])
    folder = root / "zsl_gbu_att_splits" / "AWA2"
    folder.mkdir(parents=True)
    one = lambda a: (np.asarray(a) + 1).astype(np.uint16)[:, None]  # noqa: E731 - 1-based column, as released
    mat = dict(
        att=(A / np.linalg.norm(A, axis=1, keepdims=True)).T,
        original_att=100 * A.T,
        allclasses_names=np.array(names, dtype=object)[:, None],
        trainval_loc=one(trainval),
        test_seen_loc=one(test_seen),
        test_unseen_loc=one(unseen_imgs),
    )
    if val_loc:
        mat["train_loc"] = one(trainval[np.isin(labels[trainval], train_classes)])
        mat["val_loc"] = one(trainval[np.isin(labels[trainval], val_classes)])
    scipy.io.savemat(folder / "att_splits.mat", mat)
    scipy.io.savemat(folder / "res101.mat", dict(features=features, labels=(labels + 1)[:, None]))
    write = lambda name, rows: (folder / name).write_text("\n".join(names[i] for i in rows) + "\n")  # noqa: E731
    write("trainvalclasses.txt", seen)
    write("testclasses.txt", unseen)
    for k in (1, 2, 3):
        write(f"trainclasses{k}.txt", train_classes)
        write(f"valclasses{k}.txt", val_classes)
    return folder


def test_loader_returns_the_proposed_split(tmp_path):
    write_gbu(tmp_path)
    b = load_zsl_benchmark("awa2", data_dir=tmp_path)
    assert b.X_trainval.shape[1] == 16 and len(b.descriptions) == 8
    assert set(np.unique(b.y_trainval)) == set(range(6))
    assert set(np.unique(b.y_test_unseen)) == {6, 7}
    assert set(np.unique(b.y_val)) == {4, 5} and set(np.unique(b.y_train)) == {0, 1, 2, 3}
    # the features of each image are the file's column for that image
    m = scipy.io.loadmat(tmp_path / "zsl_gbu_att_splits/AWA2/res101.mat")
    loc = scipy.io.loadmat(tmp_path / "zsl_gbu_att_splits/AWA2/att_splits.mat")["test_unseen_loc"].ravel() - 1
    np.testing.assert_allclose(b.X_test_unseen, m["features"].T[loc], rtol=1e-6)


def test_loader_without_val_loc_uses_the_class_folds(tmp_path):
    write_gbu(tmp_path, val_loc=False)
    b = load_zsl_benchmark("awa2", data_dir=tmp_path)
    assert set(np.unique(b.y_val)) == {4, 5} and set(np.unique(b.y_train)) == {0, 1, 2, 3}


def test_missing_features_say_where_they_come_from(tmp_path):
    folder = write_gbu(tmp_path)
    (folder / "res101.mat").unlink()
    with pytest.raises(FileNotFoundError, match="res101.mat in their xlsa17 release"):
        load_zsl_benchmark("awa2", data_dir=tmp_path)


def test_features_of_another_data_set_are_refused(tmp_path):
    folder = write_gbu(tmp_path)
    scipy.io.savemat(folder / "res101.mat", dict(features=np.zeros((4, 10)), labels=np.ones((10, 1))))
    with pytest.raises(ValueError, match="belongs to another data set"):
        load_zsl_benchmark("awa2", data_dir=tmp_path)
    n = 8 * 40
    wrong = np.full((n, 1), 7)  # every image labelled with an unseen class
    scipy.io.savemat(folder / "res101.mat", dict(features=np.zeros((4, n)), labels=wrong))
    with pytest.raises(ValueError, match="trainval_loc carry classes"):
        load_zsl_benchmark("awa2", data_dir=tmp_path)


def test_benchmark_script_end_to_end(tmp_path, monkeypatch, capsys):
    folder = write_gbu(tmp_path)
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("xian", None)
    import xian

    assert (
        xian.main(
            [
                "--dataset",
                "awa2",
                "--features",
                str(folder / "res101.mat"),
                "--seeds",
                "1",
                "--rows",
                "ALE / SJE (bilinear, hardest-negative hinge)",
                "--epochs",
                "300",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ALE / SJE" in out and "Xian et al. (AWA2, ZSL)" in out
    row = next(line for line in out.splitlines() if line.startswith("| ALE"))
    zsl = float(row.split("|")[2].split("±")[0])
    assert zsl > 80  # two unseen classes: chance is 50
