"""Java's ``cacerts`` keystores, changed with ``keytool``.

Java ignores the OS store (except with ``-Djavax.net.ssl.trustStoreType=KeychainStore`` /
``Windows-ROOT``): each runtime reads its own ``lib/security/cacerts`` (``jre/lib/security``
before Java 9), password ``changeit``. devcert imports the CA there under the alias
``devcert-<fingerprint>``, into every runtime it finds: ``$JAVA_HOME``, the ``java`` on PATH
(its symlinks resolved, since /usr/bin/java is usually a chain of links into the runtime),
then every JDK in the folders installers put them (:func:`default_roots`: /usr/lib/jvm,
SDKMAN, Gradle toolchains, IntelliJ, asdf, mise, macOS's JavaVirtualMachines), plus Debian's
shared ``/etc/ssl/certs/java/cacerts`` (which Debian's JDKs link their own cacerts to).
Keystores that are the same file (after symlinks) are changed once, each with the keytool of
a runtime that uses it. Finding them is directory listing only; keytool runs only to ask or
change a keystore.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrustStoreError
from .base import (ENTRY_PREFIX, Entry, Runner, TrustStore, cert_file, entry_name, last_line, pem_facts, platform_key,
                   query, which)

if TYPE_CHECKING:
    from ..ca import LocalCA

STOREPASS = "changeit"
DEBIAN_CACERTS = "/etc/ssl/certs/java/cacerts"
#: keytool's labels follow the JVM's locale ("Alias name:" is "Nom d'alias :" in French):
#: the listing that is parsed asks for English.
ENGLISH = ("-J-Duser.language=en", "-J-Duser.country=US")


def parse_rfc_listing(text: str) -> list[tuple[str, bytes | None]]:
    """``(alias, first certificate PEM)`` per entry of ``keytool -list -rfc`` output (English)."""
    found: list[tuple[str, bytes | None]] = []
    alias: str | None = None
    lines: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("Alias name:"):
            alias, lines = line.split(":", 1)[1].strip(), None
            found.append((alias, None))
        elif alias is not None and line.strip() == "-----BEGIN CERTIFICATE-----" and found[-1][1] is None:
            lines = [line.strip()]
        elif lines is not None:
            lines.append(line.strip())
            if line.strip() == "-----END CERTIFICATE-----":
                found[-1] = (alias, ("\n".join(lines) + "\n").encode("ascii", "replace"))
                lines = None
    return found


def path_java_home() -> Path | None:
    """The runtime of the ``java`` on PATH: the folder above its real ``bin/java``."""
    java = which("java")
    if not java:
        return None
    real = Path(os.path.realpath(java))
    # macOS: /usr/bin/java is a stub that asks /usr/libexec/java_home; it resolves to itself.
    if platform_key() == "darwin" and str(real).startswith("/usr/bin"):
        out = query(["/usr/libexec/java_home"]) if os.path.exists("/usr/libexec/java_home") else None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.decode().strip())
        return None
    return real.parent.parent


def java_home() -> Path | None:
    """The runtime: ``$JAVA_HOME``, else the folder above the real ``bin/java`` on PATH."""
    env = os.environ.get("JAVA_HOME")
    if env and Path(env).is_dir():
        return Path(env)
    return path_java_home()


def runtime_cacerts(home: Path) -> Path | None:
    for rel in ("lib/security/cacerts", "jre/lib/security/cacerts"):
        path = home / rel
        if path.exists():
            return path
    return None


def own_keytool(home: Path) -> str | None:
    """The runtime's own ``bin/keytool`` (``jre/bin`` before Java 9), or None."""
    exe = "keytool.exe" if platform_key() == "windows" else "keytool"
    for rel in ("bin", "jre/bin"):
        candidate = home / rel / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_keytool(home: Path | None = None) -> str | None:
    home = home if home is not None else java_home()
    return (own_keytool(home) if home is not None else None) or which("keytool")


#: Folders under the user's home holding one JDK per child: SDKMAN, Gradle toolchains,
#: IntelliJ's downloads, asdf and mise.
HOME_ROOTS = (".sdkman/candidates/java", ".gradle/jdks", ".jdks", ".asdf/installs/java",
              ".local/share/mise/installs/java")


def default_roots(user_home: Path | None = None, platform: str | None = None) -> list[Path]:
    """Every folder whose children are JDKs, for this platform."""
    home = user_home if user_home is not None else Path(os.path.expanduser("~"))
    platform = platform or platform_key()
    roots = [home / rel for rel in HOME_ROOTS]
    if platform == "linux":
        roots.insert(0, Path("/usr/lib/jvm"))
    elif platform == "darwin":
        roots[:0] = [Path("/Library/Java/JavaVirtualMachines"), home / "Library/Java/JavaVirtualMachines"]
    return roots


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(child for child in folder.iterdir() if child.is_dir())
    except OSError:  # missing or unreadable: nothing installed there that we could change
        return []


def _runtime_in(folder: Path) -> tuple[Path, Path] | None:
    """``(home, cacerts)`` of the JDK in ``folder``: itself, a macOS bundle's Contents/Home,
    or one level down (Gradle and some archives keep the unpacked ``jdk-17.0.x/`` inside)."""
    for home in (folder, folder / "Contents" / "Home"):
        cacerts = runtime_cacerts(home)
        if cacerts is not None:
            return home, cacerts
    for child in _children(folder):
        for home in (child, child / "Contents" / "Home"):
            cacerts = runtime_cacerts(home)
            if cacerts is not None:
                return home, cacerts
    return None


class Keystore:
    """One cacerts file and the runtimes that read it (several when they link to one file).

    A plain class, not a dataclass: importing dataclasses (and inspect) would cost `devcert
    create` ~12 ms, since its trust hint imports the stores.
    """

    __slots__ = ("path", "real", "jdks", "keytool")

    def __init__(self, path: Path, real: str) -> None:
        self.path = path  # as first found; commands use it
        self.real = real  # its real path, what makes two paths one keystore
        self.jdks: list[Path] = []
        self.keytool: str | None = None  # the keytool of the first of those runtimes that has one


class JavaStore(TrustStore):
    """Every Java runtime's cacerts on this machine, and Debian's shared one.

    ``home`` pins the current runtime (default: ``$JAVA_HOME`` and the ``java`` on PATH);
    ``extra`` lists more keystore files and ``roots`` the folders of JDKs to look in. When
    neither ``extra`` nor ``roots`` is given, both take their defaults (Debian's shared
    cacerts; :func:`default_roots` under ``user_home``); giving either one pins the search to
    what is given, so tests see only their own folders.
    """

    name = "java"

    def __init__(self, home: Path | None = None, extra: tuple[str, ...] | None = None,
                 roots: Sequence[str | os.PathLike[str]] | None = None, user_home: Path | None = None):
        self._home = home
        defaults = extra is None and roots is None
        debian = (DEBIAN_CACERTS,) if defaults and platform_key() == "linux" else ()
        self.extra = extra if extra is not None else debian
        self.roots = [Path(r) for r in roots] if roots is not None else (default_roots(user_home) if defaults else [])
        self._answers: dict[tuple[str, str, str], tuple[tuple[int, ...], bool]] = {}

    def home(self) -> Path | None:
        return self._home if self._home is not None else java_home()

    def current_homes(self) -> list[Path]:
        if self._home is not None:
            return [self._home]
        env = os.environ.get("JAVA_HOME")
        homes = [Path(env)] if env and Path(env).is_dir() else []
        on_path = path_java_home()
        return homes + ([on_path] if on_path is not None else [])

    def runtimes(self) -> list[tuple[Path, Path]]:
        """``(home, cacerts)`` of every runtime found, the current ones first, each once."""
        found: list[tuple[Path, Path]] = []
        seen: set[str] = set()

        def add(home: Path, cacerts: Path | None) -> None:
            real = os.path.realpath(home)
            if cacerts is not None and cacerts.is_file() and real not in seen:
                seen.add(real)
                found.append((home, cacerts))

        for home in self.current_homes():
            add(home, runtime_cacerts(home))
        for root in self.roots:
            for child in _children(root):
                runtime = _runtime_in(child)
                if runtime is not None:
                    # Real paths: SDKMAN's `current` and Debian's java-1.17.0-... are links to a version folder.
                    home = Path(os.path.realpath(runtime[0]))
                    add(home, home / runtime[1].relative_to(runtime[0]))
        return found

    def keystore_list(self) -> list[Keystore]:
        """Every distinct keystore, each with the runtimes that read it and the keytool to use."""
        by_real: dict[str, Keystore] = {}
        for home, cacerts in self.runtimes():
            real = os.path.realpath(cacerts)
            ks = by_real.setdefault(real, Keystore(cacerts, real))
            ks.jdks.append(home)
            ks.keytool = ks.keytool or own_keytool(home)
        for extra in self.extra:
            path = Path(extra)
            if path.is_file():
                by_real.setdefault(os.path.realpath(path), Keystore(path, os.path.realpath(path)))
        stores = list(by_real.values())
        # A runtime without keytool (a jlink'ed JRE) or a file no runtime found here reads: the
        # keytool the user's shell runs (JAVA_HOME's, else PATH's) edits it. Not whichever other
        # JDK happens to be installed: a newer keytool may write a PKCS12 keystore with
        # algorithms an older runtime cannot read (before 8u301 / 11.0.12).
        fallback = find_keytool(self.home())
        for ks in stores:
            ks.keytool = ks.keytool or fallback
        return stores

    def keystores(self) -> list[Path]:
        return [ks.path for ks in self.keystore_list()]

    def keytool(self) -> str | None:
        return find_keytool(self.home()) or next((ks.keytool for ks in self.keystore_list() if ks.keytool), None)

    def available(self) -> bool:
        return bool(self.keystores())

    def not_available_reason(self) -> str:
        return "no Java runtime found (set JAVA_HOME or put java on PATH)"

    def problem(self) -> str | None:
        if any(ks.keytool is None for ks in self.keystore_list()):
            return "keytool is missing: it comes with the Java runtime (set JAVA_HOME to a full JDK or JRE)"
        return None

    def fix_for_problem(self) -> str | None:
        return "set JAVA_HOME to a JDK that has bin/keytool"

    def describe(self) -> str:
        stores = self.keystore_list()
        if not stores:
            return "Java cacerts: no Java runtime found"
        parts = []
        for ks in stores:
            used_by = f" ({', '.join(h.name for h in ks.jdks)})" if ks.jdks else ""
            parts.append(f"{ks.path}{used_by}")
        return "Java cacerts: " + ", ".join(parts)

    def locations(self) -> list[str]:
        return [str(p) for p in self.keystores()]

    def _tools(self) -> list[tuple[Path, str]]:
        """``(keystore, keytool)`` for each keystore; an error line when keytool is missing."""
        stores = self.keystore_list()
        if any(ks.keytool is None for ks in stores):
            raise TrustStoreError(self.problem() or "keytool is missing")
        return [(ks.path, ks.keytool) for ks in stores if ks.keytool is not None]

    def _has(self, tool: str, store: Path, alias: str) -> bool:
        # `devcert status` asks is_installed, then location_states: each answer costs a JVM
        # start, so it is kept while the keystore file is unchanged (same size, mtime, inode).
        try:
            st = os.stat(store)
            stamp: tuple[int, ...] | None = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            stamp = None
        key = (tool, os.path.realpath(store), alias)
        known = self._answers.get(key)
        if stamp is not None and known is not None and known[0] == stamp:
            return known[1]
        result = query([tool, "-list", "-keystore", str(store), "-storepass", STOREPASS, "-alias", alias])
        answer = result.returncode == 0
        if stamp is not None:
            self._answers[key] = (stamp, answer)
        return answer

    def location_states(self, ca: LocalCA) -> list[dict[str, Any]]:
        """Per keystore: its path, its real file, the JDK homes that read it, and the CA's presence."""
        alias = entry_name(ca)
        states = []
        for ks in self.keystore_list():
            if ks.keytool is None:
                return []
            states.append({"where": str(ks.path), "file": ks.real, "jdks": [str(h) for h in ks.jdks],
                           "installed": self._has(ks.keytool, ks.path, alias)})
        return states

    def is_installed(self, ca: LocalCA) -> bool:
        stores = self.keystore_list()
        if not stores or any(ks.keytool is None for ks in stores):
            return False
        alias = entry_name(ca)
        return all(self._has(ks.keytool, ks.path, alias) for ks in stores if ks.keytool is not None)

    @staticmethod
    def _privileged(store: Path) -> bool:
        return not os.access(os.path.realpath(store), os.W_OK)

    @staticmethod
    def _import(runner: Runner, tool: str, store: Path, alias: str, pem: Path) -> None:
        runner.run([tool, "-importcert", "-noprompt", "-alias", alias, "-file", str(pem),
                    "-keystore", str(store), "-storepass", STOREPASS], privileged=JavaStore._privileged(store))

    @staticmethod
    def _delete(runner: Runner, tool: str, store: Path, alias: str) -> None:
        runner.run([tool, "-delete", "-alias", alias, "-keystore", str(store), "-storepass", STOREPASS],
                   privileged=JavaStore._privileged(store))

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        tools = self._tools()
        runner = self._runner(runner)
        alias = entry_name(ca)
        done: list[tuple[Path, str]] = []
        try:
            with cert_file(ca) as pem:
                for store, tool in tools:
                    if self._has(tool, store, alias):
                        continue
                    try:
                        self._import(runner, tool, store, alias, pem)
                    except TrustStoreError as err:
                        raise TrustStoreError(f"cannot add the CA to {store}: {err}") from None
                    done.append((store, tool))
        except TrustStoreError:
            for store, tool in done:
                try:
                    self._delete(runner, tool, store, alias)
                except TrustStoreError:
                    pass
            raise

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        if not self.keystore_list():
            return
        tools = self._tools()
        runner = self._runner(runner)
        alias = entry_name(ca)
        removed: list[tuple[Path, str]] = []
        try:
            for store, tool in tools:
                if not self._has(tool, store, alias):
                    continue
                try:
                    self._delete(runner, tool, store, alias)
                except TrustStoreError as err:
                    raise TrustStoreError(f"cannot remove the CA from {store}: {err}") from None
                removed.append((store, tool))
        except TrustStoreError:
            with cert_file(ca) as pem:
                for store, tool in removed:
                    try:
                        self._import(runner, tool, store, alias, pem)
                    except TrustStoreError:
                        pass
            raise

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Aliases starting with ``devcert-`` in each keystore: one keytool run (one JVM) per
        keystore, which also hands out every certificate (so no call per entry)."""
        if not self.keystore_list():
            return []
        found: list[Entry] = []
        for store, tool in self._tools():
            result = query([tool, *ENGLISH, "-list", "-rfc", "-keystore", str(store), "-storepass", STOREPASS])
            if result.returncode != 0:
                why = last_line(result.stdout) or last_line(result.stderr) or f"exit status {result.returncode}"
                raise TrustStoreError(f"cannot list {store}: {why}")
            for alias, pem in parse_rfc_listing(result.stdout.decode("utf-8", "replace")):
                if alias.startswith(ENTRY_PREFIX):
                    sha256, subject = pem_facts(pem)
                    found.append(Entry(alias, str(store), sha256, subject, pem=pem))
        return found

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        """``keytool -delete`` is one step: it removes the alias or fails leaving the keystore
        as it was, so there is nothing to undo."""
        runner = self._runner(runner)
        store = Path(entry.where)
        real = os.path.realpath(store)
        tool = next((ks.keytool for ks in self.keystore_list() if ks.real == real), None) or self.keytool()
        if tool is None:
            raise TrustStoreError(self.problem() or "keytool is missing")
        try:
            self._delete(runner, tool, store, entry.name)
        except TrustStoreError as err:
            raise TrustStoreError(f"cannot remove {entry.name} from {store}: {err}") from None
