"""``devcert doctor``: check the CA, the trust stores, the environment and each client."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from ..advice import Advice
from ..doctor import ENV_FIX, Check, Report, run_doctor
from .application import app
from .messages import word
from .options import JsonOption, examples
from .output import Failed, echo, print_json


def _compact_env(checks: list) -> list:  # type: ignore[type-arg]
    """For the table: trust variables with the same verdict on the same file share one line."""
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
        fix = word(Advice(ENV_FIX)) + f", or unset {' '.join(names)}" if check.fix else ""
        # "=/path holds the CA" -> "/path holds the CA (SSL_CERT_FILE, ...)": the verdict is about the
        # file, which every listed variable names.
        out.append(Check("env", f"{len(names)} variables", check.status, f"{key[1][1:]} ({', '.join(names)})", fix))
    return out


_MARK = {"ok": "ok", "warn": "warn", "problem": "PROBLEM", "not present": "absent", "skipped": "skipped"}


@app.command(epilog=examples(
    "devcert doctor",
    'devcert doctor --json | jq \'.checks[] | select(.status=="problem")\'',
))
def doctor(
    json_output: JsonOption = False,
    no_clients: Annotated[bool, typer.Option("--no-clients", help="Skip the TLS handshakes with each client.")] = False,
) -> None:
    """Check the CA, each trust store, trust-related environment variables, and each client.

    Each client present on this machine (Python ssl, requests, httpx, curl, Node, Bun, Deno,
    Go, Java) makes a real TLS handshake with a short-lived local server on a devcert
    certificate. A CA whose name constraints an installed client cannot evaluate is reported
    with the way to move (`devcert ca rotate`). Exits 0 when
    nothing is wrong, 1 when a check found a problem (warnings do not fail).
    """
    if not no_clients:
        # The handshakes (a JVM among them) take seconds: say what is going on (stderr, so
        # --json output stays one object).
        echo("devcert: checking the CA, the trust stores and each client (real TLS handshakes; a few seconds)...",
             err=True)
    found = run_doctor(clients=not no_clients)
    # Every fix in the CLI's words (its commands), in the table and in --json alike.
    report = Report([replace(check, fix=word(check.fix)) for check in found.checks])
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
        raise Failed()

