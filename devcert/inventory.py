"""The inventory: every certificate devcert issued, recorded in CAROOT/inventory.json.

``devcert list`` shows it, ``devcert renew`` and ``devcert ca rotate`` reissue from it. One
entry per certificate file (the absolute path is the key): issuing to the same path again
replaces the entry. A certificate and its inventory entry are written as one journaled change
(:func:`save`) under the CAROOT lock, so concurrent ``devcert`` processes never lose each
other's entries and a kill never leaves the inventory describing a file that is not on disk.
The inventory is a convenience, never a gate: a damaged file is set aside (renamed with a
timestamp) with a warning, an entry of the wrong shape is skipped with a warning, and a
failure to record is returned as a warning, never raised, so it cannot block issuing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import certs, keys
from .advice import Advice
from .errors import DevcertError, FileWriteError, NotRecordedError, NotRenewableError
from .files import PRIVATE, ensure_dir, write_together
from .keys import KEY_TYPES
from .layout import INVENTORY_FILE, PENDING_DIR, caroot
from .lock import locked

if TYPE_CHECKING:
    from .ca import LocalCA
    from .issue import Leaf

VERSION = 1


def inventory_path(folder: Path | None = None) -> Path:
    return (folder or caroot()) / INVENTORY_FILE


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


_OPTIONAL_STR = ("key", "p12", "ca_sha256", "serial", "sha256", "not_before", "not_after", "issued_at", "source")


def entry_problem(entry: Any) -> str | None:
    """Why ``entry`` cannot be used (a field of the wrong type), or None when its shape is right.

    Checked field by field, so a hand-edited or damaged entry is skipped instead of crashing
    ``list`` or ``renew``; the rest of the inventory stays usable.
    """
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    if not isinstance(entry.get("cert"), str) or not entry["cert"]:
        return "has no 'cert' path"
    names = entry.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return "'names' must be a list of strings"
    for key in _OPTIONAL_STR:
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"{key!r} must be a string or null, not {entry[key]!r}"
    days = entry.get("days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        return f"'days' must be a whole number or null, not {days!r}"
    if "client" in entry and not isinstance(entry["client"], bool):
        return f"'client' must be true or false, not {entry['client']!r}"
    if entry.get("key_type") is not None and entry["key_type"] not in KEY_TYPES:
        return f"'key_type' must be one of {', '.join(KEY_TYPES)}, not {entry['key_type']!r}"
    return None


def _read_all(folder: Path | None, *, repair: bool) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
    """``(every raw entry, the usable ones, warnings)``."""
    path = inventory_path(folder)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], [], []
    except OSError as err:
        return [], [], [f"cannot read the inventory {path}: {err.strerror}"]
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("certs"), list):
            raise ValueError("not an inventory object")
    except (ValueError, RecursionError) as err:
        why = str(err).split(":")[0] if isinstance(err, json.JSONDecodeError) else str(err) or "too deeply nested"
        if repair:
            return [], [], [_set_aside(path, why)]
        return [], [], [f"the inventory {path} is damaged ({why})"]
    everything = data["certs"]
    usable, bad = [], []
    for index, entry in enumerate(everything):
        problem = entry_problem(entry)
        if problem is None:
            usable.append(entry)
        else:
            bad.append(f"certs[{index}] {problem}")
    warnings = []
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        warnings.append(f"the inventory {path} has {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} devcert cannot "
                        f"use, skipped: {bad[0]}{more}; fix or remove {'it' if len(bad) == 1 else 'them'}")
    return everything, usable, warnings


def read(folder: Path | None = None, *, repair: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """``(entries, warnings)``: a damaged file is set aside (when ``repair``) and reads as empty;
    entries of the wrong shape are skipped with one warning."""
    _everything, usable, warnings = _read_all(folder, repair=repair)
    _reported.update(map(_topic, warnings))
    return usable, warnings


#: Warnings about the inventory file itself already returned in this process. ``renew --all``
#: and ``sync`` read the inventory and then save once per certificate, each save reading it
#: again: the same "entries devcert cannot use" warning is returned by the first read or save
#: only (the entries' indexes change as good entries are added before them, so they are ignored).
_reported: set[str] = set()


def _topic(warning: str) -> str:
    return re.sub(r"certs\[\d+\]", "certs[]", warning)


def _once(warnings: list[str]) -> list[str]:
    fresh = [w for w in warnings if _topic(w) not in _reported]
    _reported.update(map(_topic, fresh))
    return fresh


def _staged(folder: Path, everything: list[Any], new: dict[str, Any]) -> tuple[Path, bytes, int]:
    """The inventory file with ``new`` in place of any entry for the same files, for write_together."""
    written = {new["cert"], new.get("p12")} - {None}
    good = [e for e in everything if entry_problem(e) is None and not written & {e.get("cert"), e.get("p12")}]
    # Entries of the wrong shape are kept as they are, at the end, for a person to fix.
    bad = [e for e in everything if entry_problem(e) is not None]
    data = {"version": VERSION, "certs": sorted([*good, new], key=lambda e: e["cert"]) + bad}
    return inventory_path(folder), (json.dumps(data, indent=2) + "\n").encode(), PRIVATE


def entry_for(ca: LocalCA, leaf: Leaf, cert_path: str | os.PathLike[str],
              key_path: str | os.PathLike[str] | None, *, days: int | None = None,
              p12_path: str | os.PathLike[str] | None = None, source: str | None = None) -> dict[str, Any]:
    try:
        ekus = set(leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
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
        "key_type": keys.key_type_of(leaf.cert.public_key()),  # type: ignore[arg-type]
        "days": days,
        "ca_sha256": ca.fingerprint,
        "issued_at": certs.now().isoformat(),
        **({"source": source} if source else {}),
    }


def save(ca: LocalCA, leaf: Leaf, files: list[tuple[Path, bytes, int]], *, cert_path: str | os.PathLike[str],
         key_path: str | os.PathLike[str] | None = None, p12_path: str | os.PathLike[str] | None = None,
         days: int | None = None, source: str | None = None) -> list[str]:
    """Write ``files`` (the leaf's certificate, key or PKCS#12) and record the leaf, as one change.

    The files and the inventory change together (one journal in CAROOT/pending), under the
    CAROOT lock, so the inventory always records what is on disk, even after a kill, and
    concurrent runs never lose each other's entries. The inventory never blocks issuing: if
    it cannot be read or written, the files are written alone and a warning returned.
    Without a CA folder (an in-memory CA) the files are simply written together.
    """
    if ca.path is None:
        write_together(files)
        return []
    with locked(ca.path):
        try:
            everything, _usable, warnings = _read_all(ca.path, repair=True)
            warnings = _once(warnings)
            entry = entry_for(ca, leaf, cert_path, key_path, days=days, p12_path=p12_path, source=source)
            staged = _staged(ca.path, everything, entry)
        except (OSError, DevcertError) as err:
            write_together(files)
            return [f"could not record {cert_path} in the inventory: {err}"]
        try:
            write_together([*files, staged], journal_dir=ca.path / PENDING_DIR)
        except FileWriteError as err:
            # Either a file of the user's or the inventory (CAROOT full or read-only) failed; nothing
            # was changed. Without the inventory: if it was the user's file, this raises its error.
            write_together(files)
            warnings.append(f"could not record {cert_path} in the inventory: {err}")
        return warnings


def record(ca: LocalCA, leaf: Leaf, cert_path: str | os.PathLike[str],
           key_path: str | os.PathLike[str] | None = None, *, days: int | None = None,
           p12_path: str | os.PathLike[str] | None = None) -> list[str]:
    """Record that ``leaf`` was already written to ``cert_path`` (and ``key_path``); return warnings.

    For files written by other means; devcert's own writes use :func:`save`, which writes and
    records in one change. Never raises for inventory trouble.
    """
    if ca.path is None:
        return []
    try:
        with locked(ca.path):
            everything, _usable, warnings = _read_all(ca.path, repair=True)
            warnings = _once(warnings)
            staged = _staged(ca.path, everything, entry_for(ca, leaf, cert_path, key_path, days=days, p12_path=p12_path))
            write_together([staged])
        return warnings
    except (OSError, DevcertError) as err:
        return [f"could not record {cert_path} in the inventory: {err}"]


def status(entry: dict[str, Any], ca: LocalCA | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """An entry with what is true now: ``missing``, ``replaced``, ``days_left``, ``other_ca``."""
    now = now or certs.now()
    out = dict(entry)
    cert_path = Path(entry["cert"])
    out["missing"] = not cert_path.exists()
    out["key_missing"] = bool(entry.get("key")) and not Path(entry["key"]).exists()
    out["replaced"] = False
    if not out["missing"] and entry.get("p12") != entry["cert"]:  # a PKCS#12-only entry needs its password to read
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            out["replaced"] = certs.sha256(cert) != entry.get("sha256")
        except (OSError, ValueError):
            out["replaced"] = True
    try:
        not_after = dt.datetime.fromisoformat(entry["not_after"])
        out["days_left"] = certs.days_left(not_after, now)
        out["expired"] = certs.expired(not_after, now)
    except (KeyError, TypeError, ValueError):
        out["days_left"] = None
        out["expired"] = None
    out["other_ca"] = ca is not None and entry.get("ca_sha256") != ca.fingerprint
    return out


#: ``source`` of the certificates ``devcert acme`` issued (no key here: their ACME client renews them).
ACME_SOURCE = "acme"


def from_csr(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` was signed from a CSR (no key recorded), so only its owner can renew it."""
    return not entry.get("key") and not entry.get("p12")


def not_renewable(entry: dict[str, Any]) -> str | None:
    """Why ``renew`` and ``rotate`` cannot reissue ``entry`` in place, or None when they can:
    ``"pkcs12"`` (its key is sealed with a password devcert does not keep), ``"acme"`` (issued by
    ``devcert acme``: its ACME client renews it) or ``"csr"`` (signed from a CSR: its key stays
    with its owner); :class:`~devcert.errors.NotRenewableError` words each."""
    if entry.get("p12"):
        return "pkcs12"
    if entry.get("source") == ACME_SOURCE:
        return "acme"
    if from_csr(entry):
        return "csr"
    return None


class Skipped(NamedTuple):
    """A recorded certificate left alone by ``renew`` or ``rotate``: its file, and why.

    ``reason`` is ``"missing"`` (the file is gone), or a :func:`not_renewable` reason.
    """

    path: str
    reason: str

    def __str__(self) -> str:
        why = "file missing" if self.reason == "missing" else NotRenewableError.REASONS[self.reason]
        return f"{self.path} ({why})"


def skip_reason(entry: dict[str, Any]) -> str | None:
    """Why a reissue of every matching entry (``renew --all``, ``rotate``) leaves ``entry`` alone, or None."""
    if not Path(entry["cert"]).exists():
        return "missing"
    return not_renewable(entry)


def select_for_renewal(entries: Sequence[dict[str, Any]], ca: LocalCA | None, *,
                       paths: Iterable[str | os.PathLike[str]] | None = None,
                       expiring: int | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Which inventory ``entries`` to reissue: ``(selected, skipped)``.

    With ``paths``: the entries of those certificate (or key) files, each once, in the order
    given; a path the inventory does not record raises :class:`NotRecordedError`, and nothing
    is skipped (asked for by name, an entry that cannot be reissued fails loudly instead). Else
    every entry, or with ``expiring`` those with fewer than ``expiring`` days left (``ca`` is
    the current CA, for the status), minus those whose file is missing or that cannot be
    reissued in place, which are returned as skipped with the reason.
    """
    selected: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    if paths is not None:
        by_path: dict[str, dict[str, Any]] = {}
        for e in entries:
            by_path[e["cert"]] = e
            if e.get("key"):
                by_path[e["key"]] = e
        for p in paths:
            path = Path(p)
            entry = by_path.get(str(path.absolute())) or by_path.get(str(path.resolve()))
            if entry is None:
                raise NotRecordedError(p)
            if entry not in selected:
                selected.append(entry)
        return selected, skipped
    for e in entries:
        if expiring is not None:
            days_left = status(e, ca)["days_left"]
            if not (days_left is not None and days_left < expiring):
                continue
        reason = skip_reason(e)
        if reason is not None:
            skipped.append(Skipped(e["cert"], reason))
            continue
        selected.append(e)
    return selected, skipped


def reissue(ca: LocalCA, entry: dict[str, Any]) -> tuple[Leaf, list[Advice | str]]:
    """Issue a new certificate with ``entry``'s names and options to its paths; record it.

    Raises :class:`NotRenewableError` for an entry whose key devcert does not hold.
    """
    reason = not_renewable(entry)
    if reason is not None:
        raise NotRenewableError(entry["cert"], reason)
    cert_path, key_path = Path(entry["cert"]), Path(entry["key"])
    ca.check_output(cert_path)
    ca.check_output(key_path)
    leaf = ca.issue(*entry["names"], client=bool(entry.get("client")), key_type=entry.get("key_type") or "ecdsa",
                    days=entry.get("days"))
    ensure_dir(cert_path.parent)
    ensure_dir(key_path.parent)
    warnings = list(leaf.warnings) + save(ca, leaf, leaf.files(cert_path, key_path), cert_path=cert_path,
                                          key_path=key_path, days=entry.get("days"), source=entry.get("source"))
    return leaf, warnings
