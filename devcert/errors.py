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
