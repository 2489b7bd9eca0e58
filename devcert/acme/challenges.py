"""Validating http-01 (RFC 8555 8.3), tls-alpn-01 (RFC 8737) and dns-01 (RFC 8555 8.4) for real.

Names resolve through the system resolver, except ``localhost`` and ``*.localhost``, which
always mean loopback (RFC 6761 6.3) whatever /etc/hosts says: that is what lets a client on
this machine prove ``app.localhost`` without touching DNS. Every network step is bounded by
``timeout`` and every read by a size, so a hostile or stuck challenge server cannot hold the
ACME server. Each function returns None when the challenge is met, else the problem (type,
detail) to record on the challenge.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import ssl
from typing import Any, NamedTuple

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.resolver
import josepy
from cryptography import x509

#: RFC 8737 3: the acmeIdentifier extension of the tls-alpn-01 certificate.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ALPN_PROTOCOL = "acme-tls/1"
#: A key authorization is ~87 characters; anything much longer is not one.
MAX_HTTP_BODY = 4096


class Settings(NamedTuple):
    """Where challenges are fetched: the ports, the DNS server (None: the system's), the time limit."""

    http_port: int = 80
    tls_port: int = 443
    dns_server: tuple[str, int] | None = None
    timeout: float = 10.0


Problem = tuple[str, str]


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def dns_txt_value(key_authz: str) -> str:
    return josepy.b64encode(hashlib.sha256(key_authz.encode()).digest()).decode()


def is_loopback_name(name: str) -> bool:
    name = name.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


async def addresses(name: str, port: int) -> list[str]:
    """The addresses to try for ``name``: loopback for ``*.localhost``, the system resolver's otherwise."""
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    if is_loopback_name(name):
        return ["127.0.0.1", "::1"]
    infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        if info[4][0] not in seen:
            seen.append(info[4][0])
    return seen


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def http_01(session: aiohttp.ClientSession, kind: str, name: str, token: str, key_authz: str,
                  settings: Settings) -> Problem | None:
    """GET http://NAME:<http-port>/.well-known/acme-challenge/TOKEN; the body must be the key authorization."""
    try:
        found = await addresses(name, settings.http_port)
    except OSError as err:
        return "dns", f"{name} does not resolve: {err}"
    host_header = name if kind == "dns" else _host(name)
    if settings.http_port != 80:
        host_header += f":{settings.http_port}"
    path = f"/.well-known/acme-challenge/{token}"
    last = ""
    for address in found:
        url = f"http://{_host(address)}:{settings.http_port}{path}"
        try:
            timeout = aiohttp.ClientTimeout(total=settings.timeout)
            async with session.get(url, headers={"Host": host_header}, allow_redirects=False, timeout=timeout) as resp:
                body = await resp.content.read(MAX_HTTP_BODY + 1)
                if resp.status != 200:
                    return "unauthorized", f"http://{host_header}{path} answered {resp.status}, not 200"
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            last = f"cannot fetch http://{host_header}{path} from {address}: {err or type(err).__name__}"
            continue
        if body.strip() != key_authz.encode():
            return "unauthorized", (f"http://{host_header}{path} does not hold the key authorization "
                                    f"(got {body[:100]!r})")
        return None
    return "connection", last or f"{name} has no address"


def _reverse_name(ip: str) -> str:
    """RFC 8738 6: the SNI of a tls-alpn-01 check for an IP identifier is its reverse-DNS name."""
    return ipaddress.ip_address(ip).reverse_pointer


def check_alpn_certificate(der: bytes, kind: str, name: str, key_authz: str) -> str | None:
    """Why the certificate a tls-alpn-01 server presented does not prove ``name``, or None."""
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return "the certificate has no readable subjectAltName"
    want: x509.GeneralName = x509.DNSName(name) if kind == "dns" else x509.IPAddress(ipaddress.ip_address(name))
    if list(san) != [want]:
        return f"the certificate's subjectAltName must be exactly {name}, not {[str(g.value) for g in san]}"
    try:
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound:
        return "the certificate has no acmeIdentifier extension"
    if not ext.critical:
        return "the acmeIdentifier extension must be critical"
    expected = b"\x04\x20" + hashlib.sha256(key_authz.encode()).digest()  # DER OCTET STRING (32 bytes)
    if getattr(ext.value, "value", None) != expected:
        return "the acmeIdentifier extension does not hold the SHA-256 of the key authorization"
    return None


async def tls_alpn_01(kind: str, name: str, key_authz: str, settings: Settings) -> Problem | None:
    """Connect to NAME:<tls-port> with ALPN acme-tls/1 and SNI NAME; check the certificate presented."""
    try:
        found = await addresses(name, settings.tls_port)
    except OSError as err:
        return "dns", f"{name} does not resolve: {err}"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The certificate is self-signed by design (RFC 8737 3): what is checked is its content.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ALPN_PROTOCOL])
    sni = name if kind == "dns" else _reverse_name(name)
    last = ""
    for address in found:
        writer = None
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, settings.tls_port, ssl=ctx, server_hostname=sni),
                settings.timeout)
            tls: Any = writer.get_extra_info("ssl_object")
            if tls.selected_alpn_protocol() != ALPN_PROTOCOL:
                return "unauthorized", f"{name}:{settings.tls_port} did not negotiate ALPN {ALPN_PROTOCOL}"
            der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as err:
            last = f"cannot connect to {name}:{settings.tls_port} at {address} with TLS: {err or type(err).__name__}"
            continue
        finally:
            if writer is not None:
                writer.close()
        why = check_alpn_certificate(der, kind, name, key_authz)
        return None if why is None else ("unauthorized", f"{name}:{settings.tls_port}: {why}")
    return "connection", last or f"{name} has no address"


async def dns_01(name: str, key_authz: str, settings: Settings) -> Problem | None:
    """A TXT record of _acme-challenge.NAME must hold the base64url SHA-256 of the key authorization."""
    resolver = dns.asyncresolver.Resolver(configure=settings.dns_server is None)
    if settings.dns_server is not None:
        resolver.nameservers = [settings.dns_server[0]]
        resolver.port = settings.dns_server[1]
    resolver.lifetime = settings.timeout
    query = f"_acme-challenge.{name}"
    try:
        answer = await resolver.resolve(query, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return "dns", f"{query} has no TXT record"
    except dns.exception.DNSException as err:
        return "dns", f"cannot look up TXT {query}: {err}"
    want = dns_txt_value(key_authz).encode()
    values = [b"".join(rdata.strings) for rdata in answer]
    if want not in values:
        return "unauthorized", f"no TXT record of {query} holds the expected value (found {len(values)} other)"
    return None
