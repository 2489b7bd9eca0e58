"""Java's ``cacerts`` keystores, changed with ``keytool``.

Java ignores the OS store (except with ``-Djavax.net.ssl.trustStoreType=KeychainStore`` /
``Windows-ROOT``): it reads ``$JAVA_HOME/lib/security/cacerts`` (``jre/lib/security`` before
Java 9), password ``changeit``. devcert imports the CA there under the alias
``devcert-<fingerprint>``, into the runtime found from ``$JAVA_HOME``, else from the ``java``
on PATH (its symlinks resolved, since /usr/bin/java is usually a chain of links into the
runtime), plus Debian's shared ``/etc/ssl/certs/java/cacerts`` (which Debian's JDKs link their
own cacerts to). Keystores that are the same file are changed once.
"""

from __future__ import annotations

import os
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


def java_home() -> Path | None:
    """The runtime: ``$JAVA_HOME``, else the folder above the real ``bin/java`` on PATH."""
    env = os.environ.get("JAVA_HOME")
    if env and Path(env).is_dir():
        return Path(env)
    java = which("java")
    if not java:
        return None
    real = Path(os.path.realpath(java))
    home = real.parent.parent
    # macOS: /usr/bin/java is a stub that asks /usr/libexec/java_home; it resolves to itself.
    if platform_key() == "darwin" and str(real).startswith("/usr/bin"):
        out = query(["/usr/libexec/java_home"]) if os.path.exists("/usr/libexec/java_home") else None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.decode().strip())
        return None
    return home


def runtime_cacerts(home: Path) -> Path | None:
    for rel in ("lib/security/cacerts", "jre/lib/security/cacerts"):
        path = home / rel
        if path.exists():
            return path
    return None


def find_keytool(home: Path | None = None) -> str | None:
    home = home if home is not None else java_home()
    exe = "keytool.exe" if platform_key() == "windows" else "keytool"
    if home is not None:
        for rel in ("bin", "jre/bin"):
            candidate = home / rel / exe
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return which("keytool")


class JavaStore(TrustStore):
    """The current Java runtime's cacerts, and Debian's shared one."""

    name = "java"

    def __init__(self, home: Path | None = None, extra: tuple[str, ...] | None = None):
        self._home = home
        self.extra = extra if extra is not None else ((DEBIAN_CACERTS,) if platform_key() == "linux" else ())

    def home(self) -> Path | None:
        return self._home if self._home is not None else java_home()

    def keystores(self) -> list[Path]:
        found: list[Path] = []
        seen: set[str] = set()
        home = self.home()
        candidates = [runtime_cacerts(home)] if home is not None else []
        candidates += [Path(p) for p in self.extra]
        for path in candidates:
            if path is None or not path.is_file():
                continue
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
        return found

    def keytool(self) -> str | None:
        return find_keytool(self.home())

    def available(self) -> bool:
        return bool(self.keystores())

    def not_available_reason(self) -> str:
        return "no Java runtime found (set JAVA_HOME or put java on PATH)"

    def problem(self) -> str | None:
        if self.keytool() is None:
            return "keytool is missing: it comes with the Java runtime (set JAVA_HOME to a full JDK or JRE)"
        return None

    def fix_for_problem(self) -> str | None:
        return "set JAVA_HOME to a JDK that has bin/keytool"

    def describe(self) -> str:
        stores = self.keystores()
        if not stores:
            return "Java cacerts: no Java runtime found"
        return "Java cacerts: " + ", ".join(str(p) for p in stores)

    def locations(self) -> list[str]:
        return [str(p) for p in self.keystores()]

    def _has(self, tool: str, store: Path, alias: str) -> bool:
        result = query([tool, "-list", "-keystore", str(store), "-storepass", STOREPASS, "-alias", alias])
        return result.returncode == 0

    def location_states(self, ca: LocalCA) -> list[dict[str, Any]]:
        tool = self.keytool()
        if tool is None:
            return []
        alias = entry_name(ca)
        return [{"where": str(p), "installed": self._has(tool, p, alias)} for p in self.keystores()]

    def is_installed(self, ca: LocalCA) -> bool:
        tool = self.keytool()
        stores = self.keystores()
        if tool is None or not stores:
            return False
        alias = entry_name(ca)
        return all(self._has(tool, p, alias) for p in stores)

    def _tool(self) -> str:
        tool = self.keytool()
        if tool is None:
            raise TrustStoreError(self.problem() or "keytool is missing")
        return tool

    @staticmethod
    def _privileged(store: Path) -> bool:
        return not os.access(os.path.realpath(store), os.W_OK)

    def install(self, ca: LocalCA, runner: Runner | None = None) -> None:
        tool = self._tool()
        runner = self._runner(runner)
        alias = entry_name(ca)
        done: list[Path] = []
        try:
            with cert_file(ca) as pem:
                for store in self.keystores():
                    if self._has(tool, store, alias):
                        continue
                    try:
                        runner.run([tool, "-importcert", "-noprompt", "-alias", alias, "-file", str(pem),
                                    "-keystore", str(store), "-storepass", STOREPASS],
                                   privileged=self._privileged(store))
                    except TrustStoreError as err:
                        raise TrustStoreError(f"cannot add the CA to {store}: {err}") from None
                    done.append(store)
        except TrustStoreError:
            for store in done:
                try:
                    runner.run([tool, "-delete", "-alias", alias, "-keystore", str(store), "-storepass", STOREPASS],
                               privileged=self._privileged(store))
                except TrustStoreError:
                    pass
            raise

    def uninstall(self, ca: LocalCA, runner: Runner | None = None) -> None:
        stores = self.keystores()
        if not stores:
            return
        tool = self._tool()
        runner = self._runner(runner)
        alias = entry_name(ca)
        removed: list[Path] = []
        try:
            for store in stores:
                if not self._has(tool, store, alias):
                    continue
                try:
                    runner.run([tool, "-delete", "-alias", alias, "-keystore", str(store), "-storepass", STOREPASS],
                               privileged=self._privileged(store))
                except TrustStoreError as err:
                    raise TrustStoreError(f"cannot remove the CA from {store}: {err}") from None
                removed.append(store)
        except TrustStoreError:
            with cert_file(ca) as pem:
                for store in removed:
                    try:
                        runner.run([tool, "-importcert", "-noprompt", "-alias", alias, "-file", str(pem),
                                    "-keystore", str(store), "-storepass", STOREPASS],
                                   privileged=self._privileged(store))
                    except TrustStoreError:
                        pass
            raise

    # -- every devcert entry --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Aliases starting with ``devcert-`` in each keystore: one keytool run (one JVM) per
        keystore, which also hands out every certificate (so no call per entry)."""
        stores = self.keystores()
        if not stores:
            return []
        tool = self._tool()
        found: list[Entry] = []
        for store in stores:
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
        tool = self._tool()
        runner = self._runner(runner)
        store = Path(entry.where)
        try:
            runner.run([tool, "-delete", "-alias", entry.name, "-keystore", str(store), "-storepass", STOREPASS],
                       privileged=self._privileged(store))
        except TrustStoreError as err:
            raise TrustStoreError(f"cannot remove {entry.name} from {store}: {err}") from None
