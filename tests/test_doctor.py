"""`devcert doctor`: right verdicts in a healthy setup and in broken ones.

Anything that installs runs inside the private trust-store sandbox (tests/sandbox.py); the
other cases only read, so they run here with a private CAROOT and a clean environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import certifi
import pytest

from devcert import doctor
from devcert.cli.messages import word
from tests import sandbox
from tests.helpers import (NODE22_BIN, NODE_BIN, UNIT, clean_env, devcert_exe, file_mode, require_sandbox, require_tool,
                           run_devcert)


def by_name(report: dict) -> dict[str, dict]:
    """Checks by name; store and client checks as "store:NAME" / "client:NAME" (java is both)."""
    return {(f"{c['group']}:{c['name']}" if c["group"] in ("store", "client") else c["name"]): c
            for c in report["checks"]}


def doctor_json(env: dict[str, str], *args: str) -> tuple[int, dict]:
    done = run_devcert("doctor", "--json", *args, env=env, timeout=300 * UNIT)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


# -- healthy and broken, with real installs in the sandbox ----------------------------------

SCRIPT = r"""
set -u
out=$1
devcert ca init >/dev/null
devcert install >/dev/null 2>&1 || { echo "install failed" >&2; devcert install >&2; exit 9; }
eval "$(devcert env)"
devcert doctor --json > "$out/healthy.json"; echo $? > "$out/healthy.rc"
SSL_CERT_FILE="$CERTIFI" devcert doctor --json > "$out/elsewhere.json"; echo $? > "$out/elsewhere.rc"
devcert uninstall >/dev/null 2>&1
devcert doctor --json > "$out/uninstalled.json"; echo $? > "$out/uninstalled.rc"
"""


@pytest.fixture(scope="module")
def sandbox_results(tmp_path_factory) -> Path:
    require_sandbox()
    out = tmp_path_factory.mktemp("doctor-sandbox")
    script = out / "run.sh"
    script.write_text(SCRIPT)
    bindir = str(Path(devcert_exe()).parent)
    env = clean_env(DEVCERT_CAROOT=str(out / "caroot"), CERTIFI=certifi.where(),
                    PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    done = sandbox.run(["bash", str(script), str(out)], env=env, timeout=600 * UNIT)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _load(out: Path, name: str) -> tuple[int, dict]:
    return int((out / f"{name}.rc").read_text()), json.loads((out / f"{name}.json").read_text())


def _failed(out: Path, name: str) -> tuple[dict, dict]:
    """A run in which doctor found a problem (exit status 1, ok false): its checks by name, its report."""
    rc, report = _load(out, name)
    assert rc == 1 and report["ok"] is False
    return by_name(report), report


@pytest.mark.slow
@pytest.mark.sandbox
def test_healthy_setup_is_all_ok(sandbox_results):
    rc, report = _load(sandbox_results, "healthy")
    assert rc == 0 and report["ok"] is True
    statuses = {k: c["status"] for k, c in by_name(report).items()}
    assert all(s in ("ok", "not present") for s in statuses.values()), statuses
    # The clients this machine has really shook hands and trusted the CA.
    for client in ("python ssl", "requests", "httpx", "curl", "node", "java"):
        assert statuses[f"client:{client}"] in ("ok", "not present"), (client, statuses[f"client:{client}"])
    for client in ("python ssl", "requests", "httpx"):
        assert statuses[f"client:{client}"] == "ok"
    assert any(c["group"] == "store" and c["status"] == "ok" for c in report["checks"])


@pytest.mark.slow
@pytest.mark.sandbox
def test_ssl_cert_file_pointing_elsewhere_is_a_problem(sandbox_results):
    checks, report = _failed(sandbox_results, "elsewhere")
    assert checks["SSL_CERT_FILE"]["status"] == "problem"
    assert "lacks the CA" in checks["SSL_CERT_FILE"]["detail"] and "devcert env" in checks["SSL_CERT_FILE"]["fix"]
    # httpx reads SSL_CERT_FILE alone and fails; requests (REQUESTS_CA_BUNDLE) and Java do
    # not read it. (OpenSSL's own default also searches the hashed /etc/ssl/certs folder,
    # where the install put the CA, so plain Python ssl may still trust it.)
    assert checks["client:httpx"]["status"] == "problem"
    assert "CERTIFICATE_VERIFY_FAILED" in checks["client:httpx"]["detail"]
    assert checks["client:requests"]["status"] == "ok"
    assert checks["store:system"]["status"] == "ok"


@pytest.mark.slow
@pytest.mark.sandbox
def test_ca_not_installed_is_a_problem_with_the_fix(sandbox_results):
    checks, report = _failed(sandbox_results, "uninstalled")
    stores = [c for c in report["checks"] if c["group"] == "store" and c["status"] != "not present"]
    assert stores and all(c["status"] == "problem" and c["fix"] == "devcert install" for c in stores)
    if checks["client:java"]["status"] != "not present":
        assert checks["client:java"]["status"] == "problem"  # Java reads only its keystore
        assert "PKIX path building failed" in checks["client:java"]["detail"], checks["client:java"]  # no path to a trusted CA
    assert checks["client:requests"]["status"] == "ok"  # still trusts through the devcert env bundle


# -- broken setups that only need reading --------------------------------------------------

def test_no_ca_is_a_problem(cli_env):
    rc, report = doctor_json(cli_env)
    assert rc == 1
    assert report["checks"][0]["status"] == "problem" and "devcert ca init" in report["checks"][0]["fix"]


def test_world_readable_key_is_a_problem(cli_env, caroot):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    rc, report = doctor_json(cli_env, "--no-clients")
    assert by_name(report)["CA key"]["status"] == "ok"
    (caroot / "rootCA-key.pem").chmod(0o644)
    rc, report = doctor_json(cli_env, "--no-clients")
    key = by_name(report)["CA key"]
    assert rc == 1 and key["status"] == "problem"
    assert "0644" in key["detail"] and key["fix"].startswith("chmod 600 ")
    assert "CAROOT" not in by_name(report)  # one problem, one row: the key row says it with its fix


def _short_ca(root: Path, days: int) -> None:
    """A CA valid ``days`` more days, written as rootCA.pem / rootCA-key.pem into ``root``."""
    now = dt.datetime.now(dt.timezone.utc)
    _write_ca(root, f"short-lived test CA {days}d", now - dt.timedelta(days=1), now + dt.timedelta(days=days))


def _write_ca(root: Path, common_name: str, not_before: dt.datetime, not_after: dt.datetime,
              key: object = None) -> None:
    """A self-signed CA (P-256 unless ``key`` is given) as rootCA.pem / rootCA-key.pem in ``root``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    root.mkdir(parents=True, mode=0o700)
    (root / "rootCA.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = root / "rootCA-key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


@pytest.mark.parametrize(("days", "status"), [(10, "problem"), (60, "warn"), (400, "ok")])
def test_ca_near_expiry(tmp_path, days, status):
    root = tmp_path / f"ca{days}"
    _short_ca(root, days)
    checks, ca = doctor.check_ca(root)
    validity = {c.name: c for c in checks}["CA validity"]
    assert ca is not None and validity.status == status
    if status != "ok":
        assert "expires in" in validity.detail and validity.fix


def test_near_expiry_through_the_cli(tmp_path):
    root = tmp_path / "short"
    _short_ca(root, 5)
    rc, report = doctor_json(clean_env(DEVCERT_CAROOT=str(root)), "--no-clients")
    assert rc == 1 and by_name(report)["CA validity"]["status"] == "problem"


def test_env_checks(tmp_path, caroot):
    from devcert.ca import LocalCA
    from devcert.env import ensure_bundle

    ca = LocalCA.load_or_create()
    bundle = ensure_bundle(ca).path
    environ = {
        "SSL_CERT_FILE": str(tmp_path / "missing.pem"),
        "REQUESTS_CA_BUNDLE": certifi.where(),
        "CURL_CA_BUNDLE": str(bundle),
        "NODE_EXTRA_CA_CERTS": str(ca.cert_path),
        "PIP_CERT": str(tmp_path),
    }
    checks = {c.name: c for c in doctor.check_env(ca, environ)}
    assert checks["SSL_CERT_FILE"].status == "problem" and "does not exist" in checks["SSL_CERT_FILE"].detail
    assert checks["REQUESTS_CA_BUNDLE"].status == "problem" and "lacks the CA" in checks["REQUESTS_CA_BUNDLE"].detail
    assert checks["CURL_CA_BUNDLE"].status == "ok"
    assert checks["NODE_EXTRA_CA_CERTS"].status == "ok"
    assert checks["PIP_CERT"].status == "problem"
    assert "AWS_CA_BUNDLE" not in checks  # unset variables are not reported
    assert doctor.check_env(ca, {}) == []


@pytest.mark.slow
def test_clients_verdicts_by_real_handshake(caroot, tmp_path):
    """Without any trust, every present client says problem; with the bundle, Python ones say ok."""
    from devcert.ca import LocalCA
    from devcert.env import ensure_bundle

    ca = LocalCA.load_or_create()
    bare = clean_env()
    results = {c.name: c for c in doctor.check_clients(ca, bare, only=("python ssl", "requests", "httpx", "curl"))}
    assert results["python ssl"].status == "problem" and "CERTIFICATE_VERIFY_FAILED" in results["python ssl"].detail
    assert results["requests"].status == "problem" and "devcert env" in word(results["requests"].fix)
    bundle = str(ensure_bundle(ca).path)
    trusting = clean_env(SSL_CERT_FILE=bundle, REQUESTS_CA_BUNDLE=bundle, CURL_CA_BUNDLE=bundle)
    results = {c.name: c for c in doctor.check_clients(ca, trusting, only=("python ssl", "requests", "httpx", "curl"))}
    assert results["python ssl"].status == "ok"
    assert results["requests"].status == "ok"
    assert results["httpx"].status == "ok"
    assert results["curl"].status in ("ok", "not present")


def test_missing_clients_are_not_present_not_failures(caroot, tmp_path):
    from devcert.ca import LocalCA

    ca = LocalCA.load_or_create()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = clean_env(PATH=str(empty))
    results = {c.name: c for c in doctor.check_clients(ca, env, only=("curl", "node", "java"))}
    assert {name: c.status for name, c in results.items()} == {"curl": "not present", "node": "not present",
                                                               "java": "not present"}


def test_table_output_and_exit_code(cli_env):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    done = run_devcert("doctor", "--no-clients", env={**cli_env, "SSL_CERT_FILE": "/nonexistent/bundle.pem"})
    assert done.returncode == 1
    assert "PROBLEM" in done.stdout and "fix: " in done.stdout and "SSL_CERT_FILE" in done.stdout
    assert "problem" in done.stdout.splitlines()[-1]


def test_python_api_returns_data(caroot):
    from devcert.ca import LocalCA

    LocalCA.load_or_create()
    report = doctor.run_doctor(environ=clean_env(), clients=False)
    data = report.to_dict()
    assert set(data) == {"ok", "checks"}
    assert all(set(c) == {"group", "name", "status", "detail", "fix"} for c in data["checks"])


def test_shared_variable_row_names_the_file_first(cli_env):
    # Variables naming the same file share one row; the verdict is about that file, so it comes
    # first and the variables follow, instead of "A, B=/file ..." which read as if only B were set.
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    env = {**cli_env, "SSL_CERT_FILE": "/nonexistent/bundle.pem", "REQUESTS_CA_BUNDLE": "/nonexistent/bundle.pem"}
    done = run_devcert("doctor", "--no-clients", env=env)
    assert done.returncode == 1
    row = next(line for line in done.stdout.splitlines() if "2 variables" in line)
    assert "/nonexistent/bundle.pem does not exist" in row and "(SSL_CERT_FILE, REQUESTS_CA_BUNDLE)" in row
    assert "=/nonexistent" not in row
    assert done.stderr == ""  # --no-clients is quick: no progress line


@pytest.mark.slow
def test_client_handshakes_announce_themselves_on_stderr(cli_env):
    # The handshakes take seconds: one progress line on stderr, and --json stdout stays one object.
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    done = run_devcert("doctor", "--json", env=cli_env, timeout=300 * UNIT)
    assert done.returncode in (0, 1)
    assert isinstance(json.loads(done.stdout), dict)
    assert done.stderr.count("\n") == 1 and "TLS handshakes" in done.stderr


def test_caroot_that_is_a_file_is_named_not_taken_for_no_ca(tmp_path):
    # DEVCERT_CAROOT pointing at a file used to read as "no CA yet: `devcert install` creates one",
    # and install then failed with "cannot create folder ...: File exists".
    bogus = tmp_path / "not-a-folder"
    bogus.write_text("")
    env = clean_env(DEVCERT_CAROOT=str(bogus))
    done = run_devcert("doctor", "--no-clients", env=env)
    assert done.returncode == 1 and f"CAROOT {bogus} is a file" in done.stdout
    for args in (("status",), ("status", "--json"), ("install", "--dry-run"), ("uninstall", "--dry-run")):
        done = run_devcert(*args, env=env)
        assert done.returncode == 1 and done.stdout == "", args
        assert done.stderr == (f"devcert: error: CAROOT {bogus} is a file, not a folder; move it aside or point "
                               f"DEVCERT_CAROOT at a folder\n"), args


# -- unsafe trust files, CAROOT and CA ------------------------------------------------------

#: A hang must fail the test, not block the suite: doctor without clients takes about a second.
QUICK = 60 * UNIT


def _bad_trust_file(tmp_path: Path, kind: str) -> tuple[str, str]:
    """(path, words the doctor row must say) for a trust file that must not be read whole."""
    if kind == "device":
        return "/dev/zero", "is a device"
    if kind == "fifo":
        path = tmp_path / "bundle.fifo"
        os.mkfifo(path)  # nothing ever writes: opening it for reading blocks forever
        return str(path), "is a FIFO"
    if kind == "huge":
        path = tmp_path / "huge.pem"
        with open(path, "wb") as handle:
            handle.truncate(20 * 1024 * 1024)  # sparse: 20 MiB of zeros, no disk used
        return str(path), "too large"
    return str(tmp_path / "missing.pem"), "does not exist"


@pytest.mark.parametrize("kind", ["device", "fifo", "huge", "missing"])
def test_unreadable_trust_file_is_a_problem_not_a_hang(cli_env, tmp_path, kind):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    path, why = _bad_trust_file(tmp_path, kind)
    env = {**cli_env, "SSL_CERT_FILE": path, "NODE_EXTRA_CA_CERTS": path}
    done = run_devcert("doctor", "--json", "--no-clients", env=env, timeout=QUICK)
    assert done.returncode == 1, done.stderr
    checks = by_name(json.loads(done.stdout))
    for name in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"):
        row = checks[name]
        assert row["status"] == "problem"
        assert row["detail"].startswith(f"{name}={path} ") and why in row["detail"], row
        assert f"unset {name}" in row["fix"]
    # The table says the same, once for both variables (same file, same verdict).
    done = run_devcert("doctor", "--no-clients", env=env, timeout=QUICK)
    assert done.returncode == 1
    row = next(line for line in done.stdout.splitlines() if "2 variables" in line)
    assert path in row and why in row and "(SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)" in row


@pytest.mark.slow
def test_fifo_and_device_never_reach_the_clients(cli_env, tmp_path):
    # The real clients (python, curl, node, java) would block on the FIFO until their timeout
    # (a minute each) or read /dev/zero forever: doctor leaves such variables out and says so.
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    fifo, _ = _bad_trust_file(tmp_path, "fifo")
    env = {**cli_env, "SSL_CERT_FILE": fifo, "REQUESTS_CA_BUNDLE": fifo, "CURL_CA_BUNDLE": "/dev/zero",
           "NODE_EXTRA_CA_CERTS": "/dev/zero"}
    try:
        done = run_devcert("doctor", "--json", env=env, timeout=50)  # below doctor's own 60 s client timeout: not scaled
    except subprocess.TimeoutExpired:
        pytest.fail("doctor hung on a FIFO or device in the clients' environment")
    assert done.returncode == 1
    checks = by_name(json.loads(done.stdout))
    left_out = checks["client:environment"]
    assert left_out["status"] == "warn"
    for text in ("SSL_CERT_FILE (a FIFO)", "REQUESTS_CA_BUNDLE (a FIFO)", "CURL_CA_BUNDLE (a device)",
                 "NODE_EXTRA_CA_CERTS (a device)", "left out"):
        assert text in left_out["detail"]
    for client in ("python ssl", "requests", "curl", "node"):
        assert "no answer within" not in checks[f"client:{client}"]["detail"], checks[f"client:{client}"]


def test_cert_dir_with_a_fifo_is_a_problem_and_kept_from_clients(caroot, tmp_path):
    from devcert.ca import LocalCA

    ca = LocalCA.load_or_create()
    bad, good = tmp_path / "bad-certs", tmp_path / "good-certs"
    bad.mkdir()
    good.mkdir()
    os.mkfifo(bad / "0123abcd.0")  # a subject-hash name: OpenSSL would open it and block
    os.mkfifo(good / "README")  # a name OpenSSL never looks up
    value = os.pathsep.join([str(good), str(bad)])
    checks = [c for c in doctor.check_env(ca, {"SSL_CERT_DIR": value}) if c.name == "SSL_CERT_DIR"]
    assert [c.status for c in checks] == ["problem"]
    assert str(bad) in checks[0].detail and "0123abcd.0 (a FIFO)" in checks[0].detail
    env, left_out = doctor.client_environ({"SSL_CERT_DIR": value, "PATH": "/bin"})
    assert env == {"SSL_CERT_DIR": str(good), "PATH": "/bin"}
    assert len(left_out) == 1 and str(bad) in left_out[0]


def test_caroot_writable_by_others_is_a_problem(cli_env, caroot):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    caroot.chmod(0o777)
    done = run_devcert("doctor", "--json", "--no-clients", env=cli_env, timeout=QUICK)
    assert done.returncode == 1, done.stderr
    checks = by_name(json.loads(done.stdout))
    row = checks["CAROOT"]
    assert row["status"] == "problem" and str(caroot) in row["detail"] and "0777" in row["detail"]
    assert f"chmod 700 {caroot}" in row["fix"]
    assert "CA folder" not in checks  # not again as a mere warning


def test_ca_key_writable_by_others_is_a_problem(cli_env, caroot):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    key = caroot / "rootCA-key.pem"
    key.chmod(0o666)
    done = run_devcert("doctor", "--json", "--no-clients", env=cli_env, timeout=QUICK)
    assert done.returncode == 1, done.stderr
    checks = by_name(json.loads(done.stdout))
    assert checks["CAROOT"]["status"] == "problem" and str(key) in checks["CAROOT"]["detail"]
    assert "0666" in checks["CAROOT"]["detail"] and "chmod go-w" in checks["CAROOT"]["fix"]
    # Like every command, doctor does not use a CA someone else could have swapped in.
    assert "CA certificate" not in checks and "CA key" not in checks


def test_ca_file_that_is_a_fifo_is_a_problem_not_a_hang(cli_env, caroot):
    assert run_devcert("ca", "init", env=cli_env).returncode == 0
    cert = caroot / "rootCA.pem"
    cert.unlink()
    os.mkfifo(cert, 0o644)
    done = run_devcert("doctor", "--json", "--no-clients", env=cli_env, timeout=QUICK)
    assert done.returncode == 1, done.stderr
    row = by_name(json.loads(done.stdout))["CA certificate"]
    assert row["status"] == "problem" and "FIFO" in row["detail"] and str(cert) in row["detail"]


def _weak_ca_rows(root: Path) -> list[dict]:
    done = run_devcert("doctor", "--json", "--no-clients", env=clean_env(DEVCERT_CAROOT=str(root)), timeout=QUICK)
    assert done.returncode == 1, done.stderr
    return [c for c in json.loads(done.stdout)["checks"] if c["group"] == "ca" and c["status"] == "problem"]


def test_rsa_1024_ca_is_a_problem(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = dt.datetime.now(dt.timezone.utc)
    _write_ca(tmp_path / "weak", "RSA-1024 test CA", now - dt.timedelta(days=1), now + dt.timedelta(days=400),
              key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    rows = _weak_ca_rows(tmp_path / "weak")
    assert any("1024" in c["detail"] and "2048" in c["detail"] and "devcert ca init --force" in c["fix"]
               for c in rows), rows


def test_expired_and_not_yet_valid_cas_are_problems(tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    _write_ca(tmp_path / "old", "expired test CA", now - dt.timedelta(days=400), now - dt.timedelta(days=1))
    rows = _weak_ca_rows(tmp_path / "old")
    assert any("expired" in c["detail"] for c in rows), rows
    _write_ca(tmp_path / "future", "future test CA", now + dt.timedelta(days=2), now + dt.timedelta(days=400))
    rows = _weak_ca_rows(tmp_path / "future")
    assert any("not valid" in c["detail"] and "clock" in c["detail"] for c in rows), rows


def test_ca_strength_checks_the_key_even_of_an_expired_ca(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = dt.datetime.now(dt.timezone.utc)
    _write_ca(tmp_path / "both", "expired RSA-1024 test CA", now - dt.timedelta(days=400),
              now - dt.timedelta(days=1), key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    checks, ca = doctor.check_ca(tmp_path / "both")
    rows = {c.name: c for c in checks}
    assert ca is not None and rows["CA validity"].status == "problem"
    assert rows["CA strength"].status == "problem" and "1024" in rows["CA strength"].detail


# -- Bun, Deno, Go rows; the constraint-support check; Node's version ----------------------------



def _path_with(*folders: Path) -> str:
    return os.pathsep.join([*(str(f) for f in folders), os.environ.get("PATH", "")])


def _need(tool: str, folder: Path) -> None:
    """Skip (fail under CI) unless ``tool`` is in ``folder`` (where scripts/test installs it)."""
    import shutil

    if shutil.which(tool, path=str(folder)) is None:
        require_tool(f"{folder}/{tool}")


def _ca(root: Path, *args: str):
    from devcert.ca import LocalCA

    done = run_devcert("ca", "init", *args, env=clean_env(DEVCERT_CAROOT=str(root)))
    assert done.returncode == 0, done.stderr
    return LocalCA.load(root)


def test_constraint_support_names_bun_and_deno_under_a_strict_ca(tmp_path):
    _need("bun", NODE_BIN)
    _need("deno", NODE_BIN)
    env = clean_env(PATH=_path_with(NODE_BIN))
    strict = _ca(tmp_path / "strict", "--profile", "strict")
    rows = {c.name: c for c in doctor.check_constraint_support(strict, env)}
    assert set(rows) == {"constraints: bun", "constraints: deno"}, rows
    bun, deno = rows["constraints: bun"], rows["constraints: deno"]
    version = doctor.bun_version(str(NODE_BIN / "bun"), env)
    assert bun.status == "problem" and f"Bun {version}" in bun.detail and "BoringSSL" in bun.detail
    assert "IP address" in bun.detail and "UNSUPPORTED_CONSTRAINT_TYPE" in bun.detail
    assert deno.status == "problem" and f"Deno {doctor.deno_version(str(NODE_BIN / 'deno'), env)}" in deno.detail
    assert "email" in deno.detail and "URI" in deno.detail and "NameConstraintViolation" in deno.detail
    for row in (bun, deno):
        assert word(row.fix) == ("devcert ca rotate (makes a CA with the default DNS-only profile and keeps it "
                           "trusted where this one is)")
    # Neither client on PATH: nothing to warn about.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    assert doctor.check_constraint_support(strict, clean_env(PATH=str(empty))) == []
    # The default profile constrains DNS names only: both evaluate that.
    assert doctor.check_constraint_support(_ca(tmp_path / "dns"), env) == []


def test_constraint_rows_come_with_the_report_even_without_clients(tmp_path, monkeypatch):
    _need("bun", NODE_BIN)
    root = tmp_path / "strict"
    _ca(root, "--profile", "strict")
    report = doctor.run_doctor(root, environ=clean_env(PATH=_path_with(NODE_BIN)), clients=False)
    names = [c.name for c in report.checks if c.status == "problem"]
    assert "constraints: bun" in names and not report.ok


@pytest.mark.slow
def test_bun_deno_and_go_rows_by_real_handshake(tmp_path, monkeypatch):
    """Each runtime really shakes hands: refused without trust, with the fix that makes it
    trust; trusted with `devcert env`'s exports; each row names the runtime's version."""
    from devcert.env import ensure_bundle

    _need("bun", NODE_BIN)
    _need("deno", NODE_BIN)
    require_tool("go", "doctor's Go row")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where the Go client is built
    ca = _ca(tmp_path / "ca")
    only = ("bun", "deno", "go")
    bare = clean_env(PATH=_path_with(NODE_BIN), XDG_CACHE_HOME=str(tmp_path / "cache"))
    rows = {c.name: c for c in doctor.check_clients(ca, bare, only=only)}
    assert {n: c.status for n, c in rows.items()} == dict.fromkeys(only, "problem"), rows
    assert "NODE_EXTRA_CA_CERTS" in word(rows["bun"].fix) and "DENO_CERT" in word(rows["deno"].fix)
    assert "unknown authority" in rows["go"].detail and "SSL_CERT_FILE" in word(rows["go"].fix)
    bundle = str(ensure_bundle(ca).path)
    trusting = {**bare, "NODE_EXTRA_CA_CERTS": str(ca.cert_path), "DENO_CERT": bundle, "SSL_CERT_FILE": bundle}
    rows = {c.name: c for c in doctor.check_clients(ca, trusting, only=only)}
    assert {n: c.status for n, c in rows.items()} == dict.fromkeys(only, "ok"), rows
    assert rows["bun"].detail.startswith(f"bun {doctor.bun_version(str(NODE_BIN / 'bun'), bare)}: trusts the CA")
    assert rows["deno"].detail.startswith("deno 2.") and rows["go"].detail.startswith("go 1.")
    # The Go client was built once, into the cache, and is reused.
    built = list((tmp_path / "cache" / "devcert" / "go-client").glob("tlsclient-*"))
    assert len(built) == 1 and file_mode(built[0].parent) == 0o700


@pytest.mark.slow
def test_bun_row_under_a_strict_ca_names_the_constraint_and_the_rotation(tmp_path):
    _need("bun", NODE_BIN)
    ca = _ca(tmp_path / "ca", "--profile", "strict")
    env = clean_env(PATH=_path_with(NODE_BIN), NODE_EXTRA_CA_CERTS=str(ca.cert_path))
    (row,) = doctor.check_clients(ca, env, only=("bun",))
    # Trusted by NODE_EXTRA_CA_CERTS, and still refused: the leaf has an IP address.
    assert row.status == "problem" and "UNSUPPORTED_CONSTRAINT_TYPE" in row.detail, row
    assert word(row.fix).startswith("devcert ca rotate")


def test_go_row_absent_without_go(tmp_path):
    ca = _ca(tmp_path / "ca")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    rows = {c.name: c.status for c in doctor.check_clients(ca, clean_env(PATH=str(empty)), only=("bun", "deno", "go"))}
    assert rows == {"bun": "not present", "deno": "not present", "go": "not present"}


@pytest.mark.slow
def test_node_row_names_the_version_and_the_fix_it_supports(tmp_path):
    """Node 20 (Debian's): NODE_EXTRA_CA_CERTS is the fix. Node 22 first on PATH: it can read
    the OS store, so NODE_USE_SYSTEM_CA=1 (after devcert install) is named."""
    from devcert.env import find_node

    _need("node", NODE22_BIN)
    ca = _ca(tmp_path / "ca")
    system = find_node(clean_env()["PATH"])
    if system is None:
            require_tool("node")
    (row,) = doctor.check_clients(ca, clean_env(), only=("node",))
    assert row.status == "problem" and row.detail.startswith(f"node {system.text}: does not trust the CA")
    if system.reads_system_ca:
        assert "NODE_USE_SYSTEM_CA=1" in word(row.fix)
    else:
        assert "NODE_EXTRA_CA_CERTS" in word(row.fix) and "NODE_USE_SYSTEM_CA" not in word(row.fix)
    node22 = find_node(str(NODE22_BIN))
    assert node22 is not None and node22.reads_system_ca
    (row,) = doctor.check_clients(ca, clean_env(PATH=_path_with(NODE22_BIN)), only=("node",))
    assert row.status == "problem" and row.detail.startswith(f"node {node22.text}: ")
    # The CA is not in the machine's store, so the fix starts with installing it.
    assert word(row.fix).startswith("devcert install, then export NODE_USE_SYSTEM_CA=1"), word(row.fix)
    (row,) = doctor.check_clients(ca, clean_env(PATH=_path_with(NODE22_BIN), NODE_EXTRA_CA_CERTS=str(ca.cert_path)),
                                  only=("node",))
    assert row.status == "ok" and row.detail == f"node {node22.text}: trusts the CA (real TLS handshake)"


NODE22_SANDBOX = r"""
set -u
out=$1
devcert install --store system >/dev/null 2>&1 || { devcert install --store system >&2; exit 9; }
PATH="$NODE22:$PATH" devcert doctor --json > "$out/plain.json"
PATH="$NODE22:$PATH" NODE_USE_SYSTEM_CA=1 devcert doctor --json > "$out/system-ca.json"
exit 0
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_node22_row_with_the_ca_in_the_os_store(tmp_path):
    """In the private trust sandbox (never the machine's stores): the CA in the OS store,
    Node 22 without trust variables is refused but told that NODE_USE_SYSTEM_CA=1 would do,
    and with it trusts the CA by a real handshake."""
    require_sandbox()
    _need("node", NODE22_BIN)
    root = tmp_path / "caroot"
    _ca(root)
    script = tmp_path / "run.sh"
    script.write_text(NODE22_SANDBOX)
    bindir = str(Path(devcert_exe()).parent)
    env = clean_env(DEVCERT_CAROOT=str(root), NODE22=str(NODE22_BIN), DEVCERT_TRUST_STORES="system",
                    PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    done = sandbox.run(["bash", str(script), str(tmp_path)], env=env, timeout=300 * UNIT)
    assert done.returncode == 0, done.stdout + done.stderr
    plain = by_name(json.loads((tmp_path / "plain.json").read_text()))["client:node"]
    assert plain["status"] == "problem" and plain["detail"].startswith("node v22.")
    assert plain["fix"].startswith("export NODE_USE_SYSTEM_CA=1"), plain
    system_ca = by_name(json.loads((tmp_path / "system-ca.json").read_text()))["client:node"]
    assert system_ca["status"] == "ok", system_ca
