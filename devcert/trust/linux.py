"""The Linux system trust store, for each distribution family.

What reads it: curl, wget, git, OpenSSL and Python's ``ssl`` (the bundle under /etc/ssl or
/etc/pki), Go, Node with ``--use-system-ca``, and (on Debian, through its update hook) Java.
Each family keeps administrator-added CA files in an "anchors" folder and rebuilds the bundle
with one command; devcert writes ``<anchors>/devcert-<fingerprint>.crt`` and runs it.

The family comes from /etc/os-release (``ID``, then each of ``ID_LIKE``); when that names
nothing known, the folders themselves are probed. An unknown distribution gets a message
naming the file to copy and the command to run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..advice import Advice
from ..errors import DevcertError, TrustStoreError
from .base import ENTRY_PREFIX, Entry, Runner, TrustStore, entry_name, pem_facts, which

if TYPE_CHECKING:
    from ..ca import LocalCA

OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")


class Family(NamedTuple):
    key: str
    label: str
    anchors: str  # folder of administrator-added CA files
    suffix: str  # file extension the update command picks up
    update: tuple[str, ...]  # the command that rebuilds the bundle
    bundles: tuple[str, ...]  # where the rebuilt PEM bundle lands (first existing one is read)
    package: str  # the package that provides ``update``
    #: Where ``update`` links each anchor (Debian: ``NAME.pem``, Alpine: ``ca-cert-NAME.pem``),
    #: with OpenSSL's hash links (``HASH.0``) to those. Debian's tool leaves a removed anchor's
    #: links dangling (only ``--fresh`` drops them, and with them every link others made), so
    #: uninstall removes them itself (:meth:`LinuxSystemStore.links_to`); Alpine's removes its
    #: own, and its hook rehashes. None: the family makes no links to its anchors.
    links: str | None = None


FAMILIES: dict[str, Family] = {
    "debian": Family(
        "debian", "Debian/Ubuntu", "/usr/local/share/ca-certificates", ".crt", ("update-ca-certificates",),
        ("/etc/ssl/certs/ca-certificates.crt",), "ca-certificates", "/etc/ssl/certs",
    ),
    "fedora": Family(
        "fedora", "Fedora/RHEL", "/etc/pki/ca-trust/source/anchors", ".pem", ("update-ca-trust", "extract"),
        ("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/pki/tls/certs/ca-bundle.crt"), "ca-certificates",
    ),
    "arch": Family(
        "arch", "Arch", "/etc/ca-certificates/trust-source/anchors", ".crt", ("trust", "extract-compat"),
        ("/etc/ca-certificates/extracted/tls-ca-bundle.pem", "/etc/ssl/certs/ca-certificates.crt"), "ca-certificates",
    ),
    "suse": Family(
        "suse", "openSUSE/SLES", "/usr/share/pki/trust/anchors", ".pem", ("update-ca-certificates",),
        ("/var/lib/ca-certificates/ca-bundle.pem", "/etc/ssl/ca-bundle.pem"), "ca-certificates",
    ),
    "alpine": Family(
        "alpine", "Alpine", "/usr/local/share/ca-certificates", ".crt", ("update-ca-certificates",),
        ("/etc/ssl/certs/ca-certificates.crt",), "ca-certificates", "/etc/ssl/certs",
    ),
}

#: os-release ID / ID_LIKE values and the family they belong to.
_IDS = {
    "debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "pop": "debian", "raspbian": "debian",
    "elementary": "debian", "kali": "debian", "neon": "debian", "devuan": "debian",
    "fedora": "fedora", "rhel": "fedora", "centos": "fedora", "rocky": "fedora", "almalinux": "fedora",
    "ol": "fedora", "amzn": "fedora", "mageia": "fedora",
    "arch": "arch", "manjaro": "arch", "endeavouros": "arch", "garuda": "arch", "artix": "arch",
    "opensuse": "suse", "suse": "suse", "sles": "suse", "opensuse-leap": "suse", "opensuse-tumbleweed": "suse",
    "alpine": "alpine",
}


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), with shell quoting removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"\s*([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


def read_os_release() -> str | None:
    for path in OS_RELEASE:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return None


def detect_family(os_release: str | None, isdir: Callable[[str], bool] = os.path.isdir) -> Family | None:
    """The family from os-release text (ID first, then ID_LIKE), else by probing folders."""
    if os_release:
        values = parse_os_release(os_release)
        ids = [values.get("ID", "").lower(), *values.get("ID_LIKE", "").lower().split()]
        for ident in ids:
            if ident in _IDS:
                return FAMILIES[_IDS[ident]]
            if ident.startswith("opensuse"):
                return FAMILIES["suse"]
    # Probing, most specific first: /usr/local/share/ca-certificates also exists on some
    # non-Debian systems, so it comes last.
    for key in ("fedora", "arch", "suse", "debian"):
        if isdir(FAMILIES[key].anchors):
            return FAMILIES[key]
    return None


def _pem_body(pem: bytes) -> str:
    """The base64 of a PEM without armour or whitespace, to look for in a bundle."""
    lines = pem.decode("ascii").strip().splitlines()
    return "".join(line.strip() for line in lines if not line.startswith("-----"))


class LinuxSystemStore(TrustStore):
    """The distribution's CA bundle, fed from its anchors folder."""

    name = "system"
    cheap_check = True

    def __init__(self, family: Family | None = None, *, os_release: str | None = None, distro: str | None = None):
        if family is None:
            text = os_release if os_release is not None else read_os_release()
            family = detect_family(text)
            if distro is None and text:
                distro = parse_os_release(text).get("ID")
        self.family = family
        self.distro = distro or "unknown"

    def entry_path(self, ca: LocalCA) -> Path:
        assert self.family is not None
        return Path(self.family.anchors) / f"{entry_name(ca)}{self.family.suffix}"

    def bundle(self) -> Path | None:
        if self.family is None:
            return None
        for path in self.family.bundles:
            if os.path.isfile(path):
                return Path(path)
        return None

    def available(self) -> bool:
        return True  # every Linux has one; an unknown family is explained by problem()

    def problem(self) -> Advice | str | None:
        if self.family is None:
            return Advice(
                "devcert does not know how this Linux distribution (ID={distro}) manages its CA "
                "store: copy the CA certificate ({caroot}/rootCA.pem) into its anchors folder "
                "(often /usr/local/share/ca-certificates/ as a .crt file) and run its update command "
                "(often `sudo update-ca-certificates`)", {"distro": str(self.distro)})
        if which(self.family.update[0]) is None:
            return f"{self.family.update[0]} is missing: install the {self.family.package} package"
        return None

    def fix_for_problem(self) -> str | None:
        if self.family is None:
            return "copy rootCA.pem into the anchors folder and run the update command"
        return f"install {self.family.package}"

    def describe(self) -> str:
        if self.family is None:
            return f"system CA store (unknown distribution {self.distro})"
        return f"{self.family.label} system store ({self.family.anchors})"

    def locations(self) -> list[str]:
        return [self.family.anchors] if self.family else []

    def location_states(self, ca: LocalCA) -> list[dict[str, object]]:
        if self.family is None:
            return []
        bundle = self.bundle()
        return [{"where": str(self.entry_path(ca)), "installed": self.entry_path(ca).is_file(),
                 "bundle": str(bundle) if bundle else None, "in_bundle": self.is_installed(ca)}]

    def is_installed(self, ca: LocalCA) -> bool:
        """Our file is in the anchors folder and the rebuilt bundle contains the CA."""
        if self.family is None:
            return False
        if not self.entry_path(ca).is_file():
            return False
        bundle = self.bundle()
        if bundle is None:
            return True  # nothing to compare with; the anchor is what the family reads
        try:
            text = bundle.read_text(encoding="ascii", errors="replace")
        except OSError:
            return True
        return _pem_body(ca.cert_pem) in "".join(text.split())

    def _update(self, runner: Runner) -> None:
        assert self.family is not None
        tool = which(self.family.update[0]) or self.family.update[0]
        runner.run([tool, *self.family.update[1:]], privileged=True)

    def _check(self) -> None:
        problem = self.problem()
        if problem:
            raise TrustStoreError(problem) if isinstance(problem, str) else TrustStoreError(advice=problem)

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        self._check()
        runner = self._runner(runner)
        if self.is_installed(ca):
            return
        path = self.entry_path(ca)
        had_file = path.is_file()
        if not os.path.isdir(path.parent):
            runner.run(["mkdir", "-p", str(path.parent)], privileged=not os.access(path.parent.parent, os.W_OK))
        runner.write_file(path, ca.cert_pem)
        try:
            self._update(runner)
        except TrustStoreError:
            if not had_file:  # put the store back as it was
                try:
                    runner.remove_file(path)
                except TrustStoreError:
                    pass
            raise

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        """Remove the anchor, rebuild the bundle, then remove the links the rebuild left
        leading to the removed anchor: the store is then as before the install."""
        if self.family is None:
            return
        path = self.entry_path(ca)
        if not path.is_file():
            # a run killed between the rebuild and the links (or a devcert from before links
            # were removed) left them dangling: they go now, so uninstalling again finishes
            if self.links_to(path):
                self._remove_links(self._runner(runner), path)
            return
        self._check()
        self._remove_and_update(self._runner(runner), ca, path)

    def _remove_and_update(self, runner: Runner, ca: LocalCA, path: Path) -> None:
        """Remove the anchor, rebuild the bundle, then remove the anchor's links; if the rebuild
        fails, put the anchor back (its links were not touched), so the store is as it was."""
        runner.remove_file(path)
        try:
            self._update(runner)
        except TrustStoreError:
            try:
                runner.write_file(path, ca.cert_pem)
            except TrustStoreError:
                pass
            raise
        self._remove_links(runner, path)

    # -- the links the update tool made -----------------------------------------------------

    def links_to(self, anchor: Path) -> list[Path]:
        """The symlinks in the family's links folder (:attr:`Family.links`) that lead to
        ``anchor``: directly (Debian's ``devcert-<fp>.pem``) or through another link (OpenSSL's
        ``<hash>.0``). A link is followed to its end, existing or not, so a link left dangling
        by the anchor's removal is found, and only links to this file are: any other leads elsewhere."""
        if self.family is None or self.family.links is None:
            return []
        folder = Path(self.family.links)
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return []
        target = self._resolved(anchor)
        found: list[Path] = []
        for child in children:
            if not child.is_symlink():
                continue
            try:
                leads_to = self._resolved(child)
            except (OSError, TrustStoreError):  # a link loop, or unreadable: not a link to the anchor
                continue
            if leads_to == target:
                found.append(child)
        return found

    def _resolved(self, path: Path) -> Path:
        """``path`` with every symlink followed, a missing last part kept (a dangling link's
        end). The root file system store resolves inside its root instead."""
        return Path(os.path.realpath(path))

    def _remove_links(self, runner: Runner, anchor: Path) -> None:
        """Remove the links that still lead to the removed ``anchor`` (see :attr:`Family.links`),
        through the runner, so a dry run shows them and sudo is used when needed."""
        for link in self.links_to(anchor):
            try:
                runner.remove_file(link)
            except TrustStoreError as err:
                raise TrustStoreError(f"{anchor} was removed and the bundle rebuilt, but {err}") from None

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Each ``devcert-*`` file in the anchors folder (any suffix: an older devcert or a
        hand copy may have used another), with the certificate it holds."""
        if self.family is None:
            return []
        folder = Path(self.family.anchors)
        try:
            names = sorted(child.name for child in folder.iterdir() if child.name.startswith(ENTRY_PREFIX))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise TrustStoreError(f"cannot list {folder}: {err.strerror}") from None
        found: list[Entry] = []
        for file_name in names:
            path = folder / file_name
            if not path.is_file():
                continue
            try:
                pem: bytes | None = path.read_bytes()
            except OSError:
                pem = None  # still listed and removable; only the undo needs its content
            sha256, subject = pem_facts(pem)
            stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
            found.append(Entry(stem, str(path), sha256, subject, pem=pem))
        return found

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        failed = self.remove_entries([entry], runner)
        if failed:
            raise failed[0][1]

    def remove_entries(self, entries: Sequence[Entry], runner: Runner | None = None) -> list[tuple[Entry, TrustStoreError]]:
        """Remove the files, rebuild the bundle once (not once per entry: it takes seconds), then
        remove each file's links (as :meth:`uninstall` does). If the rebuild fails, every file is
        written back from the content read by entries() (the store as it was; no link was
        touched) and each entry is reported with that one reason."""
        entries = list(entries)
        if not entries:
            return []
        self._check()
        runner = self._runner(runner)
        removed: list[Entry] = []
        failed: list[tuple[Entry, TrustStoreError]] = []
        for entry in entries:
            try:
                runner.remove_file(entry.where)
            except TrustStoreError as err:
                failed.append((entry, err))
                continue
            removed.append(entry)
        if not removed:
            return failed
        try:
            self._update(runner)
        except TrustStoreError as err:
            for entry in removed:
                if entry.pem is not None:
                    try:
                        runner.write_file(entry.where, entry.pem)
                    except DevcertError:  # TrustStoreError (sudo tee) or FileWriteError: keep going
                        pass
            failed.extend((entry, err) for entry in removed)
            return failed
        for entry in removed:
            try:
                self._remove_links(runner, Path(entry.where))
            except TrustStoreError as err:
                failed.append((entry, err))
        return failed
