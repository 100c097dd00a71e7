"""The thread policy: one thread for a small training step, the caller's setting for a large one, restored."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit import DANN, Domain
from transferkit.train.threads import choose_threads, step_macs, thread_budget


def test_step_macs_counts_linear_and_convolution_multiply_adds():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    macs = step_macs(net, lambda: net(torch.zeros(2, 1, 8, 8)))
    assert macs == 2 * (4 * 6 * 6 * 9) + 2 * (144 * 10)  # conv: outputs x kernel; linear: outputs x inputs


def test_small_steps_take_one_thread_and_large_ones_keep_the_setting():
    with thread_budget(2):
        assert choose_threads(10_000) == 1
        assert choose_threads(10**12) == 2
        assert choose_threads(10**12, requested=1) == 1


def test_the_callers_setting_is_restored_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with thread_budget(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_a_small_fit_trains_on_one_thread_and_gives_the_caller_its_setting_back(monkeypatch):
    seen = []
    original = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.append(n) or original(n))
    rng = np.random.default_rng(0)
    source, target = (
        Domain(rng.normal(size=(64, 5)).astype(np.float32), np.arange(64) % 2),
        Domain(rng.normal(size=(64, 5)).astype(np.float32)),
    )
    with thread_budget(2):
        seen.clear()
        DANN(epochs=1, batch_size=16).fit(source, target)
        assert seen == [1, 1, 2] and torch.get_num_threads() == 2  # counted on one, kept one, restored
        seen.clear()
        DANN(epochs=1, batch_size=16, n_threads=2).fit(source, target)
        assert seen == [2, 2]
    a = DANN(epochs=2, seed=0).fit(source, target).predict_proba(target.X)
    b = DANN(epochs=2, seed=0, n_threads=1).fit(source, target).predict_proba(target.X)
    np.testing.assert_array_equal(a, b)  # the probe step touches neither the weights nor the random state
