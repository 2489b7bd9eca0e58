"""What several commands share: loading the CA (and saying when one was created), the
"not trusted yet" hint, and small option checks.

Typer-free: ``devcert create`` uses it on its fast path.
"""

from __future__ import annotations

from ..ca import LocalCA, caroot
from ..errors import DevcertError, UsageError
from ..trust import trusted_anywhere
from .messages import describe
from .output import echo, warn

#: Set once the "Run `devcert install`" line was printed, so a command says it once.
_install_advised = False


def load_ca_for_issuing() -> LocalCA:
    """The CA in CAROOT, created on first need with a line that says so."""
    global _install_advised
    ca = LocalCA.load_or_create()
    if ca.created:
        echo(f"Created a new local CA in {caroot()} ({ca.common_name}).", err=True)
        echo("Run `devcert install` to make browsers and tools trust it.", err=True)
        _install_advised = True
    return ca


def not_trusted_hint(ca: LocalCA) -> None:
    """One line when the CA is not trusted by any store here, as mkcert does; else nothing."""
    if _install_advised:
        return
    try:
        trusted = trusted_anywhere(ca)
    except Exception:  # a hint must never break issuing
        return
    if not trusted:
        echo("Note: the local CA is not trusted on this machine yet; run `devcert install` once.", err=True)


def existing_ca(require_key: bool = False) -> LocalCA | None:
    """The CA in CAROOT, or None when there is none yet."""
    return LocalCA.load(require_key=require_key) if LocalCA.exists() else None


def readable_ca() -> LocalCA | None:
    """For commands that only report (list, inspect): the CA, or None with a warning when it is unreadable.

    A damaged rootCA.pem must not stop `devcert inspect some.pem` or `devcert list`.
    """
    try:
        return existing_ca()
    except DevcertError as err:
        warn(f"{describe(err)}; reporting without the local CA")
        return None


def check_days(option: str, days: int | None) -> None:
    if days is not None and days < 0:
        raise UsageError(f"{option} {days}: give 0 or more days")


def date(iso: str | None) -> str:
    """The day of an ISO timestamp, or ? when there is none."""
    return iso[:10] if iso else "?"


def print_ca_info(info: dict) -> None:  # type: ignore[type-arg]
    """``ca info`` and ``ca init``: the CA as people read it."""
    echo(f"Subject:     {info['subject']}")
    echo(f"SHA-256:     {info['sha256']}")
    echo(f"Key:         {info['key_type']}")
    echo(f"Valid:       {info['not_before'][:10]} to {info['not_after'][:10]}")
    echo(f"Certificate: {info['cert']}")
    if info.get("key_problem"):
        echo(f"Private key: unusable (this CA cannot sign): {info['key_problem']}")
    else:
        echo(f"Private key: {info['key'] or 'missing (this CA cannot sign)'}")
    constraints = info["constraints"]
    if constraints is None:
        echo("Constraints: none (this CA can sign for any name)")
    else:
        echo(f"Profile:     {constraints['profile']}: {constraints['about']}")
        echo(f"Permits:     {', '.join(constraints['dns'])}")
        if constraints["ip"] is not None:
            echo(f"             {', '.join(constraints['ip'])}")
