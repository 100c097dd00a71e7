"""Run records of a benchmark, saved atomically after every run so a killed run resumes where it stopped."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transferkit.report import to_json


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
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(to_json({"settings": self.settings, "records": self.rows}))
        tmp.replace(self.path)


def epochs_for(n: int, batch_size: int, steps: int) -> int:
    """Epochs that make about ``steps`` optimiser steps on ``n`` examples in batches of ``batch_size``."""
    per_epoch = max(1, n // min(batch_size, n))
    return max(1, math.ceil(steps / per_epoch))
