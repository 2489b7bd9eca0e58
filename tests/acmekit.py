"""What the ``devcert acme`` tests share: the server as a real subprocess, an http-01 responder,
a certbot-``acme`` client, and the TLS handshake that proves an issued certificate works."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import datetime as dt

import dns.message
import dns.rdatatype
import dns.rrset
import josepy as jose
from acme import challenges, client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import UNIT, TLSServer, clean_env, devcert_exe


class ServerExited(AssertionError):
    """``devcert acme`` ended before it printed its JSON line."""

    def __init__(self, code: int | None, stderr: str):
        self.code, self.stderr = code, stderr
        super().__init__(f"devcert acme exited ({code}): {stderr}")


class AcmeProcess:
    """``devcert acme --port 0 --json`` running; ``info`` is the JSON line it printed."""

    def __init__(self, caroot: Path, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
        self.caroot, self.prefix = caroot, prefix
        self.env = env or clean_env(DEVCERT_CAROOT=str(caroot))
        self.stderr = ""
        self.proc = subprocess.Popen([*prefix, devcert_exe(), "acme", "--port", "0", "--json", *args], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.info = self._read_line()
        self.directory: str = self.info["directory"]
        self.ca_file: str = self.info["ca"]

    def _read_line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=60 * UNIT):
            self.stop()
            raise AssertionError(f"devcert acme printed nothing in time; stderr: {self.stderr}")
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise ServerExited(self.proc.returncode, self.stderr)
        return json.loads(line)

    def _server_pid(self) -> int:
        """The devcert process: the one started, or strace's tracee when it runs under strace
        (strace detaches on SIGINT and would leave the server running)."""
        if self.prefix:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
        return self.proc.pid

    def stop(self) -> str:
        """SIGINT, as Ctrl-C; return stderr. Signals only this server, by its PID."""
        if self.proc.poll() is None:
            os.kill(self._server_pid(), signal.SIGINT)
            try:
                self.proc.wait(timeout=30 * UNIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out, err = self.proc.communicate()
        self.stderr = err or ""
        self.rest_of_stdout = out or ""
        return self.stderr


@contextlib.contextmanager
def acme_server(caroot: Path, *args: str) -> Iterator[AcmeProcess]:
    server = AcmeProcess(caroot, *args)
    try:
        yield server
    finally:
        server.stop()


class Http01Responder:
    """An http-01 server on 127.0.0.1 (port picked by the OS) answering the tokens it is given."""

    def __init__(self) -> None:
        tokens: dict[str, str] = {}
        self.tokens = tokens
        self.requests: list[tuple[str, str]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                requests.append((self.headers.get("Host", ""), self.path))
                prefix = "/.well-known/acme-challenge/"
                body = tokens.get(self.path[len(prefix):]) if self.path.startswith(prefix) else None
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def handshake(cert_pem: bytes, key_pem: bytes, ca_file: str, name: str, tmp: Path) -> dict[str, Any]:
    """Serve ``cert_pem`` on 127.0.0.1 and connect to it as ``name`` trusting only ``ca_file``;
    return the peer certificate the client verified."""
    cert_path, key_path = tmp / "hs-cert.pem", tmp / "hs-key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    with TLSServer(server_ctx) as server:  # the suite's one TLS server, on port 0
        return connect(server.port, ca_file, name)


def connect(port: int, ca_file: str, name: str) -> dict[str, Any]:
    """A TLS client that trusts ``ca_file`` only and checks ``name``; the verified peer certificate."""
    client_ctx = ssl.create_default_context(cafile=ca_file)  # trusts only the devcert CA
    with socket.create_connection(("127.0.0.1", port), timeout=30 * UNIT) as sock:
        with client_ctx.wrap_socket(sock, server_hostname=name) as tls:
            peer = tls.getpeercert()
            tls.sendall(b"x")
            return peer


def san_names(peer: dict[str, Any]) -> list[str]:
    return [value for _kind, value in peer.get("subjectAltName", ())]




class TxtServer:
    """A DNS server on 127.0.0.1 (UDP, port picked by the OS) answering the TXT records it is given."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()

        def serve() -> None:
            while not self._stop.is_set():
                try:
                    data, peer = self.sock.recvfrom(4096)
                except (TimeoutError, OSError):
                    continue
                query = dns.message.from_wire(data)
                reply = dns.message.make_response(query)
                for question in query.question:
                    values = self.records.get(question.name.to_text().lower())
                    if question.rdtype == dns.rdatatype.TXT and values:
                        reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT",
                                                                *[f'"{v}"' for v in values]))
                self.sock.sendto(reply.to_wire(), peer)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


# --- certbot's acme library as the client ----------------------------------------------------


def ec_key() -> jose.JWK:
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def rsa_key() -> jose.JWK:
    return jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def make_client(directory: str, ca_file: str, key: jose.JWK | None = None) -> client.ClientV2:
    key = key or ec_key()
    alg = jose.ES256 if isinstance(key, jose.JWKEC) else jose.RS256
    # verify_ssl is handed to requests as `verify`: a CA file, so the client trusts only devcert's CA
    net = client.ClientNetwork(key, alg=alg, verify_ssl=ca_file, user_agent="devcert-tests", timeout=int(30 * UNIT))
    return client.ClientV2(client.ClientV2.get_directory(directory, net), net)


def register(acme: client.ClientV2, **kwargs: Any) -> messages.RegistrationResource:
    reg = acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True, **kwargs))
    acme.net.account = reg
    return reg


def leaf_key_pem(kind: str = "ec") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def obtain(acme: client.ClientV2, responder: Http01Responder, names: list[str], key_pem: bytes | None = None,
           ips: list[Any] | None = None) -> tuple[messages.OrderResource, bytes]:
    """Order ``names``, answer every http-01, finalize; return the order and the leaf key."""
    key_pem = key_pem or leaf_key_pem()
    order = answer_http01(acme, responder, crypto_util.make_csr(key_pem, names or None, ipaddrs=ips))
    deadline = dt.datetime.now() + dt.timedelta(seconds=30 * UNIT)
    return acme.poll_and_finalize(order, deadline), key_pem


def answer_http01(acme: client.ClientV2, responder: Http01Responder, csr: bytes) -> messages.OrderResource:
    """Order ``csr``'s names and answer each authorization's http-01 through ``responder``."""
    order = acme.new_order(csr)
    for authz in order.authorizations:
        chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = chall.response_and_validation(acme.net.key)
        responder.tokens[chall.chall.encode("token")] = validation
        acme.answer_challenge(chall, response)
    return order
