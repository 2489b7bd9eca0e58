"""The certificate a server presents: a managed leaf under CAROOT/leaves, and its TLS context."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

from ..ca import CERT_FILE, LocalCA, caroot
from ..issue import Ensured, ensure_leaf, managed_leaf_paths
from ..names import DEFAULT_NAMES, parse_names


def ensure_certificate(names: Iterable[str] = DEFAULT_NAMES, ca: LocalCA | None = None) -> tuple[LocalCA, Ensured]:
    """The CA (created on first need) and a managed leaf for ``names`` under CAROOT/leaves.

    The leaf is reissued when missing, expired, near expiry, or not signed by this CA.
    Returns ``(ca, ensured)`` with ``ensured.cert_path``, ``ensured.key_path``, ``ensured.action``.
    """
    parsed = parse_names(list(names))
    if ca is None:
        ca = LocalCA.load_or_create()
    cert_path, key_path = managed_leaf_paths(ca, parsed)
    return ca, ensure_leaf(ca, parsed, cert_path, key_path)


def server_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    """A TLS server context for the leaf (TLS 1.2+, HTTP/1.1 over ALPN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def upstream_context() -> ssl.SSLContext:
    """The TLS context for a ``wss://`` / ``https://`` upstream: the system's trust plus the
    local CA, since such an upstream is most often another server with a devcert certificate."""
    ctx = ssl.create_default_context()
    ca_file = caroot() / CERT_FILE
    if ca_file.is_file():
        ctx.load_verify_locations(cafile=str(ca_file))
    return ctx
