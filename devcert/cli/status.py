"""``devcert status``: each trust store, whether the local CA is in it, and stale entries."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ca import LocalCA, caroot
from ..trust import entry_name, selected_stores, stale_entries
from .application import app
from .messages import store_row, word
from .options import RootOption, examples
from .output import echo, print_json
from .store_report import check_caroot, chosen_stores


@app.command(epilog=examples(
    "devcert status",
    "devcert status --json",
    "devcert status --root ./rootfs      # an image's root file system",
))
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")] = False,
    root: RootOption = None,
) -> None:
    """Show each trust store: where it is, whether the local CA is installed, and how to fix it.

    Also lists stale entries: those of any devcert CA that is not the local one.
    """
    check_caroot()
    ca = LocalCA.load(require_key=False) if LocalCA.exists() else None
    stores = chosen_stores(None, root) if root is not None else selected_stores(include_unavailable=True)
    rows = [s.status(ca) for s in stores]
    unlisted: list[dict[str, str]] = []
    stale = stale_entries(ca, stores, on_error=lambda s, err: unlisted.append({"store": s.name, "error": str(err)}))
    if json_output:
        print_json({
            "caroot": str(caroot()),
            "ca": None if ca is None else {"subject": ca.subject, "sha256": ca.fingerprint, "entry": entry_name(ca)},
            "trusted_anywhere": any(r.installed for r in rows),
            "stores": [store_row(r) for r in rows],
            "stale": [{"store": s.name, **entry.as_dict()} for s, entry in stale],
            "stale_unknown": unlisted,
        })
        return
    if ca is None:
        echo(f"No local CA in {caroot()} yet: `devcert install` creates and installs one.")
    else:
        echo(f"Local CA: {ca.common_name} (SHA-256 {ca.fingerprint[:16]}..., entries named {entry_name(ca)})")
    table = [("STORE", "STATE", "WHERE", "FIX")]
    for r in rows:
        detail, fix = word(r.detail), None if r.fix is None else word(r.fix)
        state = ("installed" if r.installed else detail) if r.available else "not found"
        table.append((r.name, state, r.where, fix or ("" if r.available else detail)))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    if stale:
        whose = "no local CA here issues from them" if ca is None else "not the local CA, still trusted"
        echo("")
        echo(f"Stale entries ({whose}):")
        cells = [(s.name, entry.name, entry.where) for s, entry in stale]
        widths = [max(len(c[i]) for c in cells) for i in range(2)]
        for name, entry_text, where in cells:
            echo(f"  {name.ljust(widths[0])}  {entry_text.ljust(widths[1])}  {where}")
        echo("Remove them with `devcert uninstall --stale` (`--dry-run` first shows what it would do).")
    for item in unlisted:
        echo(f"Cannot look for stale entries in {item['store']}: {item['error']}")

