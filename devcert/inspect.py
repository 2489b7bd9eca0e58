"""``devcert inspect``: what a certificate file or a live TLS server presents, and whether it chains here.

For a file: each certificate in it (PEM, several allowed, or DER). For ``HOST:PORT``: the
chain the server sent, fetched with verification off so that a broken chain can still be
shown, then a second, verifying handshake against this machine's local CA alone, whose
result is reported as it is (ok, or the verifier's reason).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from . import certs
from .errors import DevcertError, UsageError
from .keys import describe
from .keyscan import detect
from .names import is_ip_literal
from .safety import read_regular

if TYPE_CHECKING:
    from .ca import LocalCA

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
TIMEOUT = 10.0


@contextlib.contextmanager
def _quiet_parsing() -> Iterator[None]:
    """Silence cryptography's deprecation warnings while reading certificates others made.

    inspect shows whatever a file or server holds, public roots included, and some of those
    break RFC 5280 (the system and certifi bundles, so CAROOT/ca-bundle.pem, hold old Go Daddy,
    Starfield and SECOM roots whose serial number is 0). cryptography warns about each as its
    fields are parsed, raw Python warning lines on the user's terminal; the certificate is
    still reported as it is.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM blocks, or one DER certificate)."""
    blocks = _PEM_CERT.findall(data)
    if blocks:
        try:
            return [x509.load_pem_x509_certificate(b) for b in blocks]
        except ValueError as err:
            raise DevcertError(f"{source}: a PEM certificate in it is damaged: {err}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    kind = detect(data)
    if kind:
        raise UsageError(f"{source} holds a private key ({kind}), not a certificate; inspect the certificate file instead")
    raise UsageError(f"{source} holds no certificate (neither PEM nor DER)")


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = []
    for g in san:
        kind = {"DNSName": "DNS", "IPAddress": "IP", "RFC822Name": "email",
                "UniformResourceIdentifier": "URI"}.get(type(g).__name__, type(g).__name__)
        out.append(f"{kind}:{g.value}")
    return out


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:
        return False


def describe_cert(cert: x509.Certificate, ca: LocalCA | None) -> dict[str, Any]:
    now = certs.now()
    try:
        ekus = [oid._name for oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        ekus = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "names": _names(cert),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "days_left": certs.days_left(cert.not_valid_after_utc, now),
        "expired": certs.expired(cert.not_valid_after_utc, now),
        "key": describe(cert.public_key()),  # type: ignore[arg-type]
        "extended_key_usage": ekus,
        "is_ca": is_ca,
        "sha256": certs.sha256(cert),
        "is_local_ca": ca is not None and cert == ca.cert,
        "signed_by_local_ca": ca is not None and _issued_by(cert, ca.cert),
    }


def _verdict(chain: list[x509.Certificate], ca: LocalCA | None) -> tuple[bool, str]:
    if ca is None:
        return False, "there is no local CA on this machine to check against"
    leaf = chain[0]
    if _issued_by(leaf, ca.cert):
        if certs.expired(leaf.not_valid_after_utc):
            return False, "signed by this machine's local CA, but expired"
        return True, f"signed by this machine's local CA ({ca.common_name})"
    if leaf == ca.cert:
        return True, "this is the local CA certificate itself"
    if leaf.issuer == ca.cert.subject:
        return False, "names this CA as issuer, but its signature does not verify (another CA with the same name?)"
    return False, f"not signed by this machine's local CA (issuer: {leaf.issuer.rfc4514_string()})"


@_quiet_parsing()
def inspect_file(path: str | Path, ca: LocalCA | None) -> dict[str, Any]:
    path = Path(path)
    if not os.path.lexists(path):
        raise UsageError(f"{path} does not exist (for a server, give HOST:PORT)")
    data = read_regular(path, "the certificate file")  # a FIFO or /dev/zero is refused, not read
    chain = load_certificates(data, str(path))
    ok, why = _verdict(chain, ca)
    return {
        "source": str(path.absolute()),
        "kind": "file",
        "certificates": [describe_cert(c, ca) for c in chain],
        "chains_to_local_ca": ok,
        "verdict": why,
        "ca_sha256": ca.fingerprint if ca else None,
    }


def parse_target(target: str) -> tuple[str, int] | None:
    """``(host, port)`` if ``target`` looks like HOST:PORT or [IPv6]:PORT, else None."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.%a-z]+)\]:(\d{1,5})", target) or re.fullmatch(r"([^:/\\\s]+):(\d{1,5})", target)
    if not m:
        return None
    port = int(m.group(2))
    if not 0 < port < 65536:
        raise UsageError(f"{target}: port {port} is out of range")
    return m.group(1), port


def _fetch_chain(host: str, port: int, timeout: float) -> tuple[list[x509.Certificate], str, str]:
    """The chain the server sent (verification off), the TLS version and cipher."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sni = None if is_ip_literal(host) else host
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                chain_der: list[bytes] = []
                getter = getattr(tls, "get_unverified_chain", None)  # Python 3.13+
                if getter is None:
                    getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)  # 3.10-3.12, private
                if getter is not None:
                    try:
                        for item in getter() or []:
                            chain_der.append(item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
                    except Exception:
                        chain_der = []
                if not chain_der:
                    leaf = tls.getpeercert(binary_form=True)
                    chain_der = [leaf] if leaf else []
                version, cipher = tls.version() or "", (tls.cipher() or ("",))[0]
    except (OSError, ssl.SSLError) as err:
        raise DevcertError(f"cannot complete a TLS handshake with {host}:{port}: {err}") from None
    if not chain_der:
        raise DevcertError(f"{host}:{port} sent no certificate")
    return [x509.load_der_x509_certificate(d) for d in chain_der], version, cipher




def _verify_handshake(host: str, port: int, ca: LocalCA, timeout: float) -> tuple[bool, str]:
    """A real verifying handshake that trusts only the local CA; (ok, message)."""
    ctx = ca.client_context()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host):
                return True, f"verified against this machine's local CA for {host!r}"
    except ssl.SSLCertVerificationError as err:
        return False, f"verification failed: {err.verify_message or err}"
    except (OSError, ssl.SSLError) as err:
        return False, f"handshake failed: {err}"


@_quiet_parsing()
def inspect_host(host: str, port: int, ca: LocalCA | None, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    chain, version, cipher = _fetch_chain(host, port, timeout)
    if ca is None:
        ok, why = False, "there is no local CA on this machine to check against"
    else:
        ok, why = _verify_handshake(host, port, ca, timeout)
    return {
        "source": f"{host}:{port}",
        "kind": "server",
        "tls_version": version,
        "cipher": cipher,
        "certificates": [describe_cert(c, ca) for c in chain],
        "chains_to_local_ca": ok,
        "verdict": why,
        "ca_sha256": ca.fingerprint if ca else None,
    }


def inspect(target: str, ca: LocalCA | None) -> dict[str, Any]:
    """A file path, or HOST:PORT when no such file exists and it looks like one."""
    if Path(target).exists():
        return inspect_file(target, ca)
    hp = parse_target(target)
    if hp is not None:
        return inspect_host(*hp, ca)
    return inspect_file(target, ca)
