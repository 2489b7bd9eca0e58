"""The macOS System keychain, with admin trust settings for SSL.

Not tested on a real Mac (devcert's CI runs on Linux): the commands below follow
``man security`` and mkcert's truststore_darwin.go, and the unit tests check exactly these
commands. Safari, Chrome, curl and everything built on Security.framework read this store.

- install:   ``sudo security add-trusted-cert -d -r trustRoot -p ssl -p basic
  -k /Library/Keychains/System.keychain rootCA.pem`` (``-d``: admin trust settings, so every
  user of the Mac trusts it; ``-r trustRoot``: a root; ``-p ssl -p basic``: for TLS)
- check:     ``security find-certificate -a -Z /Library/Keychains/System.keychain`` lists
  every certificate with its ``SHA-256 hash:``; the CA is installed when its hash is there
- uninstall: ``sudo security remove-trusted-cert -d rootCA.pem`` (the trust settings), then
  ``sudo security delete-certificate -Z <SHA-1> /Library/Keychains/System.keychain``

A keychain entry is named by the certificate's subject, not by devcert; the CA's hash is its
identity here, which gives the same guarantees as the ``devcert-<fingerprint>`` names elsewhere.

- list (every devcert CA, for stale ones): ``security find-certificate -a -c devcert -Z -p
  /Library/Keychains/System.keychain`` (``-c``: common name contains; ``-p``: the PEM), kept
  when the subject's O is devcert's; each is named ``devcert-<16 hex of its SHA-256>`` here.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from ..errors import TrustStoreError
from .base import Entry, Runner, TrustStore, cert_file, entry_name, pem_facts, pem_file, platform_key, query

if TYPE_CHECKING:
    from ..ca import LocalCA

SECURITY = "/usr/bin/security"
SYSTEM_KEYCHAIN = "/Library/Keychains/System.keychain"
#: What every CA devcert makes has in its subject (devcert.ca); CAs adopted from mkcert do not,
#: so on macOS and Windows, where entries carry no devcert name, they are not listed.
DEVCERT_ORG = "O=devcert development CA"


def sha1_hex(ca: LocalCA) -> str:
    """The SHA-1 thumbprint macOS and Windows tools use to name a certificate."""
    return hashlib.sha1(ca.cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # noqa: S324


def is_devcert_subject(subject: str | None) -> bool:
    return bool(subject) and DEVCERT_ORG in (subject or "").split(",")


def parse_find_certificate(text: str) -> list[tuple[str, str, bytes | None]]:
    """``(SHA-256, SHA-1, PEM)`` per certificate of ``security find-certificate -a -Z -p`` output."""
    found: list[tuple[str, str, bytes | None]] = []
    sha256 = sha1 = ""
    pem: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("SHA-256 hash:"):
            sha256, sha1, pem = line.split(":", 1)[1].strip().lower(), "", None
            found.append((sha256, sha1, None))
        elif line.startswith("SHA-1 hash:") and found:
            sha1 = line.split(":", 1)[1].strip().upper()
            found[-1] = (sha256, sha1, found[-1][2])
        elif line == "-----BEGIN CERTIFICATE-----" and found:
            pem = [line]
        elif pem is not None:
            pem.append(line)
            if line == "-----END CERTIFICATE-----":
                found[-1] = (sha256, sha1, ("\n".join(pem) + "\n").encode("ascii", "replace"))
                pem = None
    return found


class MacOSKeychainStore(TrustStore):
    name = "system"
    cheap_check = True

    def __init__(self, security: str = SECURITY, keychain: str = SYSTEM_KEYCHAIN, platform: str | None = None):
        self.security = security
        self.keychain = keychain
        self.platform = platform or platform_key()

    def available(self) -> bool:
        return self.platform == "darwin" and os.path.exists(self.security)

    def not_available_reason(self) -> str:
        return "the macOS keychain exists only on macOS"

    def describe(self) -> str:
        return f"macOS System keychain ({self.keychain})"

    def locations(self) -> list[str]:
        return [self.keychain]

    def is_installed(self, ca: LocalCA) -> bool:
        result = query([self.security, "find-certificate", "-a", "-Z", self.keychain])
        if result.returncode != 0:
            return False
        wanted = ca.fingerprint.upper()
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            if line.strip().startswith("SHA-256 hash:") and line.split(":", 1)[1].strip().upper() == wanted:
                return True
        return False

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        runner = self._runner(runner)
        if self.is_installed(ca):
            return
        with cert_file(ca) as pem:
            runner.run([self.security, "add-trusted-cert", "-d", "-r", "trustRoot", "-p", "ssl", "-p", "basic",
                        "-k", self.keychain, str(pem)], privileged=True)

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        runner = self._runner(runner)
        if not self.is_installed(ca):
            return
        with cert_file(ca) as pem:
            try:
                runner.run([self.security, "remove-trusted-cert", "-d", str(pem)], privileged=True)
            except TrustStoreError:
                pass  # no trust settings left for it; the certificate itself still goes below
            runner.run([self.security, "delete-certificate", "-Z", sha1_hex(ca), self.keychain], privileged=True)

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        if not self.available():
            return []
        result = query([self.security, "find-certificate", "-a", "-c", "devcert", "-Z", "-p", self.keychain])
        if result.returncode != 0:
            return []  # security exits non-zero when nothing matches
        found = []
        for sha256, sha1, pem in parse_find_certificate(result.stdout.decode("utf-8", "replace")):
            digest, subject = pem_facts(pem)
            if not is_devcert_subject(subject):
                continue
            sha256 = digest or sha256
            found.append(Entry(f"devcert-{sha256[:16]}", self.keychain, sha256, subject, ref=sha1, pem=pem))
        return found

    def is_current(self, entry: Entry, ca: LocalCA | None) -> bool:
        return ca is not None and (entry.name == entry_name(ca) or entry.ref == sha1_hex(ca))

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        """Trust settings first, then the certificate; if deleting it fails, its trust
        settings are put back (add-trusted-cert sets both)."""
        runner = self._runner(runner)
        if not entry.ref or entry.pem is None:
            raise TrustStoreError(f"cannot remove {entry.name}: its SHA-1 was not listed by security")
        with pem_file(entry.pem) as pem:
            untrusted = False
            try:
                runner.run([self.security, "remove-trusted-cert", "-d", str(pem)], privileged=True)
                untrusted = True
            except TrustStoreError:
                pass  # no trust settings left for it; the certificate itself still goes below
            try:
                runner.run([self.security, "delete-certificate", "-Z", entry.ref, self.keychain], privileged=True)
            except TrustStoreError:
                if untrusted:
                    try:
                        runner.run([self.security, "add-trusted-cert", "-d", "-r", "trustRoot", "-p", "ssl", "-p",
                                    "basic", "-k", self.keychain, str(pem)], privileged=True)
                    except TrustStoreError:
                        pass
                raise
