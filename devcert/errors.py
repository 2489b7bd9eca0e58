"""The exceptions devcert raises.

Every message is written for a person: it says what went wrong and, where there is one, the
command or change that fixes it. ``devcert.cli`` turns them into one line on stderr and an
exit code (``exit_code``); the Python API lets them propagate.
"""

from __future__ import annotations


class DevcertError(Exception):
    """Base class: an operation failed. The CLI exits with ``exit_code`` (1)."""

    exit_code = 1


class UsageError(DevcertError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class InvalidNameError(UsageError):
    """A name given for a certificate is not a valid DNS name, IP, email or URI."""


class NameNotPermittedError(DevcertError):
    """A name is valid but outside the CA's name constraints."""


class CAError(DevcertError):
    """The local CA is missing, damaged, or cannot be created."""


class CSRError(UsageError):
    """A certificate signing request is malformed or its signature does not verify."""


class FileWriteError(DevcertError):
    """A file could not be written (permissions, missing folder, full disk)."""


class TrustStoreError(DevcertError):
    """A trust store could not be read or changed."""


class UnsafeCARootError(CAError):
    """CAROOT or a CA file could be changed by someone else: another user owns it, or group or
    others may write it. Using it would let that user swap in a CA of their own."""

    def __init__(self, path: object, reason: str, fix: str):
        self.path, self.reason, self.fix = path, reason, fix
        super().__init__(f"refusing to use {path}: {reason}; {fix}")


class InputFileError(UsageError):
    """A file given as input (a certificate, key, CSR, bundle) cannot be read safely: it is not a
    regular file (a FIFO or device would hang or never end), or it is larger than the limit."""

    def __init__(self, path: object, what: str, reason: str):
        self.path, self.what, self.reason = path, what, reason
        super().__init__(f"cannot read {what} {path}: {reason}")


class AcmeProblem(DevcertError):
    """An ACME request is refused: becomes an RFC 7807 problem document (``devcert.acme``).

    ``kind`` is the last part of the ``urn:ietf:params:acme:error:`` type (``badNonce``,
    ``malformed``, ...), ``status`` the HTTP status, ``subproblems`` a list of
    ``(kind, detail, identifier)`` for per-identifier problems (RFC 8555 6.7.1), and
    ``headers`` extra response headers (``Location`` of an existing account on a conflict).
    """

    def __init__(self, kind: str, detail: str, status: int = 400, *,
                 subproblems: list[tuple[str, str, dict[str, str]]] | None = None,
                 headers: dict[str, str] | None = None, algorithms: list[str] | None = None):
        self.kind, self.detail, self.status = kind, detail, status
        self.subproblems = subproblems or []
        self.headers = headers or {}
        self.algorithms = algorithms
        super().__init__(f"{kind}: {detail}")


class AcmeServerError(DevcertError):
    """``devcert acme`` could not start: its address or port is unusable, or its state database
    in CAROOT cannot be opened."""
