"""What commands print, and the one way they fail.

Typer-free, so ``devcert create`` (parsed by :mod:`devcert.cli.fast`) can use it at no cost.
Commands never exit themselves: a failure is an exception (a core
:class:`~devcert.errors.DevcertError`, or :class:`Failed` for a report the command already
printed), and :func:`devcert.cli.main` turns it into ``devcert: error: ...`` lines and an exit code.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one line for a person (stdout, or stderr with ``err=True``)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


def warn(message: str) -> None:
    echo(f"devcert: warning: {message}", err=True)


def print_json(obj: Any) -> None:
    """The one JSON object a ``--json`` command prints on stdout."""
    echo(json.dumps(obj, indent=2, default=str))


class Failed(Exception):
    """A command's result is a failure: :func:`devcert.cli.main` prints each of ``lines`` as
    ``devcert: error: LINE`` (none: the command's output already said it, as ``sync --check``
    does) and exits with ``code`` (1: the operation failed, 2: bad usage)."""

    def __init__(self, *lines: str, code: int = 1) -> None:
        super().__init__("; ".join(lines))
        self.lines, self.code = lines, code
