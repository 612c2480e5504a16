"""The command line: each command parses its arguments and calls one library function.

`modelswarm` (pyproject) and `python -m modelswarm.cli` both start app.main."""

from .app import app, main

__all__ = ["app", "main"]
