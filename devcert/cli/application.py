"""The typer application: ``app`` and its ``ca`` sub-group, with every command module loaded.

Importing this module costs typer's start-up (~25 ms, plus pydantic when a command's options
are first converted); ``devcert create`` avoids it through :mod:`devcert.cli.fast`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="devcert",
    help=(
        "Locally trusted development certificates.\n\n"
        "Start with `devcert create localhost 127.0.0.1 ::1`, then `devcert install` once so "
        "browsers, curl, Python, Node and Java trust them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: paragraphs are re-wrapped to the terminal, `[tool.devcert]` is not taken for
    # markup, and --help does not pay for importing rich.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ca_app = typer.Typer(
    help="Create and inspect the local CA (see `devcert ca init --help`).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ca_app, name="ca")

#: The modules that register commands, in the order their commands appear in --help.
COMMAND_MODULES = ("core", "trust", "serve_wss", "clients", "project")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"devcert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Locally trusted development certificates."""


def _keep_lines(epilog: str | None) -> str | None:
    """Examples stay one per line: click re-wraps epilog paragraphs unless marked with \\b."""
    if not epilog or epilog.startswith("\b"):
        return epilog
    lines = [line.rstrip() for line in epilog.splitlines() if line.strip()]
    return "\b\n" + "\n".join(lines)


def load_commands() -> typer.Typer:
    """Import every command module (each registers its commands on ``app``) and return ``app``."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    for typer_app in (app, ca_app):
        for info in typer_app.registered_commands:
            info.epilog = _keep_lines(info.epilog)
    return app
