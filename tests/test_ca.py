"""The local CA: where it lives, what it looks like, how it refuses to be lost or misused.

Checked through the Python API and through the real ``devcert`` executable.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.helpers import UNIT, clean_env, devcert_exe, file_mode, one_error_line, run_devcert
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devcert import LocalCA, caroot
from devcert.ca import CERT_FILE, DEFAULT_DNS, DEFAULT_IPS, KEY_FILE
from devcert.cli.messages import describe
from devcert.errors import CAError, NameNotPermittedError, UsageError


# -- where it lives ---------------------------------------------------------------------------


def test_caroot_follows_env(caroot: Path, cli_env: dict[str, str]) -> None:
    assert caroot_fn() == caroot
    res = run_devcert("caroot", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(caroot)


def caroot_fn() -> Path:
    return caroot()


def test_caroot_default_is_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("DEVCERT_CAROOT")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert caroot_fn() == Path(platformdirs.user_data_dir("devcert", appauthor=False))
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    env.pop("DEVCERT_CAROOT", None)
    res = run_devcert("caroot", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(tmp_path / "xdg" / "devcert")


# -- what it looks like -----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_ca_profile(tmp_path: Path, key_type: str) -> None:
    ca = LocalCA.create(tmp_path / "ca", key_type=key_type)
    cert = ca.cert
    key = cert.public_key()
    if key_type == "ecdsa":
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
        assert ca.key_type == "ECDSA P-256"
    else:
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
        assert ca.key_type == "RSA 3072"

    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3650) <= span <= dt.timedelta(days=3651)
    assert cert.not_valid_before_utc <= dt.datetime.now(dt.timezone.utc)

    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0

    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign
    assert not (ku.value.digital_signature or ku.value.key_encipherment or ku.value.content_commitment)

    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(key)

    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)

    nc = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert nc.value.excluded_subtrees is None
    permitted = nc.value.permitted_subtrees
    dns = {g.value for g in permitted if isinstance(g, x509.DNSName)}
    assert dns == set(DEFAULT_DNS) == {"localhost", "test", "example", "invalid", "local", "internal", "home.arpa"}
    # The default profile constrains DNS names only: BoringSSL (Bun) cannot evaluate IP
    # constraints and webpki (Deno) email/URI ones, and both would refuse such leaves.
    assert all(isinstance(g, x509.DNSName) for g in permitted)
    assert not any(d.startswith(".") for d in dns)  # pkilint rejects a leading dot in dNSName
    assert ca.constraints is not None and ca.constraints.profile == "dns"

    strict = LocalCA.create(tmp_path / "strict", key_type=key_type, profile="strict").cert
    permitted = strict.extensions.get_extension_for_class(x509.NameConstraints).value.permitted_subtrees
    assert {g.value for g in permitted if isinstance(g, x509.IPAddress)} == {ipaddress.ip_network(n) for n in DEFAULT_IPS}
    assert {g.value for g in permitted if isinstance(g, x509.RFC822Name)} >= {"test", ".test"}
    emails = {g.value for g in permitted if isinstance(g, x509.RFC822Name)}
    uris = {g.value for g in permitted if isinstance(g, x509.UniformResourceIdentifier)}
    assert {"test", ".test"} <= emails and {"test", ".test"} <= uris


def test_subject_says_whose_ca_and_tells_two_apart() -> None:
    import getpass
    import socket

    a, b = LocalCA.ephemeral(), LocalCA.ephemeral()
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    assert who in a.common_name
    assert a.common_name != b.common_name  # a short random id in the name
    assert a.short_id != b.short_id and len(a.short_id) >= 8
    assert a.fingerprint != b.fingerprint and len(a.fingerprint) == 64


def test_files_and_modes_whatever_the_umask(caroot: Path, cli_env: dict[str, str]) -> None:
    """Run the real CLI with umask 000: folder 0700, key 0600, certificate not writable by others."""
    res = subprocess.run([devcert_exe(), "ca", "init"], env=cli_env, capture_output=True, text=True,
                         timeout=120 * UNIT, umask=0)
    assert res.returncode == 0, res.stderr
    assert file_mode(caroot) == 0o700
    assert file_mode(caroot / KEY_FILE) == 0o600
    assert file_mode(caroot / CERT_FILE) & 0o022 == 0
    # And a leaf's key in the output folder, also under umask 000.
    out = caroot.parent / "out"
    out.mkdir()
    res = subprocess.run([devcert_exe(), "create", "localhost"], env=cli_env, cwd=out, capture_output=True,
                         text=True, timeout=120 * UNIT, umask=0)
    assert res.returncode == 0, res.stderr
    assert file_mode(out / "localhost-key.pem") == 0o600
    assert file_mode(out / "localhost.pem") & 0o022 == 0
    # No temporary files left behind.
    assert sorted(p.name for p in out.iterdir()) == ["localhost-key.pem", "localhost.pem"]
    assert not [p for p in caroot.iterdir() if p.name.endswith(".tmp")]


def test_existing_caroot_readable_by_others_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    LocalCA.load_or_create(folder)
    assert file_mode(folder) == 0o700


# -- the Python API ---------------------------------------------------------------------------


def test_load_or_create_makes_once_then_loads(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "ca"
    first = LocalCA.load_or_create(folder)
    assert first.path == folder and first.cert_path == folder / CERT_FILE and first.key_path == folder / KEY_FILE
    assert LocalCA.exists(folder)
    again = LocalCA.load_or_create(folder)
    assert again.fingerprint == first.fingerprint
    assert first.created and not again.created
    loaded = LocalCA.load(folder)
    assert loaded.fingerprint == first.fingerprint
    assert loaded.key is not None
    assert loaded.cert_pem == (folder / CERT_FILE).read_bytes()


def test_load_or_create_defaults_to_caroot(caroot: Path) -> None:
    ca = LocalCA.load_or_create()
    assert ca.path == caroot
    assert (caroot / CERT_FILE).exists()


def test_ephemeral_writes_nothing(caroot: Path) -> None:
    ca = LocalCA.ephemeral()
    assert ca.path is None and ca.cert_path is None
    leaf = ca.issue("localhost")
    assert leaf.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert not caroot.exists()
    assert "in memory" in repr(ca)


def test_create_refuses_to_replace_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    first = LocalCA.create(folder)
    with pytest.raises(CAError, match="already exists"):
        LocalCA.create(folder)
    assert LocalCA.load(folder).fingerprint == first.fingerprint
    second = LocalCA.create(folder, force=True)
    assert LocalCA.load(folder).fingerprint == second.fingerprint != first.fingerprint


def test_load_without_key(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    LocalCA.create(folder)
    (folder / KEY_FILE).unlink()
    with pytest.raises(CAError, match="CA key is missing"):
        LocalCA.load(folder)
    public_only = LocalCA.load(folder, require_key=False)
    assert public_only.key is None
    with pytest.raises(CAError, match="cannot sign"):
        public_only.issue("localhost")


def test_info(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca", permit=["corp.example.dev", "100.64.0.0/10"], profile="strict")
    info = ca.info()
    assert info["constraints"]["profile"] == "strict"
    assert LocalCA.ephemeral().info()["constraints"]["ip"] is None  # the dns profile constrains no IPs
    assert info["sha256"] == ca.fingerprint
    assert info["cert"] == str(ca.cert_path)
    assert info["key"] == str(ca.key_path)
    assert info["key_type"] == "ECDSA P-256"
    assert "corp.example.dev" in info["constraints"]["dns"]
    assert "100.64.0.0/10" in info["constraints"]["ip"]
    assert dt.datetime.fromisoformat(info["not_after"]) == ca.not_after
    json.dumps(info)


def test_default_profile_constrains_dns_names_only(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca")
    ca.issue("localhost", "8.8.8.8", "2001:db8::1", "https://127.0.0.1/", "spiffe://app.test/api")
    ca.issue("a@gmail.com", client=True)
    with pytest.raises(NameNotPermittedError, match=r"LocalCA.create\(force=True, permit=\['example.com'\]\)") as info:
        ca.issue("localhost", "example.com")
    # The CLI says the same with the command that fixes it (the core never writes command lines).
    assert describe(info.value).endswith("devcert ca init --force --permit example.com")
    assert (info.value.name, info.value.widen, info.value.permits) == ("example.com", "example.com", ("example.com",))
    with pytest.raises(UsageError, match="does not constrain IP addresses") as usage:
        LocalCA.ephemeral(permit=["100.64.0.0/10"])
    assert describe(usage.value).startswith("--permit (permit=) '100.64.0.0/10': a CA of the 'dns' profile")


def test_constraints_checked_when_issuing(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca", profile="strict")  # a CA on disk: the fix is a command
    for ok in ("localhost", "a.test", "*.app.test", "x.home.arpa", "127.0.0.5", "192.168.1.1", "fd00::1",
               "fe80::1", "a@b.test", "https://app.test/x", "printer.local", "db.internal"):
        ca.issue(ok)
    for bad, widen in (("example.com", "--permit example.com"), ("8.8.8.8", "--permit 8.8.8.8/32"),
                       ("*.corp.example.dev", "--permit corp.example.dev"), ("a@gmail.com", "--permit gmail.com"),
                       ("https://evil.com/x", "--permit evil.com"), ("2001:db8::1", "--permit 2001:db8::1/128"),
                       ("testx", "--permit testx"), ("eviltest", "--permit eviltest")):
        with pytest.raises(NameNotPermittedError) as info:
            ca.issue("localhost", bad)
        assert repr(bad) in str(info.value) and "devcert" not in str(info.value).split("constraints")[1]
        assert describe(info.value).endswith(f"devcert ca init --force --profile strict {widen}")
        # an in-memory CA (tests): the fix is an argument in the caller's code
        with pytest.raises(NameNotPermittedError) as info:
            LocalCA.ephemeral(profile="strict").issue("localhost", bad)
        assert f"LocalCA.ephemeral(permit=[{widen.removeprefix('--permit ')!r}], profile='strict')" in str(info.value)
    # A URI whose host is an IP address cannot be covered by URI subtrees (host names only).
    for literal in ("https://[::1]/", "https://127.0.0.1/"):
        with pytest.raises(NameNotPermittedError, match=r"constraints=False") as info:
            ca.issue(literal)
        assert describe(info.value).endswith("devcert ca init --force --no-constraints")
    LocalCA.ephemeral(constraints=False).issue("https://[::1]/", "https://127.0.0.1/")


def test_widened_and_unconstrained(tmp_path: Path) -> None:
    wide = LocalCA.create(tmp_path / "wide", permit=["corp.example.dev", "100.64.0.0/10"], profile="strict")
    wide.issue("api.corp.example.dev", "corp.example.dev", "100.64.0.1", "localhost")
    with pytest.raises(NameNotPermittedError) as info:
        wide.issue("example.com")
    # The widening command repeats what was already permitted, so nothing is lost.
    assert ("--profile strict --permit corp.example.dev --permit 100.64.0.0/10 --permit example.com"
            in describe(info.value))
    with pytest.raises(NameNotPermittedError) as info:
        LocalCA.ephemeral(permit=["corp.example.dev", "100.64.0.0/10"], profile="strict").issue("example.com")
    assert "permit=['corp.example.dev', '100.64.0.0/10', 'example.com'], profile='strict'" in str(info.value)
    free = LocalCA.ephemeral(constraints=False)
    assert free.constraints is None
    free.issue("example.com", "8.8.8.8")
    with pytest.raises(UsageError, match="cannot be used with constraints=False") as info:
        LocalCA.ephemeral(permit=["x.dev"], constraints=False)
    assert describe(info.value) == ("--permit (permit=) widens name constraints; it cannot be used with "
                                    "--no-constraints (constraints=False)")
    with pytest.raises(UsageError, match="permit='not a name'") as info:
        LocalCA.ephemeral(permit=["not a name"])
    assert describe(info.value).startswith("--permit (permit=) 'not a name': give a DNS name or a CIDR range")


# -- the CLI: ca init / ca info ---------------------------------------------------------------


def test_cli_ca_init_and_info_json(caroot: Path, cli_env: dict[str, str]) -> None:
    res = run_devcert("ca", "init", "--json", env=cli_env)
    assert res.returncode == 0, res.stderr
    created = json.loads(res.stdout)
    ca = LocalCA.load(caroot)
    assert created["sha256"] == ca.fingerprint

    res = run_devcert("ca", "info", "--json", env=cli_env)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)  # only one JSON object on stdout
    assert info["sha256"] == ca.fingerprint
    assert info["subject"] == ca.subject
    assert info["key_type"] == "ECDSA P-256"
    assert set(info["constraints"]["dns"]) == set(DEFAULT_DNS)

    res = run_devcert("ca", "info", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert ca.fingerprint in res.stdout and "localhost" in res.stdout


def test_cli_ca_init_refuses_to_replace_then_force_says_what(caroot: Path, cli_env: dict[str, str]) -> None:
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    old = LocalCA.load(caroot)
    res = run_devcert("ca", "init", env=cli_env)
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert "already exists" in line and "--force" in line
    assert LocalCA.load(caroot).fingerprint == old.fingerprint

    res = run_devcert("ca", "init", "--force", "--key-type", "rsa", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert old.fingerprint in res.stderr and "replaced the CA" in res.stderr
    # Backed up, as rotate does, and the truth about trust: no store here trusted it.
    assert (caroot / "old" / old.fingerprint / "rootCA-key.pem").is_file()
    assert "no trust store here trusted it" in res.stderr
    new = LocalCA.load(caroot)
    assert new.fingerprint != old.fingerprint and new.key_type == "RSA 3072"


def test_cli_ca_init_permit_allows_the_refused_name(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    res = run_devcert("create", "api.corp.example.dev", "100.64.1.2", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert "'api.corp.example.dev'" in line
    assert "devcert ca init --force --permit api.corp.example.dev" in line
    assert not list(tmp_path.glob("*.pem"))

    res = run_devcert("ca", "init", "--force", "--permit", "corp.example.dev", env=cli_env)
    assert res.returncode == 0, res.stderr
    res = run_devcert("create", "api.corp.example.dev", "100.64.1.2", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "api.corp.example.dev+1.pem").exists()


def test_cli_no_constraints_warns(caroot: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    res = run_devcert("ca", "init", "--no-constraints", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "devcert: warning:" in res.stderr and "no name constraints" in res.stderr
    assert LocalCA.load(caroot).constraints is None
    res = run_devcert("create", "example.com", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def test_cli_ca_init_bad_options(cli_env: dict[str, str], caroot: Path) -> None:
    res = run_devcert("ca", "init", "--key-type", "dsa", env=cli_env)
    assert res.returncode == 2
    assert "unknown key type" in one_error_line(res.stderr)
    res = run_devcert("ca", "init", "--permit", "bad_name!", env=cli_env)
    assert res.returncode == 2
    assert "--permit" in one_error_line(res.stderr)
    assert not (caroot / CERT_FILE).exists()


# -- a damaged CA is reported, never silently replaced ------------------------------------------


def _damage(folder: Path, how: str) -> str:
    """Damage the CA in ``folder``; return a fragment the error must contain."""
    if how == "missing":
        (folder / CERT_FILE).unlink()
        (folder / KEY_FILE).unlink()
        return "does not exist"
    if how == "corrupt-cert":
        (folder / CERT_FILE).write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
        return "not a valid PEM certificate"
    if how == "corrupt-key":
        (folder / KEY_FILE).write_text("garbage\n")
        return "not a valid PEM private key"
    if how == "missing-key":
        (folder / KEY_FILE).unlink()
        return "CA key is missing"
    if how == "mismatched":
        other = LocalCA.ephemeral()
        (folder / KEY_FILE).write_bytes(
            other.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[union-attr]
                                    serialization.NoEncryption()))
        return "do not match"
    if how == "not-a-ca":
        leaf = LocalCA.ephemeral().issue("localhost")
        (folder / CERT_FILE).write_bytes(leaf.cert_pem)
        return "not a CA certificate"
    if how == "key-is-folder":
        (folder / KEY_FILE).unlink()
        (folder / KEY_FILE).mkdir()
        return "is a folder"
    if how == "encrypted-key":
        ca = LocalCA.load(folder)
        (folder / KEY_FILE).write_bytes(ca.key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret")))
        return "encrypted"
    raise AssertionError(how)


DAMAGE = ["corrupt-cert", "corrupt-key", "missing-key", "mismatched", "not-a-ca", "key-is-folder", "encrypted-key"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_ca_api(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "ca"
    LocalCA.create(folder)
    expected = _damage(folder, how)
    with pytest.raises(CAError, match=expected):
        LocalCA.load(folder)
    # load_or_create never replaces a damaged CA: the user must decide.
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in folder.iterdir()}
    with pytest.raises(CAError):
        LocalCA.load_or_create(folder)
    assert {p.name: (p.read_bytes() if p.is_file() else None) for p in folder.iterdir()} == before


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_ca_cli(tmp_path: Path, caroot: Path, cli_env: dict[str, str], how: str) -> None:
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    expected = _damage(caroot, how)
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert expected in one_error_line(res.stderr)
    assert not list(tmp_path.glob("*.pem"))


def test_missing_ca_ca_info(cli_env: dict[str, str]) -> None:
    res = run_devcert("ca", "info", env=cli_env)
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert "does not exist" in line and "devcert ca init" in line


def test_unreadable_ca_under_a_non_folder(tmp_path: Path) -> None:
    """CAROOT is a regular file: reading or creating the CA there fails with a reason."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = clean_env(DEVCERT_CAROOT=str(blocker))
    res = run_devcert("ca", "info", env=env)
    assert res.returncode == 1
    assert "cannot read the CA certificate" in one_error_line(res.stderr)
    env = clean_env(DEVCERT_CAROOT=str(blocker / "ca"))
    res = run_devcert("create", "localhost", env=env, cwd=tmp_path)
    assert res.returncode == 1
    assert "cannot create folder" in one_error_line(res.stderr)
    assert not (tmp_path / "localhost.pem").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; covered by the folder cases")
def test_unreadable_ca_key_by_mode(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    os.chmod(caroot / KEY_FILE, 0)
    res = run_devcert("create", "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    assert "permission denied" in one_error_line(res.stderr)
