"""`devcert env`: the combined bundle and the exports, proven by real clients in a shell that
has nothing but those exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import certifi
import pytest


from devcert import env as clients
from devcert.ca import LocalCA
from devcert.cli.messages import word
from tests import sandbox
from tests.helpers import (NODE22_BIN, STACKS_DIR, UNIT, clean_env, devcert_exe, first_line, require_sandbox, require_tool,
                           run_devcert, stop)

SERVER = r"""
import asyncio, ssl, sys
from http import HTTPStatus
from websockets.asyncio.server import serve

cert, key = sys.argv[1], sys.argv[2]

def process_request(connection, request):
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return connection.respond(HTTPStatus.OK, "hello over TLS\n")

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # Port 0: the OS picks a free one, and the one line on stdout says which (once listening).
    async with serve(echo, "127.0.0.1", 0, ssl=ctx, process_request=process_request) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"""

# Every client with its defaults: no context, no verify= argument, nothing but the environment.
CLIENTS = r"""
import asyncio, os, sys, urllib.request
url = sys.argv[1]
T = 20 * float(os.environ.get("DEVCERT_TEST_TIMEOUT", "1"))  # tests.helpers.UNIT, in this process
results = {}

def attempt(name, fn):
    try:
        fn()
        results[name] = "ok"
    except Exception as err:
        results[name] = f"{type(err).__name__}: {err}"

attempt("urllib", lambda: urllib.request.urlopen(url, timeout=T).read())

import requests
attempt("requests", lambda: requests.get(url, timeout=T).raise_for_status())

import httpx
attempt("httpx", lambda: httpx.get(url, timeout=T).raise_for_status())

import aiohttp
async def aio():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=T)) as session:
        async with session.get(url) as response:
            response.raise_for_status()
attempt("aiohttp", lambda: asyncio.run(aio()))

from websockets.asyncio.client import connect
async def wss():
    async with connect(url.replace("https://", "wss://"), open_timeout=T) as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
attempt("websockets", lambda: asyncio.run(wss()))

import json
print(json.dumps(results))
"""


@contextmanager
def devcert_server(cli_env, tmp_path: Path):
    done = run_devcert("create", "--cert-file", str(tmp_path / "leaf.pem"), "--key-file", str(tmp_path / "leaf-key.pem"),
                       "localhost", "127.0.0.1", env=cli_env)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "leaf.pem"), str(tmp_path / "leaf-key.pem")],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = first_line(proc, what="the test server's port")
        yield f"https://localhost:{port}/"
    finally:
        stop(proc)
        proc.communicate(timeout=10 * UNIT)


def run_clients(url: str, tmp_path: Path, env: dict[str, str], with_exports: bool) -> dict[str, str]:
    script = tmp_path / "clients.py"
    script.write_text(CLIENTS)
    prelude = f'eval "$({devcert_exe()} env)" && ' if with_exports else ""
    done = subprocess.run(["bash", "-c", f'{prelude}exec "$PY" "$SCRIPT" "$URL"'], capture_output=True, text=True,
                          timeout=120 * UNIT, env={**env, "PY": sys.executable, "SCRIPT": str(script), "URL": url})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_python_client_trusts_a_devcert_server_with_only_the_exports(cli_env, tmp_path):
    with devcert_server(cli_env, tmp_path) as url:
        without = run_clients(url, tmp_path, cli_env, with_exports=False)
        # The control: with a clean environment and no install, none of them trusts the CA.
        assert all(result != "ok" for result in without.values()), without
        with_env = run_clients(url, tmp_path, cli_env, with_exports=True)
        assert with_env == {name: "ok" for name in ("urllib", "requests", "httpx", "aiohttp", "websockets")}


@pytest.mark.slow
def test_curl_and_node_trust_it_with_the_exports(cli_env, tmp_path):
    tools = [t for t in ("curl", "node") if shutil.which(t)]
    if not tools:
        pytest.skip("neither curl nor node is installed")
    node_js = ("require('https').get(process.argv[1], (r) => { r.resume(); r.on('end', () => process.exit(0)); })"
               ".on('error', (e) => { console.error(e.message); process.exit(1); })")
    with devcert_server(cli_env, tmp_path) as url:
        for with_exports in (False, True):
            prelude = f'eval "$({devcert_exe()} env)" && ' if with_exports else ""
            if "curl" in tools:
                done = subprocess.run(["bash", "-c", f'{prelude}curl -sS --max-time {20 * UNIT:g} "$URL"'], capture_output=True,
                                      text=True, timeout=60 * UNIT, env={**cli_env, "URL": url})
                assert (done.returncode == 0) == with_exports, done.stderr
                if with_exports:
                    assert "hello over TLS" in done.stdout
            if "node" in tools:
                done = subprocess.run(["bash", "-c", f'{prelude}node -e "$JS" "$URL"'], capture_output=True,
                                      text=True, timeout=60 * UNIT, env={**cli_env, "URL": url, "JS": node_js})
                assert (done.returncode == 0) == with_exports, done.stderr


def _ders(path: Path) -> set[bytes]:
    return set(clients.pem_certificates_der(path.read_bytes()))


def _has_subject(path: Path, common_name: str) -> bool:
    import warnings

    from cryptography import x509

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some old public roots have a negative serial
        return any(common_name in x509.load_der_x509_certificate(der).subject.rfc4514_string() for der in _ders(path))


def test_without_a_system_bundle_certifi_is_the_source(caroot, monkeypatch):
    from devcert.ca import LocalCA

    monkeypatch.setattr(clients, "SYSTEM_BUNDLES", ())
    monkeypatch.setattr(clients, "_openssl_default_cafile", lambda: None)
    ca = LocalCA.load_or_create()
    result = clients.ensure_bundle(ca)
    assert result.source_kind == "certifi" and result.source == Path(certifi.where())
    ders = _ders(result.path)
    assert _ders(Path(certifi.where())) <= ders and _ders(ca.cert_path) <= ders


def test_bundle_holds_the_ca_and_public_roots(cli_env, caroot):
    done = run_devcert("env", "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    bundle = Path(info["bundle"])
    assert bundle == caroot / "ca-bundle.pem" and info["action"] == "written"
    ders = _ders(bundle)
    assert _ders(caroot / "rootCA.pem") <= ders
    # Every public root of its source (the system bundle here) is still there ...
    assert Path(info["source"]).exists() and _ders(Path(info["source"])) <= ders
    # ... and so is every root certifi-based clients (requests) relied on before the export,
    # even those the system bundle, lagging Mozilla's list, does not have yet.
    assert _ders(Path(certifi.where())) <= ders
    assert _has_subject(bundle, "ISRG Root X1")
    assert info["variables"]["NODE_EXTRA_CA_CERTS"] == str(caroot / "rootCA.pem")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "DENO_CERT", "GIT_SSL_CAINFO",
                 "AWS_CA_BUNDLE", "PIP_CERT", "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
                 "CARGO_HTTP_CAINFO"):
        assert info["variables"][name] == str(bundle)
        assert info["reasons"][name]
    assert oct(bundle.stat().st_mode & 0o777) == "0o644"


def test_bundle_is_kept_when_nothing_changed_and_refreshed_when_the_ca_changes(cli_env, caroot):
    first = json.loads(run_devcert("env", "--json", env=cli_env).stdout)
    bundle = Path(first["bundle"])
    stat = bundle.stat()
    second = json.loads(run_devcert("env", "--json", env=cli_env).stdout)
    assert second["action"] == "kept"
    assert bundle.stat().st_ino == stat.st_ino and bundle.stat().st_mtime_ns == stat.st_mtime_ns
    old_ca = _ders(caroot / "rootCA.pem")
    assert run_devcert("ca", "init", "--force", env=cli_env).returncode == 0
    third = json.loads(run_devcert("env", "--json", env=cli_env).stdout)
    assert third["action"] == "written"
    ders = _ders(bundle)
    assert _ders(caroot / "rootCA.pem") <= ders and not (old_ca & ders)


def test_bundle_refreshed_when_the_source_changes(caroot, tmp_path, monkeypatch):
    from devcert.ca import LocalCA

    source = tmp_path / "system.pem"
    certifi_pem = Path(certifi.where()).read_bytes()
    blocks = certifi_pem.split(b"-----END CERTIFICATE-----")
    source.write_bytes(b"-----END CERTIFICATE-----".join(blocks[:5]) + b"-----END CERTIFICATE-----\n")
    monkeypatch.setattr(clients, "SYSTEM_BUNDLES", (str(source),))
    monkeypatch.setattr(clients, "_openssl_default_cafile", lambda: None)
    ca = LocalCA.load_or_create()
    assert clients.ensure_bundle(ca).action == "written"
    assert clients.ensure_bundle(ca).action == "kept"
    before = (caroot / "ca-bundle.pem").read_bytes()
    source.write_bytes(certifi_pem)  # the system bundle got updated
    result = clients.ensure_bundle(ca)
    assert result.action == "written" and result.source == source
    after = (caroot / "ca-bundle.pem").read_bytes()
    assert after != before and _ders(source) <= _ders(caroot / "ca-bundle.pem")
    # The new source's roots now stand in its own part, no longer among the certifi extras.
    assert b"certifi roots missing" not in after


def test_own_bundle_is_never_the_source(caroot, tmp_path, monkeypatch):
    """SSL_CERT_FILE (or a well-known path) pointing at a devcert bundle is not fed back in."""
    from devcert.ca import LocalCA

    ca = LocalCA.load_or_create()
    other_root = tmp_path / "other"
    other = LocalCA.create(other_root)
    monkeypatch.setattr(clients, "SYSTEM_BUNDLES", ())
    other_bundle = clients.ensure_bundle(other).path  # a devcert bundle of another CA
    monkeypatch.setattr(clients, "SYSTEM_BUNDLES", (str(other_bundle), str(caroot / "ca-bundle.pem")))
    monkeypatch.setenv("SSL_CERT_FILE", str(other_bundle))
    result = clients.ensure_bundle(ca)
    assert result.source != other_bundle
    assert not (_ders(other.cert_path) & _ders(result.path))
    # And through the CLI with SSL_CERT_FILE pointing at our own previous bundle.
    env = clean_env(DEVCERT_CAROOT=str(caroot), SSL_CERT_FILE=str(caroot / "ca-bundle.pem"))
    before = (caroot / "ca-bundle.pem").read_bytes()
    info = json.loads(run_devcert("env", "--json", env=env).stdout)
    assert info["source"] != info["bundle"]
    assert not clients.is_devcert_bundle(info["source"])
    # The CLI process has the real system bundles: it keeps the bundle exactly when it finds the
    # same source as the call above (same bytes to write), and rewrites it otherwise.
    same_source = info["source"] == str(result.source)
    assert info["action"] == ("kept" if same_source else "written"), (info, result)
    assert ((caroot / "ca-bundle.pem").read_bytes() == before) == same_source
    again = json.loads(run_devcert("env", "--json", env=env).stdout)
    assert (again["action"], again["source"]) == ("kept", info["source"])  # nothing changed since
    text = (caroot / "ca-bundle.pem").read_text()
    assert text.count(clients.MARKER) == 1


def test_sh_exports_survive_awkward_paths_and_unset_undoes_them(tmp_path):
    root = tmp_path / "it's a \"dir\" $HOME"
    env = clean_env(DEVCERT_CAROOT=str(root))
    script = f'eval "$({devcert_exe()} env)" && printf "%s\\n" "$SSL_CERT_FILE" "$NODE_EXTRA_CA_CERTS" && ' \
             f'eval "$({devcert_exe()} env --unset)" && printf "[%s]" "${{SSL_CERT_FILE-unset}}${{DENO_CERT-unset}}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60 * UNIT, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(root / "ca-bundle.pem")
    assert lines[1] == str(root / "rootCA.pem")
    assert lines[2] == "[unsetunset]"


def test_fish_and_powershell_quoting():
    path = "/tmp/it's a \\dir"
    assert clients.quote(path, "fish") == "'/tmp/it\\'s a \\\\dir'"
    assert clients.quote(path, "powershell") == "'/tmp/it''s a \\dir'"
    var = clients.EnvVar("SSL_CERT_FILE", path, "why")
    assert clients.export_lines([var], "fish", comments=False) == ["set -gx SSL_CERT_FILE '/tmp/it\\'s a \\\\dir'"]
    assert clients.export_lines([var], "powershell", comments=False) == ["$Env:SSL_CERT_FILE = '/tmp/it''s a \\dir'"]
    assert clients.unset_lines(["X"], "fish") == ["set -e X"]
    assert clients.unset_lines(["X"], "powershell") == ["Remove-Item -ErrorAction SilentlyContinue Env:X"]
    if shutil.which("fish"):
        done = subprocess.run(["fish", "-c", clients.export_lines([var], "fish", comments=False)[0]
                               + "; printf %s $SSL_CERT_FILE"], capture_output=True, text=True, timeout=30 * UNIT)
        assert done.stdout == path
    if shutil.which("pwsh"):
        done = subprocess.run(["pwsh", "-NoProfile", "-Command", clients.export_lines([var], "powershell", comments=False)[0]
                               + "; [Console]::Write($Env:SSL_CERT_FILE)"], capture_output=True, text=True, timeout=60 * UNIT)
        assert done.stdout == path


def test_shell_option_and_output_shape(cli_env):
    fish = run_devcert("env", "--shell", "fish", env=cli_env)
    assert fish.returncode == 0 and "set -gx SSL_CERT_FILE " in fish.stdout
    ps = run_devcert("env", "--shell", "powershell", "--quiet", env=cli_env)
    assert ps.returncode == 0 and all(line.startswith("$Env:") for line in ps.stdout.splitlines())
    bad = run_devcert("env", "--shell", "tcsh", env=cli_env)
    assert bad.returncode == 2 and bad.stdout == ""
    unset = json.loads(run_devcert("env", "--unset", "--json", env=cli_env).stdout)
    assert "SSL_CERT_FILE" in unset["unset"] and "NODE_EXTRA_CA_CERTS" in unset["unset"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_env_finishes_whatever_the_trust_variables_name(cli_env, tmp_path, kind):
    # eval "$(devcert env)" runs in a shell whose SSL_CERT_FILE & co. may name a FIFO or
    # /dev/zero: devcert env never reads them (the bundle comes from the system's files).
    path = "/dev/zero"
    if kind == "fifo":
        path = str(tmp_path / "bundle.fifo")
        os.mkfifo(path)
    env = {**cli_env, **{name: path for name in clients.ENV_NAMES}, "SSL_CERT_DIR": str(tmp_path)}
    try:
        done = run_devcert("env", "--json", env=env, timeout=60 * UNIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devcert env hung with the trust variables naming {path}")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["variables"]["SSL_CERT_FILE"] == info["bundle"] != path


def test_env_replaces_a_fifo_where_its_bundle_goes(cli_env, caroot):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    bundle = caroot / clients.BUNDLE_FILE
    os.mkfifo(bundle)
    try:
        done = run_devcert("env", "--json", env=cli_env, timeout=60 * UNIT)
    except subprocess.TimeoutExpired:
        pytest.fail("devcert env hung reading a FIFO at its bundle's place")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["action"] == "written"
    assert bundle.is_file() and bundle.read_bytes().startswith(clients.MARKER.encode())


# -- Node's line: NODE_USE_SYSTEM_CA=1 where the Node found reads the OS store ------------------

NODE_CLIENT = STACKS_DIR / "node_client.js"


def _node22() -> str:
    found = shutil.which("node", path=str(NODE22_BIN))
    return found or require_tool(str(NODE22_BIN / "node"), "the NODE_USE_SYSTEM_CA tests")


def _system_node() -> clients.NodeInfo:
    node = clients.find_node(clean_env()["PATH"])
    if node is None:
        require_tool("node")
    assert node is not None
    return node


def _env_json(env: dict[str, str]) -> dict:
    done = run_devcert("env", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_version_parsing_and_support():
    assert clients.parse_node_version("v20.20.2\n") == (20, 20, 2)
    assert clients.parse_node_version("v22.15.0") == (22, 15, 0)
    assert clients.parse_node_version("garbage") is None
    supports = {v: clients.NodeInfo("node", v).reads_system_ca
                for v in ((20, 20, 2), (22, 14, 9), (22, 15, 0), (24, 0, 0), (23, 9, 0), (24, 0, 0))}
    assert supports == {(20, 20, 2): False, (22, 14, 9): False, (22, 15, 0): True, (24, 0, 0): False,
                        (23, 9, 0): True, (24, 0, 0): True}


def test_env_node_line_follows_the_node_on_path(cli_env):
    """Debian's Node 20 first: NODE_EXTRA_CA_CERTS. Node 22 first, but the CA not in the OS store
    (this test installs nothing): still NODE_EXTRA_CA_CERTS, with a reason that says why not
    NODE_USE_SYSTEM_CA. --unset clears both names, whichever Node was found."""
    system = _system_node()
    node22 = _node22()
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    plain = _env_json(cli_env)
    if not system.reads_system_ca:
        assert "NODE_EXTRA_CA_CERTS" in plain["variables"] and "NODE_USE_SYSTEM_CA" not in plain["variables"]
        assert "NODE_USE_SYSTEM_CA" not in plain["reasons"]["NODE_EXTRA_CA_CERTS"]
    first22 = _env_json({**cli_env, "PATH": f"{Path(node22).parent}{os.pathsep}{cli_env['PATH']}"})
    assert "NODE_USE_SYSTEM_CA" not in first22["variables"]
    assert first22["variables"]["NODE_EXTRA_CA_CERTS"].endswith("rootCA.pem")
    reason = first22["reasons"]["NODE_EXTRA_CA_CERTS"]
    assert "NODE_USE_SYSTEM_CA=1" in reason and "devcert install" in reason and "v22." in reason
    unset = json.loads(run_devcert("env", "--json", "--unset", env=cli_env).stdout)["unset"]
    assert "NODE_USE_SYSTEM_CA" in unset and "NODE_EXTRA_CA_CERTS" in unset


NODE_SANDBOX = r"""
set -u
out=$1 url=$2
devcert install --store system >/dev/null 2>&1 || { devcert install --store system >&2; exit 9; }
PATH="$NODE22:$PATH" devcert env --json > "$out/env22.json"
devcert env --json > "$out/env20.json"
# Each Node with nothing but its own exports, and no `ca`: its default roots decide.
(PATH="$NODE22:$PATH"; eval "$(devcert env)"; node "$CLIENT" 127.0.0.1 "$PORT" localhost - ) \
  > "$out/node22.out" 2>&1; echo $? > "$out/node22.rc"
(eval "$(devcert env)"; node "$CLIENT" 127.0.0.1 "$PORT" localhost - ) > "$out/node20.out" 2>&1; echo $? > "$out/node20.rc"
# The control: Node 22 without the exports does not read the OS store.
(PATH="$NODE22:$PATH"; node "$CLIENT" 127.0.0.1 "$PORT" localhost - ) > "$out/bare22.out" 2>&1; echo $? > "$out/bare22.rc"
exit 0
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_env_gives_node22_the_os_store_once_the_ca_is_installed(cli_env, tmp_path):
    """In the private trust sandbox (never the machine's stores): after `devcert install --store
    system`, Node 22 first on PATH gets NODE_USE_SYSTEM_CA=1 (not NODE_EXTRA_CA_CERTS) and trusts
    the CA by a real handshake; Debian's Node 20 gets NODE_EXTRA_CA_CERTS and trusts it too."""
    require_sandbox()

    node22 = _node22()
    system = _system_node()
    with devcert_server(cli_env, tmp_path) as url:
        port = url.rsplit(":", 1)[1].strip("/")
        script = tmp_path / "run.sh"
        script.write_text(NODE_SANDBOX)
        bindir = str(Path(devcert_exe()).parent)
        env = {**cli_env, "NODE22": str(Path(node22).parent), "CLIENT": str(NODE_CLIENT), "PORT": port,
               "DEVCERT_TRUST_STORES": "system", "PATH": f"{bindir}{os.pathsep}{cli_env['PATH']}"}
        done = sandbox.run(["bash", str(script), str(tmp_path), url], env=env, timeout=300 * UNIT)
        assert done.returncode == 0, done.stdout + done.stderr
    env22 = json.loads((tmp_path / "env22.json").read_text())
    assert env22["variables"].get("NODE_USE_SYSTEM_CA") == "1", env22["variables"]
    assert "NODE_EXTRA_CA_CERTS" not in env22["variables"]
    result = lambda name: ((tmp_path / f"{name}.rc").read_text().strip(), (tmp_path / f"{name}.out").read_text())  # noqa: E731
    assert result("node22")[0] == "0", result("node22")
    assert result("bare22")[0] != "0", result("bare22")  # Node's own roots lack the CA
    env20 = json.loads((tmp_path / "env20.json").read_text())
    if not system.reads_system_ca:
        assert "NODE_EXTRA_CA_CERTS" in env20["variables"] and "NODE_USE_SYSTEM_CA" not in env20["variables"]
    assert result("node20")[0] == "0", result("node20")


def test_node_reasons_name_the_install_in_the_cli_words(tmp_path: Path) -> None:
    """A Node that can read the OS store: its reason names `devcert install` as `devcert env`
    prints it (comments and --json), and neutral words for the Python API."""
    ca = LocalCA.create(tmp_path / "caroot")
    node = clients.NodeInfo("/usr/bin/node", (24, 0, 0))
    assert node.reads_system_ca
    (using,) = [v for v in clients.env_vars(ca, tmp_path / "bundle.pem", node, system_has_ca=True)
                if v.name.startswith("NODE_")]
    assert using.name == "NODE_USE_SYSTEM_CA"
    assert word(using.why) == ("Node v24.0.0 (/usr/bin/node) reads the OS trust store under this, and the OS "
                               "store holds the CA (devcert install)")
    (extra,) = [v for v in clients.env_vars(ca, tmp_path / "bundle.pem", node) if v.name.startswith("NODE_")]
    assert word(extra.why).endswith(". Node v24.0.0 could read the OS store (NODE_USE_SYSTEM_CA=1), but the CA "
                                    "is not in it: `devcert install` first")
    assert "devcert" not in str(extra.why) and "install the CA" in str(extra.why)
