"""The inventory: every certificate devcert issued, recorded in CAROOT/inventory.json.

``devcert list`` shows it, ``devcert renew`` and ``devcert ca rotate`` reissue from it. One
entry per certificate file (the absolute path is the key): issuing to the same path again
replaces the entry. The file is rewritten atomically under a lock, so concurrent ``devcert``
processes never lose each other's entries. The inventory is a convenience, never a gate: a
damaged file is set aside (renamed with a timestamp) with a warning, and a failure to record
is returned as a warning, never raised, so it cannot block issuing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DevcertError

if TYPE_CHECKING:
    from .ca import LocalCA
    from .issue import Leaf

INVENTORY_FILE = "inventory.json"
LOCK_FILE = ".inventory.lock"
VERSION = 1


def inventory_path(folder: Path | None = None) -> Path:
    from .ca import caroot

    return (folder or caroot()) / INVENTORY_FILE


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock for read-modify-write of the inventory (same pattern as ca._locked)."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.name == "nt":  # pragma: no cover - Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _set_aside(path: Path, why: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists() and n < 100:
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, target)
    except OSError as err:
        return f"the inventory {path} is damaged ({why}) and could not be moved aside: {err.strerror}"
    return f"the inventory {path} was damaged ({why}); moved it to {target.name} and started a new one"


def _valid_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("cert"), str) and isinstance(entry.get("names"), list)


def read(folder: Path | None = None, *, repair: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """``(entries, warnings)``; a damaged file is set aside (when ``repair``) and reads as empty."""
    path = inventory_path(folder)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as err:
        return [], [f"cannot read the inventory {path}: {err.strerror}"]
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("certs"), list):
            raise ValueError("not an inventory object")
        entries = data["certs"]
        if not all(_valid_entry(e) for e in entries):
            raise ValueError("an entry has no cert path or names")
    except ValueError as err:
        why = str(err).split(":")[0] if isinstance(err, json.JSONDecodeError) else str(err)
        if repair:
            return [], [_set_aside(path, why)]
        return [], [f"the inventory {path} is damaged ({why})"]
    return entries, []


def _write(folder: Path, entries: list[dict[str, Any]]) -> None:
    from .files import PRIVATE, atomic_write

    data = {"version": VERSION, "certs": sorted(entries, key=lambda e: e["cert"])}
    atomic_write(inventory_path(folder), (json.dumps(data, indent=2) + "\n").encode(), PRIVATE)


def entry_for(ca: LocalCA, leaf: Leaf, cert_path: str | os.PathLike[str],
              key_path: str | os.PathLike[str] | None, *, days: int | None = None,
              p12_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography import x509

    from .keys import describe

    try:
        ekus = set(leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    public_key = leaf.cert.public_key()
    key_desc = describe(public_key)  # type: ignore[arg-type]
    return {
        "cert": str(Path(cert_path).absolute()),
        "key": str(Path(key_path).absolute()) if key_path is not None else None,
        "p12": str(Path(p12_path).absolute()) if p12_path is not None else None,
        "names": [n.value for n in leaf.names],
        "serial": leaf.serial,
        "sha256": leaf.sha256,
        "not_before": leaf.cert.not_valid_before_utc.isoformat(),
        "not_after": leaf.not_after.isoformat(),
        "client": ExtendedKeyUsageOID.CLIENT_AUTH in ekus,
        "key_type": "rsa" if key_desc.startswith("RSA") else "ecdsa",
        "days": days,
        "ca_sha256": ca.fingerprint,
        "issued_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


def record(ca: LocalCA, leaf: Leaf, cert_path: str | os.PathLike[str],
           key_path: str | os.PathLike[str] | None = None, *, days: int | None = None,
           p12_path: str | os.PathLike[str] | None = None) -> list[str]:
    """Record that ``leaf`` was written to ``cert_path`` (and ``key_path``); return warnings.

    Never raises for inventory trouble: issuing already succeeded, and a broken inventory must
    not turn that into a failure. Does nothing for a CA without a folder (an ephemeral CA).
    """
    if ca.path is None:
        return []
    try:
        new = entry_for(ca, leaf, cert_path, key_path, days=days, p12_path=p12_path)
        with _locked(ca.path):
            entries, warnings = read(ca.path)
            # one entry per file: a new certificate (or PKCS#12) written over an old one replaces its entry
            written = {new["cert"], new["p12"]} - {None}
            entries = [e for e in entries if not written & {e.get("cert"), e.get("p12")}]
            entries.append(new)
            _write(ca.path, entries)
        return warnings
    except (OSError, DevcertError) as err:
        return [f"could not record {cert_path} in the inventory: {err}"]


def status(entry: dict[str, Any], ca: LocalCA | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """An entry with what is true now: ``missing``, ``replaced``, ``days_left``, ``other_ca``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = dict(entry)
    cert_path = Path(entry["cert"])
    out["missing"] = not cert_path.exists()
    out["key_missing"] = bool(entry.get("key")) and not Path(entry["key"]).exists()
    out["replaced"] = False
    if not out["missing"] and entry.get("p12") != entry["cert"]:  # a PKCS#12-only entry needs its password to read
        try:
            import hashlib

            from cryptography import x509

            from .keys import Encoding

            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            out["replaced"] = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest() != entry.get("sha256")
        except (OSError, ValueError):
            out["replaced"] = True
    try:
        not_after = dt.datetime.fromisoformat(entry["not_after"])
        out["days_left"] = (not_after - now).days
        out["expired"] = not_after <= now
    except (KeyError, TypeError, ValueError):
        out["days_left"] = None
        out["expired"] = None
    out["other_ca"] = ca is not None and entry.get("ca_sha256") != ca.fingerprint
    return out


class CSRLeafError(DevcertError):
    """The entry was signed from a CSR: its private key is not here, so it cannot be reissued.

    The message already names the certificate file; do not prefix it again.
    """


CSR_REASON = "issued for a CSR: its key is not here; sign a new CSR with `devcert create --csr`"


def from_csr(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` was signed from a CSR (no key recorded), so only its owner can renew it."""
    return not entry.get("key") and not entry.get("p12")


def not_renewable(entry: dict[str, Any]) -> str | None:
    """Why ``renew`` cannot reissue ``entry`` in place, or None when it can."""
    if entry.get("p12"):
        return ("written as PKCS#12: its key is sealed with a password devcert does not keep; "
                "make it again with `devcert create --p12-file`")
    if from_csr(entry):
        return CSR_REASON
    return None


def reissue(ca: LocalCA, entry: dict[str, Any]) -> tuple[Leaf, list[str]]:
    """Issue a new certificate with ``entry``'s names and options to its paths; record it."""
    from .issue import issue_leaf
    from .names import parse_names

    reason = not_renewable(entry)
    if reason is not None:
        raise CSRLeafError(f"{entry['cert']} was {reason}")
    leaf = issue_leaf(ca, parse_names(entry["names"]), client=bool(entry.get("client")),
                      key_type=entry.get("key_type") or "ecdsa", days=entry.get("days"))
    cert_path, key_path = Path(entry["cert"]), Path(entry["key"])
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    leaf.write(cert_path, key_path)
    warnings = list(leaf.warnings) + record(ca, leaf, cert_path, key_path, days=entry.get("days"))
    return leaf, warnings
