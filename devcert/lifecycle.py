"""The CA's life: ``devcert ca rotate`` (replace it everywhere) and ``devcert ca import-mkcert``.

Rotation order matters so that nothing is ever left untrusted: back up the old CA, make the
new one (same key type, same ``--permit`` widenings), install it in every store that trusted
the old one, switch CAROOT to it, reissue the inventory's certificates, and only then remove
the old CA from those stores. The old files stay in ``CAROOT/old/<fingerprint>/``. Each step
is recorded, so a run killed anywhere is carried on by the next devcert command
(:func:`recover`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import inventory, keys
from .advice import Advice
from .ca import DEFAULT_PROFILE, LocalCA, backup, check_profile, open_folder
from .errors import CAError, DevcertError, UsageError
from .files import PRIVATE, atomic_write, ensure_private_dir, pending_journals, write_together
from .files import recover as finish_writes
from .inventory import Skipped
from .layout import CERT_FILE, NEXT_DIR, OLD_DIR, PENDING_DIR, ROTATION_FILE, caroot
from .lock import locked
from .safety import ca_weakness, caroot_problem
from .trust import selected_stores


def is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@dataclass
class RotateReport:
    old: LocalCA
    new: LocalCA
    backup: Path
    installed: list[str] = field(default_factory=list)
    uninstalled: list[str] = field(default_factory=list)
    reissued: list[str] = field(default_factory=list)
    #: Certificates of the old CA left as they are (file missing, or a key devcert does not hold).
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[Advice | str] = field(default_factory=list)  # Advice: worded by the CLI
    #: True when this finished a rotation that an earlier, interrupted run had started.
    resumed: bool = False
    #: Store steps left for a later run (only when resumed by a command that may not use sudo).
    pending: list[str] = field(default_factory=list)
    #: Stores that trusted the old CA when the rotation began.
    trusted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data; each skipped certificate as ``"PATH (why)"``."""
        return {
            "old_sha256": self.old.fingerprint,
            "new_sha256": self.new.fingerprint,
            "backup": str(self.backup),
            "resumed": self.resumed,
            "trusted": self.trusted,
            "installed": self.installed,
            "uninstalled": self.uninstalled,
            "reissued": self.reissued,
            "skipped": [str(s) for s in self.skipped],
            "errors": self.errors,
            "warnings": [str(w) for w in self.warnings],
            "pending": self.pending,
        }


# -- rotation -------------------------------------------------------------------------------
#
# A rotation changes CAROOT, the inventory's certificates and the trust stores, and stores
# cannot take part in a file system transaction. So it is a small state machine whose state
# lives in CAROOT/rotation.json, rewritten atomically after every step, under the CAROOT lock
# for the whole run:
#
#   begin     the old CA is backed up in old/<sha256>/, the new one written to next/, and the
#             record written naming both and the stores that trust the old CA;
#   install   the new CA goes into each of those stores (recorded one by one);
#   switch    the new pair replaces CAROOT's pair, in the same journaled change that marks
#             the record "switched" (so the record never disagrees with CAROOT);
#   reissue   every inventory certificate of the old CA is reissued (each its own journaled
#             change with its inventory entry, so what is left is derived from the inventory);
#   remove    the old CA leaves each store that now trusts the new one (recorded one by one);
#   done      the record is removed.
#
# Any devcert command that finds the record (lifecycle.recover) carries the rotation on from
# where it stopped. Stores are never left trusting neither CA: the old CA is removed only
# from a store that accepted the new one; one that refused keeps the old CA, which status and
# doctor then report as stale, with `devcert uninstall --stale` to remove it.


def _record_path(folder: Path) -> Path:
    return folder / ROTATION_FILE


def _save_record(folder: Path, record: dict[str, Any]) -> None:
    atomic_write(_record_path(folder), _record_bytes(record), PRIVATE)


def _record_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2) + "\n").encode()


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = _record_path(folder)
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = None
    ok = isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("old", "new")) and all(
        isinstance(record.get(k), list) for k in ("trusted", "installed", "uninstalled"))
    if not ok:
        raise CAError(f"the rotation record {path} is damaged; move it aside", fix="check-status")
    return record


def rotate(folder: Path | None = None, *, stores: Sequence[Any] | None = None,
           progress: Callable[[str], None] | None = None, runner: Any = None,
           profile: str = DEFAULT_PROFILE) -> RotateReport:
    """Replace the CA in ``folder`` (default CAROOT) with a new one everywhere it was used.

    ``stores`` defaults to :func:`devcert.trust.selected_stores`. ``progress`` gets one line
    per step done, for the CLI to print as it goes. If an earlier rotation was interrupted,
    this finishes that one (its new CA is the one asked for) and starts no other. The new CA
    keeps the key type and DNS widenings; its constraints follow ``profile`` (the default
    profile, so rotating is also how an old ``strict`` CA moves to one every client accepts).
    """
    check_profile(profile)
    say = progress or (lambda _msg: None)
    folder = Path(folder).absolute() if folder else caroot()
    open_folder(folder)
    with locked(folder):
        if _read_record(folder) is not None:
            return _advance(folder, say, runner=runner, final=True, stores=stores, resumed=True)
        old = LocalCA.load(folder)
        if stores is None:
            stores = list(selected_stores())
        trusted = []
        for store in stores:
            try:
                if store.available() and store.is_installed(old):
                    trusted.append(store.name)
            except DevcertError as err:
                say(f"cannot tell whether {store.name} trusts the old CA ({err}); leaving it alone")
        saved = backup(old, folder)
        say(f"Backed up the old CA to {saved}")
        constraints = old.constraints
        widenings = list(constraints.extra) if constraints else []
        if profile != "strict":  # IP ranges are not constrained in the other profiles
            widenings = [w for w in widenings if not is_network(w)]
        new = LocalCA.ephemeral(keys.key_type_of(old.cert.public_key()), permit=widenings, constraints=constraints is not None, profile=profile)
        _clear_next(folder)
        staged = ensure_private_dir(folder / NEXT_DIR)
        write_together(new.files(staged))
        _save_record(folder, {"version": 1, "old": old.fingerprint, "new": new.fingerprint, "trusted": trusted,
                              "installed": [], "switched": False, "uninstalled": [], "failed": {}})
        say(f"Created the new CA {new.common_name} (SHA-256 {new.fingerprint})")
        return _advance(folder, say, runner=runner, final=True, stores=stores, resumed=False)


def _clear_next(folder: Path) -> None:
    staged = folder / NEXT_DIR
    if staged.is_dir():
        shutil.rmtree(staged, ignore_errors=True)


def _advance(folder: Path, say: Callable[[str], None], *, runner: Any, final: bool,
             stores: Sequence[Any] | None = None, resumed: bool = True) -> RotateReport:
    """Carry the rotation recorded in ``folder`` on to its end; the caller holds the lock.

    ``final``: store failures are the result (reported, the record removed). Otherwise (a
    command other than rotate finishing it, which may not ask for a password) a failing store
    step stays in the record for the next run.
    """
    record = _read_record(folder)
    assert record is not None
    record.setdefault("failed", {})
    old = LocalCA.load(folder / OLD_DIR / record["old"], require_key=False)
    if record.get("switched"):
        new = LocalCA.load(folder)
    else:
        try:
            staged = LocalCA.load(folder / NEXT_DIR)
        except CAError:
            staged = None
        if staged is None or staged.fingerprint != record["new"]:
            # Only a hand-edited CAROOT gets here: nothing was switched, so CAROOT is still the old CA.
            _record_path(folder).unlink(missing_ok=True)
            _clear_next(folder)
            raise CAError(f"the interrupted rotation in {folder} lost its new CA; nothing was switched and the "
                          f"old CA is still in use", fix="rotate-again")
        new = staged
    report = RotateReport(old, new, folder / OLD_DIR / record["old"], resumed=resumed)
    report.trusted = list(record["trusted"])
    by_name = _stores_by_name(record["trusted"], stores)

    def fail(step: str, name: str, err: DevcertError) -> None:
        if final:
            record["failed"][name] = f"{step}: {err}"
            report.errors.append(f"{name}: {step}: {err}")
        else:
            report.pending.append(f"{name}: {step}: {err}")

    for name in record["trusted"]:
        if name in record["installed"] or name in record["failed"]:
            continue
        try:
            by_name[name].install(new, runner)
        except DevcertError as err:
            fail("could not install the new CA", name, err)
            continue
        record["installed"].append(name)
        _save_record(folder, record)
        report.installed.append(name)
        say(f"Installed the new CA in {name}")

    if not record.get("switched"):
        record["switched"] = True
        current = LocalCA(new.cert, new.key, folder)
        current._save((_record_path(folder), _record_bytes(record), PRIVATE))
        _clear_next(folder)
        new = LocalCA.load(folder)
        report.new = new
        say(f"The new CA is now the CA in {folder}")

    entries, warnings = inventory.read(folder)
    report.warnings += warnings
    for entry in entries:
        if entry.get("ca_sha256") != old.fingerprint:
            continue  # reissued already, or from an even older CA (renew handles those on request)
        reason = inventory.skip_reason(entry)
        if reason is not None:
            report.skipped.append(Skipped(entry["cert"], reason))
            continue
        try:
            _leaf, warns = inventory.reissue(new, entry)
            report.warnings += warns
            report.reissued.append(entry["cert"])
            say(f"Reissued {entry['cert']}")
        except DevcertError as err:
            report.errors.append(f"{entry['cert']}: could not reissue: {err}")

    for name in record["installed"]:  # never leave a store that trusted the old CA trusting neither
        if name in record["uninstalled"] or name in record["failed"]:
            continue
        try:
            by_name[name].uninstall(old, runner)
        except DevcertError as err:
            fail("could not remove the old CA", name, err)
            continue
        record["uninstalled"].append(name)
        _save_record(folder, record)
        report.uninstalled.append(name)
        say(f"Removed the old CA from {name}")

    if not report.pending:
        _record_path(folder).unlink(missing_ok=True)
    return report


def _stores_by_name(names: Sequence[str], stores: Sequence[Any] | None) -> dict[str, Any]:
    given = {s.name: s for s in stores or ()}
    missing = [n for n in names if n not in given]
    if missing:
        given.update({s.name: s for s in selected_stores(missing)})
    return given


def recover(folder: Path | None = None, *, runner: Any = None,
            progress: Callable[[str], None] | None = None) -> RotateReport | None:
    """Finish what an interrupted devcert left in CAROOT: journaled writes, then a rotation.

    Every command runs this first (the CLI does, before anything else). Returns the report
    of a rotation it carried on, else None. An unsafe CAROOT is left alone: the command that
    uses it refuses it with the reason.
    """
    folder = Path(folder).absolute() if folder else caroot()
    if not folder.is_dir() or caroot_problem(folder) is not None:
        return None
    has_record = _record_path(folder).exists()
    if not (has_record or (folder / NEXT_DIR).exists() or pending_journals(folder / PENDING_DIR)):
        return None
    with locked(folder):
        finish_writes(folder / PENDING_DIR)
        if _read_record(folder) is None:
            _clear_next(folder)  # a rotation killed before it began: its staged CA is unused
            return None
        return _advance(folder, progress or (lambda _m: None), runner=runner, final=False)


def still_trusted(ca: LocalCA, stores: Sequence[Any] | None = None) -> list[str]:
    """Names of the stores that trust ``ca`` (for ``ca init --force``, which replaces it)."""
    if stores is None:
        stores = list(selected_stores())
    names = []
    for store in stores:
        try:
            if store.available() and store.is_installed(ca):
                names.append(store.name)
        except DevcertError:
            continue
    return names


# -- import-mkcert -------------------------------------------------------------------------


def mkcert_caroot(given: str | os.PathLike[str] | None = None) -> Path:
    """Where mkcert keeps its CA: ``given``, else ``$CAROOT``, else ``mkcert -CAROOT``."""
    if given:
        return Path(given).expanduser().absolute()
    env = os.environ.get("CAROOT")
    if env:
        return Path(env).expanduser().absolute()
    exe = shutil.which("mkcert")
    if exe:
        try:
            out = subprocess.run([exe, "-CAROOT"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip()).absolute()
        except (OSError, subprocess.TimeoutExpired):
            pass
    raise UsageError("cannot find mkcert's CA: mkcert is not installed and $CAROOT is not set", fix="mkcert-caroot",
                     api_fix="; give the folder (it holds rootCA.pem and rootCA-key.pem)")


@dataclass
class ImportReport:
    ca: LocalCA
    source: Path
    replaced: LocalCA | None = None
    backup: Path | None = None
    unchanged: bool = False


def import_mkcert(source: str | os.PathLike[str] | None = None, folder: Path | None = None, *,
                  force: bool = False) -> ImportReport:
    """Adopt mkcert's CA (files ``rootCA.pem`` + ``rootCA-key.pem``) as devcert's CA in ``folder``."""
    src = mkcert_caroot(source)
    dest = Path(folder).absolute() if folder else caroot()
    if not (src / CERT_FILE).exists():
        raise UsageError(f"no mkcert CA in {src}: {src / CERT_FILE} does not exist", fix="mkcert-install")
    try:
        mk = LocalCA.load(src)
    except CAError as err:
        # The fix load() suggests (make a new CA) is for devcert's own CA, not mkcert's.
        problem = err.problem.split("; ")[0]
        raise CAError(f"cannot adopt mkcert's CA in {src}: {problem} (mkcert's own files; devcert changed nothing)") from None
    weakness = ca_weakness(mk.cert)
    if weakness is not None:
        raise CAError(f"cannot adopt mkcert's CA in {src}: {weakness}; devcert changed nothing", fix="init-ca-instead")
    if src.resolve() == dest.resolve():
        return ImportReport(mk, src, unchanged=True)
    open_folder(dest, create=True)
    with locked(dest):
        replaced = saved = None
        if LocalCA.exists(dest):
            try:
                current = LocalCA.load(dest, require_key=False)
            except CAError:
                current = None
            if current is not None and current.fingerprint == mk.fingerprint:
                return ImportReport(current, src, unchanged=True)
            if not force:
                raise CAError(f"a devcert CA already exists in {dest}", fix="force-mkcert",
                              then=f" (the current one is backed up in {dest / OLD_DIR})",
                              api_fix="; force=True replaces it with mkcert's")
            if current is not None:
                replaced, saved = current, backup(current, dest)
        LocalCA(mk.cert, mk.key, dest)._save()
        return ImportReport(LocalCA.load(dest), src, replaced, saved)
