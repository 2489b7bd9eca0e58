"""The exceptions devcert raises, all of them, in one place.

The tree::

    DevcertError                    an operation failed (exit code 1)
    ├── UsageError                  asked for something that cannot be done as asked (exit code 2)
    │   ├── InvalidNameError        not a valid DNS name, IP, email or URI
    │   ├── CSRError                a malformed CSR, or one whose signature does not verify
    │   ├── InputFileError          an input file that cannot be read safely (path, what, reason)
    │   ├── ConfigError             a malformed project configuration (path, reason)
    │   ├── OptionError             an option's value is out of range (option, value, reason)
    │   ├── OptionConflictError     two options that exclude each other (option, other)
    │   └── NotRecordedError        a certificate file the inventory does not record (path)
    ├── NameNotPermittedError       a valid name outside the CA's name constraints (name, widen, ...)
    ├── NotRenewableError           a recorded certificate devcert cannot reissue (path, reason)
    ├── CAError                     the local CA is missing, damaged, or cannot be created
    │   ├── CAMissingError          a CA file is missing (path, what)
    │   └── UnsafeCARootError       CAROOT or a CA file others could change (path, reason, remedy)
    ├── FileWriteError              a file could not be written
    ├── TrustStoreError             a trust store could not be read or changed
    ├── ServeError                  serve-wss could not start (template, fields)
    │   ├── PortInUseError          the port asked for is taken (host, port)
    │   └── ServeOptionError        a server option that cannot be used (also a UsageError: exit 2)
    ├── AcmeProblem                 devcert acme refuses a request: an RFC 7807 problem (kind, detail, status)
    └── AcmeServerError             devcert acme cannot start (its port, its state database)

Each message says what went wrong, for a person and without command lines or flag names:
the Python API lets it propagate as it is. The facts are fields as well (``path``, ``name``,
``reason``, ...), and ``fix`` names the remedy neutrally where there is one; the CLI
(``devcert.cli.messages.describe``) turns those into the line a CLI user sees, with the
command or flag that fixes it, and exits with ``exit_code``.
"""

from __future__ import annotations

from typing import Any

from .advice import Advice


class DevcertError(Exception):
    """Base class: an operation failed. The CLI exits with ``exit_code`` (1).

    A message is built from parts, so the CLI can say the same thing with its own remedy:
    ``problem`` (what went wrong, neutral), ``api_fix`` (the remedy in Python terms, often
    empty) and ``then`` (what follows the remedy, e.g. "(no certificate was written)");
    ``str(err)`` is ``problem + api_fix + then``. ``fix`` names the remedy neutrally (e.g.
    ``"init-ca"``: make a CA; ``"rotate-ca"``) where the CLI has a command or flag for it;
    ``devcert.cli.messages.describe`` words it, so the CLI line is ``problem + <its words> +
    then``. None when the message says all there is to say.
    """

    exit_code = 1

    def __init__(self, *args: object, fix: str | None = None, api_fix: str = "", then: str = "") -> None:
        self.problem = str(args[0]) if args else ""
        self.fix, self.api_fix, self.then = fix, api_fix, then
        if args and (api_fix or then):
            args = (f"{self.problem}{api_fix}{then}", *args[1:])
        super().__init__(*args)


class UsageError(DevcertError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class InvalidNameError(UsageError):
    """A name given for a certificate is not a valid DNS name, IP, email or URI."""


class CSRError(UsageError):
    """A certificate signing request is malformed or its signature does not verify."""


class InputFileError(UsageError):
    """A file given as input (a certificate, key, CSR, bundle) cannot be read safely: it is not a
    regular file (a FIFO or device would hang or never end), or it is larger than the limit."""

    def __init__(self, path: object, what: str, reason: str):
        self.path, self.what, self.reason = path, what, reason
        super().__init__(f"cannot read {what} {path}: {reason}")


class ConfigError(UsageError):
    """The project configuration is malformed; the message names the file, entry and fix.

    ``path`` is the configuration file (None when none was found).
    """

    def __init__(self, problem: str, *, path: object = None, fix: str | None = None, api_fix: str = "",
                 then: str = ""):
        self.path = path
        super().__init__(problem, fix=fix, api_fix=api_fix, then=then)


class OptionError(UsageError):
    """An option's value cannot be used: ``option`` is its keyword in the Python API (``days``,
    ``permit``, ``min_days``, ``shell``), ``value`` what was given, ``reason`` why not."""

    def __init__(self, option: str, value: Any, reason: str, *, fix: str | None = None):
        self.option, self.value, self.reason = option, value, reason
        super().__init__(f"{option}={value!r}: {reason}", fix=fix)


class OptionConflictError(UsageError):
    """Option ``option`` cannot be used together with ``other`` (both as API keywords, e.g.
    ``permit`` and ``constraints=False``); ``reason`` says what ``option`` does."""

    def __init__(self, option: str, other: str, reason: str):
        self.option, self.other, self.reason = option, other, reason
        super().__init__(f"{option}= {reason}; it cannot be used with {other}")


class NameNotPermittedError(DevcertError):
    """A name is valid but outside the CA's name constraints.

    ``name`` is the name as given; ``widen`` what a CA would have to permit to allow it (a DNS
    name or a CIDR range), or None when no widening can (an IP-literal URI); ``permits`` every
    widening the new CA needs (the current CA's own plus ``widen``), ``profile`` the CA's
    constraint profile, ``in_memory`` whether the CA lives only in memory (the fix is then an
    argument in the caller's code, not a new CA on disk).
    """

    def __init__(self, problem: str, *, name: str, widen: str | None, permits: tuple[str, ...] = (),
                 profile: str = "dns", in_memory: bool = False, fix: str | None = None, api_fix: str = "",
                 then: str = ""):
        self.name, self.widen, self.permits, self.profile, self.in_memory = name, widen, permits, profile, in_memory
        super().__init__(problem, fix=fix, api_fix=api_fix, then=then)


class NotRenewableError(DevcertError):
    """A certificate in the inventory that devcert cannot reissue in place.

    ``reason`` is ``"csr"`` (signed from a CSR: its key stays with its owner), ``"pkcs12"``
    (written as PKCS#12: its key is sealed with a password devcert does not keep) or ``"acme"``
    (issued by ``devcert acme``: its ACME client renews it); ``path`` is the certificate file.
    The message names the file.
    """

    REASONS = {
        "csr": "issued for a CSR: its key is not here",
        "pkcs12": "written as PKCS#12: its key is sealed with a password devcert does not keep",
        "acme": "issued over ACME: its client holds the key and renews it",
    }

    def __init__(self, path: object, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path} was {self.REASONS[reason]}", fix=reason)


class NotRecordedError(UsageError):
    """A certificate file (``path``) that the inventory does not record, so devcert cannot renew it."""

    def __init__(self, path: object):
        self.path = path
        super().__init__(f"{path} is not in the inventory", fix="not-recorded")


class CAError(DevcertError):
    """The local CA is missing, damaged, or cannot be created."""


class CAMissingError(CAError):
    """A file of the CA is missing: ``path``, ``what`` (``"the CA certificate"``, ``"the CA key"``)."""

    def __init__(self, path: object, what: str, problem: str, *, fix: str | None = None):
        self.path, self.what = path, what
        super().__init__(problem, fix=fix)


class UnsafeCARootError(CAError):
    """CAROOT or a CA file could be changed by someone else: another user owns it, or group or
    others may write it. Using it would let that user swap in a CA of their own."""

    def __init__(self, path: object, reason: str, fix: str):
        self.path, self.reason, self.remedy = path, reason, fix
        # ``fix`` here is the step to take (a chmod, another folder), not a devcert command.
        super().__init__(f"refusing to use {path}: {reason}", api_fix=f"; {fix}")


class FileWriteError(DevcertError):
    """A file could not be written (permissions, missing folder, full disk)."""


class TrustStoreError(DevcertError):
    """A trust store could not be read or changed.

    ``advice``: the message as :class:`~devcert.advice.Advice` when its remedy is a devcert
    command (``str(err)`` is its neutral words; the CLI words it with the command).
    """

    def __init__(self, *args: object, advice: Advice | None = None, **kwargs: Any) -> None:
        self.advice = advice
        super().__init__(*(args or ((str(advice),) if advice is not None else ())), **kwargs)


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


class AcmeProblem(DevcertError):
    """An ACME request is refused: becomes an RFC 7807 problem document (``devcert.acme``).

    ``kind`` is the last part of the ``urn:ietf:params:acme:error:`` type (``badNonce``,
    ``malformed``, ...), ``status`` the HTTP status, ``subproblems`` a list of
    ``(kind, detail, identifier)`` for per-identifier problems (RFC 8555 6.7.1), ``headers``
    extra response headers (``Location`` of an existing account on a conflict) and
    ``algorithms`` the accepted ones (``badSignatureAlgorithm``).
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
