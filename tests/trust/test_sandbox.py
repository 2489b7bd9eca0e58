"""`devcert install` / `uninstall` / `status` with the real tools, in a private trust sandbox.

Every test here that installs runs `devcert` inside ``tests/sandbox.py``'s mount namespace
(private copies of /etc/ssl/certs, the anchors folders, Java's cacerts and a fresh HOME), so
the machine's real stores are never written. Trust is proven by real clients (curl, Python
``ssl``, headless Chromium and Firefox, a Java program) against an https server in this test
process on 127.0.0.1, before and after install.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from devcert.ca import LocalCA
from devcert.trust import entry_name
from tests.helpers import CHROMIUM, CLIENT_JAVA, require_sandbox, require_tool, run_devcert, run_in_sandbox, sandbox_marks, sandbox_scenario

pytestmark = [pytest.mark.sandbox]



#: Shell functions the scenarios share: a curl probe and a Python ssl probe (default context).
PROBES = r"""
probe_curl() { if curl -sS --max-time "$WAIT" -o /dev/null "https://localhost:$PORT/$1" 2>/tmp/curl.err; then echo "@curl-$1-ok"; else echo "@curl-$1-fail"; cat /tmp/curl.err >&2; fi; }
probe_py() {
  python3 - "$PORT" "$1" <<'PY'
import os, ssl, sys, urllib.request
ctx = ssl.create_default_context()
try:
    urllib.request.urlopen(f"https://localhost:{sys.argv[1]}/{sys.argv[2]}", context=ctx, timeout=float(os.environ["WAIT"])).read()
    print(f"@py-{sys.argv[2]}-ok")
except Exception as err:
    print(f"@py-{sys.argv[2]}-fail"); print(err, file=sys.stderr)
PY
}
bundle_sum() { sha256sum /etc/ssl/certs/ca-certificates.crt | cut -d' ' -f1; }
"""


@pytest.mark.slow
def test_system_store_curl_and_python_trust_after_install_and_not_after_uninstall(ca_and_server, tmp_path):
    require_tool("curl")
    root, server = ca_and_server
    second = tmp_path / "second"
    LocalCA.create(second)
    script = PROBES + f"""
probe_curl before; probe_py before
before=$(bundle_sum)
devcert install --store system || echo "@install-failed"
probe_curl after; probe_py after
devcert install --store system >/dev/null || echo "@install2-failed"
echo "@entries-$(ls /usr/local/share/ca-certificates | grep -c '^devcert-')"
# a second CA coexists, and uninstalling the first leaves it
DEVCERT_CAROOT={shlex.quote(str(second))} devcert install --store system >/dev/null || echo "@install-second-failed"
echo "@entries-both-$(ls /usr/local/share/ca-certificates | grep -c '^devcert-')"
devcert uninstall --store system || echo "@uninstall-failed"
probe_curl uninstalled; probe_py uninstalled
DEVCERT_CAROOT={shlex.quote(str(second))} devcert status --json > /tmp/second.json
python3 -c 'import json; d=json.load(open("/tmp/second.json")); print("@second-still-" + str(d["stores"][0]["installed"]))'
DEVCERT_CAROOT={shlex.quote(str(second))} devcert uninstall --store system >/dev/null
[ "$(bundle_sum)" = "$before" ] && echo "@bundle-identical" || echo "@bundle-differs"
"""
    result, marks, info = sandbox_scenario(script, root, tmp_path, PORT=str(server.port))
    assert {"@curl-before-fail", "@py-before-fail"} <= marks, info
    assert {"@curl-after-ok", "@py-after-ok"} <= marks, info
    assert "@entries-1" in marks, info  # install twice = one entry
    assert "@entries-both-2" in marks, info
    assert {"@curl-uninstalled-fail", "@py-uninstalled-fail"} <= marks, info
    assert "@second-still-True" in marks, info
    assert "@bundle-identical" in marks, info
    assert not any(m.endswith("-failed") for m in marks), info
    assert "installed" in result.stdout and "update-ca-certificates" in result.stdout




#: /etc/ssl/certs as one line per entry, "NAME -> LINK TARGET" (files: "NAME -> "), sorted.
LISTING = r"""listing() { find /etc/ssl/certs -mindepth 1 -maxdepth 1 -printf '%f -> %l\n' | LC_ALL=C sort; }
# Each link in /etc/ssl/certs that leads (followed to its end, dangling or not) to the file $1.
leading_to() { for l in /etc/ssl/certs/*; do [ -L "$l" ] && [ "$(readlink -m "$l")" = "$1" ] && echo "$l"; done; true; }
"""


def test_system_uninstall_leaves_etc_ssl_certs_as_before_the_install(tmp_path):
    """Debian's update-ca-certificates, run after the anchor is removed, leaves its links to it
    (devcert-<fp>.pem and OpenSSL's <hash>.0) dangling: uninstall removes them, and only them
    (a second CA's stay), also for --stale, and --dry-run names them without removing them."""
    require_sandbox()
    require_tool("update-ca-certificates")
    root, second = tmp_path / "ca", tmp_path / "second"
    mine, other = entry_name(LocalCA.create(root)), entry_name(LocalCA.create(second))
    anchor = f"/usr/local/share/ca-certificates/{mine}.crt"
    other_anchor = f"/usr/local/share/ca-certificates/{other}.crt"
    two = f"DEVCERT_CAROOT={shlex.quote(str(second))}"
    script = LISTING + f"""
# The baseline is the store as its own tool leaves it: a machine's /etc/ssl/certs can hold what
# any run rewrites (a CA copied in as a file, which the tool replaces by a link to its anchor).
update-ca-certificates >/dev/null || echo "@baseline-failed"
listing > /tmp/before
{two} devcert install --store system >/dev/null || echo "@install-second-failed"
listing > /tmp/second-only
devcert install --store system >/dev/null || echo "@install-failed"
# The install made the links this test is about (else it would prove nothing).
grep -qx '{mine}.pem -> {anchor}' <(listing) && echo "@pem-link"
grep -qE '^[0-9a-f]{{8}}\\.[0-9]+ -> {mine}\\.pem$' <(listing) && echo "@hash-link"
leading_to {anchor} | sed 's/^/@installed-link /'
listing > /tmp/installed
devcert uninstall --store system --dry-run > /tmp/dry || echo "@dry-failed"
cat /tmp/dry
cmp -s /tmp/installed <(listing) && echo "@dry-unchanged"
devcert uninstall --store system > /tmp/out || echo "@uninstall-failed"
cat /tmp/out
leading_to {anchor} | sed 's/^/@left /'
cmp -s /tmp/second-only <(listing) && echo "@second-only-again" || diff /tmp/second-only <(listing) >&2
[ -n "$(leading_to {other_anchor})" ] && echo "@second-links-kept"
devcert uninstall --stale --store system > /tmp/stale || echo "@stale-failed"
cat /tmp/stale
leading_to {other_anchor} | sed 's/^/@left /'
cmp -s /tmp/before <(listing) && echo "@same-as-before" || diff /tmp/before <(listing) >&2
"""
    result, marks, info = sandbox_scenario(script, root, tmp_path)
    assert {"@pem-link", "@hash-link"} <= marks, info
    assert not any(m.startswith("@left ") for m in marks), info
    assert not any(m.endswith("-failed") for m in marks), info
    assert {"@dry-unchanged", "@second-only-again", "@second-links-kept", "@same-as-before"} <= marks, info
    links = sorted(m.split(" ", 1)[1] for m in marks if m.startswith("@installed-link "))
    assert len(links) == 2, info  # devcert-<fp>.pem and <hash>.0
    for link in links:  # through the runner: printed by the dry run, and by the uninstall
        assert re.search(rf"^\s*would remove: {re.escape(link)}$", result.stdout, re.M), info
        assert re.search(rf"^\s*remove: {re.escape(link)}$", result.stdout, re.M), info


@pytest.mark.slow
def test_chromium_trusts_after_install_into_its_nssdb(ca_and_server, tmp_path):
    require_tool("chromium")
    require_tool("certutil")
    root, server = ca_and_server
    script = f"""
load() {{ timeout "$BROWSER_WAIT" {CHROMIUM} --user-data-dir=$(mktemp -d) --dump-dom "https://localhost:$PORT/$1" 2>&1; }}  # the error is logged on stderr; the DOM stays empty
load before > /tmp/before.html
grep -q DEVCERT_PAGE_LOADED /tmp/before.html && echo "@before-loaded"
grep -q ERR_CERT_AUTHORITY_INVALID /tmp/before.html && echo "@before-authority-invalid"
devcert install --store nss || echo "@install-failed"
certutil -L -d sql:$HOME/.local/share/pki/nssdb | grep -q '^devcert-' && echo "@in-nssdb"
load after > /tmp/after.html
grep -q DEVCERT_PAGE_LOADED /tmp/after.html && echo "@after-loaded"
devcert uninstall --store nss >/dev/null || echo "@uninstall-failed"
certutil -L -d sql:$HOME/.local/share/pki/nssdb | grep -q '^devcert-' || echo "@gone"
"""
    result = run_in_sandbox(script, root, tmp_path, PORT=str(server.port))
    marks = sandbox_marks(result)
    info = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    assert "@before-loaded" not in marks and "@before-authority-invalid" in marks, info
    assert {"@in-nssdb", "@after-loaded", "@gone"} <= marks, info
    assert "@install-failed" not in marks and "@uninstall-failed" not in marks, info


@pytest.mark.slow
def test_firefox_profile_gets_the_ca_and_loads_the_page(ca_and_server, tmp_path):
    """A real Firefox profile: the CA lands in its cert9.db with C,, and Firefox then fetches the page.

    Headless Firefox has no --dump-dom; what proves it accepted the certificate is that our
    server received its HTTP request: on a certificate error Firefox aborts the handshake and
    never sends one. Before install the server sees no request from it, only a refused handshake.
    """
    require_tool("firefox-esr")
    require_tool("certutil")
    root, server = ca_and_server
    script = """
# On a certificate error --screenshot never finishes: the first load is bounded to 25 s.
ff() { timeout "${2:-90}" firefox-esr --headless -P devtest --screenshot /tmp/shot.png "$1" >/dev/null 2>&1; }
firefox-esr --headless -CreateProfile devtest >/dev/null 2>&1
ff about:blank   # first start: Firefox creates the profile's cert9.db
profile=$(python3 - <<'PY'
import configparser, os
for base in ("~/.config/mozilla/firefox", "~/.mozilla/firefox"):
    ini = os.path.expanduser(base + "/profiles.ini")
    if os.path.exists(ini):
        p = configparser.RawConfigParser(); p.read(ini)
        for s in p.sections():
            if p.get(s, "Name", fallback="") == "devtest":
                print(os.path.join(os.path.dirname(ini), p.get(s, "Path")))
PY
)
[ -f "$profile/cert9.db" ] && echo "@profile-ready"
ff "https://localhost:$PORT/firefox-before" 25
devcert install --store nss || echo "@install-failed"
certutil -L -d "sql:$profile" | grep '^devcert-' | grep -q 'C,,' && echo "@in-cert9-C"
ff "https://localhost:$PORT/firefox-after"
devcert uninstall --store nss >/dev/null || echo "@uninstall-failed"
certutil -L -d "sql:$profile" | grep -q '^devcert-' || echo "@gone"
"""
    result = run_in_sandbox(script, root, tmp_path, PORT=str(server.port))
    marks = sandbox_marks(result)
    info = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}\nrequests: {server.requests}"
    assert "@profile-ready" in marks, info
    assert {"@in-cert9-C", "@gone"} <= marks, info
    assert "/firefox-before" not in server.requests, info
    # ... and not because it never came: it reached the server and refused the certificate.
    assert any("ALERT" in str(e).upper() or "UNKNOWN_CA" in str(e).upper() for e in server.errors), info + str(server.errors)
    assert "/firefox-after" in server.requests, info
    assert "@install-failed" not in marks and "@uninstall-failed" not in marks, info


@pytest.mark.slow
def test_java_client_handshakes_after_install_into_cacerts(ca_and_server, tmp_path):
    require_tool("java")
    require_tool("keytool")
    root, server = ca_and_server
    client = tmp_path / "Client.java"
    client.write_text(CLIENT_JAVA)
    script = f"""
listing() {{ for f in $(devcert status --json | python3 -c 'import json,sys; [print(l["where"]) for s in json.load(sys.stdin)["stores"] if s["store"]=="java" for l in s["locations"]]'); do keytool -list -keystore "$f" -storepass changeit 2>/dev/null | grep -v '^Keystore type\\|^Your keystore' | sort | sha256sum; done; }}
java {client} "https://localhost:$PORT/" before
before=$(listing)
devcert install --store java || echo "@install-failed"
java {client} "https://localhost:$PORT/" after
devcert install --store java >/dev/null || echo "@install2-failed"
devcert uninstall --store java >/dev/null || echo "@uninstall-failed"
[ "$(listing)" = "$before" ] && echo "@listing-same"
java {client} "https://localhost:$PORT/" uninstalled
"""
    result = run_in_sandbox(script, root, tmp_path, PORT=str(server.port))
    marks = sandbox_marks(result)
    info = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    assert "@java-before-fail" in marks, info
    assert "@java-after-ok" in marks, info
    assert "@java-uninstalled-fail" in marks, info
    assert "@listing-same" in marks, info
    assert not any(m.endswith("-failed") for m in marks), info


def test_dry_run_changes_nothing(tmp_path):
    require_sandbox()
    require_tool("certutil")
    empty = tmp_path / "no-ca-yet"
    script = r"""
state() { sha256sum /etc/ssl/certs/ca-certificates.crt | cut -c1-64; ls /usr/local/share/ca-certificates; ls -a $HOME/.pki 2>&1; keytool -list -cacerts -storepass changeit 2>/dev/null | grep -c devcert; }
before=$(state)
devcert install --dry-run > /tmp/out1 2>&1 || echo "@dry1-failed"
[ -e "$DEVCERT_CAROOT/rootCA.pem" ] && echo "@ca-created"
devcert ca init >/dev/null
devcert install --dry-run > /tmp/out2 2>&1 || echo "@dry2-failed"
cat /tmp/out1 /tmp/out2
[ "$(state)" = "$before" ] && echo "@unchanged"
devcert uninstall --dry-run >/dev/null 2>&1 || echo "@dry3-failed"
[ "$(state)" = "$before" ] && echo "@unchanged-after-uninstall"
"""
    result, marks, info = sandbox_scenario(script, empty, tmp_path)
    assert "@ca-created" not in marks, info
    assert {"@unchanged", "@unchanged-after-uninstall"} <= marks, info
    assert not any(m.endswith("-failed") for m in marks), info
    assert "would write: /usr/local/share/ca-certificates/devcert-" in result.stdout, info
    assert "would run: " in result.stdout and "update-ca-certificates" in result.stdout, info
    assert "Dry run: nothing was changed." in result.stdout, info


# -- bad cases: one clear line, stores as they were ---------------------------------------------


def test_no_ca_yet_install_creates_it_and_key_missing_still_installs(tmp_path):
    require_sandbox()
    fresh = tmp_path / "fresh"
    certonly = tmp_path / "certonly"
    certonly.mkdir()
    script = f"""
devcert install --store system > /tmp/o1 2>&1 && echo "@created-and-installed"
[ -f "$DEVCERT_CAROOT/rootCA.pem" ] && echo "@ca-exists"
cp "$DEVCERT_CAROOT/rootCA.pem" {shlex.quote(str(certonly))}/
devcert uninstall --store system >/dev/null
DEVCERT_CAROOT={shlex.quote(str(certonly))} devcert install --store system > /tmp/o2 2>&1 && echo "@certonly-installed"
ls /usr/local/share/ca-certificates | grep -c '^devcert-' | sed 's/^/@count-/'
cat /tmp/o1 /tmp/o2
"""
    result, marks, info = sandbox_scenario(script, fresh, tmp_path)
    assert {"@created-and-installed", "@ca-exists", "@certonly-installed", "@count-1"} <= marks, info
    assert not (certonly / "rootCA-key.pem").exists()
    assert "Created a new local CA" in result.stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A CA in tmp_path/ca for a sandbox scenario (the test is skipped where there is no sandbox)."""
    require_sandbox()
    LocalCA.create(tmp_path / "ca")
    return tmp_path / "ca"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("devcert: error:")]


def _failed_install(store: str, root: Path, tmp_path: Path, *, state: str, breaking: str,
                    setup: str = "") -> tuple[list[str], str]:
    """`devcert install --store STORE` in the sandbox after the shell lines ``setup`` and
    ``breaking``: check that it exits 1 and that the shell command ``state`` prints the same
    before it and after; return its error lines and the scenario's output."""
    script = f"""
{setup}
before=$({state})
{breaking}
devcert install --store {store} 2>/tmp/err; echo "@rc-$?"
cat /tmp/err >&2
[ "$({state})" = "$before" ] && echo "@unchanged"
"""
    result, marks, info = sandbox_scenario(script, root, tmp_path)
    assert {"@rc-1", "@unchanged"} <= marks, info
    return _error_lines(result.stderr), info


def test_failing_update_command_leaves_system_store_as_it_was(root, tmp_path):
    fake = tmp_path / "update-ca-certificates"
    fake.write_text("#!/bin/sh\necho 'update-ca-certificates: simulated failure' >&2\nexit 3\n")
    fake.chmod(0o755)
    errors, info = _failed_install(
        "system", root, tmp_path, state="ls /usr/local/share/ca-certificates; sha256sum /etc/ssl/certs/ca-certificates.crt",
        breaking=f"mount --bind {shlex.quote(str(fake))} /usr/sbin/update-ca-certificates")
    assert len(errors) == 1 and "simulated failure" in errors[0], info


def test_missing_certutil_and_keytool_say_what_to_install(root, tmp_path):
    require_tool("certutil")
    require_tool("keytool")
    certutil = os.path.realpath("/usr/bin/certutil")
    keytool = os.path.realpath(require_tool("keytool"))
    java_home = tmp_path / "jre"  # a runtime with a cacerts but no keytool
    (java_home / "lib" / "security").mkdir(parents=True)
    cacerts = java_home / "lib" / "security" / "cacerts"
    cacerts.write_bytes(Path("/etc/ssl/certs/java/cacerts").read_bytes())
    script = f"""
mkdir -p $HOME/.pki/nssdb && certutil -N -d sql:$HOME/.pki/nssdb --empty-password
mount --bind /dev/null {shlex.quote(certutil)}
mount --bind /dev/null {shlex.quote(keytool)}
devcert install --store nss 2>/tmp/e1; echo "@nss-rc-$?"
JAVA_HOME={shlex.quote(str(java_home))} devcert install --store java 2>/tmp/e2; echo "@java-rc-$?"
cat /tmp/e1 /tmp/e2 >&2
"""
    before = cacerts.read_bytes()
    result, marks, info = sandbox_scenario(script, root, tmp_path)
    assert {"@nss-rc-1", "@java-rc-1"} <= marks, info
    errors = _error_lines(result.stderr)
    assert len(errors) == 2, info
    assert "certutil is missing" in errors[0] and "libnss3-tools" in errors[0], info
    assert "keytool is missing" in errors[1], info
    assert cacerts.read_bytes() == before


def test_read_only_nss_database_fails_cleanly(root, tmp_path):
    require_tool("certutil")
    errors, info = _failed_install(
        "nss", root, tmp_path, setup="db=$HOME/.pki/nssdb; mkdir -p $db && certutil -N -d sql:$db --empty-password",
        state="certutil -L -d sql:$db; sha256sum $db/cert9.db", breaking="mount --bind $db $db && mount -o remount,ro,bind $db")
    assert len(errors) == 1 and "nssdb" in errors[0], info


def test_status_reports_each_store(root, tmp_path):
    require_tool("certutil")
    script = """
devcert status --json > /tmp/s1
devcert install --store system >/dev/null
devcert status --json > /tmp/s2
devcert status
python3 - <<'PY'
import json
for n in ("s1", "s2"):
    d = json.load(open(f"/tmp/{n}"))
    for s in d["stores"]:
        print(f"@{n}-{s['store']}-{s['installed']}")
    print(f"@{n}-anywhere-{d['trusted_anywhere']}")
PY
"""
    result, marks, info = sandbox_scenario(script, root, tmp_path)
    assert {"@s1-system-False", "@s1-anywhere-False", "@s2-system-True", "@s2-anywhere-True"} <= marks, info
    assert "STORE" in result.stdout and "devcert install --store nss" in result.stdout, info


def test_create_hint_only_when_not_trusted(root, tmp_path):
    script = """
cd $HOME
devcert create localhost 2>/tmp/e1 >/dev/null
DEVCERT_TRUST_STORES=system devcert install >/dev/null
devcert create localhost 2>/tmp/e2 >/dev/null
grep -q 'devcert install' /tmp/e1 && echo "@hint-before"
grep -q 'devcert install' /tmp/e2 || echo "@no-hint-after"
"""
    result = run_in_sandbox(script, root, tmp_path)
    marks = sandbox_marks(result)
    assert {"@hint-before", "@no-hint-after"} <= marks, f"{result.stdout}\n{result.stderr}"


def test_bad_store_name_is_a_usage_error(cli_env):
    result = run_devcert("install", "--store", "keychain", "--dry-run", env=cli_env)
    assert result.returncode == 2
    assert "unknown trust store 'keychain'" in result.stderr
    result = run_devcert("status", env={**cli_env, "DEVCERT_TRUST_STORES": "system,bogus"})
    assert result.returncode == 2 and "bogus" in result.stderr


def test_status_json_without_ca_is_one_object(cli_env):
    result = run_devcert("status", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ca"] is None and data["trusted_anywhere"] is False
    assert [s["store"] for s in data["stores"]] == ["system", "nss", "java"]
