"""Project configuration ([tool.devcert] / devcert.toml) and `devcert sync`, as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from devcert.errors import UsageError
from devcert.project import find_config, load_project
from tests.helpers import one_error_line, run_devcert, serves

PYPROJECT = """\
[project]
name = "demo"

[tool.devcert]
certs = [
  { names = ["localhost", "127.0.0.1", "app.test"], cert = "certs/dev.pem", key = "certs/dev-key.pem" },
  { names = ["alice@app.test"], cert = "certs/client.pem", key = "certs/client-key.pem", client = true },
]
"""


def write_project(root: Path, text: str = PYPROJECT, name: str = "pyproject.toml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return root


def san(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(g.value) for g in ext}


def serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


# -- configuration -------------------------------------------------------------------------


def test_config_found_walking_up_paths_relative_to_it(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    sub = root / "src" / "pkg"
    sub.mkdir(parents=True)
    assert find_config(sub) == root / "pyproject.toml"
    project = load_project(sub)
    assert project.certs[0].cert == (root / "certs" / "dev.pem").resolve()
    assert project.certs[1].client is True
    assert [n.value for n in project.certs[0].names] == ["localhost", "127.0.0.1", "app.test"]


def test_devcert_toml_and_pyproject_without_table(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_project(root, '[project]\nname = "x"\n')  # no [tool.devcert]: keep looking
    write_project(root, 'certs = [{ names = ["localhost"], cert = "a.pem", key = "a-key.pem" }]\n', "devcert.toml")
    assert find_config(root) == root / "devcert.toml"
    assert load_project(root).certs[0].key == (root / "a-key.pem").resolve()


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[tool.devcert\ncerts = []", "not valid TOML"),
        ('[tool.devcert]\ncerts = []\nmin_days = 3', "unknown key 'min_days'"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", nmes = 1 }]', "certs[0]: unknown key 'nmes'"),
        ('[tool.devcert]\ncerts = [{ names = "localhost", cert = "a.pem", key = "b.pem" }]', "certs[0]: names must be"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", client = "yes" }]', "client must be a boolean"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", days = true }]', "days must be an integer"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", days = 9999 }]', "at most 825"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", key_type = "dsa" }]', "unknown key type"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem" }]', "'key' is missing"),
        ('[tool.devcert]\ncerts = [{ names = ["bad name"], cert = "a.pem", key = "b.pem" }]', "certs[0]: names:"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "../a.pem", key = "b.pem" }]', "outside the project folder"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "/etc/a.pem", key = "b.pem" }]', "outside the project folder"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "a.pem" }]', "same file"),
        ('[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem" },'
         ' { names = ["app.test"], cert = "c.pem", key = "./b.pem" }]', "certs[1]: key = 'b.pem' is also the output of certs[0] key"),
        ('[tool.devcert]\ncerts = "x"', "certs must be a list"),
        ('[tool]\ndevcert = 3', "tool.devcert must be a table"),
    ],
)
def test_config_errors_name_file_entry_and_fix(tmp_path: Path, text: str, expect: str) -> None:
    root = write_project(tmp_path / "proj", text)
    with pytest.raises(UsageError) as info:
        load_project(root)
    message = str(info.value)
    assert str(root / "pyproject.toml") in message
    assert expect in message


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj", '[tool.devcert]\ncerts = [{ names = ["localhost"], cert = "a.pem", key = "b.pem", colour = 1 }]')
    result = run_devcert("sync", env=cli_env, cwd=root)
    assert result.returncode == 2
    assert result.stderr.startswith("devcert: error: ")
    assert "certs[0]: unknown key 'colour'" in result.stderr and "Traceback" not in result.stderr
    result = run_devcert("sync", env=cli_env, cwd=tmp_path)  # no config anywhere up to /tmp...
    assert result.returncode == 2 and "[tool.devcert]" in result.stderr


def test_cli_config_missing_or_folder_or_truncated_is_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # No configuration anywhere: one line (not a multi-line TOML sample) that still shows the fix.
    result = run_devcert("sync", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("devcert: error: no devcert configuration")
    assert "[tool.devcert]" in result.stderr and "certs = [" in result.stderr
    # --config given a folder says so instead of "no such configuration file".
    result = run_devcert("sync", "--config", str(tmp_path), env=cli_env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is a folder" in result.stderr and "no such" not in result.stderr
    # A file cut short has no line to point at: the message does not promise one.
    (tmp_path / "devcert.toml").write_text("certs = [")
    result = run_devcert("sync", "--config", str(tmp_path / "devcert.toml"), env=cli_env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "at that line" not in result.stderr and "ends before" in result.stderr


# -- sync ----------------------------------------------------------------------------------


def test_sync_from_empty_then_idempotent_then_check(tmp_path: Path, cli_env: dict[str, str], caroot: Path) -> None:
    root = write_project(tmp_path / "proj")
    check = run_devcert("sync", "--check", env=cli_env, cwd=root)
    assert check.returncode == 1, check.stderr
    assert "would create certs/dev.pem" in check.stdout
    assert not (root / "certs").exists(), "--check must change nothing"

    first = run_devcert("sync", env=cli_env, cwd=root)
    assert first.returncode == 0, first.stderr
    changes = [line for line in first.stdout.splitlines() if line.startswith(("created", "renewed"))]
    assert len(changes) == 2
    assert san(root / "certs/dev.pem") == {"localhost", "127.0.0.1", "app.test"}
    assert (root / "certs/dev-key.pem").stat().st_mode & 0o777 == 0o600
    client = x509.load_pem_x509_certificate((root / "certs/client.pem").read_bytes())
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku

    # A real client that trusts only this machine's CA accepts the synced certificate.
    serves(root / "certs/dev.pem", root / "certs/dev-key.pem", caroot / "rootCA.pem", "app.test")

    before = {p: p.read_bytes() for p in (root / "certs").iterdir()}
    second = run_devcert("sync", env=cli_env, cwd=root)
    assert second.returncode == 0, second.stderr
    assert not [line for line in second.stdout.splitlines() if line.startswith(("created", "renewed"))]
    assert "up to date" in second.stdout
    assert {p: p.read_bytes() for p in (root / "certs").iterdir()} == before

    ok = run_devcert("sync", "--check", env=cli_env, cwd=root)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The synced certificates are in the inventory.
    listed = json.loads(run_devcert("list", "--json", env=cli_env).stdout)
    assert {Path(c["cert"]) for c in listed["certs"]} == {(root / "certs/dev.pem").resolve(), (root / "certs/client.pem").resolve()}


def test_sync_renews_certificate_expiring_soon(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj")
    (root / "certs").mkdir()
    made = run_devcert("create", "--days", "10", "--cert-file", "certs/dev.pem", "--key-file", "certs/dev-key.pem",
                       "localhost", "127.0.0.1", "app.test", env=cli_env, cwd=root)
    assert made.returncode == 0, made.stderr
    old = serial(root / "certs/dev.pem")

    check = run_devcert("sync", "--check", env=cli_env, cwd=root)
    assert check.returncode == 1
    assert "would renew certs/dev.pem" in check.stdout and "expires in" in check.stdout
    assert serial(root / "certs/dev.pem") == old

    result = run_devcert("sync", env=cli_env, cwd=root)
    assert result.returncode == 0, result.stderr
    assert "renewed certs/dev.pem" in result.stdout and "expires in 9 days" in result.stdout
    cert = x509.load_pem_x509_certificate((root / "certs/dev.pem").read_bytes())
    assert cert.serial_number != old
    assert cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=800)

    # --min-days raises the bar: 819 days left is less than 900.
    assert run_devcert("sync", "--check", "--min-days", "900", env=cli_env, cwd=root).returncode == 1
    assert run_devcert("sync", "--check", env=cli_env, cwd=root).returncode == 0


def test_sync_short_declared_validity_is_stable(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj", 'certs = [{ names = ["localhost"], cert = "c.pem", key = "k.pem", days = 10 }]\n', "devcert.toml")
    assert run_devcert("sync", env=cli_env, cwd=root).returncode == 0
    again = run_devcert("sync", "--check", env=cli_env, cwd=root)
    assert again.returncode == 0, again.stdout  # renewed at half-life, not on every run


def test_sync_changed_names_and_options(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj")
    assert run_devcert("sync", env=cli_env, cwd=root).returncode == 0
    client_serial = serial(root / "certs/client.pem")
    dev_serial = serial(root / "certs/dev.pem")

    (root / "pyproject.toml").write_text(PYPROJECT.replace('"app.test"]', '"app.test", "api.app.test"]'))
    check = run_devcert("sync", "--check", env=cli_env, cwd=root)
    assert check.returncode == 1 and "would renew certs/dev.pem" in check.stdout and "names changed" in check.stdout
    result = run_devcert("sync", env=cli_env, cwd=root)
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith(("created", "renewed"))]
    assert len(lines) == 1 and "certs/dev.pem" in lines[0], result.stdout
    assert san(root / "certs/dev.pem") == {"localhost", "127.0.0.1", "app.test", "api.app.test"}
    assert serial(root / "certs/client.pem") == client_serial
    assert serial(root / "certs/dev.pem") != dev_serial

    # Dropping client = true and switching to RSA are changes too.
    text = (root / "pyproject.toml").read_text().replace(", client = true", ', key_type = "rsa"')
    (root / "pyproject.toml").write_text(text)
    result = run_devcert("sync", env=cli_env, cwd=root)
    assert result.returncode == 0
    assert "renewed certs/client.pem" in result.stdout and "client option changed" in result.stdout
    cert = x509.load_pem_x509_certificate((root / "certs/client.pem").read_bytes())
    assert cert.public_key().key_size == 2048
    assert run_devcert("sync", "--check", env=cli_env, cwd=root).returncode == 0


def test_sync_reissues_certificate_from_another_ca(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj")
    assert run_devcert("sync", env=cli_env, cwd=root).returncode == 0
    other = dict(cli_env, DEVCERT_CAROOT=str(tmp_path / "other-ca"))
    result = run_devcert("sync", env=other, cwd=root)
    assert result.returncode == 0
    assert result.stdout.count("signed by another CA") == 2


def test_sync_gitignore_offer(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    result = run_devcert("sync", env=cli_env, cwd=root)  # stdin is not a terminal: suggest only
    assert result.returncode == 0
    assert "not in .gitignore" in result.stderr and "/certs/dev-key.pem" in result.stderr
    assert not (root / ".gitignore").exists(), "sync must never edit .gitignore silently"

    (root / ".gitignore").write_text("*.pyc")  # no trailing newline: kept intact
    result = run_devcert("sync", "--gitignore", env=cli_env, cwd=root)
    # Each output and the temporary files an interrupted write of it leaves (they hold keys).
    assert result.returncode == 0 and "Added 8 line(s)" in result.stdout
    text = (root / ".gitignore").read_text()
    assert text.startswith("*.pyc\n") and "/certs/client-key.pem\n" in text
    assert "/certs/.client-key.pem.*.tmp\n" in text
    probes = ["certs/dev-key.pem", "certs/client.pem", "certs/.dev-key.pem.0123456789ab.tmp"]
    ignored = subprocess.run(["git", "check-ignore", *probes], cwd=root, capture_output=True, text=True)
    assert ignored.returncode == 0 and len(ignored.stdout.split()) == 3
    again = run_devcert("sync", env=cli_env, cwd=root)
    assert "gitignore" not in again.stderr

    # A broader pattern already ignoring the outputs counts as ignored.
    (root / ".gitignore").write_text("certs/\n")
    assert "gitignore" not in run_devcert("sync", env=cli_env, cwd=root).stderr


def test_sync_json(tmp_path: Path, cli_env: dict[str, str]) -> None:
    root = write_project(tmp_path / "proj")
    out = run_devcert("sync", "--json", "--no-gitignore", env=cli_env, cwd=root)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [c["action"] for c in data["certs"]] == ["created", "created"]
    created = {c["cert"]: c["not_after"] for c in data["certs"]}
    data = json.loads(run_devcert("sync", "--json", "--check", env=cli_env, cwd=root).stdout)
    assert data["ok"] is True and [c["action"] for c in data["certs"]] == ["kept", "kept"]
    # A kept certificate reports its expiry like a created one (it used to be null).
    for c in data["certs"]:
        expiry = x509.load_pem_x509_certificate(Path(c["cert"]).read_bytes()).not_valid_after_utc
        assert c["not_after"] == created[c["cert"]] == expiry.isoformat()
    data = json.loads(run_devcert("sync", "--json", "--no-gitignore", env=cli_env, cwd=root).stdout)
    assert {c["cert"]: c["not_after"] for c in data["certs"]} == created


def test_sync_name_outside_constraints_fails_before_writing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # A valid entry first, then one the default CA may not sign: once, `sync --check` said only
    # "would create" and `sync` wrote the first entry, then failed without naming the config.
    text = (
        'certs = [\n'
        '  { names = ["localhost"], cert = "ok.pem", key = "ok-key.pem" },\n'
        '  { names = ["app.test", "example.com"], cert = "real.pem", key = "real-key.pem" },\n'
        ']\n'
    )
    root = write_project(tmp_path / "proj", text, "devcert.toml")
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    for args in (("sync", "--check"), ("sync", "--no-gitignore"), ("sync", "--json", "--no-gitignore")):
        result = run_devcert(*args, env=cli_env, cwd=root)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stdout == "", args  # no "would create ..." and no JSON for a run that failed
        line = one_error_line(result.stderr)
        assert str(root / "devcert.toml") in line and "certs[1]" in line and "'example.com'" in line, line
        assert "devcert ca init --force --permit example.com" in line and "remove 'example.com'" in line, line
        assert sorted(p.name for p in root.iterdir()) == ["devcert.toml"], "no entry may be written"

    # The fix the message gives works.
    assert run_devcert("ca", "init", "--force", "--permit", "example.com", env=cli_env).returncode == 0
    result = run_devcert("sync", "--no-gitignore", env=cli_env, cwd=root)
    assert result.returncode == 0, result.stderr
    assert san(root / "real.pem") == {"app.test", "example.com"}


def test_expiring_soon_lists_kept_certificates_within_the_window(tmp_path: Path, caroot: Path) -> None:
    """sync's expiry warning, as a core function: kept certificates with fewer days left than
    the window (min_days + 30 by default, or warn_days); fresh ones are never listed."""
    from devcert import LocalCA
    from devcert.errors import OptionError
    from devcert.project import expiring_soon, sync, warning_window

    root = write_project(tmp_path / "proj", '[tool.devcert]\ncerts = [\n'
                         '  { names = ["a.test"], cert = "a.pem", key = "a-key.pem", days = 50 },\n'
                         '  { names = ["b.test"], cert = "b.pem", key = "b-key.pem" },\n]\n')
    project = load_project(root)
    ca = LocalCA.load_or_create()
    first = sync(project, ca)
    assert [r.action for r in first] == ["created", "created"] and expiring_soon(first) == []
    again = sync(project, ca)
    assert [r.action for r in again] == ["kept", "kept"]
    soon = expiring_soon(again)  # a.pem has 49 or 50 days left, inside 30 + 30
    assert [(r.spec.cert.name, left in (49, 50)) for r, left in soon] == [("a.pem", True)]
    assert expiring_soon(again, warn_days=10) == [] and warning_window(30, None) == 60
    assert [r.spec.cert.name for r, _ in expiring_soon(again, warn_days=900)] == ["a.pem", "b.pem"]
    with pytest.raises(OptionError):
        expiring_soon(again, warn_days=-1)
