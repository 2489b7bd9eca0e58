"""``devcert acme`` killed at every commit point of a client's whole run, then restarted.

The server runs under ``strace -e inject=SYSCALL:signal=KILL:when=N`` for each syscall that
commits state (SQLite's fdatasync/fsync of its WAL, the inventory's renames and fsyncs), for
N = 1, 2, ... until a run passes without reaching its N-th call. After each kill the server is
started again, normally, and what a user would rely on is checked: the database is intact,
no valid order lacks its certificate, every certificate is in the inventory (a kill between
issuing and recording is repaired at start-up) and makes a real TLS handshake with the client's
key against a client trusting only the devcert CA, and the same account goes on to obtain a
certificate.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from acme import errors, messages

from tests.acmekit import (AcmeProcess, Http01Responder, ServerExited, ec_key, handshake, leaf_key_pem, make_client,
                           obtain, register)
from tests.helpers import require_tool

from devcert import inventory

pytestmark = pytest.mark.slow

SYSCALLS = ("fdatasync", "fsync", "rename")
MAX_POINTS = 60
KILLED = (-9, 128 + 9)


def _check_after_restart(caroot, responder, tmp_path, key, keys_by_name) -> None:
    server = AcmeProcess(caroot, "--http-port", str(responder.port))
    try:
        db = sqlite3.connect(caroot / "acme" / "state.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM orders WHERE status = 'valid' AND "
                          "cert NOT IN (SELECT id FROM certs)").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM certs WHERE recorded = 0").fetchone()[0] == 0
        entries, _ = inventory.read(caroot)
        recorded = {e["serial"] for e in entries if e.get("source") == "acme"}
        for serial, chain, order_id in db.execute("SELECT serial, chain, order_id FROM certs"):
            assert serial in recorded
            name = json.loads(db.execute("SELECT identifiers FROM orders WHERE id = ?",
                                         (order_id,)).fetchone()[0])[0]["value"]
            handshake(chain.encode(), keys_by_name[name], server.ca_file, name, tmp_path)
        db.close()
        # the same account key goes on: the account exists, or is made again if its creation was lost
        acme = make_client(server.directory, server.ca_file, key=key)
        try:
            register(acme)
        except errors.ConflictError as existing:  # the account made before the kill
            acme.net.account = messages.RegistrationResource(uri=existing.location, body=messages.Registration())
        order, key_pem = obtain(acme, responder, ["after.localhost"])
        handshake(order.fullchain_pem.encode(), key_pem, server.ca_file, "after.localhost", tmp_path)
    finally:
        server.stop()


@pytest.mark.parametrize("syscall", SYSCALLS)
def test_killed_at_every_commit_point(caroot, tmp_path, syscall):
    strace = require_tool("strace", "the kill tests")
    responder = Http01Responder()
    try:
        # the CA, the server's own certificate and the database exist before the first kill
        AcmeProcess(caroot, "--http-port", str(responder.port)).stop()
        (caroot / "acme" / "state.sqlite3").unlink()
        for n in range(1, MAX_POINTS + 1):
            for stale in (caroot / "acme").glob("state.sqlite3*"):
                stale.unlink()
            key = ec_key()
            keys_by_name = {"crash.localhost": leaf_key_pem()}
            prefix = (strace, "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
                      "-e", f"inject={syscall}:signal=KILL:when={n}")
            finished = False
            try:
                server = AcmeProcess(caroot, "--http-port", str(responder.port), prefix=prefix)
            except ServerExited as exited:
                assert exited.code in KILLED, exited.stderr
            else:
                try:
                    acme = make_client(server.directory, server.ca_file, key=key)
                    register(acme)
                    for name, key_pem in keys_by_name.items():
                        obtain(acme, responder, [name], key_pem=key_pem)
                    finished = server.proc.poll() is None
                except Exception:  # the server died under the client: that is the point
                    pass
                server.stop()
                if not finished:
                    assert server.proc.returncode in KILLED, server.stderr
            _check_after_restart(caroot, responder, tmp_path, key, keys_by_name)
            if finished:
                print(f"{syscall}: {n - 1} kill points")
                assert n > 1, f"no {syscall} was reached: the kill loop tested nothing"
                return
        pytest.fail(f"more than {MAX_POINTS} {syscall} calls in one run")
    finally:
        responder.close()
