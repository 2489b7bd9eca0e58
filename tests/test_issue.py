"""Leaf certificates: the profile (API) and every option of ``devcert create`` (real executable)."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID

from devcert import LocalCA, certs
from devcert.ca import CERT_FILE
from devcert.cli.messages import word
from devcert.errors import CSRError, InvalidNameError, NameNotPermittedError, UsageError
from devcert.issue import ensure_leaf, issue_leaf, issue_self_signed, leaf_problem, managed_leaf_paths
from devcert.names import parse_names
from tests.helpers import UNIT, clean_env, file_mode, handshake, one_error_line, require_tool, run_devcert


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


# -- the leaf profile (docs/ARCHITECTURE.md) ----------------------------------------------------------


def test_server_leaf_profile(ca: LocalCA) -> None:
    leaf = ca.issue("localhost", "127.0.0.1", "::1", "*.app.test")
    cert = leaf.cert
    cert.verify_directly_issued_by(ca.cert)
    assert cert.issuer == ca.cert.subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]

    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
    assert not ku.value.key_cert_sign
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert list(eku.value) == [EKU.SERVER_AUTH]
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost", "*.app.test"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())  # type: ignore[arg-type]
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca.cert, x509.SubjectKeyIdentifier).value.digest

    assert cert.serial_number > 0
    assert leaf.serial == format(cert.serial_number, "x")
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert span == dt.timedelta(days=820)
    assert cert.not_valid_before_utc < dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)
    assert leaf.not_after == cert.not_valid_after_utc
    assert leaf.sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert leaf.warnings and "one label" in leaf.warnings[0]


def test_serials_are_random(ca: LocalCA) -> None:
    serials = {ca.issue("localhost").cert.serial_number for _ in range(5)}
    assert len(serials) == 5
    assert all(s.bit_length() > 64 for s in serials)


def test_client_email_uri_and_rsa_profiles(ca: LocalCA) -> None:
    client = ca.issue("client.app.test", client=True).cert
    assert set(ext(client, x509.ExtendedKeyUsage).value) == {EKU.SERVER_AUTH, EKU.CLIENT_AUTH}
    email = ca.issue("alice@app.test").cert
    assert list(ext(email, x509.ExtendedKeyUsage).value) == [EKU.EMAIL_PROTECTION]
    assert ext(email, x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name) == ["alice@app.test"]
    uri = ca.issue("spiffe://app.test/api").cert
    assert ext(uri, x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://app.test/api"]
    rsa_leaf = ca.issue("localhost", key_type="rsa").cert
    assert isinstance(rsa_leaf.public_key(), rsa.RSAPublicKey) and rsa_leaf.public_key().key_size == 2048
    assert ext(rsa_leaf, x509.KeyUsage).value.key_encipherment


def test_days_limits(ca: LocalCA) -> None:
    for days in (1, 825):
        cert = ca.issue("localhost", days=days).cert
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=days)
    with pytest.raises(UsageError, match="at most 825 days, because Apple"):
        ca.issue("localhost", days=826)
    with pytest.raises(UsageError, match="at least 1 day"):
        ca.issue("localhost", days=0)


def test_api_write_modes_and_reload(ca: LocalCA, tmp_path: Path) -> None:
    leaf = ca.issue("localhost")
    leaf.write(tmp_path / "c.pem", tmp_path / "k.pem")
    assert file_mode(tmp_path / "k.pem") == 0o600
    assert file_mode(tmp_path / "c.pem") == 0o644
    key = serialization.load_pem_private_key((tmp_path / "k.pem").read_bytes(), None)
    assert key.public_key() == load_cert(tmp_path / "c.pem").public_key()
    assert (tmp_path / "c.pem").read_bytes() == leaf.cert_pem
    assert (tmp_path / "k.pem").read_bytes() == leaf.key_pem


def test_self_signed_api() -> None:
    leaf = issue_self_signed(parse_names(["localhost"]))
    cert = leaf.cert
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=14)
    assert not leaf.warnings
    rsa_leaf = issue_self_signed(parse_names(["localhost"]), key_type="rsa", days=30)
    assert any("WebTransport" in w for w in rsa_leaf.warnings)


# -- CSRs -------------------------------------------------------------------------------------


def make_csr(names: list[x509.GeneralName] | None, cn: str | None = "csr.app.test",
             key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def tampered(pem: bytes) -> bytes:
    """The same CSR with one byte of its signature flipped."""
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    return bytes(der)


def test_sign_csr_api(ca: LocalCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = ca.sign_csr(make_csr([x509.DNSName("api.app.test"), x509.IPAddress(__import__("ipaddress").ip_address("10.0.0.2"))], key=key))
    assert leaf.cert.public_key() == key.public_key()
    assert leaf.key is None
    with pytest.raises(UsageError, match="key stays with its owner"):
        leaf.key_pem
    # DER works too, and a CN-only CSR gets its CN as the name.
    der = x509.load_pem_x509_csr(make_csr(None, cn="Only.App.Test")).public_bytes(serialization.Encoding.DER)
    leaf = ca.sign_csr(der)
    assert [n.value for n in leaf.names] == ["only.app.test"]


@pytest.mark.parametrize(
    ("csr", "error", "match"),
    [
        (lambda: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", CSRError, "not a valid PEM or DER"),
        (lambda: b"\x30\x03\x02\x01\x00", CSRError, "not a valid PEM or DER"),
        (lambda: tampered(make_csr([x509.DNSName("a.app.test")])), CSRError, "signature does not verify"),
        (lambda: make_csr([x509.DNSName("bad_name.test")]), InvalidNameError, "'_' is not allowed"),
        (lambda: make_csr([x509.DNSName("example.com")]), NameNotPermittedError, r"LocalCA.ephemeral\(permit=\['example.com'\]\)"),
        (lambda: make_csr(None, cn=None), CSRError, "asks for no names"),
        (lambda: make_csr([x509.DNSName("a.app.test")], key=rsa.generate_private_key(65537, 1024)), CSRError, "at least 2048"),
        (lambda: make_csr([x509.DNSName("a.app.test")], key=ec.generate_private_key(ec.SECP256K1())), CSRError, "curve"),
    ],
    ids=["bad-pem", "bad-der", "bad-signature", "bad-name", "not-permitted", "no-names", "weak-rsa", "bad-curve"],
)
def test_sign_csr_refusals(ca: LocalCA, csr, error: type, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        ca.sign_csr(csr())


# -- ensure_leaf / leaf_problem (kept fresh for serve-wss, snippets, sync) -----------------------


def test_ensure_leaf_lifecycle(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    names = parse_names(["localhost", "127.0.0.1"])
    cert_path, key_path = managed_leaf_paths(ca, names)
    assert cert_path == tmp_path / "ca" / "leaves" / "localhost+1.pem"
    assert file_mode(tmp_path / "ca" / "leaves") == 0o700
    assert ensure_leaf(ca, names, cert_path, key_path, dry_run=True).action == "created"
    assert not cert_path.exists()
    assert ensure_leaf(ca, names, cert_path, key_path).action == "created"
    assert ensure_leaf(ca, names, cert_path, key_path).action == "kept"
    assert leaf_problem(ca, cert_path, key_path, parse_names(["localhost"])) == "names changed"
    assert leaf_problem(ca, cert_path, key_path, names, client=True) == "client option changed"
    other = LocalCA.ephemeral()
    assert leaf_problem(other, cert_path, key_path, names) == "signed by another CA"
    key_path.write_bytes(ca.issue("localhost").key_pem)
    done = ensure_leaf(ca, names, cert_path, key_path)
    assert (done.action, done.reason) == ("renewed", "key does not match")
    ca.issue("localhost", "127.0.0.1", days=10).write(cert_path, key_path)
    assert leaf_problem(ca, cert_path, key_path, names).startswith("expires in")
    assert ensure_leaf(ca, names, cert_path, key_path).action == "renewed"
    assert leaf_problem(ca, cert_path, key_path, names) is None
    with pytest.raises(UsageError):
        managed_leaf_paths(LocalCA.ephemeral(), names)


# -- `devcert create`, the real executable ------------------------------------------------------


def create(cwd: Path, env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_devcert("create", *args, env=env, cwd=cwd, input=input)


def test_create_first_run_makes_ca_and_mkcert_names(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    res = create(tmp_path, cli_env, "localhost", "127.0.0.1", "::1")
    assert res.returncode == 0, res.stderr
    assert "Created a new local CA" in res.stderr
    assert (caroot / CERT_FILE).exists()
    cert_path, key_path = tmp_path / "localhost+2.pem", tmp_path / "localhost+2-key.pem"
    assert file_mode(key_path) == 0o600
    assert str(cert_path) in res.stdout and str(key_path) in res.stdout
    ca = LocalCA.load(caroot)
    load_cert(cert_path).verify_directly_issued_by(ca.cert)

    # What a user then does: serve the files, connect trusting only rootCA.pem.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(caroot / CERT_FILE))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    for name in ("localhost", "127.0.0.1"):
        data, _ = handshake(client, server, name)
        assert data == b"hello"

    # A second run reuses the CA.
    res = create(tmp_path, cli_env, "*.app.test")
    assert res.returncode == 0, res.stderr
    assert "Created a new local CA" not in res.stderr
    assert "covers one label only" in res.stderr and "devcert: warning:" in res.stderr
    load_cert(tmp_path / "_wildcard.app.test.pem").verify_directly_issued_by(ca.cert)
    assert (tmp_path / "_wildcard.app.test-key.pem").exists()


def test_create_file_names(tmp_path: Path, cli_env: dict[str, str]) -> None:
    cases = [
        (["localhost"], "localhost"),
        (["*.app.test", "app.test"], "_wildcard.app.test+1"),
        (["--client", "alice@app.test"], "alice@app.test-client"),
        (["--client", "localhost", "::1", "127.0.0.1"], "localhost+2-client"),
        (["::1"], "__1"),
        (["bücher.test"], "xn--bcher-kva.test"),
    ]
    for args, stem in cases:
        res = create(tmp_path, cli_env, *args)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / f"{stem}.pem").exists(), (args, sorted(os.listdir(tmp_path)))
        assert (tmp_path / f"{stem}-key.pem").exists()
    cert = load_cert(tmp_path / "xn--bcher-kva.test.pem")
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.test"]
    client = load_cert(tmp_path / "localhost+2-client.pem")
    assert EKU.CLIENT_AUTH in ext(client, x509.ExtendedKeyUsage).value


def test_create_cert_file_key_file_and_key_type(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    res = create(tmp_path, cli_env, "--cert-file", str(out / "server.crt"), "--key-file", "out/server.key",
                 "--key-type", "rsa", "--days", "30", "app.test")
    assert res.returncode == 0, res.stderr
    cert = load_cert(out / "server.crt")
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    assert file_mode(out / "server.key") == 0o600
    assert not list(tmp_path.glob("*.pem"))


def test_create_json(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    res = create(tmp_path, cli_env, "--json", "localhost", "127.0.0.1")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # stdout is exactly one JSON object
    assert isinstance(out, dict)
    assert {"cert", "key", "ca", "names", "not_after", "serial", "sha256"} <= set(out)
    assert out["cert"] == str(tmp_path / "localhost+1.pem")
    assert out["key"] == str(tmp_path / "localhost+1-key.pem")
    assert out["ca"] == str(caroot / CERT_FILE)
    assert out["names"] == ["localhost", "127.0.0.1"]
    cert = load_cert(Path(out["cert"]))
    assert out["sha256"] == cert.fingerprint(hashes.SHA256()).hex()
    assert int(out["serial"], 16) == cert.serial_number
    assert dt.datetime.fromisoformat(out["not_after"]) == cert.not_valid_after_utc
    # A person-facing note about the new CA goes to stderr, never into the JSON.
    assert "Created a new local CA" in res.stderr


def test_create_p12(tmp_path: Path, cli_env: dict[str, str]) -> None:
    p12 = tmp_path / "server.p12"
    res = create(tmp_path, cli_env, "--p12-file", str(p12), "--p12-password", "s3cret pass", "localhost")
    assert res.returncode == 0, res.stderr
    assert file_mode(p12) == 0o600
    key, cert, extra = pkcs12.load_key_and_certificates(p12.read_bytes(), b"s3cret pass")
    assert key is not None and cert is not None
    assert key.public_key() == cert.public_key()
    assert len(extra) == 1 and extra[0].subject == cert.issuer  # the CA rides along
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(p12.read_bytes(), b"wrong")

    openssl = require_tool("openssl")
    info = subprocess.run([openssl, "pkcs12", "-info", "-noout", "-in", str(p12), "-passin", "pass:s3cret pass"],
                          capture_output=True, text=True, timeout=30 * UNIT, env=clean_env())
    assert info.returncode == 0, info.stderr
    text = info.stdout + info.stderr
    assert "PBES2" in text and "AES-256-CBC" in text
    assert "RC2" not in text and "3DES" not in text and "pbeWithSHA1" not in text
    bad = subprocess.run([openssl, "pkcs12", "-info", "-noout", "-in", str(p12), "-passin", "pass:wrong"],
                         capture_output=True, text=True, timeout=30 * UNIT, env=clean_env())
    assert bad.returncode != 0


def test_create_p12_needs_a_password(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # No --p12-password and no terminal (stdin is a pipe): an error, never a default password.
    res = create(tmp_path, cli_env, "--p12-file", "x.p12", "localhost", input="")
    assert res.returncode == 2
    assert "--p12-password" in one_error_line(res.stderr)
    assert not (tmp_path / "x.p12").exists()
    res = create(tmp_path, cli_env, "--p12-file", "x.p12", "--p12-password", "", "localhost")
    assert res.returncode == 2
    assert "password" in one_error_line(res.stderr)
    assert not (tmp_path / "x.p12").exists()
    res = create(tmp_path, cli_env, "--p12-password", "x", "localhost")
    assert res.returncode == 2
    assert "--p12-file" in one_error_line(res.stderr)


@pytest.mark.parametrize(
    ("days", "match"),
    [("826", "at most 825 days, because Apple"), ("0", "at least 1 day"), ("-5", "at least 1 day"),
     ("100000", "at most 825"), ("abc", "")],
)
def test_create_days_out_of_range(tmp_path: Path, cli_env: dict[str, str], days: str, match: str) -> None:
    res = create(tmp_path, cli_env, "--days", days, "localhost")
    assert res.returncode == 2
    assert match in one_error_line(res.stderr)
    assert not list(tmp_path.glob("*.pem"))


def test_create_default_days(tmp_path: Path, cli_env: dict[str, str]) -> None:
    assert create(tmp_path, cli_env, "localhost").returncode == 0
    cert = load_cert(tmp_path / "localhost.pem")
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=820)
    assert create(tmp_path, cli_env, "--days", "825", "localhost").returncode == 0


def test_create_self_signed(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    res = create(tmp_path, cli_env, "--self-signed", "localhost")
    assert res.returncode == 0, res.stderr
    cert = load_cert(tmp_path / "localhost.pem")
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=14)
    assert cert.fingerprint(hashes.SHA256()).hex() in res.stdout
    assert not caroot.exists()  # no CA needed, none created
    res = create(tmp_path, cli_env, "--self-signed", "--json", "localhost")
    out = json.loads(res.stdout)
    assert out["ca"] is None and out["sha256"] == load_cert(Path(out["cert"])).fingerprint(hashes.SHA256()).hex()


def test_create_csr(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "req.csr").write_bytes(make_csr([x509.DNSName("api.app.test")], key=key))
    res = create(tmp_path, cli_env, "--csr", "req.csr", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["key"] is None and out["names"] == ["api.app.test"]
    cert = load_cert(Path(out["cert"]))
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(LocalCA.load(caroot).cert)
    assert not list(tmp_path.glob("*-key.pem"))


@pytest.mark.parametrize(
    ("content", "code", "match"),
    [
        (lambda: b"garbage", 2, "not a valid PEM or DER"),
        (lambda: tampered(make_csr([x509.DNSName("a.app.test")])), 2, "signature does not verify"),
        (lambda: make_csr([x509.DNSName("a..test")]), 2, "empty label"),
        (lambda: make_csr([x509.DNSName("example.com")]), 1, "devcert ca init --force --permit example.com"),
        (None, 2, "cannot read the CSR"),
    ],
    ids=["malformed", "bad-signature", "bad-name", "not-permitted", "missing-file"],
)
def test_create_csr_errors(tmp_path: Path, cli_env: dict[str, str], content, code: int, match: str) -> None:  # type: ignore[no-untyped-def]
    if content is not None:
        (tmp_path / "req.csr").write_bytes(content())
    res = create(tmp_path, cli_env, "--csr", "req.csr")
    assert res.returncode == code, res.stderr
    assert match in one_error_line(res.stderr)
    assert not list(tmp_path.glob("*.pem"))


def test_create_conflicting_options(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "req.csr").write_bytes(make_csr([x509.DNSName("a.app.test")]))
    for args in (["--csr", "req.csr", "localhost"], ["--csr", "req.csr", "--self-signed"],
                 ["--csr", "req.csr", "--key-file", "k.pem"], [], ["--key-type", "dsa", "localhost"]):
        res = create(tmp_path, cli_env, *args)
        assert res.returncode == 2, (args, res.stderr)
        one_error_line(res.stderr)
    assert not list(tmp_path.glob("*.pem"))


def test_create_refuses_name_outside_constraints(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    res = create(tmp_path, cli_env, "localhost", "example.com")
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert "'example.com'" in line
    assert line.endswith("devcert ca init --force --permit example.com")
    assert not list(tmp_path.glob("*.pem"))
    # The default profile does not constrain IPs; the strict one does, and says how to widen it.
    assert create(tmp_path, cli_env, "8.8.8.8").returncode == 0
    assert run_devcert("ca", "init", "--force", "--profile", "strict", env=cli_env).returncode == 0
    res = create(tmp_path, cli_env, "8.8.8.8")
    assert one_error_line(res.stderr).endswith("devcert ca init --force --profile strict --permit 8.8.8.8/32")


def test_create_same_path_for_cert_and_key_is_refused(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """One path for both would replace the new key with the certificate: the key would be lost."""
    res = create(tmp_path, cli_env, "--cert-file", "both.pem", "--key-file", "./both.pem", "localhost")
    assert res.returncode == 2
    assert "different paths" in one_error_line(res.stderr)
    assert not (tmp_path / "both.pem").exists()


def test_api_inputs_are_forgiving_or_clearly_refused(tmp_path: Path) -> None:
    """What a Python caller passes by mistake gets a DevcertError that says what to pass."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    from devcert.errors import CSRError, InvalidNameError, NameNotPermittedError, UsageError

    ca = LocalCA.ephemeral(permit="corp.dev")  # one string is one name, not its characters
    assert ca.issue("api.corp.dev").names[0].value == "api.corp.dev"
    assert ca.issue(ipaddress.ip_address("127.0.0.1")).names[0].value == "127.0.0.1"
    with pytest.raises(InvalidNameError, match="separate arguments"):
        ca.issue(["localhost", "127.0.0.1"])  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError, match="must be a str, not PosixPath"):
        ca.issue(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="whole number"):
        ca.issue("localhost", days="30")  # type: ignore[arg-type]
    with pytest.raises(NameNotPermittedError, match=r"LocalCA.ephemeral\(permit="):
        ca.issue("example.com")  # an in-memory CA's fix is in code, not `devcert ca init`
    leaf = ca.issue("localhost")
    assert leaf.pkcs12("pw", "name").startswith(b"0")  # str password and name are encoded
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.test")]), critical=False)
           .sign(key, hashes.SHA256()))
    pem_text = csr.public_bytes(Encoding.PEM).decode()
    assert ca.sign_csr(pem_text).names[0].value == "csr.test"  # PEM as str
    (tmp_path / "req.csr").write_text(pem_text)
    with pytest.raises(CSRError, match="read_bytes"):
        ca.sign_csr(tmp_path / "req.csr")  # type: ignore[arg-type]


def test_bad_ca_options_leave_no_folder(tmp_path: Path) -> None:
    from devcert.errors import UsageError

    for kwargs in ({"key_type": "x"}, {"permit": ["bad name!"]}, {"permit": ["a.test"], "constraints": False}):
        with pytest.raises(UsageError):
            LocalCA.create(tmp_path / "ca", **kwargs)  # type: ignore[arg-type]
        assert not (tmp_path / "ca").exists()


def test_leaf_cut_to_the_ca_end_says_so_in_the_cli_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leaf that would outlive its CA ends with it; the warning names the rotation as the CLI
    says it (``devcert create`` prints it), and neutrally for the Python API."""
    ca = LocalCA.ephemeral()
    end = ca.cert.not_valid_after_utc
    monkeypatch.setattr(certs, "now", lambda: end - dt.timedelta(days=100))
    leaf = issue_leaf(ca, parse_names(["localhost"]), days=200)
    assert leaf.not_after == end
    (warning,) = leaf.warnings
    assert word(warning) == (f"the CA expires on {end:%Y-%m-%d}, so this certificate is valid only until then "
                             f"(not 200 days); `devcert ca rotate` makes a new CA")
    assert "devcert" not in str(warning) and "rotate the CA" in str(warning)
