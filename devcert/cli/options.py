"""Options and arguments that several commands share, declared once (typer ``Annotated`` types)."""

from __future__ import annotations

from typing import Annotated

import typer

JSON_HELP = "Print one JSON object on stdout and nothing else there."

#: ``--json`` as every command that has it spells it.
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
