"""The inventory, `devcert list`, `devcert renew` and `devcert inspect` on real files and a live server."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from devcert import LocalCA, inventory
from tests.helpers import TLSServer, one_error_line, run_devcert


def create(env: dict[str, str], cwd: Path, *args: str) -> dict:
    result = run_devcert("create", "--json", *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def listed(env: dict[str, str], *args: str) -> list[dict]:
    result = run_devcert("list", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["certs"]


# -- recording -----------------------------------------------------------------------------


def test_record_fields_and_replacement(caroot: Path, tmp_path: Path) -> None:
    ca = LocalCA.load_or_create()
    leaf = ca.issue("localhost", "127.0.0.1", client=True)
    leaf.write(tmp_path / "a.pem", tmp_path / "a-key.pem")
    assert inventory.record(ca, leaf, tmp_path / "a.pem", tmp_path / "a-key.pem") == []
    entries, warnings = inventory.read(caroot)
    assert warnings == [] and len(entries) == 1
    e = entries[0]
    assert e["names"] == ["localhost", "127.0.0.1"] and e["client"] is True
    assert e["serial"] == leaf.serial and e["sha256"] == leaf.sha256 and e["ca_sha256"] == ca.fingerprint
    assert e["not_after"] == leaf.not_after.isoformat() and e["key"] == str(tmp_path / "a-key.pem")
    assert (caroot / "inventory.json").stat().st_mode & 0o777 == 0o600
    # Issuing to the same path again replaces the entry.
    leaf2 = ca.issue("localhost")
    inventory.record(ca, leaf2, tmp_path / "a.pem", tmp_path / "a-key.pem")
    entries, _ = inventory.read(caroot)
    assert [x["serial"] for x in entries] == [leaf2.serial]


def test_ephemeral_ca_records_nothing(tmp_path: Path) -> None:
    ca = LocalCA.ephemeral()
    assert inventory.record(ca, ca.issue("localhost"), tmp_path / "x.pem") == []


def test_damaged_inventory_is_set_aside_and_never_blocks(cli_env: dict[str, str], caroot: Path, tmp_path: Path) -> None:
    create(cli_env, tmp_path, "localhost")
    (caroot / "inventory.json").write_text("{ not json")
    result = run_devcert("create", "--cert-file", "b.pem", "--key-file", "b-key.pem", "app.test", env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "inventory" in result.stderr and "damaged" in result.stderr
    aside = list(caroot.glob("inventory.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    assert [e["names"] for e in listed(cli_env)] == [["app.test"]]
    # A well-formed JSON file of the wrong shape is damaged too.
    (caroot / "inventory.json").write_text('{"certs": [1, 2]}')
    out = run_devcert("list", env=cli_env)
    assert out.returncode == 0 and "damaged" in out.stderr


def _record_many(args: tuple[str, str, int]) -> None:
    caroot, folder, n = args
    os.environ["DEVCERT_CAROOT"] = caroot
    ca = LocalCA.load()
    for i in range(n):
        leaf = ca.issue(f"h{os.getpid()}-{i}.test")
        path = Path(folder) / f"{os.getpid()}-{i}.pem"
        inventory.record(ca, leaf, path, None)


def test_concurrent_records_lose_nothing(caroot: Path, tmp_path: Path) -> None:
    LocalCA.load_or_create()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_record_many, [(str(caroot), str(tmp_path), 10)] * 4, chunksize=1)
    entries, warnings = inventory.read(caroot)
    assert warnings == [] and len(entries) == 40


# -- list / renew --------------------------------------------------------------------------


def test_list_marks_missing_and_filters_expiring(cli_env: dict[str, str], tmp_path: Path) -> None:
    create(cli_env, tmp_path, "--days", "10", "--cert-file", "soon.pem", "--key-file", "soon-key.pem", "soon.test")
    create(cli_env, tmp_path, "--cert-file", "later.pem", "--key-file", "later-key.pem", "later.test")
    create(cli_env, tmp_path, "--cert-file", "gone.pem", "--key-file", "gone-key.pem", "gone.test")
    (tmp_path / "gone.pem").unlink()

    rows = {Path(r["cert"]).name: r for r in listed(cli_env)}
    assert set(rows) == {"soon.pem", "later.pem", "gone.pem"}
    assert rows["gone.pem"]["missing"] is True and rows["later.pem"]["missing"] is False
    assert rows["soon.pem"]["days_left"] == 9
    assert [Path(r["cert"]).name for r in listed(cli_env, "--expiring", "30")] == ["soon.pem"]

    text = run_devcert("list", env=cli_env)
    line = next(x for x in text.stdout.splitlines() if "gone.pem" in x)
    assert "missing" in line
    assert "soon.test" in run_devcert("list", "--expiring", "30", env=cli_env).stdout
    assert "later.test" not in run_devcert("list", "--expiring", "30", env=cli_env).stdout


@pytest.mark.parametrize("args", [("list", "--expiring", "-5"), ("renew", "--expiring", "-1"),
                                  ("sync", "--warn-days", "-1"), ("sync", "--min-days", "-1")])
def test_negative_day_counts_are_refused(cli_env: dict[str, str], tmp_path: Path, args: tuple[str, ...]) -> None:
    # "--expiring -5" used to answer "No certificates expire within -5 days." with exit 0.
    result = run_devcert(*args, env=cli_env, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"devcert: error: {args[1]} {args[2]}: give 0 or more days\n"


def test_list_and_inspect_work_with_a_damaged_ca(cli_env: dict[str, str], caroot: Path, tmp_path: Path) -> None:
    # A damaged rootCA.pem used to make `devcert inspect any.pem` and `devcert list` fail outright.
    assert run_devcert("create", "app.test", env=cli_env, cwd=tmp_path).returncode == 0
    (caroot / "rootCA.pem").write_text("junk\n")
    done = run_devcert("inspect", "app.test.pem", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0 and "DNS:app.test" in done.stdout
    assert done.stderr.startswith("devcert: warning: ") and done.stderr.count("\n") == 1
    assert "rootCA.pem" in done.stderr
    done = run_devcert("list", "--json", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0 and [c["names"] for c in json.loads(done.stdout)["certs"]] == [["app.test"]]
    assert done.stderr.startswith("devcert: warning: ")


def test_renew_path_all_and_expiring(cli_env: dict[str, str], tmp_path: Path) -> None:
    create(cli_env, tmp_path, "--days", "10", "--cert-file", "soon.pem", "--key-file", "soon-key.pem", "soon.test", "127.0.0.1")
    create(cli_env, tmp_path, "--client", "--cert-file", "later.pem", "--key-file", "later-key.pem", "later.test")
    serials = {r["cert"]: r["serial"] for r in listed(cli_env)}

    out = run_devcert("renew", "--expiring", "30", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "soon.pem" in out.stdout and "later.pem" not in out.stdout
    rows = {Path(r["cert"]).name: r for r in listed(cli_env)}
    assert rows["soon.pem"]["serial"] != serials[str(tmp_path / "soon.pem")]
    assert rows["soon.pem"]["names"] == ["soon.test", "127.0.0.1"]
    assert rows["soon.pem"]["days"] == 10 and rows["soon.pem"]["days_left"] == 9  # renew keeps --days
    assert rows["later.pem"]["serial"] == serials[str(tmp_path / "later.pem")]

    # By path (the key file works too): same names, same options, same paths.
    out = run_devcert("renew", "later-key.pem", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "later.pem").read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert format(cert.serial_number, "x") != serials[str(tmp_path / "later.pem")]

    before = {r["cert"]: r["serial"] for r in listed(cli_env)}
    out = run_devcert("renew", "--all", "--json", env=cli_env)
    assert out.returncode == 0 and len(json.loads(out.stdout)["renewed"]) == 2
    after = {r["cert"]: r["serial"] for r in listed(cli_env)}
    assert all(before[k] != after[k] for k in before)

    bad = run_devcert("renew", "nope.pem", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 2 and "not in the inventory" in bad.stderr
    assert run_devcert("renew", env=cli_env).returncode == 2


def _csr(path: Path, name: str) -> None:
    """A CSR for ``name``, as someone who keeps their own key would send it."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))


def test_renew_all_skips_certificates_signed_from_a_csr(cli_env: dict[str, str], tmp_path: Path) -> None:
    # Once a CSR-signed certificate was in the inventory, `renew --all` failed on every run
    # (exit 1, its path printed twice).
    create(cli_env, tmp_path, "--cert-file", "mine.pem", "--key-file", "mine-key.pem", "mine.test")
    _csr(tmp_path / "req.csr", "theirs.test")
    create(cli_env, tmp_path, "--csr", "req.csr", "--cert-file", "theirs.pem")
    theirs = str(tmp_path / "theirs.pem")
    before = (tmp_path / "theirs.pem").read_bytes()

    for args in (("--all",), ("--expiring", "100000")):
        out = run_devcert("renew", *args, env=cli_env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "renewed " + str(tmp_path / "mine.pem") in out.stdout
        skipped = [line for line in out.stdout.splitlines() if line.startswith("skipped ")]
        assert len(skipped) == 1 and skipped[0].startswith(f"skipped {theirs} (issued for a CSR")
        assert "devcert create --csr" in skipped[0] and "error" not in out.stderr
    data = json.loads(run_devcert("renew", "--all", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert [Path(r["cert"]).name for r in data["renewed"]] == ["mine.pem"] and data["errors"] == []
    assert len(data["skipped"]) == 1 and data["skipped"][0].startswith(theirs)
    assert (tmp_path / "theirs.pem").read_bytes() == before

    # Asked for by path, it explains, naming the file once.
    out = run_devcert("renew", "theirs.pem", env=cli_env, cwd=tmp_path)
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert line.count(theirs) == 1 and "CSR" in line and "devcert create --csr" in line, line
    assert (tmp_path / "theirs.pem").read_bytes() == before


# -- inspect -------------------------------------------------------------------------------


def test_inspect_file(cli_env: dict[str, str], tmp_path: Path, caroot: Path) -> None:
    info = create(cli_env, tmp_path, "localhost", "127.0.0.1")
    out = run_devcert("inspect", "localhost+1.pem", "--json", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["chains_to_local_ca"] is True
    c = report["certificates"][0]
    assert c["names"] == ["DNS:localhost", "IP:127.0.0.1"] and c["sha256"] == info["sha256"]
    assert c["key"] == "ECDSA P-256" and "devcert" in c["issuer"]

    text = run_devcert("inspect", "localhost+1.pem", env=cli_env, cwd=tmp_path).stdout
    assert "Chains to the local CA: yes" in text and "DNS:localhost" in text

    # A certificate from another CA does not chain here; a key file is refused by name.
    other = LocalCA.ephemeral().issue("localhost")
    (tmp_path / "other.pem").write_bytes(other.cert_pem)
    report = json.loads(run_devcert("inspect", "other.pem", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert report["chains_to_local_ca"] is False and "not signed" in report["verdict"]
    bad = run_devcert("inspect", "localhost+1-key.pem", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 2 and "private key" in bad.stderr
    missing = run_devcert("inspect", "nothing.pem", env=cli_env, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_inspect_bundle_with_nonpositive_serials_prints_no_python_warnings(cli_env: dict[str, str], tmp_path: Path,
                                                                         caroot: Path) -> None:
    # CAROOT/ca-bundle.pem holds public roots with serial number 0; cryptography warns on
    # parsing them, and those raw CryptographyDeprecationWarning lines reached stderr.
    from cryptography.hazmat.primitives import serialization

    create(cli_env, tmp_path, "app.test")
    good = LocalCA.ephemeral().issue("odd.test").cert.public_bytes(serialization.Encoding.DER)
    n = x509.load_der_x509_certificate(good).serial_number
    value = n.to_bytes((n.bit_length() + 8) // 8, "big")  # DER's minimal two's complement
    encoded = bytes([0x02, len(value)]) + value
    assert good.count(encoded) == 1
    # Same length, top bit set: a negative serial (the signature no longer verifies; inspect
    # must still show it).
    odd = good.replace(encoded, encoded[:2] + bytes([value[0] | 0x80]) + value[1:])
    import base64
    import textwrap

    pem = b"-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(base64.b64encode(odd).decode(), 64)).encode() + \
        b"\n-----END CERTIFICATE-----\n"
    (tmp_path / "bundle.pem").write_bytes((caroot / "rootCA.pem").read_bytes() + pem)

    for args in ((), ("--json",)):
        out = run_devcert("inspect", "bundle.pem", *args, env=dict(cli_env, PYTHONWARNINGS="default"), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stderr == "", out.stderr
    report = json.loads(out.stdout)
    assert len(report["certificates"]) == 2 and report["certificates"][1]["names"] == ["DNS:odd.test"]
    assert report["certificates"][1]["serial"].startswith("-")


@pytest.fixture
def tls_server() -> Iterator[Callable[[Path, Path], int]]:
    """start(cert, key): a TLSServer on 127.0.0.1 presenting cert/key (with an optional chain); its port."""
    with contextlib.ExitStack() as servers:
        def start(cert: Path, key: Path) -> int:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            return servers.enter_context(TLSServer(ctx)).port

        yield start


def test_inspect_live_server(cli_env: dict[str, str], tmp_path: Path, tls_server, caroot: Path) -> None:  # type: ignore[no-untyped-def]
    create(cli_env, tmp_path, "--cert-file", "srv.pem", "--key-file", "srv-key.pem", "localhost", "127.0.0.1")
    # The server sends its leaf and the CA: the chain as sent is shown.
    (tmp_path / "chain.pem").write_bytes((tmp_path / "srv.pem").read_bytes() + (caroot / "rootCA.pem").read_bytes())
    port = tls_server(tmp_path / "chain.pem", tmp_path / "srv-key.pem")
    out = run_devcert("inspect", f"127.0.0.1:{port}", "--json", env=cli_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["kind"] == "server" and report["chains_to_local_ca"] is True, report
    assert "verified" in report["verdict"]
    assert len(report["certificates"]) == 2
    assert report["certificates"][0]["names"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert report["certificates"][1]["is_local_ca"] is True

    text = run_devcert("inspect", f"localhost:{port}", env=cli_env, cwd=tmp_path)
    assert "Chains to the local CA: yes" in text.stdout, text.stdout + text.stderr

    # A server whose certificate comes from another CA: the chain is still shown, the handshake fails.
    other = LocalCA.ephemeral().issue("localhost", "127.0.0.1")
    other.write(tmp_path / "o.pem", tmp_path / "o-key.pem")
    port2 = tls_server(tmp_path / "o.pem", tmp_path / "o-key.pem")
    report = json.loads(run_devcert("inspect", f"127.0.0.1:{port2}", "--json", env=cli_env).stdout)
    assert report["chains_to_local_ca"] is False and "verification failed" in report["verdict"]
    assert report["certificates"][0]["signed_by_local_ca"] is False

    # A name the certificate does not carry fails the verifying handshake too.
    create(cli_env, tmp_path, "--cert-file", "n.pem", "--key-file", "n-key.pem", "app.test")
    port3 = tls_server(tmp_path / "n.pem", tmp_path / "n-key.pem")
    report = json.loads(run_devcert("inspect", f"127.0.0.1:{port3}", "--json", env=cli_env).stdout)
    assert report["certificates"][0]["signed_by_local_ca"] is True
    assert report["chains_to_local_ca"] is False and "verification failed" in report["verdict"]

    with socket.socket() as reserved:  # bound, never listening: refused, and no other process can take it
        reserved.bind(("127.0.0.1", 0))
        closed = run_devcert("inspect", f"127.0.0.1:{reserved.getsockname()[1]}", env=cli_env)
    assert closed.returncode == 1 and "cannot complete a TLS handshake" in closed.stderr


# -- choosing what to renew (the core of `devcert renew`) ------------------------------------


def test_select_for_renewal_by_path_all_and_expiring(caroot: Path, tmp_path: Path) -> None:
    """The rule `renew` applies, as a function: by path (cert or key, each entry once), every
    entry, or those expiring within DAYS; missing files and keys devcert does not hold skipped."""
    from devcert.cli.messages import describe, describe_skipped
    from devcert.errors import NotRecordedError, NotRenewableError

    ca = LocalCA.load_or_create()
    short, long_ = ca.issue("short.test", days=10), ca.issue("long.test", days=400)
    short.write(tmp_path / "short.pem", tmp_path / "short-key.pem")
    long_.write(tmp_path / "long.pem", tmp_path / "long-key.pem")
    inventory.record(ca, short, tmp_path / "short.pem", tmp_path / "short-key.pem", days=10)
    inventory.record(ca, long_, tmp_path / "long.pem", tmp_path / "long-key.pem", days=400)
    gone = ca.issue("gone.test")
    gone.write(tmp_path / "gone.pem", tmp_path / "gone-key.pem")
    inventory.record(ca, gone, tmp_path / "gone.pem", tmp_path / "gone-key.pem")
    (tmp_path / "gone.pem").unlink()
    theirs = ca.issue("theirs.test")
    theirs.write(tmp_path / "theirs.pem")
    inventory.record(ca, theirs, tmp_path / "theirs.pem")  # no key: as if signed from a CSR
    entries, _ = inventory.read()

    selected, skipped = inventory.select_for_renewal(entries, ca, paths=[tmp_path / "short-key.pem",
                                                                         tmp_path / "short.pem"])
    assert [e["cert"] for e in selected] == [str(tmp_path / "short.pem")] and skipped == []
    with pytest.raises(NotRecordedError) as info:
        inventory.select_for_renewal(entries, ca, paths=[tmp_path / "nothing.pem"])
    assert info.value.path == tmp_path / "nothing.pem" and "devcert" not in str(info.value)
    assert describe(info.value).endswith("run `devcert sync`")

    selected, skipped = inventory.select_for_renewal(entries, ca)
    assert sorted(Path(e["cert"]).name for e in selected) == ["long.pem", "short.pem"]
    assert sorted((Path(s.path).name, s.reason) for s in skipped) == [("gone.pem", "missing"), ("theirs.pem", "csr")]
    words = sorted(describe_skipped(s) for s in skipped)
    assert words[0].endswith("gone.pem (file missing)")
    assert words[1].endswith("theirs.pem (issued for a CSR: its key is not here; sign a new CSR with "
                             "`devcert create --csr`)")

    selected, skipped = inventory.select_for_renewal(entries, ca, expiring=30)
    assert [Path(e["cert"]).name for e in selected] == ["short.pem"] and skipped == []

    theirs_entry = next(e for e in entries if e["cert"].endswith("theirs.pem"))
    with pytest.raises(NotRenewableError) as refused:
        inventory.reissue(ca, theirs_entry)
    assert (refused.value.path, refused.value.reason) == (theirs_entry["cert"], "csr")
    assert str(refused.value) == f"{theirs_entry['cert']} was issued for a CSR: its key is not here"
