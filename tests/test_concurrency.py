"""Concurrency and crash safety.

* 16 first runs of ``devcert create`` started at once on an empty CAROOT make exactly one CA,
  and all 16 leaves chain to it (checked by ``openssl verify``).
* A process writing a file with ``atomic_write`` in a loop, killed with SIGKILL at random
  moments, leaves the target holding either the old or the new content, never a mix or a
  truncated file.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography import x509

from devcert import LocalCA
from devcert.ca import CERT_FILE, KEY_FILE
from devcert.files import PRIVATE, atomic_write
from tests.helpers import UNIT, clean_env, devcert_exe, require_tool

RUNS = 16


@pytest.mark.slow
def test_sixteen_first_runs_make_one_ca(tmp_path: Path) -> None:
    root = tmp_path / "caroot"  # does not exist yet: every run races to create it
    env = clean_env(DEVCERT_CAROOT=str(root))
    dirs = [tmp_path / f"run{i}" for i in range(RUNS)]
    for d in dirs:
        d.mkdir()
    procs = [subprocess.Popen([devcert_exe(), "create", "--json", "localhost", "127.0.0.1"], cwd=d, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in dirs]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=120 * UNIT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err

    # Exactly one CA, complete, and no temporary files left behind.
    files = sorted(p.name for p in root.iterdir() if not p.name.startswith(".devcert.lock"))
    assert CERT_FILE in files and KEY_FILE in files
    assert not [f for f in files if f.endswith(".tmp")], files
    ca = LocalCA.load(root)

    leaves = [d / "localhost+1.pem" for d in dirs]
    for leaf in leaves:
        cert = x509.load_pem_x509_certificate(leaf.read_bytes())
        assert cert.issuer == ca.cert.subject
        cert.verify_directly_issued_by(ca.cert)
    openssl = require_tool("openssl")
    res = subprocess.run([openssl, "verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile",
                          str(root / CERT_FILE), *map(str, leaves)], capture_output=True, text=True, timeout=60 * UNIT,
                         env=clean_env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(": OK") == RUNS
    # Every run reports the same CA in its JSON.
    import json

    assert {json.loads(out)["ca"] for _, out, _ in results} == {str(root / CERT_FILE)}
    announced = sum("Created a new local CA" in err for _, _, err in results)
    assert announced == 1, f"{announced} of {RUNS} runs said they created the CA; exactly one did"


WRITER = textwrap.dedent(
    """
    import sys
    from devcert.files import atomic_write, PRIVATE
    target, size = sys.argv[1], int(sys.argv[2])
    n = 0
    while True:  # until killed: version n is its number in 8 digits, then one letter repeated
        n += 1
        atomic_write(target, b"%08d" % n + bytes([65 + n % 2]) * (size - 8), PRIVATE)
        print(n, flush=True)  # version n is complete on disk
    """
)


@pytest.mark.slow
def test_kill_during_atomic_write_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """SIGKILL at random moments of a loop of 4 MiB atomic writes: the file is always one whole
    version, the last one the writer said it finished or the one it was writing, never older."""
    size = 4 * 1024 * 1024  # large enough that a write takes a while, so kills land in the middle
    target = tmp_path / "out" / "target.pem"
    target.parent.mkdir()
    atomic_write(target, b"%08d" % 0 + b"A" * (size - 8), PRIVATE)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(1234)
    for _ in range(12):  # bounded: 12 kills
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(size)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "1"
            time.sleep(rng.uniform(0, 0.05))  # where the kill lands, not a wait for anything
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30 * UNIT)
        assert proc.returncode == -signal.SIGKILL
        finished = int(rest.split()[-1]) if rest.split() else 1
        data = target.read_bytes()
        version = int(data[:8])
        assert data == b"%08d" % version + bytes([65 + version % 2]) * (size - 8), f"partial file: {len(data)} bytes"
        assert version in (finished, finished + 1), (version, finished)  # a finished write is never lost
        assert oct(target.stat().st_mode & 0o777) == oct(PRIVATE)
    # Only the target and the writer's abandoned temporary files are in the folder; the
    # temporary names never collide with the target.
    for p in target.parent.iterdir():
        assert p == target or (p.name.startswith(".target.pem.") and p.name.endswith(".tmp"))


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way (here: fsync raises) leaves the old file and no temp file."""
    target = tmp_path / "f.pem"
    atomic_write(target, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    from devcert.errors import FileWriteError

    with pytest.raises(FileWriteError, match="no space left"):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pem"]


def test_concurrent_load_or_create_in_threads(tmp_path: Path) -> None:
    """In one process too (the Python API from threads), exactly one CA is made."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path / "ca"
    with ThreadPoolExecutor(8) as pool:
        cas = list(pool.map(lambda _: LocalCA.load_or_create(folder), range(8)))
    assert len({ca.fingerprint for ca in cas}) == 1
    assert sum(ca.created for ca in cas) == 1  # exactly one caller made it, and knows it
