"""Compute-once across processes and hosts that share a directory: claim files with an owner and a heartbeat.

A result that many workers may want (a pruning point, the dense teacher) is computed by the first worker
that creates its claim file (``open(O_CREAT | O_EXCL)``, atomic on local file systems and NFSv3+); the
others wait until the result appears. The owner touches the claim every ``heartbeat_s`` while it works,
so a claim whose owner died (``kill -9``, a lost host) expires: on the same host at once (its pid is gone),
elsewhere once the waiter has seen no heartbeat for ``stale_s`` of its own clock (so a claim stamped in the
future -- another host's clock, or a forgery -- expires too). A claim is untrusted input: one that is not a
JSON object with a string ``host``, an integer ``pid`` and a numeric ``started`` has no owner to wait for
and expires on the heartbeat rule alone; a directory in its place is refused. An expired claim is broken by
renaming it away (only one waiter wins the rename) and the winner computes the result itself.

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

__all__ = ["ClaimSet", "claim_owner", "compute_once", "describe_owner"]

T = TypeVar("T")

HEARTBEAT_S = 10.0  # the owner touches its claim this often
STALE_S = 60.0  # a claim not touched for this long (another host's) is expired


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}


_OWNER_FIELDS = {"host": str, "pid": int, "started": (int, float)}
MAX_CLAIM_BYTES = 4096  # an owner record is ~80 bytes


def claim_owner(claim_path: str | Path) -> dict | None:
    """The owner recorded in a claim file (``host``, ``pid``, ``started``), ``{}`` for a claim without a valid
    owner record (being written, damaged or forged), or ``None`` if there is no claim."""
    path = Path(claim_path)
    if path.is_dir():
        raise ValueError(f"claim {path}: is a directory, not a bsp claim file; remove it to let the work go on")
    try:
        with path.open("rb") as handle:
            owner = json.loads(handle.read(MAX_CLAIM_BYTES) or b"{}")
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError):
        return {}
    valid = isinstance(owner, dict) and all(isinstance(owner.get(k), t) and not isinstance(owner.get(k), bool)
                                            for k, t in _OWNER_FIELDS.items())  # fmt: skip
    return {k: owner[k] for k in _OWNER_FIELDS} if valid else {}


def describe_owner(owner: dict | None) -> str:
    """``host H, pid P, since HH:MM:SS`` of a claim's owner (what a waiter says it waits for)."""
    if not owner:
        return "an owner that has not written its record (or a damaged claim)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"])) if owner["started"] > 0 else "?"
    return f"host {owner['host']}, pid {owner['pid']}, since {since}"


def _try_claim(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(_owner(), handle)
    return True


def _expired(path: Path, stale_s: float, seen: dict | None = None) -> bool:
    """A claim whose owner is gone: a dead pid on this host, or no heartbeat for ``stale_s``. ``seen`` (the
    waiter's memory: the claim's last mtime and when this process first saw it) measures the heartbeat on this
    process's clock, so a claim stamped in the future cannot hold a waiter forever."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not ours to break
    age = time.time() - mtime
    if seen is not None:
        if seen.get("mtime") != mtime:
            seen.update(mtime=mtime, since=time.monotonic())
        age = max(age, time.monotonic() - seen["since"]) if age < 0 else age
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


def _break(path: Path, judged_mtime: float | None) -> None:
    """Rename an expired claim away; only one of several waiters' renames succeeds."""
    aside = path.with_name(f"{path.name}.expired-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if aside.stat().st_mtime != judged_mtime:  # re-claimed (or touched) after we judged it: give it back
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
    waiting, seen = False, {}
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
        if _expired(claim_path, stale_s, seen):
            _break(claim_path, seen.get("mtime"))
            seen.clear()
            continue
        if not waiting and on_wait is not None:
            on_wait(claim_owner(claim_path) or {})
        waiting = True
        time.sleep(poll_s)


class ClaimSet:
    """Many small claims held at once without blocking (a sweep's simulated points): :meth:`take` claims a name
    if nobody live holds it (breaking an expired claim), :meth:`release` gives claims back, and one heartbeat
    thread touches every claim held. Names are file names under ``directory``.

    >>> import tempfile, pathlib
    >>> shared = pathlib.Path(tempfile.mkdtemp())
    >>> a, b = ClaimSet(shared), ClaimSet(shared)
    >>> a.take("p1"), b.take("p1"), b.take("p2")
    (True, False, True)
    >>> a.close(); b.take("p1")
    True
    >>> b.close()
    """

    def __init__(self, directory: str | Path, *, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S) -> None:
        self.directory = Path(directory)
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self._held: set[str] = set()
        self._seen: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made = False  # whether the directory is known to exist

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.claim"

    def take(self, name: str) -> bool:
        """Claim ``name`` unless a live claim holds it (an expired one is broken first; a directory in its place
        is refused by :func:`claim_owner`, which judging it calls)."""
        path = self._path(name)
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        if not _try_claim(path):
            seen = self._seen.setdefault(name, {})
            if not _expired(path, self.stale_s, seen):
                return False
            _break(path, seen.get("mtime"))
            self._seen.pop(name, None)
            if not _try_claim(path):
                return False
        with self._lock:
            self._held.add(name)
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="claim heartbeat", daemon=True)
            self._thread.start()
        return True

    def owner(self, name: str) -> dict | None:
        return claim_owner(self._path(name))

    def release(self, names) -> None:
        with self._lock:
            for name in names:
                if name in self._held:
                    self._held.discard(name)
                    self._path(name).unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                held = list(self._held)
            for name in held:
                with suppress(FileNotFoundError):
                    os.utime(self._path(name))

    def close(self) -> None:
        """Release every claim held and stop the heartbeat."""
        with self._lock:
            held = list(self._held)
        self.release(held)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop.clear()
