"""The words a CLI user reads for a core exception: the flags and commands that fix it.

The core's messages say what went wrong and carry the facts as fields (``devcert.errors``);
only the CLI knows its flag names and command lines. :func:`describe` puts them together:
``problem`` + the CLI's words for ``fix`` + ``then``, and for option errors the flag in front.
An exception without a ``fix`` the CLI knows reads as the core wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..advice import Advice
from ..errors import (DevcertError, NameNotPermittedError, NotRenewableError, OptionConflictError, OptionError,
                      TrustStoreError)

if TYPE_CHECKING:  # inventory loads cryptography: `devcert --help` must not pay for it
    from ..inventory import Skipped
    from ..trust import StoreStatus

#: The flag of each Python API keyword an option error names.
FLAGS = {
    "days": "--days", "permit": "--permit", "min_days": "--min-days", "warn_days": "--warn-days",
    "expiring": "--expiring", "shell": "--shell", "constraints=False": "--no-constraints",
}


def _widen_ca(err: DevcertError) -> str:
    assert isinstance(err, NameNotPermittedError)
    permits = ("--profile strict " if err.profile == "strict" else "") + " ".join(f"--permit {p}" for p in err.permits)
    return f" (then run `devcert install` again): devcert ca init --force {permits}"


#: ``fix`` -> what follows ``problem`` on the CLI line (before ``then``).
FIXES: dict[str, str | Callable[[DevcertError], str]] = {
    # the CA
    "init-ca": "; run `devcert ca init` to create one",
    "init-ca-after": " and run `devcert ca init`",
    "init-ca-instead": " (make a new CA with `devcert ca init` instead)",
    "or-replace-ca": " or run `devcert ca init --force`",
    "or-replace-ca-new": " or run `devcert ca init --force` for a new CA",
    "with-replace-ca": " with `devcert ca init --force`",
    "with-rotate-ca": " with `devcert ca rotate`",
    "orphan-key": " (or use `devcert ca init --force`)",
    "force": "; replace it with --force (force=True)",
    "unconstrained-ca": ": devcert ca init --force --no-constraints",
    "widen-ca": _widen_ca,
    "check-status": ", then check `devcert status` for CAs left trusted",
    "rotate-again": "; run `devcert ca rotate` again",
    # import-mkcert
    "mkcert-caroot": "; give the folder with --caroot PATH (it holds rootCA.pem and rootCA-key.pem)",
    "mkcert-install": " (run `mkcert -install` once, or give the folder with --caroot PATH)",
    "force-mkcert": "; --force replaces it with mkcert's",
    # certificates
    "example-names": ": for example `devcert create localhost 127.0.0.1 ::1`",
    "renew-later": "; `devcert renew` reissues later",
    "distinct-paths": ": give --cert-file and --key-file (cert_path, key_path) different paths",
    "shorter-name": " (give a shorter one with --cert-file / --key-file)",
    "csr": "; sign a new CSR with `devcert create --csr`",
    "pkcs12": "; make it again with `devcert create --p12-file`",
    "acme": "; the ACME client renews it from `devcert acme`",
    "not-recorded": (" (`devcert list` shows it); issue it with `devcert create` or declare it in the project "
                     "and run `devcert sync`"),
    # the project configuration
    "config-file": "; give --config the pyproject.toml or devcert.toml file itself",
    "sync-example": "; `devcert sync --help` shows an example",
}


#: The CLI's words for each remedy an :class:`~devcert.advice.Advice` names (the core's neutral
#: ones are ``advice.NEUTRAL``): the commands a user runs.
REMEDIES: dict[str, str] = {
    "init_ca": "devcert ca init",
    "replace_ca": "devcert ca init --force",
    "rotate_ca": "devcert ca rotate",
    "install": "devcert install",
    "install_store": "devcert install --store {store}",
    "install_system": "devcert install --store system",
    "uninstall_stale": "devcert uninstall --stale",
    "env": 'eval "$(devcert env)"',
    "caroot": "`devcert caroot`",
}


def word(advice: Advice | str) -> str:
    """Advice from the core (a doctor row's fix, a store's hint) as the CLI says it."""
    return advice.worded(REMEDIES) if isinstance(advice, Advice) else advice


def said(err: DevcertError) -> str:
    """A store's error as a per-store report line says it: as the core wrote it, or its advice worded."""
    if isinstance(err, TrustStoreError) and err.advice is not None:
        return word(err.advice)
    return str(err)


def store_row(status: StoreStatus) -> dict[str, Any]:
    """``status --json``'s row of a store: the core's row with its advice in the CLI's words."""
    return {**status.as_dict(), "detail": word(status.detail), "fix": None if status.fix is None else word(status.fix)}


def _fix_words(err: DevcertError) -> str | None:
    words = FIXES.get(err.fix) if err.fix else None
    if words is None:
        return None
    return words(err) if callable(words) else words


def describe(err: DevcertError) -> str:
    """The message a CLI user sees for ``err`` (after ``devcert: error: ``)."""
    if isinstance(err, OptionError):
        return f"{_flagged(err.option, err.value)}: {err.reason}{_fix_words(err) or ''}"
    if isinstance(err, OptionConflictError):
        return (f"{FLAGS.get(err.option, err.option)} ({err.option}=) {err.reason}; it cannot be used with "
                f"{FLAGS.get(err.other, err.other)} ({err.other})")
    if isinstance(err, TrustStoreError) and err.advice is not None:
        return word(err.advice)
    words = _fix_words(err)
    if words is None:
        return str(err)
    return f"{err.problem}{words}{err.then}"


def _flagged(option: str, value: object) -> str:
    """How the CLI names an option and its value: ``--days 900 (days=)``, ``--permit (permit=) 'x'``."""
    flag = FLAGS.get(option, "--" + option.replace("_", "-"))
    if option == "days":
        return f"{flag} {value} ({option}=)"
    if option == "permit":
        return f"{flag} ({option}=) {value!r}"
    if option == "shell":
        return f"{flag} {value!r}"
    return f"{flag} {value}"


def describe_skipped(skipped: Skipped) -> str:
    """A certificate ``renew`` or ``rotate`` left alone, as ``PATH (why; what to do)``."""
    if skipped.reason == "missing":
        return f"{skipped.path} (file missing)"
    return f"{skipped.path} ({NotRenewableError.REASONS[skipped.reason]}{FIXES[skipped.reason]})"
