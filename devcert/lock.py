"""The CAROOT lock: every writer of the CA, the inventory and the leaves devcert records takes it.

One exclusive ``flock`` on ``CAROOT/.devcert.lock``. The kernel drops it when its holder dies,
so a killed run never leaves the lock behind. It is re-entrant within one process (``rotate``
holds it and calls ``issue`` and ``inventory.record``, which take it too): a second
``flock`` on a new descriptor of the same file would wait for ourselves. Threads of one
process (serve-wss issuing on demand) serialize on a per-folder ``RLock`` first.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import CAError

LOCK_FILE = ".devcert.lock"


class _Held:
    __slots__ = ("rlock", "fd", "depth")

    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.fd = -1
        self.depth = 0


_registry: dict[str, _Held] = {}
_registry_guard = threading.Lock()


def _flock(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt  # Windows only

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl  # POSIX only

        fcntl.flock(fd, fcntl.LOCK_EX)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the exclusive CAROOT lock of ``folder`` (which must exist) for the ``with`` body."""
    key = os.path.realpath(folder)
    with _registry_guard:
        held = _registry.setdefault(key, _Held())
    with held.rlock:
        if held.depth == 0:
            lock_path = Path(folder) / LOCK_FILE
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as err:
                raise CAError(f"cannot create the lock file {lock_path}: {err.strerror}") from None
            try:
                _flock(fd)
            except BaseException:
                os.close(fd)
                raise
            held.fd = fd
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)  # closing releases the lock
                held.fd = -1


def is_held(folder: Path) -> bool:
    """True when this process holds ``folder``'s lock (for assertions in callers)."""
    held = _registry.get(os.path.realpath(folder))
    return held is not None and held.depth > 0
