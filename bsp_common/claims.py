"""Compute-once across processes and hosts that share a directory: claim files with an owner and a heartbeat.

A result that many workers may want (a pruning point, the dense teacher) is computed by the first worker
that creates its claim file (``open(O_CREAT | O_EXCL)``, atomic on local file systems and NFSv3+); the
others wait until the result appears. The owner touches the claim every ``heartbeat_s`` while it works,
so a claim whose owner died (``kill -9``, a lost host) expires: on the same host at once (its pid is gone),
elsewhere once the heartbeat is older than ``stale_s``. An expired claim is broken by renaming it away
(only one waiter wins the rename) and the winner computes the result itself.

>>> import tempfile, pathlib
>>> entry = pathlib.Path(tempfile.mkdtemp()) / "result.txt"
>>> compute_once(entry.with_suffix(".claim"), lambda: entry.is_file() and entry.read_text(),
...              lambda: entry.write_text("42"))
'42'
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

__all__ = ["claim_owner", "compute_once"]

T = TypeVar("T")

HEARTBEAT_S = 10.0  # the owner touches its claim this often
STALE_S = 60.0  # a claim not touched for this long (another host's) is expired


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}


def claim_owner(claim_path: str | Path) -> dict | None:
    """The owner recorded in a claim file (``host``, ``pid``, ``started``), or ``None`` if there is no claim."""
    try:
        return json.loads(Path(claim_path).read_text() or "{}")
    except (FileNotFoundError, json.JSONDecodeError):
        return None if not Path(claim_path).exists() else {}


def _try_claim(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(_owner(), handle)
    return True


def _expired(path: Path, stale_s: float) -> bool:
    """A claim whose owner is gone: a dead pid on this host, or no heartbeat for ``stale_s``."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not ours to break
    owner = claim_owner(path) or {}
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
        # a live pid may be a reused one, so the heartbeat still decides below
    # a claim written a moment ago may not hold its owner yet (empty): only the heartbeat's age decides then
    return age > stale_s


def _break(path: Path, stale_s: float) -> None:
    """Rename an expired claim away; only one of several waiters' renames succeeds."""
    aside = path.with_name(f"{path.name}.expired-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if not _expired(aside, stale_s):  # it was re-claimed between our check and the rename: give it back
        with suppress(FileExistsError):  # a third waiter claimed meanwhile; the displaced owner finds out at release
            os.link(aside, path)
    aside.unlink(missing_ok=True)


@contextmanager
def _heartbeat(path: Path, every_s: float):
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    thread = threading.Thread(target=beat, name=f"heartbeat {path.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def compute_once(claim_path: str | Path, done: Callable[[], T | None], compute: Callable[[], object], *,
                 poll_s: float = 1.0, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S,
                 on_wait: Callable[[dict], None] | None = None) -> T:  # fmt: skip
    """``done()`` once some process has run ``compute()`` (which must make ``done()`` true, atomically).

    ``done`` returns the result, or a false value while there is none. This process computes it if no
    live claim exists at ``claim_path``; otherwise it polls every ``poll_s`` until the result appears or the
    claim expires (then it claims and computes). ``on_wait(owner)`` is called once when it starts waiting.
    """
    claim_path = Path(claim_path)
    claim_path.parent.mkdir(parents=True, exist_ok=True)
    waiting = False
    while True:
        result = done()
        if result:
            return result
        if _try_claim(claim_path):
            try:
                with _heartbeat(claim_path, heartbeat_s):
                    result = done()  # finished between our check and our claim
                    if not result:
                        compute()
                        result = done()
            finally:
                claim_path.unlink(missing_ok=True)
            if not result:
                raise RuntimeError(f"compute_once: the computation did not produce its result ({claim_path})")
            return result
        if _expired(claim_path, stale_s):
            _break(claim_path, stale_s)
            continue
        if not waiting and on_wait is not None:
            on_wait(claim_owner(claim_path) or {})
        waiting = True
        time.sleep(poll_s)
