import os

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def blobs():
    """A small three-class problem whose target is the source rotated and translated."""
    from transferkit.datasets import make_blobs_shift

    return make_blobs_shift(n_classes=3, n_source=300, n_target=300, n_features=2, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
