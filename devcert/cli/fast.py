"""A parser for ``devcert create`` that needs no typer, so the command starts fast.

typer builds a pydantic adapter for every option at start-up; with typer's own import that
is ~100 ms, more than the whole certificate costs. This parser understands exactly the
options of ``create`` (kept equal to the typer command's by a test) and returns ``None`` for
anything else (``--help``, an unknown option, a value that is not a number), which hands the
command line to typer: help, errors and prompts look the same either way.
"""

from __future__ import annotations

from typing import Any

#: option -> (keyword of run_create, converter); converter None means a flag. File options
#: stay strings so a trailing "/" (a folder, refused) is not lost to Path().
OPTIONS: dict[str, tuple[str, Any]] = {
    "--cert-file": ("cert_file", str),
    "--key-file": ("key_file", str),
    "--p12-file": ("p12_file", str),
    "--p12-password": ("p12_password", str),
    "--p12-password-file": ("p12_password_file", str),
    "--client": ("client", None),
    "--key-type": ("key_type", str),
    "--days": ("days", int),
    "--csr": ("csr", str),
    "--self-signed": ("self_signed", None),
    "--json": ("json_output", None),
}


def parse_create(args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments for :func:`devcert.cli.create.run_create`, or None to use typer."""
    values: dict[str, Any] = {"names": []}
    i = 0
    only_names = False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_names or not arg.startswith("-") or arg == "-":
            values["names"].append(arg)
            continue
        if arg == "--":
            only_names = True
            continue
        option, eq, inline = arg.partition("=")
        spec = OPTIONS.get(option)
        if spec is None:
            return None
        keyword, convert = spec
        if convert is None:
            if eq:
                return None
            values[keyword] = True
            continue
        if eq:
            raw = inline
        elif i < len(args):
            raw = args[i]
            i += 1
        else:
            return None
        try:
            values[keyword] = convert(raw)
        except ValueError:
            return None
    return values
