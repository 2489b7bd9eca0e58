"""The typer application: ``app`` and its ``ca`` sub-group, with every command module loaded.

Importing this module costs typer's start-up (~34 ms, plus pydantic when a command's options
are first converted); ``devcert create`` avoids it (see :mod:`devcert.cli.create`).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from .. import __version__

app = typer.Typer(
    name="devcert",
    help=(
        "Locally trusted development certificates.\n\n"
        "Start with `devcert create localhost 127.0.0.1 ::1`, then `devcert install` once so "
        "browsers, curl, Python, Node and Java trust them."
    ),
    # `devcert` and `devcert ca` alone print their help (see _help_without_command), exit 0.
    invoke_without_command=True,
    # --install-completion / --show-completion: commands, `ca` subcommands, options and snippet
    # targets complete in bash, zsh, fish and PowerShell. Costs nothing on `devcert create`'s
    # fast path, which never loads typer.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help: paragraphs are re-wrapped to the terminal, `[tool.devcert]` is not taken for
    # markup, and --help does not pay for importing rich.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ca_app = typer.Typer(
    help="Create and inspect the local CA (see `devcert ca init --help`).",
    invoke_without_command=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ca_app, name="ca")

#: One module per command, named after it, in the order the commands appear in --help.
COMMAND_MODULES = (
    "create", "caroot", "install", "uninstall", "status", "serve_wss", "snippet", "env", "doctor",
    "sync", "list", "renew", "inspect", "share", "acme", "ca_init", "ca_info", "ca_rotate", "ca_import_mkcert",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"devcert {__version__}")
        raise typer.Exit()


def _help_without_command(ctx: typer.Context) -> None:
    """``devcert`` or ``devcert ca`` with no command: the help is the answer (exit 0)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Locally trusted development certificates."""
    _help_without_command(ctx)


@ca_app.callback()
def _ca(ctx: typer.Context) -> None:
    """Create and inspect the local CA (see `devcert ca init --help`)."""
    _help_without_command(ctx)


def load_commands() -> typer.Typer:
    """Import every command module (each registers its command on ``app`` or ``ca_app``) and return ``app``."""
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        if name == "create":
            module.register(app)  # create's module stays typer-free for its fast path
    return app
