"""``devcert renew``: reissue certificates from the inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import inventory
from ..ca import caroot
from ..errors import DevcertError, NotRenewableError, UsageError
from .application import app
from .messages import describe, describe_skipped, word
from .options import JsonOption, examples, whole_number
from .output import Failed, echo, print_json, warn
from .shared import check_days, date, existing_ca, load_ca_for_issuing


@app.command(
    epilog=examples(
        "devcert renew certs/dev.pem",
        "devcert renew --expiring 30",
        "devcert renew --all",
    )
)
def renew(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Certificate (or key) files to renew.", show_default=False, metavar="PATHS")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Renew every certificate in the inventory whose file exists.")] = False,
    expiring: Annotated[Optional[int], typer.Option("--expiring", help="Renew those that expire within DAYS.", metavar="DAYS", show_default=False, parser=whole_number)] = None,
    json_output: JsonOption = False,
) -> None:
    """Reissue certificates from the inventory: the same names and options, to the same paths."""
    check_days("--expiring", expiring)
    modes = sum([bool(paths), all_, expiring is not None])
    if modes != 1:
        raise UsageError("say what to renew: PATH..., --all, or --expiring DAYS (one of them)")
    entries, warnings = inventory.read(caroot())
    for message in warnings:
        warn(message)
    if paths:
        selected, left = inventory.select_for_renewal(entries, None, paths=paths)
    else:
        selected, left = inventory.select_for_renewal(entries, existing_ca(), expiring=expiring)
    skipped = [describe_skipped(s) for s in left]
    ca = load_ca_for_issuing() if selected else None
    done = []
    errors = []
    for entry in selected:
        try:
            leaf, warns = inventory.reissue(ca, entry)
        except NotRenewableError as err:
            errors.append(describe(err))  # it names the file already
            continue
        except DevcertError as err:
            errors.append(f"{entry['cert']}: {describe(err)}")
            continue
        for message in warns:
            warn(word(message))
        done.append({"cert": entry["cert"], "key": entry.get("key"), "names": entry["names"],
                     "not_after": leaf.not_after.isoformat(), "serial": leaf.serial})
    if json_output:
        print_json({"renewed": done, "skipped": skipped, "errors": errors})
    else:
        for d in done:
            echo(f"renewed {d['cert']} ({', '.join(d['names'])}); valid until {date(d['not_after'])}")
        for s in skipped:
            echo(f"skipped {s}")
        if not done and not errors:
            echo("Nothing to renew.")
    for e in errors:
        echo(f"devcert: error: {e}", err=True)
    if errors:
        raise Failed()

