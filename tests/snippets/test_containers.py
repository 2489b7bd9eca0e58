"""``devcert snippet dockerfile|compose|devcontainer``: the printed lines are what a user pastes.

There is no Docker here, so the lines are carried out the way Docker would on a real Debian root
file system (tests/debian_root.py; the images the snippets name are Debian bookworm too):
COPY from the build context the printed ``docker build`` line names, each RUN in ``chroot``, the
ENV values for the clients; compose's bind mount and start command likewise. Then curl and
Python inside the root must trust a server on 127.0.0.1 that uses the certificate the snippet
names. The compose file is parsed as YAML and devcontainer.json as JSON (with its comments), and
every host path in them must exist.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml

from devcert.ca import LocalCA
from devcert.trust.linux import FAMILIES
from devcert.trust.rootfs import run_line
from tests.debian_root import ROOTFS_OK, chroot_clients
from tests.helpers import TLSServer, clean_env, require_tool, run_devcert

TARGETS = ("dockerfile", "compose", "devcontainer")
NAMES = ("app.test", "localhost", "127.0.0.1")


def snippet(env: dict[str, str], target: str, *names: str) -> str:
    done = run_devcert("snippet", target, *names, env=env)
    assert done.returncode == 0, done.stderr
    assert "{{" not in done.stdout
    return done.stdout


def host_files(text: str) -> tuple[Path, Path]:
    """The certificate and key the snippet says the host's server uses."""
    match = re.search(r"The server on the host uses (\S+) and (\S+) \(CA", text)
    assert match, text
    return Path(match.group(1)), Path(match.group(2))


def serve(cert: Path, key: Path) -> TLSServer:
    """A TLS server on 127.0.0.1 with the snippet's certificate; use it as a context manager."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return TLSServer(ctx, body=ROOTFS_OK)


def test_listed_with_the_other_targets(cli_env):
    listed = [line.split()[0] for line in run_devcert("snippet", "--list", env=cli_env).stdout.splitlines()]
    assert listed[-3:] == list(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_real_paths_and_hosts(cli_env, caroot, target):
    text = snippet(cli_env, target, *NAMES)
    cert, key = host_files(text)
    assert cert.is_file() and key.is_file() and cert.parent == caroot / "leaves"
    assert "Run" in text
    assert "host.docker.internal:host-gateway" in text and "app.test:host-gateway" in text
    assert "localhost:host-gateway" not in text  # inside a container, localhost is the container
    assert f"`devcert snippet {target} host.docker.internal app.test localhost 127.0.0.1`" in text
    with_name = snippet(cli_env, target, "host.docker.internal", *NAMES)
    assert "not in the certificate yet" not in with_name


def test_compose_parses_and_names_existing_files(cli_env, caroot):
    doc = yaml.safe_load(snippet(cli_env, "compose", *NAMES))
    app = doc["services"]["app"]
    [volume] = app["volumes"]
    assert volume["type"] == "bind" and volume["read_only"] is True
    assert Path(volume["source"]) == caroot / "rootCA.pem" and Path(volume["source"]).is_file()
    assert volume["target"] == f"{FAMILIES['debian'].anchors}/devcert.crt"
    assert app["extra_hosts"] == ["host.docker.internal:host-gateway", "app.test:host-gateway"]
    assert app["environment"]["NODE_EXTRA_CA_CERTS"] == volume["target"]
    assert app["command"][:2] == ["sh", "-c"]
    assert app["command"][2].startswith(run_line(FAMILIES["debian"]) + " && exec ")


def test_devcontainer_parses_and_names_existing_files(cli_env, caroot):
    text = snippet(cli_env, "devcontainer", *NAMES)
    # devcontainer.json is JSON with comments (JSONC); its comments here are whole lines.
    doc = json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    [mount] = doc["mounts"]
    assert mount["type"] == "bind" and Path(mount["source"]) == caroot / "rootCA.pem" and Path(mount["source"]).is_file()
    assert mount["target"] == f"{FAMILIES['debian'].anchors}/devcert.crt"
    assert doc["postCreateCommand"] == "sudo " + run_line(FAMILIES["debian"])
    assert doc["runArgs"] == ["--add-host=host.docker.internal:host-gateway", "--add-host=app.test:host-gateway"]
    assert doc["containerEnv"]["NODE_EXTRA_CA_CERTS"] == mount["target"]


def dockerfile_steps(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of each line Docker would read, continuations joined."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = pending + line
        pending = ""
        instruction, _, rest = full.strip().partition(" ")
        steps.append((instruction.upper(), rest.strip()))
    return steps


@pytest.mark.slow
def test_dockerfile_lines_make_a_debian_root_trust_the_host_server(cli_env, caroot, debian_copy):
    require_tool("chroot")
    text = snippet(cli_env, "dockerfile", *NAMES)
    run_comment = next(line for line in text.splitlines() if "docker build" in line)
    context = next(arg.split("=", 1)[1] for arg in shlex.split(run_comment.lstrip("# ")) if arg.startswith("devcert="))
    assert Path(context) == caroot
    root = debian_copy
    env: dict[str, str] = {}
    steps = dockerfile_steps(text)
    assert [s[0] for s in steps] == ["FROM", "COPY", "RUN", "ENV"]
    for instruction, args in steps:
        if instruction == "COPY":
            flag, source, target = shlex.split(args)
            assert flag == "--from=devcert"
            assert source == "rootCA.pem"  # never the key
            destination = root / target.lstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(context) / source, destination)
        elif instruction == "RUN":
            # Debian's packages are reachable here: apt-get runs as the image build would.
            done = subprocess.run(["chroot", str(root), "sh", "-c", args], capture_output=True, text=True,
                                  env=clean_env(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                DEBIAN_FRONTEND="noninteractive"), timeout=900)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        elif instruction == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    ca_pem = (caroot / "rootCA.pem").read_bytes()
    assert (root / env["NODE_EXTRA_CA_CERTS"].lstrip("/")).read_bytes() == ca_pem
    assert LocalCA.load(caroot, require_key=False).cert_pem.strip().splitlines()[1].decode() in (
        root / env["REQUESTS_CA_BUNDLE"].lstrip("/")).read_text()
    with serve(*host_files(text)) as server:
        assert chroot_clients(root, server.port, env) == {"curl": True, "python": True}


@pytest.mark.slow
def test_compose_mount_and_command_make_a_debian_root_trust_the_host_server(cli_env, caroot, debian_copy):
    require_tool("chroot")
    text = snippet(cli_env, "compose", *NAMES)
    app = yaml.safe_load(text)["services"]["app"]
    root = debian_copy
    with serve(*host_files(text)) as server:
        port = server.port
        assert chroot_clients(root, port) == {"curl": False, "python": False}
        [volume] = app["volumes"]
        target = root / volume["target"].lstrip("/")
        shutil.copyfile(volume["source"], target)  # what the bind mount shows the container
        # The start command as printed, with the user's command (sleep infinity) made a check.
        command = app["command"][2].replace("exec sleep infinity", "true")
        done = subprocess.run(["chroot", str(root), "sh", "-c", command], capture_output=True, text=True,
                              env=clean_env(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), timeout=300)
        assert done.returncode == 0, done.stderr
        assert chroot_clients(root, port, {k: str(v) for k, v in app["environment"].items()}) == {"curl": True, "python": True}
