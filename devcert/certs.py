"""Facts about certificates that several modules need, and the clock they are read against.

Lower than every module that issues, records or reports certificates (``ca``, ``issue``,
``inventory``, ``inspect``, ``doctor``, ``project``): each rule here is written once, so
"days left" cannot mean one thing in ``devcert list`` and another in
``devcert inspect``. Key facts (type, size, naming) are in :mod:`devcert.keys`, one level lower.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import socket

from cryptography import x509

from .keys import Encoding

#: Certificates are backdated this much so a client whose clock is a little behind accepts them.
BACKDATE = dt.timedelta(hours=1)


def now() -> dt.datetime:
    """The current time in UTC, to the second (certificates carry no finer time)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@functools.lru_cache(maxsize=None)
def whoami() -> str:
    """``user@host``: who made a CA or certificate (its subject's organizational unit)."""
    # What getpass.getuser() does, without importing getpass (and termios) on every run.
    user = next((os.environ[v] for v in ("LOGNAME", "USER", "LNAME", "USERNAME") if os.environ.get(v)), None)
    if user is None:
        try:
            import pwd  # not on Windows; only reached when no user variable is set

            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError, AttributeError):  # Windows, or no passwd entry in a container
            user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return f"{user}@{socket.gethostname()}"


def days_left(not_after: dt.datetime, at: dt.datetime | None = None) -> int:
    """Whole days until ``not_after`` (negative once it has passed): what ``list``, ``inspect``,
    ``sync`` and ``doctor`` show. Counted down, like ``timedelta.days``: 29.9 days left is 29."""
    return (not_after - (at or now())).days


def expired(not_after: dt.datetime, at: dt.datetime | None = None) -> bool:
    """Whether a certificate ending at ``not_after`` is no longer valid ``at`` (default: now)."""
    return not_after <= (at or now())


def sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lower-case hex: how devcert names a certificate."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
