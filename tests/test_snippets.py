"""`devcert snippet`: every snippet is printed by the real CLI, run as printed, and a client
that trusts only the devcert CA talks to it over https:// and wss://."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT, clean_env, free_port, require_tool, run_devcert

NODE_MODULES = ROOT / ".cache" / "node" / "node_modules"
PY_TARGETS = ("python-ssl", "websockets", "aiohttp", "uvicorn", "hypercorn")
ALL_TARGETS = (*PY_TARGETS, "node", "nginx", "caddy", "vite")


def snippet(env: dict[str, str], *args: str) -> str:
    done = run_devcert("snippet", *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ca_only_context(caroot: Path) -> ssl.SSLContext:
    """A client context that trusts the devcert CA and nothing else."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(caroot / "rootCA.pem")
    return ctx


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate(timeout=5)
            pytest.fail(f"the server exited with {proc.returncode}:\n{out}\n{err}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on {host}:{port} after {timeout} s")


@contextmanager
def running(argv: list[str], env: dict[str, str], port: int, cwd: Path | None = None):
    """Start a server process, wait for its port, stop it (by its PID) afterwards."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        proc.communicate(timeout=10)


def https_get(url: str, caroot: Path) -> tuple[int, str]:
    with urllib.request.urlopen(url, context=ca_only_context(caroot), timeout=20) as response:
        return response.status, response.read().decode()


def wss_echo(url: str, caroot: Path, message: str = "hello through TLS") -> str:
    from websockets.asyncio.client import connect

    async def go() -> str:
        async with connect(url, ssl=ca_only_context(caroot), open_timeout=20, close_timeout=5) as ws:
            await ws.send(message)
            return await asyncio.wait_for(ws.recv(), 20)

    return asyncio.run(go())


def test_list_names_every_target(cli_env):
    out = snippet(cli_env, "--list")
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(ALL_TARGETS)
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_unknown_target_is_a_usage_error(cli_env):
    done = run_devcert("snippet", "flask-but-wrong", env=cli_env)
    assert done.returncode == 2
    assert "devcert snippet --list" in done.stderr and done.stdout == ""
    assert run_devcert("snippet", env=cli_env).returncode == 2


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_snippet_has_real_paths_and_run_comment(cli_env, caroot, target):
    out = snippet(cli_env, target)
    assert str(caroot / "leaves" / "localhost+2.pem") in out
    assert str(caroot / "leaves" / "localhost+2-key.pem") in out
    if target not in ("nginx", "caddy", "vite"):  # servers whose clients are browsers/curl
        assert str(caroot / "rootCA.pem") in out
    assert "Run:" in out or "Run (" in out
    assert "{{" not in out
    # The leaf it names was issued by the CA and exists.
    assert (caroot / "leaves" / "localhost+2.pem").exists()


def test_snippet_issues_for_given_names_and_keeps_the_leaf(cli_env, caroot):
    first = run_devcert("snippet", "python-ssl", "app.test", "127.0.0.1", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "Created" in first.stderr
    cert = caroot / "leaves" / "app.test+1.pem"
    assert str(cert) in first.stdout and "HOST = 'app.test'" in first.stdout
    before = cert.read_bytes()
    again = run_devcert("snippet", "python-ssl", "app.test", "127.0.0.1", env=cli_env)
    assert again.returncode == 0 and cert.read_bytes() == before and "Created" not in again.stderr


def test_port_option_is_used(cli_env):
    assert 'PORT = int(os.environ.get("PORT", "9555"))' in snippet(cli_env, "websockets", "--port", "9555")
    assert "listen 127.0.0.1:9444 ssl;" in snippet(cli_env, "nginx", "--port", "9444")
    assert run_devcert("snippet", "nginx", "--port", "70000", env=cli_env).returncode == 2


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("target", PY_TARGETS)
def test_python_snippet_runs_and_ca_only_client_connects(cli_env, caroot, tmp_path, target):
    code = snippet(cli_env, target)
    script = _write(tmp_path, f"snippet_{target.replace('-', '_')}.py", code)
    port = free_port()
    env = clean_env(PORT=str(port), PYTHONUNBUFFERED="1")
    with running([sys.executable, str(script), "server"], env, port):
        if target != "websockets":  # a websockets server answers plain GETs with 426
            status, body = https_get(f"https://localhost:{port}/", caroot)
            assert status == 200 and "over TLS" in body
        if target == "websockets":
            assert wss_echo(f"wss://localhost:{port}/", caroot) == "hello through TLS"
        elif target in ("aiohttp", "uvicorn", "hypercorn"):
            assert wss_echo(f"wss://localhost:{port}/ws", caroot) == "hello through TLS"
        if target in ("python-ssl", "websockets", "aiohttp"):
            # The snippet's own client, with no trust variables set: it trusts the CA itself.
            done = subprocess.run([sys.executable, str(script), "client"], env=env, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert ("hello" in done.stdout) or ("200" in done.stdout)


def test_python_snippet_is_refused_by_a_client_without_the_ca(cli_env, caroot, tmp_path):
    """The handshake above proves trust: a client that lacks the CA does fail."""
    script = _write(tmp_path, "s.py", snippet(cli_env, "python-ssl"))
    port = free_port()
    with running([sys.executable, str(script), "server"], clean_env(PORT=str(port)), port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA at all
        with pytest.raises(urllib.error.URLError) as err:
            urllib.request.urlopen(f"https://localhost:{port}/", context=ctx, timeout=20)
        assert isinstance(err.value.reason, ssl.SSLCertVerificationError)


def node_env(**extra: str) -> dict[str, str]:
    require_tool("node")
    if not (NODE_MODULES / "ws").is_dir():
        message = f"npm ws is not installed in {NODE_MODULES} (scripts/test installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return clean_env(NODE_PATH=str(NODE_MODULES), **extra)


@pytest.mark.slow
def test_node_snippet_runs_under_node_with_ws(cli_env, caroot, tmp_path):
    env = node_env()
    script = _write(tmp_path, "devcert-server.js", snippet(cli_env, "node"))
    port = free_port()
    env["PORT"] = str(port)
    with running(["node", str(script)], env, port):
        status, body = https_get(f"https://localhost:{port}/", caroot)
        assert status == 200 and "over TLS" in body
        assert wss_echo(f"wss://localhost:{port}/", caroot) == "hello through TLS"
    # Its client mode: a Node ws client that trusts the CA talks to its own server.
    port = free_port()
    env["PORT"] = str(port)
    done = subprocess.run(["node", str(script), "client"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "hello" in done.stdout


UPSTREAM = r"""
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send("upstream: " + message)

async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])) as server:
        await server.serve_forever()

asyncio.run(main())
"""


@contextmanager
def ws_upstream(tmp_path: Path):
    port = free_port()
    script = _write(tmp_path, "upstream.py", UPSTREAM)
    with running([sys.executable, str(script), str(port)], clean_env(), port):
        yield port


@pytest.mark.slow
def test_nginx_snippet_proxies_wss_to_a_ws_upstream(cli_env, caroot, tmp_path):
    # Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin") or require_tool("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    with ws_upstream(tmp_path) as upstream_port:
        port = free_port()
        conf = _write(prefix, "nginx.conf",
                      snippet(cli_env, "nginx", "--port", str(port), "--upstream", f"127.0.0.1:{upstream_port}"))
        test = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
                              capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, test.stderr
        argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]
        with running(argv, clean_env(), port):
            assert wss_echo(f"wss://localhost:{port}/", caroot, "ping") == "upstream: ping"


@pytest.mark.slow
def test_caddy_snippet_validates_and_proxies_wss(cli_env, caroot, tmp_path):
    caddy = require_tool("caddy", "apt-get install caddy")
    home = tmp_path / "caddy-home"
    home.mkdir()
    env = clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    with ws_upstream(tmp_path) as upstream_port:
        port = free_port()
        caddyfile = _write(tmp_path, "Caddyfile",
                           snippet(cli_env, "caddy", "--port", str(port), "--upstream", f"127.0.0.1:{upstream_port}"))
        check = subprocess.run([caddy, "validate", "--config", str(caddyfile), "--adapter", "caddyfile"],
                               capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        argv = [caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"]
        with running(argv, env, port, cwd=tmp_path):
            assert wss_echo(f"wss://localhost:{port}/", caroot, "ping") == "upstream: ping"


@pytest.mark.slow
def test_vite_snippet_serves_https(cli_env, caroot, tmp_path):
    vite = NODE_MODULES / ".bin" / "vite"
    require_tool("node")
    if not vite.exists():
        message = f"npm vite is not installed in {NODE_MODULES} (scripts/test installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    project = tmp_path / "app"
    project.mkdir()
    (project / "node_modules").symlink_to(NODE_MODULES)  # so the config's `import 'vite'` resolves
    _write(project, "index.html", "<!doctype html><title>devcert vite</title><p>hello from vite</p>\n")
    _write(project, "vite.config.js", snippet(cli_env, "vite"))
    port = free_port()
    env = clean_env(PORT=str(port))
    with running([str(vite), "--clearScreen", "false"], env, port, cwd=project):
        status, body = https_get(f"https://localhost:{port}/", caroot)
        assert status == 200 and "hello from vite" in body
