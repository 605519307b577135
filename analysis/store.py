"""Append-only, crash-safe store of sweep results: one JSON line per finished point.

Each point is written with a single ``write`` of one line in append mode and fsynced, so a killed
sweep leaves at most one truncated last line, which :meth:`ResultStore.load` ignores. Points are
keyed by ``point_id``; loading keeps one record per id -- the first successful one, else the latest
failure -- so a point is never duplicated and a failed point is retried on the next run
(:meth:`ResultStore.done_ids` lists only successes). A stored line is untrusted input: one that is not a JSON
object with a ``point_id`` (a write cut short by a killed run, or an edit), nested too deeply, or whose
``numeric_fields`` are not finite non-negative numbers is reported with its line number and skipped, so its
point is evaluated again. A symbolic link in place of the store is refused. A store object reads the file
incrementally: lines it has read are not parsed again (each bad line is reported once), which keeps the
frequent reads of a sweep that shares its store with other processes cheap.
:meth:`ResultStore.export` writes the table to Parquet or CSV via a temporary file and a rename.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
from pathlib import Path

import pandas as pd

from bsp_common import strict_json
from bsp_common.outputs import write_bytes_atomic
from bsp_common.safe_yaml import short_repr

__all__ = ["ResultStore", "read_table", "write_table_atomic"]

log = logging.getLogger(__name__)


class ResultStore:
    """``numeric_fields``: record fields that must be finite numbers >= 0 (or null) for a line to be used."""

    def __init__(self, path: str | Path, numeric_fields: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.numeric_fields = numeric_fields
        self._reset()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _reset(self) -> None:
        self._offset = 0  # bytes of complete lines read so far
        self._lines = 0  # complete lines read so far
        self._by_id: dict[str, dict] = {}  # what those lines hold

    def _problem(self, record) -> str | None:
        """Why a parsed line cannot be used, or None."""
        if not isinstance(record, dict) or not isinstance(record.get("point_id"), str):
            return f"expected a JSON object with a 'point_id', got {short_repr(record)}"
        for field in self.numeric_fields:
            value = record.get(field)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and math.isfinite(value) and value >= 0):
                return f"{field} is {short_repr(value)}, not a finite number >= 0"
        return None

    def _parsed(self, line: str) -> tuple[dict | None, str | None]:
        """``(record, None)`` for a usable line, ``(None, why)`` for a bad one, ``(None, None)`` for a blank one."""
        if not line.strip():
            return None, None
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = line  # a line cut short by a kill mid-write, or not a record at all
        problem = self._problem(record)
        return (None, problem) if problem else (record, None)

    def records(self) -> list[dict]:
        if self.path.is_symlink():
            raise ValueError(f"results store {self.path}: is a symbolic link; bsp reads and writes only its own "
                             "files in a sweep directory (remove the link)")  # fmt: skip
        if not self.path.is_file():
            self._reset()
            return []
        with self.path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < self._offset:  # replaced by a shorter file: read it anew
                self._reset()
            handle.seek(self._offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        try:
            lines = data[:complete].decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError as err:
            raise ValueError(f"results store {self.path}: not UTF-8 text (byte {self._offset + err.start})") from None
        for line in lines:
            self._lines += 1
            record, problem = self._parsed(line)
            if problem:
                log.warning("results store %s:%d: skipped (%s); its point is evaluated again", self.path, self._lines,
                            problem)  # fmt: skip
            elif record is not None:
                _merge(self._by_id, record)
        self._offset += complete
        by_id = self._by_id
        try:  # a last line without its newline: used if sound, reported only once it is complete
            record, _ = self._parsed(data[complete:].decode("utf-8"))
        except UnicodeDecodeError:
            record = None
        if record is not None:
            by_id = dict(by_id)
            _merge(by_id, record)
        return list(by_id.values())

    def done_ids(self) -> set[str]:
        """Ids of successfully evaluated points (failed ones are evaluated again)."""
        return {r["point_id"] for r in self.records() if not _failed(r)}

    def failed_ids(self) -> set[str]:
        return {r["point_id"] for r in self.records() if _failed(r)}

    def append(self, record: dict) -> None:
        self.extend([record])

    def extend(self, records: list[dict]) -> None:
        """Append ``records`` with one write, under an exclusive lock: processes sharing the store interleave
        whole lines only. A symbolic link in place of the store is refused, not followed."""
        if not records:
            return
        data = "".join(strict_json.dumps(record) + "\n" for record in records).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ValueError(f"results store {self.path}: is a symbolic link; bsp writes only its own "
                                 "files in a sweep directory (remove the link)") from None  # fmt: skip
            raise
        with os.fdopen(fd, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            end = handle.seek(0, os.SEEK_END)
            if end and not self._ends_with_newline():
                data = b"\n" + data  # terminate a line left truncated by an earlier kill
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # closing releases the lock

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def load(self) -> pd.DataFrame:
        """The points as a table; numeric columns stored as ``null`` (NaN in JSON) come back as float NaN."""
        frame = pd.DataFrame(self.records())
        for column in frame.select_dtypes(include="object").columns:
            values = frame[column].dropna()
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        return frame

    def export(self, path: str | Path) -> Path:
        return write_table_atomic(self.load(), path)


def _failed(record: dict) -> bool:
    return record.get("error") is not None


def _merge(by_id: dict[str, dict], record: dict) -> None:
    """Keep one record per id: a success is final; a failure gives way to any later record."""
    earlier = by_id.get(record["point_id"])
    if earlier is None or _failed(earlier):
        by_id[record["point_id"]] = record


def write_table_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet (``.parquet``) or CSV (anything else), atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        data = _parquet_safe(frame).to_parquet(index=False)
    else:
        data = frame.to_csv(index=False).encode("utf-8")
    return write_bytes_atomic(path, data)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every object column that mixes strings and other values (e.g. a stored metric someone
    set to text) written as text: Parquet columns have one type, and a table is better than an ArrowTypeError."""
    mixed = [column for column in frame.select_dtypes(include="object").columns
             if len({type(v) for v in frame[column].dropna()}) > 1]  # fmt: skip
    if not mixed:
        return frame
    frame = frame.copy()
    for column in mixed:
        frame[column] = frame[column].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
    return frame


RESULTS_FILENAME = "sweep.parquet"  # the table bsp sweep writes in its output directory
SEARCH_FILENAME = "search.parquet"  # the table bsp search writes there
_TABLES_IN_OUTPUT_DIRS = (RESULTS_FILENAME, SEARCH_FILENAME)


def table_file(path: str | Path) -> Path:
    """``path``, or for a ``bsp sweep``/``bsp search`` output directory the table in it (``sweep.parquet`` or
    ``search.parquet``): the file whose directory relative paths in the table (``masks_path``) start from."""
    path = Path(path)
    if not path.is_dir():
        return path
    tables = [path / name for name in _TABLES_IN_OUTPUT_DIRS if (path / name).is_file()]
    if not tables:
        raise FileNotFoundError(f"results: {path} is a directory without a results table; give the table file "
                                f"(a bsp sweep or search directory holds {' or '.join(_TABLES_IN_OUTPUT_DIRS)})")
    if len(tables) > 1:  # a search run into a sweep's directory (it reuses the sweep's points) writes its own table
        raise ValueError(f"results: {path} holds {' and '.join(t.name for t in tables)}; give the one you mean, "
                         f"e.g. {tables[0]}")  # fmt: skip
    return tables[0]


def read_table(path: str | Path) -> pd.DataFrame:
    """A results table from ``.parquet`` or CSV, or from a ``bsp sweep``/``bsp search`` output directory (see
    :func:`table_file`); unreadable files get one error naming the file."""
    path = table_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"results: no file {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise ValueError(f"results: cannot read {path} as a table ({short_repr(str(err))[1:-1]})") from None
