"""Training on a CUDA GPU: data kept on the device, the same fits as on the CPU, bfloat16 autocast.

Every test but the first needs a CUDA device and is skipped, with that reason, where there is none
(CI has no GPU).
"""

import numpy as np
import pytest
import scipy.sparse
import torch

from transferkit import DANN
from transferkit.datasets.synthetic import make_blobs_shift
from transferkit.train import loop

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")


def test_an_array_stays_on_the_gpu_only_within_its_share_of_free_memory(monkeypatch):
    free = 4 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 8 << 30))
    device = torch.device("cuda", 0)
    assert loop._fits_on(device, int(loop.DEVICE_DATA_SHARE * free))
    assert not loop._fits_on(device, int(loop.DEVICE_DATA_SHARE * free) + 1)


def _task():
    return make_blobs_shift(n_classes=3, n_source=400, n_target=400, n_features=8, n_test=800, seed=4)


@needs_cuda
def test_dense_training_data_stays_on_the_gpu_and_batches_are_gathered_there():
    X = np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32)
    rows = loop._Rows(X, device=torch.device("cuda"))
    assert rows.data.device.type == "cuda"
    batch = rows.take(np.array([3, 1, 4]), torch.device("cuda"))
    assert batch.device.type == "cuda"
    np.testing.assert_array_equal(batch.cpu().numpy(), X[[3, 1, 4]])


@needs_cuda
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_dann_on_the_gpu_fits_as_on_the_cpu(precision):
    task = _task()
    cpu = DANN(epochs=5, batch_size=32, device="cpu", seed=0).fit(task.source, task.target)
    gpu = DANN(epochs=5, batch_size=32, device="cuda", precision=precision, seed=0).fit(task.source, task.target)
    assert next(gpu.model_.parameters()).device.type == "cuda"
    assert gpu.score(task.target_test) == pytest.approx(cpu.score(task.target_test), abs=0.05)


@needs_cuda
def test_sparse_inputs_train_on_the_gpu():
    task = _task()
    sparse = [type(d)(scipy.sparse.csr_matrix(np.maximum(d.X, 0)), d.y, d.name) for d in (task.source, task.target)]
    model = DANN(epochs=3, batch_size=32, device="cuda", seed=0).fit(*sparse)
    assert model.predict(scipy.sparse.csr_matrix(np.maximum(task.target_test.X, 0))).shape == (800,)
