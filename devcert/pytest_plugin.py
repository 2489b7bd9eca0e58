"""pytest fixtures for TLS tests, loaded automatically once devcert is installed (``pytest11``).

Like trustme, but from the tool that also makes your development certificates::

    import socket, ssl, threading

    def test_handshake(devcert_server_ssl_context, devcert_client_ssl_context):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]

            def serve():
                conn, _ = listener.accept()
                with devcert_server_ssl_context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")

            threading.Thread(target=serve, daemon=True).start()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with devcert_client_ssl_context.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.recv(5) == b"hello"

Fixtures:

- ``devcert_ca``: a :class:`devcert.LocalCA` made in memory once per session (per worker
  under pytest-xdist). It is never written to CAROOT and no trust store ever sees it, so,
  unlike the CA in CAROOT, it has no name constraints: tests may use any name
  (``api.example.com``, ``*.corp.example.org``), as with trustme.
- ``devcert_leaf``: a factory, ``devcert_leaf("app.test", client=False, key_type="ecdsa")``
  returns a :class:`devcert.Leaf` (cached per session for the same arguments).
- ``devcert_server_ssl_context``: a server ``ssl.SSLContext`` presenting a certificate for
  ``localhost``, ``127.0.0.1`` and ``::1``. A fresh context per test, so tests may change it.
- ``devcert_client_ssl_context``: a client ``ssl.SSLContext`` trusting ``devcert_ca`` only.
- ``devcert_ca_file``: the CA certificate as a PEM file (for ``requests``' ``verify=``,
  ``SSL_CERT_FILE`` of a subprocess, ``curl --cacert``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devcert.names import DEFAULT_NAMES

if TYPE_CHECKING:
    from devcert import Leaf, LocalCA


@pytest.fixture(scope="session")
def devcert_ca() -> LocalCA:
    """An in-memory CA for this test session (never CAROOT, never a trust store).

    Unconstrained: its key never leaves this process and nothing trusts it outside the test,
    so the constraints that guard the CA in CAROOT would only get in the tests' way.
    """
    # Imported when a test asks for a certificate, not when pytest loads this plugin in every
    # session of every project that has devcert installed (~55 ms).
    from devcert import LocalCA

    return LocalCA.ephemeral(constraints=False)


@pytest.fixture(scope="session")
def devcert_leaf(devcert_ca: LocalCA) -> Callable[..., Leaf]:
    """Factory: ``devcert_leaf(*names, client=False, key_type="ecdsa", days=None) -> Leaf``."""
    cache: dict[tuple, Leaf] = {}  # type: ignore[type-arg]

    def make(*names: str, client: bool = False, key_type: str = "ecdsa", days: int | None = None) -> Leaf:
        if not names:
            names = DEFAULT_NAMES
        if not all(isinstance(n, str) for n in names):  # the CA says what is wrong with them
            return devcert_ca.issue(*names, client=client, key_type=key_type, days=days)
        key = (names, client, key_type, days)
        if key not in cache:
            cache[key] = devcert_ca.issue(*names, client=client, key_type=key_type, days=days)
        return cache[key]

    return make


@pytest.fixture
def devcert_server_ssl_context(devcert_leaf: Callable[..., Leaf]) -> ssl.SSLContext:
    """A server context for localhost, 127.0.0.1 and ::1, signed by ``devcert_ca``."""
    return devcert_leaf(*DEFAULT_NAMES).server_context()


@pytest.fixture
def devcert_client_ssl_context(devcert_ca: LocalCA) -> ssl.SSLContext:
    """A client context that trusts ``devcert_ca`` and nothing else (hostname checking on)."""
    return devcert_ca.client_context()


@pytest.fixture(scope="session")
def devcert_ca_file(devcert_ca: LocalCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``devcert_ca``'s certificate as a PEM file in a session temporary folder."""
    path = tmp_path_factory.mktemp("devcert-ca") / "ca.pem"
    path.write_bytes(devcert_ca.cert_pem)
    return path
