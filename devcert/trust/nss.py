"""NSS databases: Chromium/Chrome on Linux and Firefox profiles.

Firefox keeps its own ``cert9.db`` in each profile; Chromium on Linux keeps one NSS database
per user. devcert adds the CA to every database it finds, with ``certutil`` from NSS's tools,
as a trusted SSL CA (``C,,``: trusted to issue server certificates, nothing else), under the
nickname ``devcert-<fingerprint>``.

Which database Chromium reads (Linux). Chromium's docs/linux/cert_management.md: "Since M146,
Chromium defaults to $HOME/.local/share/pki/nssdb for the NSS Shared DB. If you still have an
existing $HOME/.pki/nssdb database, Chromium will use that instead." Checked against the
Chromium 156 here (headless, fresh HOME, a CA in one database at a time):

- ``~/.pki/nssdb`` is a folder (even an empty one, or a symlink) -> Chromium reads it, and
  only it: a CA in the new database alone is not trusted when both exist.
- otherwise ``$XDG_DATA_HOME/pki/nssdb`` (``~/.local/share/pki/nssdb`` when XDG_DATA_HOME is
  unset or empty), created by Chromium the first time it verifies a certificate. Chromium
  takes a relative XDG_DATA_HOME relative to its own working folder; devcert cannot know
  that folder and ignores a relative value, as the XDG Base Directory spec says to.
- ``~/.pki`` without ``nssdb`` in it changes nothing.

So devcert writes where Chromium reads: the legacy database when its folder exists, else the
new one, created (``certutil -N --empty-password``) when it is missing and a Chromium-family
browser is installed, so the CA is there before Chromium's first start. devcert never
creates ``~/.pki/nssdb``: that folder alone would switch Chromium away from the user's own
database. Every other NSS database found (the one Chromium does not read now, snap
Chromium's in ``~/snap/chromium/current`` under the same rule) gets the CA too when it
already exists, so uninstall and stale listing cover them all.

Firefox profiles: each one listed in ``profiles.ini`` (or holding a ``cert9.db``) under the
regular (``~/.mozilla/firefox``, and ``$XDG_CONFIG_HOME/mozilla/firefox`` where newer Firefox
keeps them), snap and flatpak locations, and macOS's and Windows'. On macOS and Windows
Firefox already trusts the roots of the OS store (``security.enterprise_roots.enabled`` is on
by default there: Mozilla's note in FiloSottile/mkcert#653), so there the ``system`` store
covers Firefox: without NSS's certutil the ``nss`` store has nothing it must do (no
"certutil is missing" problem, not part of a plain ``devcert install``) and ``status`` says
why; with certutil present the profiles are still written, as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..advice import Advice
from ..errors import TrustStoreError
from .base import (ENTRY_PREFIX, Entry, Runner, StoreStatus, TrustStore, cert_file, entry_name, first_pem, last_line,
                   pem_file, pem_facts, platform_key, query, which)

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
#: Chromium's NSS database before M146, relative to HOME: read whenever this folder exists.
LEGACY_CHROMIUM_DB = ".pki/nssdb"
#: Chromium's NSS database since M146, relative to $XDG_DATA_HOME (default ~/.local/share).
CHROMIUM_DB_IN_DATA_HOME = "pki/nssdb"
#: snap Chromium's HOME (and data home under it), relative to the real HOME.
SNAP_CHROMIUM_HOME = "snap/chromium/current"
#: Programs whose presence means Chromium's database will be read even if it does not exist yet.
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
    from .linux import detect_family, read_os_release  # Linux only: how its distribution names the package

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


def _environ(home: Path, environ: Mapping[str, str] | None) -> Mapping[str, str]:
    """The XDG variables that apply to ``home``: the process's own only for the real HOME."""
    if environ is not None:
        return environ
    return os.environ if home == _home() else {}


def data_home(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME`` when set to an absolute path, else ``home/.local/share``."""
    xdg = _environ(home, environ).get("XDG_DATA_HOME", "")
    # Chromium would take a relative value relative to its own working folder, unknown here;
    # the XDG spec says to ignore relative values, and so does devcert.
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"


def chromium_database(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The NSS database Chromium on Linux reads for ``home`` (it may not exist yet).

    docs/linux/cert_management.md (Chromium M146+): ~/.pki/nssdb when that exists, else
    ~/.local/share/pki/nssdb. Chromium 156 tests the folder, not its cert9.db: an empty
    ~/.pki/nssdb folder is enough to make it use (and fill) the legacy location.
    """
    home = home or _home()
    legacy = home / LEGACY_CHROMIUM_DB
    if legacy.is_dir():
        return legacy
    return data_home(home, environ) / CHROMIUM_DB_IN_DATA_HOME


class Database(NamedTuple):
    """One NSS database: where, whether it exists (holds cert9.db), and who reads it."""

    path: Path
    exists: bool
    #: "chromium", "chromium-snap", "firefox", or "" for a Chromium-family database no
    #: browser reads now (the new one while ~/.pki/nssdb exists).
    used_by: str

    def as_dict(self) -> dict[str, Any]:
        return {"where": str(self.path), "exists": self.exists, "used_by": self.used_by or None}


def chromium_installed() -> bool:
    return any(which(p) for p in CHROMIUM_PROGRAMS)


def scan_databases(home: Path | None = None, *, create_chromium: bool | None = None,
                   environ: Mapping[str, str] | None = None, platform: str | None = None) -> list[Database]:
    """Every NSS database devcert handles, with who reads it; see the module docstring.

    A folder counts when it holds ``cert9.db`` (the SQL format; the old ``cert8.db`` format
    is not supported by current certutil and browsers no longer use it). The database
    Chromium reads is listed with ``exists=False`` when it is still to be created: when
    ``create_chromium`` (default: a Chromium-family browser is on PATH). Chromium uses NSS
    only on Linux; ``environ`` stands for the process environment (XDG variables).
    """
    home = home or _home()
    platform = platform or platform_key()
    env = _environ(home, environ)
    dbs: list[Database] = []
    seen: set[str] = set()

    def add(folder: Path, exists: bool, used_by: str) -> None:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            dbs.append(Database(folder, exists, used_by))

    if platform == "linux":
        reads = chromium_database(home, env)
        if (reads / "cert9.db").is_file():
            add(reads, True, "chromium")
        else:
            if create_chromium is None:
                create_chromium = chromium_installed()
            if create_chromium:
                # Never ~/.pki/nssdb unless its folder is already there: chromium_database()
                # picks it only then, and creating it would switch Chromium away from the
                # user's own database (docs/linux/cert_management.md).
                add(reads, False, "chromium")
        # Databases Chromium does not read now (the new one while ~/.pki/nssdb exists, the
        # default one while XDG_DATA_HOME points elsewhere): written when present, so a
        # later switch keeps the CA and uninstall / stale listing reach every copy.
        for other in (home / LEGACY_CHROMIUM_DB, data_home(home, env) / CHROMIUM_DB_IN_DATA_HOME,
                      home / ".local" / "share" / CHROMIUM_DB_IN_DATA_HOME):
            if (other / "cert9.db").is_file():
                add(other, True, "")
        # snap Chromium's HOME is ~/snap/chromium/current: the same rule inside it (devcert
        # lists its databases but never creates one there: snap Chromium makes its own).
        snap_home = home / SNAP_CHROMIUM_HOME
        snap_reads = chromium_database(snap_home, {})
        snap_new = snap_home / ".local" / "share" / CHROMIUM_DB_IN_DATA_HOME
        for folder in (snap_reads, snap_home / LEGACY_CHROMIUM_DB, snap_new):
            if (folder / "cert9.db").is_file():
                add(folder, True, "chromium-snap" if folder == snap_reads else "")
    roots = [home / rel for rel in FIREFOX_ROOTS]
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        roots.insert(1, Path(xdg) / "mozilla" / "firefox")
    for root in roots:
        if root.is_dir():
            for profile in firefox_profiles(root):
                if (profile / "cert9.db").is_file():
                    add(profile, True, "firefox")
    return dbs


def find_databases(home: Path | None = None, *, create_chromium: bool | None = None,
                   environ: Mapping[str, str] | None = None) -> list[tuple[Path, bool]]:
    """NSS databases as ``(folder, exists)``; ``exists=False`` for Chromium's, to create."""
    return [(db.path, db.exists) for db in scan_databases(home, create_chromium=create_chromium, environ=environ)]


def os_store_covers_firefox(platform: str | None = None) -> bool:
    """True on macOS and Windows, where Firefox trusts the OS store's roots by default."""
    return (platform or platform_key()) in ("darwin", "windows")


def covered_reason(platform: str | None = None) -> Advice:
    """Why the nss store has nothing it must do on macOS / Windows without NSS's certutil."""
    system = "the macOS System keychain" if (platform or platform_key()) == "darwin" else "the Windows Root store"
    return Advice("Firefox here trusts the roots of {system} (security.enterprise_roots.enabled, on by default): "
                  "`{install_system}` covers it, no certutil needed", {"system": system})


class NSSStore(TrustStore):
    """Every NSS database found (Chromium on Linux, Firefox profiles)."""

    name = "nss"
    restart_hint = "restart Firefox if it is running (Chromium picks the change up on its next start)"

    def __init__(self, home: Path | None = None, *, environ: Mapping[str, str] | None = None,
                 platform: str | None = None):
        self.home = home
        self.environ = environ
        self.platform = platform

    def _platform(self) -> str:
        return self.platform or platform_key()

    def scan(self) -> list[Database]:
        return scan_databases(self.home, environ=self.environ, platform=self._platform())

    def databases(self) -> list[tuple[Path, bool]]:
        return [(db.path, db.exists) for db in self.scan()]

    def _covered_by_os_store(self) -> bool:
        """macOS / Windows without NSS's certutil: Firefox reads the OS store, nothing to do here."""
        return os_store_covers_firefox(self._platform()) and find_certutil() is None

    def available(self) -> bool:
        # Not "available" when the OS store already covers every database found: a plain
        # `devcert install` then skips this store instead of failing on a missing certutil.
        return bool(self.scan()) and not self._covered_by_os_store()

    def not_available_reason(self) -> Advice | str:
        if self.scan() and self._covered_by_os_store():
            return covered_reason(self._platform())
        return "no Firefox profile or Chromium NSS database found"

    def problem(self) -> str | None:
        if self._covered_by_os_store():
            return None
        if find_certutil() is None:
            return f"certutil is missing: it comes with {certutil_package()}"
        return None

    def fix_for_problem(self) -> str | None:
        return f"install {certutil_package()}"

    def status(self, ca: LocalCA | None) -> StoreStatus:
        dbs = self.scan()
        if dbs and self._covered_by_os_store():
            # The profiles are there and trusted through the OS store: say so instead of
            # "not found", with the store that does the work as the fix.
            locs = [{**db.as_dict(), "installed": None} for db in dbs]
            return StoreStatus(self.name, self.describe(), True, None, covered_reason(self._platform()),
                               Advice("{install_system}"), locs)
        return super().status(ca)

    def describe(self) -> str:
        dbs = self.scan()
        if not dbs:
            return "NSS (Firefox, Chromium): no database found"
        return "NSS databases: " + ", ".join(self._label(db) for db in dbs)

    def _label(self, db: Database) -> str:
        home = str(self.home or _home())
        text = str(db.path)
        text = "~" + text[len(home):] if text.startswith(home + os.sep) else text
        notes = {"chromium": "Chromium reads it", "chromium-snap": "snap Chromium reads it", "firefox": "",
                 "": "Chromium does not read it now"}[db.used_by]
        if db.used_by == "firefox" and self._covered_by_os_store():
            notes = "Firefox trusts the system store here"
        if not db.exists:
            notes = f"{notes}; to be created" if notes else "to be created"
        return f"{text} ({notes})" if notes else text

    def locations(self) -> list[str]:
        return [str(db.path) for db in self.scan()]

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
        """Each database with who reads it; ``installed`` is None when certutil is missing."""
        tool = find_certutil()
        nick = entry_name(ca)
        return [{**db.as_dict(), "installed": None if tool is None else self._has(tool, db.path, nick)}
                for db in self.scan()]

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
