"""Real-data smoke runs of the benchmark protocols (marked slow: `make bench` / `pytest -m slow`)."""

import pytest

from transferkit.datasets import parse_key
from transferkit.datasets._registry import domain_info
from transferkit.protocols.bench import BENCHMARKS, run_benchmark

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_quick_run_beats_chance(name, tmp_path, capsys):
    bench = BENCHMARKS[name]
    for key in bench.pairs[0]:
        parse_key(key)
        if not domain_info(key).present():
            pytest.skip(f"{key} not present in the data directory")
    records = run_benchmark(name, quick=True, out=str(tmp_path))
    assert (tmp_path / f"{name}.md").exists()
    assert len(records) == len(bench.methods)
    n_classes = domain_info(bench.pairs[0][1]).n_classes
    for r in records:
        assert r["target_accuracy"] > 1.0 / n_classes, r
