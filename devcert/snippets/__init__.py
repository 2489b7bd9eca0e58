"""Ready-to-run snippets, one template file per target, rendered with the real paths.

Each target is a template file in this package (``python-ssl.py``, ``nginx.conf`` ...) with
``{{placeholder}}`` markers. A placeholder is replaced by a value quoted for the file's
language (a Python or JavaScript string literal, an nginx or Caddyfile token), or, written
``{{name|sh}}``, quoted for a POSIX shell (for the "Run:" comment), or ``{{name|raw}}`` as is.
Everything else in a template, including ``$`` and single braces, is left alone, so nginx
variables and JavaScript template literals need no escaping.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..names import is_ip_literal
from ..trust.linux import FAMILIES
from ..trust.rootfs import run_line

__all__ = ["Target", "TARGETS", "render", "get_target", "template_text", "snippet_values"]


@dataclass(frozen=True)
class Target:
    name: str
    file: str  # the template in this package
    language: str  # python | js | nginx | caddy | dockerfile | yaml | json
    summary: str
    save_as: str  # the file name the "Run:" comment assumes
    default_port: int = 8443


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("python-ssl", "python-ssl.py", "python",
           "Python standard library: an HTTPS server and a client, each with its own ssl.SSLContext",
           "devcert_ssl.py"),
    Target("websockets", "websockets.py", "python",
           "Python websockets: a wss:// echo server and a client that trusts the CA",
           "devcert_wss.py"),
    Target("aiohttp", "aiohttp.py", "python",
           "aiohttp: an HTTPS + wss:// web server and a ClientSession that trusts the CA",
           "devcert_aiohttp.py"),
    Target("uvicorn", "uvicorn.py", "python",
           "FastAPI on uvicorn over HTTPS (with a wss:// endpoint), and the uvicorn command line",
           "devcert_uvicorn.py"),
    Target("hypercorn", "hypercorn.py", "python",
           "An ASGI app on hypercorn over HTTPS (HTTP/1.1 and HTTP/2) with a wss:// endpoint",
           "devcert_hypercorn.py"),
    Target("node", "node.js", "js",
           "Node.js: an https server with a secure WebSocket (npm ws) echo on the same port",
           "devcert-server.js"),
    Target("nginx", "nginx.conf", "nginx",
           "nginx: TLS termination with WebSocket upgrade headers in front of a ws:// / http:// upstream",
           "nginx.conf"),
    Target("caddy", "Caddyfile", "caddy",
           "Caddy: a site on the devcert certificate reverse-proxying (WebSockets included) to an upstream",
           "Caddyfile"),
    Target("vite", "vite.config.js", "js",
           "Vite: the dev server (and preview) over HTTPS with the devcert certificate",
           "vite.config.js", default_port=5173),
    Target("dockerfile", "Dockerfile", "dockerfile",
           "Docker image: copy rootCA.pem in, rebuild the OS store, variables for Node, requests and Deno",
           "Dockerfile"),
    Target("compose", "compose.yaml", "yaml",
           "Docker Compose: mount rootCA.pem, rebuild the store at start, host names via extra_hosts",
           "compose.devcert.yaml"),
    Target("devcontainer", "devcontainer.json", "json",
           "Dev Containers: mount rootCA.pem, trust it after creation, reach the host's devcert names",
           ".devcontainer/devcontainer.json"),
)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(
            f"unknown snippet target {name!r}; choose one of: {', '.join(TARGETS)} (see `devcert snippet --list`)"
        ) from None


def template_text(target: Target) -> str:
    return resources.files(__name__).joinpath(target.file).read_text(encoding="utf-8")


def _nginx_quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@+\-\[\]]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


def _caddy_quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@+\-\[\]]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_QUOTERS: dict[str, Callable[[str], str]] = {
    "python": repr,
    "js": json.dumps,
    "nginx": _nginx_quote,
    "caddy": _caddy_quote,
    "sh": shlex.quote,
    "raw": str,
    # A JSON string is also a YAML double-quoted scalar, and a Dockerfile ENV/exec-form value.
    "yaml": json.dumps,
    "json": json.dumps,
    "dockerfile": json.dumps,
}

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*(?:\|\s*([a-z]+)\s*)?\}\}")


def render(target: Target, values: dict[str, object]) -> str:
    """The template of ``target`` with every ``{{name}}`` replaced (unknown names are a bug)."""
    text = template_text(target)

    def substitute(match: re.Match[str]) -> str:
        name, how = match.group(1), match.group(2) or target.language
        if name not in values:
            raise KeyError(f"snippet {target.file} uses {{{{{name}}}}}, which has no value")
        value = values[name]
        if isinstance(value, int) and how != "sh":
            return str(value)
        return _QUOTERS[how](str(value))

    return _PLACEHOLDER.sub(substitute, text)




def snippet_values(*, ca: Path, cert: Path, key: Path, port: int, upstream: str, names: list[str],
                   target: Target) -> dict[str, object]:
    """The placeholder values every template may use."""
    host = names[0] if names else "localhost"
    if host.startswith("*."):
        host = "www." + host[2:]
    url_host = f"[{host}]" if ":" in host else host
    try:
        bind = str(ipaddress.ip_address(host))  # an IP name: listen on it
    except ValueError:
        bind = "127.0.0.1"  # a host name: listen on loopback (localhost resolves there)
    bind_port = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
    dns = [n for n in names if not is_ip_literal(n)]
    sites = [f"https://{f'[{n}]' if ':' in n else n}:{port}" for n in names] or [f"https://localhost:{port}"]
    return {
        "ca": str(ca),
        "cert": str(cert),
        "key": str(key),
        "port": port,
        "host": host,
        "url_host": url_host,
        "bind": bind,
        "bind_port": bind_port,
        "server_names": " ".join(dns) or "_",
        "site_addresses": ", ".join(sites),
        "module": Path(target.save_as).stem,
        "upstream": upstream,
        "names": " ".join(names),
        "save_as": target.save_as,
        "folder": str(cert.parent),
        **container_values(ca, names, target.name),
    }


def _anchor(key: str) -> str:
    """Where the container snippets put the CA in an image of family ``key``: its anchors folder."""
    family = FAMILIES[key]
    return f"{family.anchors}/devcert{family.suffix}"


def container_values(ca: Path, names: list[str], target: str) -> dict[str, object]:
    """Placeholders of the dockerfile, compose and devcontainer snippets.

    Paths inside the image come from the same table ``install --root`` uses
    (:data:`devcert.trust.linux.FAMILIES`), and so do the update commands
    (:func:`devcert.trust.rootfs.run_line`). Every DNS name of the certificate except localhost
    (which inside a container is the container) is mapped to the host with ``host-gateway``,
    and so is host.docker.internal, which Docker on Linux does not define by itself.
    """
    hosts = ["host.docker.internal"]
    for name in names:
        if not is_ip_literal(name) and not name.startswith("*.") and name != "localhost" and name not in hosts:
            hosts.append(name)
    debian = FAMILIES["debian"]
    others = []
    for key in ("alpine", "fedora", "suse", "arch"):
        family = FAMILIES[key]
        others.append(f"# {family.label}:")
        others.append(f"#   COPY --from=devcert rootCA.pem {_anchor(key)}")
        others.append(f"#   RUN {run_line(family, with_package=True)}")
        others.append(f"#   ENV REQUESTS_CA_BUNDLE={family.bundles[0]} DENO_CERT={family.bundles[0]}")
    update = run_line(debian)
    return {
        "caroot": str(ca.parent),
        "debian_anchor": _anchor("debian"),
        "debian_bundle": debian.bundles[0],
        "debian_run": run_line(debian, with_package=True),
        "other_bases": "\n".join(others),
        "add_hosts": "".join(f" --add-host={h}:host-gateway" for h in hosts[1:]),
        "extra_hosts_yaml": "\n".join(f"      - {json.dumps(h + ':host-gateway')}" for h in hosts),
        "run_args": json.dumps([f"--add-host={h}:host-gateway" for h in hosts]),
        "compose_command": f"{update} && exec sleep infinity",
        "post_create": f"sudo {update}",
        # Said only when the certificate lacks the name a container reaches the host by.
        "name_hint": "" if "host.docker.internal" in names else (
            f" (not in the certificate yet: `devcert snippet {target} host.docker.internal {' '.join(names)}`)"),
    }
