"""``devcert serve-wss``: a trusted https:// page and wss:// endpoint on one port."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from .output import echo, warn
from .application import app


def _bracket(address: str) -> str:
    """An IP as it goes in a URL or after a colon: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def _reaches(address: str, bound: str) -> bool:
    """Whether a client connecting to ``address`` reaches a socket bound to ``bound``."""
    import ipaddress

    try:
        ip, listening = ipaddress.ip_address(address), ipaddress.ip_address(bound)
    except ValueError:
        return False
    # IPV6_V6ONLY is set: "::" does not take IPv4 connections
    return ip.version == listening.version and (listening.is_unspecified or ip == listening)


def _connect_address(bound: str) -> str:
    """The address a local client dials to reach ``bound`` (loopback for 0.0.0.0 and ::)."""
    import ipaddress

    ip = ipaddress.ip_address(bound)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return bound


def _resolve_all(hosts: list[str], timeout: float = 2.0) -> dict[str, set[str]]:
    """Each host's addresses (empty when it does not resolve), looked up in parallel; a resolver
    slower than ``timeout`` counts as not resolving, so start-up never hangs on DNS."""
    import socket
    import threading
    import time

    found: dict[str, set[str]] = {}

    def look_up(host: str) -> None:
        try:
            found[host] = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError):
            found[host] = set()

    threads = [threading.Thread(target=look_up, args=(host,), daemon=True) for host in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {host: set(found.get(host, ())) for host in hosts}


def _url_plan(names: list, bound: str, port: int) -> tuple[str, str | None, str | None]:
    """What to print as the URL host: ``(host for URLs, curl --resolve value or None, note or None)``.

    The host is a name the certificate covers that reaches ``bound`` (the address the server
    listens on): ``localhost``, another DNS name that resolves to it, the bound IP itself, or a
    name under a wildcard. When none does, the URL keeps a covered name (so TLS would verify) and
    the note says in one line why it will not connect and what to do.
    """
    dns = [n.value for n in names if n.kind == "dns" and not n.is_wildcard]
    wildcards = [n.value for n in names if n.is_wildcard]
    ips = [n.value for n in names if n.kind == "ip"]
    named = sorted(dns, key=lambda name: name != "localhost")  # localhost first, else as given
    under = [f"www.{w[2:]}" for w in wildcards]  # a name each wildcard covers
    resolved = _resolve_all((named + under)[:8])
    for name in named:
        if any(_reaches(address, bound) for address in resolved.get(name, ())):
            return name, None, None
    for ip in ips:
        if _reaches(ip, bound):
            return _bracket(ip), None, None
    for name in under:
        if any(_reaches(address, bound) for address in resolved.get(name, ())):
            return name, None, None

    connect = _connect_address(bound)
    if named or under:
        name = (named or under)[0]
        addresses = resolved.get(name)
        label = name if named else f"{name} (a name under the certificate's {wildcards[0]})"
        if not addresses:
            why = f"{label} does not resolve on this machine"
        else:
            why = f"{label} resolves to {', '.join(sorted(addresses))}, not to {bound} where the server listens"
        resolve = f"{name}:{port}:{_bracket(connect)}"
        return name, resolve, (f"Note: {why}: add `{connect} {name}` to /etc/hosts "
                               f"(or give curl --resolve {resolve}, as below)")
    if ips:
        return _bracket(ips[0]), None, (f"Note: the certificate covers {', '.join(ips)} but the server listens on "
                                        f"{bound}: restart with --host {ips[0]}")
    return _bracket(connect), None, ("Note: the certificate covers no host name or IP address, so no client will "
                                     "accept it here: give names such as localhost 127.0.0.1")


def _parse_size(text: str) -> int:
    from ..errors import UsageError
    from ..serve import MAX_MAX_SIZE

    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
             "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3}
    raw = text.strip().lower()
    number = raw.rstrip("kmgib")
    unit = raw[len(number):]
    try:
        value = int(float(number) * units[unit])
    except (ValueError, KeyError, OverflowError):  # OverflowError: "inf"; ValueError: "nan"
        raise UsageError(f"--max-size takes a size like 1048576, 512KiB or 4MiB (got {text!r})") from None
    if not 1 <= value <= MAX_MAX_SIZE:
        raise UsageError(f"--max-size must be between 1 byte and 2GiB (got {text!r})")
    return value


@app.command(
    "serve-wss",
    epilog=(
        "Examples:\n\n"
        "  devcert serve-wss                                # https://localhost:8443/ and wss://localhost:8443/ws\n\n"
        "  devcert serve-wss --proxy ws://127.0.0.1:5173    # wss:// and https:// in front of a dev server\n\n"
        "  devcert serve-wss app.test --port 9443 --dir ./public"
    ),
)
def serve_wss(
    names: Annotated[Optional[list[str]], typer.Argument(help="Names the certificate covers (default: localhost 127.0.0.1 ::1).", show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes the server to your network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).")] = 8443,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Serve this folder's files instead of the demo page (never CAROOT or a folder holding it).")] = None,
    dotfiles: Annotated[bool, typer.Option("--dotfiles", help="Also serve files and folders whose names start with a dot (.env, .git): off by default so secrets are not served. /.well-known/ is served either way.")] = False,
    ws_path: Annotated[Optional[str], typer.Option("--ws-path", help="Path of the WebSocket echo endpoint: /ws unless given (not /, no ? or #; not with --proxy).", show_default=False)] = None,
    proxy: Annotated[Optional[str], typer.Option("--proxy", help="Relay every WebSocket and HTTP request to this ws://HOST:PORT server.", show_default=False)] = None,
    max_size: Annotated[str, typer.Option("--max-size", help="Largest WebSocket message accepted (bytes, or e.g. 4MiB; at most 2GiB).")] = "1MiB",
) -> None:
    """Serve https:// and wss:// on one port with a certificate from the local CA.

    Makes the CA (first time) and a certificate for NAMES kept in CAROOT/leaves (renewed when
    near expiry), then serves until Ctrl-C: a demo page at /, a WebSocket echo at /ws, or
    with --proxy a TLS front for an existing ws:// / http:// dev server (pages, assets and
    sockets on one port). Open connections are closed with code 1001 on exit.
    """
    import ipaddress
    import re
    from urllib.parse import quote

    from .. import serve
    from ..errors import UsageError
    from ..names import parse_names
    from .create import load_ca_for_issuing, not_trusted_hint

    # every option is checked before the CA or a certificate is made
    chosen = list(names) if names else list(serve.DEFAULT_NAMES)
    parsed = parse_names(chosen)
    size = _parse_size(max_size)
    if port < 0 or port > 65535:
        raise UsageError(f"--port must be between 0 and 65535 (got {port})")
    if proxy is not None:
        proxy = serve.parse_proxy(proxy)
        if directory is not None:
            raise UsageError("--dir and --proxy cannot be combined: in proxy mode the upstream serves the pages")
        if ws_path is not None:
            raise UsageError("--ws-path does not apply with --proxy: every path, /ws included, goes to the upstream")
    ws_path = serve.check_ws_path("/ws" if ws_path is None else ws_path)
    if dotfiles and directory is None:
        raise UsageError("--dotfiles applies only with --dir: it says which of the folder's files are served")
    if directory is not None:
        directory = serve.check_directory(directory)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # --host [::1], as in a URL
    _, sockaddr = serve.resolve_host(host)

    ca = load_ca_for_issuing()
    ca, ensured = serve.ensure_certificate(chosen, ca=ca)
    if ensured.action != "kept":
        why = f" ({ensured.reason})" if ensured.reason and ensured.action == "renewed" else ""
        echo(f"{ensured.action.capitalize()} the certificate {ensured.cert_path}{why}", err=True)
    if ipaddress.ip_address(sockaddr[0].split("%")[0]).is_unspecified:
        warn(f"listening on {host}: every machine that can reach this one can connect")

    def log(level: str, message: str) -> None:
        message = re.sub(r"[\x00-\x1f\x7f]+", " ", message)  # one console line, whatever a peer sent
        if level == "info":
            echo(message, err=True)
        else:
            echo(f"devcert: {level}: {message}", err=True)

    server = serve.WSSServer(
        serve.server_context(ensured.cert_path, ensured.key_path), host=host, port=port, ws_path=ws_path,
        directory=directory, dotfiles=dotfiles, proxy=proxy, max_size=size, log=log,
    )

    def ready(srv: serve.WSSServer) -> None:
        bound = srv.address or host
        url_host, resolve, note = _url_plan(parsed, bound, srv.port)
        base = f"{url_host}:{srv.port}"
        ca_file = shlex.quote(str(ca.cert_path))
        if proxy:
            ws_url = f"wss://{base}/"
            echo(f"Serving https://{base}/ and {ws_url} (any path; listening on {_bracket(bound)}:{srv.port})")
            echo(f"  proxy:       every request and WebSocket goes to {proxy} (path and query kept)")
        else:
            ws_url = f"wss://{base}{quote(srv.ws_path)}"
            echo(f"Serving https://{base}/ and {ws_url} (listening on {_bracket(bound)}:{srv.port})")
            if directory is not None:
                hidden = "names starting with a dot too" if dotfiles else \
                    "names starting with a dot answer 404; --dotfiles serves them"
                echo(f"  files:       {directory} ({hidden})")
            else:
                echo(f"  demo page:   https://{base}/")
        echo(f"  CA file:     {ca.cert_path}")
        echo(f"  certificate: {ensured.cert_path} (for {', '.join(chosen)})")
        if note:
            echo(note)
        echo("Try it:")
        echo(f"  wscat -c {shlex.quote(ws_url)} --ca {ca_file}")
        echo(f"  SSL_CERT_FILE={ca_file} python -m websockets {shlex.quote(ws_url)}")
        resolve_option = f"--resolve {shlex.quote(resolve)} " if resolve else ""
        echo(f"  curl --cacert {ca_file} {resolve_option}{shlex.quote(f'https://{base}/')}")
        echo("Press Ctrl-C to stop.", err=True)
        if not ca.created:  # a new CA's creation line already said to run `devcert install`
            not_trusted_hint(ca)

    serve.run(server, on_ready=ready)
    echo("Stopped.", err=True)
