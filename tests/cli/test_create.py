"""`devcert create` is parsed without typer (devcert.cli.fast) for start-up speed; these tests
keep that parser and the typer command in step, so neither can drift from the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devcert.cli.create import OPTIONS, parse_create
from tests.helpers import run_devcert


def _typer_create_command():
    import typer.main

    from devcert.cli.application import load_commands

    group = typer.main.get_command(load_commands())
    return group.commands["create"]  # type: ignore[attr-defined]


def test_fast_parser_knows_exactly_the_typer_options():
    command = _typer_create_command()
    typer_options = {opt for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("--")}
    typer_options -= {"--help"}
    assert typer_options == set(OPTIONS)
    flags = {opt for p in command.params if getattr(p, "is_flag", False) for opt in p.opts}
    assert flags - {"--help"} == {o for o, (_, conv) in OPTIONS.items() if conv is None}
    keywords = {p.name for p in command.params}
    assert {kw for kw, _ in OPTIONS.values()} | {"names"} == keywords


@pytest.mark.parametrize(
    "argv",
    [
        ["localhost", "--days", "30", "--client"],
        ["--days=30", "localhost", "127.0.0.1"],
        ["--key-type", "rsa", "--json", "--", "localhost"],
        ["--cert-file", "c.pem", "--key-file", "k.pem", "app.test"],
    ],
)
def test_fast_parser_agrees_with_typer(argv):
    command = _typer_create_command()
    ctx = command.make_context("create", list(argv))
    fast = parse_create(list(argv))
    assert fast is not None
    for keyword, value in fast.items():
        typer_value = ctx.params[keyword]
        if keyword == "names":
            typer_value = list(typer_value or [])
        assert value == typer_value or (isinstance(value, Path) and Path(typer_value) == value), keyword


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--bogus"], ["--days", "x", "a"], ["--days"], ["--client=1"]])
def test_anything_unusual_goes_to_typer(argv):
    assert parse_create(argv) is None


def test_both_paths_give_the_same_errors(cli_env, tmp_path):
    # A bad name goes through the fast parser; an unknown option through typer: same one-line style.
    fast = run_devcert("create", "a..b", env=cli_env, cwd=tmp_path)
    slow = run_devcert("create", "--bogus", "x.test", env=cli_env, cwd=tmp_path)
    assert fast.returncode == 2 and fast.stderr.startswith("devcert: error: ") and fast.stderr.count("\n") == 1
    assert slow.returncode == 2 and slow.stderr.startswith("devcert: error: ") and slow.stderr.count("\n") == 1
    ok = run_devcert("create", "--json", "localhost", env=cli_env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["names"] == ["localhost"]
