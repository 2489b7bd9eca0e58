"""A real Debian root file system for tests (made by debootstrap once, cached), and what the
tests that use it share: a digest of a whole tree, an https server on 127.0.0.1, and curl and
Python run inside ``chroot`` against it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, clean_env, require_tool

DEBIAN_CACHE = ROOT / ".cache" / "debian-root"
SUITE = "bookworm"
#: What the test root needs: the update tool, and the two clients that must trust the CA.
PACKAGES = "ca-certificates,curl,python3"


def debian_root_cache() -> Path:
    """The debootstrap'd root, built once into .cache/debian-root/<suite> (under a lock, renamed
    into place when complete, so a killed build is never taken for a finished one)."""
    done = DEBIAN_CACHE / SUITE
    if (done / ".devcert-complete").is_file():
        return done
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    require_tool("debootstrap", "the --root test builds a Debian root file system")
    DEBIAN_CACHE.mkdir(parents=True, exist_ok=True)
    with open(DEBIAN_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (done / ".devcert-complete").is_file():
            return done
        build = DEBIAN_CACHE / f"{SUITE}.build"
        shutil.rmtree(build, ignore_errors=True)
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(build), "http://deb.debian.org/debian"],
            capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        (build / ".devcert-complete").touch()
        shutil.rmtree(done, ignore_errors=True)
        build.rename(done)
    return done


def tree_digest(root: Path, skip: tuple[str, ...] = ("proc", "sys", "dev", "tmp")) -> dict[str, str]:
    """Every file's content (and every symlink's target, every folder's mode) under ``root``."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        if rel_folder == ".":
            dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[rel] = f"dir {st.st_mode:o}"
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[rel] = f"{st.st_mode:o} " + hashlib.sha256(handle.read()).hexdigest()
    return found


#: What the test servers answer; chroot_clients checks for it.
ROOTFS_OK = b"devcert rootfs ok\n"


def debian_root_copy(copy: Path) -> Path:
    """A private copy of the cached root at ``copy``: tests change the copy, never the cache."""
    cache = debian_root_cache()
    # cp -a keeps device nodes, owners and links.
    subprocess.run(["cp", "-a", str(cache), str(copy)], check=True, timeout=600)
    # This machine's resolver, as Docker gives a container: the cache may be older than it.
    if os.path.isfile("/etc/resolv.conf"):
        resolv = copy / "etc" / "resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)
    return copy


@pytest.fixture
def debian_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the Debian root for one test, removed after it (it is ~300 MB; pytest keeps
    the temporary folders of the last runs)."""
    copy = debian_root_copy(tmp_path / "debian")
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def chroot_clients(root: Path, port: int, env: dict[str, str] | None = None) -> dict[str, bool]:
    """Whether curl and Python's default ssl context, inside ``chroot root``, accept the server."""
    env = clean_env(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME="/root", **(env or {}))
    url = f"https://127.0.0.1:{port}/"
    curl = subprocess.run(["chroot", str(root), "curl", "-sS", "--max-time", "20", url],
                          capture_output=True, text=True, env=env, timeout=60)
    py = subprocess.run(["chroot", str(root), "python3", "-c",
                         "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())",
                         url], capture_output=True, text=True, env=env, timeout=60)
    for result in (curl, py):
        if result.returncode == 0:
            assert result.stdout == ROOTFS_OK.decode()
        else:
            assert "certificate" in result.stderr.lower(), result.stderr  # refused for trust, not for another reason
    return {"curl": curl.returncode == 0, "python": py.returncode == 0}


