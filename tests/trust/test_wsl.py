"""Under WSL, install / uninstall / status also cover the Windows user's Root store (``--store windows``).

There is no Windows here. The devcert executable runs as under WSL (WSL_DISTRO_NAME set, as WSL
sets it) with stand-in ``certutil.exe`` and ``wslpath`` first on PATH: each records its
arguments, and the stand-in certutil.exe keeps a small store (a JSON file) so that what it is
asked later (-store, -delstore, the listing) answers as Windows' would. The tests check the
exact command lines; whether real Windows accepts them is not tested (the README says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devcert.ca import LocalCA
from devcert.trust import selected_stores
from devcert.trust.wsl import WSLWindowsStore, is_wsl
from tests import sandbox
from tests.helpers import UNIT, devcert_exe, one_error_line, require_sandbox, run_devcert

DISTRO = "Debian"

#: wslpath -w: a Linux path as Windows programs reach it.
WSLPATH = r'''#!{python}
import json, os, sys
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(["wslpath", *sys.argv[1:]]) + "\n")
assert sys.argv[1] == "-w", sys.argv
print("\\\\wsl.localhost\\{distro}" + os.path.abspath(sys.argv[2]).replace("/", "\\"))
'''

#: certutil.exe -user: -addstore -f Root FILE, -store Root [SHA1 [OUTFILE]], -delstore Root SHA1.
CERTUTIL = r'''#!{python}
import hashlib, json, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(["certutil.exe", *args]) + "\n")
state_file = os.environ["STANDIN_STORE"]
store = json.load(open(state_file)) if os.path.exists(state_file) else {{}}
def linux(win):  # the inverse of the stand-in wslpath
    prefix = "\\\\wsl.localhost\\{distro}"
    assert win.startswith(prefix), win
    return win[len(prefix):].replace("\\", "/")
assert args[0] == "-user", args
if args[1] == "-addstore":
    assert args[2:4] == ["-f", "Root"], args
    data = open(linux(args[4]), "rb").read()
    cert = x509.load_pem_x509_certificate(data) if b"BEGIN" in data else x509.load_der_x509_certificate(data)
    der = cert.public_bytes(serialization.Encoding.DER)
    store[hashlib.sha1(der).hexdigest().upper()] = der.hex()
    print("Root \"Trusted Root Certification Authorities\"\nCertificate added to store.\nCertUtil: -addstore command completed successfully.")
elif args[1] == "-store":
    assert args[2] == "Root", args
    if len(args) == 3:
        for n, (sha1, der) in enumerate(store.items()):
            cert = x509.load_der_x509_certificate(bytes.fromhex(der))
            subject = ", ".join(f"{{a.oid._name}}={{a.value}}" for a in reversed(list(cert.subject)))
            subject = subject.replace("commonName", "CN").replace("organizationName", "O").replace("organizationalUnitName", "OU")
            print(f"================ Certificate {{n}} ================\nSubject: {{subject}}\nCert Hash(sha1): {{' '.join(sha1[i:i+2].lower() for i in range(0, 40, 2))}}")
        print("CertUtil: -store command completed successfully.")
    elif args[3] not in store:
        print("CertUtil: -store command FAILED: 0x80090011 (-2146893807 NTE_NOT_FOUND)"); sys.exit(1)
    elif len(args) == 5:
        open(linux(args[4]), "wb").write(bytes.fromhex(store[args[3]]))
else:
    assert args[1] == "-delstore" and args[2] == "Root", args
    if args[3] not in store:
        print("CertUtil: -delstore command FAILED"); sys.exit(1)
    del store[args[3]]
json.dump(store, open(state_file, "w"))
'''


@pytest.fixture
def wsl_env(cli_env, tmp_path):  # type: ignore[no-untyped-def]
    """The environment of a WSL shell: the stand-ins first on PATH, WSL_DISTRO_NAME set."""
    bin_dir = tmp_path / "standin-bin"
    bin_dir.mkdir()
    for name, text in (("wslpath", WSLPATH), ("certutil.exe", CERTUTIL)):
        path = bin_dir / name
        path.write_text(text.format(python=sys.executable, distro=DISTRO))
        path.chmod(0o755)
    env = dict(cli_env, WSL_DISTRO_NAME=DISTRO, STANDIN_LOG=str(tmp_path / "calls.jsonl"),
               STANDIN_STORE=str(tmp_path / "root-store.json"), PATH=f"{bin_dir}{os.pathsep}{cli_env.get('PATH', '')}")
    return env


def calls(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["STANDIN_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return [json.loads(line) for line in lines]


def windows_path(path: Path) -> str:
    return "\\\\wsl.localhost\\" + DISTRO + str(path).replace("/", "\\")


def test_install_status_uninstall_run_these_exact_commands(wsl_env, caroot):
    ca = LocalCA.create(caroot)
    sha1 = hashlib.sha1(ca.cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()

    done = run_devcert("install", "--store", "windows", env=wsl_env)
    assert done.returncode == 0, done.stderr
    assert calls(wsl_env) == [
        ["certutil.exe", "-user", "-store", "Root", sha1],  # not there yet: exit 1
        ["certutil.exe", "-user", "-store", "Root", sha1],
        ["wslpath", "-w", str(caroot / "rootCA.pem")],
        ["certutil.exe", "-user", "-addstore", "-f", "Root", windows_path(caroot / "rootCA.pem")],
    ]
    assert "windows: Windows current user's Root store, from WSL" in done.stdout
    assert f"run: certutil.exe -user -addstore -f Root '{windows_path(caroot / 'rootCA.pem')}'" in done.stdout.replace(
        str(Path(wsl_env["PATH"].split(os.pathsep)[0]) / "certutil.exe"), "certutil.exe")
    stored = json.loads(Path(wsl_env["STANDIN_STORE"]).read_text())
    assert x509.load_der_x509_certificate(bytes.fromhex(stored[sha1])) == ca.cert

    again = run_devcert("install", "--store", "windows", env=wsl_env)
    assert again.returncode == 0 and "already installed" in again.stdout
    calls(wsl_env)

    status = run_devcert("status", "--json", env=dict(wsl_env, DEVCERT_TRUST_STORES="windows"))
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [(s["store"], s["installed"]) for s in report["stores"]] == [("windows", True)]
    assert report["stale"] == []
    assert ["certutil.exe", "-user", "-store", "Root"] in calls(wsl_env)  # the listing, for stale entries

    gone = run_devcert("uninstall", "--store", "windows", env=wsl_env)
    assert gone.returncode == 0, gone.stderr
    assert calls(wsl_env)[-1] == ["certutil.exe", "-user", "-delstore", "Root", sha1]
    assert json.loads(Path(wsl_env["STANDIN_STORE"]).read_text()) == {}
    assert "removed" in gone.stdout


def test_stale_windows_entry_is_listed_and_removed(wsl_env, caroot, tmp_path):
    old = LocalCA.create(tmp_path / "old-caroot")
    done = run_devcert("install", "--store", "windows", env=dict(wsl_env, DEVCERT_CAROOT=str(tmp_path / "old-caroot")))
    assert done.returncode == 0, done.stderr
    LocalCA.create(caroot)
    calls(wsl_env)
    status = run_devcert("status", "--json", env=dict(wsl_env, DEVCERT_TRUST_STORES="windows"))
    [stale] = json.loads(status.stdout)["stale"]
    assert stale["store"] == "windows" and stale["sha256"] == old.fingerprint
    removed = run_devcert("uninstall", "--stale", "--store", "windows", env=wsl_env)
    assert removed.returncode == 0, removed.stderr
    old_sha1 = hashlib.sha1(old.cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    assert calls(wsl_env)[-1] == ["certutil.exe", "-user", "-delstore", "Root", old_sha1]


def test_default_stores_under_wsl_include_windows(wsl_env, caroot, tmp_path):
    """`devcert install` with no --store under WSL: the Linux stores and the Windows side (in the
    trust sandbox, since it also installs into this machine's stores)."""
    require_sandbox()
    LocalCA.create(caroot)
    result = sandbox.run([devcert_exe(), "install", "--json"], env=wsl_env, timeout=600 * UNIT)
    report = json.loads(result.stdout)
    rows = {s["store"]: s for s in report["stores"]}
    assert rows["windows"]["result"] == "installed", result.stderr
    assert rows["system"]["result"] == "installed", result.stderr
    assert any(c[:3] == ["certutil.exe", "-user", "-addstore"] for c in calls(wsl_env))


def test_detection_and_outside_wsl(tmp_path, cli_env):
    assert is_wsl({"WSL_DISTRO_NAME": "Ubuntu"})
    fake = tmp_path / "osrelease"
    fake.write_text("5.15.153.1-microsoft-standard-WSL2\n")
    assert is_wsl({}, str(fake))
    fake.write_text("6.1.0-18-amd64\n")
    assert not is_wsl({}, str(fake))
    if not is_wsl():
        assert "windows" not in [s.name for s in selected_stores(include_unavailable=True, environ={})]
        store = WSLWindowsStore()
        assert not store.available()
        done = run_devcert("install", "--store", "windows", env=cli_env)
        assert done.returncode == 1
        assert "only from WSL" in one_error_line(done.stderr)


def test_interop_off_says_so(wsl_env, caroot, tmp_path):
    LocalCA.create(caroot)
    env = dict(wsl_env, PATH="/usr/bin:/bin")  # no certutil.exe on PATH, and no /mnt/c here
    done = run_devcert("install", "--store", "windows", env=env)
    assert done.returncode == 1
    assert "certutil.exe is not reachable" in one_error_line(done.stderr)
