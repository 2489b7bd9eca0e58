"""Fixtures and hooks only: a private CAROOT per test, a clean trust environment, a session cache.

Shared helpers live in tests/helpers.py (``from tests.helpers import ...``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcert.ca import LocalCA
from tests.debian_root import debian_copy  # noqa: F401  (a fixture: the rootfs and container tests)
from tests.helpers import PAGE, TLSServer, clean_env, require_sandbox


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


@pytest.fixture
def ca_and_server(tmp_path: Path) -> Iterator[tuple[Path, TLSServer]]:
    """A CA in a private CAROOT and an https server (TLSServer: it records each request's path and
    each refused handshake) on 127.0.0.1 using a leaf for localhost, for the trust-store tests."""
    require_sandbox()
    root = tmp_path / "caroot"
    ca = LocalCA.create(root)
    leaf = ca.issue("localhost", "127.0.0.1", "::1")
    os.chmod(tmp_path, 0o755)  # the sandbox's scripts read files below it
    with TLSServer(leaf.server_context(), body=PAGE, content_type="text/html; charset=utf-8") as server:
        yield root, server
