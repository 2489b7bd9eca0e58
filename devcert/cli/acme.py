"""``devcert acme``: an ACME server on the local CA, and the lines that point clients at it."""

from __future__ import annotations

import base64
import ipaddress
import json
import shlex
from typing import Annotated, Optional

import typer

from .application import app
from .messages import describe
from .options import JsonOption, examples, whole_number
from .output import Failed, echo, warn

#: The directory port unless --port is given: memorable (RFC 8555) and unprivileged.
DEFAULT_PORT = 8555


def _port(value: int, option: str) -> int:
    if not 0 <= value <= 65535:
        raise Failed(f"{option} must be between 0 and 65535 (got {value})", code=2)
    return value


def _dns_server(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, _, port = text.rpartition(":") if text.count(":") == 1 or text.startswith("[") else (text, "", "53")
    host = host.strip("[]") or text
    try:
        ipaddress.ip_address(host)
        number = int(port or 53)
    except ValueError:
        raise Failed(f"--dns-server takes IP or IP:PORT, such as 127.0.0.1:5353 (got {text!r})", code=2) from None
    return host, _port(number, "--dns-server's port")


def client_lines(directory: str, ca_file: str, http_port: int, tls_port: int) -> list[str]:
    """Lines ready to paste for each common ACME client, trusting the CA through its own options."""
    d, c = shlex.quote(directory), shlex.quote(ca_file)
    certbot_port = f" --http-01-port {http_port}" if http_port != 80 else ""
    lego_port = f" --http.port :{http_port}" if http_port != 80 else ""
    acmesh_port = f" --httpport {http_port}" if http_port != 80 else ""
    with open(ca_file, "rb") as f:
        bundle = base64.b64encode(f.read()).decode()
    return [
        "certbot:",
        f"  REQUESTS_CA_BUNDLE={c} certbot certonly --standalone{certbot_port} --server {d} "
        f"--agree-tos --register-unsafely-without-email -d app.localhost",
        "lego:",
        f"  LEGO_CA_CERTIFICATES={c} lego --server {d} --accept-tos --email you@example.com "
        f"--domains app.localhost --http{lego_port} run",
        "Caddy (the Caddyfile's global options, for every site):",
        "  {",
        f"    acme_ca {directory}",
        f"    acme_ca_root {ca_file}",
        "  }",
        "Caddy (one site):",
        "  app.localhost {",
        "    tls {",
        "      issuer acme {",
        f"        dir {directory}",
        f"        trusted_roots {ca_file}",
        "      }",
        "    }",
        "  }",
        "Traefik (static configuration; lego inside trusts the CA from the environment):",
        f"  LEGO_CA_CERTIFICATES={c} traefik --certificatesresolvers.devcert.acme.caserver={directory} "
        f"--certificatesresolvers.devcert.acme.email=you@example.com "
        f"--certificatesresolvers.devcert.acme.storage=acme.json "
        f"--certificatesresolvers.devcert.acme.httpchallenge.entrypoint=web",
        "cert-manager (a cluster reaches this machine only if devcert acme listens beyond loopback, --host):",
        "  apiVersion: cert-manager.io/v1",
        "  kind: ClusterIssuer",
        "  metadata: {name: devcert}",
        "  spec:",
        "    acme:",
        f"      server: {directory}",
        f"      caBundle: {bundle}",
        "      privateKeySecretRef: {name: devcert-acme-account}",
        "      solvers: [{http01: {ingress: {}}}]",
        "acme.sh:",
        f"  acme.sh --issue --server {d} --ca-bundle {c} --standalone{acmesh_port} -d app.localhost",
        *([f"(challenges are fetched from port {http_port} for http-01 and {tls_port} for tls-alpn-01)"]
          if (http_port, tls_port) != (80, 443) else []),
    ]


@app.command(
    "acme",
    epilog=examples(
        "devcert acme                                   # https://127.0.0.1:8555/directory",
        "devcert acme --port 0 --json                   # any free port; one JSON line once listening",
        "devcert acme --http-port 5002 --tls-port 5001  # clients answer challenges on unprivileged ports",
        "devcert acme --host 0.0.0.0 --name host.docker.internal   # for containers on this machine",
    ),
)
def acme(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 lets other machines (containers, a cluster) use it.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port of the ACME directory (0: any free port).", metavar="PORT", parser=whole_number)] = DEFAULT_PORT,
    http_port: Annotated[int, typer.Option("--http-port", help="Port on which http-01 challenges are fetched.", metavar="HTTP_PORT", parser=whole_number)] = 80,
    tls_port: Annotated[int, typer.Option("--tls-port", help="Port on which tls-alpn-01 challenges are checked.", metavar="TLS_PORT", parser=whole_number)] = 443,
    dns_server: Annotated[Optional[str], typer.Option("--dns-server", help="DNS server (IP or IP:PORT) asked for dns-01 TXT records instead of the system's.", show_default=False, metavar="DNS_SERVER")] = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", help="A name other machines or containers use to reach this one (host.docker.internal, a LAN name): added to the server's certificate and used in the directory URL. Repeatable.", show_default=False, metavar="NAME")] = None,
    days: Annotated[int, typer.Option("--days", help="Lifetime of issued certificates (at most 825, never past the CA's end).", metavar="DAYS", parser=whole_number)] = 90,
    json_output: JsonOption = False,
) -> None:
    """Serve an ACME (RFC 8555) directory over https that issues from the local CA.

    certbot, lego, Caddy, Traefik, cert-manager and acme.sh then get certificates the local CA
    signs, renew them on their own, and revoke them. Challenges are validated for real: http-01
    and tls-alpn-01 connect to the name (*.localhost is always this machine), dns-01 looks up
    TXT records. Names outside the CA's constraints are refused. Accounts, orders and
    certificates are kept in CAROOT/acme and survive a restart. Runs until Ctrl-C.
    """
    # Deferred: `devcert --help` imports every command module, and aiohttp with the ACME
    # server (and cryptography, through the CA modules) costs ~140 ms that only this command needs.
    from .. import acme as acme_server
    from .. import serve
    from ..issue import check_days
    from ..names import DEFAULT_NAMES, parse_names
    from .shared import load_ca_for_issuing, not_trusted_hint

    _port(port, "--port")
    _port(http_port, "--http-port")
    _port(tls_port, "--tls-port")
    days = check_days(days)
    dns = _dns_server(dns_server)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    _, sockaddr = serve.resolve_host(host)
    bind = sockaddr[0]
    extra = [n for n in (name or []) if n not in DEFAULT_NAMES]
    if extra:
        parse_names(extra)  # a bad --name is a usage error before anything starts
    ca = load_ca_for_issuing()
    names = list(DEFAULT_NAMES) + extra
    if host not in names and host not in ("0.0.0.0", "::"):
        names.append(host)
    ca, ensured = serve.ensure_certificate(names, ca=ca)
    if bind in ("0.0.0.0", "::"):
        warn(f"listening on {host}: every machine that can reach this one can ask for certificates")

    def log(line: str) -> None:
        echo(f"devcert acme: {line}", err=True)

    settings = acme_server.Settings(http_port=http_port, tls_port=tls_port, dns_server=dns)
    server = acme_server.AcmeServer(
        ca, serve.server_context(ensured.cert_path, ensured.key_path),
        acme_server.Config(host=bind, port=port, days=days, settings=settings, url_host=extra[0] if extra else None),
        log=log, word=describe)

    def ready(srv: acme_server.AcmeServer) -> None:
        if json_output:
            echo(json.dumps({"directory": srv.directory_url, "ca": str(ca.cert_path), "host": srv.address,
                             "port": srv.port, "http_port": http_port, "tls_port": tls_port, "days": days,
                             "state": str(srv.state_dir)}))
            return
        echo(f"ACME directory: {srv.directory_url}")
        echo(f"CA file:        {ca.cert_path}")
        echo(f"State:          {srv.state_dir} (certificates last {days} days)")
        for line in client_lines(srv.directory_url, str(ca.cert_path), http_port, tls_port):
            echo(line)
        echo("Press Ctrl-C to stop.", err=True)
        if not ca.created:
            not_trusted_hint(ca)

    acme_server.run(server, on_ready=ready)
    echo("Stopped.", err=True)
