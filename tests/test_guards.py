"""The guards of "crash-safe state and an honest trust lifecycle", checked as a user would.

Every test runs the real ``devcert`` executable with a private CAROOT and looks at what a
user sees: the exit code, exactly one ``devcert: error: ...`` line (never a traceback, never
"unexpected"), and the files on disk. Certificate/key pairs are proven with a real TLS
handshake on 127.0.0.1 against a client that trusts only CAROOT/rootCA.pem.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.helpers import (UNIT, DEV, cert_sha256, clean_env, devcert_exe, file_mode, ok, one_error_line, require_tool,
                           run_devcert, serves, write_project)

NOW = dt.datetime.now(dt.timezone.utc)


# -- helpers ---------------------------------------------------------------------------------


def fails(res: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Assert ``res`` failed with ``code`` and one clean error line containing every needle."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    line = one_error_line(res.stderr)
    assert "unexpected" not in res.stderr, res.stderr
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def warnings(stderr: str, about: str = "") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("devcert: warning:") and about in line]


def init_ca(env: dict[str, str], *extra: str) -> None:
    ok(run_devcert("ca", "init", *extra, env=env))


def ca_files(caroot: Path) -> dict[str, bytes]:
    return {name: (caroot / name).read_bytes() for name in ("rootCA.pem", "rootCA-key.pem")}


def assert_ca_unchanged(caroot: Path, before: dict[str, bytes], env: dict[str, str]) -> None:
    """The CA's files are byte-for-byte the same and devcert still loads the CA."""
    assert ca_files(caroot) == before
    info = json.loads(ok(run_devcert("ca", "info", "--json", env=env)).stdout)
    assert info["sha256"] == cert_sha256(caroot / "rootCA.pem")
    assert info["key_problem"] is None


def make_ca(folder: Path, *, key=None, not_before: dt.datetime | None = None,  # type: ignore[no-untyped-def]
            not_after: dt.datetime | None = None, name: str = "test CA") -> x509.Certificate:
    """A CA written as mkcert writes one: rootCA.pem (0644) + rootCA-key.pem (0600) in a 0700 folder."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(folder / "rootCA-key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    (folder / "rootCA.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(folder / "rootCA.pem", 0o644)
    return cert




@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


# -- 1. outputs inside CAROOT are refused ---------------------------------------------------


def test_create_over_the_ca_files_from_inside_caroot_is_refused(caroot: Path, cli_env: dict[str, str]) -> None:
    init_ca(cli_env)
    before = ca_files(caroot)
    res = run_devcert("create", "localhost", "--cert-file", "rootCA.pem", "--key-file", "rootCA-key.pem",
                      env=cli_env, cwd=caroot)
    fails(res, 2, "refusing to write", "inside CAROOT")
    assert_ca_unchanged(caroot, before, cli_env)


def test_create_over_the_inventory_is_refused(caroot: Path, cli_env: dict[str, str], work: Path) -> None:
    init_ca(cli_env)
    ok(run_devcert("create", "localhost", env=cli_env, cwd=work))
    inventory = caroot / "inventory.json"
    recorded = inventory.read_bytes()
    before = ca_files(caroot)
    res = run_devcert("create", "localhost", "--cert-file", str(work / "x.pem"), "--key-file", str(inventory),
                      env=cli_env, cwd=work)
    fails(res, 2, "inside CAROOT", "inventory.json")
    assert inventory.read_bytes() == recorded
    assert not (work / "x.pem").exists()
    assert_ca_unchanged(caroot, before, cli_env)


def test_create_through_a_symlinked_folder_into_caroot_is_refused(caroot: Path, cli_env: dict[str, str],
                                                                  work: Path) -> None:
    init_ca(cli_env)
    before = ca_files(caroot)
    (work / "certs").symlink_to(caroot, target_is_directory=True)
    res = run_devcert("create", "localhost", "--cert-file", "certs/rootCA.pem", "--key-file", "certs/dev-key.pem",
                      env=cli_env, cwd=work)
    fails(res, 2, "inside CAROOT")
    assert not (caroot / "dev-key.pem").exists()
    assert_ca_unchanged(caroot, before, cli_env)


@pytest.mark.parametrize("entry", [
    {"names": ["localhost"], "cert": "certs/ok.pem", "key": ".ca/rootCA-key.pem"},
    {"names": ["localhost"], "cert": ".ca/leaves/dev.pem", "key": ".ca/leaves/dev-key.pem"},
], ids=["key-over-ca-key", "into-caroot-subfolder"])
def test_sync_output_inside_caroot_is_refused(tmp_path: Path, entry: dict) -> None:  # type: ignore[type-arg]
    project = tmp_path / "proj"
    caroot = project / ".ca"  # the project folder contains CAROOT
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    write_project(project, {"names": ["localhost"], "cert": "certs/first.pem", "key": "certs/first-key.pem"}, entry)
    init_ca(env)
    before = ca_files(caroot)
    fails(run_devcert("sync", env=env, cwd=project), 2, "inside CAROOT")
    # Checked before anything is written: not even the harmless first entry.
    assert not (project / "certs").exists()
    assert not (caroot / "leaves" / "dev.pem").exists()
    assert_ca_unchanged(caroot, before, env)


# -- 2. an unsafe CAROOT is refused by every command that uses it ---------------------------


def _commands(project: Path) -> list[tuple[str, list[str], Path]]:
    return [
        ("create", ["create", "localhost"], project),
        ("install --dry-run", ["install", "--dry-run"], project),
        ("sync", ["sync"], project),
        ("serve-wss", ["serve-wss", "--port", "0"], project),
    ]


@pytest.mark.parametrize("what, target, mode, fix", [
    ("CAROOT 0777", "", 0o777, "chmod 700"),
    ("CA key 0666", "rootCA-key.pem", 0o666, "chmod go-w"),
    ("CA cert 0666", "rootCA.pem", 0o666, "chmod go-w"),
])
def test_writable_caroot_or_ca_file_is_refused_by_every_command(caroot: Path, cli_env: dict[str, str], tmp_path: Path,
                                                                 what: str, target: str, mode: int, fix: str) -> None:
    init_ca(cli_env)
    before = ca_files(caroot)
    path = caroot / target if target else caroot
    os.chmod(path, mode)
    listing = sorted(os.listdir(caroot))
    project = write_project(tmp_path / "proj", DEV)
    for label, args, cwd in _commands(project):
        res = run_devcert(*args, env=cli_env, cwd=cwd, timeout=60 * UNIT)
        line = fails(res, 1, "refusing to use", "other users may write", fix)
        assert str(path) in line, (label, line)
    assert sorted(os.listdir(caroot)) == listing  # no leaves/, no inventory, nothing
    assert not (project / "certs").exists() and not (project / "localhost.pem").exists()
    os.chmod(path, 0o700 if not target else (0o600 if "key" in target else 0o644))
    assert_ca_unchanged(caroot, before, cli_env)


def test_attacker_swapped_unconstrained_ca_in_a_world_writable_caroot_signs_nothing(caroot: Path, cli_env: dict[str, str],
                                                                                     work: Path) -> None:
    # Another local user replaced the CA in a 0777 CAROOT with an unconstrained CA of their own:
    # devcert must not use it, so it never signs a certificate for a real site with it.
    make_ca(caroot, name="evil unconstrained CA")
    os.chmod(caroot, 0o777)
    res = run_devcert("create", "www.google.com", env=cli_env, cwd=work)
    fails(res, 1, "refusing to use", str(caroot), "chmod 700")
    assert not list(work.iterdir())


def _unprivileged() -> list[str]:
    """A command prefix running as uid/gid 65534 (nobody), or skip.

    The interpreter lives under /root here, which nobody cannot search; CAP_DAC_READ_SEARCH
    (ambient) lets it read and search folders, which does not change its uid or any ownership
    check, nor let it write anything.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed: cannot run devcert as another user")
    if os.geteuid() != 0:
        pytest.skip("dropping to another user needs root")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
              "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    probe = subprocess.run([*prefix, devcert_exe(), "--version"], capture_output=True, text=True, timeout=60 * UNIT)
    if probe.returncode != 0:
        probe = subprocess.run([*prefix[:4], devcert_exe(), "--version"], capture_output=True, text=True, timeout=60 * UNIT)
        if probe.returncode != 0:
            pytest.skip(f"cannot run devcert as uid 65534 here: {probe.stderr.strip()[:200]}")
        prefix = prefix[:4]
    return prefix


def test_caroot_of_another_user_is_refused(tmp_path: Path) -> None:
    prefix = _unprivileged()
    # A folder uid 65534 can reach (tmp_path is 0700 root's); CAROOT in it belongs to root.
    base = Path(tempfile.mkdtemp(prefix="devcert-owner-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        caroot = base / "ca"
        env = clean_env(DEVCERT_CAROOT=str(caroot), HOME=str(base))
        init_ca(env)
        os.chmod(caroot, 0o755)  # readable by others, writable by root alone: ownership is the only problem
        before = ca_files(caroot)
        project = write_project(base / "proj", DEV)
        os.chmod(project, 0o777)  # so a successful (wrong) run could write there and be noticed
        for label, args, cwd in _commands(project):
            res = subprocess.run([*prefix, devcert_exe(), *args], env=env, cwd=cwd, capture_output=True, text=True,
                                 timeout=60 * UNIT)
            line = fails(res, 1, "refusing to use", "belongs to root", "your own CAROOT")
            assert str(caroot) in line, (label, line)
        assert not (project / "certs").exists() and not (project / "localhost.pem").exists()
        assert ca_files(caroot) == before
        # Root may use another user's CAROOT by design (sudo DEVCERT_CAROOT=~alice/... devcert install).
        os.chown(caroot, 65534, 65534)
        assert_ca_unchanged(caroot, before, env)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unsearchable_caroot_of_another_user_is_one_clean_line(tmp_path: Path) -> None:
    # In a user namespace without a uid map, the process's real (kernel) uid is still root's but
    # it has no capabilities over files of other users: a 0700 folder of uid 1234 cannot be
    # searched, as for an ordinary user pointing DEVCERT_CAROOT at someone else's CAROOT.
    unshare = require_tool("unshare")
    if subprocess.run([unshare, "--user", "true"], capture_output=True, timeout=30 * UNIT).returncode != 0:
        pytest.skip("user namespaces are not available here")
    caroot = tmp_path / "bob" / "ca"
    env = clean_env(DEVCERT_CAROOT=str(caroot))
    init_ca(env)
    for path in (caroot, *caroot.rglob("*")):
        os.chown(path, 1234, 1234, follow_symlinks=False)
    os.chmod(tmp_path, 0o755)
    os.chmod(caroot.parent, 0o755)
    res = subprocess.run([unshare, "--user", devcert_exe(), "ca", "info"], env=env, capture_output=True, text=True,
                         timeout=60 * UNIT)
    fails(res, 1, str(caroot))


# -- 3. stale temporaries of an interrupted write are removed ------------------------------


def test_stale_temp_files_beside_an_output_are_removed_by_the_next_write(cli_env: dict[str, str], work: Path) -> None:
    ok(run_devcert("create", "localhost", env=cli_env, cwd=work))
    stale_key = work / ".localhost-key.pem.deadbeef0000.tmp"
    stale_cert = work / ".localhost.pem.deadbeef0001.tmp"
    unrelated = work / ".other.pem.deadbeef0000.tmp"
    for path in (stale_key, stale_cert, unrelated):
        path.write_bytes(b"half of a key an interrupted write left\n")
    ok(run_devcert("create", "localhost", env=cli_env, cwd=work))
    assert not stale_key.exists() and not stale_cert.exists()
    assert unrelated.exists()  # only the temporaries of the files written are devcert's to remove
    assert sorted(p.name for p in work.iterdir()) == [".other.pem.deadbeef0000.tmp", "localhost-key.pem", "localhost.pem"]


# -- 4. .gitignore lines match the outputs exactly, and their temporaries -------------------


def test_gitignore_lines_match_glob_characters_exactly(cli_env: dict[str, str], tmp_path: Path) -> None:
    git = require_tool("git")
    project = write_project(tmp_path / "proj", {"names": ["localhost"], "cert": "certs/dev[1].pem",
                                                "key": "certs/dev[1]-key.pem"})
    subprocess.run([git, "init", "-q", str(project)], check=True, timeout=60 * UNIT, env=clean_env())
    ok(run_devcert("sync", "--gitignore", env=cli_env, cwd=project))
    assert (project / "certs" / "dev[1]-key.pem").is_file()

    def ignored(rel: str) -> bool:
        res = subprocess.run([git, "check-ignore", "-q", "--no-index", rel], cwd=project, timeout=60 * UNIT, env=clean_env())
        assert res.returncode in (0, 1), res
        return res.returncode == 0

    assert ignored("certs/dev[1]-key.pem")
    assert ignored("certs/dev[1].pem")
    assert ignored("certs/.dev[1]-key.pem.0123456789ab.tmp")  # an interrupted write's temporary
    assert ignored("certs/.dev[1].pem.0123456789ab.tmp")
    # Escaped, not globbed: a file the [1] class would match is not swept up.
    assert not ignored("certs/dev1-key.pem")
    status = subprocess.run([git, "status", "--porcelain", "--untracked-files=all"], cwd=project, capture_output=True,
                            text=True, timeout=60 * UNIT, env=clean_env()).stdout
    assert "certs/" not in status, status

    gitignore = (project / ".gitignore").read_bytes()
    res = ok(run_devcert("sync", "--gitignore", env=cli_env, cwd=project))
    assert (project / ".gitignore").read_bytes() == gitignore
    assert "Added" not in res.stdout and not warnings(res.stderr, ".gitignore")


# -- 5. sync replaces a symlink at an output path ------------------------------------------


def test_sync_replaces_symlinks_at_outputs_and_leaves_their_targets_alone(caroot: Path, cli_env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.pem").write_bytes(b"someone else's file\n")
    (outside / "victim-key.pem").write_bytes(b"someone else's key\n")
    project = write_project(tmp_path / "proj", DEV)
    (project / "certs").mkdir()
    (project / "certs" / "dev.pem").symlink_to(outside / "victim.pem")
    (project / "certs" / "dev-key.pem").symlink_to(outside / "victim-key.pem")
    ok(run_devcert("sync", env=cli_env, cwd=project))
    cert, key = project / "certs" / "dev.pem", project / "certs" / "dev-key.pem"
    for path in (cert, key):
        assert not path.is_symlink() and stat.S_ISREG(os.lstat(path).st_mode)
    assert (outside / "victim.pem").read_bytes() == b"someone else's file\n"
    assert (outside / "victim-key.pem").read_bytes() == b"someone else's key\n"
    assert file_mode(key) == 0o600
    serves(cert, key, caroot / "rootCA.pem")


# -- 6. umask 000 never makes a key folder writable by others ------------------------------


def test_sync_under_umask_000_makes_no_folder_writable_by_others(caroot: Path, cli_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", {"names": ["localhost"], "cert": "public/a/dev.pem",
                                                "key": "private/b/dev-key.pem"})
    res = subprocess.run(["sh", "-c", 'umask 000; exec "$0" sync', devcert_exe()], env=cli_env, cwd=project,
                         capture_output=True, text=True, timeout=120 * UNIT)
    ok(res)
    for folder in ("public", "public/a", "private", "private/b"):
        assert file_mode(project / folder) & 0o022 == 0, (folder, oct(file_mode(project / folder)))
    assert file_mode(project / "private/b/dev-key.pem") == 0o600
    assert file_mode(project / "public/a/dev.pem") == 0o644
    # The CAROOT this first run made, under the same umask.
    assert file_mode(caroot) == 0o700
    assert file_mode(caroot / "rootCA-key.pem") == 0o600
    assert file_mode(caroot / "inventory.json") == 0o600
    serves(project / "public/a/dev.pem", project / "private/b/dev-key.pem", caroot / "rootCA.pem")


# -- 7. the PKCS#12 password without the command line ---------------------------------------


def _opens_with(p12: Path, password: bytes, caroot: Path, tmp_path: Path) -> None:
    key, cert, _extra = pkcs12.load_key_and_certificates(p12.read_bytes(), password)
    assert key is not None and cert is not None
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(p12.read_bytes(), password + b"x")
    assert file_mode(p12) == 0o600
    cert_pem, key_pem = tmp_path / "from-p12.pem", tmp_path / "from-p12-key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    serves(cert_pem, key_pem, caroot / "rootCA.pem")


def test_p12_password_from_the_environment(caroot: Path, cli_env: dict[str, str], work: Path, tmp_path: Path) -> None:
    env = {**cli_env, "DEVCERT_P12_PASSWORD": "from the environment"}
    ok(run_devcert("create", "localhost", "--p12-file", "dev.p12", env=env, cwd=work, input=""))
    _opens_with(work / "dev.p12", b"from the environment", caroot, tmp_path)


def test_p12_password_from_a_file(caroot: Path, cli_env: dict[str, str], work: Path, tmp_path: Path) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text("from a file\nsecond line is not the password\n")
    res = ok(run_devcert("create", "localhost", "--p12-file", "dev.p12", "--p12-password-file", str(secret),
                         env=cli_env, cwd=work, input=""))
    assert "from a file" not in res.stdout + res.stderr
    _opens_with(work / "dev.p12", b"from a file", caroot, tmp_path)


def test_p12_password_from_standard_input(caroot: Path, cli_env: dict[str, str], work: Path, tmp_path: Path) -> None:
    ok(run_devcert("create", "localhost", "--p12-file", "dev.p12", "--p12-password-file", "-",
                   env=cli_env, cwd=work, input="from stdin\n"))
    _opens_with(work / "dev.p12", b"from stdin", caroot, tmp_path)


def test_p12_password_given_two_ways_is_a_usage_error(cli_env: dict[str, str], work: Path, tmp_path: Path) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text("pw\n")
    res = run_devcert("create", "localhost", "--p12-file", "dev.p12", "--p12-password", "pw",
                      "--p12-password-file", str(secret), env=cli_env, cwd=work, input="")
    fails(res, 2, "--p12-password", "--p12-password-file")
    assert not list(work.iterdir())


# -- 8. inventory entries of the wrong shape ------------------------------------------------


def test_inventory_entries_of_the_wrong_type_are_skipped_with_one_warning(caroot: Path, cli_env: dict[str, str],
                                                                          work: Path) -> None:
    ok(run_devcert("create", "localhost", "--cert-file", "a.pem", "--key-file", "a-key.pem", env=cli_env, cwd=work))
    inventory = caroot / "inventory.json"
    data = json.loads(inventory.read_text())
    bad = [{"cert": str(work / "b.pem"), "names": ["localhost"], "p12": ["x"]},
           {"cert": str(work / "c.pem"), "names": ["localhost"], "key": 5}]
    data["certs"] += bad
    inventory.write_text(json.dumps(data))

    res = ok(run_devcert("create", "localhost", "--cert-file", "d.pem", "--key-file", "d-key.pem", env=cli_env,
                         cwd=work))
    assert len(warnings(res.stderr, "inventory")) == 1, res.stderr
    serves(work / "d.pem", work / "d-key.pem", caroot / "rootCA.pem")

    res = ok(run_devcert("list", env=cli_env))
    assert len(warnings(res.stderr, "inventory")) == 1, res.stderr
    assert "a.pem" in res.stdout and "d.pem" in res.stdout
    res = ok(run_devcert("list", "--json", env=cli_env))
    assert sorted(Path(e["cert"]).name for e in json.loads(res.stdout)["certs"]) == ["a.pem", "d.pem"]

    res = ok(run_devcert("renew", "--all", env=cli_env))
    assert len(warnings(res.stderr, "inventory")) == 1, res.stderr
    assert res.stdout.count("renewed ") == 2, res.stdout
    serves(work / "a.pem", work / "a-key.pem", caroot / "rootCA.pem")
    # sync saves once per declared certificate: still one warning.
    project = write_project(work / "proj", DEV, {"names": ["localhost"], "cert": "certs/b.pem", "key": "certs/b-key.pem"})
    res = ok(run_devcert("sync", "--no-gitignore", env=cli_env, cwd=project))
    assert len(warnings(res.stderr, "inventory")) == 1, res.stderr
    # The bad entries are kept for a person to fix, not silently dropped.
    assert [e for e in json.loads(inventory.read_text())["certs"] if e in bad] == bad


# -- 9. import-mkcert refuses a CA unfit to be trusted --------------------------------------


@pytest.mark.parametrize("kind, reason", [
    ("rsa-1024", "1024 bits"),
    ("expired", "expired"),
    ("not-yet-valid", "not valid before"),
])
def test_import_mkcert_refuses_a_weak_or_invalid_ca(caroot: Path, cli_env: dict[str, str], tmp_path: Path,
                                                    kind: str, reason: str) -> None:
    init_ca(cli_env)
    before = ca_files(caroot)
    source = tmp_path / "mkcert"
    if kind == "rsa-1024":
        make_ca(source, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    elif kind == "expired":
        make_ca(source, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1))
    else:
        make_ca(source, not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=400))
    res = run_devcert("ca", "import-mkcert", "--caroot", str(source), "--force", env=cli_env)
    fails(res, 1, "cannot adopt", reason, "devcert changed nothing")
    assert not (caroot / "old").exists()
    assert_ca_unchanged(caroot, before, cli_env)


# -- 10. a leaf never outlives its CA --------------------------------------------------------


def test_leaf_of_a_ca_that_expires_soon_is_cut_to_the_cas_end(caroot: Path, cli_env: dict[str, str],
                                                              work: Path) -> None:
    ca_cert = make_ca(caroot, not_after=NOW + dt.timedelta(days=29))
    res = ok(run_devcert("create", "localhost", "--cert-file", "dev.pem", "--key-file", "dev-key.pem",
                         env=cli_env, cwd=work))
    cut = warnings(res.stderr, "the CA expires on")
    assert len(cut) == 1, res.stderr
    assert "devcert ca rotate" in cut[0]
    leaf = x509.load_pem_x509_certificate((work / "dev.pem").read_bytes())
    assert leaf.not_valid_after_utc <= ca_cert.not_valid_after_utc
    assert leaf.not_valid_after_utc > NOW + dt.timedelta(days=28)
    serves(work / "dev.pem", work / "dev-key.pem", caroot / "rootCA.pem")


# -- 11. hostile inputs: one clear line each --------------------------------------------------


def test_file_size_limit_during_ca_init_force_keeps_the_old_ca(caroot: Path, cli_env: dict[str, str]) -> None:
    # An unconstrained CA's certificate (~740 bytes) fits in 1 KiB, a strict-profile one (~1.5 KiB)
    # does not: the backup of the old CA succeeds, writing the new one hits the limit (EFBIG).
    init_ca(cli_env, "--no-constraints")
    before = ca_files(caroot)
    assert len(before["rootCA.pem"]) < 1024
    old_sha = cert_sha256(caroot / "rootCA.pem")
    res = subprocess.run(["bash", "-c", 'ulimit -f 1; exec "$0" ca init --force --profile strict', devcert_exe()], env=cli_env,
                         capture_output=True, text=True, timeout=120 * UNIT)
    fails(res, 1, "ulimit -f", "rootCA.pem")
    assert_ca_unchanged(caroot, before, cli_env)
    backup = caroot / "old" / old_sha
    assert (backup / "rootCA-key.pem").read_bytes() == before["rootCA-key.pem"]
    assert (backup / "rootCA.pem").read_bytes() == before["rootCA.pem"]
    assert not [p for p in caroot.rglob("*") if p.name.endswith((".tmp", ".journal"))]


def test_nul_byte_in_a_configured_path(cli_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.devcert]\ncerts = [{ names = ["localhost"], '
                                            'cert = "certs/dev\\u0000.pem", key = "certs/dev-key.pem" }]\n')
    fails(run_devcert("sync", env=cli_env, cwd=project), 2, "NUL byte", "certs[0]")
    assert not (project / "certs").exists()


def test_deeply_nested_toml(cli_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    depth = 100_000
    (project / "pyproject.toml").write_text("[tool.devcert]\ncerts = " + "[" * depth + "]" * depth + "\n")
    fails(run_devcert("sync", env=cli_env, cwd=project, timeout=60 * UNIT), 2, "nested too deeply", "pyproject.toml")


def test_over_long_file_name(cli_env: dict[str, str], work: Path) -> None:
    name = "c" * 300 + ".pem"
    res = run_devcert("create", "localhost", "--cert-file", name, env=cli_env, cwd=work)
    line = fails(res, 2, "--cert-file", "too long")
    assert len(line) < 400  # the 300-character name is shortened, not repeated in full
    assert not list(work.iterdir())


def fifo_or_device(kind: str, fifo: Path) -> tuple[Path, str]:
    """A FIFO made at ``fifo``, or /dev/zero; and how devcert's error names it."""
    if kind == "fifo":
        os.mkfifo(fifo)
        return fifo, "a FIFO"
    return Path("/dev/zero"), "a device"


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_fifo_or_device_as_csr(cli_env: dict[str, str], work: Path, kind: str) -> None:
    csr, expected = fifo_or_device(kind, work / "req.csr")
    res = run_devcert("create", "--csr", str(csr), env=cli_env, cwd=work, timeout=30 * UNIT)  # a hang fails the test
    fails(res, 2, "the CSR", expected)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_fifo_or_device_given_to_inspect(cli_env: dict[str, str], work: Path, kind: str) -> None:
    target, expected = fifo_or_device(kind, work / "cert.pem")
    res = run_devcert("inspect", str(target), env=cli_env, cwd=work, timeout=30 * UNIT)  # a hang fails the test
    fails(res, 2, "the certificate file", expected)


def test_fifo_at_a_sync_output_path_does_not_hang(caroot: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", DEV)
    (project / "certs").mkdir()
    fifo = project / "certs" / "dev-key.pem"
    os.mkfifo(fifo)
    res = run_devcert("sync", env=cli_env, cwd=project, timeout=60 * UNIT)  # a hang fails the test
    fails(res, 1, "dev-key.pem", "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not (project / "certs" / "dev.pem").exists()  # the pair changes together or not at all
    assert not [p for p in (project / "certs").iterdir() if p.name.endswith(".tmp")]


# -- 12. ca init --force keeps the old CA and says who still trusts it ----------------------


def test_ca_init_force_backs_up_the_old_ca_and_names_the_stores_that_trust_it(caroot: Path,
                                                                            cli_env: dict[str, str]) -> None:
    init_ca(cli_env)
    before = ca_files(caroot)
    old_sha = cert_sha256(caroot / "rootCA.pem")
    res = ok(run_devcert("ca", "init", "--force", env=cli_env))
    backup = caroot / "old" / old_sha
    assert (backup / "rootCA-key.pem").read_bytes() == before["rootCA-key.pem"]
    assert (backup / "rootCA.pem").read_bytes() == before["rootCA.pem"]
    assert file_mode(backup / "rootCA-key.pem") == 0o600 and file_mode(backup) == 0o700
    said = warnings(res.stderr, "replaced the CA")
    assert len(said) == 1, res.stderr
    assert str(backup) in said[0] and old_sha[:16] in said[0]
    # Nothing was installed here (a fresh CA in a private CAROOT), and it says so.
    assert "no trust store here trusted it" in said[0]
    assert cert_sha256(caroot / "rootCA.pem") != old_sha
    new = json.loads(ok(run_devcert("ca", "info", "--json", env=cli_env)).stdout)
    assert new["sha256"] == cert_sha256(caroot / "rootCA.pem")
