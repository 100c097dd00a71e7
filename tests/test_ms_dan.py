"""Multi-source DAN: each labelled source aligned with the target by its own multi-kernel MMD term."""

import json

import numpy as np
import pytest
import torch

from transferkit import DAN, Domain, MultiSourceDAN, load
from transferkit.datasets import make_blobs_shift
from transferkit.methods.ms_dan import MultiSourceAlignmentObjective
from transferkit.nn.divergences import mmd2


@pytest.fixture(scope="module")
def sources():
    a, b = make_blobs_shift(n_source=150, n_target=150, seed=0), make_blobs_shift(n_source=150, n_target=150, seed=1)
    return [a.source, Domain(b.source.X + 3.0, b.source.y, "far")], a.target, a.target_test


def _batch(s1, s2, target, n1=8, n2=6):
    return {
        "xs": torch.from_numpy(np.r_[s1.X[:n1], s2.X[:n2]]),
        "ys": torch.from_numpy(np.r_[s1.y[:n1], s2.y[:n2]]).long(),
        "ds": torch.tensor([0] * n1 + [1] * n2),
        "xt": torch.from_numpy(target.X[:10]),
    }


def test_the_alignment_term_is_the_mean_over_sources_of_each_sources_mmd_to_the_target(sources):
    (s1, s2), target, _ = sources
    model = MultiSourceDAN(epochs=1, seed=0).fit([s1, s2], target)
    objective = model.objective_.eval()
    assert isinstance(objective, MultiSourceAlignmentObjective) and model.sources_ == [s1.name, "far"]
    batch = _batch(s1, s2, target)
    out = objective(batch, 0.5)
    net, n = objective.net, len(batch["xs"])
    taps = objective.net.forward_taps(
        torch.cat([batch["xs"], batch["xt"]]), [t for t in objective.taps if t != "logits"]
    )
    by_hand = []
    for k in (0, 1):
        rows = batch["ds"] == k
        by_hand.append(
            sum(
                mmd2(taps[t][:n][rows].flatten(1), taps[t][n:].flatten(1), multipliers=tuple(model.kernel_multipliers))
                for t in objective.taps
            ).item()
        )
    assert out["discrepancy"].item() == pytest.approx(np.mean(by_hand), rel=1e-5)
    pooled = sum(mmd2(taps[t][:n].flatten(1), taps[t][n:].flatten(1)) for t in objective.taps).item()
    assert out["discrepancy"].item() != pytest.approx(pooled, rel=1e-3)  # not the pooled sources' MMD
    loss_y = torch.nn.functional.cross_entropy(net(batch["xs"]), batch["ys"]).item()
    assert out["loss"].item() == pytest.approx(loss_y + model.lambda_max * np.mean(by_hand), rel=1e-5)


def test_a_source_with_fewer_than_two_rows_in_the_batch_is_left_out_of_that_step(sources):
    (s1, s2), target, _ = sources
    objective = MultiSourceDAN(epochs=1, seed=0).fit([s1, s2], target).objective_.eval()
    one = objective(_batch(s1, s2, target, n1=8, n2=1), 0.5)
    alone = objective({**_batch(s1, s2, target, n1=8, n2=0)}, 0.5)
    assert one["discrepancy"].item() == pytest.approx(alone["discrepancy"].item(), rel=1e-6)


def test_multi_source_dan_fits_predicts_saves_and_runs_from_the_command_line(sources, tmp_path, capsys):
    (s1, s2), target, test = sources
    model = MultiSourceDAN(epochs=5, seed=0).fit([s1, s2], target)
    assert model.score(test) > 0.5 and model.get_params()["lambda_max"] == DAN().lambda_max
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m").predict(test.X), model.predict(test.X))
    with pytest.raises(ValueError, match=r"expected a list of two or more labelled Domains \(one source: DAN\)\.$"):
        MultiSourceDAN().fit(s1, target)

    from transferkit.cli import main

    paths = []
    for i, d in enumerate((s1, s2, test)):
        path = tmp_path / f"d{i}.csv"
        np.savetxt(path, np.c_[d.X, d.y], delimiter=",", header="a,b,label", comments="")
        paths.append(str(path))
    assert main(["run", "ms-dan", "--source", f"{paths[0]},{paths[1]}", "--target", paths[2], "-q", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "ms-dan" and record["sources"] == paths[:2]


def test_a_source_counts_from_two_rows_and_a_step_without_any_has_no_alignment_term(sources):
    (s1, s2), target, _ = sources
    model = MultiSourceDAN(epochs=1, seed=0, lambda_schedule="ganin").fit([s1, s2], target)
    objective = model.objective_.eval()
    assert objective.lambda_schedule == "ganin" and objective.trade_off(0.5) == pytest.approx(
        model.lambda_max * (2 / (1 + np.exp(-5.0)) - 1)
    )
    two = objective(_batch(s1, s2, target, n1=8, n2=2), 0.5)["discrepancy"].item()
    alone = objective(_batch(s1, s2, target, n1=8, n2=0), 0.5)["discrepancy"].item()
    assert two != pytest.approx(alone, rel=1e-3)  # two rows of the second source: its term counts
    first_skipped = objective(_batch(s1, s2, target, n1=1, n2=8), 0.5)["discrepancy"].item()
    second_only = objective(_batch(s1, s2, target, n1=0, n2=8), 0.5)["discrepancy"].item()
    # (float32 features of batches of other sizes: agreement to rounding, far inside the 1e-3 that tells terms apart)
    assert first_skipped == pytest.approx(second_only, rel=1e-4) and second_only != 0
    none = objective(_batch(s1, s2, target, n1=1, n2=1), 0.5)
    assert none["discrepancy"].item() == 0.0 and torch.isfinite(none["loss"])
