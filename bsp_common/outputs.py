"""Output ownership: a command writes only into places it may own, and replaces only what it wrote itself.

Every output directory bsp writes carries a marker file, ``.bsp-output.json`` (kind, version, time). A
target directory is refused, before any work starts, when it is

* the filesystem root, the home directory, the current directory or one of its ancestors;
* an input of the command (e.g. the model directory being exported) or an ancestor of one;
* an existing file, or a non-empty directory without a bsp marker of the same kind;
* an earlier bsp output of the same kind, unless the caller asks to ``overwrite`` it (replace, e.g. a
  pruned model) or to ``update`` it (add to it, e.g. a resumable sweep).

Replacement is atomic: the new result is built in a temporary sibling (which holds a marker from its first
moment), renamed in, and only then is the old output -- renamed aside first -- removed. The marker of a
replaceable output lists the files bsp wrote into it; a file found there that the list does not name (a
user's notes added since) makes ``overwrite`` refuse, naming it, so a replacement never deletes a file bsp did
not write. Temporary
siblings left behind by a killed run are removed by the next run for the same target, but only when they
carry a marker and their process is gone.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output_dir(root / "model", "pruned-model") as tmp:
...     _ = (tmp / "weights.bin").write_bytes(b"0")
>>> sorted(p.name for p in (root / "model").iterdir())
['.bsp-output.json', 'weights.bin']
>>> check_output_dir(root / "model", "pruned-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
bsp_common.outputs.OutputError: --out: ... already holds a bsp pruned-model output; pass --overwrite to replace it
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bsp_common.safe_yaml import short_repr

__all__ = [
    "MARKER_FILENAME",
    "OutputError",
    "atomic_output_dir",
    "check_output_dir",
    "check_output_file",
    "prepare_output_dir",
    "read_marker",
    "umask_mode",
    "write_bytes_atomic",
    "write_text_atomic",
]

MARKER_FILENAME = ".bsp-output.json"
MARKER_VERSION = 1
_TMP_TAG = "bsp-tmp"
_OLD_TAG = "bsp-old"


class OutputError(ValueError):
    """An output target bsp must not write to; the message names the option, the path and why."""


def umask_mode(kind: str = "dir") -> int:
    """Permission bits a new directory (``"dir"``) or file (``"file"``) gets under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def read_marker(directory: str | Path) -> dict | None:
    """The marker of a bsp output directory, or ``None`` when it has none (or an unreadable one)."""
    path = Path(directory) / MARKER_FILENAME
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None


def _write_marker(directory: Path, kind: str, files: list[str] | None = None) -> None:
    record = {"kind": kind, "version": MARKER_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "writer": "bsp-codesign"}  # fmt: skip
    if files is not None:
        record["files"] = files
    (directory / MARKER_FILENAME).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _files_in(directory: Path) -> list[str]:
    """Every file (and link) under ``directory`` but the marker, as sorted relative POSIX paths; links are not
    followed."""
    found = []
    for root, dirs, files in os.walk(directory):
        base = Path(root).relative_to(directory)
        found += [(base / name).as_posix() for name in files]
        found += [(base / name).as_posix() for name in dirs if (Path(root) / name).is_symlink()]
    return sorted(name for name in found if name != MARKER_FILENAME)


def _foreign_files(directory: Path, marker: dict) -> list[str]:
    """Files in a bsp output that its marker does not list (none when the marker predates file lists)."""
    listed = marker.get("files")
    if not isinstance(listed, list):
        return []
    ours = {name for name in listed if isinstance(name, str)}
    return [name for name in _files_in(directory) if name not in ours]


def _is_same_or_ancestor(candidate: Path, of: Path) -> bool:
    return candidate == of or candidate in of.parents


def _forbidden_reason(resolved: Path, inputs: Iterable[str | Path]) -> str | None:
    if resolved == Path(resolved.anchor):
        return "is the filesystem root"
    if resolved == Path.home().resolve():
        return "is the home directory"
    cwd = Path.cwd().resolve()
    if _is_same_or_ancestor(resolved, cwd):
        return "is the current directory or one of its parents"
    for item in inputs:
        if item is None:
            continue
        source = Path(item).expanduser().resolve()
        if _is_same_or_ancestor(resolved, source):
            return f"is (or contains) the input {source}"
    return None


def _refuse_file_on_path(candidates: Iterable[Path], shown: str | Path, option: str) -> None:
    """The nearest existing one of ``candidates`` (a path and its parents, nearest first) must be a directory
    this process can write in (a read-only file system is found now, not after hours of training)."""
    for candidate in candidates:
        if candidate.exists():
            if not candidate.is_dir():
                raise OutputError(f"{option}: {str(shown)!r}: {candidate} is a file, not a directory")
            if not os.access(candidate, os.W_OK | os.X_OK) or not _can_create_in(candidate):
                raise OutputError(f"{option}: {str(shown)!r}: {candidate} is not writable (a read-only file system "
                                  "or its permissions); choose another location")  # fmt: skip
            return


def _can_create_in(directory: Path) -> bool:
    """Whether a file can be made in ``directory`` (a probe file, removed at once): ``os.access`` says yes to
    root on pseudo file systems such as /proc, where the write then fails after the work is done."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".bsp-probe-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


_NAME_MAX_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, tmpfs, NTFS (in UTF-16 units there) and APFS


def _check_name_lengths(path: Path, option: str) -> None:
    """Refuse a path component over 255 bytes (stat and open would fail with ENAMETOOLONG, naming no option)."""
    longest = max(path.parts, key=lambda part: len(os.fsencode(part)), default="")
    if len(os.fsencode(longest)) > _NAME_MAX_BYTES:
        raise OutputError(f"{option}: a name in the path is {len(os.fsencode(longest))} bytes long "
                          f"({short_repr(longest)}); file systems allow at most {_NAME_MAX_BYTES}")  # fmt: skip


def _resolved(path: Path, option: str) -> Path:
    """``path.resolve()``, with a symbolic-link loop (RuntimeError on Python 3.11) named as bad input."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as err:
        raise OutputError(f"{option}: {str(path)!r} cannot be resolved ({err}); a symbolic link that points "
                          "at itself? give a real directory or file path") from None


def check_output_dir(
    out_dir: str | Path,
    kind: str,
    *,
    overwrite: bool = False,
    update: bool = False,
    inputs: Iterable[str | Path] = (),
    option: str = "--out",
) -> Path:
    """Refuse a directory target bsp must not write (see the module docstring); returns the resolved path.

    Parameters
    ----------
    kind : what the command writes (``"pruned-model"``, ``"rtl-export"``, ``"sweep"``, ``"figures"``...).
    overwrite : an earlier output of the same kind may be replaced as a whole.
    update : an earlier output of the same kind may be added to (resume).
    inputs : paths the command reads; the target may not be one of them or hold one.
    option : the CLI option or argument name used in messages.
    """
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir):
        raise TypeError(f"{option}: expected a directory path, got {type(out_dir).__name__} {short_repr(out_dir)}")
    inputs = list(inputs)
    path = Path(out_dir).expanduser()
    _check_name_lengths(path, option)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{option}: {str(out_dir)!r} is a symbolic link to a missing {os.readlink(path)!r}; bsp "
                          "does not create directories through links (give a real path)")  # fmt: skip
    resolved = _resolved(path, option)
    reason = _forbidden_reason(resolved, inputs)
    if reason:
        raise OutputError(f"{option}: {str(out_dir)!r} {reason}; bsp never writes there (choose a new directory)")
    _refuse_file_on_path((resolved, *resolved.parents), out_dir, option)
    if not resolved.is_dir():
        return resolved
    if not any(resolved.iterdir()):
        return resolved
    marker = read_marker(resolved)
    if marker is None:
        raise OutputError(
            f"{option}: {str(out_dir)!r} is a non-empty directory that bsp did not write (no {MARKER_FILENAME}); "
            "choose a new or empty directory"
        )
    if marker["kind"] != kind:
        raise OutputError(f"{option}: {str(out_dir)!r} holds a bsp {marker['kind']} output, not a {kind}; "
                          "choose another directory")  # fmt: skip
    if not (overwrite or update):
        raise OutputError(f"{option}: {str(out_dir)!r} already holds a bsp {kind} output; "
                          "pass --overwrite to replace it")  # fmt: skip
    foreign = _foreign_files(resolved, marker) if overwrite else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{option}: {str(out_dir)!r} holds {shown}, which bsp did not write; replacing the "
                          "output would delete it -- move it out first, or choose a new directory")  # fmt: skip
    return resolved


def prepare_output_dir(out_dir: str | Path, kind: str, *, inputs: Iterable[str | Path] = (),
                       option: str = "--out") -> Path:  # fmt: skip
    """Create (or reopen, to resume) an incremental output directory of ``kind`` and mark it as bsp's."""
    resolved = check_output_dir(out_dir, kind, update=True, inputs=inputs, option=option)
    resolved.mkdir(parents=True, exist_ok=True)
    if read_marker(resolved) is None:
        _write_marker(resolved, kind)
    return resolved


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_siblings(target: Path) -> None:
    """Clean up after killed runs (siblings marked as bsp's whose process is gone): an earlier output set aside
    for a swap that never finished is put back under its own name; temporary directories are removed."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.({_TMP_TAG}|{_OLD_TAG})-(\d+)-")
    stale = []
    for sibling in target.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and sibling.is_dir() and not _pid_alive(int(match.group(2))) and read_marker(sibling) is not None:
            stale.append((match.group(1), sibling))
    for tag, sibling in sorted(stale, key=lambda item: item[0] != _OLD_TAG):  # set-aside outputs first
        if tag == _OLD_TAG and not target.exists():
            os.replace(sibling, target)  # the killed run had moved it aside and not yet put the new one in
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    except (OSError, AttributeError):
        return False


@contextmanager
def atomic_output_dir(
    out_dir: str | Path,
    kind: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    option: str = "--out",
) -> Iterator[Path]:
    """Yield a marked temporary sibling of ``out_dir`` to fill; on success it becomes ``out_dir``.

    The target is checked with :func:`check_output_dir` on entry and again just before the rename (another
    process may have written it meanwhile). On error the temporary directory is removed and an existing
    ``out_dir`` is left untouched. Directory modes follow the umask.
    """
    inputs = list(inputs)
    target = check_output_dir(out_dir, kind, overwrite=overwrite, inputs=inputs, option=option)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_TMP_TAG}-{os.getpid()}-", dir=target.parent))
    try:
        _write_marker(tmp, kind)
        yield tmp
        _write_marker(tmp, kind, _files_in(tmp))  # what a later --overwrite may delete
        os.chmod(tmp, umask_mode("dir"))
        check_output_dir(out_dir, kind, overwrite=overwrite, inputs=inputs, option=option)
        if target.is_dir() and any(target.iterdir()):
            if _exchange(tmp, target):  # one step: a kill leaves either the old output or the new one in place
                shutil.rmtree(tmp, ignore_errors=True)  # now the old output (a bsp output of this kind)
                return
            # two renames; a kill between them leaves the old output aside, and the next run puts it back
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_OLD_TAG}-{os.getpid()}-", dir=target.parent))
            os.replace(target, aside)  # aside is an empty directory: rename(2) replaces it
            os.replace(tmp, target)
            shutil.rmtree(aside, ignore_errors=True)  # a bsp output of this kind (checked above)
        else:
            os.replace(tmp, target)  # no target, or an empty directory: rename(2) replaces it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output_file(path: str | Path, *, overwrite: bool = False, option: str = "--out",
                      suffixes: Iterable[str] = (), inputs: Iterable[str | Path | None] = (),
                      others: Iterable[tuple[str, str | Path | None]] = ()) -> Path:  # fmt: skip
    """Refuse a file target that is a directory, lies under a file, exists (unless ``overwrite``), is a
    symbolic link (even a dangling one: bsp replaces only regular files), is one of ``inputs`` or lies inside
    an input directory, or is the same file as another output of the command (``others``: ``(option, path)``).

    ``suffixes`` (e.g. ``(".png", ".svg")``) checks the files written beside a stem instead of ``path``.
    """
    path = Path(path).expanduser()
    targets = [path.with_suffix(s) for s in suffixes] or [path]
    sources = [_resolved(Path(i).expanduser(), "input") for i in inputs if i is not None]
    for target in targets:
        _check_name_lengths(target, option)
        if target.is_symlink():
            raise OutputError(f"{option}: {str(target)!r} is a symbolic link; give the path of a regular file "
                              "(bsp does not write through links)")  # fmt: skip
        resolved = _resolved(target, option)
        if resolved.is_dir():
            raise OutputError(f"{option}: {str(target)!r} is a directory; give a file name")
        _refuse_file_on_path(resolved.parents, target, option)
        for source in sources:
            if _is_same_or_ancestor(source, resolved):
                raise OutputError(f"{option}: {str(target)!r} is (or is inside) the input {source}; write the "
                                  "output elsewhere")  # fmt: skip
        for other_option, other in others:
            if other is not None and Path(other).expanduser().resolve() == resolved:
                raise OutputError(f"{option}: {str(target)!r} is also the {other_option} output; give each output "
                                  "its own file")  # fmt: skip
        if resolved.exists() and not overwrite:
            raise OutputError(f"{option}: {str(target)!r} exists; pass --overwrite to replace it")
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and a rename (mode follows the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, umask_mode("file"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
