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



class ServeError(DevcertError):
    """The server could not start (address unusable, bad upstream, ...).

    The message may name options: ``template`` writes each as ``{-option}`` (the Python
    parameter's name: ``{-port}``, ``{-ws_path}``) and the other ``{field}`` s from ``fields``,
    which are also attributes. ``str()`` names the parameters; :meth:`worded` lets the CLI
    name its flags instead (``--port``), so the core never spells a command line.
    """

    def __init__(self, template: str, **fields: object):
        self.template, self.fields = template, fields
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(self.worded({}))

    def worded(self, names: dict[str, str]) -> str:
        """The message with each ``{-option}`` spelled as ``names[option]`` (else as the option)."""
        return self.template.format_map(_OptionNames(self.fields, names))


class PortInUseError(ServeError):
    """The port asked for is taken by another program (fields ``host``, ``port``)."""


class ServeOptionError(ServeError, UsageError):
    """A server option cannot be used as given (exit code 2); a message as :class:`ServeError`'s."""

    exit_code = 2


class _OptionNames(dict):  # type: ignore[type-arg]
    """``format_map``'s mapping for :meth:`ServeError.worded`: fields by name, ``-option`` keys
    through ``names``."""

    def __init__(self, fields: dict[str, object], names: dict[str, str]):
        super().__init__(fields)
        self.names = names

    def __missing__(self, key: str) -> str:
        if key.startswith("-"):
            return self.names.get(key[1:], key[1:])
        raise KeyError(key)
