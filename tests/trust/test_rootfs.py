"""``devcert install --root DIR``: the CA goes into another Linux root file system, never the host's.

Unit tests build tiny fake roots (an os-release and the folders each distribution has) and
check where the anchor lands and which command is left for the image's RUN line. The real
test runs on a Debian root file system made by debootstrap (built once into
.cache/debian-root/, each test works on its own copy): after ``install --root``, curl and
Python inside ``chroot`` trust a server on 127.0.0.1 (the chroot shares this network
namespace); after ``uninstall --root`` they refuse it again and the root is byte for byte as
before. devcert runs inside the trust sandbox there, and the host's stores (its private copies
of them) are compared byte for byte before and after.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcert.ca import LocalCA
from devcert.errors import TrustStoreError, UsageError
from devcert.trust import entry_name
from devcert.trust.base import Runner
from devcert.trust.rootfs import RootFSStore, resolve_in
from tests import sandbox
from tests.debian_root import ROOTFS_OK, chroot_clients, tree_digest
from tests.helpers import (
    UNIT,
    TLSServer,
    clean_env,
    devcert_exe,
    one_error_line,
    require_sandbox,
    require_tool,
    run_devcert,
)


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


def fake_root(tmp_path: Path, os_release: str, folders: tuple[str, ...] = (), *, link: str | None = None) -> Path:
    """A root file system with only an os-release (at usr/lib, linked from etc as images do) and ``folders``."""
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib/os-release").write_text(os_release)
    # Absolute, as in many images: it must resolve inside the root, not to the host's file.
    os.symlink(link or "/usr/lib/os-release", root / "etc/os-release")
    for folder in folders:
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


CASES = [
    # (os-release, anchor file's folder inside the root, suffix, RUN line when the tool is missing)
    ('ID=debian\nVERSION_ID="12"\n', "/usr/local/share/ca-certificates", ".crt",
     "apt-get update && apt-get install -y --no-install-recommends ca-certificates && update-ca-certificates"),
    ('ID=ubuntu\nID_LIKE=debian\n', "/usr/local/share/ca-certificates", ".crt",
     "apt-get update && apt-get install -y --no-install-recommends ca-certificates && update-ca-certificates"),
    ('ID=alpine\nVERSION_ID=3.20.0\n', "/usr/local/share/ca-certificates", ".crt",
     "apk add --no-cache ca-certificates && update-ca-certificates"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "/etc/pki/ca-trust/source/anchors", ".pem",
     "dnf install -y ca-certificates && update-ca-trust extract"),
    ('ID=fedora\n', "/etc/pki/ca-trust/source/anchors", ".pem",
     "dnf install -y ca-certificates && update-ca-trust extract"),
    ('ID=arch\n', "/etc/ca-certificates/trust-source/anchors", ".crt",
     "pacman -Sy --noconfirm ca-certificates && trust extract-compat"),
    ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "/usr/share/pki/trust/anchors", ".pem",
     "zypper --non-interactive install ca-certificates && update-ca-certificates"),
]


@pytest.mark.parametrize(("os_release", "anchors", "suffix", "run_line"), CASES, ids=lambda v: str(v).split("\n")[0][:24])
def test_each_distribution_gets_its_anchor_and_its_run_line(tmp_path, ca, os_release, anchors, suffix, run_line):
    root = fake_root(tmp_path, os_release)
    store = RootFSStore(root, as_root=False)
    assert store.problem() is None
    store.install(ca, Runner(use_sudo=False))
    anchor = root / anchors.lstrip("/") / f"{entry_name(ca)}{suffix}"
    assert anchor.read_bytes() == ca.cert_pem
    assert anchor.stat().st_mode & 0o777 == 0o644
    # No update tool in the root and not run as root: the RUN line installs the package first.
    assert store.deferred == [run_line]
    assert store.is_installed(ca)
    assert [e.name for e in store.entries()] == [entry_name(ca)]
    again = RootFSStore(root, as_root=False)
    again.uninstall(ca, Runner(use_sudo=False))
    assert not anchor.exists()
    assert again.deferred == [run_line]
    assert not RootFSStore(root, as_root=False).is_installed(ca)


def test_tool_present_but_not_root_leaves_only_the_update_for_the_run_line(tmp_path, ca):
    root = fake_root(tmp_path, "ID=alpine\n", ("/usr/sbin",))
    tool = root / "usr/sbin/update-ca-certificates"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    store = RootFSStore(root, as_root=False)
    assert store.tool_inside() == "/usr/sbin/update-ca-certificates"
    store.install(ca, Runner(use_sudo=False))
    assert store.deferred == ["update-ca-certificates"]


def test_as_root_with_the_tool_it_runs_in_chroot(tmp_path, ca):
    """The exact command: a stand-in chroot records its arguments (the real one is in the debootstrap test)."""
    root = fake_root(tmp_path, "ID=fedora\n", ("/usr/bin",))
    tool = root / "usr/bin/update-ca-trust"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    record = tmp_path / "chroot-args"
    chroot = tmp_path / "chroot"
    chroot.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    chroot.chmod(0o755)
    store = RootFSStore(root, chroot=str(chroot), as_root=True)
    runner = Runner(use_sudo=False)
    store.install(ca, runner)
    assert record.read_text().splitlines() == [str(root), "/usr/bin/update-ca-trust", "extract"]
    assert store.deferred == []
    # The anchors folder is made first (this fake root lacks it), then the file, then the update.
    assert [(a.kind, a.text.split()[0]) for a in runner.actions] == [
        ("run", "mkdir"), ("write", str(root / "etc/pki/ca-trust/source/anchors" / f"{entry_name(ca)}.pem")), ("run", str(chroot))]


def test_symlinks_resolve_inside_the_root_never_to_the_host(tmp_path, ca):
    """An image whose anchors folder is an absolute symlink climbing past / (as the chroot sees it)
    gets the file inside the image; the host's folder is not touched."""
    root = fake_root(tmp_path, "ID=debian\n", ("/srv/anchors",))
    (root / "usr/local/share").mkdir(parents=True)
    os.symlink("/usr/local/share/../../../../../srv/anchors", root / "usr/local/share/ca-certificates")
    assert resolve_in(root, "/usr/local/share/ca-certificates") == Path(os.path.realpath(root)) / "srv/anchors"
    assert resolve_in(root, "/../../../etc/passwd") == Path(os.path.realpath(root)) / "etc/passwd"
    host_anchor = Path("/usr/local/share/ca-certificates") / f"{entry_name(ca)}.crt"
    store = RootFSStore(root, as_root=False)
    store.install(ca, Runner(use_sudo=False))
    assert (root / "srv/anchors" / f"{entry_name(ca)}.crt").read_bytes() == ca.cert_pem
    assert not host_anchor.exists()


def test_uninstall_removes_the_roots_links_to_its_anchor_resolved_inside_the_root(tmp_path, ca):
    """The links Debian's tool made in the root's /etc/ssl/certs (absolute, as the chroot sees
    them: on this machine they lead nowhere) go with the anchor; another CA's and others' stay."""
    root = fake_root(tmp_path, "ID=debian\n", ("/etc/ssl/certs",))
    store = RootFSStore(root, as_root=False)
    other = LocalCA.ephemeral()
    for each in (ca, other):
        store.install(each, Runner(use_sudo=False))
    certs = root / "etc/ssl/certs"
    for each, hash_name in ((ca, "1a2b3c4d.0"), (other, "5e6f7a8b.0")):
        name = entry_name(each)
        os.symlink(f"/usr/local/share/ca-certificates/{name}.crt", certs / f"{name}.pem")
        os.symlink(f"{name}.pem", certs / hash_name)
    os.symlink("/usr/share/ca-certificates/mozilla/Some_Root.crt", certs / "Some_Root.pem")
    (certs / "ca-certificates.crt").write_text("")
    # An image's /etc/ssl/certs may itself be a link; it too is followed inside the root.
    os.rename(certs, root / "etc/ssl/real-certs")
    os.symlink("/etc/ssl/real-certs", certs)
    kept = {"ca-certificates.crt", "Some_Root.pem", f"{entry_name(other)}.pem", "5e6f7a8b.0"}
    runner = Runner(use_sudo=False)
    RootFSStore(root, as_root=False).uninstall(ca, runner)
    assert sorted(p.name for p in (root / "etc/ssl/real-certs").iterdir()) == sorted(kept)
    real = Path(os.path.realpath(root)) / "etc/ssl/real-certs"
    assert [(a.kind, a.text) for a in runner.actions] == [
        ("remove", str(store.entry_path(ca))), ("remove", str(real / "1a2b3c4d.0")),
        ("remove", str(real / f"{entry_name(ca)}.pem"))]


def test_symlink_loop_and_unknown_or_missing_os_release(tmp_path, ca):
    root = fake_root(tmp_path, "ID=plan9\n")
    store = RootFSStore(root, as_root=False)
    assert "plan9" in (store.problem() or "")
    with pytest.raises(TrustStoreError, match="plan9"):
        store.install(ca)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no etc/os-release" in (RootFSStore(empty, as_root=False).problem() or "")
    os.symlink("loop", empty / "loop")
    with pytest.raises(TrustStoreError, match="symbolic links"):
        resolve_in(empty, "/loop/x")
    with pytest.raises(UsageError, match="not a folder"):
        RootFSStore(tmp_path / "missing")


def test_cli_root_prints_the_run_line_and_json(tmp_path, cli_env):
    root = fake_root(tmp_path, "ID=alpine\n")
    env = dict(cli_env, DEVCERT_TRUST_STORES="nss")  # --root ignores it: only the root's store
    result = run_devcert("install", "--root", str(root), "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["store"] for s in report["stores"]] == ["rootfs"]
    assert report["stores"][0]["run_in_image"] == "apk add --no-cache ca-certificates && update-ca-certificates"
    assert "RUN apk add --no-cache ca-certificates && update-ca-certificates" in result.stderr
    anchor = root / "usr/local/share/ca-certificates" / f"{report['ca']['entry']}.crt"
    assert anchor.is_file()
    status = run_devcert("status", "--root", str(root), "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert [(s["store"], s["installed"]) for s in json.loads(status.stdout)["stores"]] == [("rootfs", True)]
    bad = run_devcert("install", "--root", str(root), "--store", "nss", env=env)
    assert bad.returncode == 2
    assert "--root" in one_error_line(bad.stderr)
    gone = run_devcert("uninstall", "--root", str(root), env=env)
    assert gone.returncode == 0, gone.stderr
    assert not anchor.exists()


# -- a real Debian root file system ---------------------------------------------------------------


@pytest.fixture
def server_ca(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    caroot = tmp_path / "caroot"
    local = LocalCA.create(caroot)
    leaf = local.issue("localhost", "127.0.0.1")
    with TLSServer(leaf.server_context(), body=ROOTFS_OK) as server:
        yield caroot, server.port


#: Run inside the trust sandbox: digest the (private copies of the) host's stores, run devcert,
#: digest them again; print both digests and devcert's result as one JSON line.
_IN_SANDBOX = r"""
import hashlib, json, os, subprocess, sys
def digest(dirs):
    out = {}
    for top in dirs:
        for folder, _, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        out[path] = hashlib.sha256(f.read()).hexdigest()
                except OSError as err:
                    out[path] = "unreadable " + str(err.errno)
            out[folder] = "dir " + " ".join(sorted(os.listdir(folder)))
    return out
dirs = json.loads(sys.argv[1])
before = digest(dirs)
run = subprocess.run(sys.argv[2:], capture_output=True, text=True)
print(json.dumps({"same": digest(dirs) == before, "rc": run.returncode, "out": run.stdout, "err": run.stderr}))
"""


def devcert_in_sandbox(*args: str, caroot: Path) -> dict:  # type: ignore[type-arg]
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    result = sandbox.run([sys.executable, "-c", _IN_SANDBOX, json.dumps(list(sandbox.SHADOWED)), devcert_exe(), *args],
                         env=env, timeout=600 * UNIT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.sandbox
def test_debian_root_trusts_after_install_and_is_as_before_after_uninstall(debian_copy, server_ca):
    require_sandbox()
    require_tool("chroot")
    caroot, port = server_ca
    before = tree_digest(debian_copy)
    assert chroot_clients(debian_copy, port) == {"curl": False, "python": False}

    installed = devcert_in_sandbox("install", "--root", str(debian_copy), "--json", caroot=caroot)
    assert installed["rc"] == 0, installed["err"]
    assert installed["same"], "install --root changed the host's trust stores"
    report = json.loads(installed["out"])
    assert [(s["store"], s["result"]) for s in report["stores"]] == [("rootfs", "installed")]
    assert "run_in_image" not in report["stores"][0]  # root and chroot here: it ran inside
    assert f"chroot {debian_copy} /usr/sbin/update-ca-certificates" in installed["err"]
    assert chroot_clients(debian_copy, port) == {"curl": True, "python": True}

    status = devcert_in_sandbox("status", "--root", str(debian_copy), "--json", caroot=caroot)
    assert json.loads(status["out"])["stores"][0]["installed"] is True

    removed = devcert_in_sandbox("uninstall", "--root", str(debian_copy), caroot=caroot)
    assert removed["rc"] == 0, removed["err"]
    assert removed["same"], "uninstall --root changed the host's trust stores"
    assert chroot_clients(debian_copy, port) == {"curl": False, "python": False}
    after = tree_digest(debian_copy)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], changed
