"""Run records of a benchmark, saved atomically after every run so a killed run resumes where it stopped."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transferkit.report import to_json, write_text_atomic


class Records:
    """The records in ``path`` that were made with ``settings``; ``add`` saves at once (atomically)."""

    def __init__(self, path: Path, settings: dict):
        self.path, self.settings = Path(path), dict(settings)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.rows: list[dict] = saved.get("records", []) if saved.get("settings") == self.settings else []

    def has(self, key: dict) -> bool:
        return any(all(r.get(k) == v for k, v in key.items()) for r in self.rows)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.save()

    def ensure(self, key: dict, make, *args) -> dict | None:
        """The record ``make(*args)`` added unless one matching ``key`` exists (a resumed run); None when it did."""
        if self.has(key):
            return None
        self.add(make(*args))
        return self.rows[-1]

    def get(self, key: dict) -> dict | None:
        """The first record matching ``key`` (to extend it in place, then ``save``)."""
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def save(self) -> None:
        write_text_atomic(self.path, to_json({"settings": self.settings, "records": self.rows}))


def epochs_for(n: int, batch_size: int, steps: int) -> int:
    """Epochs that make about ``steps`` optimiser steps on ``n`` examples in batches of ``batch_size``."""
    per_epoch = max(1, n // min(batch_size, n))
    return max(1, math.ceil(steps / per_epoch))


def mean_table(rows: list[dict], by_row: tuple[str, list], by_column: tuple[str, list], name=str) -> list[dict]:
    """Mean ± std of ``accuracy`` over the rows that share a (row value, column value): a markdown-ready table.

    ``by_row = (key, values)`` gives one table row per value of ``key``; ``by_column`` one column per
    value of its key, headed ``name(value)``. A cell with no runs is left empty.
    """
    from transferkit.report import mean_std

    (row_key, row_values), (col_key, col_values) = by_row, by_column
    table = []
    for rv in row_values:
        line = {row_key: rv}
        for cv in col_values:
            accs = [r["accuracy"] for r in rows if r[row_key] == rv and r[col_key] == cv]
            line[name(cv)] = mean_std(accs) if accs else ""
        table.append(line)
    return table


def add_common_arguments(parser, steps: int) -> None:
    """The options every few-shot benchmark takes: draws, k values, steps per target network, output folder."""
    parser.add_argument("--draws", type=int, default=5, help="random draws of the k-shot target set")
    parser.add_argument("--ks", type=int, nargs="+", required=False, help="labelled target examples per class")
    parser.add_argument("--steps", type=int, default=steps, help="optimiser steps per target network")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
