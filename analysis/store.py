"""Append-only, crash-safe store of sweep results: one JSON line per finished point.

Each point is written with a single ``write`` of one line in append mode and fsynced, so a killed
sweep leaves at most one truncated last line, which :meth:`ResultStore.load` ignores. Points are
keyed by ``point_id``; loading keeps the first record of an id, so a point is never duplicated.
:meth:`ResultStore.export` writes the table to Parquet or CSV via a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["ResultStore", "write_table_atomic"]


class ResultStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def records(self) -> list[dict]:
        if not self.path.is_file():
            return []
        records, seen = [], set()
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill mid-write
            if record.get("point_id") not in seen:
                seen.add(record.get("point_id"))
                records.append(record)
        return records

    def done_ids(self) -> set[str]:
        return {r["point_id"] for r in self.records()}

    def append(self, record: dict) -> None:
        line = json.dumps(record, default=_json_default) + "\n"
        with self.path.open("a") as handle:
            if handle.tell() and not self._ends_with_newline():
                line = "\n" + line  # terminate a line left truncated by an earlier kill
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def load(self) -> pd.DataFrame:
        return pd.DataFrame(self.records())

    def export(self, path: str | Path) -> Path:
        return write_table_atomic(self.load(), path)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_table_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet (``.parquet``) or CSV (anything else), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
