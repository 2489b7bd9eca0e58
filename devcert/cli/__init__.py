"""The ``devcert`` command line: the only place that prints or exits.

The typer application lives in :mod:`devcert.cli.application`; one module per group of commands
registers them on it (``core``: create, caroot, ca; ``trust``: install, uninstall, status;
``serve``: serve-wss; ``clients``: snippet, env, doctor; ``project``: sync, list, renew,
inspect, ca rotate / import-mkcert). Each imports what its commands need inside the command.

This package itself does not import typer: ``devcert create``, the command people run most,
is parsed by :mod:`devcert.cli.fast` and starts in about the time Python needs to import
``cryptography``. Anything the fast parser does not recognise (``--help``, a typo, another
command) goes to typer.

Errors from the core (:class:`devcert.errors.DevcertError`) become one line on stderr,
``devcert: error: ...``, and exit code 1 (operation failed) or 2 (bad usage); a traceback is
shown only with ``DEVCERT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from ..errors import DevcertError
from .messages import describe


def __getattr__(name: str) -> Any:
    # `from devcert.cli import app` keeps working without importing typer up front.
    if name in ("app", "ca_app", "COMMAND_MODULES", "load_commands"):
        from . import application as app_module

        return getattr(app_module, name)
    raise AttributeError(name)


from .output import Failed, echo, print_json, warn  # noqa: F401  (re-exported for the command modules)


class CommandExit(SystemExit):
    """Raised by :func:`fail` after it printed its line; carries the exit code."""


def fail(message: str, code: int = 1) -> NoReturn:
    echo(f"devcert: error: {message}", err=True)
    raise CommandExit(code)


def _debug() -> bool:
    return os.environ.get("DEVCERT_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``devcert`` script and ``python -m devcert``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:2] != ["ca", "rotate"] and not any(a in ("-h", "--help", "--version") for a in args[:3]):
            _recover()
        if args and args[0] == "create":
            from .fast import parse_create

            parsed = parse_create(args[1:])
            if parsed is not None:
                from .create import run_create

                run_create(**parsed)
                _fast_exit()
        code = _run_typer(args)
    except DevcertError as err:
        if _debug():
            raise
        echo(f"devcert: error: {describe(err)}", err=True)
        code = err.exit_code
    except Failed as failed:
        for line in failed.lines:
            echo(f"devcert: error: {line}", err=True)
        code = failed.code
    except KeyboardInterrupt:
        echo("devcert: interrupted", err=True)
        code = 130
    except SystemExit:
        raise
    except Exception as err:  # a bug: say so in one line, details on request
        if _debug():
            raise
        echo(f"devcert: error: unexpected {type(err).__name__}: {err} (run with DEVCERT_DEBUG=1 for details)", err=True)
        code = 1
    sys.exit(code)


def _recover() -> None:
    """Finish what an interrupted devcert run left in CAROOT, before the command runs.

    Cheap when there is nothing to do (a few stat calls). A rotation is carried on without
    sudo prompts (a command like `create` must not ask for a password); a store step that
    needs root stays recorded, and `devcert ca rotate` finishes it.
    """
    from ..ca import NEXT_DIR, PENDING_DIR, ROTATION_FILE, caroot
    from ..files import pending_journals

    folder = caroot()
    try:
        if not ((folder / ROTATION_FILE).exists() or (folder / NEXT_DIR).exists()
                or pending_journals(folder / PENDING_DIR)):
            return
    except OSError:
        return  # a CAROOT we cannot read: the command itself says why, in one line
    from ..lifecycle import recover  # only when something is left to finish: it imports the trust stores
    from ..trust import Runner

    try:
        report = recover(folder, runner=Runner(use_sudo=False),
                         progress=lambda line: echo(f"devcert: finishing an interrupted `ca rotate`: {line}", err=True))
    except DevcertError as err:
        warn(f"could not finish an interrupted change in {folder}: {err}")
        return
    if report is None:
        return
    for line in report.errors + report.warnings:
        warn(line)
    if report.pending:
        warn("an interrupted `devcert ca rotate` still has store changes to make ("
             + "; ".join(report.pending) + "): run `devcert ca rotate` to finish it")
    else:
        echo(f"devcert: finished an interrupted `ca rotate`: the CA is now {report.new.common_name} "
             f"(SHA-256 {report.new.fingerprint[:16]}...)", err=True)


def _fast_exit() -> NoReturn:
    """Exit 0 without the interpreter's teardown (~12 ms of a ~90 ms `devcert create`).

    Safe here because everything `create` writes is already fsynced and closed; only the
    standard streams may hold buffered text, and they are flushed first.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(0)  # let the normal exit report a closed pipe as Python always does
    os._exit(0)


def _name_metavars(command: Any) -> None:
    """``--days DAYS``, ``[NAMES]...`` and ``TARGET`` in help, as click writes them, instead of
    typer's ``<int>``, ``NAMES <list[str]>`` and ``{TARGET}``."""
    for sub in getattr(command, "commands", {}).values():
        _name_metavars(sub)
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument":
            name = param.metavar = param.metavar or param.name.upper()  # also "Missing argument 'TARGET'"
            more = "..." if param.nargs != 1 else ""
            shown, usage = name + more, (name if param.required else f"[{name}]") + more
            param.display_type_rich = lambda ctx: ""
            param._rich_display_name = lambda shown=shown: shown
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]
        elif param.metavar is None and not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = param.name.upper()


def _plain(message: str) -> str:
    """typer >= 0.25 converts values with pydantic; say what it means in plain words."""
    import re

    message = message.replace("Input should be a valid integer, unable to parse string as an integer", "not a whole number")
    return re.sub(r"Input should be a valid (\w+)[^.']*", r"not a valid \1", message)


def _run_typer(args: list[str]) -> int:
    from .application import load_commands

    import typer

    try:  # typer >= 0.25 vendors click
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click_exceptions  # type: ignore[no-redef]

    import typer.main

    command = typer.main.get_command(load_commands())
    _name_metavars(command)
    try:
        code = command.main(args=args, prog_name="devcert", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as err:  # `devcert`, `devcert ca`: the help is the answer
        echo(err.format_message())
        return 0
    except click_exceptions.UsageError as err:
        if _debug():
            raise
        hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        echo(f"devcert: error: {_plain(err.format_message())}{hint}", err=True)
        return 2
    except typer.Abort:
        echo("devcert: interrupted", err=True)
        return 130
    except click_exceptions.ClickException as err:
        echo(f"devcert: error: {err.format_message()}", err=True)
        return err.exit_code
    return code if isinstance(code, int) else 0
