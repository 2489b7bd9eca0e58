"""Shell completion (typer's ``--install-completion`` / ``--show-completion``), driven the way a
shell drives it: the ``devcert`` executable run with ``_DEVCERT_COMPLETE`` set."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import UNIT, devcert_exe, run_devcert


def complete(words: str, cli_env: dict[str, str]) -> list[str]:
    """What bash would offer after ``words`` (the word being completed is the last one)."""
    parts = words.split(" ")
    env = {**cli_env, "_DEVCERT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    res = subprocess.run([devcert_exe()], env=env, capture_output=True, text=True, timeout=60 * UNIT)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_commands_complete(cli_env: dict[str, str]) -> None:
    assert complete("devcert sn", cli_env) == ["snippet"]
    assert {"create", "install", "serve-wss", "doctor", "ca"} <= set(complete("devcert ", cli_env))


def test_ca_subcommands_complete(cli_env: dict[str, str]) -> None:
    assert complete("devcert ca ", cli_env) == ["init", "info", "rotate", "import-mkcert"]
    assert complete("devcert ca im", cli_env) == ["import-mkcert"]


def test_snippet_targets_complete(cli_env: dict[str, str]) -> None:
    from devcert.snippets import TARGETS

    assert complete("devcert snippet ", cli_env) == list(TARGETS)
    assert complete("devcert snippet ng", cli_env) == ["nginx"]


def test_show_completion_prints_a_script_for_the_shell(cli_env: dict[str, str]) -> None:
    res = run_devcert("--show-completion", "bash", env=cli_env)
    assert res.returncode == 0, res.stderr
    assert "_DEVCERT_COMPLETE=complete_bash" in res.stdout and "complete " in res.stdout


def test_create_never_imports_typer(tmp_path, cli_env: dict[str, str]) -> None:
    """The fast path of the most-run command: completion and the typer app cost it nothing."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "devcert", "create", "localhost"], env=cli_env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60 * UNIT)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "localhost.pem").exists()
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "devcert.cli.create" in imported
    assert not {name for name in imported if name.split(".")[0] in ("typer", "click", "pydantic")}
