"""`devcert snippet`: every snippet is printed by the real CLI, run as printed, and a client
that trusts only the devcert CA talks to it over https:// and wss://."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import (IN_USE, NODE_MODULES, UNIT, candidate_port, clean_env, first_line, missing, require_tool,
                           run_devcert, started_on_a_free_port, stop)

PY_TARGETS = ("python-ssl", "websockets", "aiohttp", "uvicorn", "hypercorn")
#: Targets that print a server (and client); the container targets have their own tests (tests/snippets/test_containers.py).
SERVER_TARGETS = (*PY_TARGETS, "node", "nginx", "caddy", "vite")
ALL_TARGETS = (*SERVER_TARGETS, "dockerfile", "compose", "devcontainer")


def snippet(env: dict[str, str], *args: str) -> str:
    done = run_devcert("snippet", *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ca_only_context(caroot: Path) -> ssl.SSLContext:
    """A client context that trusts the devcert CA and nothing else."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(caroot / "rootCA.pem")
    return ctx


def popen(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running(start: Callable[[int], subprocess.Popen[str]], what: str):  # type: ignore[no-untyped-def]
    """``start(port)`` a server that takes its port from us and wait until it listens; yields
    (process, port), stops it by its PID afterwards. The snippets read $PORT and print the port
    they were given (a port the OS picked cannot be reported), nginx and Caddy read theirs from
    the config the snippet holds: so the port is one that was free a moment ago, and a server
    that finds it taken is started again on another (helpers.started_on_a_free_port)."""
    return started_on_a_free_port(start, what=what)


def run_on_a_free_port(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run a snippet's client mode, which starts its own server on $PORT and talks to it; again
    on another port when the one that was free a moment ago was taken in between."""
    for _ in range(5):
        port = candidate_port()
        done = subprocess.run(argv, env={**env, "PORT": str(port)}, capture_output=True, text=True, timeout=60 * UNIT)
        if done.returncode == 0 or not any(marker in done.stderr.lower() for marker in IN_USE):
            break
    return done, port


def https_get(url: str, caroot: Path) -> tuple[int, str]:
    with urllib.request.urlopen(url, context=ca_only_context(caroot), timeout=20 * UNIT) as response:
        return response.status, response.read().decode()


def wss_echo(url: str, caroot: Path, message: str = "hello through TLS") -> str:
    from websockets.asyncio.client import connect

    async def go() -> str:
        async with connect(url, ssl=ca_only_context(caroot), open_timeout=20 * UNIT, close_timeout=5 * UNIT) as ws:
            await ws.send(message)
            return await asyncio.wait_for(ws.recv(), 20 * UNIT)

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


@pytest.mark.parametrize("target", SERVER_TARGETS)
def test_snippet_has_real_paths_and_run_comment(cli_env, caroot, target):
    out = snippet(cli_env, target)
    assert str(caroot / "leaves" / "localhost+2.pem") in out
    assert str(caroot / "leaves" / "localhost+2-key.pem") in out
    if target not in ("nginx", "caddy", "vite"):  # servers whose clients are browsers/curl
        assert str(caroot / "rootCA.pem") in out
    assert ("Run (" if target == "nginx" else "Run:") in out  # nginx's says which way it runs
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


#: The body each snippet's server answers GET / with.
BODIES = {"python-ssl": "hello over TLS\n", "aiohttp": "hello over TLS\n", "hypercorn": "hello over TLS\n",
          "uvicorn": '{"hello":"over TLS"}', "node": "hello over TLS\n"}
#: What each snippet's client prints against its server: the status and body, then the echo of "hello".
CLIENT_SAYS = {"python-ssl": "200 hello over TLS\n", "websockets": "hello\n", "aiohttp": "200 hello over TLS\nhello\n"}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("target", PY_TARGETS)
def test_python_snippet_runs_and_ca_only_client_connects(cli_env, caroot, tmp_path, target):
    code = snippet(cli_env, target)
    script = _write(tmp_path, f"snippet_{target.replace('-', '_')}.py", code)
    start = lambda port: popen([sys.executable, str(script), "server"], clean_env(PORT=str(port), PYTHONUNBUFFERED="1"))  # noqa: E731
    with running(start, target) as (_, port):
        if target != "websockets":  # a websockets server answers plain GETs with 426
            assert https_get(f"https://localhost:{port}/", caroot) == (200, BODIES[target])
        if target == "websockets":
            assert wss_echo(f"wss://localhost:{port}/", caroot) == "hello through TLS"
        elif target in ("aiohttp", "uvicorn", "hypercorn"):
            assert wss_echo(f"wss://localhost:{port}/ws", caroot) == "hello through TLS"
        if target in CLIENT_SAYS:
            # The snippet's own client, with no trust variables set: it trusts the CA itself.
            done = subprocess.run([sys.executable, str(script), "client"], env=clean_env(PORT=str(port)),
                                  capture_output=True, text=True, timeout=60 * UNIT)
            assert done.returncode == 0, done.stderr
            assert done.stdout == CLIENT_SAYS[target], done.stdout


def test_python_snippet_is_refused_by_a_client_without_the_ca(cli_env, caroot, tmp_path):
    """The handshake above proves trust: a client that lacks the CA does fail."""
    script = _write(tmp_path, "s.py", snippet(cli_env, "python-ssl"))
    start = lambda port: popen([sys.executable, str(script), "server"], clean_env(PORT=str(port)))  # noqa: E731
    with running(start, "python-ssl") as (_, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA at all
        with pytest.raises(urllib.error.URLError) as err:
            urllib.request.urlopen(f"https://localhost:{port}/", context=ctx, timeout=20 * UNIT)
        assert isinstance(err.value.reason, ssl.SSLCertVerificationError)


def node_env(**extra: str) -> dict[str, str]:
    require_tool("node")
    if not (NODE_MODULES / "ws").is_dir():
        missing(f"npm ws is not installed in {NODE_MODULES} (scripts/test installs it)")
    return clean_env(NODE_PATH=str(NODE_MODULES), **extra)


@pytest.mark.slow
def test_node_snippet_runs_under_node_with_ws(cli_env, caroot, tmp_path):
    env = node_env()
    script = _write(tmp_path, "devcert-server.js", snippet(cli_env, "node"))
    with running(lambda port: popen(["node", str(script)], {**env, "PORT": str(port)}), "node") as (_, port):
        assert https_get(f"https://localhost:{port}/", caroot) == (200, BODIES["node"])
        assert wss_echo(f"wss://localhost:{port}/", caroot) == "hello through TLS"
    # Its client mode: a Node ws client that trusts the CA talks to its own server.
    done, port = run_on_a_free_port(["node", str(script), "client"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"serving https://localhost:{port}/ and wss://localhost:{port}/", "hello"]


UPSTREAM = r"""
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send("upstream: " + message)

async def main():
    # Port 0: the OS picks a free one; the one line on stdout says which, once listening.
    async with serve(echo, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"""


@contextmanager
def ws_upstream(tmp_path: Path):
    script = _write(tmp_path, "upstream.py", UPSTREAM)
    proc = popen([sys.executable, str(script)], clean_env())
    try:
        yield int(first_line(proc, what="the upstream's port"))
    finally:
        stop(proc)
        proc.communicate(timeout=10 * UNIT)


@pytest.mark.slow
def test_nginx_snippet_proxies_wss_to_a_ws_upstream(cli_env, caroot, tmp_path):
    # Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin") or require_tool("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    with ws_upstream(tmp_path) as upstream_port:
        def start(port: int) -> subprocess.Popen[str]:
            conf = _write(prefix, "nginx.conf",
                          snippet(cli_env, "nginx", "--port", str(port), "--upstream", f"127.0.0.1:{upstream_port}"))
            test = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
                                  capture_output=True, text=True, timeout=30 * UNIT)
            assert test.returncode == 0, test.stderr
            return popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"], clean_env())

        with running(start, "nginx") as (_, port):
            assert wss_echo(f"wss://localhost:{port}/", caroot, "ping") == "upstream: ping"


@pytest.mark.slow
def test_caddy_snippet_validates_and_proxies_wss(cli_env, caroot, tmp_path):
    caddy = require_tool("caddy", "apt-get install caddy")
    home = tmp_path / "caddy-home"
    home.mkdir()
    env = clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    with ws_upstream(tmp_path) as upstream_port:
        def start(port: int) -> subprocess.Popen[str]:
            caddyfile = _write(tmp_path, "Caddyfile",
                               snippet(cli_env, "caddy", "--port", str(port), "--upstream", f"127.0.0.1:{upstream_port}"))
            check = subprocess.run([caddy, "validate", "--config", str(caddyfile), "--adapter", "caddyfile"],
                                   capture_output=True, text=True, timeout=60 * UNIT, env=env, cwd=tmp_path)
            assert check.returncode == 0, check.stderr
            return popen([caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"], env, cwd=tmp_path)

        with running(start, "caddy") as (_, port):
            assert wss_echo(f"wss://localhost:{port}/", caroot, "ping") == "upstream: ping"


@pytest.mark.slow
def test_vite_snippet_serves_https(cli_env, caroot, tmp_path):
    vite = NODE_MODULES / ".bin" / "vite"
    require_tool("node")
    if not vite.exists():
        missing(f"npm vite is not installed in {NODE_MODULES} (scripts/test installs it)")
    project = tmp_path / "app"
    project.mkdir()
    (project / "node_modules").symlink_to(NODE_MODULES)  # so the config's `import 'vite'` resolves
    _write(project, "index.html", "<!doctype html><title>devcert vite</title><p>hello from vite</p>\n")
    _write(project, "vite.config.js", snippet(cli_env, "vite"))
    start = lambda port: popen([str(vite), "--clearScreen", "false"], clean_env(PORT=str(port)), cwd=project)  # noqa: E731
    with running(start, "vite") as (_, port):
        status, body = https_get(f"https://localhost:{port}/", caroot)
        assert status == 200 and "<p>hello from vite</p>" in body
