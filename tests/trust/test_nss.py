"""Which NSS database devcert writes for Chromium on Linux, and Firefox on macOS / Windows.

The rule (devcert/trust/nss.py's docstring, from Chromium's docs/linux/cert_management.md and
checked against the Chromium installed here): Chromium reads ``~/.pki/nssdb`` when that folder
exists, else ``$XDG_DATA_HOME/pki/nssdb`` (``~/.local/share/pki/nssdb``); devcert never creates
``~/.pki/nssdb``. The unit tests lay each case out in a tmp_path HOME (no certutil needed,
except the entries test, which makes real databases in tmp_path). The browser tests run
``devcert`` and headless Chromium inside the private trust sandbox (tests/sandbox.py) with a
fresh HOME: the machine's own ~/.pki and ~/.local/share/pki are never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import CHROMIUM, require_tool, run_in_sandbox, sandbox_marks

from devcert.ca import LocalCA
from devcert.cli.messages import store_row, word
from devcert.trust import entry_name
from devcert.trust import nss as nss_mod
from devcert.trust.nss import NSSStore, chromium_database, find_databases, scan_databases

NEW = ".local/share/pki/nssdb"
LEGACY = ".pki/nssdb"


def _db(home: Path, rel: str) -> Path:
    """A folder holding an (empty) cert9.db: enough for devcert to count it as a database."""
    (home / rel).mkdir(parents=True, exist_ok=True)
    (home / rel / "cert9.db").write_bytes(b"")
    return home / rel


def _profile(home: Path, root: str) -> str:
    """A Firefox profile under ``root`` listed in its profiles.ini, as Firefox lays it out."""
    (home / root).mkdir(parents=True, exist_ok=True)
    (home / root / "profiles.ini").write_text("[Profile0]\nName=default\nIsRelative=1\nPath=Profiles/x.default\n")
    _db(home, f"{root}/Profiles/x.default")
    return f"{root}/Profiles/x.default"


def _layout(home: Path, **kw) -> dict[str, tuple[bool, str]]:  # type: ignore[no-untyped-def]
    kw.setdefault("environ", {})
    kw.setdefault("platform", "linux")
    return {str(db.path.relative_to(home)) if db.path.is_relative_to(home) else str(db.path): (db.exists, db.used_by)
            for db in scan_databases(home, **kw)}


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


# -- the rule, layout by layout ----------------------------------------------------------------


def test_no_database_and_chromium_installed_creates_the_new_one_never_pki(tmp_path):
    assert _layout(tmp_path, create_chromium=True) == {NEW: (False, "chromium")}
    assert chromium_database(tmp_path, {}) == tmp_path / NEW
    assert not (tmp_path / ".pki").exists() and not (tmp_path / ".local").exists()  # scanning writes nothing


def test_no_database_and_no_chromium_is_nothing(tmp_path):
    assert _layout(tmp_path, create_chromium=False) == {}


def test_only_the_new_database(tmp_path):
    _db(tmp_path, NEW)
    for create in (True, False):
        assert _layout(tmp_path, create_chromium=create) == {NEW: (True, "chromium")}


def test_only_the_legacy_database(tmp_path):
    _db(tmp_path, LEGACY)
    assert _layout(tmp_path, create_chromium=True) == {LEGACY: (True, "chromium")}
    assert chromium_database(tmp_path, {}) == tmp_path / LEGACY


def test_both_databases_legacy_wins_new_still_written(tmp_path):
    _db(tmp_path, LEGACY)
    _db(tmp_path, NEW)
    assert _layout(tmp_path, create_chromium=True) == {LEGACY: (True, "chromium"), NEW: (True, "")}


def test_an_empty_legacy_folder_is_what_chromium_reads(tmp_path):
    # Chromium 156 tests the folder, not cert9.db: it would fill this one, so devcert does too.
    (tmp_path / LEGACY).mkdir(parents=True)
    _db(tmp_path, NEW)
    assert _layout(tmp_path, create_chromium=True) == {LEGACY: (False, "chromium"), NEW: (True, "")}
    assert _layout(tmp_path, create_chromium=False) == {NEW: (True, "")}


def test_a_bare_pki_folder_changes_nothing(tmp_path):
    (tmp_path / ".pki").mkdir()
    assert _layout(tmp_path, create_chromium=True) == {NEW: (False, "chromium")}


def test_xdg_data_home_absolute_is_used_relative_is_ignored(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "data"
    home.mkdir()
    assert chromium_database(home, {"XDG_DATA_HOME": str(data)}) == data / "pki/nssdb"
    assert chromium_database(home, {"XDG_DATA_HOME": "rel/data"}) == home / NEW
    assert chromium_database(home, {"XDG_DATA_HOME": ""}) == home / NEW
    found = _layout(home, create_chromium=True, environ={"XDG_DATA_HOME": str(data)})
    assert found == {str(data / "pki/nssdb"): (False, "chromium")}
    _db(home, NEW)  # the default location, not read while XDG_DATA_HOME points elsewhere
    found = _layout(home, create_chromium=True, environ={"XDG_DATA_HOME": str(data)})
    assert found == {str(data / "pki/nssdb"): (False, "chromium"), NEW: (True, "")}
    # ~/.pki/nssdb wins over XDG_DATA_HOME too
    _db(home, LEGACY)
    assert chromium_database(home, {"XDG_DATA_HOME": str(data)}) == home / LEGACY


def test_process_xdg_data_home_applies_only_to_the_real_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
    home = tmp_path / "home"
    home.mkdir()
    assert find_databases(home, create_chromium=True) == [(home / NEW, False)]


def test_snap_chromium_same_rule_never_created(tmp_path):
    snap = "snap/chromium/current"
    assert _layout(tmp_path, create_chromium=False) == {}
    _db(tmp_path, f"{snap}/{NEW}")
    assert _layout(tmp_path, create_chromium=False) == {f"{snap}/{NEW}": (True, "chromium-snap")}
    _db(tmp_path, f"{snap}/{LEGACY}")
    assert _layout(tmp_path, create_chromium=False) == {f"{snap}/{LEGACY}": (True, "chromium-snap"),
                                                        f"{snap}/{NEW}": (True, "")}


def test_a_symlinked_legacy_folder_is_one_database(tmp_path):
    new = _db(tmp_path, NEW)
    (tmp_path / ".pki").mkdir()
    (tmp_path / LEGACY).symlink_to(new)
    assert _layout(tmp_path, create_chromium=True) == {LEGACY: (True, "chromium")}


def test_firefox_profiles_sit_beside_chromium(tmp_path):
    _db(tmp_path, ".mozilla/firefox/a.default")
    assert _layout(tmp_path, create_chromium=True) == {NEW: (False, "chromium"),
                                                       ".mozilla/firefox/a.default": (True, "firefox")}


def test_chromium_databases_are_linux_only(tmp_path):
    _db(tmp_path, LEGACY)
    profile = _profile(tmp_path, "Library/Application Support/Firefox")
    for platform in ("darwin", "windows"):
        assert _layout(tmp_path, create_chromium=True, platform=platform) == {profile: (True, "firefox")}


# -- the store: describe, status, install / uninstall commands ----------------------------------


def test_describe_and_location_states_name_where_chromium_reads(tmp_path, monkeypatch, ca):
    monkeypatch.setattr(nss_mod, "chromium_installed", lambda: True)
    monkeypatch.setattr(nss_mod, "find_certutil", lambda: None)
    _db(tmp_path, LEGACY)
    _db(tmp_path, NEW)
    store = NSSStore(tmp_path, environ={}, platform="linux")
    assert store.describe() == f"NSS databases: ~/{LEGACY} (Chromium reads it), ~/{NEW} (Chromium does not read it now)"
    states = store.location_states(ca)
    assert states == [{"where": str(tmp_path / LEGACY), "exists": True, "used_by": "chromium", "installed": None},
                      {"where": str(tmp_path / NEW), "exists": True, "used_by": None, "installed": None}]
    row = store.status(ca).as_dict()
    assert "certutil is missing" in row["detail"]
    assert [loc["used_by"] for loc in row["locations"]] == ["chromium", None]
    json.dumps(row)  # status --json prints it


def test_install_creates_only_the_new_database(tmp_path, monkeypatch, ca):
    from devcert.trust.base import Runner

    monkeypatch.setattr(nss_mod, "chromium_installed", lambda: True)
    monkeypatch.setattr(nss_mod, "find_certutil", lambda: "certutil")
    store = NSSStore(tmp_path, environ={}, platform="linux")
    assert store.describe() == f"NSS databases: ~/{NEW} (Chromium reads it; to be created)"
    runner = Runner(dry_run=True)
    store.install(ca, runner)
    texts = [a.text for a in runner.actions]
    db = tmp_path / NEW
    assert texts[0] == f"mkdir -p -m 700 {db}"
    assert texts[1] == f"certutil -N -d sql:{db} --empty-password"
    assert texts[2].startswith(f"certutil -A -d sql:{db} -t C,, -n {entry_name(ca)} -i ")
    assert len(texts) == 3 and not any(".pki" in t for t in texts)


@pytest.mark.parametrize("platform", ["darwin", "windows"])
def test_firefox_on_macos_and_windows_needs_no_certutil(tmp_path, monkeypatch, ca, platform):
    monkeypatch.setattr(nss_mod, "platform_key", lambda: platform)
    monkeypatch.setattr(nss_mod, "which", lambda name: None)  # no certutil on PATH
    monkeypatch.setattr(nss_mod, "CERTUTIL_EXTRA", ())  # nor Homebrew's
    profile = _profile(tmp_path, "Library/Application Support/Firefox" if platform == "darwin"
                       else "AppData/Roaming/Mozilla/Firefox")
    store = NSSStore(tmp_path, environ={})
    assert nss_mod.find_certutil() is None
    assert store.problem() is None  # not "certutil is missing"
    assert not store.available()  # so a plain `devcert install` skips it
    reason = word(store.not_available_reason())  # as the CLI says it
    assert "enterprise_roots" in reason and "devcert install --store system" in reason
    assert ("macOS" if platform == "darwin" else "Windows") in reason
    row = store_row(store.status(ca))  # `devcert status --json`'s row
    assert row["available"] is True and row["installed"] is None
    assert row["where"] == f"NSS databases: ~/{profile} (Firefox trusts the system store here)"
    assert row["detail"] == reason and row["fix"] == "devcert install --store system"
    assert row["locations"] == [{"where": str(tmp_path / profile), "exists": True, "used_by": "firefox",
                                 "installed": None}]


def test_linux_firefox_still_needs_certutil(tmp_path, monkeypatch, ca):
    monkeypatch.setattr(nss_mod, "platform_key", lambda: "linux")
    monkeypatch.setattr(nss_mod, "find_certutil", lambda: None)
    _db(tmp_path, ".mozilla/firefox/a.default")
    store = NSSStore(tmp_path, environ={})
    assert store.available() and "certutil is missing" in (store.problem() or "")


def test_macos_with_certutil_still_writes_the_profiles(tmp_path, monkeypatch):
    monkeypatch.setattr(nss_mod, "platform_key", lambda: "darwin")
    monkeypatch.setattr(nss_mod, "find_certutil", lambda: "/opt/homebrew/opt/nss/bin/certutil")
    _profile(tmp_path, "Library/Application Support/Firefox")
    store = NSSStore(tmp_path, environ={})
    assert store.available() and store.problem() is None


def test_entries_and_removal_across_both_locations(tmp_path, monkeypatch, ca):
    """Real certutil on databases in tmp_path: install fills both, entries() lists both, removal clears both."""
    import subprocess

    certutil = require_tool("certutil")
    for rel in (LEGACY, NEW):
        (tmp_path / rel).mkdir(parents=True)
        subprocess.run([certutil, "-N", "-d", f"sql:{tmp_path / rel}", "--empty-password"], check=True,
                       capture_output=True)
    store = NSSStore(tmp_path, environ={}, platform="linux")
    store.install(ca)
    assert store.is_installed(ca)
    found = store.entries()
    expected = sorted((entry_name(ca), str(tmp_path / rel)) for rel in (LEGACY, NEW))
    assert sorted((e.name, e.where) for e in found) == expected
    for entry in found:
        store.remove_entry(entry)
    assert store.entries() == [] and not store.is_installed(ca)


# -- the real Chromium, in the private trust sandbox ---------------------------------------------

#: Shell helpers: load a page in headless Chromium (a fresh profile under the sandbox HOME);
#: mark whether it showed our page or Chromium's certificate error; where the CA is; install and
#: uninstall (marking a failure).
SCRIPT_HEAD = f"""
unset XDG_DATA_HOME XDG_CONFIG_HOME
NEW=$HOME/.local/share/pki/nssdb
LEGACY=$HOME/.pki/nssdb
n=0
load() {{
  n=$((n+1))
  timeout "$BROWSER_WAIT" {CHROMIUM} --user-data-dir=$HOME/chromium-profile-$n --dump-dom "https://localhost:$PORT/$1" \
    > $HOME/load-$1.html 2>&1
  grep -q DEVCERT_PAGE_LOADED $HOME/load-$1.html && echo "@$1-loaded"
  grep -q ERR_CERT_AUTHORITY_INVALID $HOME/load-$1.html && echo "@$1-cert-error"
  true
}}
has_ca() {{ [ -f "$1/cert9.db" ] && certutil -L -d "sql:$1" | grep -q '^devcert-'; }}
install_nss() {{ devcert install --store nss >$HOME/install.out 2>&1 || {{ echo "@install-failed"; cat $HOME/install.out; }}; }}
uninstall_nss() {{ devcert uninstall --store nss >/dev/null || echo "@uninstall-failed"; }}
status_json() {{
  devcert status --json | python3 -c '
import json, sys
nss = [s for s in json.load(sys.stdin)["stores"] if s["store"] == "nss"][0]
for loc in nss["locations"]:
    print("@status", loc["where"].replace(sys.argv[1], "~"), loc["used_by"], loc["installed"])
' "$HOME"
}}
"""


def _run(script: str, ca_and_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``script`` after SCRIPT_HEAD in the sandbox, against the server of ``ca_and_server``."""
    require_tool("chromium")
    require_tool("certutil")
    caroot, server = ca_and_server
    result = run_in_sandbox(SCRIPT_HEAD + script, caroot, tmp_path, PORT=str(server.port))
    return sandbox_marks(result), {line.strip() for line in result.stdout.splitlines() if line.startswith("@status")}, \
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize(("db", "rel", "other"), [("NEW", NEW, "$HOME/.pki"), ("LEGACY", LEGACY, "$NEW")],
                         ids=["only-the-new", "only-the-legacy"])
def test_chromium_with_one_database(ca_and_server, tmp_path, db, rel, other):
    """Where the one database there is (the new or the legacy one) is what Chromium reads,
    install puts the CA there and creates no other; uninstall takes it out again."""
    marks, status, info = _run(rf"""
mkdir -p ${db} && certutil -N -d sql:${db} --empty-password
load before
install_nss
has_ca ${db} && echo "@in-db"
[ -e {other} ] && echo "@other-created"
load after
status_json
uninstall_nss
has_ca ${db} || echo "@gone"
load removed
[ -e {other} ] && echo "@other-created"
""", ca_and_server, tmp_path)
    assert "@before-cert-error" in marks and "@before-loaded" not in marks, info
    assert {"@in-db", "@after-loaded", "@gone", "@removed-cert-error"} <= marks, info
    assert "@removed-loaded" not in marks and "@other-created" not in marks, info
    assert "@install-failed" not in marks and "@uninstall-failed" not in marks, info
    assert status == {f"@status ~/{rel} chromium True"}, info


@pytest.mark.sandbox
@pytest.mark.slow
def test_chromium_with_no_database_yet(ca_and_server, tmp_path):
    marks, status, info = _run(r"""
[ -e $NEW ] || [ -e $HOME/.pki ] && echo "@not-fresh"
install_nss
has_ca $NEW && echo "@in-new"
[ -e $HOME/.pki ] && echo "@pki-created"
[ "$(stat -c %a $NEW)" = 700 ] && echo "@private"
load after
[ -e $HOME/.pki ] && echo "@pki-created"
status_json
""", ca_and_server, tmp_path)
    assert "@not-fresh" not in marks and "@install-failed" not in marks, info
    assert {"@in-new", "@private", "@after-loaded"} <= marks, info
    assert "@pki-created" not in marks, info
    assert status == {"@status ~/.local/share/pki/nssdb chromium True"}, info
