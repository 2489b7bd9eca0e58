"""The pre-commit hooks in .pre-commit-hooks.yaml, run by the real `pre-commit try-repo`.

try-repo installs the hook repository at its HEAD commit, so the tests copy the working tree
(whatever is uncommitted) into a temporary git repository and commit it there.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.helpers import ROOT, UNIT, clean_env, require_tool, run_devcert
from devcert import LocalCA
from devcert import keyscan
from devcert.keyscan import CHUNK, MAX_SCAN, OVERLAP, detect, looks_like_pkcs12

E = serialization.Encoding
F = serialization.PrivateFormat
NOENC = serialization.NoEncryption()
PW = serialization.BestAvailableEncryption(b"secret")
DIGEST = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # base64 alphabet, 64 characters


def rewrap(pem: bytes, width: int) -> bytes:
    """``pem`` with its base64 body wrapped at ``width`` columns (Proc-Type / DEK-Info headers kept)."""
    lines = pem.decode().strip().splitlines()
    headers = [line for line in lines[1:-1] if ":" in line]
    body = "".join(line for line in lines[1:-1] if line and ":" not in line)
    wrapped = [body[i:i + width] for i in range(0, len(body), width)]
    return "\n".join([lines[0], *headers, *([""] if headers else []), *wrapped, lines[-1]]).encode() + b"\n"


def prefixed(pem: bytes, prefix: str) -> bytes:
    """``pem`` with each line behind ``prefix`` (a comment, a mail quote); no trailing blanks."""
    return b"".join((prefix + line).rstrip().encode() + b"\n" for line in pem.decode().splitlines())


def pem_lines(pem: bytes) -> list[str]:
    return pem.decode().splitlines()


def key_files() -> dict[str, bytes]:
    """One private key per format the hook must catch."""
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    dsa_key = dsa.generate_private_key(2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ca = LocalCA.ephemeral()
    leaf = ca.issue("localhost")
    rsa_pem = rsa_key.private_bytes(E.PEM, F.PKCS8, NOENC).decode()
    ec_pem = ec_key.private_bytes(E.PEM, F.PKCS8, NOENC)
    rsa_encrypted = rsa_key.private_bytes(E.PEM, F.TraditionalOpenSSL, PW)
    return {
        # Wrapped at other widths than OpenSSL's 64 columns.
        "wrapped-32.pem": rewrap(rsa_pem.encode(), 32),
        "wrapped-76.key": rewrap(ec_key.private_bytes(E.PEM, F.TraditionalOpenSSL, NOENC), 76),
        "wrapped-32-encrypted.key": rewrap(rsa_encrypted, 32),
        "wrapped-16-ed25519.pem": rewrap(ed_key.private_bytes(E.PEM, F.PKCS8, NOENC), 16),
        "id_ed25519-wrapped-32": rewrap(ed_key.private_bytes(E.PEM, F.OpenSSH, NOENC), 32),
        # Behind comment or quote prefixes: pasted into a script, code, a config file, a mail.
        "commented.sh": prefixed(ec_pem, "# "),
        "commented-32.py": b"def f():\n" + prefixed(rewrap(ec_pem, 32), "    # "),
        "commented-encrypted.sh": prefixed(rsa_encrypted, "# "),
        "commented.js": prefixed(rsa_pem.encode(), "// "),
        "commented-nospace.go": prefixed(ec_pem, "//"),
        "quoted.eml": b"On Monday you wrote:\n" + prefixed(ec_pem, "> "),
        "quoted-twice-32.eml": prefixed(rewrap(ec_pem, 32), "> > "),
        "commented.ini": prefixed(ec_pem, "; "),
        "commented.sql": prefixed(ec_pem, "-- "),
        "block-comment.c": b"/*\n" + prefixed(ec_pem, " * ") + b" */\n",
        "commented-crlf.sh": prefixed(ec_pem, "# ").replace(b"\n", b"\r\n"),
        # A JSON array of the key's lines: on one line, and one element a line.
        "key-lines.json": json.dumps({"private_key": pem_lines(ec_pem)}).encode(),
        "key-lines-32.json": json.dumps(pem_lines(rewrap(rsa_pem.encode(), 32))).encode(),
        "key-lines-indented.json": json.dumps({"private_key": pem_lines(rewrap(ec_pem, 32))}, indent=2).encode(),
        "key-lines-encrypted.json": json.dumps(pem_lines(rsa_encrypted)).encode(),
        "key_lines.py": ("KEY = [\n" + "".join(f"    '{line}',\n" for line in pem_lines(ec_pem)) + "]\n").encode(),

        "pkcs8.pem": ec_key.private_bytes(E.PEM, F.PKCS8, NOENC),
        "pkcs8-encrypted.pem": ec_key.private_bytes(E.PEM, F.PKCS8, PW),
        "rsa.key": rsa_key.private_bytes(E.PEM, F.TraditionalOpenSSL, NOENC),
        "rsa-encrypted.key": rsa_key.private_bytes(E.PEM, F.TraditionalOpenSSL, PW),  # Proc-Type: 4,ENCRYPTED
        "ec.key": ec_key.private_bytes(E.PEM, F.TraditionalOpenSSL, NOENC),
        "dsa.key": dsa_key.private_bytes(E.PEM, F.TraditionalOpenSSL, NOENC),
        "id_ed25519": ed_key.private_bytes(E.PEM, F.OpenSSH, NOENC),
        "pkcs8.der": rsa_key.private_bytes(E.DER, F.PKCS8, NOENC),
        "pkcs8-encrypted.der": ec_key.private_bytes(E.DER, F.PKCS8, PW),
        "rsa-pkcs1.der": rsa_key.private_bytes(E.DER, F.TraditionalOpenSSL, NOENC),
        "ec-sec1.der": ec_key.private_bytes(E.DER, F.TraditionalOpenSSL, NOENC),
        "bundle.p12": leaf.pkcs12(b"secret"),
        "nopass.p12": pkcs12.serialize_key_and_certificates(b"x", leaf.key, leaf.cert, None, NOENC),
        "settings.env": b'DEBUG=1\nTLS_KEY="' + leaf.key_pem.replace(b"\n", b"\\n") + b'"\n',
        "service-account.json": json.dumps({"type": "x", "private_key": leaf.key_pem.decode()}).encode(),
        "escaped-slashes.json": json.dumps({"key": rsa_pem}).replace("/", "\\/").encode(),  # PHP json_encode
        "secret.yaml": b"stringData:\n  tls.key: |\n    " + leaf.key_pem.strip().replace(b"\n", b"\n    ") + b"\n",
        "flattened.env": b"TLS_KEY=" + leaf.key_pem.strip().replace(b"\n", b" ") + b"\n",
        "KeyFixture.java": ("static final String KEY =\n    "
                            + " +\n    ".join(f'"{line}\\n"' for line in rsa_pem.splitlines()) + ";\n").encode(),
        # PowerShell 5 `>` writes UTF-16 with a BOM.
        "key-utf16.pem": leaf.key_pem.decode().encode("utf-16"),
        "key-utf16be.pem": leaf.key_pem.decode().encode("utf-16-be"),
        "trailing-newline.der": ec_key.private_bytes(E.DER, F.TraditionalOpenSSL, NOENC) + b"\n",
        # A Kubernetes Secret's data: base64 of the PEM file.
        "secret-data.yaml": (b"apiVersion: v1\nkind: Secret\ndata:\n  tls.crt: " + base64.b64encode(leaf.cert_pem)
                             + b"\n  tls.key: " + base64.b64encode(leaf.key_pem) + b"\n"),
        "key.der.b64": base64.b64encode(ec_key.private_bytes(E.DER, F.TraditionalOpenSSL, NOENC)) + b"\n",
        "key.der.wrapped.b64": base64.encodebytes(rsa_key.private_bytes(E.DER, F.PKCS8, NOENC)),  # `base64` wraps at 76
        "keystore.yaml": b"binaryData:\n  keystore.p12: " + base64.b64encode(leaf.pkcs12(b"secret")) + b"\n",
    }


def harmless_files() -> dict[str, bytes]:
    """Certificates and other things that look alike but hold no private key."""
    ca = LocalCA.ephemeral()
    leaf = ca.issue("localhost", "127.0.0.1")
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "localhost")])
    ).sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    pub = leaf.cert.public_key().public_bytes(E.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    csr_pem = csr.public_bytes(E.PEM)
    return {
        # Certificates, CSRs and public keys in the layouts keys are caught in.
        "cert-32.pem": rewrap(leaf.cert_pem, 32),
        "cert-76.pem": rewrap(ca.cert_pem, 76),
        "pub-16.pem": rewrap(pub, 16),
        "commented-cert.sh": prefixed(leaf.cert_pem, "# "),
        "commented-csr.js": prefixed(rewrap(csr_pem, 32), "// "),
        "quoted-pub.eml": prefixed(pub, "> "),
        "cert-lines.json": json.dumps({"cert": pem_lines(leaf.cert_pem)}).encode(),
        "csr-lines-indented.json": json.dumps(pem_lines(rewrap(csr_pem, 32)), indent=2).encode(),
        "pub-lines.json": json.dumps(pem_lines(pub)).encode(),
        # Docs and code that mention the markers in those layouts.
        "commented-docs.sh": (b"# A key file looks like this:\n# -----BEGIN PRIVATE KEY-----\n# MIIEvQIBADANBg...\n"
                              b"# -----END PRIVATE KEY-----\n"),
        "markers.json": json.dumps(["-----BEGIN PRIVATE KEY-----", "<your key>", "-----END PRIVATE KEY-----"]).encode(),
        "marker-names.json": json.dumps({"begin": "-----BEGIN PRIVATE KEY-----",
                                         "end": "-----END PRIVATE KEY-----"}).encode(),
        "prose-between-markers.md": (b"-----BEGIN PRIVATE KEY-----\nyour key goes here, wrapped at any width you like\n"
                                     b"-----END PRIVATE KEY-----\n"),
        "digests-32.txt": (b"-----BEGIN EC PRIVATE KEY-----\n" + DIGEST[:32] + b"\n" + DIGEST[32:] + b"\n"
                           + DIGEST[:32] + b"\n-----END EC PRIVATE KEY-----\n"),
        "digest-lines.json": json.dumps(["-----BEGIN PRIVATE KEY-----", DIGEST[:32].decode(), DIGEST[32:].decode(),
                                         "-----END PRIVATE KEY-----"]).encode(),
        "cert.pem": leaf.cert_pem,
        "ca.pem": ca.cert_pem,
        "chain.pem": leaf.cert_pem + ca.cert_pem,
        "cert.der": leaf.cert.public_bytes(E.DER),
        "pub.pem": leaf.cert.public_key().public_bytes(E.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "truststore.p12": pkcs12.serialize_key_and_certificates(None, None, None, [ca.cert], NOENC),
        "req.csr": csr.public_bytes(E.PEM),
        "req.der": csr.public_bytes(E.DER),
        "docs.md": b"Never commit a file with -----BEGIN PRIVATE KEY----- ... in it.\n",
        # Code and docs that mention the markers near base64-looking text (hex digests, URLs).
        "marker.py": b'MARKER = b"-----BEGIN PRIVATE KEY-----"\nEXPECTED_SHA256 = "' + DIGEST + b'"\n',
        "startswith.py": (b'def is_key(data):\n    return data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")\n'
                          b"# see https://github.com/pyca/cryptography/blob/main/src/cryptography/hazmat/primitives/"
                          b"serialization/base.py\n"),
        "keys.md": (b"# Keys\nNever commit a file that starts with `-----BEGIN PRIVATE KEY-----`. Check with:\n"
                    b"    sha256sum key.pem  # " + DIGEST + b"\n"),
        "markers.py": (b"BEGIN = '-----BEGIN EC PRIVATE KEY-----'\n" + DIGEST + b"\n"
                       b"END = '-----END EC PRIVATE KEY-----'\n"),
        "between-markers.txt": b"-----BEGIN EC PRIVATE KEY-----\n" + DIGEST + b"\n-----END EC PRIVATE KEY-----\n",
        "example.md": (b"```\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC...\n"
                       b"-----END PRIVATE KEY-----\n```\n"),
        "placeholder.pem": b"-----BEGIN RSA PRIVATE KEY-----\n<paste the key here>\n-----END RSA PRIVATE KEY-----\n",
        "base64-marker.md": b"Base64 of a PEM key starts with LS0tLS1CRUdJTi (`-----BEGIN`).\n",
        "cert-secret.yaml": b"data:\n  tls.crt: " + base64.b64encode(leaf.cert_pem + ca.cert_pem) + b"\n",
        "cert.der.b64": base64.encodebytes(leaf.cert.public_bytes(E.DER)),
        "pub.der.b64": base64.b64encode(
            leaf.cert.public_key().public_bytes(E.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
        "cert-utf16.pem": leaf.cert_pem.decode().encode("utf-16"),
        "docs-utf16.md": "Never commit -----BEGIN PRIVATE KEY----- files.\n".encode("utf-16"),
    }


def test_detect_every_key_format() -> None:
    for name, data in key_files().items():
        assert detect(data), f"{name} was not detected as a private key"
    assert looks_like_pkcs12(key_files()["bundle.p12"])


def test_certificates_pass() -> None:
    for name, data in harmless_files().items():
        assert detect(data) is None, f"{name} was wrongly flagged: {detect(data)}"


def test_keyscan_module_names_each_file(tmp_path: Path) -> None:
    for name, data in {**key_files(), **harmless_files()}.items():
        (tmp_path / name).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "devcert.cli.keyscan", *sorted(os.listdir(tmp_path))],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60 * UNIT)
    assert result.returncode == 1
    for name in key_files():
        assert f"{name}: " in result.stderr
    for name in harmless_files():
        assert f"{name}: " not in result.stderr
    ok = subprocess.run([sys.executable, "-m", "devcert.cli.keyscan", *harmless_files()], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60 * UNIT)
    assert ok.returncode == 0, ok.stderr


def test_keyscan_module_itself_runs_the_hook(tmp_path: Path) -> None:
    """`python -m devcert.cli.keyscan` is the hook; the core module `devcert.keyscan`, once a second
    entry point, refuses to run as one (the core never imports the CLI), never a silent pass."""
    keys, harmless = key_files(), harmless_files()
    for name, data in {**keys, **harmless}.items():
        (tmp_path / name).write_bytes(data)
    old = subprocess.run([sys.executable, "-m", "devcert.keyscan", *harmless], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert old.returncode == 1 and "python -m devcert.cli.keyscan" in old.stderr, old.stderr
    for module in ("devcert.cli.keyscan",):
        result = subprocess.run([sys.executable, "-m", module, "key-utf16.pem", "secret-data.yaml", "marker.py"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60 * UNIT)
        assert result.returncode == 1, (module, result.stderr)
        assert "key-utf16.pem: " in result.stderr and "secret-data.yaml: " in result.stderr
        assert "marker.py: " not in result.stderr
        ok = subprocess.run([sys.executable, "-m", module, *harmless], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60 * UNIT)
        assert ok.returncode == 0, (module, ok.stderr)


def test_detect_stays_fast_on_hostile_text() -> None:
    """Runs on every commit: long runs after a marker cost linear time, base64 decoding is bounded."""
    hostile = [
        b"-----BEGIN PRIVATE KEY-----\nA: " + b" " * 1_000_000 + b"x",
        b"-----BEGIN PRIVATE KEY-----" + b" \n" * 500_000,
        b"-----BEGIN PRIVATE KEY-----\n" + (b"A" * 64 + b"\n") * 50_000,  # no END line
        b"x = '-----BEGIN RSA PRIVATE KEY-----'\n" * 100_000,
        base64.encodebytes(b"0" * 3_000_000),  # 4 MB of base64 lines starting with "M"
        b"# -----BEGIN PRIVATE KEY-----\n" * 100_000,
        b"-----BEGIN PRIVATE KEY-----" + b"\n> # ; * " * 200_000,
        b'["-----BEGIN PRIVATE KEY-----", ' * 100_000,
        b'"-----BEGIN PRIVATE KEY-----", "' + b'MIIE", "' * 200_000,
        (b"-----BEGIN PRIVATE KEY-----\n" + b"MIIEMIIEMIIEMIIE\n" * 100 + b"-----END PUBLIC KEY-----\n") * 2_000,
        bytes(50_000_000),  # a sparse file, a disk image: NULs around UTF-16 marker bytes
    ]
    for data in hostile:
        started = time.perf_counter()
        assert detect(data) is None
        assert time.perf_counter() - started < 5, data[:40]


# -- whole files -----------------------------------------------------------------------------


def run_keyscan(*files: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devcert.cli.keyscan", *files], cwd=cwd, capture_output=True,
                          text=True, timeout=120 * UNIT)


def filler(size: int) -> bytes:
    """``size`` bytes of log-like text, with base64-looking words, ending with a line break."""
    line = b"2024-05-01T12:00:00Z INFO request id=MIIBIjANBgkqhkiG9w0BAQEFAAOC path=/api/v1 status=200\n"
    return (line * (size // len(line) + 1))[:size - 1] + b"\n"


def test_key_after_40_mib_of_filler_is_found(tmp_path: Path) -> None:
    """The whole file is read, not its first 32 MiB (in windows, so memory stays bounded)."""
    log = tmp_path / "big.log"
    log.write_bytes(filler(40 * 1024 * 1024))
    clean = run_keyscan("big.log", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(E.PEM, F.PKCS8, NOENC)
    with log.open("ab") as handle:
        handle.write(pem + filler(1000))
    found = run_keyscan("big.log", cwd=tmp_path)
    assert found.returncode == 1
    assert "big.log: PEM PRIVATE KEY" in found.stderr


def test_key_across_a_window_boundary_is_found() -> None:
    """A key that starts just before a window's end, or right at the next one's start, is whole
    in one window; the bytes before a window are still its context ("x-----BEGIN" is no key)."""
    pem = prefixed(rewrap(ec.generate_private_key(ec.SECP256R1()).private_bytes(E.PEM, F.PKCS8, NOENC), 32), "# ")
    fill = filler(2 * CHUNK + OVERLAP)
    for start in (CHUNK - len(pem) // 2, CHUNK - 2, CHUNK, CHUNK + 1, 2 * CHUNK - 3, 2 * CHUNK + OVERLAP // 2):
        data = fill[:start] + b"\n" + pem + fill[start:]
        assert detect(data) == "PEM PRIVATE KEY", start
    inside_word = rewrap(ec.generate_private_key(ec.SECP256R1()).private_bytes(E.PEM, F.PKCS8, NOENC), 64)
    assert detect(fill[:CHUNK - 1] + b"x" + inside_word + fill) is None  # the marker starts a window
    # A UTF-16 file (PowerShell's `>`) with the key in its third window, far from the BOM.
    utf16 = (fill[:CHUNK + 100] + b"\n" + inside_word).decode().encode("utf-16")
    assert len(utf16) > 2 * CHUNK and detect(utf16) == "PEM PRIVATE KEY (UTF-16 text)"


def test_file_over_the_limit_fails_as_too_large(tmp_path: Path) -> None:
    """Never a silent pass: a file too large to read whole fails the hook, with one line saying so."""
    huge = tmp_path / "huge.bin"
    huge.touch()
    os.truncate(huge, MAX_SCAN + 1)  # sparse: no disk used
    (tmp_path / "cert.pem").write_bytes(LocalCA.ephemeral().cert_pem)
    result = run_keyscan("huge.bin", "cert.pem", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == [line for line in lines if line.startswith("huge.bin: ")] and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"huge.bin: too large to scan ({MAX_SCAN + 1} bytes > {MAX_SCAN}); "), lines


def test_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked.pem").write_bytes(b"x")

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)
    assert keyscan.scan([tmp_path / "locked.pem"]) == [
        keyscan.Finding(str(tmp_path / "locked.pem"), "cannot read (Permission denied)", True)]


# -- the real pre-commit ---------------------------------------------------------------------


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60 * UNIT)


GIT_ID = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's devcert, committed into a temporary git repository."""
    require_tool("git")
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, repo / name)
    if not (repo / "README.md").exists():
        (repo / "README.md").write_text("devcert\n")
    shutil.copytree(ROOT / "devcert", repo / "devcert", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git(*GIT_ID, "commit", "-q", "-m", "snapshot", cwd=repo)
    return repo


@pytest.fixture(scope="module")
def precommit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = clean_env(PRE_COMMIT_HOME=str(home), DEVCERT_CAROOT=str(home / "caroot"))
    for key in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
        env.pop(key, None)
    return env


def pre_commit() -> list[str]:
    exe = Path(sys.executable).with_name("pre-commit")
    return [str(exe)] if exe.exists() else [require_tool("pre-commit")]


def try_repo(repo: Path, hook: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*pre_commit(), "try-repo", str(repo), hook, "--verbose"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900 * UNIT)


def new_project(tmp_path: Path, files: dict[str, bytes]) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    git("init", "-q", cwd=project)
    for name, data in files.items():
        (project / name).write_bytes(data)
    git("add", *files, cwd=project)  # staged, not committed: what a commit would add
    return project


@pytest.mark.slow
def test_precommit_catches_each_staged_key(tmp_path: Path, hook_repo: Path, precommit_env: dict[str, str]) -> None:
    keys = key_files()
    project = new_project(tmp_path, {**keys, **harmless_files()})
    result = try_repo(hook_repo, "devcert-no-private-keys", project, precommit_env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Failed" in output
    for name in keys:
        assert f"{name}: " in output, f"{name} not reported:\n{output}"
    for name in harmless_files():
        assert f"{name}: " not in output


@pytest.mark.slow
def test_precommit_passes_certificates(tmp_path: Path, hook_repo: Path, precommit_env: dict[str, str]) -> None:
    project = new_project(tmp_path, harmless_files())
    result = try_repo(hook_repo, "devcert-no-private-keys", project, precommit_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


@pytest.mark.slow
def test_precommit_devcert_check(tmp_path: Path, hook_repo: Path, precommit_env: dict[str, str]) -> None:
    config = b'[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "certs/dev.pem", key = "certs/dev-key.pem" }]\n'
    project = new_project(tmp_path, {"pyproject.toml": config, ".gitignore": b"/certs/\n"})
    stale = try_repo(hook_repo, "devcert-check", project, precommit_env)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "would create certs/dev.pem" in stale.stdout

    env = dict(precommit_env)
    (project / "certs").mkdir()
    made = run_devcert("create", "--days", "40", "--cert-file", "certs/dev.pem", "--key-file", "certs/dev-key.pem",
                       "localhost", env=env, cwd=project)
    assert made.returncode == 0, made.stderr
    fresh = try_repo(hook_repo, "devcert-check", project, precommit_env)
    output = fresh.stdout + fresh.stderr
    assert fresh.returncode == 0, output
    assert "Passed" in output and "expires in 39 days" in output  # passes, with a warning
