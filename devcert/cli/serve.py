"""``devcert serve-wss``: a trusted https:// page and wss:// endpoint on one port."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import echo, warn
from .application import app


def _url_host(names: list[str], host: str) -> str:
    """The host name to print in URLs: one the certificate covers and that reaches ``host``."""
    import ipaddress

    loopback = host in ("127.0.0.1", "::1", "localhost")
    dns = [n for n in names if not _is_ip(n) and not n.startswith("*.")]
    if loopback and "localhost" in names:
        return "localhost"
    if dns:
        return dns[0]
    ips = [n for n in names if _is_ip(n)]
    if host not in ("0.0.0.0", "::") and host in ips:
        chosen = host
    else:
        chosen = ips[0] if ips else host
    return f"[{chosen}]" if ipaddress.ip_address(chosen).version == 6 else chosen


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_size(text: str) -> int:
    from ..errors import UsageError

    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
             "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3}
    raw = text.strip().lower()
    number = raw.rstrip("kmgib")
    unit = raw[len(number):]
    try:
        value = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise UsageError(f"--max-size takes a size like 1048576, 512KiB or 4MiB (got {text!r})") from None
    if value < 1:
        raise UsageError("--max-size must be at least 1 byte")
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
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Serve this folder's files instead of the demo page.")] = None,
    ws_path: Annotated[str, typer.Option("--ws-path", help="Path of the WebSocket echo endpoint.")] = "/ws",
    proxy: Annotated[Optional[str], typer.Option("--proxy", help="Relay every WebSocket and HTTP request to this ws://HOST:PORT server.", show_default=False)] = None,
    max_size: Annotated[str, typer.Option("--max-size", help="Largest WebSocket message accepted (bytes, or e.g. 4MiB).")] = "1MiB",
) -> None:
    """Serve https:// and wss:// on one port with a certificate from the local CA.

    Makes the CA (first time) and a certificate for NAMES kept in CAROOT/leaves (renewed when
    near expiry), then serves until Ctrl-C: a demo page at /, a WebSocket echo at /ws, or
    with --proxy a TLS front for an existing ws:// / http:// dev server (pages, assets and
    sockets on one port). Open connections are closed with code 1001 on exit.
    """
    from .. import serve
    from .create import load_ca_for_issuing, not_trusted_hint

    chosen = list(names) if names else list(serve.DEFAULT_NAMES)
    size = _parse_size(max_size)
    if proxy is not None:
        proxy = serve.parse_proxy(proxy)
    if port < 0 or port > 65535:
        from ..errors import UsageError

        raise UsageError(f"--port must be between 0 and 65535 (got {port})")

    ca = load_ca_for_issuing()
    ca, ensured = serve.ensure_certificate(chosen, ca=ca)
    if ensured.action != "kept":
        why = f" ({ensured.reason})" if ensured.reason and ensured.action == "renewed" else ""
        echo(f"{ensured.action.capitalize()} the certificate {ensured.cert_path}{why}", err=True)
    if host in ("0.0.0.0", "::"):
        warn(f"listening on {host}: every machine that can reach this one can connect")

    def log(level: str, message: str) -> None:
        if level == "info":
            echo(message, err=True)
        else:
            echo(f"devcert: {level}: {message}", err=True)

    server = serve.WSSServer(
        serve.server_context(ensured.cert_path, ensured.key_path), host=host, port=port, ws_path=ws_path,
        directory=directory, proxy=proxy, max_size=size, log=log,
    )

    def ready(srv: serve.WSSServer) -> None:
        url_host = _url_host(chosen, host)
        base = f"{url_host}:{srv.port}"
        ca_file = str(ca.cert_path)
        ws_url = f"wss://{base}{srv.ws_path}"
        echo(f"Serving https://{base}/ and {ws_url} (listening on {host}:{srv.port})")
        if proxy:
            echo(f"  proxy:       every request and WebSocket goes to {proxy} (path and query kept)")
            ws_url = f"wss://{base}/"
        elif directory is not None:
            echo(f"  files:       {Path(directory).resolve()}")
        else:
            echo(f"  demo page:   https://{base}/")
        echo(f"  CA file:     {ca_file}")
        echo(f"  certificate: {ensured.cert_path} (for {', '.join(chosen)})")
        echo("Try it:")
        echo(f"  wscat -c {ws_url} --ca {shlex.quote(ca_file)}")
        echo(f"  SSL_CERT_FILE={shlex.quote(ca_file)} python -m websockets {ws_url}")
        echo(f"  curl --cacert {shlex.quote(ca_file)} https://{base}/")
        echo("Press Ctrl-C to stop.", err=True)
        not_trusted_hint(ca)

    serve.run(server, on_ready=ready)
    echo("Stopped.", err=True)
