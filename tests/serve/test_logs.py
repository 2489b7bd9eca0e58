"""serve-wss's log as its user reads it: one line per problem, no traceback, repeats summarised."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from devcert.serve.logs import Summarized
from tests.helpers import UNIT, CLIServer, make_server, tls_exchange, wait_for


def test_malformed_requests_and_broken_handshakes_are_summarised(cli_env: dict, caroot: Path) -> None:
    with CLIServer([], cli_env) as server:
        port = server.port
        ca_file = caroot / "rootCA.pem"
        for i in range(60):
            reply = tls_exchange(port, ca_file, b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n")
            assert reply.split(b" ", 2)[1] == b"400", reply[:200]
        for i in range(30):  # plain HTTP on the TLS port, and clients that give up mid-handshake
            with socket.create_connection(("127.0.0.1", port), timeout=10 * UNIT) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" if i % 2 else b"\x16\x03\x01\x00\x05hello")
                try:
                    raw.recv(100)
                except OSError:
                    pass
        # the server still answers
        ctx = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", port), timeout=10 * UNIT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert tls.recv(100).startswith(b"HTTP/1.1 200")
    problems = [line for line in server.stderr.splitlines() if line.startswith("devcert: ")]
    assert "Traceback" not in server.stderr, server.stderr
    assert len(problems) <= 8, server.stderr
    # the first bad request is reported as itself, the rest as a count
    assert any("Bad Header" in line or "Invalid header" in line or "400" in line for line in problems), problems
    assert any("59 more times" in line for line in problems), problems


def test_summarized_counts_repeats_of_one_kind() -> None:
    lines: list[tuple[str, str]] = []
    say = Summarized(lambda level, message: lines.append((level, message)), window=60)
    for i in range(5):
        say("warning", f"closed a connection from 10.0.0.{i}: no complete request within 10 s (408)")
    say("warning", "upstream ws://127.0.0.1:5173 is not reachable for GET /")
    say("info", "shutting down")
    say.flush()
    assert lines == [
        ("warning", "closed a connection from 10.0.0.0: no complete request within 10 s (408)"),
        ("warning", "upstream ws://127.0.0.1:5173 is not reachable for GET /"),
        ("info", "shutting down"),
        ("warning", "the same happened 4 more times in 60 s; the last: closed a connection from 10.0.0.4: "
                    "no complete request within 10 s (408)"),
    ]


def test_connections_past_the_limit_are_dropped_and_logged_once(caroot: Path) -> None:
    lines: list[tuple[str, str]] = []
    server, ca_file = make_server(caroot, max_connections=3, log=lambda level, message: lines.append((level, message)))
    ctx = ssl.create_default_context(cafile=str(ca_file))

    def open_tls() -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20 * UNIT)
        return ctx.wrap_socket(raw, server_hostname="localhost")

    def answers(tls: ssl.SSLSocket) -> bool:
        try:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return tls.recv(12).startswith(b"HTTP/1.1 200")
        except (OSError, ssl.SSLError):
            return False

    with server.run_in_thread():
        held = [open_tls() for _ in range(3)]
        assert all(answers(tls) for tls in held)
        extra = [open_tls() for _ in range(5)]
        assert not any(answers(tls) for tls in extra)
        held.pop().close()

        def accepted_again() -> ssl.SSLSocket | None:
            again = open_tls()
            if answers(again):
                return again
            again.close()
            return None

        # once the server notices the close
        again = wait_for(accepted_again, what="a connection accepted after one closed", timeout=10 * UNIT)
        for tls in held + extra + [again]:
            tls.close()
    dropped = [message for _, message in lines if message.startswith("dropped a connection")]
    assert dropped and dropped[0] == "dropped a connection from 127.0.0.1: 3 connections are open already"
    assert len(dropped) <= 2, lines  # the first, then one summary for the rest
