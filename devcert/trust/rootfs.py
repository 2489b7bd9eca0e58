"""The system trust store of another Linux root file system: an image build stage, a chroot, a
devcontainer's file system (``devcert install --root DIR``).

The distribution comes from DIR/etc/os-release (else DIR/usr/lib/os-release), read with the
same rules as this machine's (:func:`devcert.trust.linux.detect_family`); the anchor goes where
that distribution wants it, inside DIR. The bundle is rebuilt by the distribution's own tool run
inside ``chroot DIR`` when that can be done here (devcert is root, ``chroot`` exists and the tool
is in DIR); otherwise the store records the exact command for the image's next ``RUN`` line in
:attr:`RootFSStore.deferred`, and the caller shows it.

Every path is resolved *inside* DIR, as the chroot would see it: an image's
``/etc/os-release -> /usr/lib/os-release`` or ``/etc/ssl/certs -> /somewhere`` must lead into
DIR, never to this machine's files of the same name, or installing into an image would change
the host's store. Nothing outside DIR is read or written.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import TrustStoreError, UsageError
from .base import Runner, is_root, which
from .linux import FAMILIES, OS_RELEASE, Family, LinuxSystemStore, detect_family, parse_os_release

if TYPE_CHECKING:
    from ..ca import LocalCA

__all__ = ["INSTALL_PACKAGE", "RootFSStore", "resolve_in", "run_line"]

#: Where a distribution's tools live, searched inside DIR in this order.
TOOL_FOLDERS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Symlinks followed while resolving one path inside DIR; more is a loop.
MAX_LINKS = 40

#: Per family: the command that installs the ``ca-certificates`` package in an image (for a
#: RUN line when the update tool is not in it yet), non-interactive, as the images' docs say.
INSTALL_PACKAGE: dict[str, str] = {
    "debian": "apt-get update && apt-get install -y --no-install-recommends ca-certificates",
    "alpine": "apk add --no-cache ca-certificates",
    "fedora": "dnf install -y ca-certificates",
    "arch": "pacman -Sy --noconfirm ca-certificates",
    "suse": "zypper --non-interactive install ca-certificates",
}


def run_line(family: Family, *, with_package: bool = False) -> str:
    """The shell command that rebuilds ``family``'s bundle (first installing its package)."""
    update = shlex.join(family.update)
    return f"{INSTALL_PACKAGE[family.key]} && {update}" if with_package else update


def resolve_in(root: Path, path: str) -> Path:
    """``path`` (absolute, as seen inside the chroot) resolved inside ``root``, symlinks included.

    Absolute link targets are taken relative to ``root`` and ``..`` never climbs above it, as
    in a chroot. Components that do not exist yet are appended as they are (a file about to be
    written). Raises TrustStoreError on a symlink loop.
    """
    root = Path(os.path.realpath(root))
    parts = list(PurePosixPath(path).parts[1:] if path.startswith("/") else PurePosixPath(path).parts)
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise TrustStoreError(f"too many symbolic links resolving {path} inside {root}")
            target = os.readlink(candidate)
            target_parts = list(PurePosixPath(target).parts)
            if target.startswith("/"):
                resolved = []
                target_parts = target_parts[1:]
            parts = target_parts + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


class RootFSStore(LinuxSystemStore):
    """The CA bundle of the Linux root file system at ``root``, changed from outside it."""

    name = "rootfs"
    cheap_check = True

    def __init__(self, root: str | os.PathLike[str], *, chroot: str | None = None, as_root: bool | None = None):
        self.root = Path(os.path.realpath(root))
        self.chroot = chroot if chroot is not None else which("chroot")
        self.as_root = is_root() if as_root is None else as_root
        #: Commands this store could not run here, for the image's next RUN line (shell text).
        self.deferred: list[str] = []
        if not self.root.is_dir():
            raise UsageError(f"{root} is not a folder: give the root file system of an image or a chroot")
        text = self._os_release()
        family = detect_family(text, isdir=lambda p: resolve_in(self.root, p).is_dir())
        distro = parse_os_release(text).get("ID") if text else None
        #: The distribution's own family, with its paths as they are inside the root.
        self.inner_family = family
        if family is not None:
            family = family._replace(
                anchors=str(resolve_in(self.root, family.anchors)),
                bundles=tuple(str(resolve_in(self.root, b)) for b in family.bundles),
                links=str(resolve_in(self.root, family.links)) if family.links else None,
            )
        # Not LinuxSystemStore.__init__: given no family, it would detect this machine's.
        self.family = family
        self.distro = distro or ("unknown" if text else "no os-release")

    def _os_release(self) -> str | None:
        for path in OS_RELEASE:
            try:
                return resolve_in(self.root, path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        return None

    def tool_inside(self) -> str | None:
        """The update tool's path as seen inside the root (``/usr/sbin/update-ca-certificates``), or None."""
        if self.inner_family is None:
            return None
        name = self.inner_family.update[0]
        for folder in TOOL_FOLDERS:
            inner = f"{folder}/{name}"
            real = resolve_in(self.root, inner)
            if real.is_file() and os.access(real, os.X_OK):
                return inner
        return None

    def can_run_inside(self) -> bool:
        return self.as_root and self.chroot is not None and self.tool_inside() is not None

    def next_run_line(self) -> str | None:
        """The command for the image's next RUN line, when it cannot be run here; else None."""
        if self.inner_family is None or self.can_run_inside():
            return None
        return run_line(self.inner_family, with_package=self.tool_inside() is None)

    # -- the TrustStore interface, inside the root -------------------------------------------

    def available(self) -> bool:
        return True

    def problem(self) -> str | None:
        if self.family is None:
            found = "its os-release names" if self.distro != "no os-release" else "it has no etc/os-release and"
            return (f"devcert does not know the Linux distribution in {self.root} ({found} ID={self.distro}): "
                    f"known are {', '.join(f.label for f in FAMILIES.values())}")
        return None

    def fix_for_problem(self) -> str | None:
        return None

    def describe(self) -> str:
        if self.family is None:
            return f"system CA store in {self.root} (unknown distribution)"
        assert self.inner_family is not None
        return f"{self.inner_family.label} system store in {self.root} ({self.inner_family.anchors})"

    def is_installed(self, ca: LocalCA) -> bool:
        """The anchor is in the root; and the root's bundle has the CA, unless its rebuild is
        left for the image's next RUN line (then the anchor is all that can be checked here)."""
        if self.family is None or not self.entry_path(ca).is_file():
            return False
        if not self.can_run_inside():
            return True
        return super().is_installed(ca)

    def _update(self, runner: Runner) -> None:
        assert self.inner_family is not None
        if not self.can_run_inside():
            line = self.next_run_line()
            if line and line not in self.deferred:
                self.deferred.append(line)
            return
        assert self.chroot is not None
        tool = self.tool_inside()
        assert tool is not None
        runner.run([self.chroot, str(self.root), tool, *self.inner_family.update[1:]], privileged=True)

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        self._check()
        runner = self._runner(runner)
        if self.is_installed(ca):
            return
        path = self.entry_path(ca)
        self._check_inside(path)
        if not path.parent.is_dir():
            runner.run(["mkdir", "-p", str(path.parent)], privileged=False)
        super().install(ca, runner)

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        """As on this machine (the anchor, then the links the rebuild left to it: the root is
        then byte for byte as before the install), never outside the root."""
        if self.family is not None:
            self._check_inside(self.entry_path(ca))
        super().uninstall(ca, runner)

    def _resolved(self, path: Path) -> Path:
        # Inside the root, as the chroot sees it: the image's absolute links lead into the root.
        return resolve_in(self.root, "/" + str(path.relative_to(self.root)))

    def _check_inside(self, path: Path) -> None:
        """Belt and braces over :func:`resolve_in`: never write a file outside the root."""
        if os.path.commonpath([self.root, os.path.realpath(path.parent)]) != str(self.root):
            raise TrustStoreError(f"{path} is outside {self.root}: refusing to write there")

    def _runner(self, runner: Runner | None) -> Runner:
        # Files in the root are written as the current user: a root file system the user
        # cannot write is one to build as root, not one to change through sudo behind their back.
        return runner if runner is not None else Runner(use_sudo=False)
