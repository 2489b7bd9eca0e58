"""The CA's life: ``devcert ca rotate`` (replace it everywhere) and ``devcert ca import-mkcert``.

Rotation order matters so that nothing is ever left untrusted: back up the old CA, make the
new one (same key type, same ``--permit`` widenings), install it in every store that trusted
the old one, reissue the inventory's certificates, and only then remove the old CA from those
stores. The old files stay in ``CAROOT/old/<fingerprint>/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ca import CERT_FILE, KEY_FILE, LocalCA, caroot
from .errors import CAError, DevcertError, UsageError
from .files import PRIVATE, PUBLIC, atomic_write, ensure_private_dir


def backup(ca: LocalCA, folder: Path | None = None) -> Path:
    """Copy ``ca``'s files to ``CAROOT/old/<fingerprint>/`` (0700 folder, 0600 key); return it."""
    root = folder or ca.path or caroot()
    target = ensure_private_dir(root / "old" / ca.fingerprint)
    atomic_write(target / CERT_FILE, ca.cert_pem, PUBLIC)
    if ca.key is not None:
        from .keys import private_pem

        atomic_write(target / KEY_FILE, private_pem(ca.key), PRIVATE)
    return target


def _key_type(ca: LocalCA) -> str:
    return "rsa" if ca.key_type.startswith("RSA") else "ecdsa"


@dataclass
class RotateReport:
    old: LocalCA
    new: LocalCA
    backup: Path
    installed: list[str] = field(default_factory=list)
    uninstalled: list[str] = field(default_factory=list)
    reissued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "old_sha256": self.old.fingerprint,
            "new_sha256": self.new.fingerprint,
            "backup": str(self.backup),
            "installed": self.installed,
            "uninstalled": self.uninstalled,
            "reissued": self.reissued,
            "skipped": self.skipped,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def rotate(folder: Path | None = None, *, stores: Sequence[Any] | None = None,
           progress: Callable[[str], None] | None = None) -> RotateReport:
    """Replace the CA in ``folder`` (default CAROOT) with a new one everywhere it was used.

    ``stores`` defaults to :func:`devcert.trust.selected_stores`. ``progress`` gets one line
    per step done, for the CLI to print as it goes.
    """
    from . import inventory

    say = progress or (lambda _msg: None)
    folder = Path(folder).absolute() if folder else caroot()
    old = LocalCA.load(folder)
    if stores is None:
        from .trust import selected_stores

        stores = list(selected_stores())
    trusted = []
    for store in stores:
        try:
            if store.available() and store.is_installed(old):
                trusted.append(store)
        except DevcertError as err:
            say(f"cannot tell whether {store.name} trusts the old CA ({err}); leaving it alone")
    saved = backup(old, folder)
    say(f"Backed up the old CA to {saved}")
    constraints = old.constraints
    new = LocalCA.create(folder, key_type=_key_type(old), permit=constraints.extra if constraints else (),
                         constraints=constraints is not None, force=True)
    report = RotateReport(old, new, saved)
    say(f"Created the new CA {new.common_name} (SHA-256 {new.fingerprint})")

    installed_ok = []
    for store in trusted:
        try:
            store.install(new)
            report.installed.append(store.name)
            installed_ok.append(store)
            say(f"Installed the new CA in {store.name}")
        except DevcertError as err:
            report.errors.append(f"{store.name}: could not install the new CA: {err}")

    entries, warnings = inventory.read(folder)
    report.warnings += warnings
    for entry in entries:
        if entry.get("ca_sha256") not in (old.fingerprint, None):
            continue  # issued by an even older CA and already stale; renew handles it on request
        if not Path(entry["cert"]).exists():
            report.skipped.append(f"{entry['cert']} (file missing)")
            continue
        if not entry.get("key"):
            report.skipped.append(f"{entry['cert']} (issued for a CSR: sign a new CSR)")
            continue
        try:
            _leaf, warns = inventory.reissue(new, entry)
            report.warnings += warns
            report.reissued.append(entry["cert"])
            say(f"Reissued {entry['cert']}")
        except DevcertError as err:
            report.errors.append(f"{entry['cert']}: could not reissue: {err}")

    for store in installed_ok:  # never leave a store that trusted the old CA trusting neither
        try:
            store.uninstall(old)
            report.uninstalled.append(store.name)
            say(f"Removed the old CA from {store.name}")
        except DevcertError as err:
            report.errors.append(f"{store.name}: could not remove the old CA: {err}")
    return report


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
    raise UsageError("cannot find mkcert's CA: mkcert is not installed and $CAROOT is not set; "
                     "give the folder with --caroot PATH (it holds rootCA.pem and rootCA-key.pem)")


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
        raise UsageError(f"no mkcert CA in {src}: {src / CERT_FILE} does not exist (run `mkcert -install` "
                         f"once, or give the folder with --caroot PATH)")
    try:
        mk = LocalCA.load(src)
    except CAError as err:
        # The fix load() suggests (`devcert ca init`, --force) is for devcert's own CA, not mkcert's.
        problem = str(err).split("; ")[0]
        raise CAError(f"cannot adopt mkcert's CA in {src}: {problem} (mkcert's own files; devcert changed nothing)") from None
    if src.resolve() == dest.resolve():
        return ImportReport(mk, src, unchanged=True)
    replaced = saved = None
    if LocalCA.exists(dest):
        try:
            current = LocalCA.load(dest, require_key=False)
        except CAError:
            current = None
        if current is not None and current.fingerprint == mk.fingerprint:
            return ImportReport(current, src, unchanged=True)
        if not force:
            raise CAError(f"a devcert CA already exists in {dest}; --force replaces it with mkcert's "
                          f"(the current one is backed up in {dest / 'old'})")
        if current is not None:
            replaced, saved = current, backup(current, dest)
    ensure_private_dir(dest)
    assert mk.key is not None
    from .keys import private_pem

    atomic_write(dest / KEY_FILE, private_pem(mk.key), PRIVATE)
    atomic_write(dest / CERT_FILE, mk.cert_pem, PUBLIC)
    return ImportReport(LocalCA.load(dest), src, replaced, saved)
