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
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from .base import Runner, TrustStore, cert_file, platform_key, query
from .macos import sha1_hex

if TYPE_CHECKING:
    from ..ca import LocalCA


def _certutil() -> str:
    system_root = os.environ.get("SystemRoot", r"C:\Windows")
    candidate = os.path.join(system_root, "System32", "certutil.exe")
    return candidate if os.path.exists(candidate) else (shutil.which("certutil.exe") or "certutil.exe")


class WindowsRootStore(TrustStore):
    name = "system"
    cheap_check = True

    def __init__(self, certutil: str | None = None, platform: str | None = None):
        self.platform = platform or platform_key()
        self.certutil = certutil or (_certutil() if self.platform == "windows" else "certutil.exe")

    def available(self) -> bool:
        return self.platform == "windows"

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
            runner.run([self.certutil, "-user", "-addstore", "-f", "Root", str(pem)])

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        runner = self._runner(runner)
        if not self.is_installed(ca):
            return
        runner.run([self.certutil, "-user", "-delstore", "Root", sha1_hex(ca)])
