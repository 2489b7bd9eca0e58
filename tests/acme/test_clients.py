"""Real ACME clients against ``devcert acme``: lego (http-01, tls-alpn-01), certbot standalone,
dehydrated (http-01 from a webroot) and Caddy. Each obtains a certificate for a ``*.localhost``
name that then serves a TLS handshake to a client trusting only the devcert CA, and renews it;
certbot also revokes. Every client trusts the CA only through its own option or variable
(``LEGO_CA_CERTIFICATES``, ``REQUESTS_CA_BUNDLE``, curl's ``CURL_CA_BUNDLE``, Caddy's
``acme_ca_root``), never a system store. Challenge ports are picked free and given to both the
server (``--http-port``/``--tls-port``) and the client; a port taken in between is retried.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography import x509

from tests.acmekit import AcmeProcess, connect, handshake, san_names
from tests.helpers import UNIT, candidate_port, clean_env, require_tool, wait_for

pytestmark = pytest.mark.slow

#: What a client prints when the challenge port was taken between our pick and its bind.
PORT_TAKEN = ("address already in use", "Address already in use", "could not bind", "Problem binding")


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120 * UNIT) -> subprocess.CompletedProcess[str]:
    """A client run, bounded in time; stdout and stderr together for the assertion message."""
    return subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


class PortedServer:
    """``devcert acme`` with free challenge ports; :meth:`client` runs a client that binds them and,
    when another program took a port in between, starts the server again on new ones."""

    def __init__(self, caroot: Path, *args: str) -> None:
        self.caroot, self.args = caroot, args
        self._start()

    def _start(self) -> None:
        self.http_port, self.tls_port = candidate_port(), candidate_port()
        self.server = AcmeProcess(self.caroot, "--http-port", str(self.http_port), "--tls-port", str(self.tls_port),
                                  *self.args)

    def client(self, attempt: Callable[[AcmeProcess, int, int], subprocess.CompletedProcess[str]]
               ) -> subprocess.CompletedProcess[str]:
        for _ in range(3):
            result = attempt(self.server, self.http_port, self.tls_port)
            if result.returncode == 0 or not any(p in result.stdout for p in PORT_TAKEN):
                return result
            self.server.stop()
            self._start()
        raise AssertionError(f"the challenge ports were taken three times: {result.stdout[-2000:]}")

    def stop(self) -> str:
        return self.server.stop()


@pytest.fixture
def ported(caroot):
    servers: list[PortedServer] = []

    def start(*args: str) -> PortedServer:
        servers.append(PortedServer(caroot, *args))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def check_served(cert_file: Path, key_file: Path, ca_file: str, name: str, tmp: Path) -> x509.Certificate:
    """The client's certificate serves a handshake to a client trusting only the devcert CA."""
    peer = handshake(cert_file.read_bytes(), key_file.read_bytes(), ca_file, name, tmp)
    assert san_names(peer) == [name]
    return x509.load_pem_x509_certificate(cert_file.read_bytes())


# --- lego ----------------------------------------------------------------------------------


def lego_env(server: AcmeProcess) -> dict[str, str]:
    # lego trusts extra CAs from LEGO_CA_CERTIFICATES; clean_env drops SSL_CERT_FILE and friends
    return clean_env(LEGO_CA_CERTIFICATES=server.ca_file, HOME=str(server.caroot.parent))


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_lego_obtains_and_renews(ported, tmp_path, challenge):
    lego = require_tool("lego", "the ACME client tests")
    name = f"lego-{challenge.split('-')[0]}.localhost"
    store = tmp_path / "lego"

    def solver(http_port: int, tls_port: int) -> list[str]:
        if challenge == "http-01":
            return ["--http", "--http.port", f"127.0.0.1:{http_port}"]
        return ["--tls", "--tls.port", f"127.0.0.1:{tls_port}"]

    def obtain(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run([lego, "--path", str(store), "--server", server.directory, "--accept-tos", "--email",
                    "dev@example.com", "--domains", name, *solver(http_port, tls_port), "run"],
                   lego_env(server), tmp_path)

    acme = ported()
    result = acme.client(obtain)
    assert result.returncode == 0, result.stdout
    server = acme.server
    cert_file, key_file = store / "certificates" / f"{name}.crt", store / "certificates" / f"{name}.key"
    first = check_served(cert_file, key_file, server.ca_file, name, tmp_path)

    # renewal: lego renews when fewer than --days days are left; 3650 means now
    def renew(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run([lego, "--path", str(store), "--server", server.directory, "--accept-tos", "--email",
                    "dev@example.com", "--domains", name, *solver(http_port, tls_port), "renew", "--days", "3650", "--no-random-sleep"],
                   lego_env(server), tmp_path)

    result = acme.client(renew)
    assert result.returncode == 0, result.stdout
    assert "renew" in result.stdout.lower()
    second = check_served(cert_file, key_file, server.ca_file, name, tmp_path)
    assert second.serial_number != first.serial_number


def test_lego_out_of_constraint_name_is_refused(ported, tmp_path):
    lego = require_tool("lego", "the ACME client tests")

    def obtain(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run([lego, "--path", str(tmp_path / "lego"), "--server", server.directory, "--accept-tos",
                    "--email", "dev@example.com", "--domains", "www.example.com", "--http", "--http.port",
                    f"127.0.0.1:{http_port}", "run"], lego_env(server), tmp_path)

    result = ported().client(obtain)
    assert result.returncode != 0
    assert "rejectedIdentifier" in result.stdout
    assert "www.example.com" in result.stdout and "devcert ca init --force --permit www.example.com" in result.stdout


def test_lego_account_survives_a_restart(ported, caroot, tmp_path):
    """The account made before a restart is the one the next order uses (lego keeps its URL)."""
    lego = require_tool("lego", "the ACME client tests")
    store = tmp_path / "lego"

    def register(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        # `lego run` with a name lego cannot get: the account is created, the order refused
        return run([lego, "--path", str(store), "--server", server.directory, "--accept-tos", "--email",
                    "dev@example.com", "--domains", "www.example.com", "--http", "--http.port",
                    f"127.0.0.1:{http_port}", "run"], lego_env(server), tmp_path)

    first = ported()
    result = first.client(register)
    port = first.server.info["port"]
    first.stop()
    accounts = list(store.glob("accounts/*/dev@example.com/account.json"))
    assert len(accounts) == 1, result.stdout
    account_url = json.loads(accounts[0].read_text())["registration"]["uri"]

    def obtain(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run([lego, "--path", str(store), "--server", server.directory, "--accept-tos", "--email",
                    "dev@example.com", "--domains", "restart.localhost", "--http", "--http.port",
                    f"127.0.0.1:{http_port}", "run"], lego_env(server), tmp_path)

    second = ported("--port", str(port))  # restarted as a user would: the same directory URL
    result = second.client(obtain)
    server = second.server
    server.stop()
    assert result.returncode == 0, result.stdout
    assert "new account" not in server.stderr  # the account of the first run was used
    assert account_url.rsplit("/", 1)[1] in Path(caroot / "acme" / "state.sqlite3").read_bytes().decode("latin-1")
    check_served(store / "certificates" / "restart.localhost.crt", store / "certificates" / "restart.localhost.key",
                 server.ca_file, "restart.localhost", tmp_path)


# --- certbot -------------------------------------------------------------------------------


def certbot_cmd(tmp: Path, *args: str) -> list[str]:
    exe = shutil.which("certbot")
    if exe is None:
        pytest.fail("certbot is not installed in the test environment (pyproject's test extra installs it)")
    return [exe, *args, "--config-dir", str(tmp / "cb/config"), "--work-dir", str(tmp / "cb/work"),
            "--logs-dir", str(tmp / "cb/logs"), "--non-interactive"]


def test_certbot_standalone_obtains_renews_and_revokes(ported, caroot, tmp_path):
    name = "certbot.localhost"

    def env(server: AcmeProcess) -> dict[str, str]:
        return clean_env(REQUESTS_CA_BUNDLE=server.ca_file)  # requests (certbot) trusts only this

    def obtain(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run(certbot_cmd(tmp_path, "certonly", "--standalone", "--http-01-port", str(http_port),
                               "--http-01-address", "127.0.0.1", "--server", server.directory, "--agree-tos",
                               "--register-unsafely-without-email", "-d", name), env(server), tmp_path)

    acme = ported()
    result = acme.client(obtain)
    assert result.returncode == 0, result.stdout
    server = acme.server
    live = tmp_path / "cb/config/live" / name
    first = check_served(live / "fullchain.pem", live / "privkey.pem", server.ca_file, name, tmp_path)

    def renew(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        # the renewal config remembers the old directory URL and port: give both again
        return run(certbot_cmd(tmp_path, "renew", "--force-renewal", "--no-random-sleep-on-renew",
                               "--server", server.directory, "--http-01-port", str(http_port),
                               "--http-01-address", "127.0.0.1"), env(server), tmp_path)

    result = acme.client(renew)
    assert result.returncode == 0, result.stdout
    server = acme.server
    second = check_served(live / "fullchain.pem", live / "privkey.pem", server.ca_file, name, tmp_path)
    assert second.serial_number != first.serial_number

    def revoke(server: AcmeProcess, http_port: int, tls_port: int) -> subprocess.CompletedProcess[str]:
        return run(certbot_cmd(tmp_path, "revoke", "--cert-name", name, "--server", server.directory,
                               "--no-delete-after-revoke", "--reason", "keycompromise"), env(server), tmp_path)

    result = acme.client(revoke)
    assert result.returncode == 0, result.stdout
    server = acme.server
    server.stop()
    assert f"revoked {format(second.serial_number, 'x')}" in server.stderr
    db = sqlite3.connect(caroot / "acme" / "state.sqlite3")
    assert db.execute("SELECT revoked, reason FROM certs WHERE serial = ?",
                      (format(second.serial_number, "x"),)).fetchone() == (1, 1)


# --- dehydrated ----------------------------------------------------------------------------


class Webroot:
    """A plain static web server on 127.0.0.1 for a webroot (what nginx would be in production)."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietFiles, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_dehydrated_webroot_obtains_and_renews(caroot, tmp_path):
    dehydrated = require_tool("dehydrated", "the ACME client tests")
    name = "dehydrated.localhost"
    root = tmp_path / "www"
    wellknown = root / ".well-known" / "acme-challenge"
    wellknown.mkdir(parents=True)
    web = Webroot(root)
    try:
        with_server = AcmeProcess(caroot, "--http-port", str(web.port))
        try:
            (tmp_path / "dh").mkdir()
            config = tmp_path / "dehydrated.conf"
            config.write_text(f'CA="{with_server.directory}"\nBASEDIR="{tmp_path / "dh"}"\n'
                              f'WELLKNOWN="{wellknown}"\nCHALLENGETYPE="http-01"\nKEY_ALGO=secp384r1\n'
                              f'CONTACT_EMAIL=dev@example.com\n')
            # dehydrated talks through curl: CURL_CA_BUNDLE makes curl trust only the devcert CA
            env = clean_env(CURL_CA_BUNDLE=with_server.ca_file)
            reg = run([dehydrated, "-f", str(config), "--register", "--accept-terms"], env, tmp_path)
            assert reg.returncode == 0, reg.stdout
            got = run([dehydrated, "-f", str(config), "-c", "-d", name], env, tmp_path)
            assert got.returncode == 0, got.stdout
            certs = tmp_path / "dh" / "certs" / name
            first = check_served(certs / "fullchain.pem", certs / "privkey.pem", with_server.ca_file, name, tmp_path)
            again = run([dehydrated, "-f", str(config), "-c", "-d", name, "--force"], env, tmp_path)
            assert again.returncode == 0, again.stdout
            second = check_served(certs / "fullchain.pem", certs / "privkey.pem", with_server.ca_file, name,
                                  tmp_path)
            assert second.serial_number != first.serial_number
        finally:
            with_server.stop()
    finally:
        web.close()


# --- Caddy ---------------------------------------------------------------------------------


def _caddy_until(done: Callable[[], bool], args: list[str], caddy: str, tmp_path: Path, *, what: str) -> str:
    """Run ``caddy run ARGS`` (its HOME and XDG folders in tmp_path) until ``done()`` or Caddy
    exits, for at most 120 units; end it by its PID and return what it printed."""
    env = clean_env(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
                    XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    proc = subprocess.Popen([caddy, "run", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for(lambda: proc.poll() is not None or done(), what=what, timeout=120 * UNIT)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30 * UNIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return out


def test_caddy_obtains_a_certificate_and_serves_it(caroot, tmp_path):
    caddy = require_tool("caddy", "the ACME client tests")
    name = "caddy.localhost"

    for _ in range(3):
        http_port, https_port = candidate_port(), candidate_port()
        server = AcmeProcess(caroot, "--http-port", str(http_port), "--tls-port", str(https_port))
        caddyfile = tmp_path / "Caddyfile"
        caddyfile.write_text(
            "{\n  admin off\n  skip_install_trust\n"
            f"  http_port {http_port}\n  https_port {https_port}\n"
            f"  storage file_system {tmp_path / 'caddy-data'}\n"
            "}\n"
            f"{name} {{\n  bind 127.0.0.1\n  tls {{\n    issuer acme {{\n      dir {server.directory}\n"
            f"      trusted_roots {server.ca_file}\n    }}\n  }}\n  respond \"hello from caddy\"\n}}\n")
        peer: dict[str, Any] = {}

        def served() -> bool:
            try:
                peer.update(connect(https_port, server.ca_file, name))
                return True
            except (OSError, Exception):
                return False

        try:
            out = _caddy_until(served, ["--config", str(caddyfile), "--adapter", "caddyfile"], caddy, tmp_path,
                               what="Caddy to serve a certificate from devcert acme")
        finally:
            server.stop()
        if not peer and any(p in out for p in PORT_TAKEN):
            continue
        break
    assert peer, out[-3000:]
    assert san_names(peer) == [name]
    assert "issued" in server.stderr and name in server.stderr


def test_caddy_renews_on_its_own(caroot, tmp_path):
    """Caddy renews when less than ``renewal_window_ratio`` of a certificate's life is left: with
    1-day certificates (backdated an hour, so 96% of their life is left at issue) and a ratio
    of 0.99, it renews at its next scan (``renew_interval``), here every second. tls-alpn-01 on
    Caddy's https port, the port devcert acme is told with --tls-port."""
    caddy = require_tool("caddy", "the ACME client tests")
    name = "caddy-renew.localhost"
    https_port = candidate_port()
    server = AcmeProcess(caroot, "--tls-port", str(https_port), "--days", "1")
    config = {
        "admin": {"disabled": True},
        "storage": {"module": "file_system", "root": str(tmp_path / "caddy-data")},
        "apps": {
            "http": {"http_port": candidate_port(), "https_port": https_port, "servers": {"site": {
                "listen": [f"127.0.0.1:{https_port}"],
                "routes": [{"match": [{"host": [name]}],
                            "handle": [{"handler": "static_response", "body": "hello"}]}],
                "automatic_https": {"disable_redirects": True}}}},
            "tls": {"automation": {"renew_interval": "1s", "policies": [{
                "subjects": [name], "renewal_window_ratio": 0.99,
                "issuers": [{"module": "acme", "ca": server.directory, "trusted_roots_pem_files": [server.ca_file],
                             "challenges": {"http": {"disabled": True}}}]}]}},
        },
    }
    config_file = tmp_path / "caddy.json"
    config_file.write_text(json.dumps(config))
    serials: list[str] = []

    def new_serial() -> bool:
        try:
            peer = connect(https_port, server.ca_file, name)  # trusts only the devcert CA
        except Exception:
            return False
        if not serials or peer["serialNumber"] != serials[-1]:
            serials.append(peer["serialNumber"])
        return len(serials) >= 2

    try:
        out = _caddy_until(new_serial, ["--config", str(config_file)], caddy, tmp_path,
                           what="Caddy to obtain and then renew a certificate")
    finally:
        server.stop()
    assert len(serials) >= 2, out[-3000:]
    assert server.stderr.count(f"for {name}") >= 2
