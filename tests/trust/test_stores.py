"""Unit tests of devcert.trust: store selection, distribution detection, the runner, and the
exact commands the macOS and Windows stores run (they cannot run here; the runner is mocked).

Nothing here writes a real trust store: the Linux store is exercised on a fake family whose
anchors folder, bundle and update command live in tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devcert.ca import LocalCA
from devcert.cli.messages import word
from devcert.errors import TrustStoreError, UsageError
from devcert.trust import entry_name, selected_stores, sudo_caroot_problem, trusted_anywhere
from devcert.trust import macos as macos_mod
from devcert.trust import windows as windows_mod
from devcert.trust.base import SBIN, Runner, which
from devcert.trust.java import JavaStore, java_home
from devcert.trust.linux import FAMILIES, LinuxSystemStore, detect_family, parse_os_release
from devcert.trust.nss import certutil_package, find_databases, firefox_profiles
from tests.helpers import fake_linux_family, run_devcert


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


# -- identity -----------------------------------------------------------------------------------


def test_entry_name_comes_from_the_fingerprint(ca):
    other = LocalCA.ephemeral()
    assert entry_name(ca) == "devcert-" + ca.fingerprint[:16]
    assert entry_name(other) != entry_name(ca)


# -- selection ------------------------------------------------------------------------------------


def test_which_finds_what_shutil_which_finds_and_looks_in_sbin(tmp_path, monkeypatch):
    import shutil

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")  # not executable: skipped
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (first / "folder-tool").mkdir(mode=0o755)  # a folder is never a program
    monkeypatch.setenv("PATH", f"{first}{os.pathsep}{second}")
    for name in ("tool", "folder-tool", "missing", str(second / "tool"), str(first / "tool")):
        assert which(name) == shutil.which(name), name
    assert which("tool") == str(second / "tool")
    # a program only in an sbin folder (not on a non-root PATH) is still found
    in_sbin = next((name for folder in SBIN if os.path.isdir(folder) for name in sorted(os.listdir(folder))
                    if shutil.which(name, path=folder) and not shutil.which(name)), None)
    if in_sbin is not None:
        assert which(in_sbin) is not None


def test_selected_stores_by_name_env_and_default(monkeypatch):
    monkeypatch.delenv("DEVCERT_TRUST_STORES", raising=False)
    assert [s.name for s in selected_stores(["java", "system"])] == ["java", "system"]
    assert [s.name for s in selected_stores(["system,nss", "system"])] == ["system", "nss"]
    assert [s.name for s in selected_stores(environ={"DEVCERT_TRUST_STORES": "nss, java"})] == ["nss", "java"]
    # names given win over the environment
    assert [s.name for s in selected_stores(["java"], environ={"DEVCERT_TRUST_STORES": "nss"})] == ["java"]
    every = selected_stores(include_unavailable=True, environ={})
    assert [s.name for s in every] == ["system", "nss", "java"]
    assert all(s.available() for s in selected_stores(environ={}))


def test_unknown_store_name_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown trust store 'keychain'"):
        selected_stores(["keychain"])
    with pytest.raises(UsageError, match="bogus"):
        selected_stores(environ={"DEVCERT_TRUST_STORES": "system,bogus"})


def test_trusted_anywhere_is_false_for_a_new_ca(monkeypatch):
    monkeypatch.setenv("DEVCERT_TRUST_STORES", "system")
    assert trusted_anywhere(LocalCA.ephemeral()) is False


# -- Linux families -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "debian"),
        ('ID=ubuntu\nID_LIKE=debian\n', "debian"),
        ('ID="linuxmint"\nID_LIKE="ubuntu debian"\n', "debian"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
        ("ID=fedora\n", "fedora"),
        ("ID=manjaro\nID_LIKE=arch\n", "arch"),
        ("ID=arch\n", "arch"),
        ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "suse"),
        ('ID="sles"\n', "suse"),
        ("ID=alpine\n", "alpine"),
        ("ID=somethingnew\nID_LIKE=fedora\n", "fedora"),
    ],
)
def test_family_from_os_release(text, family):
    assert detect_family(text, isdir=lambda p: False).key == family


def test_family_by_probing_folders_when_os_release_says_nothing_known():
    anchors = FAMILIES["fedora"].anchors
    assert detect_family("ID=weird\n", isdir=lambda p: p == anchors).key == "fedora"
    assert detect_family(None, isdir=lambda p: p == FAMILIES["debian"].anchors).key == "debian"
    assert detect_family("ID=weird\n", isdir=lambda p: False) is None


def test_os_release_quotes():
    assert parse_os_release("ID='a b'\nNAME=\"x\"\n# c\nBAD\n") == {"ID": "a b", "NAME": "x"}


def test_unknown_distribution_names_the_file_and_the_command(ca):
    store = LinuxSystemStore.__new__(LinuxSystemStore)  # detection would probe this machine: set the outcome
    store.family, store.distro = None, "weird"
    problem = word(store.problem())  # as install's report says it
    assert "ID=weird" in problem and "rootCA.pem" in problem and "update-ca-certificates" in problem
    with pytest.raises(TrustStoreError, match="does not know"):
        store.install(ca, Runner(dry_run=True))


def test_linux_store_install_uninstall_on_a_fake_family(tmp_path, ca):
    family = fake_linux_family(tmp_path, f'cat {tmp_path}/anchors/*.crt > {tmp_path}/bundle.pem 2>/dev/null || : > {tmp_path}/bundle.pem')
    store = LinuxSystemStore(family)
    runner = Runner(use_sudo=False)
    assert not store.is_installed(ca)
    store.install(ca, runner)
    store.install(ca, runner)  # idempotent: nothing more to do
    assert store.is_installed(ca)
    assert sorted(p.name for p in Path(family.anchors).iterdir()) == [entry_name(ca) + ".crt"]
    assert [a.kind for a in runner.actions] == ["write", "run"]
    other = LocalCA.ephemeral()
    store.install(other, runner)
    store.uninstall(ca, runner)
    assert not store.is_installed(ca) and store.is_installed(other)


def test_linux_store_anchor_without_rebuilt_bundle_is_not_installed(tmp_path, ca):
    family = fake_linux_family(tmp_path, "exit 0")  # an update command that does nothing
    store = LinuxSystemStore(family)
    store.install(ca, Runner(use_sudo=False))
    assert Path(family.anchors, entry_name(ca) + ".crt").is_file()
    assert not store.is_installed(ca)  # the bundle does not have it: not trusted yet


def test_linux_store_failing_update_rolls_back(tmp_path, ca):
    family = fake_linux_family(tmp_path, "echo 'boom: cannot rebuild' >&2; exit 2")
    store = LinuxSystemStore(family)
    with pytest.raises(TrustStoreError, match="boom: cannot rebuild"):
        store.install(ca, Runner(use_sudo=False))
    assert list(Path(family.anchors).iterdir()) == []


def debian_like_family(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fake family whose update command behaves as Debian's update-ca-certificates: it links
    each anchor as certs/NAME.pem and a hash link to that (OpenSSL's HASH.0), and never removes
    a link. certs/ also holds the bundle, a link to another CA and a link made by someone else."""
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca-certificates.crt").write_text("")
    os.symlink("/usr/share/ca-certificates/mozilla/Some_Root.crt", certs / "Some_Root.pem")
    os.symlink("Some_Root.pem", certs / "0a1b2c3d.0")
    body = f"""cd {tmp_path}
cat anchors/*.crt > bundle.pem 2>/dev/null || : > bundle.pem
for crt in {tmp_path}/anchors/*.crt; do
  [ -f "$crt" ] || continue
  name=$(basename "$crt" .crt)
  [ -e certs/$name.pem ] || ln -sf "$crt" certs/$name.pem
  hash=$(printf '%08x' "$(printf %s "$name" | cksum | cut -d' ' -f1)")
  [ -L certs/$hash.0 ] || ln -s $name.pem certs/$hash.0
done"""
    return fake_linux_family(tmp_path, body)._replace(links=str(certs)), certs


def listing(folder: Path) -> dict[str, str | None]:
    """Each entry of ``folder``: its link target, or None for a file."""
    return {p.name: os.readlink(p) if p.is_symlink() else None for p in folder.iterdir()}


def test_linux_uninstall_removes_the_links_the_update_left_and_only_those(tmp_path, ca):
    family, certs = debian_like_family(tmp_path)
    store = LinuxSystemStore(family)
    other = LocalCA.ephemeral()
    before = listing(certs)
    store.install(other, Runner(use_sudo=False))
    with_other = listing(certs)
    store.install(ca, Runner(use_sudo=False))
    anchor = Path(family.anchors) / f"{entry_name(ca)}.crt"
    mine = sorted(store.links_to(anchor))
    assert [p.name for p in mine if p.suffix == ".pem"] == [f"{entry_name(ca)}.pem"] and len(mine) == 2

    lines: list[str] = []
    dry = Runner(dry_run=True, use_sudo=False, echo=lines.append)
    store.uninstall(ca, dry)
    assert [(a.kind, a.text) for a in dry.actions] == [
        ("remove", str(anchor)), ("run", family.update[0]), *(("remove", str(link)) for link in mine)]
    assert lines[-2:] == [f"would remove: {link}" for link in mine]
    assert anchor.is_file() and all(link.is_symlink() for link in mine)

    runner = Runner(use_sudo=False)
    store.uninstall(ca, runner)
    assert [a.kind for a in runner.actions] == ["remove", "run", "remove", "remove"]
    assert listing(certs) == with_other  # the other CA's links, the bundle and others' links stay
    assert store.is_installed(other) and not store.is_installed(ca)
    store.uninstall(ca, runner)  # nothing left to do
    assert len(runner.actions) == 4
    # --stale goes the same way: the other CA's anchor, one rebuild, its links.
    assert store.remove_entries(store.entries(), Runner(use_sudo=False)) == []
    assert listing(certs) == before


def test_linux_uninstall_again_removes_links_left_by_a_run_killed_after_the_rebuild(tmp_path, ca):
    family, certs = debian_like_family(tmp_path)
    store = LinuxSystemStore(family)
    before = listing(certs)
    store.install(ca, Runner(use_sudo=False))
    anchor = Path(family.anchors) / f"{entry_name(ca)}.crt"
    anchor.unlink()  # what a run killed after removing the anchor and rebuilding leaves
    subprocess.run([family.update[0]], check=True)
    assert len(store.links_to(anchor)) == 2
    store.uninstall(ca, Runner(use_sudo=False))
    assert listing(certs) == before


def test_linux_uninstall_with_a_failing_update_touches_no_link(tmp_path, ca):
    family, certs = debian_like_family(tmp_path)
    store = LinuxSystemStore(family)
    store.install(ca, Runner(use_sudo=False))
    installed = listing(certs)
    Path(family.update[0]).write_text("#!/bin/sh\necho 'rebuild: disk full' >&2\nexit 4\n")
    with pytest.raises(TrustStoreError, match="disk full"):
        store.uninstall(ca, Runner(use_sudo=False))
    assert (Path(family.anchors) / f"{entry_name(ca)}.crt").read_bytes() == ca.cert_pem
    assert listing(certs) == installed


def fake_sudo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``sudo`` first on PATH: it records each command it is asked to run (in the
    returned log file), then runs it."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sudo.log"
    (bindir / "sudo").write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = "--" ] && shift\nexec "$@"\n')
    (bindir / "sudo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_linux_links_are_removed_through_sudo_when_their_folder_needs_root(tmp_path, monkeypatch, ca):
    """Not root here: the links folder is not writable (os.access says so), the anchors folder is."""
    family, certs = debian_like_family(tmp_path)
    store = LinuxSystemStore(family)
    store.install(ca, Runner(use_sudo=False))
    links = sorted(store.links_to(Path(family.anchors) / f"{entry_name(ca)}.crt"))
    log = fake_sudo(tmp_path, monkeypatch)
    real_access = os.access

    def access(path, mode):  # type: ignore[no-untyped-def]
        if Path(path) == certs and mode == os.W_OK:
            return False
        return real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    lines: list[str] = []
    store.uninstall(ca, Runner(use_sudo=True, echo=lines.append))
    assert not any(link.is_symlink() for link in links)
    rm_lines = [line for line in log.read_text().splitlines() if line.startswith("-- rm")]
    assert rm_lines == [f"-- rm -f -- {link}" for link in links]
    assert lines[-2:] == [f"remove (sudo): {link}" for link in links]


# -- the runner -----------------------------------------------------------------------------------


def test_dry_run_runner_records_and_echoes_but_changes_nothing(tmp_path):
    lines: list[str] = []
    runner = Runner(dry_run=True, echo=lines.append, use_sudo=True)
    target = tmp_path / "made"
    runner.run(["touch", str(target)])
    runner.run(["update-ca-certificates"], privileged=True)
    runner.write_file(tmp_path / "w.crt", b"x", privileged=False)
    runner.remove_file(tmp_path / "w.crt", privileged=True)
    assert not target.exists() and not (tmp_path / "w.crt").exists()
    assert lines == [
        f"would run: touch {target}",
        "would run (sudo): sudo -- update-ca-certificates",
        f"would write: {tmp_path / 'w.crt'}",
        f"would remove (sudo): {tmp_path / 'w.crt'}",
    ]
    assert [a.done for a in runner.actions] == [False] * 4


def test_runner_runs_and_reports_a_failing_command_in_one_line(tmp_path):
    runner = Runner(use_sudo=False)
    runner.run(["touch", str(tmp_path / "made")])
    assert (tmp_path / "made").exists()
    with pytest.raises(TrustStoreError) as info:
        runner.run([sys.executable, "-c", "import sys; print('first'); sys.exit('the real reason')"])
    assert "the real reason" in str(info.value) and "\n" not in str(info.value)


def test_runner_without_sudo_writes_files_atomically(tmp_path):
    runner = Runner(use_sudo=False)
    runner.write_file(tmp_path / "a.crt", b"data")
    assert (tmp_path / "a.crt").read_bytes() == b"data"
    assert oct((tmp_path / "a.crt").stat().st_mode & 0o777) == "0o644"
    runner.remove_file(tmp_path / "a.crt")
    runner.remove_file(tmp_path / "a.crt")  # already gone: fine
    assert not (tmp_path / "a.crt").exists()


# -- macOS and Windows: the exact commands ---------------------------------------------------------


class FakeQuery:
    """Stands in for base.query in a store module: returns canned results, records argv."""

    def __init__(self, returncode: int = 0, stdout: bytes = b""):
        self.returncode, self.stdout, self.calls = returncode, stdout, []

    def __call__(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, b"")


def test_macos_install_command(monkeypatch, ca):
    fake = FakeQuery(stdout=b'keychain: "/Library/Keychains/System.keychain"\nSHA-256 hash: 00FF\n')
    monkeypatch.setattr(macos_mod, "query", fake)
    store = macos_mod.MacOSKeychainStore(platform="darwin")
    assert not store.is_installed(ca)
    assert fake.calls == [["/usr/bin/security", "find-certificate", "-a", "-Z", "/Library/Keychains/System.keychain"]]
    runner = Runner(dry_run=True, use_sudo=True)
    store.install(ca, runner)
    (action,) = runner.actions
    assert action.sudo
    assert action.text.startswith(
        "sudo -- /usr/bin/security add-trusted-cert -d -r trustRoot -p ssl -p basic "
        "-k /Library/Keychains/System.keychain "
    )
    assert action.text.endswith(".pem")


def test_macos_is_installed_and_uninstall_commands(monkeypatch, ca):
    listing = f"SHA-256 hash: {ca.fingerprint.upper()}\nSHA-1 hash: {macos_mod.sha1_hex(ca)}\n".encode()
    monkeypatch.setattr(macos_mod, "query", FakeQuery(stdout=listing))
    store = macos_mod.MacOSKeychainStore(platform="darwin")
    assert store.is_installed(ca)
    runner = Runner(dry_run=True, use_sudo=True)
    store.install(ca, runner)
    assert runner.actions == []  # already there: nothing to do
    store.uninstall(ca, runner)
    texts = [a.text for a in runner.actions]
    assert texts[0].startswith("sudo -- /usr/bin/security remove-trusted-cert -d ")
    assert texts[1] == (f"sudo -- /usr/bin/security delete-certificate -Z {macos_mod.sha1_hex(ca)} "
                        "/Library/Keychains/System.keychain")
    assert len(macos_mod.sha1_hex(ca)) == 40


def test_macos_store_is_unavailable_elsewhere():
    assert not macos_mod.MacOSKeychainStore(platform="linux").available()


def test_windows_commands(monkeypatch, ca):
    absent = FakeQuery(returncode=1)
    monkeypatch.setattr(windows_mod, "query", absent)
    store = windows_mod.WindowsRootStore(certutil="certutil.exe", platform="windows")
    assert store.available() and not store.is_installed(ca)
    thumb = macos_mod.sha1_hex(ca)
    assert absent.calls == [["certutil.exe", "-user", "-store", "Root", thumb]]
    runner = Runner(dry_run=True, use_sudo=True)
    store.install(ca, runner)
    (action,) = runner.actions
    assert not action.sudo  # the user's own store: no elevation
    assert action.text.startswith("certutil.exe -user -addstore -f Root ")
    monkeypatch.setattr(windows_mod, "query", FakeQuery(returncode=0))
    runner = Runner(dry_run=True)
    store.uninstall(ca, runner)
    assert [a.text for a in runner.actions] == [f"certutil.exe -user -delstore Root {thumb}"]
    assert not windows_mod.WindowsRootStore(platform="linux").available()


# -- NSS ------------------------------------------------------------------------------------------


def test_firefox_profiles_from_profiles_ini(tmp_path):
    root = tmp_path / "firefox"
    (root / "abc.default").mkdir(parents=True)
    absolute = tmp_path / "elsewhere"
    absolute.mkdir()
    stray = root / "zzz.unlisted"
    stray.mkdir()
    (stray / "cert9.db").write_bytes(b"")
    (root / "profiles.ini").write_text(
        "[General]\nStartWithLastProfile=1\n\n"
        "[Profile0]\nName=default\nIsRelative=1\nPath=abc.default\n\n"
        f"[Profile1]\nName=other\nIsRelative=0\nPath={absolute}\n\n"
        "[Install4F96D1932A9F858E]\nDefault=abc.default\n"
    )
    assert firefox_profiles(root) == [root / "abc.default", absolute, stray]


def test_find_databases_in_a_fake_home(tmp_path):
    home = tmp_path
    for rel in (".mozilla/firefox/a.default", ".config/mozilla/firefox/b.esr", "snap/chromium/current/.pki/nssdb",
                ".var/app/org.mozilla.firefox/.mozilla/firefox/c.flat", "Library/Application Support/Firefox/Profiles/d"):
        (home / rel).mkdir(parents=True)
        (home / rel / "cert9.db").write_bytes(b"")
    (home / ".mozilla/firefox/never-started").mkdir()
    found = find_databases(home, create_chromium=True)
    paths = {str(p.relative_to(home)): exists for p, exists in found}
    # Chromium M146+ reads ~/.local/share/pki/nssdb unless ~/.pki/nssdb exists: that one is
    # created, never the legacy path (which would switch Chromium away from the user's database).
    assert paths[".local/share/pki/nssdb"] is False
    assert ".pki/nssdb" not in paths
    assert paths["snap/chromium/current/.pki/nssdb"] is True
    assert paths[".mozilla/firefox/a.default"] and paths[".config/mozilla/firefox/b.esr"]
    assert paths[".var/app/org.mozilla.firefox/.mozilla/firefox/c.flat"]
    assert ".mozilla/firefox/never-started" not in paths
    assert ".pki/nssdb" not in {str(p.relative_to(home)) for p, _ in find_databases(home, create_chromium=False)}


def test_certutil_package_named_for_debian():
    if not os.path.exists("/etc/debian_version"):
        pytest.skip("this check is for Debian machines")
    assert "libnss3-tools" in certutil_package()


# -- Java -----------------------------------------------------------------------------------------


def test_java_home_follows_symlinks_from_path(tmp_path, monkeypatch):
    jdk = tmp_path / "jdk-x"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "lib" / "security").mkdir(parents=True)
    (jdk / "lib" / "security" / "cacerts").write_bytes(b"")
    for tool in ("java", "keytool"):
        (jdk / "bin" / tool).write_text("#!/bin/sh\n")
        (jdk / "bin" / tool).chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "java").symlink_to(jdk / "bin" / "java")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(bindir))
    assert java_home() == jdk
    store = JavaStore(extra=())
    assert store.keystores() == [jdk / "lib" / "security" / "cacerts"]
    assert store.keytool() == str(jdk / "bin" / "keytool")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk-x"))
    assert java_home() == jdk


def test_java_keystores_that_are_one_file_are_changed_once(tmp_path):
    real = tmp_path / "cacerts"
    real.write_bytes(b"")
    jdk = tmp_path / "jdk"
    (jdk / "lib" / "security").mkdir(parents=True)
    (jdk / "lib" / "security" / "cacerts").symlink_to(real)
    store = JavaStore(home=jdk, extra=(str(real),))
    assert store.keystores() == [jdk / "lib" / "security" / "cacerts"]


# -- sudo -----------------------------------------------------------------------------------------


def test_sudo_with_the_users_ca_elsewhere_is_explained(tmp_path, caroot):
    alice_home = tmp_path / "home" / "alice"
    theirs = alice_home / ".local" / "share" / "devcert"
    theirs.mkdir(parents=True)
    (theirs / "rootCA.pem").write_text("x")
    env = {"SUDO_USER": "alice"}
    advice, fatal = sudo_caroot_problem(env, euid=0, home_of=lambda user: alice_home)
    assert fatal is True  # root has no CA: install would make a different one
    message = word(advice)  # what the CLI prints
    assert str(theirs) in message and "without sudo" in message and f"DEVCERT_CAROOT={theirs}" in message
    LocalCA.create(caroot)
    message, fatal = sudo_caroot_problem(env, euid=0, home_of=lambda user: alice_home)
    assert fatal is False
    assert sudo_caroot_problem(env, euid=1000, home_of=lambda user: alice_home) is None
    assert sudo_caroot_problem({**env, "DEVCERT_CAROOT": str(caroot)}, euid=0, home_of=lambda u: alice_home) is None
    assert sudo_caroot_problem({}, euid=0) is None


def test_privileged_changes_go_through_sudo_when_not_root(tmp_path, monkeypatch):
    """A stand-in ``sudo`` on PATH records what it is asked to run, then runs it."""
    log = fake_sudo(tmp_path, monkeypatch)
    lines: list[str] = []
    runner = Runner(use_sudo=True, echo=lines.append)
    target = tmp_path / "anchors" / "devcert-x.crt"
    target.parent.mkdir()
    runner.write_file(target, b"PEM", privileged=True)
    runner.run(["touch", str(tmp_path / "ran")], privileged=True)
    runner.run(["touch", str(tmp_path / "plain")])  # not privileged: no sudo
    runner.remove_file(target, privileged=True)
    assert (tmp_path / "ran").exists() and (tmp_path / "plain").exists() and not target.exists()
    assert log.read_text().splitlines() == [
        f"-- tee {target}", f"-- chmod 644 {target}", f"-- touch {tmp_path / 'ran'}", f"-- rm -f -- {target}",
    ]
    assert lines[0] == f"write (sudo): {target}"
    assert lines[1] == f"run (sudo): sudo -- touch {tmp_path / 'ran'}"
    assert lines[2] == f"run: touch {tmp_path / 'plain'}"


@pytest.mark.parametrize("command", ["install", "uninstall", "status"])
def test_help_has_examples(command, cli_env):
    result = run_devcert(command, "--help", env=cli_env)
    assert result.returncode == 0
    assert "Examples:" in result.stdout and f"devcert {command}" in result.stdout


def test_every_store_lists_and_removes_its_entries():
    """Each store implements entries() / remove_entry() (uninstall --stale and status use them)."""
    from devcert.trust.base import TrustStore
    from devcert.trust.nss import NSSStore

    for cls in (LinuxSystemStore, NSSStore, JavaStore, macos_mod.MacOSKeychainStore, windows_mod.WindowsRootStore):
        assert cls.entries is not TrustStore.entries, cls
        assert cls.remove_entry is not TrustStore.remove_entry, cls
    assert macos_mod.MacOSKeychainStore(platform="linux").entries() == []
    assert windows_mod.WindowsRootStore(platform="linux").entries() == []
