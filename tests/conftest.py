"""Shared fixtures: a private CAROOT per test, a clean trust environment, the CLI as a user runs it."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Variables this machine exports that change which CAs a client trusts. A test of trust
#: sets or clears them explicitly (docs/ARCHITECTURE.md, "Tests").
TRUST_ENV_VARS = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "NIX_SSL_CERT_FILE", "PIP_CERT",
    "AWS_CA_BUNDLE", "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "DENO_CERT",
    "NODE_USE_SYSTEM_CA", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "DEVCERT_TRUST_STORES",
    "CARGO_HTTP_CAINFO", "BUNDLE_SSL_CA_CERT", "HEX_CACERTS_PATH",
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, why: str = "") -> str:
    """The path of tool ``name``; a missing tool skips the test, or fails it under CI=true.

    scripts/test installs every tool the suite needs, so under CI a missing one is a broken
    set-up, and a skipped trust test would prove nothing.
    """
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed{': ' + why if why else ''} (scripts/test installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_sandbox() -> None:
    """Skip (or fail under CI) when the private trust-store namespace cannot be made here."""
    from sandbox import unavailable_reason

    reason = unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the trust-overriding variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in TRUST_ENV_VARS}
    env.update(extra)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def devcert_exe() -> str:
    """The installed ``devcert`` console script of the interpreter running the tests."""
    exe = Path(sys.executable).with_name("devcert")
    return str(exe) if exe.exists() else "devcert"


def file_mode(path: Path) -> int:
    """Permission bits of ``path``, as ``ls -l`` shows them (0o600, 0o644, ...)."""
    return stat.S_IMODE(path.stat().st_mode)


def one_error_line(stderr: str) -> str:
    """The single ``devcert: error: ...`` line; no traceback, nothing else but warnings/notes."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("devcert: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def run_devcert(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``devcert`` executable as a user would."""
    return subprocess.run([devcert_exe(), *args], env=env, cwd=cwd, input=input, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def caroot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty CAROOT for this test (DEVCERT_CAROOT), never the user's real one."""
    path = tmp_path / "caroot"
    monkeypatch.setenv("DEVCERT_CAROOT", str(path))
    return path


@pytest.fixture
def cli_env(caroot: Path) -> dict[str, str]:
    """Environment for running the devcert executable: private CAROOT, no trust overrides."""
    return clean_env(DEVCERT_CAROOT=str(caroot))


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _no_real_cache(_session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """devcert's cache (doctor's Go client) goes to a folder of this test session, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_session_cache))


@pytest.fixture(autouse=True)
def _no_real_caroot(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the real user CAROOT: default DEVCERT_CAROOT to a throwaway folder."""
    if "DEVCERT_CAROOT" not in os.environ:
        monkeypatch.setenv("DEVCERT_CAROOT", str(tmp_path_factory.mktemp("default-caroot") / "ca"))
