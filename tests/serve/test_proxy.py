"""The proxy is transparent: what a real upstream receives, byte for byte in its request head,
and what the client receives back, for plain HTTP and for the WebSocket handshake; and the
proxy's loops: a target that is the server itself is refused at start, and a request that
comes back through the server is answered 508 at once while the server's memory stays bounded."""

from __future__ import annotations

import base64
import gzip
import hashlib
import socket
import threading
from pathlib import Path

import pytest

import devcert.serve.server as server_module
from devcert.errors import ServeOptionError
from tests.helpers import (UNIT, WS_GUID, CLIServer, RawUpstream, head_lines, make_server, on_a_candidate_port,
                           one_error_line, run_devcert, tls_exchange, ws_answer)


GZIPPED = gzip.compress(b"hello from upstream " * 50, mtime=0)


def http_answer(head: bytes) -> bytes:
    # no Server, no Content-Type, two Set-Cookie lines, a header the Connection line names
    return (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nSet-Cookie: a=1\r\nX-Up: first\r\n"
            b"Set-Cookie: b=2\r\nConnection: close, X-Up-Hop\r\nX-Up-Hop: secret\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\n"
            b"Content-Length: " + str(len(GZIPPED)).encode() + b"\r\n\r\n" + GZIPPED)


def test_http_request_and_response_pass_through_unchanged(caroot: Path) -> None:
    with RawUpstream(http_answer) as up:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{up.port}")
        with server.run_in_thread():
            request = (f"GET /path?q=1 HTTP/1.1\r\nHost: localhost:{server.port}\r\nCookie: one=1\r\n"
                       "X-Custom: yes\r\nCookie: two=2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: drop me\r\n"
                       "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n"
                       "X-Forwarded-For: 10.1.2.3\r\n\r\n").encode()
            reply = tls_exchange(server.port, ca_file, request)
    assert len(up.heads) == 1
    assert up.heads[0].startswith(b"GET /path?q=1 HTTP/1.1\r\n"), up.heads[0]
    got = head_lines(up.heads[0])
    names = [name.lower() for name, _ in got]
    # what the client sent, in order, repeated Cookie lines kept apart
    sent = [(n, v) for n, v in got if n.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                                                         "forwarded")]
    assert sent == [("Host", f"localhost:{server.port}"), ("Cookie", "one=1"), ("X-Custom", "yes"),
                    ("Cookie", "two=2")], got
    # nothing the client did not send: no Accept, Accept-Encoding, User-Agent; no hop-by-hop
    for absent in ("accept", "accept-encoding", "user-agent", "x-hop", "keep-alive", "te", "proxy-connection",
                   "content-length", "transfer-encoding", "content-type"):
        assert absent not in names, (absent, got)
    # the forwarding headers: the client's X-Forwarded-For extended, this hop's view added
    values = dict(got)
    assert values["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1"
    assert values["X-Forwarded-Proto"] == "https" and values["X-Forwarded-Host"] == f"localhost:{server.port}"
    assert values["Forwarded"].startswith(f'for=127.0.0.1;host="localhost:{server.port}";proto=https;by=_devcert-')

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), reply[:300]
    back = head_lines(head)
    back_names = [name.lower() for name, _ in back]
    assert body == GZIPPED  # not decompressed, not recompressed
    assert gzip.decompress(body) == b"hello from upstream " * 50
    assert [v for n, v in back if n.lower() == "set-cookie"] == ["a=1", "b=2"]
    assert ("Content-Encoding", "gzip") in back and ("X-Up", "first") in back
    assert ("Date", "Tue, 01 Dec 2026 00:00:00 GMT") in back
    for absent in ("x-up-hop", "server", "content-type", "transfer-encoding"):
        assert absent not in back_names, (absent, back)


def test_request_body_streams_with_its_length(caroot: Path) -> None:
    def answer(head: bytes) -> bytes:
        return b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"

    with RawUpstream(answer) as up:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{up.port}")
        with server.run_in_thread():
            request = (b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                       b"Connection: close\r\n\r\nhello")
            reply = tls_exchange(server.port, ca_file, request)
    assert reply.startswith(b"HTTP/1.1 204"), reply
    got = head_lines(up.heads[0])
    assert ("Content-Length", "5") in got and "transfer-encoding" not in [n.lower() for n, _ in got]
    assert "content-type" not in [n.lower() for n, _ in got]


def test_websocket_handshake_passes_through(caroot: Path) -> None:
    with RawUpstream(ws_answer) as up:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{up.port}")
        with server.run_in_thread():
            key = base64.b64encode(b"0123456789abcdef").decode()
            request = (f"GET /socket?x=1 HTTP/1.1\r\nHost: localhost:{server.port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade, X-Hop\r\nX-Hop: drop\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Sec-WebSocket-Version: 13\r\nOrigin: https://localhost:{server.port}\r\nCookie: c=1\r\n"
                       f"X-Custom: yes\r\nCookie: d=2\r\n\r\n").encode()
            reply = tls_exchange(server.port, ca_file, request)
    assert up.heads and up.heads[0].startswith(b"GET /socket?x=1 HTTP/1.1\r\n"), up.heads
    got = head_lines(up.heads[0])
    names = [n.lower() for n, _ in got]
    assert [v for n, v in got if n.lower() == "cookie"] == ["c=1", "d=2"]
    assert ("X-Custom", "yes") in got and ("Host", f"localhost:{server.port}") in got
    assert ("Origin", f"https://localhost:{server.port}") in got
    for absent in ("x-hop", "accept", "accept-encoding", "user-agent"):
        assert absent not in names, (absent, got)
    assert "forwarded" in names and "x-forwarded-for" in names

    head = reply.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 101"), reply[:300]
    back = head_lines(head)
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert ("Sec-WebSocket-Accept", expected) in back
    assert [v for n, v in back if n.lower() == "set-cookie"] == ["s=1", "t=2"]
    assert ("X-Upstream", "yes") in back
    assert "server" not in [n.lower() for n, _ in back]


# --- loops -----------------------------------------------------------------------------------


def test_proxy_to_its_own_address_is_refused_at_start(caroot: Path) -> None:
    def refused(port: int) -> None:
        # the target names the server's own port, so the port is chosen before the server binds it
        for target in (f"ws://127.0.0.1:{port}", f"wss://localhost:{port}"):
            server, _ = make_server(caroot, proxy=target)
            server.port = port
            with pytest.raises(ServeOptionError) as err:
                with server.run_in_thread():
                    pass
            assert "own address" in str(err.value) and err.value.exit_code == 2
        # the port is free again: the refused server closed its socket
        with socket.create_server(("127.0.0.1", port)):
            pass

    on_a_candidate_port(refused)


def test_cli_refuses_a_proxy_to_itself(cli_env: dict) -> None:
    def refused(port: int) -> None:
        # --proxy names the server's own port, so the port is chosen before the server binds it
        done = run_devcert("serve-wss", "--port", str(port), "--proxy", f"wss://localhost:{port}", env=cli_env)
        assert done.returncode == 2, done  # quoting "is already in use" when another process took the port
        line = one_error_line(done.stderr)
        assert f"--proxy wss://localhost:{port} is this server's own address" in line, line

    on_a_candidate_port(refused)


def test_a_loop_between_two_servers_gets_508_and_memory_stays_bounded(cli_env: dict, caroot: Path) -> None:
    """Two servers relaying to each other over wss:// (a wss:// upstream is trusted through the
    local CA, as another devcert server is): no start-up check can see this loop, so
    a request goes round once and comes back as 508 Loop Detected. 200 of them leave both
    servers' memory and open files bounded, and their logs summarise, with no traceback."""
    # each server's --proxy names the other's port, so the second's port is chosen before
    # either starts (the first binds port 0 and reports its own)
    def relaying(second: int) -> tuple[CLIServer, CLIServer]:
        with CLIServer(["--proxy", f"wss://localhost:{second}"], cli_env) as a:
            with CLIServer(["--proxy", f"wss://localhost:{a.port}"], cli_env, port=second) as b:
                first = a.port
                ca_file = caroot / "rootCA.pem"
                request = b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                reply = tls_exchange(first, ca_file, request)
                assert reply.startswith(b"HTTP/1.1 508 Loop Detected"), reply[:300]
                assert b"loop detected" in reply
                base = {s: (s.rss_kib(), s.open_files()) for s in (a, b)}

                def hammer(count: int) -> list[bytes]:
                    return [tls_exchange(first, ca_file, request)[:21] for _ in range(count)]

                results: list[bytes] = []
                threads = [threading.Thread(target=lambda: results.extend(hammer(50))) for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(120 * UNIT)
                assert results == [b"HTTP/1.1 508 Loop Det"] * 200, set(results)
                for server, (rss, fds) in base.items():
                    # the loop took one server to 2.8 GB and 7,425 files with six requests
                    assert server.rss_kib() < rss + 64 * 1024, (server.rss_kib(), rss)
                    assert server.open_files() < fds + 100, (server.open_files(), fds)
        return a, b

    a, b = on_a_candidate_port(relaying)
    logs = a.stderr + b.stderr
    assert "Traceback" not in logs, logs
    assert len(logs.splitlines()) < 40, logs
    assert "508" in b.stderr or "508" in a.stderr, logs


def test_a_self_loop_the_start_check_cannot_see_gets_508_with_bounded_memory(caroot: Path, monkeypatch) -> None:
    """The proxy pointed at its own port (as through a name only the resolver maps back here,
    which the start-up check cannot know): with the check out of the way, each request goes
    round once and is answered 508; 300 of them leave memory and open files bounded."""
    monkeypatch.setattr(server_module, "is_own_address", lambda *args: False)
    on_a_candidate_port(lambda port: loop_through_itself(caroot, port))


def loop_through_itself(caroot: Path, port: int) -> None:
    # the target names the server's own port, so the port is chosen before the server binds it
    server, ca_file = make_server(caroot, proxy=f"wss://localhost:{port}")
    server.port = port
    request = b"GET /again HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    status = Path("/proc/self/status")

    def rss_kib() -> int:
        return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS:"))

    with server.run_in_thread():
        first = tls_exchange(port, ca_file, request)
        assert first.startswith(b"HTTP/1.1 508 Loop Detected"), first[:300]
        rss, fds = rss_kib(), len(list(Path("/proc/self/fd").iterdir()))
        for _ in range(300):
            assert tls_exchange(port, ca_file, request).startswith(b"HTTP/1.1 508"), "not 508"
        # the loop: 2.8 GB and 7,425 open files after six requests
        assert rss_kib() < rss + 64 * 1024, (rss_kib(), rss)
        assert len(list(Path("/proc/self/fd").iterdir())) < fds + 100
