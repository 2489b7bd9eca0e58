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
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from ..errors import TrustStoreError
from .base import Runner, TrustStore, cert_file, platform_key, query

if TYPE_CHECKING:
    from ..ca import LocalCA

SECURITY = "/usr/bin/security"
SYSTEM_KEYCHAIN = "/Library/Keychains/System.keychain"


def sha1_hex(ca: LocalCA) -> str:
    """The SHA-1 thumbprint macOS and Windows tools use to name a certificate."""
    return hashlib.sha1(ca.cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # noqa: S324


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
