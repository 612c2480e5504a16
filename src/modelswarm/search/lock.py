"""One process at a time on a run directory: RUN_DIR/lock names its owner.

The lock file holds the owner's host, pid and start time as JSON. It is created whole and
atomically: written to a temporary file, then hard-linked to `lock`, which fails if `lock`
exists. link() is atomic on local filesystems and on NFS (v2 and v3 included, where
O_EXCL is not); on filesystems without hard links the lock is created with O_CREAT|O_EXCL
instead. No fcntl/flock locks: they do not hold across every network filesystem.

A second process finds the lock and stops with a one-line error naming the owner. A lock
whose owner is gone (SIGKILL, a crash) stays behind; a process on the same host sees that
the pid is dead (or belongs to a later process) and takes the lock over with a message. A
lock left by another host cannot be checked from here: the error says so, and removing
the file is then the user's call.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import UserError

LOCK_NAME = "lock"
NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> Optional[str]:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22): with the
    boot id, tells a live owner from a later process that reuses its pid."""
    stat = _read_text(f"/proc/{pid}/stat")
    if not stat:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after "pid (comm)" start at field 3


def me() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "start_ticks": _start_ticks(pid), "boot_id": _read_text("/proc/sys/kernel/random/boot_id")}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the lock's owner still runs; only answerable on the owner's host."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user
        pass
    boot = _read_text("/proc/sys/kernel/random/boot_id")
    if owner.get("boot_id") and boot and owner["boot_id"] != boot:
        return False  # the machine rebooted since: that pid is someone else
    if owner.get("start_ticks") and _start_ticks(pid) not in (None, owner["start_ticks"]):
        return False  # the pid was reused by a later process
    return True


def describe(owner: dict[str, Any]) -> str:
    return f"{owner.get('host')}:{owner.get('pid')} (since {owner.get('started')})"


class RunLock:
    """`with RunLock(run_dir):` holds RUN_DIR/lock for the block (released on any exit)."""

    def __init__(self, run_dir: str | Path, notify: Optional[Callable[[str], None]] = None):
        self.path = Path(run_dir) / LOCK_NAME
        self.notify = notify or (lambda text: print(f"modelswarm: {text}", file=sys.stderr, flush=True))
        self.record: Optional[dict[str, Any]] = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        record = me()
        for _ in range(10):  # each round: create, or judge the owner; a round repeats only on a race
            if self._create(record):
                self.record = record
                return
            owner = self._read(self.path)
            if owner is None:
                continue  # released in between
            if owner.get("host") == record["host"] and not owner_alive(owner):
                if self._take_over(owner):
                    self.notify(f"{self.path}: took over the lock of {describe(owner)}: that process is gone")
                continue
            hint = ("wait for it to finish or stop it" if owner.get("host") == record["host"] else
                    "it runs on another host, which this one cannot check: if that process is gone, "
                    "delete this file")
            raise UserError(self.path, f"the run directory is in use by modelswarm {describe(owner)}: {hint}")
        raise UserError(self.path, "could not take the lock: other processes keep taking and releasing it")

    def release(self) -> None:
        if self.record is None:
            return
        owner = self._read(self.path)
        if owner is not None and all(owner.get(k) == self.record[k] for k in ("host", "pid", "started")):
            self.path.unlink(missing_ok=True)
        self.record = None

    # --- internals ---------------------------------------------------------------------

    def _create(self, record: dict[str, Any]) -> bool:
        """Create the lock whole, or return False if it exists."""
        from ..errors import no_space

        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with no_space(self.path, "free some space, then run the command again"):
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{LOCK_NAME}.", suffix=".tmp")
            try:
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, self.path)
                    return True
                except FileExistsError:
                    return False
                except OSError as exc:
                    if os.stat(tmp).st_nlink == 2:  # NFS: the link was made, only its reply was lost
                        return True
                    if exc.errno not in NO_LINK:
                        raise
                try:  # no hard links on this filesystem
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return True
            finally:
                Path(tmp).unlink(missing_ok=True)

    def _read(self, path: Path) -> Optional[dict[str, Any]]:
        """The owner recorded in a lock file; None if there is no such file."""
        try:
            owner = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UserError(path, f"unreadable lock file ({exc}): if no modelswarm process uses this run "
                                  "directory, delete it") from None
        if not isinstance(owner, dict):
            raise UserError(path, "unreadable lock file (not a JSON object): if no modelswarm process uses "
                                  "this run directory, delete it")
        return owner

    def _take_over(self, stale: dict[str, Any]) -> bool:
        """Remove the stale lock, unless another process replaced it in between."""
        aside = self.path.with_name(f".{LOCK_NAME}.stale.{os.getpid()}.tmp")
        try:
            os.rename(self.path, aside)  # atomic: of several processes taking over, one gets it
        except FileNotFoundError:
            return False
        try:
            if self._read(aside) == stale:
                return True
            try:  # a live lock, made after we read the stale one: put it back
                os.link(aside, self.path)
            except FileExistsError:
                pass
            return False
        finally:
            aside.unlink(missing_ok=True)
