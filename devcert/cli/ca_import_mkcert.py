"""``devcert ca import-mkcert``: adopt mkcert's CA as devcert's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..ca import caroot
from ..lifecycle import import_mkcert
from .application import ca_app
from .options import JsonOption, examples
from .output import echo, print_json, warn


@ca_app.command(
    "import-mkcert",
    epilog=examples(
        "devcert ca import-mkcert",
        "devcert ca import-mkcert --caroot ~/.local/share/mkcert --force",
    ),
)
def ca_import_mkcert(
    caroot_: Annotated[Optional[Path], typer.Option("--caroot", help="mkcert's CA folder (default: $CAROOT, else `mkcert -CAROOT`).", show_default=False, metavar="CAROOT")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing devcert CA (it is backed up in CAROOT/old/).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Adopt mkcert's CA as devcert's, for machines that already trust it.

    mkcert's CA carries no name constraints: it can sign for any name, so guard its key. A
    devcert CA (`devcert ca init`) permits only development names and private addresses.
    """
    report = import_mkcert(caroot_, caroot(), force=force)
    constrained = report.ca.constraints is not None
    if json_output:
        print_json({**report.ca.info(), "source": str(report.source), "unchanged": report.unchanged,
                    "replaced_sha256": report.replaced.fingerprint if report.replaced else None,
                    "backup": str(report.backup) if report.backup else None})
        return
    if report.unchanged:
        echo(f"devcert already uses mkcert's CA {report.ca.common_name} ({report.source}).")
    else:
        echo(f"Adopted mkcert's CA {report.ca.common_name} from {report.source} into {caroot()}.")
    echo(f"  SHA-256: {report.ca.fingerprint}")
    if not constrained:
        warn("this CA carries no name constraints: it can sign for any name, so anyone with its key can "
             "impersonate any site to this machine; `devcert ca init --force` makes a constrained one")
    if report.replaced is not None:
        warn(f"replaced the CA {report.replaced.common_name}; its files are in {report.backup}. If it was "
             f"installed, remove it with `DEVCERT_CAROOT={report.backup} devcert uninstall`")
    echo("Stores that trust mkcert's CA (after `mkcert -install`) now trust devcert's certificates; "
         "`devcert install` adds the rest.")

