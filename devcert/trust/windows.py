"""The current user's Root store on Windows (what Edge, Chrome, .NET, curl with Schannel read).

Not tested on a real Windows machine (devcert's CI runs on Linux): the commands follow
Microsoft's ``certutil`` documentation, and the unit tests check exactly these commands.
``certutil`` was chosen over ctypes calls into crypt32 because a command line can be tested
(and shown in ``--dry-run``) without Windows.

- install:   ``certutil -user -addstore -f Root rootCA.pem`` (Windows asks the user to
  confirm adding a root certificate in a dialog: that is its protection, not an error)
- check:     ``certutil -user -store Root <SHA-1>`` exits 0 when the certificate is there
- uninstall: ``certutil -user -delstore Root <SHA-1>``

No administrator rights are needed: it is the user's own store. The certificate's SHA-1
thumbprint (Windows' name for a certificate) is its identity here.

- list (every devcert CA, for stale ones): ``certutil -user -store Root`` (every root, with
  ``Subject:`` and ``Cert Hash(sha1):``), kept when the subject's O is devcert's; each one's
  certificate is then saved with ``certutil -user -store Root <SHA-1> <file>`` to learn its
  SHA-256, the ``devcert-<16 hex>`` name used elsewhere. Deleting one: ``-delstore`` as above.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TrustStoreError
from .base import Entry, Runner, TrustStore, cert_file, entry_name, first_pem, last_line, pem_facts, platform_key, query
from .macos import is_devcert_subject, sha1_hex

if TYPE_CHECKING:
    from ..ca import LocalCA


def _certutil() -> str:
    system_root = os.environ.get("SystemRoot", r"C:\Windows")
    candidate = os.path.join(system_root, "System32", "certutil.exe")
    return candidate if os.path.exists(candidate) else (shutil.which("certutil.exe") or "certutil.exe")


_HASH_LINE = re.compile(r"Cert Hash\(sha1\):\s*([0-9A-Fa-f ]+)$")


def parse_store_listing(text: str) -> list[tuple[str, str]]:
    """``(subject, SHA-1)`` per certificate of ``certutil -store`` output.

    certutil prints subjects as "CN=a, OU=b, O=c" (the reverse of RFC 4514 order); only the
    O attribute is looked at, so the order does not matter.
    """
    found: list[tuple[str, str]] = []
    subject = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("================"):
            subject = ""
        elif line.startswith("Subject:"):
            subject = line.split(":", 1)[1].strip()
        else:
            match = _HASH_LINE.search(line)
            if match:
                found.append((subject, match.group(1).replace(" ", "").upper()))
    return found


def _as_pem(data: bytes) -> bytes | None:
    """certutil saves a certificate as DER (or base64 with armour, in some versions)."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        return first_pem(data)
    # Only for what certutil saved as DER; cryptography's serialization package costs ~12 ms (keys.py).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization  # (see above)

    try:
        return x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.PEM)
    except ValueError:
        return None


class WindowsRootStore(TrustStore):
    name = "system"
    cheap_check = True

    def __init__(self, certutil: str | None = None, platform: str | None = None):
        self.platform = platform or platform_key()
        self.certutil = certutil or (_certutil() if self.platform == "windows" else "certutil.exe")

    def available(self) -> bool:
        return self.platform == "windows"

    def native_path(self, path: Path) -> str:
        """``path`` as certutil reads it (on Windows: as it is; under WSL the subclass translates)."""
        return str(path)

    def not_available_reason(self) -> str:
        return "the Windows Root store exists only on Windows"

    def describe(self) -> str:
        return "Windows current user's Root store (certmgr.msc: Trusted Root Certification Authorities)"

    def locations(self) -> list[str]:
        return ["CurrentUser\\Root"]

    def is_installed(self, ca: LocalCA) -> bool:
        return query([self.certutil, "-user", "-store", "Root", sha1_hex(ca)]).returncode == 0

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        runner = self._runner(runner)
        if self.is_installed(ca):
            return
        with cert_file(ca) as pem:
            runner.run([self.certutil, "-user", "-addstore", "-f", "Root", self.native_path(pem)])

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        runner = self._runner(runner)
        if not self.is_installed(ca):
            return
        runner.run([self.certutil, "-user", "-delstore", "Root", sha1_hex(ca)])

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        if not self.available():
            return []
        result = query([self.certutil, "-user", "-store", "Root"])
        if result.returncode != 0:
            why = last_line(result.stdout) or last_line(result.stderr) or f"exit status {result.returncode}"
            raise TrustStoreError(f"cannot list the Windows user Root store: {why}")
        found = []
        for subject, sha1 in parse_store_listing(result.stdout.decode("utf-8", "replace")):
            # "," without spaces: is_devcert_subject compares whole RDNs, and certutil puts O last.
            if not is_devcert_subject(",".join(part.strip() for part in subject.split(","))):
                continue
            pem = self._export(sha1)
            sha256, full_subject = pem_facts(pem)
            # Without the certificate there is no SHA-256: name it by its thumbprint, so it is
            # still listed (and is_current still recognises the CA's own by its SHA-1).
            name = f"devcert-{sha256[:16]}" if sha256 else f"devcert-sha1-{sha1[:16].lower()}"
            found.append(Entry(name, "CurrentUser\\Root", sha256, full_subject or subject, ref=sha1, pem=pem))
        return found

    def _export(self, sha1: str) -> bytes | None:
        import tempfile  # ~5 ms, only when a certificate is exported

        with tempfile.TemporaryDirectory(prefix="devcert-trust-") as tmp:
            out = Path(tmp) / "cert.cer"  # must not exist: certutil does not overwrite
            if query([self.certutil, "-user", "-store", "Root", sha1, self.native_path(out)]).returncode != 0:
                return None
            try:
                return _as_pem(out.read_bytes())
            except OSError:
                return None

    def is_current(self, entry: Entry, ca: LocalCA | None) -> bool:
        return ca is not None and (entry.name == entry_name(ca) or entry.ref == sha1_hex(ca))

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        """One ``-delstore``: it deletes or fails leaving the store as it was (Windows asks
        the user to confirm deleting a root; declining is reported as the failure)."""
        runner = self._runner(runner)
        if not entry.ref:
            raise TrustStoreError(f"cannot remove {entry.name}: no SHA-1 thumbprint was listed for it")
        runner.run([self.certutil, "-user", "-delstore", "Root", entry.ref])
