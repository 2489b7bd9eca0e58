"""The interface every trust store implements, and the runner that makes their changes.

A store (one module each: ``linux``, ``nss``, ``java``, ``macos``, ``windows``) answers
``available()``, ``is_installed(ca)``, ``describe()``, and changes itself only through
``install(ca, runner)`` / ``uninstall(ca, runner)``. Every change, a command or a file write,
goes through a :class:`Runner`, so the caller decides what happens to it: the default runner
just does it; the CLI's runner also prints each one first, adds ``sudo`` to the commands that
need root when devcert is not root, and with ``dry_run=True`` prints them without doing any.
Read-only questions (is it installed? which databases exist?) never go through the runner:
they run even in a dry run, which is what lets a dry run say what it *would* change.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography import x509

from .. import certs
from ..advice import Advice
from ..errors import TrustStoreError
from ..files import PUBLIC, atomic_write

if TYPE_CHECKING:
    import subprocess

    from ..ca import LocalCA

#: Commands that are usually outside a normal user's PATH on Linux.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
#: Seconds any one trust-store command may take (update-ca-trust on a slow disk takes ~5 s).
COMMAND_TIMEOUT = 120


def entry_name(ca: LocalCA) -> str:
    """The name of this CA's entry in every store: ``devcert-`` + 16 hex digits of its SHA-256.

    Derived from the fingerprint, so installing twice finds the same entry (one entry), two
    CAs never share one, and uninstall removes exactly this CA and nothing else.
    """
    return f"devcert-{ca.fingerprint[:16]}"


def which(name: str) -> str | None:
    """``shutil.which`` that also looks in the sbin folders a non-root PATH often lacks.

    On POSIX the search is done here: it is ``shutil.which``'s for a bare name, and
    ``devcert create`` (which asks whether a browser is installed) then skips importing
    shutil with bz2 and lzma, ~3 ms of its start-up.
    """
    if os.name != "posix":  # pragma: no cover - Windows: PATHEXT and the current folder
        import shutil  # on use only (see above)

        return shutil.which(name)
    if os.sep in name:
        return name if _executable(name) else None
    folders = os.environ.get("PATH", os.defpath).split(os.pathsep)
    for folder in [*folders, *SBIN]:
        if folder:
            candidate = os.path.join(folder, name)
            if _executable(candidate):
                return candidate
    return None


def _executable(path: str) -> bool:
    return os.access(path, os.X_OK) and os.path.isfile(path)


def is_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def last_line(text: str | bytes | None) -> str:
    """The most telling line of a tool's output: the last non-empty one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def query(argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a read-only command (never through the runner: it runs in dry runs too)."""
    import shlex  # with subprocess (~6 ms): only when a store tool is asked, never in `devcert create`
    import subprocess  # (see shlex)

    try:
        return subprocess.run(list(argv), capture_output=True, timeout=timeout, input=input, stdin=None if input else subprocess.DEVNULL)
    except FileNotFoundError:
        raise TrustStoreError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise TrustStoreError(f"`{shlex.join(argv)}` did not finish within {timeout:.0f} s") from None
    except OSError as err:
        raise TrustStoreError(f"cannot run {argv[0]}: {err.strerror}") from None


class Action:
    """One change the runner made (or, in a dry run, would have made)."""

    __slots__ = ("kind", "text", "sudo", "done")

    def __init__(self, kind: str, text: str, sudo: bool = False, done: bool = False):
        self.kind = kind  # "run", "write" or "remove"
        self.text = text  # the command line or the path, as printed
        self.sudo = sudo
        self.done = done

    def __repr__(self) -> str:
        return f"Action({self.kind!r}, {self.text!r}, sudo={self.sudo}, done={self.done})"


class Runner:
    """Carries out a store's changes: commands, file writes and removals.

    ``Runner()`` (the default every store method uses when given none) just does them, as
    the current user, and raises :class:`TrustStoreError` when one fails. The CLI passes
    ``Runner(echo=print_function, dry_run=...)``: ``echo`` is called with one line per
    change before it is made (``"$ cmd"``, ``"sudo $ cmd"``, ``"write PATH"``), and
    ``dry_run=True`` makes no change at all (commands are reported as run with no output).
    ``use_sudo`` (default: when not root on POSIX) prefixes ``sudo`` to the changes a store
    marks ``privileged``. Every change is recorded in :attr:`actions`.
    """

    def __init__(self, *, dry_run: bool = False, echo: Callable[[str], Any] | None = None,
                 use_sudo: bool | None = None):
        self.dry_run = dry_run
        self.echo = echo
        self.use_sudo = (os.name == "posix" and not is_root()) if use_sudo is None else use_sudo
        self.actions: list[Action] = []

    # -- internals -----------------------------------------------------------------------

    def _sudo_prefix(self, privileged: bool) -> list[str]:
        if not (privileged and self.use_sudo):
            return []
        if not self.dry_run and which("sudo") is None:
            raise TrustStoreError("this change needs root and sudo is not installed: run devcert as root")
        return ["sudo", "--"]

    def _record(self, kind: str, text: str, sudo: bool) -> Action:
        action = Action(kind, text, sudo)
        self.actions.append(action)
        if self.echo is not None:
            prefix = "would " if self.dry_run else ""
            label = {"run": "run", "write": "write", "remove": "remove"}[kind]
            self.echo(f"{prefix}{label}{' (sudo)' if sudo else ''}: {text}")
        return action

    # -- what stores call ----------------------------------------------------------------

    def run(self, argv: Sequence[str], *, privileged: bool = False, input: bytes | None = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        """Run a command that changes a store; raise :class:`TrustStoreError` if it fails."""
        import shlex  # with subprocess (~6 ms), only when a store is changed, never in `devcert create`
        import subprocess  # (see shlex)

        prefix = self._sudo_prefix(privileged)
        full = [*prefix, *argv]
        action = self._record("run", shlex.join(full), bool(prefix))
        if self.dry_run:
            return subprocess.CompletedProcess(full, 0, b"", b"")
        result = query(full, timeout=timeout, input=input)
        if result.returncode != 0:
            why = last_line(result.stderr) or last_line(result.stdout) or f"exit status {result.returncode}"
            raise TrustStoreError(f"`{shlex.join(full)}` failed: {why}")
        action.done = True
        return result

    def write_file(self, path: str | os.PathLike[str], data: bytes, *, privileged: bool | None = None,
                   mode: int = PUBLIC) -> None:
        """Write ``data`` to ``path`` (atomically; through ``sudo tee`` when it needs root).

        ``privileged=None`` decides from the folder: not writable by us means root is needed.
        """
        path = Path(path)
        if privileged is None:
            privileged = not os.access(path.parent, os.W_OK)
        use_sudo = bool(privileged and self.use_sudo)
        action = self._record("write", str(path), use_sudo)
        if self.dry_run:
            return
        if use_sudo:
            self._sudo_prefix(True)
            # tee writes what it reads; its copy to stdout is thrown away. chmod after, since
            # root's umask decides tee's mode.
            result = query(["sudo", "--", "tee", str(path)], input=data)
            if result.returncode != 0:
                raise TrustStoreError(f"cannot write {path} with sudo: {last_line(result.stderr)}")
            query(["sudo", "--", "chmod", format(mode, "o"), str(path)])
        else:
            atomic_write(path, data, mode)
        action.done = True

    def remove_file(self, path: str | os.PathLike[str], *, privileged: bool | None = None) -> None:
        """Remove ``path`` (a missing file is not an error)."""
        path = Path(path)
        if privileged is None:
            privileged = not os.access(path.parent, os.W_OK)
        use_sudo = bool(privileged and self.use_sudo)
        action = self._record("remove", str(path), use_sudo)
        if self.dry_run:
            return
        if use_sudo:
            self._sudo_prefix(True)
            result = query(["sudo", "--", "rm", "-f", "--", str(path)])
            if result.returncode != 0:
                raise TrustStoreError(f"cannot remove {path} with sudo: {last_line(result.stderr)}")
        else:
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                raise TrustStoreError(f"cannot remove {path}: {err.strerror}") from None
        action.done = True


#: What every store method uses when the caller gives no runner: just do it.
def default_runner() -> Runner:
    return Runner(use_sudo=False) if is_root() else Runner()


@contextlib.contextmanager
def cert_file(ca: LocalCA) -> Iterator[Path]:
    """A PEM file of the CA certificate for tools that read files: CAROOT's, or a temporary one."""
    if ca.cert_path is not None and ca.cert_path.is_file():
        yield ca.cert_path
        return
    with pem_file(ca.cert_pem) as path:
        yield path


@contextlib.contextmanager
def pem_file(pem: bytes) -> Iterator[Path]:
    """A temporary PEM file holding ``pem``, for tools that read certificates from files."""
    import tempfile  # ~5 ms, only for store tools that read files

    with tempfile.TemporaryDirectory(prefix="devcert-trust-") as tmp:
        path = Path(tmp) / "rootCA.pem"
        atomic_write(path, pem, PUBLIC)
        os.chmod(tmp, 0o755)  # tools run through sudo or as another user must read it
        yield path


#: The prefix of every entry name devcert gives (see :func:`entry_name`).
ENTRY_PREFIX = "devcert-"


class Entry(NamedTuple):
    """One devcert entry found in a store by :meth:`TrustStore.entries`, current CA or not.

    ``name`` is the entry's name there (``devcert-<16 hex>``; on macOS and Windows, which
    name certificates by subject, it is made the same way from the certificate's SHA-256);
    ``where`` the file, NSS database or keystore holding it. ``sha256`` (full, lower-case
    hex) and ``subject`` are filled in when the store hands out the certificate cheaply.
    ``pem`` is kept so a failed removal can put the entry back; ``ref`` is what the store
    needs besides the name (NSS: the trust flags; macOS/Windows: the SHA-1 thumbprint).
    """

    name: str
    where: str
    sha256: str | None = None
    subject: str | None = None
    ref: str | None = None
    pem: bytes | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.name, "where": self.where, "sha256": self.sha256, "subject": self.subject}


def first_pem(text: bytes | str) -> bytes | None:
    """The first PEM certificate block in a tool's output, or None."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    begin = text.find("-----BEGIN CERTIFICATE-----")
    if begin < 0:
        return None
    end_marker = "-----END CERTIFICATE-----"
    end = text.find(end_marker, begin)
    if end < 0:
        return None
    return (text[begin:end + len(end_marker)] + "\n").encode("ascii")


def pem_facts(pem: bytes | None) -> tuple[str | None, str | None]:
    """``(sha256 hex, RFC 4514 subject)`` of a PEM certificate; ``(None, None)`` if unreadable."""
    if not pem:
        return None, None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None, None
    return certs.sha256(cert), cert.subject.rfc4514_string()


class StoreStatus(NamedTuple):
    """One row of ``devcert status``: a store, where it is, and whether this CA is in it."""

    name: str
    where: str
    available: bool
    installed: bool | None  # None: unknown (store missing, tool missing, or no CA yet)
    #: Advice where the words name a devcert command (the CLI words it: ``cli.messages.word``).
    detail: Advice | str = ""
    fix: Advice | str | None = None
    locations: list[dict[str, Any]] = []  # never mutated: each status gets its own list

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values, advice in neutral words (the CLI words it first)."""
        return {
            "store": self.name, "where": self.where, "available": self.available,
            "installed": self.installed, "detail": str(self.detail),
            "fix": None if self.fix is None else str(self.fix),
            "locations": self.locations,
        }


class TrustStore:
    """One trust store. Subclasses set :attr:`name` and implement the five methods.

    - ``available()``: the store exists on this machine (cheap, no CA needed).
    - ``problem()``: why it cannot be changed right now (a tool is missing), or None.
    - ``is_installed(ca)``: this CA is trusted there (in every location the store covers).
    - ``install(ca, runner=None)`` / ``uninstall(ca, runner=None)``: idempotent; on failure
      they undo what they did, leaving the store as it was, and raise TrustStoreError.
    - ``describe()``: one line saying what and where the store is.
    - ``entries()``: every devcert entry there (any CA's), as :class:`Entry`; read-only.
    - ``remove_entry(entry, runner=None)`` / ``remove_entries(entries, runner=None)``: remove
      entries by name (what ``uninstall --stale`` uses); the same undo-on-failure care.
    ``runner`` defaults to :func:`default_runner` (just run, as the current user).
    """

    name: str = ""
    #: True when ``is_installed`` costs no more than reading a few files (``trusted_anywhere``).
    cheap_check: bool = False
    #: True when an install needs a browser restart to be seen.
    restart_hint: str | None = None

    def available(self) -> bool:
        raise NotImplementedError

    def problem(self) -> Advice | str | None:
        return None

    def is_installed(self, ca: LocalCA) -> bool:
        raise NotImplementedError

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        raise NotImplementedError

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def locations(self) -> list[str]:
        """The concrete places this store covers (files, databases); for status and doctor."""
        return []

    def location_states(self, ca: LocalCA) -> list[dict[str, Any]]:
        """Per location: ``{"where": str, "installed": bool}`` (stores with several override)."""
        return []

    def not_available_reason(self) -> Advice | str:
        return f"no {self.name} trust store found on this machine"

    # -- every devcert entry, for stale ones ------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every devcert entry in this store, whichever CA it is; [] when the store is absent.

        Read-only (runs in dry runs). Raises :class:`TrustStoreError` when the store exists
        but cannot be read (its tool is missing), so "no entries" is never a guess.
        """
        raise NotImplementedError

    def is_current(self, entry: Entry, ca: LocalCA | None) -> bool:
        """True when ``entry`` is ``ca``'s own (never stale); no CA means no entry is current."""
        return ca is not None and entry.name == entry_name(ca)

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        """Remove one entry found by :meth:`entries`; on failure it is left as it was."""
        raise NotImplementedError

    def remove_entries(self, entries: Sequence[Entry], runner: Runner | None = None) -> list[tuple[Entry, TrustStoreError]]:
        """Remove each entry; returns those that could not be removed, with why (each left as it was).

        Stores whose removals share an expensive step (the Linux bundle rebuild) override this.
        """
        runner = self._runner(runner)
        failed: list[tuple[Entry, TrustStoreError]] = []
        for entry in entries:
            try:
                self.remove_entry(entry, runner)
            except TrustStoreError as err:
                failed.append((entry, err))
        return failed

    def status(self, ca: LocalCA | None) -> StoreStatus:
        """The state of this CA in this store, with a fix when it is not trusted."""
        if not self.available():
            return StoreStatus(self.name, self.describe(), False, None, self.not_available_reason())
        problem = self.problem()
        if ca is None:
            return StoreStatus(self.name, self.describe(), True, None, "no local CA yet",
                               Advice("{install}"))
        locs: list[dict[str, Any]] = []
        try:
            installed: bool | None = self.is_installed(ca)
            locs = self.location_states(ca)
        except TrustStoreError as err:
            installed, problem = None, problem or str(err)
        if problem:
            return StoreStatus(self.name, self.describe(), True, installed, problem, self.fix_for_problem(), locs)
        if installed:
            return StoreStatus(self.name, self.describe(), True, True, "installed", None, locs)
        partly = [loc for loc in locs if loc.get("installed")]
        detail = f"installed in {len(partly)} of {len(locs)}" if partly else "not installed"
        return StoreStatus(self.name, self.describe(), True, False, detail,
                           Advice("{install_store}", {"store": self.name}), locs)

    def fix_for_problem(self) -> str | None:
        return None

    def _runner(self, runner: Runner | None) -> Runner:
        return runner if runner is not None else default_runner()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def platform_key() -> str:
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("win") or sys.platform == "cygwin":
        return "windows"
    return "linux"
