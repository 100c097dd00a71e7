"""Result tables as Markdown and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["markdown_table", "mean_std", "to_json"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts), in ``columns`` order."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def mean_std(values: Sequence[float]) -> str:
    """``"0.8123 ± 0.0042"``: mean and sample standard deviation."""
    a = np.asarray(values, dtype=float)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.4f} ± {sd:.4f}"


def to_json(obj) -> str:
    """JSON with NumPy scalars and arrays converted to plain Python."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, tuple):
            return list(o)
        raise TypeError(f"cannot serialise {type(o).__name__}")

    return json.dumps(obj, default=default, sort_keys=False)


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader never sees half a file."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own: two writers of the same file never remove each other's half-written temp
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
