"""The server's log: one line per problem request, and repeats summarised.

A server facing 300 slow clients, or a loop, or a scanner, would otherwise write one line per
event and bury the one line that matters. :class:`Summarized` passes each kind of warning or
error on the first time it happens, counts the repeats that follow within ``window`` seconds,
and then writes one line saying how many there were. A kind is the message with its variable
parts (numbers, addresses, paths) blanked, so "408 from 127.0.0.1" and "408 from 10.0.0.2" are
one kind. Info lines always pass.

:class:`OneLineHandler` is the ``logging`` handler given to aiohttp's server and to asyncio's
exception handler: a record becomes one line through the same log, its traceback dropped (a
traceback only says where aiohttp noticed a bad peer, which the user cannot act on).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from .aiohttp_internals import Log

#: Seconds a kind of problem is summarised over after its first line.
SUMMARY_WINDOW = 10.0
#: Kinds remembered at once; a client making up new kinds cannot grow the table past this.
MAX_KINDS = 256

_VARIABLE = re.compile(r"\S*\d\S*|/\S*|'[^']*'|\"[^\"]*\"")


def kind_of(message: str) -> str:
    return _VARIABLE.sub("_", message)[:160]


class Summarized:
    """A ``log(level, message)`` that passes info lines on and summarises repeated problems."""

    def __init__(self, log: Log, window: float = SUMMARY_WINDOW) -> None:
        self.log = log
        self.window = window
        #: kind -> [level, window end, repeats, last message, timer]
        self._open: dict[str, list[Any]] = {}

    def __call__(self, level: str, message: str) -> None:
        if level == "info":
            self.log(level, message)
            return
        kind = kind_of(message)
        now = time.monotonic()
        entry = self._open.get(kind)
        if entry is not None and now < entry[1]:
            entry[2] += 1
            entry[3] = message
            return
        if entry is not None:
            self._close(kind)
        if len(self._open) >= MAX_KINDS:
            self.flush()
        self.log(level, message)
        timer = None
        try:
            timer = asyncio.get_running_loop().call_later(self.window, self._close, kind)
        except RuntimeError:  # no loop in this thread: summarised at the next event or flush()
            pass
        self._open[kind] = [level, now + self.window, 0, message, timer]

    def _close(self, kind: str) -> None:
        entry = self._open.pop(kind, None)
        if entry is None:
            return
        level, _, repeats, last, timer = entry
        if timer is not None:
            timer.cancel()
        if repeats:
            times = "once more" if repeats == 1 else f"{repeats} more times"
            self.log(level, f"the same happened {times} in {self.window:g} s; the last: {last}")

    def flush(self) -> None:
        """Write the summaries still open (on shutdown)."""
        for kind in list(self._open):
            self._close(kind)


class OneLineHandler(logging.Handler):
    """A logging handler writing each record as one line to a :class:`Summarized` log."""

    def __init__(self, log: Log) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                err = record.exc_info[1]
                detail = " ".join((str(err) or type(err).__name__).split())
                message = f"{message}: {detail}" if message else detail
            # a warning whatever the record's level: what aiohttp reports is nearly always a peer's
            # doing (a malformed request), which the server survives
            if record.levelno >= logging.WARNING:
                self.log("warning", " ".join(message.split()))
        except Exception:  # pragma: no cover - a log line must never break the server
            self.handleError(record)


def one_line_logger(log: Log) -> logging.Logger:
    """A logger of its own writing to ``log``: not registered with ``logging`` (each server has
    its own, and none lives on after it) and not propagating to the root logger's stderr."""
    logger = logging.Logger("devcert.serve")
    logger.propagate = False
    logger.handlers = [OneLineHandler(log)]
    logger.setLevel(logging.WARNING)
    return logger
