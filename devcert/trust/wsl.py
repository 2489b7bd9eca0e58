"""Under WSL: the Windows side, the current Windows user's Root store (what Edge, Chrome, .NET and
Windows' curl read), changed from Linux through WSL interop, as ``dotnet dev-certs`` does.

Store name ``windows``; present only under WSL. The commands are the Windows store's own
(:mod:`devcert.trust.windows`: ``certutil.exe -user -addstore -f Root FILE``, ``-store Root
SHA1``, ``-delstore Root SHA1``), run as Windows programs from Linux, with every Linux path
translated by ``wslpath -w`` (``\\\\wsl.localhost\\<distro>\\...``, which Windows programs read).
No administrator rights are needed: it is the user's own store; Windows asks the user to
confirm adding a root in a dialog, and certutil.exe waits for the answer.

Not run on a real WSL: the tests check these exact commands with stand-in ``certutil.exe`` and
``wslpath`` programs that record their arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import TrustStoreError
from .base import last_line, query, which
from .windows import WindowsRootStore

__all__ = ["WSLWindowsStore", "is_wsl"]

#: Where WSL mounts the Windows system folder, for when interop's PATH entries are turned off
#: (``appendWindowsPath = false`` in /etc/wsl.conf).
WINDOWS_CERTUTIL = "/mnt/c/Windows/System32/certutil.exe"


def is_wsl(environ: Mapping[str, str] | None = None, osrelease: str = "/proc/sys/kernel/osrelease") -> bool:
    """Running under WSL: WSL sets WSL_DISTRO_NAME (and WSL_INTEROP) in every process it starts,
    and its kernels name themselves ``...-microsoft-standard-WSL2`` (WSL 1: ``...-Microsoft``)."""
    env = os.environ if environ is None else environ
    if env.get("WSL_DISTRO_NAME") or env.get("WSL_INTEROP"):
        return True
    try:
        return "microsoft" in Path(osrelease).read_text(encoding="ascii", errors="replace").lower()
    except OSError:
        return False


class WSLWindowsStore(WindowsRootStore):
    name = "windows"

    def __init__(self, certutil: str | None = None, wslpath: str | None = None, *, wsl: bool | None = None):
        self.wsl = is_wsl() if wsl is None else wsl
        found = certutil or which("certutil.exe") or (WINDOWS_CERTUTIL if os.path.exists(WINDOWS_CERTUTIL) else None)
        super().__init__(certutil=found or "certutil.exe", platform="windows")
        self.certutil_found = found is not None
        self.wslpath = wslpath or which("wslpath") or "wslpath"

    def available(self) -> bool:
        return self.wsl

    def not_available_reason(self) -> str:
        return "the Windows side is reached only from WSL (on Windows itself, `system` is its Root store)"

    def problem(self) -> str | None:
        if not self.certutil_found:
            return ("certutil.exe is not reachable: WSL interop is off or Windows' folders are not on PATH "
                    "(see [interop] in /etc/wsl.conf)")
        return None

    def describe(self) -> str:
        return "Windows current user's Root store, from WSL (certutil.exe -user)"

    def native_path(self, path: Path) -> str:
        """The Windows path of a Linux file, from ``wslpath -w`` (read-only: runs in dry runs too)."""
        result = query([self.wslpath, "-w", str(path)])
        text = result.stdout.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not text:
            why = last_line(result.stderr) or f"exit status {result.returncode}"
            raise TrustStoreError(f"cannot translate {path} to a Windows path with wslpath: {why}")
        return text

    def is_installed(self, ca) -> bool:  # type: ignore[no-untyped-def]
        problem = self.problem()
        if problem:
            raise TrustStoreError(problem)
        return super().is_installed(ca)

    def fix_for_problem(self) -> str | None:
        return "turn WSL interop on (enabled = true under [interop] in /etc/wsl.conf), then wsl --shutdown"
