"""The real OS stores of macOS and Windows: install, the OS's own verifier or a handshake trusts, uninstall.

These change the machine's own store, so they run only on the CI runners made for it
(.github/workflows/test.yml sets DEVCERT_REAL_OS_STORES=1 on its macOS and Windows jobs) and
never on a developer's machine; on Linux the system store is tested in the trust sandbox
(tests/trust/test_sandbox.py) instead. Not yet run: no Mac or Windows machine is reachable
from where devcert is developed, and the README's "not tested on a real OS" note stays until
the workflow has passed.
"""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devcert.ca import LocalCA
from devcert.trust.base import Runner
from devcert.trust.macos import MacOSKeychainStore
from devcert.trust.windows import WindowsRootStore

REAL = os.environ.get("DEVCERT_REAL_OS_STORES") == "1"
#: Why these tests do not run elsewhere, written next to each skip.
NOT_HERE = "changes this machine's own trust store: runs only where DEVCERT_REAL_OS_STORES=1 (the CI workflow's runners)"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _https_server(context: ssl.SSLContext) -> tuple[http.server.HTTPServer, threading.Thread]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.skipif(not REAL, reason=NOT_HERE)
@pytest.mark.skipif(sys.platform != "darwin", reason="the macOS System keychain exists only on macOS")
def test_macos_keychain_trusts_after_install_and_not_after_uninstall(tmp_path: Path) -> None:
    """``security verify-cert`` is Security.framework's own evaluation (what Safari and curl use).

    Adding admin trust settings (``add-trusted-cert -d``) asks for authorization in a dialog
    since macOS 11; the workflow allows it without one on its runner first
    (``security authorizationdb write com.apple.trust-settings.admin allow``).
    """
    ca = LocalCA.create(tmp_path / "caroot")
    leaf = ca.issue("localhost", "127.0.0.1")
    leaf_file = tmp_path / "leaf.pem"
    leaf_file.write_bytes(leaf.cert_pem)
    verify = ["/usr/bin/security", "verify-cert", "-c", str(leaf_file), "-p", "ssl", "-s", "localhost", "-L"]
    store = MacOSKeychainStore()
    assert store.available()
    assert subprocess.run(verify, capture_output=True, timeout=60).returncode != 0
    store.install(ca, Runner())
    try:
        assert store.is_installed(ca)
        result = subprocess.run(verify, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        store.uninstall(ca, Runner())
    assert not store.is_installed(ca)
    assert subprocess.run(verify, capture_output=True, timeout=60).returncode != 0


@pytest.mark.skipif(not REAL, reason=NOT_HERE)
@pytest.mark.skipif(sys.platform != "win32", reason="the Windows Root store exists only on Windows")
def test_windows_root_store_trusts_after_install_and_not_after_uninstall(tmp_path: Path) -> None:
    """Python's default context on Windows loads the user's ROOT store (ssl.enum_certificates):
    a real handshake with it is the check. If Windows' confirmation dialog for a user root
    cannot be shown (no desktop), certutil fails or times out and so does this test: that is
    an answer the workflow is there to get."""
    ca = LocalCA.create(tmp_path / "caroot")
    leaf = ca.issue("localhost", "127.0.0.1")
    server, thread = _https_server(leaf.server_context())
    url = f"https://localhost:{server.server_address[1]}/"

    def trusted() -> bool:
        try:
            with urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=20) as response:
                return response.read() == b"ok"
        except urllib.error.URLError as err:
            assert isinstance(err.reason, ssl.SSLCertVerificationError), err
            return False

    store = WindowsRootStore()
    try:
        assert store.available()
        assert not trusted()
        store.install(ca, Runner())
        try:
            assert store.is_installed(ca)
            assert trusted()
        finally:
            store.uninstall(ca, Runner())
        assert not store.is_installed(ca)
        assert not trusted()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
