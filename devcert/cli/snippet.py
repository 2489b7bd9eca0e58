"""``devcert snippet``: a runnable server (and client) snippet with real paths."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..issue import ensure_leaf, managed_leaf_paths
from ..names import DEFAULT_NAMES, parse_names
from ..snippets import TARGETS, get_target, render, snippet_values
from .options import examples, whole_number
from .application import app
from .output import echo
from .shared import load_ca_for_issuing


def _complete_target(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of TARGET: the snippet targets, each with its summary."""
    return [(t.name, t.summary) for t in TARGETS.values() if t.name.startswith(incomplete)]


@app.command(
    epilog=examples(
        "devcert snippet --list",
        "devcert snippet websockets > wss.py && python3 wss.py server",
        "devcert snippet node app.test --port 9443 > server.js",
        "devcert snippet nginx --upstream 127.0.0.1:8000 > nginx.conf",
    )
)
def snippet(
    target: Annotated[Optional[str], typer.Argument(help="What to print a snippet for (see --list).", show_default=False, metavar="TARGET",
                                                        autocompletion=_complete_target)] = None,
    names: Annotated[Optional[list[str]], typer.Argument(help="Names for the certificate (default: localhost 127.0.0.1 ::1).", show_default=False, metavar="NAMES")] = None,
    list_targets: Annotated[bool, typer.Option("--list", help="List the targets, one line each.")] = False,
    port: Annotated[Optional[int], typer.Option("--port", help="The port the server listens on (default 8443; vite 5173).", show_default=False, metavar="PORT", parser=whole_number)] = None,
    upstream: Annotated[str, typer.Option("--upstream", help="nginx / caddy: the plain http:// / ws:// backend (host:port).", metavar="UPSTREAM")] = "127.0.0.1:8000",
) -> None:
    """Print a complete, runnable server (and client) snippet for TARGET with real paths.

    The paths are those of the local CA and of a certificate for NAMES that devcert keeps in
    CAROOT/leaves (issued now if missing or stale). Each snippet says in a comment how to run it.
    """
    if list_targets:
        width = max(len(name) for name in TARGETS)
        for t in TARGETS.values():
            echo(f"{t.name.ljust(width)}  {t.summary}")
        return
    if not target:
        raise UsageError("give a target, e.g. `devcert snippet websockets` (`devcert snippet --list` lists them)")
    chosen = get_target(target)
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port}: give a port between 1 and 65535")
    if not upstream or any(c.isspace() for c in upstream) or ";" in upstream or "{" in upstream:
        raise UsageError(f"--upstream {upstream!r}: give host:port, e.g. 127.0.0.1:8000")
    if upstream.startswith(("http://", "ws://")):
        upstream = upstream.split("://", 1)[1].rstrip("/")


    parsed = parse_names(names or DEFAULT_NAMES)
    ca = load_ca_for_issuing()
    cert_path, key_path = managed_leaf_paths(ca, parsed)
    ensured = ensure_leaf(ca, parsed, cert_path, key_path)
    if ensured.action != "kept":
        echo(f"{ensured.action.capitalize()} {ensured.cert_path} for {', '.join(n.value for n in parsed)}.", err=True)
    assert ca.cert_path is not None
    values = snippet_values(ca=ca.cert_path, cert=ensured.cert_path, key=ensured.key_path,
                            port=port or chosen.default_port, upstream=upstream,
                            names=[n.value for n in parsed], target=chosen)
    sys.stdout.write(render(chosen, values))
    sys.stdout.flush()

