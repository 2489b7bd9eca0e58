"""The ``devcert`` command line: the only place that prints or exits.

One module per command, named after it (``create.py``, ``sync.py``, ``ca_rotate.py``, ...),
each a thin function that calls the core and formats its result; they register on the typer
application in :mod:`devcert.cli.application`, which lists them in ``COMMAND_MODULES``.
Shared pieces: :mod:`.output` (echo, warn, print_json, :class:`~.output.Failed`),
:mod:`.options` (options several commands take), :mod:`.shared` (loading the CA),
:mod:`.store_report` (install and uninstall), :mod:`.messages` (error messages).

This package itself does not import typer: ``devcert create``, the command people run most,
is parsed by :func:`devcert.cli.create.parse_create` and starts in about the time Python needs
to import ``cryptography``. Anything that parser does not recognise (``--help``, a typo,
another command) goes to typer.

The one error path: commands raise, :func:`main` turns the exception into ``devcert: error:
...`` lines on stderr and an exit code: 1 when an operation failed, 2 for bad usage, 130 when
interrupted. A traceback is shown only with ``DEVCERT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from ..ca import NEXT_DIR, PENDING_DIR, ROTATION_FILE, caroot
from ..errors import DevcertError
from ..files import pending_journals
from .messages import describe, word
from .output import Failed, echo, warn


def _debug() -> bool:
    return os.environ.get("DEVCERT_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``devcert`` script and ``python -m devcert``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:2] != ["ca", "rotate"] and not any(a in ("-h", "--help", "--version") for a in args[:3]):
            _recover()
        if args and args[0] == "create":
            from .create import parse_create, run_create  # the fast path: no typer (see create.py)

            parsed = parse_create(args[1:])
            if parsed is not None:
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
    folder = caroot()
    try:
        if not ((folder / ROTATION_FILE).exists() or (folder / NEXT_DIR).exists()
                or pending_journals(folder / PENDING_DIR)):
            return
    except OSError:
        return  # a CAROOT we cannot read: the command itself says why, in one line
    # Deferred: only when something is left to finish; the rotation machinery is not needed by
    # the commands that run on a clean CAROOT (create's start-up is benchmarked).
    from ..lifecycle import recover
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
        warn(word(line))
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


def _run_typer(args: list[str]) -> int:
    """Every command but the fast ``create``: typer parses, the command runs, errors become one line."""
    import typer  # deferred: `devcert create`'s fast path never pays for typer (~34 ms)

    from .application import load_commands

    command = typer.main.get_command(load_commands())
    try:
        code = command.main(args=args, prog_name="devcert", standalone_mode=False)
    except typer.Abort:
        echo("devcert: interrupted", err=True)
        return 130
    except typer.TyperException as err:  # bad usage (exit code 2) or another click-level error
        if _debug():
            raise
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if err.exit_code == 2 and ctx is not None else ""
        echo(f"devcert: error: {err.format_message()}{hint}", err=True)
        return err.exit_code
    return code if isinstance(code, int) else 0
