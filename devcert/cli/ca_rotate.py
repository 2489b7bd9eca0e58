"""``devcert ca rotate``: replace the local CA everywhere it is used."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..ca import LocalCA, caroot, check_profile
from ..errors import UsageError
from ..lifecycle import rotate
from .application import ca_app
from .messages import describe_skipped, word
from .options import JsonOption, examples
from .output import Failed, echo, print_json, warn


@ca_app.command("rotate", epilog=examples(
    "devcert ca rotate --yes",
))
def ca_rotate(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    profile: Annotated[str, typer.Option("--profile", help="Name constraints of the new CA: dns (default) or strict (see `devcert ca init --help`).", metavar="PROFILE")] = "dns",
    json_output: JsonOption = False,
) -> None:
    """Replace the local CA with a new one everywhere it is used.

    Makes a new CA (same key type and --permit widenings), installs it in every trust store
    that trusted the old one, reissues the certificates in the inventory, then removes the old
    CA from those stores. The old CA's files are kept in CAROOT/old/<fingerprint>/.
    """
    check_profile(profile)
    old = LocalCA.load()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("rotating replaces the CA and reissues every recorded certificate: confirm with --yes")
        if not typer.confirm(f"Replace the CA {old.common_name} (SHA-256 {old.short_id}) with a new one?", default=False):
            raise Failed("not rotated: the CA and its certificates are unchanged")
    report = rotate(caroot(), progress=None if json_output else echo, profile=profile)
    warnings = [word(w) for w in report.warnings]  # in the CLI's words
    for message in warnings:
        warn(message)
    skipped = [describe_skipped(s) for s in report.skipped]
    if json_output:
        print_json({**report.as_dict(), "warnings": warnings, "skipped": skipped})
    else:
        for s in skipped:
            echo(f"skipped {s}")
        if report.resumed:
            echo(f"Finished the rotation an earlier `devcert ca rotate` began: the CA is now {report.new.common_name} "
                 f"(run it again to rotate once more).")
        if not report.trusted:
            echo("The old CA was not installed in any trust store here; run `devcert install` to trust the new one.")
        echo(f"Rotated: {len(report.reissued)} certificate(s) reissued; the old CA is in {report.backup}.")
        if report.errors:
            echo("A store that refused the new CA keeps the old one: `devcert status` shows it as stale; "
                 "`devcert install` then `devcert uninstall --stale` finish the move.")
    for e in report.errors:
        echo(f"devcert: error: {e}", err=True)
    if report.errors:
        raise Failed()

