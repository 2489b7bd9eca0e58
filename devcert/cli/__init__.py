"""The ``devcert`` command line: the only place that prints or exits.

One module per group of commands registers them on :data:`app` (``core``: create, caroot, ca;
``trust``: install, uninstall, status; ``serve``: serve-wss; ``clients``: snippet, env,
doctor; ``project``: sync, list, renew, inspect, ca rotate / import-mkcert). Each imports
what its commands need inside the command, so ``devcert create`` never pays for websockets.
Errors from the core (:class:`devcert.errors.DevcertError`) become one line on stderr,
``devcert: error: ...``, and exit code 1 (operation failed) or 2 (bad usage); a traceback is
shown only with ``DEVCERT_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import typer

from ..errors import DevcertError

try:  # typer >= 0.25 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

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
    context_settings={"help_option_names": ["-h", "--help"]},
)
ca_app = typer.Typer(
    help="Create and inspect the local CA (see `devcert ca init --help`).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ca_app, name="ca")

#: The modules that register commands, in the order their commands appear in --help.
COMMAND_MODULES = ("core", "trust", "serve", "clients", "project")


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


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one line for a person (stdout, or stderr with ``err=True``)."""
    typer.echo(message, err=err)


def warn(message: str) -> None:
    typer.echo(f"devcert: warning: {message}", err=True)


def print_json(obj: Any) -> None:
    import json

    typer.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"devcert: error: {message}", err=True)
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``devcert`` script and ``python -m devcert``."""
    debug = os.environ.get("DEVCERT_DEBUG", "") not in ("", "0")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    try:
        code = app(args=argv, prog_name="devcert", standalone_mode=False)
    except DevcertError as err:
        if debug:
            raise
        typer.echo(f"devcert: error: {err}", err=True)
        code = err.exit_code
    except click_exceptions.UsageError as err:
        if debug:
            raise
        hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        typer.echo(f"devcert: error: {err.format_message()}{hint}", err=True)
        code = 2
    except (click_exceptions.Abort, KeyboardInterrupt):
        typer.echo("devcert: interrupted", err=True)
        code = 130
    except click_exceptions.ClickException as err:
        typer.echo(f"devcert: error: {err.format_message()}", err=True)
        code = err.exit_code
    except Exception as err:  # a bug: say so in one line, details on request
        if debug:
            raise
        typer.echo(
            f"devcert: error: unexpected {type(err).__name__}: {err} (run with DEVCERT_DEBUG=1 for details)",
            err=True,
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
