"""`devcert ca rotate` (inside the private trust sandbox) and `devcert ca import-mkcert`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from devcert.ca import LocalCA
from tests import sandbox
from tests.helpers import ROOT, UNIT, clean_env, devcert_exe, require_sandbox, require_tool, run_devcert

# Runs inside the sandbox: sets up a CA trusted by the system store only, issues certificates
# (one by `create`, two by `sync`), rotates, and reports what real clients see before and after.
ROTATE_SCRIPT = r'''
import json, os, shutil, ssl, subprocess, sys
from pathlib import Path

from tests.helpers import UNIT, handshake as tls_handshake  # the test puts the project on PYTHONPATH

exe, work = sys.argv[1], Path(sys.argv[2])
out = {}

def devcert(*args, check=True):
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300 * UNIT, cwd=work)
    if check and r.returncode != 0:
        print(json.dumps({"failed": args, "stdout": r.stdout, "stderr": r.stderr}))
        sys.exit(3)
    return r

def handshake(cert, key, host="localhost"):
    """Serve cert/key on 127.0.0.1; a client using the system trust store connects: what it read, or the error."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    try:  # the system bundle; SSL_CERT_FILE is cleared by the test
        return tls_handshake(ssl.create_default_context(), sctx, host)[0].decode()
    except ssl.SSLError as err:
        return f"refused: {err}"

def stores():
    data = json.loads(devcert("status", "--json").stdout)
    return {s["store"]: s["installed"] for s in data["stores"] if s["available"]}

devcert("ca", "init", "--key-type", "rsa", "--permit", "corp.example.dev")
devcert("install", "--store", "system")
devcert("create", "--cert-file", "web.pem", "--key-file", "web-key.pem", "localhost", "api.corp.example.dev")
(work / "pyproject.toml").write_text(
    '[tool.devcert]\ncerts = [\n'
    ' { names = ["localhost", "127.0.0.1"], cert = "certs/dev.pem", key = "certs/dev-key.pem" },\n'
    ' { names = ["alice@app.test"], cert = "certs/alice.pem", key = "certs/alice-key.pem", client = true },\n]\n')
devcert("sync", "--no-gitignore")
shutil.copy(work / "web.pem", work / "old-web.pem")
shutil.copy(work / "web-key.pem", work / "old-web-key.pem")
out["old_ca"] = json.loads(devcert("ca", "info", "--json").stdout)
out["before_stores"] = stores()
out["before"] = handshake(work / "web.pem", work / "web-key.pem")

r = devcert("ca", "rotate", "--yes", "--json", check=False)
out["rotate_rc"], out["rotate_stderr"] = r.returncode, r.stderr
out["rotate"] = json.loads(r.stdout) if r.stdout.strip() else None
out["new_ca"] = json.loads(devcert("ca", "info", "--json").stdout)
out["after_stores"] = stores()
out["after_new_leaf"] = handshake(work / "web.pem", work / "web-key.pem")
out["after_new_leaf_corp"] = handshake(work / "web.pem", work / "web-key.pem", "api.corp.example.dev")
out["after_old_leaf"] = handshake(work / "old-web.pem", work / "old-web-key.pem")
out["after_synced"] = handshake(work / "certs/dev.pem", work / "certs/dev-key.pem")
out["sync_check_rc"] = devcert("sync", "--check", check=False).returncode
out["no_yes_rc"] = subprocess.run([exe, "ca", "rotate"], capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=work,
                                  timeout=60 * UNIT).returncode
print(json.dumps(out))
'''


@pytest.mark.sandbox
@pytest.mark.slow
def test_rotate_in_trust_sandbox(tmp_path: Path) -> None:
    require_sandbox()
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "rotate.py"
    script.write_text(ROTATE_SCRIPT)
    caroot = tmp_path / "caroot"
    env = clean_env(DEVCERT_CAROOT=str(caroot), PYTHONPATH=str(ROOT))
    result = sandbox.run([sys.executable, str(script), devcert_exe(), str(work)], env=env, timeout=600 * UNIT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    old, new = out["old_ca"], out["new_ca"]
    assert out["before"] == "hello"
    assert out["before_stores"]["system"] is True
    assert out["rotate_rc"] == 0, out["rotate_stderr"]
    assert new["sha256"] != old["sha256"]
    # Same key type, same widened constraints.
    assert new["key_type"] == old["key_type"] == "RSA 3072"
    assert "corp.example.dev" in new["constraints"]["dns"]
    # Installed where the old one was trusted (system), not where it was not.
    rotate = out["rotate"]
    assert rotate["installed"] == ["system"] and rotate["uninstalled"] == ["system"]
    assert out["after_stores"]["system"] is True
    assert all(v is False for k, v in out["after_stores"].items() if k != "system"), out["after_stores"]
    # Every recorded certificate was reissued by the new CA; a real client trusts them and refuses the old leaf.
    assert len(rotate["reissued"]) == 3 and not rotate["errors"]
    assert out["after_new_leaf"] == out["after_new_leaf_corp"] == out["after_synced"] == "hello"
    assert out["after_old_leaf"].startswith("refused"), out["after_old_leaf"]
    assert out["sync_check_rc"] == 0
    assert out["no_yes_rc"] == 2  # no terminal, no --yes: refuse
    # The old CA is backed up.
    backup = caroot / "old" / old["sha256"]
    assert LocalCA.load(backup).fingerprint == old["sha256"]
    assert (backup / "rootCA-key.pem").stat().st_mode & 0o777 == 0o600


def test_rotate_with_fake_stores(caroot: Path, tmp_path: Path) -> None:
    """The order of operations and the choice of stores, without touching any real store."""
    from devcert import inventory
    from devcert.lifecycle import rotate

    class FakeStore:
        def __init__(self, name: str, trusted: set[str], log: list[str]):
            self.name, self.trusted, self.log = name, trusted, log

        def available(self) -> bool:
            return True

        def is_installed(self, ca: LocalCA) -> bool:
            return ca.fingerprint in self.trusted

        def install(self, ca: LocalCA, runner=None) -> None:  # type: ignore[no-untyped-def]
            self.log.append(f"install {self.name} {ca.short_id}")
            self.trusted.add(ca.fingerprint)

        def uninstall(self, ca: LocalCA, runner=None) -> None:  # type: ignore[no-untyped-def]
            self.log.append(f"uninstall {self.name} {ca.short_id}")
            self.trusted.discard(ca.fingerprint)

    # An old strict CA with an IP and a DNS widening: rotating moves it to the default (dns)
    # profile, which keeps the DNS widening and does not constrain IPs at all.
    old = LocalCA.create(caroot, permit=["10.99.0.0/16", "corp.example.dev"], profile="strict")
    leaf = old.issue("localhost")
    leaf.write(tmp_path / "a.pem", tmp_path / "a-key.pem")
    inventory.record(old, leaf, tmp_path / "a.pem", tmp_path / "a-key.pem")
    gone = old.issue("gone.test")
    inventory.record(old, gone, tmp_path / "gone.pem", tmp_path / "gone-key.pem")
    log: list[str] = []
    a, b = FakeStore("a", {old.fingerprint}, log), FakeStore("b", set(), log)
    report = rotate(caroot, stores=[a, b])
    new = report.new
    assert log == [f"install a {new.short_id}", f"uninstall a {old.short_id}"]
    assert report.reissued == [str(tmp_path / "a.pem")] and report.skipped[0].path.endswith("gone.pem")
    assert report.skipped[0].reason == "missing" and str(report.skipped[0]).endswith("gone.pem (file missing)")
    assert new.constraints is not None and new.constraints.profile == "dns"
    assert "corp.example.dev" in new.constraints.dns and not new.constraints.constrains_ips
    from devcert.issue import leaf_problem
    from devcert.names import parse_names

    assert leaf_problem(new, tmp_path / "a.pem", tmp_path / "a-key.pem", parse_names(["localhost"])) is None


# -- import-mkcert ---------------------------------------------------------------------------


@pytest.fixture
def mkcert_caroot(tmp_path: Path) -> Path:
    """A real mkcert CA made by mkcert itself (no -install: no trust store is touched)."""
    mkcert = require_tool("mkcert")
    folder = tmp_path / "mkcert-ca"
    env = clean_env(CAROOT=str(folder), TRUST_STORES="none")
    made = subprocess.run([mkcert, "-cert-file", str(tmp_path / "mk.pem"), "-key-file", str(tmp_path / "mk-key.pem"),
                           "localhost"], env=env, capture_output=True, text=True, timeout=120 * UNIT, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (folder / "rootCA-key.pem").exists()
    return folder


def test_import_mkcert(mkcert_caroot: Path, cli_env: dict[str, str], caroot: Path, tmp_path: Path) -> None:
    env = dict(cli_env, CAROOT=str(mkcert_caroot))  # found through $CAROOT, as `mkcert -CAROOT` would say
    result = run_devcert("ca", "import-mkcert", env=env)
    assert result.returncode == 0, result.stderr
    assert "no name constraints" in result.stderr
    ca = LocalCA.load(caroot)
    assert ca.constraints is None
    assert ca.cert_pem == LocalCA.load(mkcert_caroot).cert_pem
    assert (caroot / "rootCA-key.pem").stat().st_mode & 0o777 == 0o600

    # devcert now issues under mkcert's CA: a certificate mkcert made and one devcert makes share a root.
    made = run_devcert("create", "--cert-file", "d.pem", "--key-file", "d-key.pem", "localhost", env=cli_env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    for name in ("mk.pem", "d.pem"):
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(mkcert_caroot / "rootCA.pem"), str(tmp_path / name)],
                                capture_output=True, text=True, timeout=60 * UNIT)
        assert verify.returncode == 0, verify.stdout + verify.stderr

    again = run_devcert("ca", "import-mkcert", "--caroot", str(mkcert_caroot), env=cli_env)
    assert again.returncode == 0 and "already" in again.stdout


def test_import_mkcert_refuses_to_replace_without_force(mkcert_caroot: Path, cli_env: dict[str, str], caroot: Path) -> None:
    own = LocalCA.create(caroot)
    refused = run_devcert("ca", "import-mkcert", "--caroot", str(mkcert_caroot), env=cli_env)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert LocalCA.load(caroot).fingerprint == own.fingerprint
    forced = run_devcert("ca", "import-mkcert", "--caroot", str(mkcert_caroot), "--force", "--json", env=cli_env)
    assert forced.returncode == 0, forced.stderr
    data = json.loads(forced.stdout)
    assert data["replaced_sha256"] == own.fingerprint and data["constraints"] is None
    assert LocalCA.load(Path(data["backup"])).fingerprint == own.fingerprint


def test_import_mkcert_missing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run_devcert("ca", "import-mkcert", "--caroot", str(tmp_path / "nothing"), env=cli_env)
    assert result.returncode == 2 and "no mkcert CA" in result.stderr
