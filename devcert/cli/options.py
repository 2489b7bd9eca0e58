"""Options and arguments that several commands share, declared once (typer ``Annotated`` types)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def examples(*commands: str, intro: tuple[str, ...] = ()) -> str:
    """A command's help epilog: the ``intro`` lines, then "Examples:" ("Example:" for one) and
    each command line indented, printed as written (click's \\b marker: no rewrapping)."""
    head = "Example:" if len(commands) == 1 else "Examples:"
    return "\b\n" + "\n".join([*intro, head, *(f"  {line}" for line in commands)])


def whole_number(text: str) -> int:
    """typer's parser for a count (days, a port): a plain message instead of pydantic's."""
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number") from None


JSON_HELP = "Print one JSON object on stdout and nothing else there."

#: ``--json`` as every command that has it spells it.
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

#: install / uninstall: which stores, and a dry run.
StoreOption = Annotated[Optional[list[str]], typer.Option(
    "--store", help="Only this store: system, nss, java or windows (the Windows side, under WSL) (repeatable; default: every store found, or "
                    "$DEVCERT_TRUST_STORES).", show_default=False, metavar="STORE")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print every command and file write without doing any.")]
#: install / uninstall: their JSON is each store's result, and their progress lines go to stderr.
StoreJsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object on stdout (each store's result); progress goes to stderr.")]
#: install / uninstall / status: another Linux root file system instead of this machine's stores.
RootOption = Annotated[Optional[Path], typer.Option(
    "--root", help="Instead of this machine's stores, the system store of the Linux root file system at DIR "
                   "(an image build stage, a chroot): its update command runs in `chroot DIR` when devcert "
                   "is root, else it is printed for the image's next RUN line.",
    show_default=False, metavar="DIR", file_okay=False)]
