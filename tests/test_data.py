"""Domain/Task containers: input checks and paired batching."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from transferkit.data import Domain, PairedBatches, Task, check_array


def test_domain_converts_inputs():
    d = Domain([[1, 2], [3, 4]], [0, 1], "toy")
    assert d.X.dtype == np.float32 and d.X.flags.c_contiguous
    assert len(d) == 2 and d.labelled and d.feature_shape == (2,)
    assert Domain(sp.csr_matrix(np.eye(3))).X.shape == (3, 3)
    assert Domain(torch.ones(4, 2)).X.shape == (4, 2)
    assert not d.unlabelled().labelled
    assert len(d.subset(np.array([1]))) == 1
    assert "2 classes" in repr(d)


@pytest.mark.parametrize(
    "X,match",
    [
        (np.zeros((0, 3)), "empty"),
        (np.zeros(5), "at least 2 dimensions"),
        (np.array([[1.0, np.nan]]), "NaN or infinity in 1 of 1"),
        (np.array([[1.0, np.inf], [0, 0]]), "NaN or infinity"),
        (None, "is None"),
    ],
)
def test_bad_features_are_refused_with_the_argument_named(X, match):
    with pytest.raises(ValueError, match=match):
        check_array(X, "X")


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="has 2 labels but X has 3 samples"):
        Domain(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="expected a 1-D array"):
        Domain(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        Domain(np.zeros((2, 2)), [0.0, np.nan])
    with pytest.raises(TypeError, match="dtype"):
        check_array(np.array([["a", "b"]]), "X")


def test_task_checks_feature_spaces():
    with pytest.raises(ValueError, match="different feature shapes"):
        Task(Domain(np.zeros((3, 2)), [0, 1, 0]), Domain(np.zeros((3, 4))))


def test_paired_batches_cycle_the_smaller_domain():
    rng = np.random.default_rng(0)
    pb = PairedBatches(100, 30, 10, rng)
    pairs = list(pb)
    assert len(pairs) == len(pb) == 10
    src = np.concatenate([s for s, _ in pairs])
    assert sorted(src) == list(range(100)), "one epoch walks once through the larger domain"
    tgt = np.concatenate([t for _, t in pairs])
    assert set(tgt) == set(range(30)) and all(len(t) == 10 for _, t in pairs)


def test_paired_batches_batch_size_capped_and_deterministic():
    a = list(PairedBatches(5, 50, 64, np.random.default_rng(1)))
    b = list(PairedBatches(5, 50, 64, np.random.default_rng(1)))
    assert all(len(s) == 5 for s, _ in a)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="empty"):
        PairedBatches(0, 5, 4, np.random.default_rng(0))


def test_few_shot_draws_k_per_class_reproducibly_and_refuses_what_cannot_be_drawn():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [20, 7, 30])
    d = Domain(rng.standard_normal((len(y), 3)), y, "toy")
    shot = d.few_shot(5, seed=1)
    assert np.bincount(shot.y).tolist() == [5, 5, 5]
    rows = [np.flatnonzero((d.X == x).all(1))[0] for x in shot.X]
    assert np.array_equal(d.y[rows], shot.y) and rows == sorted(rows)  # real rows, original order
    assert np.array_equal(d.few_shot(5, seed=1).X, shot.X)
    assert not np.array_equal(d.few_shot(5, seed=2).X, shot.X)
    assert len(d.few_shot(7).y) == 21
    with pytest.raises(ValueError, match=r"k=8 .*class 1 of toy has only 7; expected k <= 7"):
        d.few_shot(8)
    with pytest.raises(ValueError, match="positive"):
        d.few_shot(0)
    with pytest.raises(ValueError, match="no labels"):
        d.unlabelled().few_shot(1)


def test_sparse_input_too_large_to_densify_is_refused_before_trying():
    import scipy.sparse

    from transferkit.data import check_array, memory_bytes

    have = memory_bytes()
    if have is None:
        pytest.skip("the system does not report its memory")
    n = int(have // 4 // 50_000) + 1  # rows enough for the dense copy to exceed all of memory
    X = scipy.sparse.csr_matrix((np.ones(3, np.float32), ([0, 1, n - 1], [0, 7, 49_999])), shape=(n, 50_000))
    with pytest.raises(ValueError, match=r"X is sparse, .* as a dense float32 array it would take .* GiB"):
        check_array(X, "X")
    small = scipy.sparse.random(20, 30, density=0.1, format="csr", random_state=0)
    assert check_array(small).shape == (20, 30)
