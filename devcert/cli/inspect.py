"""``devcert inspect``: a certificate file or a TLS server's chain, and whether it chains to the local CA."""

from __future__ import annotations

from typing import Annotated

import typer

from ..inspect import inspect as do_inspect
from .application import app
from .options import JsonOption, examples
from .output import echo, print_json
from .shared import readable_ca


@app.command(
    epilog=examples(
        "devcert inspect certs/dev.pem",
        "devcert inspect localhost:8443 --json",
    )
)
def inspect(
    target: Annotated[str, typer.Argument(help="A certificate file (PEM or DER), or HOST:PORT of a TLS server.", show_default=False, metavar="TARGET")],
    json_output: JsonOption = False,
) -> None:
    """Show a certificate's subject, names, validity, key, issuer and fingerprint, and whether
    it chains to this machine's local CA (for a server: the chain it sent and the handshake result)."""
    report = do_inspect(target, readable_ca())
    if json_output:
        print_json(report)
        return
    if report["kind"] == "server":
        echo(f"Server {report['source']}: {report['tls_version']} {report['cipher']}, sent "
             f"{len(report['certificates'])} certificate(s)")
    else:
        echo(f"File {report['source']}: {len(report['certificates'])} certificate(s)")
    for i, c in enumerate(report["certificates"]):
        if i:
            echo("")
        echo(f"[{i}] Subject:  {c['subject']}")
        echo(f"    Names:    {', '.join(c['names']) or '(none)'}")
        echo(f"    Valid:    {c['not_before'][:19]} to {c['not_after'][:19]} "
             f"({'EXPIRED' if c['expired'] else str(c['days_left']) + ' days left'})")
        echo(f"    Key:      {c['key']}")
        echo(f"    Issuer:   {c['issuer']}")
        echo(f"    Serial:   {c['serial']}")
        echo(f"    SHA-256:  {c['sha256']}")
        if c["extended_key_usage"]:
            echo(f"    Usage:    {', '.join(c['extended_key_usage'])}")
    mark = "yes" if report["chains_to_local_ca"] else "no"
    echo(f"Chains to the local CA: {mark} ({report['verdict']})")

