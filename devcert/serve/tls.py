"""The certificates a server presents: a managed leaf under CAROOT/leaves and its TLS context;
per name, chosen at the handshake (:class:`Certificates`); and the trust for upstreams."""

from __future__ import annotations

import datetime as dt
import ssl
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography import x509

from ..ca import CERT_FILE, LocalCA, caroot
from ..errors import UsageError
from ..issue import RENEW_BEFORE_DAYS, Ensured, ensure_leaf, issue_leaf, managed_leaf_paths
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


#: Certificates kept in memory at once (per name); the least recently used goes first.
MAX_CACHED = 256


class Certificates:
    """Each name's certificate, chosen at the TLS handshake from the name the client sends (SNI).

    A name some route serves gets a managed leaf under CAROOT/leaves for the name
    ``managed(name)`` gives: the name itself for a route of that name, the route's wildcard
    (``*.app.localhost``) for a name one label under a wildcard route. It is issued the first
    time the name is seen and reissued by :func:`ensure_leaf` once it is within its renewal
    margin (checked again whenever the cached one gets that close). Any other name the CA may
    sign (within its name constraints: an unrouted name, or one deeper under a wildcard route,
    which a wildcard certificate does not cover) gets a leaf made in memory only: a client
    making up names can fill neither CAROOT nor memory (the cache is bounded). A name in ``default_names``, a name the CA may not sign and a
    client without SNI get the server's default certificate. At most :data:`MAX_CACHED`
    contexts are kept.

    Issuing runs inside OpenSSL's SNI callback, on the event loop: a few milliseconds (an ECDSA
    key, a signature, an fsync'ed write) once per name, which no client waits on again.
    """

    def __init__(self, ca: LocalCA, managed: Callable[[str], str | None], default_names: Iterable[str] = (),
                 log: Callable[[str, str], None] | None = None) -> None:
        self.ca = ca
        self.managed = managed
        self.default_names = {n.lower() for n in default_names}
        self.log = log or (lambda level, message: None)
        self._cache: OrderedDict[str, tuple[ssl.SSLContext, dt.datetime]] = OrderedDict()
        #: the server name each TLS connection asked for, by its SSL object
        self.requested: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def install(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` (the server's default context) choose per name."""
        ctx.sni_callback = self._on_sni

    def server_name(self, ssl_object: Any) -> str | None:
        """The name the client of the connection of ``ssl_object`` sent at its handshake."""
        return self.requested.get(ssl_object) if ssl_object is not None else None

    def _on_sni(self, ssl_object: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        self.requested[ssl_object] = name
        try:
            chosen = self.context_for(name)
        except Exception as err:  # the handshake goes on with the default certificate
            self.log("error", f"cannot issue a certificate for {name}: {' '.join(str(err).split())}")
            chosen = None
        if chosen is not None:
            ssl_object.context = chosen
        return None

    def context_for(self, name: str) -> ssl.SSLContext | None:
        """The TLS context presenting ``name``'s certificate; None for the default one."""
        if name in self.default_names:
            return None
        cached = self._cache.get(name)
        now = dt.datetime.now(dt.timezone.utc)
        if cached is not None and now < cached[1] - dt.timedelta(days=RENEW_BEFORE_DAYS):
            self._cache.move_to_end(name)
            return cached[0]
        try:
            parsed = parse_names([name])
        except UsageError:
            return None  # not a name a certificate can carry
        if parsed[0].kind != "dns":
            return None
        constraints = self.ca.constraints
        if constraints is not None and not constraints.permits(parsed[0]):
            return None
        kept_as = self.managed(name)
        if kept_as is not None:
            _, ensured = ensure_certificate([kept_as], ca=self.ca)
            if ensured.action != "kept":
                self.log("info", f"{ensured.action.capitalize()} the certificate {ensured.cert_path} (for {kept_as})")
            ctx = server_context(ensured.cert_path, ensured.key_path)
            cert = x509.load_pem_x509_certificate(Path(ensured.cert_path).read_bytes())
            not_after = cert.not_valid_after_utc
        else:
            leaf = issue_leaf(self.ca, parsed)
            ctx = leaf.server_context()
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_alpn_protocols(["http/1.1"])
            not_after = leaf.not_after
        self._cache[name] = (ctx, not_after)
        self._cache.move_to_end(name)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return ctx
