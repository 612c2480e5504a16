"""Crash-safe file writes: every checkpoint and state file goes through here.

A write goes to a temporary file in the same directory, is fsynced, then renamed over the
target with os.replace, and the directory is fsynced so the rename itself survives a crash.
A reader therefore sees either the old file or the new one, never a torn one.

mkstemp and mkdtemp create their files 0600 and directories 0700 (so do some libraries'
writers), and os.replace keeps the mode, so each is given the mode open() and mkdir() would
give under the process umask (0644 and 0755 under umask 022): a serving process under
another user, or a shared cluster filesystem, reads the results like any other file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask. Read from /proc where it is shown, so no other thread ever sees it
    changed; elsewhere set and restored (briefly to 077, never to anything more permissive)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp_path) then move tmp_path over path atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp_path = Path(tmp)
    try:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def strict(obj: Any) -> Any:
    """obj with every non-finite float made JSON: NaN (a failed score) as null, an infinity as
    the string "inf" or "-inf". JSON has no NaN or Infinity; Python's json writes them anyway,
    and readers in other languages then refuse the whole file. numpy turns both forms back
    into floats (np.asarray(..., dtype=float64)); num() does it for one value."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None if math.isnan(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def num(value: Any) -> float:
    """A float written by strict(), or by an older writer that let NaN through, read back."""
    return math.nan if value is None else float(value)


def dumps(obj: Any, **kwargs: Any) -> str:
    """json.dumps that only ever writes strict JSON (see strict)."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj, indent=2, sort_keys=True) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync: a journal entry is durable once this returns.

    An append that fails (a full disk, a file size limit) is cut back off, so the file
    still ends with its last complete line. A crash mid-append can leave a torn last line;
    readers skip a final line that does not end in a newline (see state.read_journal).
    """
    data = memoryview((line.rstrip("\n") + "\n").encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, start)
            except OSError:  # not a regular file; a reader still drops a torn tail
                pass
            raise
    finally:
        os.close(fd)


def atomic_write_dir(path: Path, fill: Callable[[Path], None]) -> None:
    """Build a directory in a temporary sibling, then swap it into place.

    POSIX cannot rename over a non-empty directory, so the old one is first renamed aside;
    a crash between the two renames leaves `<name>.old` beside no `<name>`, which the next
    write cleans up. The target never holds a half-written mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = path.with_name(path.name + ".old")
    try:
        umask = current_umask()
        os.chmod(tmp, 0o777 & ~umask)
        fill(tmp)
        for child in tmp.rglob("*"):
            # some writers (safetensors' save_file) make their files 0600 too: widen each
            # to at least what open() and mkdir() give, keeping any other bits it has
            widest = 0o777 if child.is_dir() else 0o666
            if not child.is_symlink():
                os.chmod(child, stat.S_IMODE(child.stat().st_mode) | (widest & ~umask))
            if child.is_file():
                with open(child, "rb+") as f:
                    os.fsync(f.fileno())
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
