"""NSS databases: Chrome/Chromium on Linux (``~/.pki/nssdb``) and Firefox everywhere.

Firefox ignores the system store by default and keeps its own ``cert9.db`` in each profile;
Chromium on Linux reads ``~/.pki/nssdb`` (snap Chromium its own copy). devcert adds the CA to
every database it finds, with ``certutil`` from NSS's tools, as a trusted SSL CA (``C,,``:
trusted to issue server certificates, nothing else), under the nickname
``devcert-<fingerprint>``.

Databases found: ``~/.pki/nssdb`` (created when missing and a Chromium/Chrome is installed:
Chromium creates it on first start and would then see an empty one), snap Chromium's, and
each Firefox profile listed in ``profiles.ini`` (or holding a ``cert9.db``) under the
regular (``~/.mozilla/firefox``, and ``$XDG_CONFIG_HOME/mozilla/firefox`` where newer Firefox
keeps them), snap and flatpak locations, and macOS's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrustStoreError
from .base import (ENTRY_PREFIX, Entry, Runner, TrustStore, cert_file, entry_name, first_pem, last_line, pem_file,
                   pem_facts, platform_key, query, which)

if TYPE_CHECKING:
    from ..ca import LocalCA

#: Trust flags for SSL, S/MIME, code signing: a CA trusted to issue TLS server certificates.
TRUST_FLAGS = "C,,"

#: Firefox profile roots, relative to HOME (each holds a profiles.ini).
FIREFOX_ROOTS = (
    ".mozilla/firefox",
    # Newer Firefox releases on Linux keep profiles under $XDG_CONFIG_HOME (firefox-esr 153 does).
    ".config/mozilla/firefox",
    "snap/firefox/common/.config/mozilla/firefox",
    ".var/app/org.mozilla.firefox/config/mozilla/firefox",
    "snap/firefox/common/.mozilla/firefox",
    ".var/app/org.mozilla.firefox/.mozilla/firefox",
    ".var/app/org.mozilla.firefox_esr/.mozilla/firefox",
    "Library/Application Support/Firefox",
    "AppData/Roaming/Mozilla/Firefox",
)
#: NSS databases of Chromium-family browsers, relative to HOME.
CHROMIUM_DBS = (".pki/nssdb", "snap/chromium/current/.pki/nssdb")
#: Programs whose presence means ~/.pki/nssdb will be read even if it does not exist yet.
CHROMIUM_PROGRAMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "brave-browser",
                     "microsoft-edge", "microsoft-edge-stable")
#: Where certutil lives when not on PATH (Homebrew's nss is keg-only).
CERTUTIL_EXTRA = ("/opt/homebrew/opt/nss/bin/certutil", "/usr/local/opt/nss/bin/certutil")

#: The package that provides certutil, per os-release family.
CERTUTIL_PACKAGES = {
    "debian": "libnss3-tools (sudo apt install libnss3-tools)",
    "fedora": "nss-tools (sudo dnf install nss-tools)",
    "arch": "nss (sudo pacman -S nss)",
    "suse": "mozilla-nss-tools (sudo zypper install mozilla-nss-tools)",
    "alpine": "nss-tools (sudo apk add nss-tools)",
}


def certutil_package() -> str:
    """Which package provides NSS's certutil on this OS, as a phrase for a message."""
    kind = platform_key()
    if kind == "darwin":
        return "Homebrew's nss (brew install nss)"
    if kind == "windows":
        return "NSS's tools (Windows' own certutil.exe is a different program)"
    from .linux import detect_family, read_os_release

    family = detect_family(read_os_release())
    if family is not None and family.key in CERTUTIL_PACKAGES:
        return CERTUTIL_PACKAGES[family.key]
    return "your distribution's NSS tools package (libnss3-tools on Debian/Ubuntu, nss-tools on Fedora)"


def find_certutil() -> str | None:
    if platform_key() == "windows":
        return None  # certutil.exe on Windows is Microsoft's, not NSS's
    found = which("certutil")
    if found:
        return found
    for path in CERTUTIL_EXTRA:
        if os.access(path, os.X_OK):
            return path
    return None


def firefox_profiles(root: Path) -> list[Path]:
    """Profile folders under one Firefox root: those profiles.ini lists, then any with a cert9.db."""
    found: list[Path] = []
    ini = root / "profiles.ini"
    if ini.is_file():
        import configparser  # only when a Firefox profile exists: ~10 ms off `devcert create`

        parser = configparser.RawConfigParser()
        try:
            parser.read(ini, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            parser = configparser.RawConfigParser()
        for section in parser.sections():
            if not section.startswith("Profile") or not parser.has_option(section, "Path"):
                continue
            raw = parser.get(section, "Path")
            relative = parser.get(section, "IsRelative", fallback="1").strip() != "0"
            found.append((root / raw) if relative else Path(raw))
    try:
        for child in sorted(root.iterdir()):
            if (child / "cert9.db").is_file() and child not in found:
                found.append(child)
    except OSError:
        pass
    return found


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def find_databases(home: Path | None = None, *, create_chromium: bool | None = None) -> list[tuple[Path, bool]]:
    """NSS databases as ``(folder, exists)``; ``exists=False`` for a ~/.pki/nssdb to create.

    A folder counts when it holds ``cert9.db`` (the SQL format; the old ``cert8.db`` format
    is not supported by current certutil and browsers no longer use it).
    """
    home = home or _home()
    dbs: list[tuple[Path, bool]] = []
    seen: set[str] = set()

    def add(folder: Path, exists: bool = True) -> None:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            dbs.append((folder, exists))

    for rel in CHROMIUM_DBS:
        if (home / rel / "cert9.db").is_file():
            add(home / rel)
    if platform_key() == "linux" and not (home / CHROMIUM_DBS[0] / "cert9.db").is_file():
        if create_chromium is None:
            create_chromium = any(which(p) for p in CHROMIUM_PROGRAMS)
        if create_chromium:
            add(home / CHROMIUM_DBS[0], exists=False)
    roots = [home / rel for rel in FIREFOX_ROOTS]
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and home == _home():
        roots.insert(1, Path(xdg) / "mozilla" / "firefox")
    for root in roots:
        if root.is_dir():
            for profile in firefox_profiles(root):
                if (profile / "cert9.db").is_file():
                    add(profile)
    return dbs


class NSSStore(TrustStore):
    """Every NSS database found (Chromium on Linux, Firefox profiles)."""

    name = "nss"
    restart_hint = "restart Firefox if it is running (Chromium picks the change up on its next start)"

    def __init__(self, home: Path | None = None):
        self.home = home

    def databases(self) -> list[tuple[Path, bool]]:
        return find_databases(self.home)

    def available(self) -> bool:
        return bool(self.databases())

    def not_available_reason(self) -> str:
        return "no Firefox profile or Chromium NSS database found"

    def problem(self) -> str | None:
        if find_certutil() is None:
            return f"certutil is missing: it comes with {certutil_package()}"
        return None

    def fix_for_problem(self) -> str | None:
        return f"install {certutil_package()}"

    def describe(self) -> str:
        dbs = self.databases()
        if not dbs:
            return "NSS (Firefox, Chromium): no database found"
        names = ", ".join(self._label(db) for db, _ in dbs)
        return f"NSS databases: {names}"

    def _label(self, db: Path) -> str:
        home = str(self.home or _home())
        text = str(db)
        return "~" + text[len(home):] if text.startswith(home + os.sep) else text

    def locations(self) -> list[str]:
        return [str(db) for db, _ in self.databases()]

    def _certutil(self) -> str:
        tool = find_certutil()
        if tool is None:
            raise TrustStoreError(f"certutil is missing: it comes with {certutil_package()}")
        return tool

    @staticmethod
    def _has(tool: str, db: Path, nick: str) -> bool:
        if not (db / "cert9.db").is_file():
            return False
        return query([tool, "-L", "-d", f"sql:{db}", "-n", nick]).returncode == 0

    def location_states(self, ca: LocalCA) -> list[dict[str, Any]]:
        tool = find_certutil()
        if tool is None:
            return []
        nick = entry_name(ca)
        return [{"where": str(db), "installed": self._has(tool, db, nick)} for db, _ in self.databases()]

    def is_installed(self, ca: LocalCA) -> bool:
        tool = find_certutil()
        dbs = self.databases()
        if tool is None or not dbs:
            return False
        nick = entry_name(ca)
        return all(self._has(tool, db, nick) for db, _ in dbs)

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        tool = self._certutil()
        runner = self._runner(runner)
        nick = entry_name(ca)
        done: list[Path] = []
        try:
            with cert_file(ca) as pem:
                for db, exists in self.databases():
                    if exists and self._has(tool, db, nick):
                        continue
                    if not exists:
                        if not db.is_dir():
                            runner.run(["mkdir", "-p", "-m", "700", str(db)])
                        runner.run([tool, "-N", "-d", f"sql:{db}", "--empty-password"])
                    try:
                        runner.run([tool, "-A", "-d", f"sql:{db}", "-t", TRUST_FLAGS, "-n", nick, "-i", str(pem)])
                    except TrustStoreError as err:
                        raise TrustStoreError(f"cannot add the CA to the NSS database {db}: {_why(err)}") from None
                    done.append(db)
        except TrustStoreError:
            for db in done:  # leave every database as it was
                try:
                    runner.run([tool, "-D", "-d", f"sql:{db}", "-n", nick])
                except TrustStoreError:
                    pass
            raise

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        dbs = [db for db, exists in self.databases() if exists]
        if not dbs:
            return
        tool = self._certutil()
        runner = self._runner(runner)
        nick = entry_name(ca)
        removed: list[Path] = []
        try:
            for db in dbs:
                # One entry per nickname is the rule, but a database edited by hand could hold
                # more: delete until none is left, a bounded number of times.
                for _ in range(5):
                    if not self._has(tool, db, nick):
                        break
                    try:
                        runner.run([tool, "-D", "-d", f"sql:{db}", "-n", nick])
                    except TrustStoreError as err:
                        raise TrustStoreError(f"cannot remove the CA from the NSS database {db}: {_why(err)}") from None
                    if db not in removed:
                        removed.append(db)
                    if runner.dry_run:
                        break
        except TrustStoreError:
            with cert_file(ca) as pem:
                for db in removed:
                    try:
                        runner.run([tool, "-A", "-d", f"sql:{db}", "-t", TRUST_FLAGS, "-n", nick, "-i", str(pem)])
                    except TrustStoreError:
                        pass
            raise

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Nicknames starting with ``devcert-`` in every existing database."""
        dbs = [db for db, exists in self.databases() if exists and (db / "cert9.db").is_file()]
        if not dbs:
            return []
        tool = self._certutil()
        found: list[Entry] = []
        for db in dbs:
            found.extend(_entries_in(tool, db))
        return found

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        tool = self._certutil()
        runner = self._runner(runner)
        db = Path(entry.where)
        deleted = False
        try:
            # As in uninstall: a nickname is meant to be unique, but delete until none is left.
            for _ in range(5):
                if not self._has(tool, db, entry.name):
                    break
                try:
                    runner.run([tool, "-D", "-d", f"sql:{db}", "-n", entry.name])
                except TrustStoreError as err:
                    raise TrustStoreError(f"cannot remove {entry.name} from the NSS database {db}: {_why(err)}") from None
                deleted = True
                if runner.dry_run:
                    break
        except TrustStoreError:
            if deleted and entry.pem is not None:  # a second copy failed: put the first back
                with pem_file(entry.pem) as pem:
                    try:
                        runner.run([tool, "-A", "-d", f"sql:{db}", "-t", entry.ref or TRUST_FLAGS, "-n", entry.name,
                                    "-i", str(pem)])
                    except TrustStoreError:
                        pass
            raise


#: A line of ``certutil -L``: the nickname (may hold spaces), then the trust attributes.
_LISTING_LINE = re.compile(r"^(?P<nick>\S.*?)\s+(?P<flags>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")


def parse_listing(text: str) -> list[tuple[str, str]]:
    """``(nickname, trust flags)`` of each certificate in ``certutil -L`` output."""
    found = []
    for line in text.splitlines():
        match = _LISTING_LINE.match(line)
        if match and match.group("nick") != "Certificate Nickname":
            found.append((match.group("nick"), match.group("flags")))
    return found


def _entries_in(tool: str, db: Path) -> list[Entry]:
    result = query([tool, "-L", "-d", f"sql:{db}"])
    if result.returncode != 0:
        why = last_line(result.stderr) or last_line(result.stdout) or f"exit status {result.returncode}"
        raise TrustStoreError(f"cannot list the NSS database {db}: {why}")
    found = []
    seen: set[str] = set()
    for nick, flags in parse_listing(result.stdout.decode("utf-8", "replace")):
        if not nick.startswith(ENTRY_PREFIX) or nick in seen:
            continue
        seen.add(nick)
        # One more certutil call per devcert entry (milliseconds): the certificate, so the
        # entry can be named by its hash and put back if its removal fails.
        shown = query([tool, "-L", "-d", f"sql:{db}", "-n", nick, "-a"])
        pem = first_pem(shown.stdout) if shown.returncode == 0 else None
        sha256, subject = pem_facts(pem)
        found.append(Entry(nick, str(db), sha256, subject, ref=flags, pem=pem))
    return found


def _why(err: TrustStoreError) -> str:
    """certutil's reason, shortened: 'SEC_ERROR_READ_ONLY: ...' reads better than the command."""
    text = str(err)
    if "failed: " in text:
        text = text.split("failed: ", 1)[1]
    if "READ_ONLY" in text or "read-only" in text.lower():
        return f"the database is read-only ({text})"
    return text
