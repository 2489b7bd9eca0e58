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

__all__ = ["Target", "TARGETS", "render", "get_target", "template_text", "snippet_values"]


@dataclass(frozen=True)
class Target:
    name: str
    file: str  # the template in this package
    language: str  # python | js | nginx | caddy
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
    }
