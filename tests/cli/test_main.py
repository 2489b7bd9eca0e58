"""The command line as a user meets it: the real executable in a subprocess, and the same typer
app through typer's CliRunner. Every failure is one ``devcert: error: ...`` line on stderr
with exit code 1 (failed) or 2 (bad usage), and no traceback unless DEVCERT_DEBUG=1.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devcert import LocalCA, __version__
from devcert.ca import CERT_FILE
from devcert.cli.output import Failed
from devcert.errors import DevcertError, InvalidNameError, NameNotPermittedError
from tests.helpers import UNIT, BAD_NAMES, clean_env, one_error_line, run_devcert


def typer_app():  # type: ignore[no-untyped-def]
    """The Typer app with every command module loaded (what `devcert` runs)."""
    from devcert.cli import application

    app = application.load_commands()
    import typer

    assert isinstance(app, typer.Typer)
    return app


# -- the real executable ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "why"), BAD_NAMES, ids=[repr(t)[:30] for t, _ in BAD_NAMES])
def test_bad_name_one_line_exit_2(tmp_path: Path, caroot: Path, cli_env: dict[str, str], text: str, why: str) -> None:
    res = run_devcert("create", "localhost", "--", text, env=cli_env, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    line = one_error_line(res.stderr)
    assert why in line
    assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert not caroot.exists()  # bad names fail before a CA is made


def test_unicode_name_becomes_a_label(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = run_devcert("create", "--json", "bücher.test", env=cli_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["names"] == ["xn--bcher-kva.test"]


def test_unwritable_output_folder(tmp_path: Path, caroot: Path, cli_env: dict[str, str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_devcert("create", "--cert-file", str(blocker / "c.pem"), "--key-file", str(blocker / "k.pem"),
                      "localhost", env=cli_env, cwd=tmp_path)
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert "cannot write" in line and "not a folder" in line
    # The current folder is one nobody may create files in (sysfs refuses even root).
    res = run_devcert("create", "localhost", env=cli_env, cwd="/sys")
    assert res.returncode == 1
    assert "cannot write /sys/localhost" in one_error_line(res.stderr)


@pytest.mark.parametrize("where", ["under-a-file", "sysfs"])
def test_unwritable_caroot(tmp_path: Path, where: str) -> None:
    if where == "under-a-file":
        blocker = tmp_path / "file"
        blocker.write_text("x")
        root = blocker / "ca"
    else:
        root = Path("/sys/devcert-test-ca")
    env = clean_env(DEVCERT_CAROOT=str(root))
    for args in (["create", "localhost"], ["ca", "init"]):
        res = run_devcert(*args, env=env, cwd=tmp_path)
        assert res.returncode == 1, res.stderr
        assert f"cannot create folder {root}" in one_error_line(res.stderr)
    if where == "under-a-file":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no certificate written


def test_debug_shows_the_traceback(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = run_devcert("create", "a..b", env={**cli_env, "DEVCERT_DEBUG": "1"}, cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "InvalidNameError" in res.stderr


def test_unknown_option_and_command(cli_env: dict[str, str]) -> None:
    for args in (["create", "--bogus", "localhost"], ["frobnicate"], ["create", "--days"]):
        res = run_devcert(*args, env=cli_env)
        assert res.returncode == 2, (args, res.stderr)
        one_error_line(res.stderr)


def test_version_and_help(cli_env: dict[str, str]) -> None:
    res = run_devcert("--version", env=cli_env)
    assert res.returncode == 0 and __version__ in res.stdout
    res = subprocess.run([sys.executable, "-m", "devcert", "--version"], env=cli_env, capture_output=True,
                         text=True, timeout=60 * UNIT)
    assert res.returncode == 0 and __version__ in res.stdout
    res = run_devcert("--help", env=cli_env)
    assert res.returncode == 0
    for command in ("create", "caroot", "ca"):
        assert command in res.stdout
    for args in (["create"], ["caroot"], ["ca", "init"], ["ca", "info"]):
        res = run_devcert(*args, "--help", env=cli_env)
        assert res.returncode == 0, res.stderr
        assert "Example" in res.stdout, args
        assert "devcert" in res.stdout


def test_help_names_arguments_and_options(cli_env: dict[str, str]) -> None:
    """Usage reads ``[NAMES]...`` / ``{TARGET}`` (typer's mark of a required argument), options
    ``--days DAYS``: a value's name, never a type label such as ``<int>``."""
    create = run_devcert("create", "--help", env=cli_env).stdout
    assert "Usage: devcert create [OPTIONS] [NAMES]..." in create
    assert "--days DAYS" in create
    snippet = run_devcert("snippet", "--help", env=cli_env).stdout
    assert "Usage: devcert snippet [OPTIONS] [TARGET] [NAMES]..." in snippet
    inspect = run_devcert("inspect", "--help", env=cli_env).stdout
    assert "Usage: devcert inspect [OPTIONS] {TARGET}" in inspect
    for text in (create, snippet, inspect):
        assert not re.search(r"--[\w-]+ <", text), text
    missing = run_devcert("inspect", env=cli_env)
    assert missing.returncode == 2
    assert "Missing argument 'TARGET'" in one_error_line(missing.stderr)


def test_create_with_no_names(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = run_devcert("create", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2
    assert "devcert create localhost" in one_error_line(res.stderr)


def test_names_after_double_dash(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = run_devcert("create", "--", "-bad.test", env=cli_env, cwd=tmp_path)
    assert res.returncode == 2
    assert "not a valid label" in one_error_line(res.stderr)


# -- the same app through typer's CliRunner -----------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_clirunner_create_and_ca_info(runner: CliRunner, tmp_path: Path, caroot: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = typer_app()
    result = runner.invoke(app, ["create", "localhost", "127.0.0.1", "::1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "localhost+2.pem").exists() and (tmp_path / "localhost+2-key.pem").exists()
    ca = LocalCA.load(caroot)

    result = runner.invoke(app, ["create", "--json", "--client", "alice@app.test"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cert"] == str(tmp_path / "alice@app.test-client.pem")
    assert out["ca"] == str(caroot / CERT_FILE)

    result = runner.invoke(app, ["ca", "info", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sha256"] == ca.fingerprint

    result = runner.invoke(app, ["caroot"])
    assert result.exit_code == 0 and result.stdout.strip() == str(caroot)


def test_clirunner_errors(runner: CliRunner, tmp_path: Path, caroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = typer_app()
    result = runner.invoke(app, ["create", "a..b"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidNameError)  # main() turns it into one line, exit 2
    assert result.exception.exit_code == 2

    result = runner.invoke(app, ["create", "example.com"])
    assert isinstance(result.exception, NameNotPermittedError)
    assert result.exception.exit_code == 1

    result = runner.invoke(app, ["ca", "init"])  # the CA exists already (made by the run above)
    assert isinstance(result.exception, Failed)  # main() prints its line, exit 1
    assert result.exception.code == 1 and "already exists" in str(result.exception)

    result = runner.invoke(app, ["create", "--days", "826", "localhost"])
    assert isinstance(result.exception, DevcertError) and "825" in str(result.exception)

    result = runner.invoke(app, ["create", "--days", "many", "localhost"])
    assert result.exit_code == 2
    assert not list(tmp_path.glob("*.pem"))


def test_clirunner_ca_init_force_and_no_constraints(runner: CliRunner, caroot: Path) -> None:
    app = typer_app()
    assert runner.invoke(app, ["ca", "init", "--permit", "corp.example.dev"]).exit_code == 0
    first = LocalCA.load(caroot)
    assert "corp.example.dev" in first.constraints.dns  # type: ignore[union-attr]
    result = runner.invoke(app, ["ca", "init", "--force", "--no-constraints"])
    assert result.exit_code == 0, result.output
    assert first.fingerprint in result.output and "no name constraints" in result.output
    assert LocalCA.load(caroot).constraints is None


def test_fast_parser_and_typer_agree_on_options() -> None:
    """`devcert create` is parsed without typer for speed; both must know the same options."""
    try:
        from devcert.cli.create import OPTIONS
    except ImportError:
        pytest.skip("no fast parser")
    import typer.main

    app = typer_app()
    command = typer.main.get_command(app).commands["create"]  # type: ignore[attr-defined]
    typer_options = {opt for p in command.params for opt in p.opts if opt.startswith("--")}
    typer_options.discard("--help")
    assert set(OPTIONS) == typer_options


def test_every_option_names_its_value(cli_env: dict[str, str]) -> None:
    """Every command's options read ``--days DAYS``, never typer's ``--days <int>``."""
    commands = ["create", "caroot", "install", "uninstall", "status", "serve-wss", "snippet", "env", "doctor",
                "sync", "list", "renew", "inspect", "acme", "share", "ca init", "ca info", "ca rotate",
                "ca import-mkcert"]
    for command in commands:
        res = run_devcert(*command.split(), "--help", env=cli_env)
        assert res.returncode == 0, (command, res.stderr)
        assert not re.search(r"--[\w-]+ <", res.stdout), (command, res.stdout)
