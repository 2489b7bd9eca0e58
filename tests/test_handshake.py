"""Trust proven as a user would check it: real TLS handshakes with real clients.

A Python ``ssl`` server (tests.helpers.TLSServer) presents a devcert leaf on 127.0.0.1 / ::1
(port 0: the OS picks it); the client trusts only the devcert CA (``ca.client_context()``, which
sets VERIFY_X509_STRICT). Then the same with ``openssl verify`` / ``openssl s_client``. A
leaf forged with the CA key for a name outside the CA's name constraints must be refused by
both OpenSSL and Python ``ssl``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devcert import LocalCA
from devcert.issue import Leaf
from devcert.names import is_ip_literal
from tests.helpers import UNIT, clean_env, handshake, ipv6_loopback_works, require_tool, ssl_client, tls_roundtrip

@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


@pytest.fixture(scope="module")
def rsa_ca() -> LocalCA:
    return LocalCA.ephemeral("rsa")


def test_client_context_is_strict_and_trusts_only_this_ca(ca: LocalCA) -> None:
    ctx = ca.client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    cas = ctx.get_ca_certs()
    assert len(cas) == 1
    assert (("commonName", ca.common_name),) in cas[0]["subject"]


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "api.app.test"])
def test_handshake_dns_and_ip(ca: LocalCA, rsa_ca: LocalCA, key_type: str, server_hostname: str) -> None:
    the_ca = rsa_ca if key_type == "rsa" else ca
    leaf = the_ca.issue("localhost", "127.0.0.1", "::1", "*.app.test", key_type=key_type)
    data, trip = handshake(the_ca.client_context(), leaf.server_context(), server_hostname)
    assert data == b"hello"
    assert trip.error is None


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback on this machine")
def test_handshake_over_ipv6_loopback(ca: LocalCA) -> None:
    leaf = ca.issue("localhost", "::1")
    data, _ = handshake(ca.client_context(), leaf.server_context(), "::1", host="::1")
    assert data == b"hello"


def test_wildcard_covers_one_label_only(ca: LocalCA) -> None:
    leaf = ca.issue("*.app.test")
    data, _ = handshake(ca.client_context(), leaf.server_context(), "web.app.test")
    assert data == b"hello"
    for wrong in ("a.b.app.test", "app.test"):
        with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
            handshake(ca.client_context(), leaf.server_context(), wrong)


def test_client_trusting_another_ca_refuses(ca: LocalCA) -> None:
    """The control that makes the handshake tests mean something: a stranger CA fails."""
    leaf = ca.issue("localhost")
    other = LocalCA.ephemeral()
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(other.client_context(), leaf.server_context(), "localhost")


def test_name_not_in_certificate_refused(ca: LocalCA) -> None:
    leaf = ca.issue("localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        handshake(ca.client_context(), leaf.server_context(), "other.test")


def test_mutual_tls_with_client_certificate(ca: LocalCA, tmp_path: Path) -> None:
    server_leaf = ca.issue("localhost")
    client_leaf = ca.issue("alice@app.test", "client.app.test", client=True)
    server_ctx = server_leaf.server_context()
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=ca.cert_pem.decode())
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT

    client_ctx = ca.client_context()
    client_leaf.write(tmp_path / "c.pem", tmp_path / "c-key.pem")
    client_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "c-key.pem")
    data, trip = handshake(client_ctx, server_ctx, "localhost")
    assert data == b"hello"
    assert trip.peer_cert is not None
    assert ("email", "alice@app.test") in trip.peer_cert["subjectAltName"]


def test_server_refuses_client_cert_without_client_auth(ca: LocalCA, tmp_path: Path) -> None:
    """A leaf made without --client lacks clientAuth, so an mTLS server must refuse it."""
    server_leaf = ca.issue("localhost")
    not_client = ca.issue("client.app.test")
    server_ctx = server_leaf.server_context()
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=ca.cert_pem.decode())
    client_ctx = ca.client_context()
    not_client.write(tmp_path / "c.pem", tmp_path / "c-key.pem")
    client_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "c-key.pem")
    def client(port: int) -> object:
        try:
            return ssl_client(client_ctx, "localhost")(port)
        except (ssl.SSLError, ConnectionError) as err:  # TLS 1.3: the refusal comes after the client's handshake
            return err

    trip = tls_roundtrip(server_ctx, client)
    assert isinstance(trip.seen, (ssl.SSLError, ConnectionError)), trip.seen  # no answer reached the client
    assert isinstance(trip.error, ssl.SSLError)
    assert "unsuitable certificate purpose" in str(trip.error)


# -- a leaf the user made on disk with the CLI, served and checked by OpenSSL -------------------


def _openssl(*args: str, input: str | None = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("openssl"), *args], capture_output=True, text=True, input=input,
                          timeout=30 * UNIT, env=clean_env())


def test_openssl_verify_x509_strict(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    for names, key_type in ((("localhost", "127.0.0.1", "::1"), "ecdsa"), (("*.app.test",), "rsa"),
                            (("alice@app.test",), "ecdsa")):
        leaf = ca.issue(*names, key_type=key_type, client=True)
        leaf.write(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
        res = _openssl("verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", str(ca.cert_path),
                       str(tmp_path / "leaf.pem"))
        assert res.returncode == 0, res.stdout + res.stderr
        assert res.stdout.strip().endswith(": OK")
    # Control: another CA does not verify it.
    other = LocalCA.load_or_create(tmp_path / "other")
    res = _openssl("verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", str(other.cert_path),
                   str(tmp_path / "leaf.pem"))
    assert res.returncode != 0


def _s_client(port: int, ca_file: Path, name: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name_check = ["-verify_ip", name] if is_ip_literal(name) else ["-verify_hostname", name, "-servername", name]
    return _openssl("s_client", "-connect", connect, *name_check, "-verify_return_error", "-x509_strict",
                    "-no-CApath", "-no-CAstore", "-CAfile", str(ca_file), "-brief")




@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "web.app.test"])
def test_openssl_s_client(tmp_path: Path, name: str) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    leaf = ca.issue("localhost", "127.0.0.1", "::1", "*.app.test")
    res = tls_roundtrip(leaf.server_context(), lambda port: _s_client(port, ca.cert_path, name)).seen
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Verification: OK" in res.stdout + res.stderr


def test_openssl_s_client_refuses_wrong_ca(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    other = LocalCA.load_or_create(tmp_path / "other")
    leaf = ca.issue("localhost")
    res = tls_roundtrip(leaf.server_context(), lambda port: _s_client(port, other.cert_path, "localhost")).seen
    assert res.returncode != 0
    assert "unable to get local issuer certificate" in res.stdout + res.stderr


# -- name constraints: a leaf forged with the CA key for a real-world name is refused -------------


def forge_leaf(ca: LocalCA, general_names: list[x509.GeneralName]) -> Leaf:
    """A leaf signed with the CA's key directly, bypassing devcert's own constraint check."""
    assert ca.key is not None
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "forged")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(general_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Leaf(cert, key, [], ca.cert)


FORGED = [
    ("example.com", [x509.DNSName("example.com")]),
    ("www.google.com", [x509.DNSName("www.google.com")]),
    ("8.8.8.8", [x509.IPAddress(ipaddress.ip_address("8.8.8.8"))]),
    # One good name does not make a bad one acceptable.
    ("example.com", [x509.DNSName("localhost"), x509.DNSName("example.com")]),
    # A name that merely ends in a permitted label without the dot boundary.
    ("evilltest.com", [x509.DNSName("evilltest.com")]),
]


@pytest.mark.parametrize(("hostname", "sans"), FORGED, ids=[f"{h}-{len(s)}" for h, s in FORGED])
def test_forged_leaf_outside_constraints_refused(tmp_path: Path, hostname: str, sans: list) -> None:  # type: ignore[type-arg]
    # IP addresses are constrained only in the strict profile; DNS names in both.
    profile = "strict" if any(isinstance(g, x509.IPAddress) for g in sans) else "dns"
    ca = LocalCA.create(tmp_path / "ca", profile=profile)
    forged = forge_leaf(ca, sans)
    forged.write(tmp_path / "forged.pem", tmp_path / "forged-key.pem")

    res = _openssl("verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", str(ca.cert_path),
                   str(tmp_path / "forged.pem"))
    assert res.returncode != 0
    assert "permitted subtree violation" in res.stdout + res.stderr

    with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
        handshake(ca.client_context(), forged.server_context(), hostname)

    res = tls_roundtrip(forged.server_context(), lambda port: _s_client(port, ca.cert_path, hostname)).seen
    assert res.returncode != 0
    assert "permitted subtree violation" in res.stdout + res.stderr


def test_forged_leaf_inside_constraints_is_accepted(tmp_path: Path) -> None:
    """The control for the test above: the same forging path for an allowed name works."""
    ca = LocalCA.load_or_create(tmp_path / "ca")
    forged = forge_leaf(ca, [x509.DNSName("api.app.test"), x509.IPAddress(ipaddress.ip_address("10.1.2.3"))])
    forged.write(tmp_path / "ok.pem", tmp_path / "ok-key.pem")
    res = _openssl("verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", str(ca.cert_path),
                   str(tmp_path / "ok.pem"))
    assert res.returncode == 0, res.stdout + res.stderr
    data, _ = handshake(ca.client_context(), forged.server_context(), "api.app.test")
    assert data == b"hello"


def test_widened_ca_accepts_the_widened_names(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca", permit=["corp.example.dev", "100.64.0.0/10"], profile="strict")
    leaf = ca.issue("api.corp.example.dev", "100.64.1.2")
    for name in ("api.corp.example.dev", "100.64.1.2"):
        data, _ = handshake(ca.client_context(), leaf.server_context(), name)
        assert data == b"hello"
    forged = forge_leaf(ca, [x509.DNSName("example.dev")])
    with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
        handshake(ca.client_context(), forged.server_context(), "example.dev")


def test_unconstrained_ca_signs_anything(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca", constraints=False)
    leaf = ca.issue("example.com")
    data, _ = handshake(ca.client_context(), leaf.server_context(), "example.com")
    assert data == b"hello"


def test_self_signed_cert_is_trusted_by_itself_only(tmp_path: Path) -> None:
    from devcert.issue import issue_self_signed
    from devcert.names import parse_names

    leaf = issue_self_signed(parse_names(["localhost"]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=leaf.cert_pem.decode())
    data, _ = handshake(ctx, leaf.server_context(), "localhost")
    assert data == b"hello"
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(LocalCA.ephemeral().client_context(), leaf.server_context(), "localhost")
