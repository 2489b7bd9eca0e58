"""``devcert serve-wss``: real clients (websockets, wscat, curl-like raw sockets, headless
Chromium) against the server started on an OS-picked port, the proxy against a real upstream,
and the CLI as a subprocess stopped with SIGINT."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devcert import serve
from devcert.cli.serve_wss import FLAGS
from devcert.serve import WSSServer
from devcert.serve.websocket import describe_size_limit
from tests.browser import wait_dom
from tests.helpers import (NODE_BIN, UNIT, VITE_CONFIG_JS, CLIServer, ViteServer, ca_context, clean_env, http_upstream, https_get,
                           make_server, one_error_line, private_nssdb, raw_tls, require_tool, run_devcert,
                           wait_for)


# --- helpers ---------------------------------------------------------------------------------


def ws_connect(url: str, ca_file: Path, **kwargs):
    from websockets.sync.client import connect

    # 30 units to open: a loaded CI machine can be slow to handshake; a real hang still fails
    return connect(url, ssl=ca_context(ca_file), open_timeout=30 * UNIT, close_timeout=5 * UNIT, **kwargs)


def assert_echo(port: int, ca_file: Path, path: str = "/ws") -> None:
    with ws_connect(f"wss://localhost:{port}{path}", ca_file) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10 * UNIT) == "ping"


# --- echo and pages --------------------------------------------------------------------------


def test_websockets_client_echo_text_and_binary(caroot: Path) -> None:
    server, ca_file = make_server(caroot)
    with server.run_in_thread():
        with ws_connect(f"wss://localhost:{server.port}/ws", ca_file) as ws:
            ws.send("héllo")
            assert ws.recv(timeout=10 * UNIT) == "héllo"
            ws.send(b"\x00\x01\xff")
            assert ws.recv(timeout=10 * UNIT) == b"\x00\x01\xff"
        # over IPv4 and the IP name in the certificate too
        with ws_connect(f"wss://127.0.0.1:{server.port}/ws", ca_file) as ws:
            ws.send("ip")
            assert ws.recv(timeout=10 * UNIT) == "ip"


def test_untrusted_without_the_ca(caroot: Path, tmp_path: Path) -> None:
    """A client trusting only another CA refuses the server: trust really comes from the CA."""
    import trustme
    from websockets.sync.client import connect

    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    server, _ = make_server(caroot)
    with server.run_in_thread():
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(f"wss://localhost:{server.port}/ws", ssl=ssl.create_default_context(cafile=str(other)), open_timeout=10 * UNIT)


def test_demo_page_ws_path_and_404(caroot: Path) -> None:
    server, ca_file = make_server(caroot, ws_path="/echo")
    with server.run_in_thread():
        status, body = https_get(server.port, ca_file, "/")
        assert status == 200
        assert b'"/echo"' in body and b"wss://" in body and b"<script" in body
        for marker in (b" src=", b" href=", b"@import", b"url("):  # no external resources
            assert marker not in body, marker
        assert https_get(server.port, ca_file, "/echo")[0] == 426
        assert https_get(server.port, ca_file, "/nope")[0] == 404
        assert_echo(server.port, ca_file, "/echo")


def test_static_dir_never_escapes(caroot: Path, tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "index.html").write_text("<p>index</p>")
    (public / "sub" / "app.js").write_text("console.log(1)")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (public / "link-out").symlink_to(secret)
    (public / "dir-out").symlink_to(tmp_path)
    (public / "link-in").symlink_to(public / "sub" / "app.js")
    server, ca_file = make_server(caroot, directory=public)
    with server.run_in_thread():
        port = server.port
        assert https_get(port, ca_file, "/") == (200, b"<p>index</p>")
        assert https_get(port, ca_file, "/sub/app.js") == (200, b"console.log(1)")
        assert https_get(port, ca_file, "/link-in") == (200, b"console.log(1)")
        for path in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
                     "/sub/%2e%2e/%2e%2e/secret.txt", "/link-out", "/dir-out/secret.txt", f"/{secret}",
                     f"//{secret}", "/..%5csecret.txt", "/%00", "/sub/..%2f..%2fsecret.txt"):
            reply = raw_tls(port, ca_file, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            assert b"TOP-SECRET" not in reply, path
            assert reply.startswith(b"HTTP/1.1 4"), (path, reply[:80])
        assert_echo(port, ca_file)  # the WebSocket endpoint still works in --dir mode


def test_wscat_with_ca(caroot: Path) -> None:
    wscat = NODE_BIN / "wscat"
    if not wscat.exists():
        require_tool("wscat", "npm wscat in .cache/node")
        wscat = Path(require_tool("wscat"))
    require_tool("node")
    server, ca_file = make_server(caroot)
    with server.run_in_thread():
        script = f"sleep {UNIT:g}; echo hello-from-wscat; sleep {1.5 * UNIT:g}"  # connect, send, read the echo
        proc = subprocess.run(
            ["bash", "-c", f"({script}) | {wscat} -c wss://localhost:{server.port}/ws --ca {ca_file}"],
            env=clean_env(), capture_output=True, text=True, timeout=30 * UNIT,
        )
        assert "hello-from-wscat" in proc.stdout, (proc.stdout, proc.stderr)
        assert "error" not in proc.stderr.lower(), proc.stderr
        # without --ca (and no NODE_EXTRA_CA_CERTS) Node refuses the certificate
        bad = subprocess.run(["bash", "-c", f"({script}) | {wscat} -c wss://localhost:{server.port}/ws"],
                             env=clean_env(), capture_output=True, text=True, timeout=30 * UNIT)
        assert "hello-from-wscat" not in bad.stdout.replace("> hello-from-wscat", "")
        assert "certificate" in bad.stderr.lower(), (bad.stdout, bad.stderr)


# --- headless Chromium -----------------------------------------------------------------------


#: What the demo page shows once its wss:// echo came back
ECHOED = 'id="echo">hello over wss://<'


@pytest.mark.slow
def test_chromium_demo_page_echo(caroot: Path, tmp_path: Path) -> None:
    server, ca_file = make_server(caroot)
    home = tmp_path / "home"
    private_nssdb(home, ca_file)
    with server.run_in_thread():
        dom = wait_dom(f"https://localhost:{server.port}/", home, until=lambda d: ECHOED in d)
    assert 'id="state" class="ok">open<' in dom, dom[-2000:]
    assert ECHOED in dom, dom[-2000:]


@pytest.mark.slow
def test_chromium_without_ca_gets_no_page(caroot: Path, tmp_path: Path) -> None:
    """Control for the test above: with an empty NSS database the page never loads."""
    server, _ = make_server(caroot)
    home = tmp_path / "home"
    home.mkdir()
    with server.run_in_thread():
        dom = wait_dom(f"https://localhost:{server.port}/", home, timeout=30 * UNIT,
                       until=lambda d: "ERR_CERT" in d or ECHOED in d)
    assert "ERR_CERT_AUTHORITY_INVALID" in dom, dom[-2000:]
    assert "hello over wss://" not in dom


@pytest.mark.slow
def test_chromium_blocks_plain_ws_for_non_loopback_name(caroot: Path, tmp_path: Path) -> None:
    server, ca_file = make_server(caroot, names=["devcert.test"])
    home = tmp_path / "home"
    private_nssdb(home, ca_file)
    with server.run_in_thread():
        dom = wait_dom(f"https://devcert.test:{server.port}/?try-plain", home,
                       until=lambda d: ECHOED in d and "plain-result" in d and "blocked by" in d,
                       extra=["--host-resolver-rules=MAP devcert.test 127.0.0.1"])
    assert 'id="echo">hello over wss://<' in dom, dom[-2000:]  # wss:// works under that name
    assert "blocked by the browser: SecurityError" in dom, dom[-2000:]


# --- proxy -----------------------------------------------------------------------------------


class Upstream:
    """A real ws:// server (websockets, threaded) that records what reached it."""

    def __init__(self) -> None:
        from websockets.sync.server import serve as sync_serve

        self.seen: list[dict] = []
        self.server = sync_serve(self.handler, "127.0.0.1", 0, subprotocols=["chat.v1"])
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        record = {"path": ws.request.path, "origin": ws.request.headers.get("Origin"),
                  "offered": ws.request.headers.get("Sec-WebSocket-Protocol"),
                  "subprotocol": ws.subprotocol, "close": None}
        self.seen.append(record)
        try:
            for message in ws:
                if message == "close-me":
                    ws.close(4001, "upstream says bye")
                    return
                ws.send(message)
        except ConnectionClosed:
            pass
        record["close"] = (ws.close_code, ws.close_reason)

    def __enter__(self) -> "Upstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(10 * UNIT)


def test_proxy_relays_websocket_faithfully(caroot: Path) -> None:
    with Upstream() as upstream:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{upstream.port}")
        with server.run_in_thread():
            url = f"wss://localhost:{server.port}/socket/path?room=7&x=%20y"
            with ws_connect(url, ca_file, subprotocols=["chat.v2", "chat.v1"], origin="https://localhost:5173") as ws:
                assert ws.subprotocol == "chat.v1"  # the upstream's choice, not the first offered
                ws.send(b"\x00bin\xff" * 100)
                assert ws.recv(timeout=10 * UNIT) == b"\x00bin\xff" * 100
                ws.send("text")
                assert ws.recv(timeout=10 * UNIT) == "text"
                ws.close(4002, "client says bye")
            seen = upstream.seen[0]
            assert seen["path"] == "/socket/path?room=7&x=%20y"
            assert seen["origin"] == "https://localhost:5173"
            assert seen["subprotocol"] == "chat.v1"
            assert [p.strip() for p in seen["offered"].split(",")] == ["chat.v2", "chat.v1"]
            close = wait_for(lambda: upstream.seen[0]["close"], what="the upstream to see the client's close")
            assert close == (4002, "client says bye")

            # a close started upstream reaches the client with its code and reason
            from websockets.exceptions import ConnectionClosed

            with ws_connect(f"wss://localhost:{server.port}/other", ca_file, subprotocols=["chat.v1"]) as ws:
                assert ws.subprotocol == "chat.v1"
                ws.send("close-me")
                with pytest.raises(ConnectionClosed) as info:
                    ws.recv(timeout=10 * UNIT)
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "upstream says bye")

            # an upstream refusing the handshake: its status reaches the client
            from websockets.exceptions import InvalidStatus

            with pytest.raises(InvalidStatus) as refused:
                ws_connect(f"wss://localhost:{server.port}/third", ca_file, subprotocols=["unknown"])
            assert refused.value.response.status_code == 400


def test_proxy_shutdown_closes_both_sides_with_1001(caroot: Path) -> None:
    from websockets.exceptions import ConnectionClosed

    with Upstream() as upstream:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{upstream.port}")
        runner = server.run_in_thread()
        runner.__enter__()
        try:
            with ws_connect(f"wss://localhost:{server.port}/live", ca_file, subprotocols=["chat.v1"]) as ws:
                ws.send("x")
                assert ws.recv(timeout=10 * UNIT) == "x"
                runner.__exit__(None, None, None)
                with pytest.raises(ConnectionClosed) as info:
                    ws.recv(timeout=10 * UNIT)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        finally:
            runner.__exit__(None, None, None)
        close = wait_for(lambda: upstream.seen[0]["close"], what="the upstream to see the close")
        assert close[0] == 1001


def test_proxy_relays_http_with_keepalive(caroot: Path) -> None:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = f"page {self.path} host={self.headers['Host']} proto={self.headers['X-Forwarded-Proto']}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            data = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[::-1])

        def log_message(self, *args):
            pass

    with http_upstream(Handler) as upstream_port:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{upstream_port}")
        with server.run_in_thread():
            conn = http.client.HTTPSConnection("localhost", server.port, context=ca_context(ca_file), timeout=10 * UNIT)
            conn.request("GET", "/src/main.js?v=1")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.read() == f"page /src/main.js?v=1 host=localhost:{server.port} proto=https".encode()
            sock = conn.sock
            conn.request("POST", "/api", body=b"abc" * 1000)  # same connection: keep-alive
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (201, (b"abc" * 1000)[::-1])
            assert conn.sock is sock
            conn.close()


def test_proxy_unreachable_upstream_gets_502(caroot: Path) -> None:
    from websockets.exceptions import InvalidStatus

    lines: list[tuple[str, str]] = []
    # Bound and never listening: connections to it are refused, and no other process can take the port.
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    dead = reserved.getsockname()[1]
    server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{dead}", log=lambda lvl, msg: lines.append((lvl, msg)))
    with reserved, server.run_in_thread():
        with pytest.raises(InvalidStatus) as info:
            ws_connect(f"wss://localhost:{server.port}/ws", ca_file)
        assert info.value.response.status_code == 502
        assert b"not reachable" in info.value.response.body
        status, body = https_get(server.port, ca_file, "/")
        assert status == 502 and b"not reachable" in body
    assert any(lvl == "error" and f"127.0.0.1:{dead}" in msg for lvl, msg in lines), lines


# --- load, limits and bad input --------------------------------------------------------------


@pytest.mark.slow
def test_200_concurrent_clients(caroot: Path) -> None:
    import asyncio

    from websockets.asyncio.client import connect

    server, ca_file = make_server(caroot)

    async def one(i: int, ctx: ssl.SSLContext) -> bool:
        async with connect(f"wss://localhost:{server.port}/ws", ssl=ctx, open_timeout=30 * UNIT) as ws:
            for j in range(5):
                await ws.send(f"client {i} message {j}")
                if await ws.recv() != f"client {i} message {j}":
                    return False
            await ws.send(bytes([i % 256]) * 1024)
            return await ws.recv() == bytes([i % 256]) * 1024

    async def main() -> list[bool]:
        ctx = ca_context(ca_file)
        return await asyncio.wait_for(asyncio.gather(*(one(i, ctx) for i in range(200))), 120 * UNIT)

    with server.run_in_thread():
        results = asyncio.run(main())
    assert results == [True] * 200


def test_oversized_message_closes_with_1009(caroot: Path) -> None:
    """max_size bytes is accepted (text and binary), one more byte is 1009 and one console line."""
    from websockets.exceptions import ConnectionClosed

    lines: list[tuple[str, str]] = []
    # named as the CLI names its options (serve-wss passes its flags)
    server, ca_file = make_server(caroot, max_size=1000, log=lambda lvl, msg: lines.append((lvl, msg)),
                                  option_names=FLAGS)
    with server.run_in_thread():
        with ws_connect(f"wss://localhost:{server.port}/ws", ca_file, max_size=None) as ws:
            ws.send(b"x" * 1000)
            assert ws.recv(timeout=10 * UNIT) == b"x" * 1000
            ws.send("y" * 1000)
            assert ws.recv(timeout=10 * UNIT) == "y" * 1000
            ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10 * UNIT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        assert_echo(server.port, ca_file)
    assert [m for lvl, m in lines if lvl == "warning"] == \
        ["closed a connection from 127.0.0.1: message larger than --max-size 1000 bytes (1009)"], lines


def test_size_limit_words() -> None:
    """The Python API names the limit by its parameter; serve-wss by its flag."""
    assert describe_size_limit(1000) == "max_size 1000 bytes"
    assert describe_size_limit(1000, FLAGS) == "--max-size 1000 bytes"


def test_bad_inputs_never_stall_the_server(caroot: Path) -> None:
    """A bounded fuzz: garbage, plain HTTP on the TLS port, TLS without upgrade, bad frames,
    slow clients; after each, and with slow clients still hanging, an echo still works."""
    import random

    server, ca_file = make_server(caroot)
    rng = random.Random(4)
    with server.run_in_thread():
        port = server.port
        # slow clients that stay connected during the rest of the test
        slow = []
        for data in (b"", b"\x16\x03\x01", None):
            s = socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT)
            if data is None:
                s = ca_context(ca_file).wrap_socket(s, server_hostname="localhost")
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")  # never finished
            elif data:
                s.sendall(data)
            slow.append(s)
        try:
            assert_echo(port, ca_file)
            # plain HTTP on the TLS port
            with socket.create_connection(("127.0.0.1", port), timeout=5 * UNIT) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                try:
                    s.recv(100)
                except (ConnectionError, TimeoutError):
                    pass
            # TLS without an upgrade, then HTTP garbage
            for payload in (b"\r\n\r\n", b"GARBAGE\x00\xff\r\n\r\n", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
                raw_tls(port, ca_file, payload, timeout=2 * UNIT)
            # bounded random garbage: raw TCP and inside TLS, then into an open WebSocket
            deadline = time.monotonic() + 15 * UNIT
            for i in range(40):
                if time.monotonic() > deadline:
                    break
                junk = rng.randbytes(rng.randint(1, 3000))
                with socket.create_connection(("127.0.0.1", port), timeout=2 * UNIT) as s:
                    try:
                        s.sendall(junk)
                        s.recv(100)
                    except (ConnectionError, TimeoutError):
                        pass
                raw_tls(port, ca_file, junk, timeout=UNIT)
                upgrade = (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                raw_tls(port, ca_file, upgrade + junk, timeout=UNIT)
            # a frame header announcing 2**62 bytes
            raw_tls(port, ca_file, upgrade + b"\x82\xff" + (2 ** 62).to_bytes(8, "big") + b"\x00" * 4, timeout=2 * UNIT)
            assert_echo(port, ca_file)
        finally:
            for s in slow:
                s.close()


def test_port_in_use_is_one_clear_error(caroot: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        ca, ensured = serve.ensure_certificate(serve.DEFAULT_NAMES)
        server = WSSServer(serve.server_context(ensured.cert_path, ensured.key_path), port=port)
        with pytest.raises(serve.PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            with server.run_in_thread():
                pass


def test_leaf_is_kept_then_reused(caroot: Path) -> None:
    ca, first = serve.ensure_certificate(["localhost"])
    assert first.action == "created"
    assert first.cert_path.parent == caroot / "leaves"
    _, again = serve.ensure_certificate(["localhost"])
    assert again.action == "kept" and again.cert_path == first.cert_path


def test_leaf_near_expiry_is_renewed(caroot: Path) -> None:
    from devcert.issue import managed_leaf_paths
    from devcert.names import parse_names

    ca, first = serve.ensure_certificate(["localhost"])
    cert_path, key_path = managed_leaf_paths(ca, parse_names(["localhost"]))
    ca.issue("localhost", days=1).write(cert_path, key_path)  # about to expire
    _, again = serve.ensure_certificate(["localhost"])
    assert again.action == "renewed" and again.leaf is not None
    import datetime as dt

    assert again.leaf.not_after > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300)
    server = WSSServer(serve.server_context(again.cert_path, again.key_path), port=0)
    with server.run_in_thread():
        assert_echo(server.port, ca.cert_path)


# --- the CLI as a user runs it ---------------------------------------------------------------


@pytest.mark.slow
def test_cli_serves_until_sigint_and_closes_with_1001(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    from websockets.exceptions import ConnectionClosed

    with CLIServer([], cli_env) as cli:  # --port 0: the first line says the port it got
        port, out = cli.port, cli.out
        assert f"wss://localhost:{port}/ws" in out, out
        ca_file = caroot / "rootCA.pem"
        assert f"wscat -c wss://localhost:{port}/ws --ca {ca_file}" in out
        assert f"curl --cacert {ca_file} https://localhost:{port}/" in out
        assert f"SSL_CERT_FILE={ca_file} python -m websockets wss://localhost:{port}/ws" in out
        with ws_connect(f"wss://localhost:{port}/ws", ca_file) as ws:
            ws.send("before stop")
            assert ws.recv(timeout=10 * UNIT) == "before stop"
            cli.proc.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=15 * UNIT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        cli.proc.wait(timeout=20 * UNIT)  # stopped by our SIGINT, so leaving the block sends none
    assert cli.rc == 0
    assert "Traceback" not in cli.stderr


def test_cli_port_in_use_one_line(cli_env: dict) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_devcert("serve-wss", "--port", str(port), env=cli_env, timeout=60 * UNIT)
    assert result.returncode == 1
    errors = [l for l in result.stderr.splitlines() if l.startswith("devcert: error:")]
    assert errors == [f"devcert: error: port {port} on 127.0.0.1 is already in use; stop the other program or pick another with --port"], result.stderr


# --- a real Vite dev server behind the proxy -------------------------------------------------

VITE_MAIN_JS = """\
const app = document.getElementById('app');
app.textContent = 'rendered by main.js VERSION';
if (import.meta.hot) {
  import.meta.hot.accept();
  // An image still loading delays the load event, when headless Chromium dumps the DOM: this one
  // is answered once the page says it is done (or after 20 s), so the dump shows the round trip.
  const held = document.createElement('img');
  held.src = '/__devcert_hold';
  document.body.append(held);
  // a round trip over Vite's HMR socket (through the proxy): the page asks, the server answers
  import.meta.hot.on('devcert:pong', (data) => {
    document.getElementById('hmr').textContent = 'hmr pong ' + data.n + ' via ' + data.via;
    import.meta.hot.send('devcert:done', {});
  });
  import.meta.hot.send('devcert:ping', { n: 42 });
}
"""


def vite_project(root: Path) -> Path:
    root.mkdir()
    (root / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>devcert vite</title></head>\n'
        '<body><p id="app">not rendered</p><p id="hmr">no hmr</p>\n'
        '<script type="module" src="/main.js"></script></body></html>\n')
    (root / "main.js").write_text(VITE_MAIN_JS.replace("VERSION", "v1"))
    (root / "vite.config.js").write_text(VITE_CONFIG_JS)
    return root


def recv_json_until(ws, accept, timeout: float = 20 * UNIT) -> dict:
    """Vite's next JSON message for which ``accept(msg)`` is true (others are skipped)."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching message from Vite within the time limit")
        msg = json.loads(ws.recv(timeout=left))
        if accept(msg):
            return msg


@pytest.mark.slow
def test_vite_dev_app_through_the_proxy(caroot: Path, tmp_path: Path) -> None:
    """A real Vite dev server (pages, transformed modules, HMR socket) over https:// and wss://
    on devcert's one port: Python clients first, then headless Chromium running the app."""
    import json
    import re

    project = vite_project(tmp_path / "app")
    with ViteServer(project) as vite:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{vite.port}")
        with server.run_in_thread():
            base = f"https://localhost:{server.port}"
            conn = http.client.HTTPSConnection("localhost", server.port, context=ca_context(ca_file), timeout=20 * UNIT)
            conn.request("GET", "/")
            resp = conn.getresponse()
            page = resp.read().decode()
            assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/html")
            assert "/@vite/client" in page and 'id="app"' in page, page  # Vite's transformed index.html
            scripts = {}
            for path in ("/@vite/client", "/main.js"):  # same connection: keep-alive
                conn.request("GET", path)
                resp = conn.getresponse()
                scripts[path] = resp.read().decode()
                assert resp.status == 200, (path, resp.status)
                assert "javascript" in resp.getheader("Content-Type", ""), (path, resp.getheaders())
            conn.close()
            assert "rendered by main.js v1" in scripts["/main.js"]
            assert "import.meta.hot" in scripts["/main.js"] and "/@vite/client" in scripts["/main.js"]
            # No HMR host/port/protocol is configured: the client derives wss://<page host:port>/
            assert 'importMetaUrl.protocol === "https:" ? "wss" : "ws"' in scripts["/@vite/client"]
            token = re.search(r'const wsToken = "([^"]+)"', scripts["/@vite/client"]).group(1)

            # The HMR socket as the browser opens it: subprotocol vite-hmr, Origin, ?token=
            with ws_connect(f"wss://localhost:{server.port}/?token={token}", ca_file,
                            subprotocols=["vite-hmr"], origin=base) as ws:
                assert ws.subprotocol == "vite-hmr"
                assert json.loads(ws.recv(timeout=20 * UNIT)) == {"type": "connected"}
                ws.send(json.dumps({"type": "custom", "event": "devcert:ping", "data": {"n": 7}}))
                pong = recv_json_until(ws, lambda m: m.get("type") == "custom")
                assert pong == {"type": "custom", "event": "devcert:pong", "data": {"n": 7, "via": "https"}}
                # editing main.js: Vite's update for it arrives over the proxied socket
                (project / "main.js").write_text(VITE_MAIN_JS.replace("VERSION", "v2"))
                update = recv_json_until(ws, lambda m: m.get("type") in ("update", "full-reload"), timeout=30 * UNIT)
                assert update["type"] == "update", update
                assert any(u["path"] == "/main.js" for u in update["updates"]), update
            status, body = https_get(server.port, ca_file, "/main.js")
            assert status == 200 and b"rendered by main.js v2" in body

            # The whole app in a browser that trusts only the devcert CA (private NSS db)
            home = tmp_path / "home"
            private_nssdb(home, ca_file)
            dom = wait_dom(f"{base}/", home, until=lambda d: "hmr pong 42" in d and " v2<" in d)
    assert 'id="app">rendered by main.js v2<' in dom, dom[-2000:]
    # Vite's own client talked over wss:// through the proxy (not its direct ws:// fallback)
    assert 'id="hmr">hmr pong 42 via https<' in dom, dom[-2000:]


# --- slow clients ----------------------------------------------------------------------------


def test_slow_request_head_gets_408_and_is_closed(caroot: Path) -> None:
    """Slow-loris: a client that finishes TLS and then dribbles header bytes is closed after the
    request-head time limit, while an echo WebSocket, a streamed proxied response and an idle
    keep-alive connection (all open for longer than that limit) carry on."""
    from http.server import BaseHTTPRequestHandler

    limit = 1.0 * UNIT  # the request-head limit under test; every wait below is a multiple of it
    lines: list[tuple[str, str]] = []
    server, ca_file = make_server(caroot, request_head_timeout=limit, keepalive_timeout=30 * limit,
                                  log=lambda lvl, msg: lines.append((lvl, msg)))

    def dribbler(result: dict) -> None:
        """Sends one header byte every limit/5 (for at most 15 limits) and records what happened."""
        head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5 * limit) as sock:
            with ca_context(ca_file).wrap_socket(sock, server_hostname="localhost") as tls:
                tls.settimeout(limit / 5)
                reply = b""
                for i in range(len(head)):
                    if time.monotonic() - start > 15 * limit:
                        break
                    try:
                        tls.sendall(head[i:i + 1])
                    except (ConnectionError, ssl.SSLError, OSError):
                        break
                    try:
                        chunk = tls.recv(4096)
                    except (TimeoutError, socket.timeout):
                        continue
                    except (ConnectionError, ssl.SSLError, OSError):
                        break
                    if not chunk:
                        break
                    reply += chunk
                result.update(reply=reply, sent=i, seconds=time.monotonic() - start)

    with server.run_in_thread():
        with ws_connect(f"wss://localhost:{server.port}/ws", ca_file) as ws:
            idle = http.client.HTTPSConnection("localhost", server.port, context=ca_context(ca_file), timeout=10 * UNIT)
            idle.request("GET", "/")
            assert idle.getresponse().read()
            idle_sock = idle.sock
            result: dict = {}
            thread = threading.Thread(target=dribbler, args=(result,), daemon=True)
            thread.start()
            # while the slow client dribbles, others are served
            deadline = time.monotonic() + 3 * limit
            while time.monotonic() < deadline:
                ws.send("still here")
                assert ws.recv(timeout=5 * limit) == "still here"
                time.sleep(limit / 5)
            thread.join(20 * limit)
            assert not thread.is_alive()
            assert result["reply"].startswith(b"HTTP/1.1 408 "), result
            assert result["sent"] < 100, result  # closed long before the head was complete
            # the WebSocket, silent and busy for longer than the limit, still works
            ws.send("after")
            assert ws.recv(timeout=5 * limit) == "after"
            # the keep-alive connection, idle for longer than the limit, serves a second request
            idle.request("GET", "/")
            resp = idle.getresponse()
            assert resp.status == 200 and resp.read()
            assert idle.sock is idle_sock
            idle.close()
    assert any(lvl == "warning" and f"no complete request within {limit:g} s" in msg for lvl, msg in lines), lines

    # a proxied response streamed slowly, for longer than the limit, is not cut
    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                data = f"part {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(limit / 2)  # five parts: 2.5 limits in all
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args):
            pass

    with http_upstream(Slow) as upstream_port:
        proxy, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{upstream_port}", request_head_timeout=limit)
        with proxy.run_in_thread():
            status, body = https_get(proxy.port, ca_file, "/stream")
            assert status == 200 and body == b"".join(f"part {i}\n".encode() for i in range(5))


# --- what the CLI prints must work; usage errors come before anything is made -----------------


def test_cli_printed_curl_reaches_a_name_the_certificate_covers(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    """app.test (README example) does not resolve here: the curl line carries --resolve and works,
    and one note says how to make the name resolve. A wildcard gets a name under it."""
    require_tool("curl")
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "index.html").write_text("<p>public index</p>")
    (public / "sub" / "index.html").write_text("<p>sub index</p>")
    with CLIServer(["app.test", "--dir", "./public"], cli_env, cwd=tmp_path) as cli:
        assert cli.out.startswith(f"Serving https://app.test:{cli.port}/ and wss://app.test:{cli.port}/ws (listening on 127.0.0.1:{cli.port})")
        note = cli.line("Note:")
        assert "app.test does not resolve on this machine" in note and "`127.0.0.1 app.test` to /etc/hosts" in note
        assert f"--resolve app.test:{cli.port}:127.0.0.1" in cli.line("curl ")
        result = cli.run_printed("curl ")
        assert result.returncode == 0 and "public index" in result.stdout, result
        # a folder without its slash is redirected, so its page's relative links work
        result = subprocess.run(["curl", "-si", "--cacert", str(caroot / "rootCA.pem"), "--resolve",
                                 f"app.test:{cli.port}:127.0.0.1", f"https://app.test:{cli.port}/sub?x=1"],
                                capture_output=True, text=True, timeout=30 * UNIT)
        assert result.stdout.startswith("HTTP/1.1 301") and "\nLocation: /sub/?x=1\n" in result.stdout, result.stdout
    assert cli.rc == 0 and "Traceback" not in cli.stderr
    # first run: the new CA's line says to run `devcert install`, and nothing repeats it
    assert cli.stderr.count("devcert install") == 1, cli.stderr

    with CLIServer(["*.app.test"], cli_env) as cli:
        assert f"https://www.app.test:{cli.port}/" in cli.out.splitlines()[0]
        assert "www.app.test (a name under the certificate's *.app.test) does not resolve" in cli.line("Note:")
        result = cli.run_printed("curl ")
        assert result.returncode == 0 and "WebSocket" in result.stdout, result
    assert cli.rc == 0


@pytest.mark.parametrize("args, url_host, listening, fix", [
    (["::1"], "[::1]", "127.0.0.1", "restart with --host ::1"),  # the name is an IP the server is not on
    (["--host", "::1", "127.0.0.1"], "127.0.0.1", "[::1]", "restart with --host 127.0.0.1"),
])
def test_cli_says_when_no_covered_name_reaches_the_server(cli_env: dict, args, url_host, listening, fix) -> None:
    with CLIServer(args, cli_env) as cli:
        assert cli.out.startswith(f"Serving https://{url_host}:{cli.port}/ ")
        assert f"(listening on {listening}:{cli.port})" in cli.out.splitlines()[0]
        assert cli.line("Note:").endswith(fix)
    assert cli.rc == 0


@pytest.mark.parametrize("host", ["::1", "::"])
def test_cli_ipv6_listen_address_printed_in_brackets_and_reachable(cli_env: dict, host: str) -> None:
    require_tool("curl")
    with CLIServer(["--host", host], cli_env) as cli:
        assert f"(listening on [{host}]:{cli.port})" in cli.out.splitlines()[0]
        assert "Note:" not in cli.out  # ::1 is in the default names (or localhost resolves to it)
        result = cli.run_printed("curl ")
        assert result.returncode == 0 and "WebSocket" in result.stdout, result
    assert cli.rc == 0


def test_cli_ws_path_with_a_space_is_printed_pasteable(cli_env: dict, caroot: Path) -> None:
    with CLIServer(["--ws-path", "/x y"], cli_env) as cli:
        url = f"wss://localhost:{cli.port}/x%20y"
        assert cli.line("wscat ") == f"wscat -c {url} --ca {caroot / 'rootCA.pem'}"
        assert_echo(cli.port, caroot / "rootCA.pem", "/x%20y")
        venv_first = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # its `python`
        result = cli.run_printed("SSL_CERT_FILE=", input="pasted\n", env=clean_env(PATH=venv_first))
        # the pasted client connects (a wrong path would be refused with 404) and closes cleanly at EOF
        assert result.returncode == 0 and f"Connected to {url}." in result.stdout, result
        assert "Connection closed: 1000" in result.stdout, result
    assert cli.rc == 0


@pytest.mark.parametrize("args, message", [
    (["--dir", "./nope"], "--dir nope is not a folder"),
    (["--dir", ".", "--proxy", "ws://127.0.0.1:5173"], "--dir and --proxy cannot be combined"),
    (["--ws-path", "/a", "--proxy", "ws://127.0.0.1:5173"], "--ws-path does not apply with --proxy"),
    (["--ws-path", "/ws?x=1"], "--ws-path takes a path only, without a query or fragment"),
    (["--ws-path", "/ws#top"], "--ws-path takes a path only, without a query or fragment"),
    (["--ws-path", "/"], "--ws-path cannot be /"),
    (["--ws-path", ""], "--ws-path cannot be /"),
    (["--host", "nosuch.invalid"], "cannot resolve --host nosuch.invalid"),
    (["--max-size", "inf"], "--max-size takes a size like"),
    (["--max-size", "nan"], "--max-size takes a size like"),
    (["--max-size", "4GiB"], "--max-size must be between 1 byte and 2GiB"),
    (["--proxy", "ws://127.0.0.1"], "--proxy needs a port, e.g. ws://127.0.0.1:5173 (got 'ws://127.0.0.1')"),
    (["--proxy", "localhost"], "--proxy needs a port, e.g. ws://127.0.0.1:5173 (got 'localhost')"),
    (["--proxy", "ws://127.0.0.1:0"], "--proxy needs a port between 1 and 65535 (got 'ws://127.0.0.1:0')"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
])
def test_cli_usage_errors_before_anything_is_made(cli_env: dict, caroot: Path, tmp_path: Path, args, message) -> None:
    result = run_devcert("serve-wss", *args, env=cli_env, cwd=tmp_path, timeout=60 * UNIT)
    assert result.returncode == 2, result
    assert message in one_error_line(result.stderr), result.stderr
    assert "Created" not in result.stderr and not (caroot / "rootCA.pem").exists()


def test_cli_proxy_first_line_and_one_line_upstream_errors(cli_env: dict, caroot: Path) -> None:
    """The first line says every path is proxied; an upstream answering garbage (a header with a
    bare newline) is a 502 and one console line."""
    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen(4)
    garbage.settimeout(30 * UNIT)

    def answer() -> None:
        try:
            conn, _ = garbage.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nBad Header\nline two\r\n\r\nhello")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        upstream = f"ws://127.0.0.1:{garbage.getsockname()[1]}"
        with CLIServer(["--proxy", upstream], cli_env) as cli:
            first = cli.out.splitlines()[0]
            assert first == f"Serving https://localhost:{cli.port}/ and wss://localhost:{cli.port}/ (any path; listening on 127.0.0.1:{cli.port})"
            status, body = https_get(cli.port, caroot / "rootCA.pem", "/page")
            assert status == 502 and b"invalid HTTP response" in body
    finally:
        garbage.close()
        thread.join(10 * UNIT)
    errors = [l for l in cli.stderr.splitlines() if "upstream" in l or "line two" in l]
    assert len(errors) == 1 and errors[0].startswith(f"devcert: error: upstream {upstream} answered GET /page with an invalid HTTP response"), cli.stderr


def test_cli_ctrl_c_during_a_tls_handshake_is_clean_without_uvloop(cli_env: dict) -> None:
    env = dict(cli_env, DEVCERT_NO_UVLOOP="1")
    with CLIServer([], env) as cli:
        with socket.create_connection(("127.0.0.1", cli.port), timeout=10 * UNIT) as half:
            half.sendall(b"\x16\x03\x01")  # a ClientHello that never finishes
            wait_for(lambda: server_has_read(half), what="serve-wss to read the first bytes of the ClientHello")
            cli.proc.send_signal(signal.SIGINT)
            cli.proc.wait(timeout=20 * UNIT)
    assert cli.rc == 0
    assert cli.stderr.rstrip().endswith("Stopped."), cli.stderr
    assert "Task was destroyed" not in cli.stderr and "Traceback" not in cli.stderr, cli.stderr


def server_has_read(client: socket.socket) -> bool:
    """The server end of ``client``'s loopback connection has an empty receive queue: it has read
    everything sent (Linux's /proc/net/tcp, the rx_queue column of the connection's server side)."""
    here, there = client.getsockname()[1], client.getpeername()[1]
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            local, remote, queues = row.split()[1], row.split()[2], row.split()[4]
            if int(local.split(":")[1], 16) == there and int(remote.split(":")[1], 16) == here:
                return int(queues.split(":")[1], 16) == 0
    return False


def test_proxy_oversized_client_message(caroot: Path) -> None:
    """The client gets 1009; the upstream hears 1001 with the reason, and the console says why.
    A message of exactly max_size bytes goes through both ways."""
    from websockets.exceptions import ConnectionClosed

    lines: list[tuple[str, str]] = []
    with Upstream() as upstream:
        server, ca_file = make_server(caroot, proxy=f"ws://127.0.0.1:{upstream.port}", max_size=1000,
                                      log=lambda lvl, msg: lines.append((lvl, msg)), option_names=FLAGS)
        with server.run_in_thread():
            with ws_connect(f"wss://localhost:{server.port}/big", ca_file, max_size=None, subprotocols=["chat.v1"]) as ws:
                ws.send(b"x" * 1000)
                assert ws.recv(timeout=10 * UNIT) == b"x" * 1000
                ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosed) as info:
                    ws.recv(timeout=10 * UNIT)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            close = wait_for(lambda: upstream.seen[0]["close"], what="the upstream to see the close")
    assert close == (1001, "the client sent a message larger than --max-size 1000 bytes")
    assert ("warning", "closed the proxied WebSocket /big from 127.0.0.1: the client sent a message larger "
                       "than --max-size 1000 bytes (1009)") in lines, lines
