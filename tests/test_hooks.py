"""The pre-commit hooks in .pre-commit-hooks.yaml, run by the real `pre-commit try-repo`.

try-repo installs the hook repository at its HEAD commit, so the tests copy the working tree
(whatever is uncommitted) into a temporary git repository and commit it there.
"""

from __future__ import annotations

import os
import shutil
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


def key_files() -> dict[str, bytes]:
    """One private key per format the hook must catch."""
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    dsa_key = dsa.generate_private_key(2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ca = LocalCA.ephemeral()
    leaf = ca.issue("localhost")
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
