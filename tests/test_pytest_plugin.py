"""The pytest plugin, used by a test suite run in a subprocess as a user's project would run it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import UNIT, clean_env

USER_TESTS = '''
import socket
import ssl
import threading

import pytest


def serve_once(ctx, listener):
    conn, _ = listener.accept()
    conn.settimeout(10)
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello " + tls.version().encode())
    except (OSError, ssl.SSLError):
        pass


def talk(server_ctx, client_ctx, host, server_hostname):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]
        t = threading.Thread(target=serve_once, args=(server_ctx, listener), daemon=True)
        t.start()
        with socket.create_connection((host, port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                data = tls.recv(64)
        t.join(10)
    return data


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_handshake(devcert_server_ssl_context, devcert_client_ssl_context, name):
    assert talk(devcert_server_ssl_context, devcert_client_ssl_context, "127.0.0.1", name).startswith(b"hello TLS")


def test_factory_leaf_other_name(devcert_leaf, devcert_client_ssl_context):
    leaf = devcert_leaf("app.test", "*.app.test")
    assert leaf is devcert_leaf("app.test", "*.app.test")
    assert talk(leaf.server_context(), devcert_client_ssl_context, "127.0.0.1", "api.app.test").startswith(b"hello")


def test_any_name_works_as_with_trustme(devcert_leaf, devcert_client_ssl_context):
    leaf = devcert_leaf("api.example.com")  # outside CAROOT's constraints; this CA has none
    assert talk(leaf.server_context(), devcert_client_ssl_context, "127.0.0.1", "api.example.com").startswith(b"hello")


def test_names_of_the_wrong_type_are_explained(devcert_leaf):
    from devcert.errors import InvalidNameError

    with pytest.raises(InvalidNameError, match="separate arguments"):
        devcert_leaf(["a.test", "b.test"])


def test_wrong_name_is_refused(devcert_leaf, devcert_client_ssl_context):
    leaf = devcert_leaf("app.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(leaf.server_context(), devcert_client_ssl_context, "127.0.0.1", "other.test")


def test_other_clients_do_not_trust_it(devcert_server_ssl_context):
    system = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(devcert_server_ssl_context, system, "127.0.0.1", "localhost")


def test_mtls(devcert_ca, devcert_leaf, devcert_client_ssl_context):
    server_ctx = devcert_leaf().server_context()
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=devcert_ca.cert_pem.decode())
    client_leaf = devcert_leaf("alice@app.test", client=True)
    import tempfile, os
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        client_leaf.write(cert, key)
        devcert_client_ssl_context.load_cert_chain(cert, key)
    assert talk(server_ctx, devcert_client_ssl_context, "127.0.0.1", "localhost").startswith(b"hello")


def test_ca_file(devcert_ca_file, devcert_ca):
    assert devcert_ca_file.read_bytes() == devcert_ca.cert_pem


def test_ca_lives_in_memory(devcert_ca):
    assert devcert_ca.path is None  # never written to CAROOT
'''


def run_user_suite(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    caroot = tmp_path / "must-stay-absent"
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), *extra,
         str(tmp_path / "test_user.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300 * UNIT,
    )
    assert not caroot.exists(), "the plugin's CA must never touch CAROOT"
    return result


def test_plugin_fixtures_in_a_user_suite(tmp_path: Path) -> None:
    result = run_user_suite(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout, result.stdout


def test_plugin_with_xdist(tmp_path: Path) -> None:
    if importlib.util.find_spec("xdist") is None:
        pytest.skip("pytest-xdist is not installed")
    result = run_user_suite(tmp_path, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout
