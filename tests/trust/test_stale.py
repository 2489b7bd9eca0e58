"""Stale trust-store entries: every ``devcert-*`` entry that is not the current CA's.

Unit tests drive each store's ``entries()`` / ``remove_entry(ies)`` with stand-ins: a fake
Linux family in tmp_path, NSS databases made with the real certutil in tmp_path, canned
keytool / security / certutil.exe output for Java, macOS and Windows. The one end-to-end
test runs in the private trust sandbox (tests/sandbox.py): install CA A, replace it, install
CA B, then `status` reports A as stale everywhere and `uninstall --stale` removes only A,
proven by curl handshakes against leaves of both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from devcert.ca import LocalCA
from devcert.errors import TrustStoreError
from devcert.trust import Entry, TrustStore, entry_name, remove_stale, stale_entries
from devcert.trust import java as java_mod
from devcert.trust import macos as macos_mod
from devcert.trust import windows as windows_mod
from devcert.trust.base import Runner
from devcert.trust.java import JavaStore, parse_rfc_listing
from devcert.trust.linux import LinuxSystemStore
from devcert.trust.nss import NSSStore, parse_listing
from tests import sandbox
from tests.helpers import UNIT, clean_env, fake_linux_family, devcert_exe, require_sandbox, require_tool, run_devcert


@pytest.fixture(scope="module")
def ca_a() -> LocalCA:
    return LocalCA.ephemeral()


@pytest.fixture(scope="module")
def ca_b() -> LocalCA:
    return LocalCA.ephemeral()


class FakeQuery:
    """Stands in for base.query in a store module: canned results by argv, records every call."""

    def __init__(self, answer):  # type: ignore[no-untyped-def]
        self.answer, self.calls = answer, []

    def __call__(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(list(argv))
        code, out = self.answer(list(argv))
        return subprocess.CompletedProcess(argv, code, out, b"")


# -- the core: stale_entries / remove_stale ------------------------------------------------------


class ListStore(TrustStore):
    """A store that is a Python list: what stale_entries and remove_stale do, without any tool."""

    name = "fake"

    def __init__(self, entries: list[Entry], *, broken: str | None = None, fail: set[str] = frozenset()):  # type: ignore[assignment]
        self.items, self.broken, self.fail = list(entries), broken, fail

    def available(self) -> bool:
        return True

    def entries(self) -> list[Entry]:
        if self.broken:
            raise TrustStoreError(self.broken)
        return list(self.items)

    def remove_entry(self, entry: Entry, runner: Runner | None = None) -> None:
        if entry.name in self.fail:
            raise TrustStoreError(f"cannot remove {entry.name}: simulated")
        self.items.remove(entry)


def test_stale_entries_are_every_devcert_entry_but_the_current_cas(ca_a, ca_b):
    store = ListStore([Entry(entry_name(ca_a), "db1"), Entry(entry_name(ca_b), "db1"), Entry(entry_name(ca_a), "db2")])
    assert [(s, e.where) for s, e in stale_entries(ca_b, [store])] == [(store, "db1"), (store, "db2")]
    assert all(e.name == entry_name(ca_a) for _, e in stale_entries(ca_b, [store]))
    assert len(stale_entries(None, [store])) == 3  # no CA here: nothing is current
    assert stale_entries(ca_a, [ListStore([Entry(entry_name(ca_a), "x")])]) == []


def test_a_store_that_cannot_be_listed_raises_or_is_reported(ca_a):
    broken = ListStore([], broken="certutil is missing")
    fine = ListStore([Entry("devcert-0000000000000000", "db")])
    with pytest.raises(TrustStoreError, match="certutil is missing"):
        stale_entries(ca_a, [broken, fine])
    seen: list[tuple[str, str]] = []
    found = stale_entries(ca_a, [broken, fine], on_error=lambda s, err: seen.append((s.name, str(err))))
    assert seen == [("fake", "certutil is missing")] and [e.where for _, e in found] == ["db"]


def test_remove_stale_keeps_the_current_ca_and_reports_each_failure(ca_a, ca_b):
    keep = Entry(entry_name(ca_b), "db")
    old1, old2 = Entry(entry_name(ca_a), "db"), Entry("devcert-1111111111111111", "db")
    store = ListStore([old1, keep, old2], fail={"devcert-1111111111111111"})
    results = remove_stale(ca_b, [store])
    assert [(e.name, err is None) for _, e, err in results] == [(old1.name, True), (old2.name, False)]
    assert "simulated" in str(results[1][2])
    assert store.items == [keep, old2]


# -- Linux: anchor files, one rebuild for all removals -------------------------------------------


def test_linux_entries_and_stale_removal_rebuild_once(tmp_path, ca_a, ca_b):
    family = fake_linux_family(tmp_path, f"cat {tmp_path}/anchors/*.crt > {tmp_path}/bundle.pem 2>/dev/null || : > {tmp_path}/bundle.pem")
    store = LinuxSystemStore(family)
    third = LocalCA.ephemeral()
    for ca in (ca_a, third, ca_b):
        store.install(ca, Runner(use_sudo=False))
    (tmp_path / "anchors" / "other-ca.crt").write_bytes(ca_a.cert_pem)  # not ours: never listed
    listed = {e.name: e for e in store.entries()}
    assert set(listed) == {entry_name(ca_a), entry_name(third), entry_name(ca_b)}
    assert listed[entry_name(ca_a)].sha256 == ca_a.fingerprint and listed[entry_name(ca_a)].subject == ca_a.subject
    assert listed[entry_name(ca_a)].where == str(tmp_path / "anchors" / f"{entry_name(ca_a)}.crt")
    (tmp_path / "update.log").unlink()

    dry = Runner(dry_run=True, use_sudo=False)
    assert all(err is None for _, _, err in remove_stale(ca_b, [store], dry))
    assert [a.kind for a in dry.actions] == ["remove", "remove", "run"]
    assert len(store.entries()) == 3 and not (tmp_path / "update.log").exists()

    results = remove_stale(ca_b, [store], Runner(use_sudo=False))
    assert sorted(e.name for _, e, err in results if err is None) == sorted([entry_name(ca_a), entry_name(third)])
    assert (tmp_path / "update.log").read_text() == "ran\n"  # one rebuild for both removals
    assert [e.name for e in store.entries()] == [entry_name(ca_b)]
    assert store.is_installed(ca_b) and not store.is_installed(ca_a)
    assert (tmp_path / "anchors" / "other-ca.crt").exists()


def test_linux_failed_rebuild_puts_every_file_back(tmp_path, ca_a, ca_b):
    family = fake_linux_family(tmp_path, "exit 0")
    store = LinuxSystemStore(family)
    for ca in (ca_a, ca_b):
        store.install(ca, Runner(use_sudo=False))
    Path(family.update[0]).write_text("#!/bin/sh\necho 'rebuild: disk full' >&2\nexit 4\n")
    before = {p.name: p.read_bytes() for p in Path(family.anchors).iterdir()}
    results = remove_stale(None, [store], Runner(use_sudo=False))  # no CA: both are stale
    assert len(results) == 2 and all("rebuild: disk full" in str(err) for _, _, err in results)
    assert all("\n" not in str(err) for _, _, err in results)
    assert {p.name: p.read_bytes() for p in Path(family.anchors).iterdir()} == before


# -- NSS: real certutil on databases in tmp_path --------------------------------------------------


def test_nss_listing_parser():
    text = (
        "\nCertificate Nickname                                         Trust Attributes\n"
        "                                                             SSL,S/MIME,JAR/XPI\n\n"
        "devcert-0123456789abcdef                                     C,,\n"
        "My Corp Root CA 2                                            CT,C,C\n"
        "a-user-cert                                                  u,u,u\n"
    )
    assert parse_listing(text) == [("devcert-0123456789abcdef", "C,,"), ("My Corp Root CA 2", "CT,C,C"),
                                   ("a-user-cert", "u,u,u")]


def _nss_home(tmp_path: Path, *rels: str) -> Path:
    certutil = require_tool("certutil")
    home = tmp_path / "home"
    for rel in rels:
        (home / rel).mkdir(parents=True)
        subprocess.run([certutil, "-N", "-d", f"sql:{home / rel}", "--empty-password"], check=True, capture_output=True)
    return home


def test_nss_entries_and_stale_removal_in_every_database(tmp_path, ca_a, ca_b):
    home = _nss_home(tmp_path, ".pki/nssdb", ".mozilla/firefox/p.default")
    (home / ".mozilla/firefox/profiles.ini").write_text("[Profile0]\nName=p\nIsRelative=1\nPath=p.default\n")
    store = NSSStore(home)
    assert len(store.databases()) == 2
    for ca in (ca_a, ca_b):
        store.install(ca, Runner(use_sudo=False))
    listed = store.entries()
    assert sorted((e.name, Path(e.where).name) for e in listed) == sorted(
        [(entry_name(ca_a), "nssdb"), (entry_name(ca_b), "nssdb"), (entry_name(ca_a), "p.default"),
         (entry_name(ca_b), "p.default")])
    assert all(e.ref == "C,," and e.sha256 in (ca_a.fingerprint, ca_b.fingerprint) for e in listed)

    lines: list[str] = []
    results = remove_stale(ca_b, [store], Runner(dry_run=True, echo=lines.append, use_sudo=False))
    assert len(results) == 2 and all(err is None for *_, err in results)
    assert all(line.startswith("would run: ") and "-D -d sql:" in line and entry_name(ca_a) in line for line in lines)
    assert len(store.entries()) == 4  # the dry run changed nothing

    results = remove_stale(ca_b, [store], Runner(use_sudo=False))
    assert all(err is None for *_, err in results)
    assert sorted(e.name for e in store.entries()) == [entry_name(ca_b)] * 2
    assert store.is_installed(ca_b) and stale_entries(ca_b, [store]) == []


def test_nss_failed_delete_is_one_line_and_keeps_the_entry(tmp_path, monkeypatch, ca_a, ca_b):
    """A certutil stand-in that lists with the real one but refuses -D, as on a read-only database."""
    home = _nss_home(tmp_path, ".pki/nssdb")
    store = NSSStore(home)
    store.install(ca_a, Runner(use_sudo=False))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "certutil").write_text(
        f'#!/bin/sh\n[ "$1" = "-D" ] && {{ echo "certutil: could not delete: SEC_ERROR_READ_ONLY: read-only" >&2; exit 255; }}\n'
        f'exec {shutil.which("certutil")} "$@"\n')
    (bindir / "certutil").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    ((_, entry, err),) = remove_stale(ca_b, [store], Runner(use_sudo=False))
    assert err is not None and "\n" not in str(err)
    assert str(home / ".pki/nssdb") in str(err) and "read-only" in str(err) and entry.name in str(err)
    assert [e.name for e in store.entries()] == [entry_name(ca_a)]


# -- Java: keytool stand-ins ----------------------------------------------------------------------


def _rfc_listing(*aliased: tuple[str, bytes]) -> bytes:
    parts = ["Keystore type: PKCS12", "Keystore provider: SUN", "", f"Your keystore contains {len(aliased)} entries", ""]
    for alias, pem in aliased:
        parts += [f"Alias name: {alias}", "Creation date: Jan 1, 2025", "Entry type: trustedCertEntry", "",
                  pem.decode().strip(), "", "", "*******************************************",
                  "*******************************************", "", ""]
    return "\n".join(parts).encode()


def _jdk(tmp_path: Path, keytool_body: str = "exit 0") -> Path:
    jdk = tmp_path / "jdk"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "lib" / "security").mkdir(parents=True)
    (jdk / "lib" / "security" / "cacerts").write_bytes(b"")
    tool = jdk / "bin" / "keytool"
    tool.write_text(f"#!/bin/sh\n{keytool_body}\n")
    tool.chmod(0o755)
    return jdk


def test_java_rfc_listing_parser(ca_a, ca_b):
    text = _rfc_listing(("debian:some_root.pem", ca_b.cert_pem), (entry_name(ca_a), ca_a.cert_pem)).decode()
    parsed = parse_rfc_listing(text)
    assert [alias for alias, _ in parsed] == ["debian:some_root.pem", entry_name(ca_a)]
    assert parsed[1][1] is not None and b"BEGIN CERTIFICATE" in parsed[1][1]


def test_java_entries_list_in_english_and_delete_by_alias(tmp_path, monkeypatch, ca_a, ca_b):
    jdk = _jdk(tmp_path)
    cacerts = jdk / "lib" / "security" / "cacerts"
    listing = _rfc_listing(("debian:devcert-ffffffffffffffff.pem", ca_a.cert_pem), (entry_name(ca_a), ca_a.cert_pem),
                           (entry_name(ca_b), ca_b.cert_pem), ("mykey", ca_b.cert_pem))
    fake = FakeQuery(lambda argv: (0, listing))
    monkeypatch.setattr(java_mod, "query", fake)
    store = JavaStore(home=jdk, extra=())
    listed = store.entries()
    keytool = str(jdk / "bin" / "keytool")
    assert fake.calls == [[keytool, "-J-Duser.language=en", "-J-Duser.country=US", "-list", "-rfc",
                           "-keystore", str(cacerts), "-storepass", "changeit"]]
    assert [(e.name, e.sha256) for e in listed] == [(entry_name(ca_a), ca_a.fingerprint), (entry_name(ca_b), ca_b.fingerprint)]
    ((_, stale),) = stale_entries(ca_b, [store])
    runner = Runner(dry_run=True, use_sudo=True)
    store.remove_entry(stale, runner)
    (action,) = runner.actions
    assert action.text.endswith(f"{keytool} -delete -alias {entry_name(ca_a)} -keystore {cacerts} -storepass changeit")
    assert not action.sudo  # the keystore in tmp_path is ours to write


def test_java_failed_delete_is_one_line(tmp_path, monkeypatch, ca_a, ca_b):
    jdk = _jdk(tmp_path, "echo 'keytool error: java.io.IOException: Keystore was tampered with'; exit 1")
    monkeypatch.setattr(java_mod, "query", FakeQuery(lambda argv: (0, _rfc_listing((entry_name(ca_a), ca_a.cert_pem)))))
    ((_, _, err),) = remove_stale(ca_b, [JavaStore(home=jdk, extra=())], Runner(use_sudo=False))
    assert err is not None and "tampered" in str(err) and "\n" not in str(err)


def test_java_listing_failure_is_an_error(tmp_path, monkeypatch, ca_b):
    jdk = _jdk(tmp_path)
    monkeypatch.setattr(java_mod, "query", FakeQuery(lambda argv: (1, b"keytool error: java.io.IOException: bad\n")))
    with pytest.raises(TrustStoreError, match="cannot list .*cacerts: keytool error"):
        stale_entries(ca_b, [JavaStore(home=jdk, extra=())])


# -- macOS: security find-certificate -c devcert -Z -p ----------------------------------------------


def _security_block(ca: LocalCA) -> str:
    return (f"SHA-256 hash: {ca.fingerprint.upper()}\nSHA-1 hash: {macos_mod.sha1_hex(ca)}\n"
            f"{ca.cert_pem.decode()}")


def test_macos_entries_and_removal_commands(monkeypatch, ca_a, ca_b):
    not_ours = LocalCA.ephemeral().issue("devcert.test")  # matched by -c devcert, but not a devcert CA
    leaf_block = (f"SHA-256 hash: {'AB' * 32}\nSHA-1 hash: {'CD' * 20}\n{not_ours.cert_pem.decode()}")
    listing = "\n".join([_security_block(ca_a), leaf_block, _security_block(ca_b)]).encode()
    fake = FakeQuery(lambda argv: (0, listing))
    monkeypatch.setattr(macos_mod, "query", fake)
    store = macos_mod.MacOSKeychainStore(platform="darwin")
    monkeypatch.setattr(store, "available", lambda: True)
    listed = store.entries()
    assert fake.calls == [["/usr/bin/security", "find-certificate", "-a", "-c", "devcert", "-Z", "-p",
                           "/Library/Keychains/System.keychain"]]
    assert [(e.name, e.ref) for e in listed] == [(entry_name(ca_a), macos_mod.sha1_hex(ca_a)),
                                                 (entry_name(ca_b), macos_mod.sha1_hex(ca_b))]
    ((_, stale),) = stale_entries(ca_b, [store])
    runner = Runner(dry_run=True, use_sudo=True)
    assert remove_stale(ca_b, [store], runner)[0][2] is None
    texts = [a.text for a in runner.actions]
    assert texts[0].startswith("sudo -- /usr/bin/security remove-trusted-cert -d ") and texts[0].endswith(".pem")
    assert texts[1] == f"sudo -- /usr/bin/security delete-certificate -Z {macos_mod.sha1_hex(ca_a)} /Library/Keychains/System.keychain"
    assert len(texts) == 2


def test_macos_nothing_found_is_no_entries(monkeypatch, ca_b):
    monkeypatch.setattr(macos_mod, "query", FakeQuery(lambda argv: (44, b"")))
    store = macos_mod.MacOSKeychainStore(platform="darwin")
    monkeypatch.setattr(store, "available", lambda: True)
    assert store.entries() == [] and stale_entries(ca_b, [store]) == []


# -- Windows: certutil -user -store Root ----------------------------------------------------------


def _win_block(index: int, ca: LocalCA) -> str:
    subject = ", ".join(reversed(ca.subject.split(",")))  # certutil prints CN first... and reversed
    thumb = " ".join(macos_mod.sha1_hex(ca).lower()[i:i + 2] for i in range(0, 40, 2))
    return (f"================ Certificate {index} ================\nSerial Number: 01\nIssuer: {subject}\n"
            f" NotBefore: 1/1/2025 10:00 AM\n NotAfter: 1/1/2035 10:00 AM\nSubject: {subject}\n"
            f"Signature matches Public Key\nRoot Certificate: Subject matches Issuer\nCert Hash(sha1): {thumb}\n")


def test_windows_entries_export_and_delete_commands(monkeypatch, ca_a, ca_b):
    microsoft = ("================ Certificate 0 ================\nSubject: CN=Microsoft Root Authority, "
                 "OU=Microsoft Corporation\nCert Hash(sha1): a43489159a520f0d93d032ccaf37e7fe20a8b419\n")
    listing = (f'Root "Trusted Root Certification Authorities"\n{microsoft}{_win_block(1, ca_a)}{_win_block(2, ca_b)}'
               "CertUtil: -store command completed successfully.\n").encode()
    by_thumb = {macos_mod.sha1_hex(ca): ca for ca in (ca_a, ca_b)}

    def answer(argv):  # type: ignore[no-untyped-def]
        if len(argv) == 6:  # certutil -user -store Root <sha1> <file>: save it, as DER
            Path(argv[5]).write_bytes(by_thumb[argv[4]].cert.public_bytes(serialization.Encoding.DER))
        return 0, listing

    fake = FakeQuery(answer)
    monkeypatch.setattr(windows_mod, "query", fake)
    store = windows_mod.WindowsRootStore(certutil="certutil.exe", platform="windows")
    listed = store.entries()
    assert fake.calls[0] == ["certutil.exe", "-user", "-store", "Root"]
    assert [c[:5] for c in fake.calls[1:]] == [["certutil.exe", "-user", "-store", "Root", macos_mod.sha1_hex(ca)]
                                               for ca in (ca_a, ca_b)]
    assert [(e.name, e.sha256) for e in listed] == [(entry_name(ca_a), ca_a.fingerprint), (entry_name(ca_b), ca_b.fingerprint)]
    runner = Runner(dry_run=True)
    ((_, entry, err),) = remove_stale(ca_b, [store], runner)
    assert err is None and entry.name == entry_name(ca_a)
    assert [a.text for a in runner.actions] == [f"certutil.exe -user -delstore Root {macos_mod.sha1_hex(ca_a)}"]


def test_windows_without_export_the_current_ca_is_still_known_by_thumbprint(monkeypatch, ca_a, ca_b):
    listing = (_win_block(0, ca_a) + _win_block(1, ca_b)).encode()
    monkeypatch.setattr(windows_mod, "query", FakeQuery(lambda argv: (1, b"") if len(argv) == 6 else (0, listing)))
    store = windows_mod.WindowsRootStore(certutil="certutil.exe", platform="windows")
    ((_, entry),) = stale_entries(ca_b, [store])
    assert entry.name == f"devcert-sha1-{macos_mod.sha1_hex(ca_a)[:16].lower()}" and entry.sha256 is None


# -- CLI, read-only here (anything that removes runs in the sandbox below) -------------------------


def test_status_json_has_a_stale_list(cli_env):
    result = run_devcert("status", "--json", env={**cli_env, "DEVCERT_TRUST_STORES": "system"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data["stale"], list) and data["stale_unknown"] == []


def test_uninstall_help_names_stale(cli_env):
    result = run_devcert("uninstall", "--help", env=cli_env)
    assert "--stale" in result.stdout and "devcert uninstall --stale --dry-run" in result.stdout


# -- the sandbox: CA A replaced by CA B, A's entries found and removed everywhere -------------------


SCENARIO = r"""
set -u
state() {
  sha256sum /etc/ssl/certs/ca-certificates.crt | cut -c1-64
  ls /usr/local/share/ca-certificates
  certutil -L -d sql:$HOME/.pki/nssdb
  keytool -list -keystore /etc/ssl/certs/java/cacerts -storepass changeit 2>/dev/null | grep '^devcert-' | sort
}
# Port 0: s_server prints "ACCEPT 127.0.0.1:PORT" once it listens; port NAME reads it (within $WAIT s).
serve() { openssl s_server -www -accept 127.0.0.1:0 -cert "/tmp/$1.pem" -key "/tmp/$1-key.pem" > "$HOME/s_server-$1.out" 2>&1 & }
port() {
  timeout "$WAIT" sh -c 'until grep -q "^ACCEPT 127.0.0.1:" "$1"; do sleep 0.05; done' sh "$HOME/s_server-$1.out" || echo "@no-port-$1" >&2
  sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\)$/\1/p' "$HOME/s_server-$1.out"
}
probe() { if curl -sS --max-time "$WAIT" -o /dev/null "https://localhost:$2/" 2>/tmp/curl.err; then echo "@curl-$1-$3-ok"; else echo "@curl-$1-$3-fail"; cat /tmp/curl.err >&2; fi; }

mkdir -p $HOME/.pki/nssdb && certutil -N -d sql:$HOME/.pki/nssdb --empty-password
devcert install >/tmp/install-a 2>&1 || { echo "@install-a-failed"; cat /tmp/install-a >&2; }
DEVCERT_TRUST_STORES=system devcert status --json | python3 -c 'import json,sys; print("@a=" + json.load(sys.stdin)["ca"]["entry"])'
devcert create localhost --cert-file /tmp/a.pem --key-file /tmp/a-key.pem >/dev/null 2>&1 || echo "@create-a-failed"
devcert ca init --force >/dev/null 2>&1 || echo "@init-force-failed"
devcert install >/tmp/install-b 2>&1 || { echo "@install-b-failed"; cat /tmp/install-b >&2; }
devcert create localhost --cert-file /tmp/b.pem --key-file /tmp/b-key.pem >/dev/null 2>&1 || echo "@create-b-failed"
serve a; pid_a=$!
serve b; pid_b=$!
PORT_A=$(port a) PORT_B=$(port b)
probe a "$PORT_A" before; probe b "$PORT_B" before

devcert status --json > /tmp/status-before.json || echo "@status-failed"
DEVCERT_TRUST_STORES=system devcert status > /tmp/status-before.txt || echo "@status-text-failed"
before=$(state)
devcert uninstall --stale --dry-run > /tmp/dry.out 2>&1 || echo "@dry-failed"
[ "$(state)" = "$before" ] && echo "@dry-unchanged"
devcert uninstall --stale --json > /tmp/stale.json 2>/tmp/stale.err || echo "@stale-failed"
devcert status --json > /tmp/status-after.json || echo "@status-after-failed"
probe a "$PORT_A" after; probe b "$PORT_B" after
kill "$pid_a" "$pid_b"
echo "@json-begin"
python3 - <<'PY'
import json
print(json.dumps({n: json.load(open(f"/tmp/{n}.json")) for n in ("status-before", "stale", "status-after")}))
PY
echo "@json-end"
cat /tmp/status-before.txt /tmp/dry.out
echo "--- stale.err"; cat /tmp/stale.err
"""


@pytest.mark.slow
def test_replaced_ca_is_stale_everywhere_and_uninstall_stale_removes_only_it(tmp_path):
    require_sandbox()
    for tool in ("curl", "certutil", "keytool", "openssl"):
        require_tool(tool)
    root = tmp_path / "caroot"
    LocalCA.create(root)
    os.chmod(tmp_path, 0o755)
    script = tmp_path / "scenario.sh"
    script.write_text(SCENARIO)
    env = clean_env(DEVCERT_CAROOT=str(root), WAIT=f"{20 * UNIT:g}")
    env["PATH"] = str(Path(devcert_exe()).parent) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    result = sandbox.run(["bash", str(script)], env=env, timeout=600 * UNIT, cwd=str(tmp_path))
    out = result.stdout
    info = f"stdout:\n{out}\nstderr:\n{result.stderr[-4000:]}"
    marks = {line.strip() for line in out.splitlines() if line.startswith("@")}
    assert not any(m.endswith("-failed") for m in marks), info
    a_entry = next(m[3:] for m in marks if m.startswith("@a="))
    b_entry = entry_name(LocalCA.load(root, require_key=False))
    assert a_entry != b_entry

    # Before: both CAs are trusted (A's leftover entries are what makes its leaf pass).
    assert {"@curl-a-before-ok", "@curl-b-before-ok"} <= marks, info
    data = json.loads(out.split("@json-begin\n", 1)[1].split("@json-end", 1)[0])
    stale = data["status-before"]["stale"]
    assert {s["store"] for s in stale} == {"system", "nss", "java"}, info
    assert all(s["entry"] == a_entry for s in stale), info
    assert all(s["sha256"] and s["sha256"].startswith(a_entry[len("devcert-"):]) for s in stale), info
    assert data["status-before"]["stale_unknown"] == [], info
    assert "Stale entries" in out and a_entry in out and "devcert uninstall --stale" in out, info

    # The dry run printed the removals and changed nothing.
    assert "@dry-unchanged" in marks, info
    assert "would remove: /usr/local/share/ca-certificates/" + a_entry in out, info
    assert "would run: " in out and "-D -d sql:" in out and "-delete -alias " + a_entry in out, info
    assert "Dry run: nothing was changed." in out, info

    # The real run: A gone from every store, B everywhere still, and curl agrees.
    removed = data["stale"]
    assert removed["ok"] is True and {r["store"] for r in removed["stale"]} == {"system", "nss", "java"}, info
    assert all(r["result"] == "removed" and r["entry"] == a_entry for r in removed["stale"]), info
    assert data["status-after"]["stale"] == [], info
    assert all(s["installed"] for s in data["status-after"]["stores"]), info
    assert {"@curl-a-after-fail", "@curl-b-after-ok"} <= marks, info


def test_uninstall_stale_failure_is_one_line_and_the_other_stores_still_go(tmp_path):
    """A read-only NSS database: its stale entry stays, with one error line; the system one goes."""
    require_sandbox()
    require_tool("certutil")
    root = tmp_path / "caroot"
    LocalCA.create(root)
    os.chmod(tmp_path, 0o755)
    script = tmp_path / "ro.sh"
    script.write_text(r"""
db=$HOME/.pki/nssdb
mkdir -p $db && certutil -N -d sql:$db --empty-password
devcert install >/dev/null 2>&1 || echo "@install-a-failed"
devcert ca init --force >/dev/null 2>&1 || echo "@init-force-failed"
mount --bind $db $db && mount -o remount,ro,bind $db
devcert uninstall --stale > /tmp/out 2>/tmp/err; echo "@rc-$?"
certutil -L -d sql:$db | grep -c '^devcert-' | sed 's/^/@nss-left-/'
ls /usr/local/share/ca-certificates | grep -c '^devcert-' | sed 's/^/@system-left-/'
cat /tmp/err >&2
""")
    env = clean_env(DEVCERT_CAROOT=str(root), DEVCERT_TRUST_STORES="system,nss")
    env["PATH"] = str(Path(devcert_exe()).parent) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    result = sandbox.run(["bash", str(script)], env=env, timeout=300 * UNIT, cwd=str(tmp_path))
    marks = {line.strip() for line in result.stdout.splitlines() if line.startswith("@")}
    info = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert {"@rc-1", "@nss-left-1", "@system-left-0"} <= marks, info
    errors = [line for line in result.stderr.splitlines() if line.startswith("devcert: error: ")]
    assert len(errors) == 1 and errors[0].startswith("devcert: error: nss: ") and "read-only" in errors[0], info
    assert "Traceback" not in result.stderr, info
