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

from conftest import ROOT, clean_env, require_tool
from devcert import LocalCA
from devcert.keyscan import detect, looks_like_pkcs12

E = serialization.Encoding
F = serialization.PrivateFormat
NOENC = serialization.NoEncryption()
PW = serialization.BestAvailableEncryption(b"secret")
DIGEST = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # base64 alphabet, 64 characters


def key_files() -> dict[str, bytes]:
    """One private key per format the hook must catch."""
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    dsa_key = dsa.generate_private_key(2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ca = LocalCA.ephemeral()
    leaf = ca.issue("localhost")
    rsa_pem = rsa_key.private_bytes(E.PEM, F.PKCS8, NOENC).decode()
    return {
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
    return {
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
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    for name in key_files():
        assert f"{name}: " in result.stderr
    for name in harmless_files():
        assert f"{name}: " not in result.stderr
    ok = subprocess.run([sys.executable, "-m", "devcert.cli.keyscan", *harmless_files()], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_keyscan_module_itself_runs_the_hook(tmp_path: Path) -> None:
    """`python -m devcert.keyscan` (the usage its docstring gives) is the hook, not a silent no-op."""
    keys, harmless = key_files(), harmless_files()
    for name, data in {**keys, **harmless}.items():
        (tmp_path / name).write_bytes(data)
    for module in ("devcert.keyscan", "devcert.cli.keyscan"):
        result = subprocess.run([sys.executable, "-m", module, "key-utf16.pem", "secret-data.yaml", "marker.py"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, (module, result.stderr)
        assert "key-utf16.pem: " in result.stderr and "secret-data.yaml: " in result.stderr
        assert "marker.py: " not in result.stderr
        ok = subprocess.run([sys.executable, "-m", module, *harmless], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
        assert ok.returncode == 0, (module, ok.stderr)


def test_detect_stays_fast_on_hostile_text() -> None:
    """Runs on every commit: long runs after a marker cost linear time, base64 decoding is bounded."""
    hostile = [
        b"-----BEGIN PRIVATE KEY-----\nA: " + b" " * 1_000_000 + b"x",
        b"-----BEGIN PRIVATE KEY-----" + b" \n" * 500_000,
        b"-----BEGIN PRIVATE KEY-----\n" + (b"A" * 64 + b"\n") * 50_000,  # no END line
        b"x = '-----BEGIN RSA PRIVATE KEY-----'\n" * 100_000,
        base64.encodebytes(b"0" * 3_000_000),  # 4 MB of base64 lines starting with "M"
    ]
    for data in hostile:
        started = time.perf_counter()
        assert detect(data) is None
        assert time.perf_counter() - started < 5, data[:40]


# -- the real pre-commit ---------------------------------------------------------------------


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


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
                          capture_output=True, text=True, timeout=900)


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

    from conftest import run_devcert

    env = dict(precommit_env)
    (project / "certs").mkdir()
    made = run_devcert("create", "--days", "40", "--cert-file", "certs/dev.pem", "--key-file", "certs/dev-key.pem",
                       "localhost", env=env, cwd=project)
    assert made.returncode == 0, made.stderr
    fresh = try_repo(hook_repo, "devcert-check", project, precommit_env)
    output = fresh.stdout + fresh.stderr
    assert fresh.returncode == 0, output
    assert "Passed" in output and "expires in 39 days" in output  # passes, with a warning
