"""What the tests share: the CLI as a user runs it, one timeout unit, ``wait_for``, one TLS
server and round trip (TLSServer, tls_roundtrip), servers on port 0 that report the port they
got (and, for servers that cannot, started_on_a_free_port and on_a_candidate_port), serve-wss
as a library and as a command (make_server, CLIServer), raw exchanges with it and upstreams
behind it (tls_exchange, RawUpstream, ws_upstream, http_upstream), a real Vite and Chromium's
trust store (ViteServer, private_nssdb), the trust sandbox's scenarios, and data several files use.

Imported as ``from tests.helpers import ...`` (``tests`` is a package, so this works the same
under pytest's default import mode, with pytest-xdist, and from any sub-folder a test file is
moved into). conftest.py holds only fixtures and hooks.

Timeouts: every bound in the suite is a multiple of :data:`UNIT`, one second on an ordinary
machine. ``DEVCERT_TEST_TIMEOUT=3`` makes every bound three times longer on a slow CI runner;
nothing else changes (no test asserts a duration).
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from cryptography import x509
from websockets.sync.server import serve as ws_serve
from cryptography.hazmat.primitives import serialization

from devcert import serve
from devcert.errors import PortInUseError
from devcert.serve import WSSServer
from devcert.trust.linux import Family
from tests import sandbox

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent

#: The one timeout unit (seconds), scaled by DEVCERT_TEST_TIMEOUT (a factor, default 1).
UNIT = float(os.environ.get("DEVCERT_TEST_TIMEOUT", "1"))

#: Variables this machine exports that change which CAs a client trusts. A test of trust
#: sets or clears them explicitly (docs/ARCHITECTURE.md, "Tests").
TRUST_ENV_VARS = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "NIX_SSL_CERT_FILE", "PIP_CERT",
    "AWS_CA_BUNDLE", "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "DENO_CERT",
    "NODE_USE_SYSTEM_CA", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "DEVCERT_TRUST_STORES",
    "CARGO_HTTP_CAINFO", "BUNDLE_SSL_CA_CERT", "HEX_CACERTS_PATH",
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Where scripts/test puts the npm tools (wscat, vite, bun, deno) and packages (ws).
NODE_MODULES = ROOT / ".cache" / "node" / "node_modules"
NODE_BIN = NODE_MODULES / ".bin"
#: Node 22 (npm package node@22), apart from the system Node that stays first on PATH.
NODE22_BIN = ROOT / ".cache" / "node22" / "node_modules" / ".bin"
#: The stack matrix's client programs (Node, Bun, Deno, Go, Java).
STACKS_DIR = ROOT / "tests" / "stacks"


# -- tools, environment, the CLI -------------------------------------------------------------


def require_tool(name: str, why: str = "") -> str:
    """The path of tool ``name``; a missing tool skips the test, or fails it under CI=true.

    scripts/test installs every tool the suite needs, so under CI a missing one is a broken
    set-up, and a skipped trust test would prove nothing.
    """
    path = shutil.which(name)
    if path:
        return path
    missing(f"{name} is not installed{': ' + why if why else ''} (scripts/test installs it)")


def missing(message: str) -> NoReturn:
    """Skip for something scripts/test would have installed; under CI=true that fails instead."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_sandbox() -> None:
    """Skip (or fail under CI) when the private trust-store namespace cannot be made here."""
    reason = sandbox.unavailable_reason()
    if reason:
        missing(reason)


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the trust-overriding variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in TRUST_ENV_VARS}
    env.update(extra)
    return env


def devcert_exe() -> str:
    """The installed ``devcert`` console script of the interpreter running the tests."""
    exe = Path(sys.executable).with_name("devcert")
    return str(exe) if exe.exists() else "devcert"


def file_mode(path: Path) -> int:
    """Permission bits of ``path``, as ``ls -l`` shows them (0o600, 0o644, ...)."""
    return stat.S_IMODE(path.stat().st_mode)


def one_error_line(stderr: str) -> str:
    """The single ``devcert: error: ...`` line; no traceback, nothing else but warnings/notes."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("devcert: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def run_devcert(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                input: str | None = None, timeout: float = 120 * UNIT) -> subprocess.CompletedProcess[str]:
    """Run the real ``devcert`` executable as a user would."""
    return subprocess.run([devcert_exe(), *args], env=env, cwd=cwd, input=input, capture_output=True,
                          text=True, timeout=timeout)


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# -- waiting -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], T], *, what: str, timeout: float = 30 * UNIT,
             interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate`` until it returns something true, and return that.

    Bounded in time (``timeout``, a multiple of UNIT), so it is bounded in count too. An
    exception of a type in ``ignore`` counts as "not yet"; any other one ends the wait (a
    predicate raises AssertionError to say waiting is pointless, e.g. its process exited).
    On timeout it fails saying what it waited for, and the last ignored error.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as err:
            last = err
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            why = f" (last: {type(last).__name__}: {last})" if last is not None else ""
            raise AssertionError(f"waited {timeout:g} s for {what}, in vain{why}")
        time.sleep(interval)


def accepts(host: str, port: int) -> bool:
    """Something accepts TCP connections on host:port (for wait_for; refusals raise OSError)."""
    with socket.create_connection((host, port), timeout=UNIT):
        return True


# -- one TLS server, one round trip ------------------------------------------------------------

#: What TLSServer answers: an HTTP response every client (curl, s_client, browsers, ...) reads.
HELLO = b"hello"


def http_answer(body: bytes, content_type: str = "text/plain") -> bytes:
    return (b"HTTP/1.0 200 OK\r\nContent-Type: " + content_type.encode() + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


class TLSServer:
    """A TLS server on ``host`` port 0 (the OS picks it, so no other process can race for it).

    Each connection gets its own thread: the handshake, then the request head (or the client's
    close) read within ``timeout``, the answer (an HTTP response with ``body``), a clean
    close_notify (gnutls-cli calls a bare close "abnormal"). It records the client certificate
    of each handshake, the path of each request and each server-side error (a client refusing
    the certificate, a server refusing the client's). Leaving the block wakes connections still
    open and joins every thread, bounded by ``timeout``.
    """

    def __init__(self, ctx: ssl.SSLContext, host: str = "127.0.0.1", *, body: bytes = HELLO,
                 content_type: str = "text/plain", timeout: float = 15 * UNIT):
        self.ctx = ctx
        self.host = host
        self.answer = http_answer(body, content_type)
        self.timeout = timeout
        self.sock = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                         backlog=64)
        self.port: int = self.sock.getsockname()[1]
        self.peer_certs: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.errors: list[BaseException] = []
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the listener was shut down: leaving the block
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            with self._lock:
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert()
                if peer:
                    self.peer_certs.append(peer)
                head = read_head(tls, limit=65536)
                if head:
                    parts = head.split(b"\r\n", 1)[0].split()
                    self.requests.append(parts[1].decode("latin-1") if len(parts) > 1 else "")
                tls.sendall(self.answer)
                try:
                    tls.unwrap()
                except (OSError, ssl.SSLError):
                    pass  # the client closed first: its answer was read already
        except (OSError, ssl.SSLError) as err:
            self.errors.append(err)
        finally:
            conn.close()
            with self._lock:
                self._open.discard(conn)

    def __enter__(self) -> TLSServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() (Linux)
        except OSError:
            pass
        self.sock.close()
        self._accepting.join(self.timeout)
        with self._lock:
            for conn in self._open:  # a client that connected and never spoke (a browser's spare)
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._threads)
        for thread in threads:
            thread.join(self.timeout)
        assert not any(t.is_alive() for t in threads), "a TLS server thread did not end"


def request_for(name: str) -> bytes:
    return f"GET / HTTP/1.0\r\nHost: {name}\r\n\r\n".encode()


def ssl_client(ctx: ssl.SSLContext, server_hostname: str, host: str = "127.0.0.1") -> Callable[[int], bytes]:
    """A Python ``ssl`` client for TLSServer: connects, sends a request, returns the answer's body."""
    def client(port: int) -> bytes:
        with socket.create_connection((host, port), timeout=15 * UNIT) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(request_for(server_hostname))
                answer = b""
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
        head, sep, body = answer.partition(b"\r\n\r\n")
        if not (sep and head.startswith(b"HTTP/1.0 200 ")):
            raise ConnectionError(f"the server closed the connection without its answer (read {answer[:100]!r})")
        return body
    return client


@dataclass
class RoundTrip:
    seen: Any  # what the client returned: the body it read, or a command's CompletedProcess
    server: TLSServer

    @property
    def peer_cert(self) -> dict[str, Any] | None:
        return self.server.peer_certs[0] if self.server.peer_certs else None

    @property
    def error(self) -> BaseException | None:
        return self.server.errors[0] if self.server.errors else None


def tls_roundtrip(server_ctx: ssl.SSLContext, client: Callable[[int], Any] | Sequence[str], *,
                  host: str = "127.0.0.1", env: dict[str, str] | None = None, input: str | None = None,
                  timeout: float = 30 * UNIT, body: bytes = HELLO) -> RoundTrip:
    """Serve ``server_ctx`` on ``host`` port 0 and run ``client`` against it.

    ``client`` is a callable given the port (its exception, e.g. a refused certificate, comes
    out of here once the server's side has ended), or a real client command whose arguments
    may hold ``{port}`` and ``{host}``; it runs with ``env`` and ``input``, bounded by
    ``timeout``, and its CompletedProcess is what the client saw.
    """
    with TLSServer(server_ctx, host, body=body) as server:
        if callable(client):
            seen = client(server.port)
        else:
            argv = [arg.format(port=server.port, host=host) for arg in client]
            seen = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                                  input=input, stdin=None if input is not None else subprocess.DEVNULL)
    return RoundTrip(seen, server)


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_hostname: str,
              host: str = "127.0.0.1") -> tuple[bytes, RoundTrip]:
    """A Python client with ``client_ctx`` against a server with ``server_ctx``: the body it read."""
    trip = tls_roundtrip(server_ctx, ssl_client(client_ctx, server_hostname, host), host=host)
    return trip.seen, trip


def serves(cert: Path, key: Path, ca_file: Path, name: str = "localhost") -> None:
    """Files a user made serve: a server on 127.0.0.1 presenting ``cert``/``key`` (loading them
    refuses a key that is not the certificate's) answers a strict client trusting only
    ``ca_file`` and verifying ``name``. A refusal raises (ssl.SSLError, OSError)."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    data, _ = handshake(client_ctx, server_ctx, name)
    assert data == HELLO, data


# -- processes that serve ------------------------------------------------------------------------


def stop(proc: subprocess.Popen[Any], *, sig: int = signal.SIGTERM) -> None:
    """End a process this test started, by its PID: ``sig``, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10 * UNIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10 * UNIT)


def wait_listening(proc: subprocess.Popen[Any], port: int, host: str = "127.0.0.1", *,
                   timeout: float = 30 * UNIT, what: str = "the server") -> None:
    """Wait until ``proc`` accepts connections on host:port; fail at once if it exits."""
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening on {host}:{port}")
        return accepts(host, port)

    wait_for(up, what=f"{what} to listen on {host}:{port}", timeout=timeout, ignore=(OSError,))


def first_line(proc: subprocess.Popen[str], *, what: str, timeout: float = 30 * UNIT) -> str:
    """The first line ``proc`` prints on stdout (a server saying the port it got once it
    listens), read within ``timeout``; fails with its stderr if it exits first."""
    assert proc.stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)  # readline() has no timeout of its own
    if not got or not got[0].strip():
        stop(proc)
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise AssertionError(f"no line with {what} within {timeout:g} s (exit status {proc.returncode}):\n{err}")
    return got[0].strip()


def candidate_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago. Only for servers that cannot bind port 0 and report
    the port they got (see started_on_a_free_port, which retries when another process took it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


#: How a server says the port it was given is taken (Python, Node, nginx, Go/Caddy, Vite).
IN_USE = ("address already in use", "eaddrinuse", "is already in use", "errno 98")


@contextmanager
def started_on_a_free_port(start: Callable[[int], subprocess.Popen[Any]], *, host: str = "127.0.0.1",
                           output: Callable[[subprocess.Popen[Any]], str] | None = None,
                           attempts: int = 5, what: str = "the server") -> Iterator[tuple[subprocess.Popen[Any], int]]:
    """Start a server that takes its port from us (a snippet reading $PORT, nginx's listen line,
    a Caddyfile, Vite's --strictPort): none of them can report a port the OS picked, so the
    port was free a moment ago and another process may take it first. Then the server exits
    saying the address is in use, and this tries another port (``attempts`` in all). Yields
    (process, port); stops the process by its PID afterwards. ``output(proc)`` reads what an
    exited server said (default: its stderr and stdout pipes)."""
    def said(proc: subprocess.Popen[Any]) -> str:
        if output is not None:
            return output(proc)
        out, err = proc.communicate(timeout=10 * UNIT)
        return f"{err or ''}\n{out or ''}"

    for attempt in range(attempts):
        port = candidate_port(host)
        proc = start(port)
        try:
            wait_listening(proc, port, host, what=what)
        except AssertionError:
            if proc.poll() is None:
                stop(proc)
                raise
            text = said(proc)
            if attempt + 1 < attempts and any(marker in text.lower() for marker in IN_USE):
                continue
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{text}") from None
        try:
            yield proc, port
        finally:
            stop(proc)
            if proc.stdout is not None or proc.stderr is not None:
                proc.communicate(timeout=10 * UNIT)
        return


# -- serve-wss -----------------------------------------------------------------------------------


def make_server(caroot: Path, names: Sequence[str] = serve.DEFAULT_NAMES, **kwargs: Any) -> tuple[WSSServer, Path]:
    """A WSSServer on port 0 with serve-wss's certificate, and the CA file a client trusts."""
    ca, ensured = serve.ensure_certificate(names)
    server = WSSServer(serve.server_context(ensured.cert_path, ensured.key_path), port=0, **kwargs)
    return server, ca.cert_path


@contextmanager
def http_upstream(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A plain-http upstream on 127.0.0.1 port 0 in a thread (for serve-wss's proxy): its port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10 * UNIT)


def ca_context(ca_file: Path) -> ssl.SSLContext:
    """Trusts only the devcert CA (no system store, no SSL_CERT_FILE)."""
    return ssl.create_default_context(cafile=str(ca_file))


def https_get(port: int, ca_file: Path, path: str, host: str = "localhost") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(host, port, context=ca_context(ca_file), timeout=10 * UNIT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def raw_tls(port: int, ca_file: Path, data: bytes, timeout: float = 5 * UNIT, *, server_name: str = "localhost",
            until: Callable[[bytes], bool] | None = None) -> bytes:
    """Send ``data`` verbatim over TLS (no client-side path cleaning) and read the reply for at
    most ``timeout`` seconds, or until ``until(reply so far)`` is true. Connecting and the
    handshake get 20 units whatever ``timeout`` is: a loaded machine may be slow there, and a
    short read limit is what keeps a fuzz loop bounded."""
    with socket.create_connection(("127.0.0.1", port), timeout=20 * UNIT) as sock:
        with ca_context(ca_file).wrap_socket(sock, server_hostname=server_name) as tls:
            tls.settimeout(timeout)
            tls.sendall(data)
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = tls.recv(65536)
                except (TimeoutError, ssl.SSLError, ConnectionError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if until is not None and until(b"".join(chunks)):
                    break
            return b"".join(chunks)


def head_lines(head: bytes) -> list[tuple[str, str]]:
    """The header lines of a request or response head, as (name, value), in order."""
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines)]


def complete(reply: bytes) -> bool:
    """Whether ``reply`` holds a whole response: a 101's head, or a head and its Content-Length."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    if b" 101 " in head.split(b"\r\n", 1)[0]:
        return True
    length = [v for n, v in head_lines(head) if n.lower() == "content-length"]
    return bool(length) and len(body) >= int(length[0])


def tls_exchange(port: int, ca_file: Path, data: bytes, server_name: str = "localhost") -> bytes:
    """Send ``data`` verbatim over TLS and read one whole response (see :func:`complete`), until
    the server closes, or for at most 10 units."""
    return raw_tls(port, ca_file, data, 10 * UNIT, server_name=server_name, until=complete)


def read_head(sock: socket.socket, *, limit: int | None = None) -> bytes:
    """What ``sock`` receives up to the end of a request head (or until it closes, or, with
    ``limit``, until that many bytes came)."""
    data = b""
    while b"\r\n\r\n" not in data and (limit is None or len(data) < limit):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class RawUpstream:
    """A plain-TCP upstream on 127.0.0.1 port 0 that records each request head as it arrived and
    answers with ``answer(head)`` (bytes), then closes the connection (after a 101, once the
    proxy sends something or closes)."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.sock.settimeout(0.2 * UNIT)  # how soon leaving the block is noticed
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(10 * UNIT)
                try:
                    head = read_head(conn)
                    self.heads.append(head)
                    conn.sendall(self.answer(head))
                    if b" 101 " in self.answer(head).split(b"\r\n", 1)[0]:
                        conn.recv(65536)  # hold the WebSocket until the proxy closes it
                except OSError:
                    pass

    def __enter__(self) -> RawUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10 * UNIT)
        self.sock.close()


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_answer(head: bytes) -> bytes:
    """A RawUpstream answer: the WebSocket handshake's 101 for the request ``head``, with two
    Set-Cookie lines and a header of its own."""
    key = dict((n.lower(), v) for n, v in head_lines(head))["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSet-Cookie: s=1\r\nX-Upstream: yes\r\n"
            f"Set-Cookie: t=2\r\n\r\n").encode()


@contextmanager
def ws_upstream(handler: Callable[[Any], None]) -> Iterator[int]:
    """A ws:// upstream (the websockets library, threaded) on 127.0.0.1 port 0 calling
    ``handler(connection)`` for each client: its port."""
    server = ws_serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        thread.join(10 * UNIT)


def on_a_candidate_port(attempt: Callable[[int], T], *, host: str = "127.0.0.1", attempts: int = 5) -> T:
    """``attempt(port)`` for a server that must be told its port before it binds, because what
    the test gives it names that port (a relay target that is the server itself, two servers
    relaying to each other): a port that was free a moment ago. When another process took it
    first (PortInUseError, or an AssertionError quoting a server saying so), again with another."""
    for tried in range(1, attempts + 1):
        port = candidate_port(host)
        try:
            return attempt(port)
        except (PortInUseError, AssertionError) as err:
            taken = isinstance(err, PortInUseError) or any(marker in str(err).lower() for marker in IN_USE)
            if not taken or tried == attempts:
                raise
    raise AssertionError("unreachable")  # the last attempt returned or raised


class CLIServer:
    """``devcert serve-wss --port 0 ARGS`` as a subprocess: ``out`` is stdout up to the printed
    curl command (URLs, notes, commands) and ``port`` the one its first line says it listens on;
    leaving the block sends SIGINT and collects the rest (``rc``, ``stderr``). ``port`` other
    than 0 only where the port must be known before it starts (see on_a_candidate_port)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None = None, port: int = 0) -> None:
        self.proc = subprocess.Popen([devcert_exe(), "serve-wss", "--port", str(port), *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.rc: int | None = None
        self.stderr = ""

    def __enter__(self) -> CLIServer:
        lines: list[str] = []
        reader = threading.Thread(target=self._read_until_curl, args=(lines,), daemon=True)
        reader.start()
        reader.join(30 * UNIT)  # readline() has no timeout of its own
        self.out = "".join(lines)
        if not (lines and lines[-1].startswith("  curl ")):
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"serve-wss printed no curl line within {30 * UNIT:g} s:\n{self.out}\n"
                                 f"{self.proc.stderr.read() if self.proc.stderr else ''}")
        # "(listening on 127.0.0.1:PORT)", "[::1]:PORT", or "...:PORT; routes from FILE)"
        found = re.search(r"listening on .*?:(\d+)[);]", lines[0])
        assert found, self.out
        self.port = int(found[1])
        return self

    def rss_kib(self) -> int:
        """The server process's resident memory (KiB), as /proc says."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_files(self) -> int:
        """How many file descriptors the server process holds."""
        return len(list(Path(f"/proc/{self.proc.pid}/fd").iterdir()))

    def _read_until_curl(self, lines: list[str]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith("  curl "):
                return

    def line(self, start: str) -> str:
        found = [l.strip() for l in self.out.splitlines() if l.strip().startswith(start)]
        assert len(found) == 1, self.out
        return found[0]

    def run_printed(self, start: str, timeout: float = 30 * UNIT, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a printed command line through the shell, as a user pasting it would."""
        return subprocess.run(["sh", "-c", self.line(start)], capture_output=True, text=True, timeout=timeout, **kwargs)

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            self.rc = self.proc.wait(timeout=20 * UNIT)
            self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


# -- a browser's trust store, a real dev server ------------------------------------------------


def private_nssdb(home: Path, ca_file: Path) -> None:
    """An NSS database at ``home``/.pki/nssdb trusting ``ca_file``: headless Chromium's trust store with HOME=``home``."""
    certutil = require_tool("certutil", "NSS database for Chromium")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run([certutil, "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "devcert", "-i", str(ca_file)],
                   check=True, capture_output=True)


#: A Vite plugin (no imports, so the project needs no node_modules) answering devcert:ping on the HMR
#: socket (saying whether the socket came through a proxy), and holding /__devcert_hold open until the page sends devcert:done.
VITE_CONFIG_JS = """\
export default {
  plugins: [{
    name: 'devcert-ping',
    configureServer(server) {
      const held = new Set();
      const release = () => { for (const res of held) res.end(); held.clear(); };
      // how each HMR socket reached Vite: through devcert's proxy it carries X-Forwarded-Proto
      const via = new WeakMap();
      server.ws.on('connection', (socket, req) => via.set(socket, req.headers['x-forwarded-proto'] || 'direct'));
      server.ws.on('devcert:ping', (data, client) =>
        client.send('devcert:pong', { n: data.n, via: via.get(client.socket) || 'unknown' }));
      server.ws.on('devcert:done', release);
      server.middlewares.use('/__devcert_hold', (req, res) => {
        held.add(res);
        res.setHeader('Content-Type', 'image/gif');
        setTimeout(() => { if (held.delete(res)) res.end(); }, 20000);
      });
    },
  }],
};
"""


class ViteServer:
    """``vite`` (the dev server, plain http on 127.0.0.1) in ``project``, stopped by its PID."""

    def __init__(self, project: Path) -> None:
        vite = NODE_BIN / "vite"
        require_tool("node")
        if not vite.exists():
            missing(f"npm vite is not installed in {NODE_BIN} (scripts/test installs it)")
        env = clean_env(PATH=f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        NODE_PATH=str(NODE_BIN.parent), BROWSER="none", CI="true")
        self.log = project.parent / "vite.log"
        # Vite cannot listen on port 0 and report it (--port 0 means its default, 5173), so it
        # gets a port that was free a moment ago with --strictPort; when another process took
        # it in between, Vite exits saying so and we try another.
        for attempt in range(5):
            self.port = candidate_port()
            self._out = self.log.open("wb")
            self.proc = subprocess.Popen(
                [str(vite), "--host", "127.0.0.1", "--port", str(self.port), "--strictPort", "--clearScreen", "false"],
                cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                wait_listening(self.proc, self.port, timeout=60 * UNIT, what="vite")
                return
            except AssertionError as err:
                exited = self.proc.poll() is not None  # by itself, before stop() ends it
                self.stop()
                said = self.log.read_text(errors="replace")
                if attempt < 4 and exited and f"Port {self.port} is already in use" in said:
                    continue
                pytest.fail(f"{err}:\n{said}")

    def stop(self) -> None:
        stop(self.proc)
        try:  # esbuild, started by this vite, in the session we made for it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._out.close()

    def __enter__(self) -> ViteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()



# -- data and checks more than one test file uses ----------------------------------------------


#: Names every parser must refuse, with words of the reason its message gives (tests/test_names.py, tests/cli/test_main.py).
BAD_NAMES = [
    ("", "empty name"),
    ("   ", "empty name"),
    ("\t", "empty name"),
    ("a b.test", "contains spaces"),
    (" localhost", "contains spaces"),
    ("a..b", "empty label"),
    (".app.test", "empty label"),
    ("app.test.", "ends with a dot"),
    ("a" * 64 + ".test", "at most 63"),
    (".".join(["a" * 63] * 3 + ["b" * 62]), "at most 253"),  # 254 octets
    (".".join(["a" * 63] * 5), "at most 253"),
    ("xn--zz.test", "not a valid IDNA A-label"),
    ("ab--c.test", "reserved for IDNA"),
    ("a\u200d.test", "not a valid internationalized name"),
    ("\u0661\u0662.test", "not a valid internationalized name"),
    ("*", "not a valid wildcard"),
    ("*.test", "whole top-level domain"),
    ("*.localhost", "whole top-level domain"),
    ("a.*.b", "whole left-most label"),
    ("w*.app.test", "whole left-most label"),
    ("*.*.app.test", "whole left-most label"),
    ("localhost:8080", "host:port"),
    ("127.0.0.1:443", "host:port"),
    ("fe80::1%eth0", "IPv6 zone"),
    ("[fe80::1%25eth0]", "IPv6 zone"),
    ("1::2::3", "not a valid IPv6"),
    ("127.1", "neither a valid IP address nor a host name"),
    ("under_score.test", "'_' is not allowed"),
    ("-a.test", "not a valid label"),
    ("a-.test", "not a valid label"),
    ("a.test/x", "not a valid label"),
    ("a@", "not a valid email address"),
    ("@app.test", "not a valid email address"),
    ("a@@app.test", "not a valid mailbox name"),
    ("x@y..test", "not a valid email address"),
    ("x@app.test.", "not a valid email address"),
    ("\u00e9l\u00e8ve@app.test", "not a valid mailbox name"),
    ("http://", "has no host"),
    ("https:///path", "has no host"),
    ("1http://app.test", "not a valid URI scheme"),
    ("https://app.test/<x>", "characters a URI cannot hold"),
    ("https://exa_mple.test/", "invalid host"),
    ("https://[::1", "no closing ']'"),
    ("https://[::1]x/", "only ':PORT'"),
    ("https://app.test:99999/", "only ':PORT'"),
]


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "devcert: error:" not in res.stderr, res.stderr
    return res


def cert_sha256(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def write_project(folder: Path, *certs: dict) -> Path:  # type: ignore[type-arg]
    """A pyproject.toml declaring ``certs`` (JSON strings and booleans are valid TOML values)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = ",\n".join("  { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in c.items()) + " }" for c in certs)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "app"\n\n[tool.devcert]\ncerts = [\n{entries}\n]\n')
    return folder


DEV = {"names": ["localhost", "127.0.0.1"], "cert": "certs/dev.pem", "key": "certs/dev-key.pem"}


def run_in_sandbox(script: str, caroot: Path, tmp_path: Path, timeout: float = 300 * UNIT,
                   **env: str) -> subprocess.CompletedProcess[str]:
    """Run a bash ``script`` inside the trust sandbox with devcert on PATH and a clean trust env.
    The script's bounds come in units too: $WAIT for one client request, $BROWSER_WAIT for a page load."""
    exe_dir = str(Path(devcert_exe()).parent)
    full_env = clean_env(DEVCERT_CAROOT=str(caroot), WAIT=f"{20 * UNIT:g}", BROWSER_WAIT=f"{90 * UNIT:g}", **env)
    full_env["PATH"] = exe_dir + os.pathsep + full_env.get("PATH", "/usr/bin:/bin")
    script_file = tmp_path / f"scenario-{len(list(tmp_path.glob('scenario-*')))}.sh"
    script_file.write_text("set -u\n" + script)
    return sandbox.run(["bash", str(script_file)], env=full_env, timeout=timeout)


def sandbox_marks(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The ``@mark`` lines a sandbox scenario printed."""
    return {line.strip() for line in result.stdout.splitlines() if line.strip().startswith("@")}


def sandbox_scenario(script: str, caroot: Path, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str], str]:
    """run_in_sandbox, then what a test asserts on: the result, its @marks, and both outputs to show on failure."""
    result = run_in_sandbox(script, caroot, tmp_path, **env)
    return result, sandbox_marks(result), f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


#: The page the trust tests' https server sends; a browser that loaded it shows the marker.
PAGE = b"<!doctype html><html><head><title>devcert-ok</title></head><body><p id=m>DEVCERT_PAGE_LOADED</p></body></html>"

CHROMIUM = (
    "chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
    "--disable-sync --no-first-run --virtual-time-budget=5000"
)

#: A Java https client (HttpsURLConnection, the JDK's default trust): prints @java-WHAT-ok/-fail/-status.
CLIENT_JAVA = """
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;
public class Client {
    public static void main(String[] args) throws Exception {
        try {
            HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
            c.setConnectTimeout(%d); c.setReadTimeout(%d);
            System.out.println("@java-" + args[1] + "-" + (c.getResponseCode() == 200 ? "ok" : "status"));
        } catch (javax.net.ssl.SSLException e) {
            System.out.println("@java-" + args[1] + "-fail");
            System.err.println(e);
        }
    }
}
""" % (20_000 * UNIT, 20_000 * UNIT)


def fake_linux_family(tmp_path: Path, update_body: str) -> Family:
    """A Linux trust-store family whose anchors, bundle and update command are all in tmp_path;
    each run of the update command adds a line to tmp_path/update.log."""
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    tool = tmp_path / "fake-update"
    tool.write_text(f"#!/bin/sh\necho ran >> {tmp_path}/update.log\n{update_body}\n")
    tool.chmod(0o755)
    return Family("fake", "Fake", str(anchors), ".crt", (str(tool),), (str(bundle),), "fake-ca-certificates")
