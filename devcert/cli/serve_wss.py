"""``devcert serve-wss``: a trusted https:// page and wss:// endpoint on one port.

The options are checked by :mod:`devcert.serve.options`, the URL host is chosen by
:mod:`devcert.serve.urls`; this module turns their results and errors into lines.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional
from urllib.parse import quote

import typer

from ..errors import ServeError
from ..names import DEFAULT_NAMES, parse_names
from ..project import project_routes
from .application import app
from .options import examples, whole_number
from .output import Failed, echo, warn
from .shared import load_ca_for_issuing, not_trusted_hint

if TYPE_CHECKING:
    from ..serve import WSSServer
    from ..serve.urls import UrlPlan

#: The flag for each option the core names (``{-max_size}`` in its messages).
FLAGS = {"host": "--host", "port": "--port", "ws_path": "--ws-path", "directory": "--dir",
         "dotfiles": "--dotfiles", "proxy": "--proxy", "max_size": "--max-size", "route": "--route"}


@app.command(
    "serve-wss",
    epilog=examples(
        "devcert serve-wss                                # https://localhost:8443/ and wss://localhost:8443/ws",
        "devcert serve-wss --proxy ws://127.0.0.1:5173    # wss:// and https:// in front of a dev server",
        "devcert serve-wss --route app.localhost=5173 --route api.localhost=8000 --route ws.localhost=8765",
        "                                                 # one port, a name and a certificate per service",
        "devcert serve-wss app.test --port 9443 --dir ./public",
    ),
)
def serve_wss(
    names: Annotated[Optional[list[str]], typer.Argument(help="Names the certificate covers (default: localhost 127.0.0.1 ::1).", show_default=False, metavar="NAMES")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes the server to your network.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).", metavar="PORT", parser=whole_number)] = 8443,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Serve this folder's files instead of the demo page (never CAROOT or a folder holding it).", metavar="DIRECTORY")] = None,
    dotfiles: Annotated[bool, typer.Option("--dotfiles", help="Also serve files and folders whose names start with a dot (.env, .git): off by default so secrets are not served. /.well-known/ is served either way.")] = False,
    ws_path: Annotated[Optional[str], typer.Option("--ws-path", help="Path of the WebSocket echo endpoint: /ws unless given (not /, no ? or #; not with --proxy).", show_default=False, metavar="WS_PATH")] = None,
    proxy: Annotated[Optional[str], typer.Option("--proxy", help="Relay every WebSocket and HTTP request to this ws://HOST:PORT server (with --route: every name without a route).", show_default=False, metavar="PROXY")] = None,
    route: Annotated[Optional[list[str]], typer.Option("--route", help="Relay requests for NAME (e.g. app.localhost, or *.app.localhost) to UPSTREAM (a port, HOST:PORT or ws:// / http:// URL), with a certificate for NAME made when a client first asks for it. Repeatable; without it, the routes in [tool.devcert.routes] of pyproject.toml or devcert.toml.", show_default=False, metavar="NAME=UPSTREAM")] = None,
    max_size: Annotated[str, typer.Option("--max-size", help="Largest WebSocket message accepted (bytes, or e.g. 4MiB; at most 2GiB).", metavar="MAX_SIZE")] = "1MiB",
) -> None:
    """Serve https:// and wss:// on one port with a certificate from the local CA.

    Makes the CA (first time) and a certificate for NAMES kept in CAROOT/leaves (renewed when
    near expiry), then serves until Ctrl-C: a demo page at /, a WebSocket echo at /ws, or
    with --proxy a TLS front for an existing ws:// / http:// dev server (pages, assets and
    sockets on one port), or with --route one name per dev server on one port, each with its
    own certificate. Open connections are closed with code 1001 on exit.
    """
    try:
        _serve(list(names) if names else list(DEFAULT_NAMES), max_size, list(route or ()), host=host, port=port,
               directory=directory, dotfiles=dotfiles, ws_path=ws_path, proxy=proxy)
    except ServeError as err:
        raise Failed(err.worded(FLAGS), code=err.exit_code) from None


def _serve(chosen: list[str], max_size: str, route: list[str], **given: Any) -> None:
    # Deferred: `devcert --help` loads every command module, and devcert.serve costs 170-230 ms
    # on top of the loaded CLI, 115-160 ms of it aiohttp (python -X importtime, this machine).
    from .. import serve
    from ..serve import options, urls

    # every option is checked before the CA or a certificate is made
    parsed = parse_names(chosen)
    size = options.parse_size(max_size)
    routes: list[Any] = list(route)
    routes_file = None
    if not routes and given["proxy"] is None and given["directory"] is None and given["ws_path"] is None:
        declared = project_routes()
        if declared is not None:
            routes_file, listed = declared
            routes = [options.route(name, upstream) for name, upstream in listed]
    checked = options.check(max_size=size, routes=routes, **given)
    _, sockaddr = options.resolve_host(checked.host)

    ca = load_ca_for_issuing()
    ca, ensured = serve.ensure_certificate(chosen, ca=ca)
    if ensured.action != "kept":
        why = f" ({ensured.reason})" if ensured.reason and ensured.action == "renewed" else ""
        echo(f"{ensured.action.capitalize()} the certificate {ensured.cert_path}{why}", err=True)
    if options.is_unspecified(sockaddr[0]):
        warn(f"listening on {checked.host}: every machine that can reach this one can connect")

    # the same options again: WSSServer checks them with the same functions
    server = serve.WSSServer(serve.server_context(ensured.cert_path, ensured.key_path), max_size=size, log=_log,
                             routes=checked.routes, ca=ca, default_names=chosen, option_names=FLAGS, **given)

    def ready(srv: WSSServer) -> None:
        if srv.routes:
            _announce_routes(srv, ca_file=str(ca.cert_path), routes_file=routes_file)
        else:
            plan = urls.url_plan(parsed, srv.address or srv.host, srv.port)
            _announce(srv, plan, ca_file=str(ca.cert_path), cert_file=str(ensured.cert_path), names=chosen)
        echo("Press Ctrl-C to stop.", err=True)
        if not ca.created:  # a new CA's creation line already said to run `devcert install`
            not_trusted_hint(ca)

    serve.run(server, on_ready=ready)
    echo("Stopped.", err=True)


def _log(level: str, message: str) -> None:
    message = re.sub(r"[\x00-\x1f\x7f]+", " ", message)  # one console line, whatever a peer sent
    if level == "info":
        echo(message, err=True)
    else:
        echo(f"devcert: {level}: {message}", err=True)


def _announce(srv: WSSServer, plan: UrlPlan, *, ca_file: str, cert_file: str, names: list[str]) -> None:
    """The lines on stdout once the server listens: where, what it serves, how to try it."""
    base, listening = f"{plan.host}:{srv.port}", plan.listening
    if srv.proxy:
        ws_url = f"wss://{base}/"
        echo(f"Serving https://{base}/ and {ws_url} (any path; listening on {listening})")
        echo(f"  proxy:       every request and WebSocket goes to {srv.proxy} (path and query kept)")
    else:
        ws_url = f"wss://{base}{quote(str(srv.ws_path))}"
        echo(f"Serving https://{base}/ and {ws_url} (listening on {listening})")
        if srv.directory is not None:
            hidden = "names starting with a dot too" if srv.dotfiles else \
                "names starting with a dot answer 404; --dotfiles serves them"
            echo(f"  files:       {srv.directory} ({hidden})")
        else:
            echo(f"  demo page:   https://{base}/")
    echo(f"  CA file:     {ca_file}")
    echo(f"  certificate: {cert_file} (for {', '.join(names)})")
    note = _note(plan)
    if note:
        echo(note)
    quoted_ca = shlex.quote(ca_file)
    echo("Try it:")
    echo(f"  wscat -c {shlex.quote(ws_url)} --ca {quoted_ca}")
    echo(f"  SSL_CERT_FILE={quoted_ca} python -m websockets {shlex.quote(ws_url)}")
    resolve_option = f"--resolve {shlex.quote(plan.resolve)} " if plan.resolve else ""
    echo(f"  curl --cacert {quoted_ca} {resolve_option}{shlex.quote(f'https://{base}/')}")


def _announce_routes(srv: WSSServer, *, ca_file: str, routes_file: Path | None) -> None:
    """The lines on stdout for named routes: each name's URL and upstream, and a curl to try."""
    listening = f"[{srv.address}]:{srv.port}" if srv.address and ":" in srv.address else f"{srv.address}:{srv.port}"
    source = f"; routes from {routes_file}" if routes_file is not None else ""
    echo(f"Serving {len(srv.routes)} route{'s' if len(srv.routes) != 1 else ''} over https:// and wss:// "
         f"(listening on {listening}{source})")
    width = max(len(f"https://{r.name}:{srv.port}/") for r in srv.routes)
    for r in srv.routes:
        echo(f"  {f'https://{r.name}:{srv.port}/':<{width}}  -> {r.upstream}")
    if srv.proxy:
        echo(f"  {'any other name':<{width}}  -> {srv.proxy}")
    echo(f"  CA file:     {ca_file}")
    echo("  certificates: one per name, made in CAROOT/leaves when a client first asks for it")
    echo("Names under .localhost reach this machine in browsers and curl without /etc/hosts (RFC 6761); other "
         "programs need systemd-resolved or an /etc/hosts line (and macOS resolves only localhost itself).")
    first = next((r.name for r in srv.routes if not r.name.startswith("*.")), srv.routes[0].name.replace("*", "www"))
    address = srv.address if srv.address and not ipaddress.ip_address(srv.address.split("%")[0]).is_unspecified \
        else "127.0.0.1"
    echo("Try it:")
    echo(f"  curl --cacert {shlex.quote(ca_file)} --resolve {shlex.quote(f'{first}:{srv.port}:{address}')} "
         f"{shlex.quote(f'https://{first}:{srv.port}/')}")


def _note(plan: UrlPlan) -> str | None:
    """One line saying why the URL will not connect as printed, and what to do; None when it will."""
    if plan.problem == "name-elsewhere":
        label = plan.name if plan.wildcard is None else f"{plan.name} (a name under the certificate's {plan.wildcard})"
        if not plan.addresses:
            why = f"{label} does not resolve on this machine"
        else:
            why = f"{label} resolves to {', '.join(plan.addresses)}, not to {plan.bound} where the server listens"
        return (f"Note: {why}: add `{plan.connect} {plan.name}` to /etc/hosts "
                f"(or give curl --resolve {plan.resolve}, as below)")
    if plan.problem == "ip-elsewhere":
        return (f"Note: the certificate covers {', '.join(plan.ips)} but the server listens on "
                f"{plan.bound}: restart with --host {plan.ips[0]}")
    if plan.problem == "no-names":
        return ("Note: the certificate covers no host name or IP address, so no client will "
                "accept it here: give names such as localhost 127.0.0.1")
    return None
