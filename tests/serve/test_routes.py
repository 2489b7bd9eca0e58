"""Named routes on one port: each name (by SNI and Host) relayed to its own upstream, with its
own certificate issued at the TLS handshake the first time the name is seen; the page for a
name without a route (404) or a Host that is not the connection's name (421); routes from the
project's ``[tool.devcert]``; and two real upstreams (Vite and a Python websockets service)
behind two names in headless Chromium."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from devcert import serve
from devcert.ca import LocalCA
from devcert.errors import ServeOptionError
from devcert.issue import managed_leaf_paths
from devcert.names import parse_names
from devcert.serve import WSSServer
from tests.browser import wait_dom
from tests.helpers import (UNIT, VITE_CONFIG_JS, CLIServer, ViteServer, http_upstream, on_a_candidate_port, one_error_line,
                           private_nssdb, run_devcert, ws_upstream)


@contextmanager
def named(label: str) -> Iterator[int]:
    """A plain HTTP upstream on 127.0.0.1 answering every GET with its ``label`` and the Host it got: its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"{label} {self.headers.get('Host')}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    with http_upstream(Handler) as port:
        yield port


def make_routed_server(**kwargs) -> tuple[WSSServer, LocalCA]:
    """A WSSServer on port 0 that issues each route's certificate from serve-wss's CA, and that CA."""
    ca, ensured = serve.ensure_certificate()
    return WSSServer(serve.server_context(ensured.cert_path, ensured.key_path), port=0, ca=ca, **kwargs), ca


def get(port: int, ca: LocalCA, server_name: str, host: str | None = None, path: str = "/") -> tuple[int, bytes, x509.Certificate]:
    """GET over TLS to 127.0.0.1:``port``, verifying the certificate for ``server_name`` (SNI),
    with ``Host: host`` (default: the same name): status, body and the certificate it presented."""
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=20 * UNIT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or server_name}:{port}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body, cert


def dns_names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_two_names_on_one_port_each_with_its_certificate_issued_at_the_handshake(caroot: Path) -> None:
    with named("app") as app, named("api") as api:
        server, ca = make_routed_server(routes=[f"app.localhost={app}", f"*.api.localhost=127.0.0.1:{api}"])
        leaves = caroot / "leaves"
        with server.run_in_thread():
            assert not (leaves / "app.localhost.pem").exists()  # not before a client asks for it
            status, body, cert = get(server.port, ca, "app.localhost")
            assert (status, body) == (200, f"app app.localhost:{server.port}".encode())
            assert dns_names(cert) == ["app.localhost"]
            assert (leaves / "app.localhost.pem").is_file() and (leaves / "app.localhost-key.pem").is_file()
            # a name under the wildcard route: the route's wildcard certificate, kept in CAROOT
            status, body, cert = get(server.port, ca, "v2.api.localhost")
            assert (status, body) == (200, f"api v2.api.localhost:{server.port}".encode())
            assert dns_names(cert) == ["*.api.localhost"]
            assert (leaves / "_wildcard.api.localhost.pem").is_file()
            # a name deeper under it, which the wildcard does not cover: a certificate of its
            # own, made in memory (made-up names do not fill CAROOT)
            status, body, cert = get(server.port, ca, "a.b.api.localhost")
            assert (status, body) == (200, f"api a.b.api.localhost:{server.port}".encode())
            assert dns_names(cert) == ["a.b.api.localhost"]
            assert sorted(p.name for p in leaves.iterdir() if "api" in p.name) == [
                "_wildcard.api.localhost-key.pem", "_wildcard.api.localhost.pem"]
            # again: the same certificate, from memory
            assert get(server.port, ca, "app.localhost")[2].serial_number == \
                x509.load_pem_x509_certificate((leaves / "app.localhost.pem").read_bytes()).serial_number


def test_unrouted_name_gets_404_listing_routes_and_misdirected_host_421(caroot: Path) -> None:
    with named("app") as app:
        server, ca = make_routed_server(routes=[f"app.localhost={app}", f"*.pr.localhost={app}"])
        with server.run_in_thread():
            status, body, cert = get(server.port, ca, "other.localhost")
            assert status == 404, body
            assert dns_names(cert) == ["other.localhost"]  # trusted, so the page shows
            assert f'href="https://app.localhost:{server.port}/"'.encode() in body and b"*.pr.localhost" in body
            assert b"other.localhost" in body
            # a name without a route gets no file in CAROOT (a client cannot fill it with made-up names)
            assert not (caroot / "leaves" / "other.localhost.pem").exists()
            # the connection is for app.localhost, the request for another name
            status, body, _ = get(server.port, ca, "app.localhost", host="other.localhost")
            assert status == 421 and b"app.localhost" in body, body
            # no SNI (an IP address): the default certificate, and the Host decides
            status, body, cert = get(server.port, ca, "127.0.0.1", host="app.localhost")
            assert status == 200 and body.startswith(b"app "), body
            assert "localhost" in dns_names(cert)


def test_a_name_near_expiry_is_reissued_at_the_handshake(caroot: Path) -> None:
    ca, _ = serve.ensure_certificate()
    cert_path, key_path = managed_leaf_paths(ca, parse_names(["app.localhost"]))
    ca.issue("app.localhost", days=1).write(cert_path, key_path)
    old = x509.load_pem_x509_certificate(cert_path.read_bytes())
    with named("app") as app:
        server, ca = make_routed_server(routes=[f"app.localhost={app}"])
        with server.run_in_thread():
            status, _, cert = get(server.port, ca, "app.localhost")
    assert status == 200
    assert cert.serial_number != old.serial_number
    assert cert.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300)
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number == cert.serial_number


def test_a_route_to_the_server_itself_is_refused(caroot: Path) -> None:
    def refused(port: int) -> None:
        # the route names the server's own port, so the port is chosen before the server binds it
        server, _ = make_routed_server(routes=[f"app.localhost={port}"])
        server.port = port
        with pytest.raises(ServeOptionError) as err:
            with server.run_in_thread():
                pass
        assert f"route app.localhost=ws://127.0.0.1:{port} is this server's own address" in str(err.value)

    on_a_candidate_port(refused)


@pytest.mark.parametrize("routes, message", [
    (["app.localhost"], "route takes NAME=UPSTREAM"),
    (["app.localhost=ws://127.0.0.1"], "route needs a port"),
    (["a*b.localhost=5173"], "is not a host name"),
    (["app.localhost=5173", "app.localhost=5174"], "app.localhost is given twice"),
])
def test_bad_routes_are_usage_errors(caroot: Path, routes, message) -> None:
    with pytest.raises(ServeOptionError) as err:
        make_routed_server(routes=routes)
    assert message in str(err.value)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_routes_from_the_command_line_and_from_pyproject(cli_env: dict, caroot: Path, tmp_path: Path) -> None:
    with named("app") as app, named("api") as api:
        project = tmp_path / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[project]\nname = "x"\n\n[tool.devcert.routes]\n'
            f'"app.localhost" = {app}\n"api.localhost" = "ws://127.0.0.1:{api}"\n')
        with CLIServer([], cli_env, cwd=project) as srv:
            port = srv.port
            ca = LocalCA.load()
            assert get(port, ca, "app.localhost")[:2] == (200, f"app app.localhost:{port}".encode())
            assert get(port, ca, "api.localhost")[:2] == (200, f"api api.localhost:{port}".encode())
        assert f"https://app.localhost:{port}/" in srv.out and f"ws://127.0.0.1:{app}" in srv.out
        assert str(project / "pyproject.toml") in srv.out
        # --route wins over the file's routes
        with CLIServer(["--route", f"api.localhost={app}"], cli_env, cwd=project) as srv:
            port = srv.port
            assert get(port, ca, "api.localhost")[:2] == (200, f"app api.localhost:{port}".encode())
            assert get(port, ca, "app.localhost")[0] == 404
        assert "Traceback" not in srv.stderr
    # `devcert sync` still reads the same file
    done = run_devcert("sync", "--check", env=cli_env, cwd=project)
    assert "unknown key" not in done.stderr, done.stderr


def test_cli_bad_route_is_one_usage_error(cli_env: dict) -> None:
    done = run_devcert("serve-wss", "--route", "app.localhost", env=cli_env)
    assert done.returncode == 2
    assert "--route takes NAME=UPSTREAM" in one_error_line(done.stderr)


# --- two real upstreams behind two names, in headless Chromium --------------------------------

VITE_MAIN_JS = """\
document.getElementById('app').textContent = 'rendered by vite';
// the other service, by its own name on the same port (under a wildcard route)
const ws = new WebSocket('wss://echo.ws.localhost:' + location.port + '/echo');
ws.onopen = () => ws.send('ping from app.localhost');
ws.onmessage = (event) => { document.getElementById('ws').textContent = 'echo: ' + event.data; };
ws.onerror = () => { document.getElementById('ws').textContent = 'ws error'; };
if (import.meta.hot) {
  // a round trip over Vite's own HMR socket, which came through wss://app.localhost
  import.meta.hot.on('devcert:pong', (data) => {
    document.getElementById('hmr').textContent = 'hmr pong ' + data.n + ' via ' + data.via;
  });
  import.meta.hot.send('devcert:ping', { n: 7 });
}
"""

def echo_path_and_host(ws) -> None:
    """Echo each message with the path and Host the WebSocket handshake reached the upstream with."""
    for message in ws:
        ws.send(f"{message} (path {ws.request.path}, host {ws.request.headers['Host']})")


@pytest.mark.slow
def test_chromium_vite_app_and_websockets_service_behind_two_names(caroot: Path, tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>two names</title></head>\n'
        '<body><p id="app">not rendered</p><p id="hmr">no hmr</p><p id="ws">no ws</p>\n'
        '<script type="module" src="/main.js"></script></body></html>\n')
    (project / "main.js").write_text(VITE_MAIN_JS)
    (project / "vite.config.js").write_text(VITE_CONFIG_JS)
    with ViteServer(project) as vite, ws_upstream(echo_path_and_host) as echo:
        server, ca = make_routed_server(routes=[f"app.localhost={vite.port}", f"*.ws.localhost=ws://127.0.0.1:{echo}"])
        home = tmp_path / "home"
        private_nssdb(home, ca.cert_path)
        with server.run_in_thread():
            # Chromium sends *.localhost to loopback itself (RFC 6761): no resolver rule needed
            dom = wait_dom(f"https://app.localhost:{server.port}/", home,
                           until=lambda d: "hmr pong" in d and "echo: " in d)
    assert 'id="app">rendered by vite<' in dom, dom[-2000:]
    assert f"echo: ping from app.localhost (path /echo, host echo.ws.localhost:{server.port})" in dom, dom[-2000:]
    assert "hmr pong 7 via https" in dom, dom[-2000:]
    # each made at its first handshake: the app's own, the wildcard route's (Chromium accepts it)
    for name in ("app.localhost", "_wildcard.ws.localhost"):
        assert (caroot / "leaves" / f"{name}.pem").is_file(), name
