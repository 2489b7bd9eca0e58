"""The proxy is transparent: what a real upstream receives, byte for byte in its request head,
and what the client receives back, for plain HTTP and for the WebSocket handshake; and the
proxy's loops: a target that is the server itself is refused at start, and a request that
comes back through the server is answered 508 at once while the server's memory stays bounded."""

from __future__ import annotations

import base64
import gzip
import hashlib
import socket
import ssl
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import devcert_exe, free_port, one_error_line, run_devcert

from devcert import serve
from devcert.errors import ServeOptionError
from devcert.serve import WSSServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def make_server(names=serve.DEFAULT_NAMES, **kwargs) -> tuple[WSSServer, Path]:
    ca, ensured = serve.ensure_certificate(names)
    server = WSSServer(serve.server_context(ensured.cert_path, ensured.key_path), port=0, **kwargs)
    return server, ca.cert_path


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def head_lines(head: bytes) -> list[tuple[str, str]]:
    """The header lines of a request or response head, as (name, value), in order."""
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines)]


class RawUpstream:
    """A plain-TCP upstream on 127.0.0.1 that records each request head as it arrived and
    answers with ``answer(head)`` (bytes), then closes the connection."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(10)
                try:
                    head = read_head(conn)
                    self.heads.append(head)
                    conn.sendall(self.answer(head))
                    if b" 101 " in self.answer(head).split(b"\r\n", 1)[0]:
                        conn.recv(65536)  # hold the WebSocket until the proxy closes it
                except OSError:
                    pass

    def __enter__(self) -> "RawUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


def tls_exchange(port: int, ca_file: Path, data: bytes, server_name: str = "localhost") -> bytes:
    """Send ``data`` verbatim over TLS and read until the server closes or 10 s pass."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(data)
            chunks, deadline = [], time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    chunk = tls.recv(65536)
                except (TimeoutError, ssl.SSLError, ConnectionError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if complete(b"".join(chunks)):
                    break
            return b"".join(chunks)


def complete(reply: bytes) -> bool:
    """Whether ``reply`` holds a whole response: a 101's head, or a head and its Content-Length."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    if b" 101 " in head.split(b"\r\n", 1)[0]:
        return True
    length = [v for n, v in head_lines(head) if n.lower() == "content-length"]
    return bool(length) and len(body) >= int(length[0])


GZIPPED = gzip.compress(b"hello from upstream " * 50, mtime=0)


def http_answer(head: bytes) -> bytes:
    # no Server, no Content-Type, two Set-Cookie lines, a header the Connection line names
    return (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nSet-Cookie: a=1\r\nX-Up: first\r\n"
            b"Set-Cookie: b=2\r\nConnection: close, X-Up-Hop\r\nX-Up-Hop: secret\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\n"
            b"Content-Length: " + str(len(GZIPPED)).encode() + b"\r\n\r\n" + GZIPPED)


def test_http_request_and_response_pass_through_unchanged(caroot: Path) -> None:
    with RawUpstream(http_answer) as up:
        server, ca_file = make_server(proxy=f"ws://127.0.0.1:{up.port}")
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
        server, ca_file = make_server(proxy=f"ws://127.0.0.1:{up.port}")
        with server.run_in_thread():
            request = (b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                       b"Connection: close\r\n\r\nhello")
            reply = tls_exchange(server.port, ca_file, request)
    assert reply.startswith(b"HTTP/1.1 204"), reply
    got = head_lines(up.heads[0])
    assert ("Content-Length", "5") in got and "transfer-encoding" not in [n.lower() for n, _ in got]
    assert "content-type" not in [n.lower() for n, _ in got]


def ws_answer(head: bytes) -> bytes:
    key = dict((n.lower(), v) for n, v in head_lines(head))["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSet-Cookie: s=1\r\nX-Upstream: yes\r\n"
            f"Set-Cookie: t=2\r\n\r\n").encode()


def test_websocket_handshake_passes_through(caroot: Path) -> None:
    with RawUpstream(ws_answer) as up:
        server, ca_file = make_server(proxy=f"ws://127.0.0.1:{up.port}")
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
    port = free_port()
    for target in (f"ws://127.0.0.1:{port}", f"wss://localhost:{port}"):
        server, _ = make_server(proxy=target)
        server.port = port
        with pytest.raises(ServeOptionError) as err:
            with server.run_in_thread():
                pass
        assert "own address" in str(err.value) and err.value.exit_code == 2
    # the port is free again: the refused server closed its socket
    with socket.create_server(("127.0.0.1", port)):
        pass


class Serving:
    """``devcert serve-wss ARGS`` as a subprocess on ``port``, ready once it prints its first line;
    stopped with SIGINT by its PID."""

    def __init__(self, args: list[str], env: dict, port: int, cwd: Path | None = None) -> None:
        self.port = port
        self.proc = subprocess.Popen([devcert_exe(), "serve-wss", "--port", str(port), *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> "Serving":
        """Ready once the announcement (stdout up to its curl line, kept in ``out``) is printed."""
        lines: list[str] = []
        while line := self.proc.stdout.readline():
            lines.append(line)
            if line.startswith("  curl "):
                break
        self.out = "".join(lines)
        assert lines and lines[0].startswith("Serving "), \
            (self.out, self.proc.stderr.read() if self.proc.poll() is not None else "")
        return self

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_files(self) -> int:
        return len(list(Path(f"/proc/{self.proc.pid}/fd").iterdir()))

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.stderr = self.proc.stderr.read()


def test_cli_refuses_a_proxy_to_itself(cli_env: dict) -> None:
    port = free_port()
    done = run_devcert("serve-wss", "--port", str(port), "--proxy", f"wss://localhost:{port}", env=cli_env)
    assert done.returncode == 2, done
    line = one_error_line(done.stderr)
    assert f"--proxy wss://localhost:{port} is this server's own address" in line, line


def test_a_loop_between_two_servers_gets_508_and_memory_stays_bounded(cli_env: dict, caroot: Path) -> None:
    """Two servers relaying to each other over wss:// (a wss:// upstream is trusted through the
    local CA, as another devcert server is): no start-up check can see this loop, so
    a request goes round once and comes back as 508 Loop Detected. 200 of them leave both
    servers' memory and open files bounded, and their logs summarise, with no traceback."""
    first, second = free_port(), free_port()
    env = cli_env
    with Serving(["--proxy", f"wss://localhost:{second}"], env, first) as a:
        with Serving(["--proxy", f"wss://localhost:{first}"], env, second) as b:
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
                t.join(120)
            assert results == [b"HTTP/1.1 508 Loop Det"] * 200, set(results)
            for server, (rss, fds) in base.items():
                # the loop took one server to 2.8 GB and 7,425 files with six requests
                assert server.rss_kib() < rss + 64 * 1024, (server.rss_kib(), rss)
                assert server.open_files() < fds + 100, (server.open_files(), fds)
    logs = a.stderr + b.stderr
    assert "Traceback" not in logs, logs
    assert len(logs.splitlines()) < 40, logs
    assert "508" in b.stderr or "508" in a.stderr, logs


def test_a_self_loop_the_start_check_cannot_see_gets_508_with_bounded_memory(caroot: Path, monkeypatch) -> None:
    """The proxy pointed at its own port (as through a name only the resolver maps back here,
    which the start-up check cannot know): with the check out of the way, each request goes
    round once and is answered 508; 300 of them leave memory and open files bounded."""
    import devcert.serve.server as server_module

    monkeypatch.setattr(server_module, "is_own_address", lambda *args: False)
    port = free_port()
    server, ca_file = make_server(proxy=f"wss://localhost:{port}")
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
