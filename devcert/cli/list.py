"""``devcert list``: the certificates devcert issued (the inventory)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .. import inventory
from ..ca import caroot
from .application import app
from .options import JsonOption, examples, whole_number
from .output import echo, print_json, warn
from .shared import check_days, date, readable_ca


def _flags(entry: dict[str, Any]) -> str:
    flags = []
    if entry["missing"]:
        flags.append("missing")
    elif entry["replaced"]:
        flags.append("replaced since")
    if entry.get("key_missing") and not entry["missing"]:
        flags.append("key missing")
    if entry.get("expired"):
        flags.append("expired")
    if entry.get("other_ca"):
        flags.append("other CA")
    if entry.get("client"):
        flags.append("client")
    return ", ".join(flags)


@app.command("list", epilog=examples(
    "devcert list",
    "devcert list --expiring 30 --json",
))
def list_(
    expiring: Annotated[Optional[int], typer.Option("--expiring", help="Only certificates that expire within DAYS (or already have).", metavar="DAYS", show_default=False, parser=whole_number)] = None,
    json_output: JsonOption = False,
) -> None:
    """List the certificates devcert issued (the inventory in CAROOT), marking missing files."""
    check_days("--expiring", expiring)
    ca = readable_ca()
    entries, warnings = inventory.read(caroot())
    for message in warnings:
        warn(message)
    rows = [inventory.status(e, ca) for e in entries]
    if expiring is not None:
        rows = [r for r in rows if r["days_left"] is not None and r["days_left"] < expiring]
    rows.sort(key=lambda r: r.get("not_after") or "")
    if json_output:
        print_json({"inventory": str(inventory.inventory_path(caroot())), "certs": rows})
        return
    if not rows:
        echo("No certificates" + (f" expire within {expiring} days." if expiring is not None else " recorded yet."))
        return
    for r in rows:
        flags = _flags(r)
        left = f"{r['days_left']:>4}d" if r["days_left"] is not None else "   ?"
        echo(f"{date(r.get('not_after'))} {left}  {r['cert']}  ({', '.join(r['names'])})" + (f"  [{flags}]" if flags else ""))

