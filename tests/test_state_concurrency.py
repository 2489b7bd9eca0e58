"""Concurrent devcert runs on one CAROOT, checked as a user would check them.

Races are probabilistic, so each scenario runs a few bounded rounds. After every round: all
runs exited 0 with no error, each certificate/key pair on disk completes a real TLS handshake
against a client trusting only CAROOT/rootCA.pem, ``devcert list --json`` records exactly one
entry per output whose SHA-256 is the certificate on disk, and no temporary file or journal
is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tests.helpers import UNIT, DEV, cert_sha256, clean_env, devcert_exe, ok, run_devcert, serves, write_project

ROUNDS = 5
PARALLEL = 8
ROUND_TIMEOUT = 240 * UNIT  # for all runs of one round together


def run_parallel(n: int, args: list[str], *, env: dict[str, str], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start ``n`` runs of ``devcert args`` at once; wait for all (bounded); a hang fails the test."""
    procs = [subprocess.Popen([devcert_exe(), *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True) for _ in range(n)]
    deadline = time.monotonic() + ROUND_TIMEOUT
    results = []
    try:
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(UNIT, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"`devcert {' '.join(args)}` did not finish within {ROUND_TIMEOUT:.0f}s (a deadlock?)")
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:  # only on failure: the runs this test started, by their own handles
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for res in results:
        ok(res)
        assert "unexpected" not in res.stderr, res.stderr
    return results


def check_state(caroot: Path, env: dict[str, str], outputs: list[tuple[Path, Path]],
                hosts: dict[Path, str] | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    """Each pair serves against rootCA.pem; the inventory holds one entry per output, matching the disk."""
    ca_pem = caroot / "rootCA.pem"
    for cert, key in outputs:
        serves(cert, key, ca_pem, (hosts or {}).get(cert, "localhost"))
    listing = json.loads(ok(run_devcert("list", "--json", env=env)).stdout)["certs"]
    ca_sha = cert_sha256(ca_pem)
    by_cert = {}
    for cert, key in outputs:
        entries = [e for e in listing if os.path.realpath(e["cert"]) == os.path.realpath(cert)]
        assert len(entries) == 1, (cert, listing)
        entry = entries[0]
        assert entry["sha256"] == cert_sha256(cert), (cert, entry)
        assert os.path.realpath(entry["key"]) == os.path.realpath(key)
        assert entry["ca_sha256"] == ca_sha
        assert not entry["missing"] and not entry["replaced"] and not entry["other_ca"], entry
        by_cert[os.path.realpath(cert)] = entry
    folders = {p.parent for pair in outputs for p in pair} | {caroot}
    for folder in folders:
        left = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert not left, (folder, left)
    assert not list((caroot / "pending").glob("*")), list((caroot / "pending").iterdir())
    assert not (caroot / "rotation.json").exists() and not (caroot / "next").exists()
    return by_cert


@pytest.mark.slow
def test_parallel_syncs_of_one_project(tmp_path: Path) -> None:
    caroot = tmp_path / "caroot"  # missing: the first round also races to make the CA
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    project = write_project(tmp_path / "proj", DEV,
                            {"names": ["app.test", "*.app.test"], "cert": "certs/app.pem", "key": "keys/app-key.pem"})
    outputs = [(project / "certs" / "dev.pem", project / "certs" / "dev-key.pem"),
               (project / "certs" / "app.pem", project / "keys" / "app-key.pem")]
    for round_ in range(ROUNDS):
        if round_:
            for cert, key in outputs:
                cert.unlink()
                key.unlink()
        results = run_parallel(PARALLEL, ["sync", "--no-gitignore"], env=env, cwd=project)
        # The whole run holds the CAROOT lock: exactly one run makes each file, the others keep it.
        for rel in ("certs/dev.pem", "certs/app.pem"):
            made = sum(res.stdout.count(f"created {rel} ") for res in results)
            assert made == 1, (round_, rel, [r.stdout for r in results])
        if round_ == 0:
            assert sum("Created a new local CA" in res.stderr for res in results) == 1
        check_state(caroot, env, outputs, {outputs[1][0]: "www.app.test"})


@pytest.mark.slow
def test_parallel_creates_of_one_output(tmp_path: Path) -> None:
    caroot = tmp_path / "caroot"
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    cert, key = work / "out" / "dev.pem", work / "out" / "dev-key.pem"
    for round_ in range(ROUNDS):
        results = run_parallel(PARALLEL, ["create", "--json", "localhost", "--cert-file", "out/dev.pem",
                                          "--key-file", "out/dev-key.pem"], env=env, cwd=work)
        entry = check_state(caroot, env, [(cert, key)])[os.path.realpath(cert)]
        # Every run issued its own certificate; the one on disk (and recorded) is one of them.
        issued = {json.loads(res.stdout)["sha256"] for res in results}
        assert len(issued) == PARALLEL
        assert entry["sha256"] in issued, round_
        if round_ == 0:
            assert sum("Created a new local CA" in res.stderr for res in results) == 1


@pytest.mark.slow
def test_parallel_rotations_end_with_one_ca_that_signed_every_leaf(tmp_path: Path) -> None:
    caroot = tmp_path / "caroot"
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    work = tmp_path / "work"
    work.mkdir()
    project = write_project(tmp_path / "proj", DEV)
    ok(run_devcert("ca", "init", env=env))
    ok(run_devcert("create", "localhost", "--cert-file", "a.pem", "--key-file", "a-key.pem", env=env, cwd=work))
    ok(run_devcert("create", "db.test", "--key-type", "rsa", "--cert-file", "b.pem", "--key-file", "b-key.pem",
                   env=env, cwd=work))
    ok(run_devcert("sync", "--no-gitignore", env=env, cwd=project))
    outputs = [(work / "a.pem", work / "a-key.pem"), (work / "b.pem", work / "b-key.pem"),
               (project / "certs" / "dev.pem", project / "certs" / "dev-key.pem")]
    hosts = {work / "b.pem": "db.test"}
    seen = {cert_sha256(caroot / "rootCA.pem")}
    for round_ in range(2):
        results = run_parallel(4, ["ca", "rotate", "--yes"], env=env, cwd=work)
        # Each run rotated in its turn (the lock covers the whole rotation): 4 new CAs, each backed up
        # by the next one, and each run reissued all three leaves.
        for res in results:
            assert "Rotated: 3 certificate(s) reissued" in res.stdout, res.stdout
        final = cert_sha256(caroot / "rootCA.pem")
        seen.add(final)
        backups = {p.name for p in (caroot / "old").iterdir()}
        assert len(backups) == 4 * (round_ + 1), backups
        assert final not in backups
        assert backups | {final} >= seen
        ok(run_devcert("ca", "info", "--json", env=env))
        check_state(caroot, env, outputs, hosts)
        # And a sync after the storm finds the project's certificate good.
        res = ok(run_devcert("sync", "--no-gitignore", env=env, cwd=project))
        assert "up to date" in res.stdout, res.stdout
