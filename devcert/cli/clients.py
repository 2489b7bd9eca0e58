"""``devcert snippet``, ``devcert env`` and ``devcert doctor``: making every client trust the CA."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from . import echo, print_json
from .application import app

JSON_HELP = "Print one JSON object on stdout and nothing else there."


@app.command(
    epilog=(
        "Examples:\n\n"
        "  devcert snippet --list\n\n"
        "  devcert snippet websockets > wss.py && python3 wss.py server\n\n"
        "  devcert snippet node app.test --port 9443 > server.js\n\n"
        "  devcert snippet nginx --upstream 127.0.0.1:8000 > nginx.conf"
    )
)
def snippet(
    target: Annotated[Optional[str], typer.Argument(help="What to print a snippet for (see --list).", show_default=False)] = None,
    names: Annotated[Optional[list[str]], typer.Argument(help="Names for the certificate (default: localhost 127.0.0.1 ::1).", show_default=False)] = None,
    list_targets: Annotated[bool, typer.Option("--list", help="List the targets, one line each.")] = False,
    port: Annotated[Optional[int], typer.Option("--port", help="The port the server listens on (default 8443; vite 5173).", show_default=False)] = None,
    upstream: Annotated[str, typer.Option("--upstream", help="nginx / caddy: the plain http:// / ws:// backend (host:port).")] = "127.0.0.1:8000",
) -> None:
    """Print a complete, runnable server (and client) snippet for TARGET with real paths.

    The paths are those of the local CA and of a certificate for NAMES that devcert keeps in
    CAROOT/leaves (issued now if missing or stale). Each snippet says in a comment how to run it.
    """
    from ..errors import UsageError
    from ..snippets import TARGETS, get_target, render, snippet_values

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

    from ..issue import ensure_leaf, managed_leaf_paths
    from ..names import DEFAULT_NAMES, parse_names
    from .create import load_ca_for_issuing

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


@app.command(
    epilog=(
        "Examples:\n\n"
        "  eval \"$(devcert env)\"                         # bash, zsh, sh\n\n"
        "  devcert env --shell fish | source\n\n"
        "  devcert env --shell powershell | Invoke-Expression\n\n"
        "  eval \"$(devcert env --unset)\"                 # undo"
    )
)
def env(
    shell: Annotated[str, typer.Option("--shell", help="sh (bash, zsh), fish or powershell.")] = "sh",
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Print the lines that undo the exports.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No comment lines, only the exports.")] = False,
) -> None:
    """Print the exports that make this shell's Python, Node, curl, Deno, git ... trust the CA.

    Writes CAROOT/ca-bundle.pem: the system's CA bundle (certifi's if there is none) plus the
    local CA, refreshed when either changes, so clients that read a bundle instead of the OS
    store (requests, pip, botocore, ...) trust the CA and still trust public sites. Node gets
    the CA alone in NODE_EXTRA_CA_CERTS, which it adds to its own roots; a Node 22.15+ / 23.9+
    on PATH gets NODE_USE_SYSTEM_CA=1 instead once the OS store holds the CA (devcert install).
    """
    from ..clients import (ENV_NAMES, _check_shell, ensure_bundle, env_vars, export_lines, find_node,
                           system_store_has, unset_lines)

    _check_shell(shell)
    if unset:
        if json_output:
            print_json({"unset": list(ENV_NAMES)})
        else:
            for line in unset_lines(ENV_NAMES, shell):
                echo(line)
        return
    from .create import load_ca_for_issuing

    ca = load_ca_for_issuing()
    bundle = ensure_bundle(ca)
    node = find_node()
    variables = env_vars(ca, bundle.path, node, system_has_ca=node is not None and node.reads_system_ca
                         and system_store_has(ca))
    if json_output:
        print_json({
            "bundle": str(bundle.path),
            "ca": str(ca.cert_path),
            "source": str(bundle.source),
            "source_kind": bundle.source_kind,
            "action": bundle.action,
            "variables": {v.name: v.value for v in variables},
            "reasons": {v.name: v.why for v in variables},
        })
        return
    if not quiet:
        echo(f"# devcert env: trust the devcert CA ({ca.common_name}) in addition to the public roots of")
        echo(f"# {bundle.source} ({bundle.source_kind}), combined in {bundle.path}.")
    for line in export_lines(variables, shell, comments=not quiet):
        echo(line)


def _compact_env(checks: list) -> list:  # type: ignore[type-arg]
    """For the table: trust variables with the same verdict on the same file share one line."""
    from ..doctor import ENV_FIX, Check

    groups: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
    for check in checks:
        if check.group == "env" and check.detail.startswith(check.name + "="):
            groups.setdefault((check.status, check.detail[len(check.name):]), []).append(check)
    out = []
    for check in checks:
        key = (check.status, check.detail[len(check.name):])
        members = groups.get(key) if check.group == "env" else None
        if not members or len(members) < 2:
            out.append(check)
            continue
        if check is not members[0]:
            continue
        names = [c.name for c in members]
        fix = f"{ENV_FIX}, or unset {' '.join(names)}" if check.fix else ""
        # "=/path holds the CA" -> "/path holds the CA (SSL_CERT_FILE, ...)": the verdict is about the
        # file, which every listed variable names.
        out.append(Check("env", f"{len(names)} variables", check.status, f"{key[1][1:]} ({', '.join(names)})", fix))
    return out


_MARK = {"ok": "ok", "warn": "warn", "problem": "PROBLEM", "not present": "absent", "skipped": "skipped"}


@app.command(epilog="Examples:\n\n  devcert doctor\n\n  devcert doctor --json | jq '.checks[] | select(.status==\"problem\")'")
def doctor(
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    no_clients: Annotated[bool, typer.Option("--no-clients", help="Skip the TLS handshakes with each client.")] = False,
) -> None:
    """Check the CA, each trust store, trust-related environment variables, and each client.

    Each client present on this machine (Python ssl, requests, httpx, curl, Node, Bun, Deno,
    Go, Java) makes a real TLS handshake with a short-lived local server on a devcert
    certificate. A CA whose name constraints an installed client cannot evaluate is reported
    with the way to move (`devcert ca rotate`). Exits 0 when
    nothing is wrong, 1 when a check found a problem (warnings do not fail).
    """
    from ..doctor import run_doctor

    if not no_clients:
        # The handshakes (a JVM among them) take seconds: say what is going on (stderr, so
        # --json output stays one object).
        echo("devcert: checking the CA, the trust stores and each client (real TLS handshakes; a few seconds)...",
             err=True)
    report = run_doctor(clients=not no_clients)
    if json_output:
        print_json(report.to_dict())
    else:
        groups = {"ca": "Local CA", "store": "Trust stores", "env": "Environment", "client": "Clients (TLS handshake)"}
        rows = _compact_env(report.checks)
        width = min(max((len(c.name) for c in rows), default=10), 24)
        current = None
        for check in rows:
            if check.group != current:
                current = check.group
                echo(("" if check is rows[0] else "\n") + groups.get(current, current))
            echo(f"  {_MARK.get(check.status, check.status):8} {check.name.ljust(width)}  {check.detail}")
            if check.fix and check.status in ("problem", "warn"):
                echo(f"  {'':8} {'':{width}}  fix: {check.fix}")
        problems = sum(c.status == "problem" for c in rows)
        echo("")
        echo("All good." if report.ok else f"{problems} problem{'s' if problems != 1 else ''} found.")
    if not report.ok:
        raise typer.Exit(1)
