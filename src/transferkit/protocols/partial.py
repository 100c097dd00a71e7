"""The finished runs of a killed benchmark, kept so that a rerun resumes, and checked when read back.

Each record is sealed with an HMAC-SHA256 under a key kept in the cache folder
(``$TRANSFERKIT_CACHE/records.key``, made on first use). A record edited by hand (a forged accuracy),
cut short or missing a field fails its check when read back: it is dropped with a warning on
stderr and run again, never put in a table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path

from transferkit.report import to_json, write_text_atomic

__all__ = ["load_partial", "save_partial"]

SEAL = "seal"


def _key_path() -> Path:
    from transferkit.datasets import cache_dir

    return cache_dir() / "records.key"


def _key() -> bytes:
    path = _key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created once, readable by its owner only; a concurrent creator wins and we read theirs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text().strip().encode()


def _seal(record: dict, key: bytes) -> str:
    body = json.dumps({k: v for k, v in record.items() if k != SEAL}, sort_keys=True, default=str)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def save_partial(path: Path, records: list[dict]) -> None:
    """Write ``records`` to ``path`` atomically, each sealed."""
    key = _key()
    sealed = [{**{k: v for k, v in r.items() if k != SEAL}, SEAL: _seal(r, key)} for r in records]
    write_text_atomic(path, to_json(sealed))


def load_partial(path: Path | None, required: tuple[str, ...], keep=lambda r: True) -> list[dict]:
    """The sealed records of ``path`` that pass their check, have every ``required`` field and ``keep``.

    A file that is not a JSON list is refused by name; a bad record is dropped with a warning, so
    that it is run again.
    """
    if path is None or not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not the JSON a benchmark writes ({err}); delete it to start afresh.") from None
    if not isinstance(records, list):
        raise ValueError(f"{path} holds {type(records).__name__}, not a list of run records; delete it.")
    key = _key()
    sealed = [isinstance(r, dict) and hmac.compare_digest(str(r.get(SEAL, "")), _seal(r, key)) for r in records]
    if len(records) > 1 and not any(sealed):  # one cause, one line: another key, not many forgeries
        print(
            f"transferkit: warning: {path}: none of its {len(records)} records passes its check under this "
            f"machine's key ({_key_path()}): written on another machine, the key changed, or every record was "
            "edited; all are run again.",
            file=sys.stderr,
        )
        return []
    out = []
    for i, (r, ok) in enumerate(zip(records, sealed, strict=True)):
        if not ok:
            why = "it was changed after it was written, or written elsewhere"
        elif missing := [k for k in required if k not in r]:
            why = f"it lacks {missing}"
        else:
            if keep(r):
                out.append({k: v for k, v in r.items() if k != SEAL})
            continue
        print(f"transferkit: warning: {path}: record {i + 1} is run again: {why}.", file=sys.stderr)
    return out
