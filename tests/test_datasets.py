"""Tests of ``transferkit.datasets``: registry, loaders of the real data, errors, synthetic shifts.

Tests that need the real data skip when ``data_dir()`` (``$TRANSFERKIT_DATA``) lacks the folder;
CI points ``TRANSFERKIT_DATA`` at the shared data. Everything written goes to a temporary cache.
"""

from __future__ import annotations

import time
from importlib import resources

import numpy as np
import pytest

import transferkit.datasets as D
from transferkit.data import Domain, Task
from transferkit.datasets import _common, digits, fashion


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _module_cache(tmp_path_factory):
    """Never write to the user's cache: one temporary cache for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERKIT_CACHE", str(tmp_path_factory.mktemp("tk_cache")))
        yield


def _need(*folders: str):
    root = D.data_dir()
    missing = [f for f in folders if not (root / f).exists()]
    if missing:
        pytest.skip(f"data not available in {root}: {', '.join(missing)}")
    return root


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    """TRANSFERKIT_DATA pointed at an empty folder."""
    folder = tmp_path / "no_data"
    folder.mkdir()
    monkeypatch.setenv("TRANSFERKIT_DATA", str(folder))
    return folder


def _counts(y) -> list[int]:
    return np.bincount(y).tolist()


# --------------------------------------------------------------------------------------------
# Folders and registry
# --------------------------------------------------------------------------------------------
def test_data_and_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TRANSFERKIT_DATA", raising=False)
    monkeypatch.delenv("TRANSFERKIT_CACHE", raising=False)
    assert D.data_dir() == tmp_path / ".cache" / "transferkit" / "data"
    assert D.cache_dir() == tmp_path / ".cache" / "transferkit" / "cache"
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "c"))
    assert D.data_dir() == tmp_path / "d"
    assert D.cache_dir() == tmp_path / "c"
    assert D.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert not (tmp_path / "d").exists() and not (tmp_path / "c").exists()  # nothing created


EXPECTED_KEYS = (
    [f"amazon:{d}" for d in ("books", "dvd", "electronics", "kitchen")]
    + [f"amazon400:{d}" for d in ("books", "dvd", "electronics", "kitchen")]
    + ["digits:mnist", "digits:usps", "digits:mnistm", "digits16:mnist", "digits16:usps"]
    + ["demo:mnist", "demo:usps"]
    + [f"rotmnist:{a}" for a in range(0, 181, 15)]
    + ["fashion:mnist"]
    + [f"landmine:{i}" for i in range(1, 30)]
    + ["landmine:foliated", "landmine:desert"]
    + [f"school:{i}" for i in range(1, 140)]
    + [f"newsgroups:{n}" for n in ("comp-vs-sci-1", "comp-vs-sci-2", "rec-vs-talk-1", "rec-vs-talk-2")]
    + ["mushroom:enlarging", "mushroom:tapering"]
    + [f"zsl:{n}" for n in ("apy", "awa1", "awa2", "cub", "sun")]
    + [f"spoken:{lang}" for lang in ("en", "de", "fr", "es", "it", "nl", "zh")]
    + [f"spoken:en-speaker-{i}" for i in range(20, 25)]
    + ["spoken:en-child", "spoken:en-deep"]
)


def test_registry_lists_every_key_in_a_stable_order():
    infos = D.list_domains()
    keys = [i.key for i in infos]
    assert keys == EXPECTED_KEYS
    assert [i.key for i in D.list_domains()] == keys
    assert D.list_datasets() == list(dict.fromkeys(k.split(":")[0] for k in EXPECTED_KEYS))
    for info in infos:
        assert info.key == f"{info.dataset}:{info.domain}"
        assert D.parse_key(info.key) == (info.dataset, info.domain)
        assert info.kind in ("features", "images", "attributes")
        assert info.description and "\n" not in info.description and info.source
        assert info.embedded == (info.dataset == "demo")
        assert (info.n_classes is None) == (info.dataset == "school")
    with pytest.raises(AttributeError):
        infos[0].key = "x"  # frozen


def test_parse_key_normalises_case_and_spaces():
    assert D.parse_key(" Amazon:Books ") == ("amazon", "books")


@pytest.mark.parametrize(
    ("key", "fragments"),
    [
        ("amazon:book", ["unknown domain 'amazon:book'", "books, dvd, electronics, kitchen"]),
        ("amazn:books", ["unknown dataset 'amazn'", "amazon, amazon400, digits"]),
        ("school:0", ["known domains of 'school': 1..139"]),
        ("landmine:x", ["1..29, foliated, desert"]),
        ("amazon", ["malformed", "DATASET:DOMAIN"]),
        ("a:b:c", ["malformed"]),
        ("amazon:", ["malformed"]),
    ],
)
def test_bad_keys_raise_value_error_listing_known_names(key, fragments):
    with pytest.raises(ValueError) as err:
        D.load_domain(key)
    for fragment in fragments:
        assert fragment in str(err.value)
    with pytest.raises(ValueError):
        D.parse_key(key)


def test_non_string_key_is_a_type_error():
    with pytest.raises(TypeError):
        D.parse_key(3)


@pytest.mark.parametrize("split", ["valid", "TRAIN", "", None])
def test_bad_split_names_split(split):
    with pytest.raises(ValueError, match="split="):
        D.load_domain("demo:mnist", split)


def test_missing_data_raises_data_not_found(empty_data):
    with pytest.raises(D.DataNotFoundError) as err:
        D.load_domain("amazon:books")
    msg = str(err.value)
    assert "'amazon:books'" in msg
    assert str(empty_data / "amazon_reviews_dann" / "books_train.svmlight") in msg
    assert str(empty_data) in msg and "TRANSFERKIT_DATA" in msg and "amazon_reviews_dann/" in msg
    assert isinstance(err.value, FileNotFoundError)
    assert err.value.key == "amazon:books" and err.value.data_dir == empty_data
    with pytest.raises(D.DataNotFoundError, match="landmine_mtl"):
        D.load_landmine()
    with pytest.raises(D.DataNotFoundError, match="malsar_mtl"):
        D.load_school()
    with pytest.raises(D.DataNotFoundError, match="bsds500_train_images"):
        D.load_domain("digits:mnistm")


def test_missing_fashion_mentions_the_debian_package(empty_data, monkeypatch, tmp_path):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "not_installed")
    assert not D.list_domains()[EXPECTED_KEYS.index("fashion:mnist")].present()
    with pytest.raises(D.DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        D.load_domain("fashion:mnist")


def test_presence_with_an_empty_data_dir(empty_data):
    present = {i.key for i in D.list_domains() if i.present()}
    assert {"demo:mnist", "demo:usps"} <= present
    assert not present & {"amazon:books", "digits:mnist", "digits:mnistm", "school:1", "zsl:cub"}
    info = D.list_domains()[0]
    assert not info.present(empty_data)


def test_zsl_domains_refuse_load_domain():
    with pytest.raises(ValueError, match=r"res101\.mat.*load_zsl_attributes"):
        D.load_domain("zsl:awa2")
    with pytest.raises(ValueError, match="load_zsl_attributes"):
        D.load_task("zsl:awa1", "zsl:awa2")
    with pytest.raises(ValueError, match="apy, awa1, awa2, cub, sun"):
        D.load_zsl_attributes("awa3")


# --------------------------------------------------------------------------------------------
# Embedded demo data
# --------------------------------------------------------------------------------------------
def test_demo_loads_without_any_data(empty_data):
    sizes = {"mnist": (1333, 667, 2000), "usps": (1202, 598, 1800)}
    for which, (n_train, n_test, n_all) in sizes.items():
        tr, te, al = (D.load_domain(f"demo:{which}", s) for s in ("train", "test", "all"))
        assert (len(tr), len(te), len(al)) == (n_train, n_test, n_all)
        assert tr.name == f"demo:{which}" and tr.X.shape[1:] == (1, 16, 16) and tr.X.dtype == np.float32
        assert tr.y.dtype == np.int64 and set(np.unique(al.y)) == set(range(10))
        assert al.X.min() >= 0.0 and al.X.max() <= 1.0
        # the split is a stratified partition of "all"
        assert np.array_equal(np.bincount(tr.y) + np.bincount(te.y), np.bincount(al.y))
        assert np.allclose(np.bincount(te.y) / np.bincount(al.y), 1 / 3, atol=0.02)
    task = D.load_task("demo:mnist", "demo:usps")
    assert task.target.y is None and task.target_test.y is not None


def test_embedded_file_is_small_and_equals_digits16():
    path = resources.files("transferkit.datasets") / "_embedded" / "digits16.npz"
    assert path.read_bytes()[:2] == b"PK" and len(path.read_bytes()) < 1_000_000
    _need("mnist_usps_jda")
    for which in ("mnist", "usps"):
        for split in ("train", "test"):
            demo, full = D.load_domain(f"demo:{which}", split), D.load_domain(f"digits16:{which}", split)
            assert np.array_equal(demo.y, full.y)
            assert np.abs(demo.X - full.X).max() <= 0.5 / 255 + 1e-6


# --------------------------------------------------------------------------------------------
# Real data: shapes, dtypes, label counts from each SOURCE.md
# --------------------------------------------------------------------------------------------
def test_amazon():
    _need("amazon_reviews_dann")
    books = D.load_domain("amazon:books")
    assert books.X.shape == (2000, 5000) and books.X.dtype == np.float32 and books.name == "amazon:books"
    assert books.y.dtype == np.int64 and _counts(books.y) == [1000, 1000]
    assert books.X.min() == 0 and np.array_equal(books.X, np.round(books.X))  # raw counts
    test = D.load_domain("amazon:books", "test")
    assert test.X.shape == (4465, 5000) and _counts(test.y) == [2201, 2264]
    assert len(D.load_domain("amazon:books", "all")) == 6465
    assert len(D.load_domain("amazon:kitchen", "test")) == 5945


def test_amazon400_has_no_split():
    _need("amazon_reviews_400")
    elec = {s: D.load_domain("amazon400:electronics", s) for s in ("train", "test", "all")}
    assert elec["train"].X.shape == (1998, 400) and _counts(elec["train"].y) == [1000, 998]
    assert np.array_equal(elec["train"].X, elec["test"].X) and np.array_equal(elec["all"].y, elec["test"].y)
    assert np.allclose(elec["all"].X.sum(1), 1, atol=1e-4)


def test_mnist_and_usps():
    _need("mnist_small", "usps")
    mnist, mnist_test = D.load_domain("digits:mnist"), D.load_domain("digits:mnist", "test")
    assert mnist.X.shape == (10000, 1, 28, 28) and mnist.X.dtype == np.float32
    assert _counts(mnist.y) == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert _counts(mnist_test.y) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert len(np.unique(mnist.y[:100])) == 10  # not grouped by digit
    assert mnist.X.min() == 0 and mnist.X.max() == 1
    usps = D.load_domain("digits:usps")
    assert usps.X.shape == (7291, 1, 16, 16) and len(D.load_domain("digits:usps", "test")) == 2007
    assert len(D.load_domain("digits:usps", "all")) == 9298 and usps.y.max() == 9


def test_digits16():
    _need("mnist_usps_jda")
    m, u = D.load_domain("digits16:mnist", "all"), D.load_domain("digits16:usps", "all")
    assert m.X.shape == (2000, 1, 16, 16) and u.X.shape == (1800, 1, 16, 16)
    assert _counts(u.y) == [352, 241, 165, 166, 166, 126, 139, 172, 129, 144]
    n_train, n_test = (len(D.load_domain("digits16:mnist", s)) for s in ("train", "test"))
    assert (n_train, n_test) == (1333, 667)


def test_fashion_mnist():
    if not D.list_domains()[EXPECTED_KEYS.index("fashion:mnist")].present():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    test = D.load_domain("fashion:mnist", "test")
    assert test.X.shape == (10000, 1, 28, 28) and _counts(test.y) == [1000] * 10
    assert len(D.load_domain("fashion:mnist", "train")) == 60000


def test_landmine():
    _need("landmine_mtl")
    sizes = [690, 690, 689, 508, 509, 509, 510, 511, 508, 509, 689, 688, 508, 510, 507]
    sizes += [445, 449, 448, 449, 449, 451, 454, 447, 449, 445, 448, 448, 454, 449]
    tasks = D.load_landmine()
    assert [len(t) for t in tasks] == sizes
    assert [t.name for t in tasks] == [f"landmine:{i}" for i in range(1, 30)]
    assert sum(int(t.y.sum()) for t in tasks) == 904 and tasks[0].X.shape[1] == 9
    tr, te = D.load_domain("landmine:3", "train"), D.load_domain("landmine:3", "test")
    assert len(tr) + len(te) == 689 and abs(len(te) - 689 / 3) <= 2
    assert abs(te.y.mean() - tasks[2].y.mean()) < 0.02  # stratified
    foliated = D.load_domain("landmine:foliated", "all")
    assert len(foliated) == sum(sizes[:15])
    assert len(D.load_domain("landmine:desert", "all")) == sum(sizes[15:])
    pooled_train = D.load_domain("landmine:foliated", "train")
    assert len(pooled_train) == sum(len(D.load_domain(f"landmine:{i}")) for i in range(1, 16))


def test_school():
    _need("malsar_mtl")
    tasks = D.load_school()
    assert len(tasks) == 139 and sum(len(t) for t in tasks) == 15362
    assert all(t.X.shape[1] == 28 and t.X.dtype == np.float32 and t.y.dtype == np.float64 for t in tasks)
    y = np.concatenate([t.y for t in tasks])
    assert y.min() == 1 and y.max() == 70
    tr, te = D.load_domain("school:1", "train"), D.load_domain("school:1", "test")
    assert (len(tr), len(te)) == (150, 50) and tr.y.dtype == np.float64


def test_newsgroups():
    _need("malsar_mtl")
    sizes = {"comp-vs-sci-1": [967, 908], "comp-vs-sci-2": [871, 956], "rec-vs-talk-2": [860, 685]}
    for name, counts in sizes.items():
        d = D.load_domain(f"newsgroups:{name}", "all")
        assert d.X.shape == (sum(counts), 2000) and _counts(d.y) == counts
        assert len(D.load_domain(f"newsgroups:{name}", "test")) == pytest.approx(sum(counts) / 3, abs=2)


def test_mushroom():
    _need("uci_mushroom")
    enl, tap = D.load_domain("mushroom:enlarging", "all"), D.load_domain("mushroom:tapering", "all")
    assert _counts(enl.y) == [1616, 1900] and _counts(tap.y) == [2592, 2016]
    assert enl.X.shape[1] == tap.X.shape[1]
    assert np.all(enl.X.sum(1) == 21) and np.all(tap.X.sum(1) == 21)  # 22 attributes minus stalk shape
    task = D.load_task("mushroom:enlarging", "mushroom:tapering")
    assert len(task.source) == round(3516 * 2 / 3) and task.target.y is None


ZSL = {  # classes, attr dim, seen, unseen, trainval, test_seen, test_unseen, images
    "apy": (32, 64, 20, 12, 5932, 1483, 7924, 15339),
    "awa1": (50, 85, 40, 10, 19832, 4958, 5685, 30475),
    "awa2": (50, 85, 40, 10, 23527, 5882, 7913, 37322),
    "cub": (200, 312, 150, 50, 7057, 1764, 2967, 11788),
    "sun": (717, 102, 645, 72, 10320, 2580, 1440, 14340),
}


@pytest.mark.parametrize("name", list(ZSL))
def test_zsl_attributes(name):
    _need("zsl_gbu_att_splits")
    n_cls, dim, n_seen, n_unseen, n_tv, n_ts, n_tu, n_img = ZSL[name]
    z = D.load_zsl_attributes(name.upper())
    assert z.name == name and z.attributes.shape == (n_cls, dim) and z.attributes.dtype == np.float32
    assert np.allclose(np.linalg.norm(z.attributes, axis=1), 1, atol=1e-4)
    assert len(z.class_names) == n_cls and z.original_attributes.shape == (n_cls, dim)
    assert (len(z.seen_classes), len(z.unseen_classes)) == (n_seen, n_unseen)
    assert not set(z.seen_classes) & set(z.unseen_classes)
    assert sorted([*z.seen_classes, *z.unseen_classes]) == list(range(n_cls))
    for train, val in zip(z.train_classes, z.val_classes, strict=True):
        assert sorted([*train, *val]) == sorted(z.seen_classes)
    assert (len(z.trainval_loc), len(z.test_seen_loc), len(z.test_unseen_loc)) == (n_tv, n_ts, n_tu)
    locs = np.concatenate([z.trainval_loc, z.test_seen_loc, z.test_unseen_loc])
    assert locs.min() == 0 and locs.max() == n_img - 1
    if name in ("awa1", "awa2"):
        assert len(z.attribute_names) == 85 and z.train_loc is not None


# --------------------------------------------------------------------------------------------
# MNIST-M
# --------------------------------------------------------------------------------------------
def test_build_mnistm_recipe_on_tiny_arrays():
    rng = np.random.default_rng(1)
    digit = rng.integers(0, 256, (5, 2, 2), dtype=np.uint8)
    backgrounds = [rng.integers(0, 256, (2, 2, 3), dtype=np.uint8) for _ in range(3)]
    out = D.build_mnistm(digit, backgrounds, seed=0)
    assert out.shape == (5, 3, 2, 2) and out.dtype == np.uint8
    for i in range(5):  # the crop is the whole background: out = |bg - digit| for one of them
        expected = [np.abs(bg.astype(int) - digit[i, :, :, None]).transpose(2, 0, 1) for bg in backgrounds]
        assert any(np.array_equal(out[i], e) for e in expected)
    flat = np.full((7, 9, 3), 200, dtype=np.uint8)  # a uniform photo: any crop gives |200 - digit|
    out = D.build_mnistm(digit, [flat], seed=3)
    assert np.array_equal(out, np.abs(200 - digit.astype(int))[:, None].repeat(3, 1))


def test_build_mnistm_is_deterministic_and_checks_inputs():
    rng = np.random.default_rng(2)
    digit = rng.integers(0, 256, (50, 4, 4), dtype=np.uint8)
    backgrounds = [rng.integers(0, 256, (9, 11, 3), dtype=np.uint8) for _ in range(4)]
    a, b = D.build_mnistm(digit, backgrounds, 7), D.build_mnistm(digit, backgrounds, 7)
    assert np.array_equal(a, b) and not np.array_equal(a, D.build_mnistm(digit, backgrounds, 8))
    with pytest.raises(ValueError, match="uint8"):
        D.build_mnistm(digit.astype(float), backgrounds, 0)
    with pytest.raises(ValueError, match="backgrounds"):
        D.build_mnistm(digit, [np.zeros((3, 3, 3), np.uint8)], 0)
    with pytest.raises(ValueError, match="empty"):
        D.build_mnistm(digit, [], 0)


def test_mnistm_is_built_fast_cached_and_reused(tmp_path, monkeypatch):
    root = _need("mnist_small", "bsds500_train_images")
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    start = time.perf_counter()
    m = D.load_domain("digits:mnistm")
    assert time.perf_counter() - start < 30
    assert m.X.shape == (10000, 3, 28, 28) and m.X.dtype == np.float32 and m.name == "digits:mnistm"
    assert np.array_equal(m.y, D.load_domain("digits:mnist").y)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.startswith("mnistm_v1_") and f.endswith(".npz") for f in files)
    assert any("train_seed0" in f for f in files) and any("test_seed1" in f for f in files)
    # the cached images are exactly the recipe applied to the (shuffled) MNIST train digits, seed 0
    mnist = D.load_domain("digits:mnist")
    digits_uint8 = np.round(mnist.X[:, 0] * 255).astype(np.uint8)
    rebuilt = D.build_mnistm(digits_uint8, digits._read_backgrounds(root), seed=0)
    assert np.array_equal(np.round(m.X * 255).astype(np.uint8), rebuilt)
    # reused: a second load (fresh in-memory caches) must not rebuild
    monkeypatch.setattr(digits, "build_mnistm", lambda *a: pytest.fail("MNIST-M rebuilt"))
    _common.read_npz.cache_clear()
    again = D.load_domain("digits:mnistm")
    assert np.array_equal(again.X, m.X)


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------
def test_load_task_harmonises_mnist_and_mnistm():
    _need("mnist_small", "bsds500_train_images")
    task = D.load_task("digits:mnist", "digits:mnistm", n_source=500, n_target=300)
    assert isinstance(task, Task) and task.name == "digits:mnist->digits:mnistm"
    assert task.source.feature_shape == task.target.feature_shape == (3, 28, 28)
    assert np.array_equal(task.source.X[:, 0], task.source.X[:, 2])  # grey repeated
    assert (len(task.source), len(task.target), len(task.target_test)) == (500, 300, 10000)
    assert task.target.y is None and task.target_test.y is not None and task.source.y is not None
    assert np.abs(np.bincount(task.source.y, minlength=10) - 50).max() <= 7  # stratified
    same = D.load_task("digits:mnist", "digits:mnistm", n_source=500, n_target=300)
    assert np.array_equal(same.source.X, task.source.X)


def test_load_task_harmonises_usps_and_mnist():
    _need("mnist_small", "usps")
    task = D.load_task("digits:usps", "digits:mnist")
    assert task.source.X.shape == (7291, 1, 28, 28) and task.target.X.shape == (10000, 1, 28, 28)
    assert task.source.X.min() >= 0 and task.source.X.max() <= 1
    back = D.load_task("digits:mnist", "digits:usps", n_target=100)
    assert back.target.X.shape == (100, 1, 28, 28) and back.target_test.X.shape == (2007, 1, 28, 28)


def test_harmonise_images_resizes_bilinear_and_repeats_channels():
    import torch

    a = Domain(np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32), np.arange(4), "a")
    b = Domain(np.zeros((2, 3, 28, 28), np.float32), None, "b")
    ha, hb = D.harmonise_images(a, b)
    assert ha.X.shape == (4, 3, 28, 28) and hb is b and np.array_equal(ha.y, a.y)
    expected = torch.nn.functional.interpolate(torch.from_numpy(a.X), size=(28, 28), mode="bilinear")
    assert np.allclose(ha.X[:, 1:2], expected.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="channel"):
        D.harmonise_images(Domain(np.zeros((1, 2, 4, 4)), None), b)


def test_load_task_rejects_feature_spaces_of_different_dimension():
    _need("amazon_reviews_dann", "amazon_reviews_400")
    with pytest.raises(ValueError, match="different feature shapes"):
        D.load_task("amazon:books", "amazon400:kitchen")


def test_load_task_subsampling(empty_data):
    task = D.load_task("demo:usps", "demo:mnist", n_source=200, n_target=100, seed=3)
    assert (len(task.source), len(task.target)) == (200, 100)
    other = D.load_task("demo:usps", "demo:mnist", n_source=200, n_target=100, seed=4)
    assert not np.array_equal(task.source.X, other.source.X)
    full = D.load_domain("demo:usps")
    expected = np.bincount(full.y) / len(full) * 200
    assert np.abs(np.bincount(task.source.y) - expected).max() < 1  # stratified
    for bad in (0, 10**6, 2.5, True):
        with pytest.raises(ValueError, match="n_source"):
            D.load_task("demo:usps", "demo:mnist", n_source=bad)


def test_loaded_arrays_are_fresh_copies(empty_data):
    a = D.load_domain("demo:mnist")
    a.X[:] = -1
    a.y[:] = -1
    b = D.load_domain("demo:mnist")
    assert b.X.min() >= 0 and b.y.min() >= 0


# --------------------------------------------------------------------------------------------
# Synthetic shifts
# --------------------------------------------------------------------------------------------
GENERATORS = [D.make_covariate_shift, D.make_label_shift, D.make_concept_shift, D.make_blobs_shift]


@pytest.mark.parametrize("make", GENERATORS)
def test_synthetic_tasks_are_seeded_tasks(make):
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    assert isinstance(a, Task) and a.target.y is None and a.source.y is not None
    assert a.target_test is not None and a.target_test.y is not None
    for da, db in ((a.source, b.source), (a.target, b.target), (a.target_test, b.target_test)):
        assert np.array_equal(da.X, db.X)
    assert np.array_equal(a.source.y, b.source.y)
    assert not np.array_equal(a.source.X, c.source.X)
    assert a.source.X.dtype == np.float32 and a.source.y.dtype == np.int64
    small = make(n_source=30, n_target=20, n_features=3, n_test=10)
    assert (len(small.source), len(small.target), len(small.target_test)) == (30, 20, 10)
    assert small.source.feature_shape == (3,)
    with pytest.raises(ValueError, match="n_source"):
        make(n_source=0)


def test_covariate_shift_moves_inputs_but_keeps_the_rule():
    task = D.make_covariate_shift(n_source=2000, n_target=2000, shift=2.0, seed=1)
    from transferkit.datasets.synthetic import covariate_rule

    assert np.array_equal(covariate_rule(task.source.X), task.source.y)
    assert np.array_equal(covariate_rule(task.target_test.X), task.target_test.y)
    diff = task.target.X.mean(0) - task.source.X.mean(0)
    assert diff[0] == pytest.approx(2.0, abs=0.15) and abs(diff[1]) < 0.15


def test_label_shift_changes_priors_not_class_conditionals():
    task = D.make_label_shift(n_source=4000, n_target=4000, n_classes=3, seed=1)
    ps, pt = np.bincount(task.source.y) / 4000, np.bincount(task.target_test.y) / 4000
    assert np.allclose(ps, 1 / 3, atol=1e-3) and pt[0] > 0.7 and np.abs(ps - pt).max() > 0.3
    for k in range(3):
        mu_s = task.source.X[task.source.y == k].mean(0)
        mu_t = task.target_test.X[task.target_test.y == k].mean(0)
        assert np.abs(mu_s - mu_t).max() < 0.3
    custom = D.make_label_shift(n_source=100, source_prior=[0.2, 0.8], target_prior=[0.5, 0.5])
    assert _counts(custom.source.y) == [20, 80]
    with pytest.raises(ValueError, match="target_prior"):
        D.make_label_shift(target_prior=[0.5, 0.6])


def test_concept_shift_keeps_inputs_and_turns_the_boundary():
    task = D.make_concept_shift(n_source=4000, n_target=4000, angle=60.0, seed=1)
    assert np.abs(task.source.X.mean(0) - task.target.X.mean(0)).max() < 0.1
    assert np.allclose(np.cov(task.source.X.T), np.cov(task.target.X.T), atol=0.1)
    X, y_t = task.target_test.X, task.target_test.y
    y_source_rule = (X[:, 0] > 0).astype(np.int64)  # the source concept applied to target inputs
    assert np.mean(y_source_rule != y_t) == pytest.approx(60 / 180, abs=0.03)
    assert np.array_equal(task.source.y, (task.source.X[:, 0] > 0).astype(np.int64))


def test_blobs_shift_source_only_degrades_and_alignment_helps():
    task = D.make_blobs_shift(n_classes=3, seed=0)
    Xs, ys = task.source.X, task.source.y
    centres = np.stack([Xs[ys == k].mean(0) for k in range(3)])

    def nearest_centre_accuracy(X, y, shift_by):
        d = ((X[:, None] - shift_by - centres[None]) ** 2).sum(-1)
        return np.mean(d.argmin(1) == y)

    assert nearest_centre_accuracy(Xs, ys, 0) > 0.98
    source_only = nearest_centre_accuracy(task.target_test.X, task.target_test.y, 0)
    offset = task.target.X.mean(0) - Xs.mean(0)  # align by centring: uses unlabelled target only
    centred = nearest_centre_accuracy(task.target_test.X, task.target_test.y, offset)
    assert source_only < 0.85 and centred > source_only + 0.1
    assert _counts(task.source.y) == _counts(task.target_test.y)  # p(y) fixed


def test_a_truncated_mnistm_cache_is_removed_to_be_rebuilt(tmp_path):
    from transferkit.datasets.digits import _cache_readable

    path = tmp_path / "mnistm.npz"
    np.savez(path, images=np.zeros((5, 3, 28, 28), np.uint8), labels=np.arange(5))
    assert _cache_readable(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert not _cache_readable(path) and not path.exists()  # gone, so the next load builds it again
