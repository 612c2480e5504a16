"""The one exception type that reaches the user as a one-line message and exit code 2, and
no_space, which turns a full disk into one."""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional


class UserError(Exception):
    """Bad input: a config key, a file, an expert, a validation example.

    The message names the file (and key or line) and the problem; the CLI prints it on one
    line and exits with status 2. Raised before anything is written where possible.
    """

    def __init__(self, where: object, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")

    def __reduce__(self):
        # raised inside a Ray worker, it is pickled to reach the driver: rebuild it whole
        return (type(self), (self.where, self.problem))


def error_line(exc: BaseException) -> str:
    """'Type: first line of the message', for the journal and the live table."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


NO_SPACE = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large (the process's file size limit, or the filesystem's largest file)",
    errno.EDQUOT: "disk quota exceeded",
}


@contextmanager
def no_space(path: str | Path, then: str) -> Iterator[None]:
    """A full disk (or quota, or file size limit) while writing `path` becomes a one-line
    UserError naming it; `then` says what to do. Other errors pass through."""
    try:
        yield
    except Exception as exc:
        why = NO_SPACE.get(errno_of(exc))  # type: ignore[arg-type]
        if why is None:
            raise
        raise UserError(path, f"{why} while writing it; {then}") from None


def errno_of(exc: BaseException) -> Optional[int]:
    if isinstance(exc, OSError):
        return exc.errno
    found = re.search(r"\(os error (\d+)\)", str(exc))  # Rust I/O errors (safetensors) carry it in the text
    return int(found.group(1)) if found else None
