"""``devcert sync``: create or renew the certificates the project declares."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..project import add_to_gitignore, expiring_soon, gitignore_suggestions, load_project, warning_window
from ..project import sync as do_sync
from .application import app
from .messages import word
from .options import JsonOption, examples, whole_number
from .output import Failed, echo, print_json, warn
from .shared import check_days, date, existing_ca, load_ca_for_issuing


@app.command(
    epilog=examples(
        "devcert sync                 # create or renew what the project declares",
        "devcert sync --check         # change nothing; exit 1 if something would change",
        "devcert sync --gitignore     # also add the outputs to .gitignore without asking",
        intro=(
            "Declare certificates in pyproject.toml:",
            "  [tool.devcert]",
            '  certs = [{ names = ["localhost", "127.0.0.1"], cert = "certs/dev.pem", key = "certs/dev-key.pem" }]',
        ),
    )
)
def sync(
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if something would change.")] = False,
    min_days: Annotated[int, typer.Option("--min-days", help="Renew certificates valid for fewer days than this.", metavar="MIN_DAYS", parser=whole_number)] = 30,
    warn_days: Annotated[Optional[int], typer.Option("--warn-days", help="Warn about certificates expiring within this many days (default: min-days + 30).", show_default=False, metavar="WARN_DAYS", parser=whole_number)] = None,
    gitignore: Annotated[Optional[bool], typer.Option("--gitignore/--no-gitignore", help="Add the outputs to .gitignore without asking / never offer to.", show_default=False, metavar="GITIGNORE")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Use this pyproject.toml or devcert.toml instead of searching upwards.", metavar="CONFIG")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create or renew the certificates the project declares ([tool.devcert] or devcert.toml).

    Each declared certificate must exist, be signed by this machine's local CA, carry exactly
    the declared names and options, and be valid for --min-days more days. Only those that
    are not are reissued, one line each; a second run changes nothing.
    """
    check_days("--min-days", min_days)
    check_days("--warn-days", warn_days)
    project = load_project(config=config)
    if check:
        ca = existing_ca(require_key=False)
    else:

        ca = load_ca_for_issuing() if project.certs else existing_ca()
    results = do_sync(project, ca, check=check, min_days=min_days)
    changed = [r for r in results if r.changed]

    warn_within = warning_window(min_days, warn_days)
    expiring = expiring_soon(results, min_days=min_days, warn_days=warn_days)

    suggestions: list[str] = []
    added = None
    if gitignore is not False:

        suggestions = gitignore_suggestions(project)
        if suggestions and not check:
            if gitignore is True:
                added = add_to_gitignore(project, suggestions)
            elif sys.stdin.isatty() and not json_output:
                echo(f"These outputs are not in .gitignore: {', '.join(suggestions)}")
                if typer.confirm(f"Add them to {project.root / '.gitignore'}?", default=True):
                    added = add_to_gitignore(project, suggestions)

    if json_output:
        print_json({
            "config": str(project.config),
            "check": check,
            "ok": not changed,
            "certs": [
                {
                    "cert": str(r.spec.cert), "key": str(r.spec.key), "names": [n.value for n in r.spec.names],
                    "action": r.action, "reason": r.reason, "not_after": r.not_after,
                    "warnings": [word(w) for w in r.warnings],
                }
                for r in results
            ],
            "expiring_soon": [str(r.spec.cert) for r, _ in expiring],
            "gitignore_missing": [] if added else suggestions,
            "gitignore_added": str(added) if added else None,
        })
    else:
        for r in results:
            for message in r.warnings:
                warn(word(message))
            if not r.changed:
                continue
            rel = project.relative(r.spec.cert)
            names = ", ".join(n.value for n in r.spec.names)
            if check:
                verb = "would create" if r.action == "created" else "would renew"
                echo(f"{verb} {rel} ({names}): {r.reason}")
            else:
                echo(f"{r.action} {rel} ({names}){'' if r.action == 'created' else ': ' + r.reason}; "
                     f"valid until {date(r.not_after)}")
        if not changed:
            echo(f"All {len(results)} certificates declared in {project.config.name} are up to date."
                 if results else f"{project.config} declares no certificates.")
        for r, days_left in expiring:
            warn(f"{project.relative(r.spec.cert)} expires in {days_left} days; "
                 f"`devcert sync --min-days {warn_within}` renews it now")
        if added:
            echo(f"Added {len(suggestions)} line(s) to {added}.")
        elif suggestions:
            warn(f"{', '.join(suggestions)} {'is' if len(suggestions) == 1 else 'are'} not in .gitignore, so a key "
                 f"could be committed; add {'it' if len(suggestions) == 1 else 'them'} to "
                 f"{project.root / '.gitignore'} (or run `devcert sync --gitignore`)")
    if check and changed:
        raise Failed()

