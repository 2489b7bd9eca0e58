"""``devcert acme`` against certbot's ``acme`` client library: the protocol as a client uses it.

The server runs as a real subprocess (``devcert acme --port 0 --json``); the client talks real
HTTPS to it, trusting only the devcert CA (``verify_ssl`` is the CA file), and answers http-01
from a responder on 127.0.0.1 whose port the server is told with ``--http-port``. Every issued
certificate is proven by a TLS handshake with a client that trusts only the devcert CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import josepy as jose
import pytest
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acmekit import (Http01Responder, TxtServer, acme_server, answer_http01, connect, ec_key, handshake,
                           leaf_key_pem, make_client, obtain, register, rsa_key, san_names)
from tests.helpers import UNIT, devcert_exe, one_error_line, run_devcert, wait_for

from devcert import inventory


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def responder():
    r = Http01Responder()
    yield r
    r.close()


@pytest.fixture
def server(caroot, responder):
    with acme_server(caroot, "--http-port", str(responder.port)) as s:
        yield s


# --- issuing ---------------------------------------------------------------------------------


def test_http01_certificate_serves_a_trusted_handshake(server, responder, tmp_path):
    acme = make_client(server.directory, server.ca_file)
    register(acme, email="dev@example.com")
    order, key_pem = obtain(acme, responder, ["app.localhost"])
    assert order.body.status == messages.STATUS_VALID
    chain = order.fullchain_pem.encode()
    assert chain.count(b"BEGIN CERTIFICATE") == 2  # the leaf, then the devcert CA
    peer = handshake(chain, key_pem, server.ca_file, "app.localhost", tmp_path)
    assert san_names(peer) == ["app.localhost"]
    # the challenge was fetched for real, with the name in the Host header
    assert any(host == f"app.localhost:{responder.port}" for host, _ in responder.requests)


def test_several_names_rsa_leaf_and_an_ip_identifier(server, responder, tmp_path):
    acme = make_client(server.directory, server.ca_file, key=rsa_key())  # an RS256 account
    register(acme)
    order, key_pem = obtain(acme, responder, ["a.localhost", "b.localhost"], key_pem=leaf_key_pem("rsa"),
                            ips=[ipaddress.ip_address("127.0.0.1")])
    idents = {(i.typ.name, i.value) for i in order.body.identifiers}
    assert idents == {("dns", "a.localhost"), ("dns", "b.localhost"), ("ip", "127.0.0.1")}
    chain = order.fullchain_pem.encode()
    for name in ("a.localhost", "b.localhost", "127.0.0.1"):
        handshake(chain, key_pem, server.ca_file, name, tmp_path)


def test_certificate_goes_into_the_inventory_marked_acme(server, responder, caroot):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    order, _ = obtain(acme, responder, ["inv.localhost"])
    cert = x509.load_pem_x509_certificate(order.fullchain_pem.encode())
    entries, _ = inventory.read(caroot)
    (entry,) = [e for e in entries if e["names"] == ["inv.localhost"]]
    assert entry["source"] == "acme"
    assert entry["serial"] == format(cert.serial_number, "x")
    assert inventory.not_renewable(entry) == "acme"  # its key is with its ACME client: renew and rotate skip it
    listed = run_devcert("list", "--json", env=server.env)
    assert "inv.localhost" in listed.stdout, listed.stderr


def test_out_of_constraint_name_is_refused_with_the_way_to_widen(server, responder):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    csr = crypto_util.make_csr(leaf_key_pem(), ["www.example.com"])
    with pytest.raises(messages.Error) as info:
        acme.new_order(csr)
    err = info.value
    assert err.typ == "urn:ietf:params:acme:error:rejectedIdentifier"
    # the name, and how to widen the CA
    assert "'www.example.com' is outside this CA's name constraints" in err.detail
    assert "devcert ca init --force --permit www.example.com" in err.detail
    # the identifier it concerns (certbot's library lifts a lone subproblem's identifier)
    idents = [err.identifier] if err.identifier else [p.identifier for p in err.subproblems]
    assert [i.value for i in idents] == ["www.example.com"]


def test_renewal_and_ari(server, responder, tmp_path):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    first, _ = obtain(acme, responder, ["renew.localhost"])
    pem = first.fullchain_pem.encode()
    when, _retry = acme.renewal_time(pem)  # RFC 9773 renewalInfo
    cert = x509.load_pem_x509_certificate(pem)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert cert.not_valid_before_utc + life / 2 < when.replace(tzinfo=dt.timezone.utc) < cert.not_valid_after_utc
    second, key_pem = obtain(acme, responder, ["renew.localhost"])
    new = x509.load_pem_x509_certificate(second.fullchain_pem.encode())
    assert new.serial_number != cert.serial_number
    handshake(second.fullchain_pem.encode(), key_pem, server.ca_file, "renew.localhost", tmp_path)


def test_revocation_by_account_and_by_certificate_key(server, responder):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    order, key_pem = obtain(acme, responder, ["revoke.localhost"])
    cert = x509.load_pem_x509_certificate(order.fullchain_pem.encode())
    acme.revoke(cert, 1)
    with pytest.raises(messages.Error) as info:
        acme.revoke(cert, 1)
    assert info.value.code == "alreadyRevoked"
    # a revoked certificate's renewal window is in the past: renew now
    when, _ = acme.renewal_time(order.fullchain_pem.encode())
    assert when.replace(tzinfo=dt.timezone.utc) < dt.datetime.now(dt.timezone.utc)
    # revoking with the certificate's own key (no account): RFC 8555 7.6
    order2, key2 = obtain(acme, responder, ["revoke2.localhost"])
    cert2 = x509.load_pem_x509_certificate(order2.fullchain_pem.encode())
    leaf_jwk = jose.JWKEC(key=serialization.load_pem_private_key(key2, None))
    other = make_client(server.directory, server.ca_file, key=leaf_jwk)
    other.revoke(cert2, 0)


def test_account_lookup_update_deactivate_and_key_rollover(server, responder):
    key = ec_key()
    acme = make_client(server.directory, server.ca_file, key=key)
    # onlyReturnExisting for a key without an account
    with pytest.raises(messages.Error) as info:
        acme.new_account(messages.NewRegistration(only_return_existing=True))
    assert info.value.code == "accountDoesNotExist"
    reg = register(acme, email="a@example.com")
    assert reg.body.terms_of_service_agreed
    # the same key again returns the same account
    again = make_client(server.directory, server.ca_file, key=key)
    with pytest.raises(errors.ConflictError) as conflict:
        again.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    assert conflict.value.location == reg.uri
    updated = acme.update_registration(reg, messages.Registration(contact=("mailto:b@example.com",)))
    assert updated.body.contact == ("mailto:b@example.com",)
    # key rollover: the old key stops working, the new one is the same account
    new_key = ec_key()
    _rollover(acme, reg, new_key)
    rolled = make_client(server.directory, server.ca_file, key=new_key)
    rolled.net.account = reg
    order, _ = obtain(rolled, responder, ["rolled.localhost"])
    assert order.body.status == messages.STATUS_VALID
    with pytest.raises(messages.Error):
        obtain(acme, responder, ["old.localhost"])
    # deactivation: the account can do nothing more
    rolled.deactivate_registration(reg)
    with pytest.raises(messages.Error) as info:
        obtain(rolled, responder, ["after.localhost"])
    assert info.value.code == "unauthorized"


def _rollover(acme: client.ClientV2, reg: messages.RegistrationResource, new_key: jose.JWK) -> None:
    """RFC 8555 7.3.5 by hand: certbot's library has no key-change call."""
    url = acme.directory["keyChange"]
    inner = _jws(new_key, {"alg": "ES256", "jwk": new_key.public_key().to_json(), "url": url},
                 json.dumps({"account": reg.uri, "oldKey": acme.net.key.public_key().to_json()}).encode())
    resp = _signed_post(acme, url, inner)
    assert resp.status_code == 200, resp.text


def _signed_post(acme: client.ClientV2, target: str, payload: dict | bytes | None, **header) -> requests.Response:
    """A POST signed with the account's kid, with ``header`` fields overriding the protected header."""
    nonce = requests.head(acme.directory["newNonce"], verify=acme.net.verify_ssl, timeout=30 * UNIT).headers["Replay-Nonce"]
    fields = {"alg": "ES256", "nonce": nonce, "url": target, "kid": acme.net.account.uri, **header}
    return _post_jws(acme, target, fields, payload)


def _jws(key: jose.JWK, fields: dict, data: bytes) -> dict:
    """A flattened JWS signed by ``key`` (josepy's Header cannot carry ACME's url and nonce)."""
    protected = jose.b64encode(json.dumps({k: v for k, v in fields.items() if v is not None}).encode()).decode()
    body = jose.b64encode(data).decode()
    sig = jose.ES256.sign(key.key, f"{protected}.{body}".encode())
    return {"protected": protected, "payload": body, "signature": jose.b64encode(sig).decode()}


def _post_jws(acme: client.ClientV2, url: str, fields: dict, payload: dict | bytes | None,
              key: jose.JWK | None = None) -> requests.Response:
    key = key or acme.net.key
    data = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    envelope = _jws(key, fields, data)
    return requests.post(url, data=json.dumps(envelope), headers={"Content-Type": "application/jose+json"},
                         verify=acme.net.verify_ssl, timeout=30 * UNIT)


# --- the protocol's refusals -------------------------------------------------------------------


def _problem(resp: requests.Response) -> dict:
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.text
    assert resp.headers.get("Replay-Nonce"), "every response carries a fresh nonce"
    return resp.json()


def test_negative_protocol_cases(server, responder):
    acme = make_client(server.directory, server.ca_file)
    reg = register(acme)
    new_order = acme.directory["newOrder"]
    payload = {"identifiers": [{"type": "dns", "value": "neg.localhost"}]}

    ok = _signed_post(acme, new_order, payload)
    assert ok.status_code == 201 and ok.headers["Location"]
    assert 'rel="index"' in ok.headers["Link"]

    # replayed nonce: the same JWS sent twice
    nonce = requests.head(acme.directory["newNonce"], verify=server.ca_file, timeout=10 * UNIT).headers["Replay-Nonce"]
    fields = {"alg": "ES256", "nonce": nonce, "url": new_order, "kid": reg.uri}
    assert _post_jws(acme, new_order, fields, payload).status_code == 201
    replay = _post_jws(acme, new_order, fields, payload)
    assert (replay.status_code, _problem(replay)["type"]) == (400, "urn:ietf:params:acme:error:badNonce")
    # a made-up nonce
    bad = _signed_post(acme, new_order, payload, nonce="bm90LWEtbm9uY2U")
    assert _problem(bad)["type"] == "urn:ietf:params:acme:error:badNonce"

    # the url header names another resource
    wrong = _signed_post(acme, new_order, payload, url=acme.directory["newAccount"])
    assert (wrong.status_code, _problem(wrong)["type"]) == (403, "urn:ietf:params:acme:error:unauthorized")

    # a signature by another key
    forged = _post_jws(acme, new_order, {**fields, "nonce": requests.head(
        acme.directory["newNonce"], verify=server.ca_file, timeout=10 * UNIT).headers["Replay-Nonce"]}, payload, key=ec_key())
    assert (forged.status_code, _problem(forged)["type"]) == (400, "urn:ietf:params:acme:error:malformed")

    # a JWS that is not one; alg none; HS256; no JWS content type
    for body, ctype, kind in [
        (b"{not json", "application/jose+json", "malformed"),
        (json.dumps({"protected": "e30", "payload": "", "signature": ""}).encode(), "application/jose+json",
         "badSignatureAlgorithm"),
        (json.dumps({"payload": "e30"}).encode(), "application/jose+json", "malformed"),
        (b"{}", "application/json", "malformed"),
    ]:
        resp = requests.post(new_order, data=body, headers={"Content-Type": ctype}, verify=server.ca_file, timeout=10 * UNIT)
        assert _problem(resp)["type"] == f"urn:ietf:params:acme:error:{kind}", (body, resp.text)
    hs = _signed_post(acme, new_order, payload, alg="HS256")
    assert _problem(hs)["type"] == "urn:ietf:params:acme:error:badSignatureAlgorithm"
    assert "ES256" in _problem(hs)["algorithms"]

    # an oversized body is refused before it is read whole
    big = requests.post(new_order, data=b"x" * (1024 * 1024), headers={"Content-Type": "application/jose+json"},
                        verify=server.ca_file, timeout=30 * UNIT)
    assert (big.status_code, _problem(big)["type"]) == (413, "urn:ietf:params:acme:error:malformed")

    # an unknown account, a kid of another server
    ghost = _signed_post(acme, new_order, payload, kid=reg.uri.rsplit("/", 1)[0] + "/nope")
    assert _problem(ghost)["type"] == "urn:ietf:params:acme:error:accountDoesNotExist"

    # finalize before the authorizations are done
    order_url = ok.headers["Location"]
    finalize = ok.json()["finalize"]
    csr = crypto_util.make_csr(leaf_key_pem(), ["neg.localhost"])
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    early = _signed_post(acme, finalize, {"csr": jose.b64encode(der).decode()})
    assert (early.status_code, _problem(early)["type"]) == (403, "urn:ietf:params:acme:error:orderNotReady")

    # POST-as-GET is required; a plain GET is refused
    get = requests.get(order_url, verify=server.ca_file, timeout=10 * UNIT)
    assert (get.status_code, _problem(get)["type"]) == (405, "urn:ietf:params:acme:error:malformed")
    # another account may not read this order
    stranger = make_client(server.directory, server.ca_file)
    register(stranger)
    peek = _signed_post(stranger, order_url, None)
    assert (peek.status_code, _problem(peek)["type"]) == (403, "urn:ietf:params:acme:error:unauthorized")


def test_finalize_with_a_csr_that_does_not_match_the_order(server, responder):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    order = answer_http01(acme, responder, crypto_util.make_csr(leaf_key_pem(), ["match.localhost"]))
    acme.poll_authorizations(order, dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
    other = crypto_util.make_csr(leaf_key_pem(), ["match.localhost", "extra.localhost"])
    with pytest.raises(messages.Error) as info:
        acme.finalize_order(order.update(csr_pem=other), dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
    assert info.value.code == "badCSR"
    # a P-521 key is refused as a key type browsers do not accept
    p521 = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(messages.Error) as info:
        acme.finalize_order(order.update(csr_pem=crypto_util.make_csr(p521, ["match.localhost"])),
                            dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
    assert info.value.code == "badCSR" and "curve" in info.value.detail


def test_failed_http01_makes_the_order_invalid(server, responder):
    acme = make_client(server.directory, server.ca_file)
    register(acme)
    csr = crypto_util.make_csr(leaf_key_pem(), ["nobody.localhost"])
    order = acme.new_order(csr)
    chall = next(c for c in order.authorizations[0].body.challenges if isinstance(c.chall, challenges.HTTP01))
    response, _validation = chall.response_and_validation(acme.net.key)
    responder.tokens[chall.chall.encode("token")] = "wrong"
    acme.answer_challenge(chall, response)
    with pytest.raises(errors.ValidationError) as info:
        acme.poll_authorizations(order, dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
    (failed,) = info.value.failed_authzrs
    err = failed.body.challenges[0].error if failed.body.challenges[0].error else \
        next(c.error for c in failed.body.challenges if c.error)
    assert err.code == "unauthorized"


# --- state across a restart --------------------------------------------------------------------


def test_account_survives_a_restart(caroot, responder, tmp_path):
    key = ec_key()
    with acme_server(caroot, "--http-port", str(responder.port)) as first:
        acme = make_client(first.directory, first.ca_file, key=key)
        reg = register(acme)
    with acme_server(caroot, "--http-port", str(responder.port)) as second:
        acme = make_client(second.directory, second.ca_file, key=key)
        # the account of the first run (its id), now on the new port
        with pytest.raises(errors.ConflictError) as conflict:
            acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
        assert conflict.value.location.rsplit("/", 1)[1] == reg.uri.rsplit("/", 1)[1]
        acme.net.account = messages.RegistrationResource(body=reg.body, uri=conflict.value.location)
        order, key_pem = obtain(acme, responder, ["restart.localhost"])
        handshake(order.fullchain_pem.encode(), key_pem, second.ca_file, "restart.localhost", tmp_path)
    db = sqlite3.connect(caroot / "acme" / "state.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM accounts").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM certs WHERE recorded = 1").fetchone()[0] == 1


def test_json_line_and_human_output(caroot):
    with acme_server(caroot) as s:
        assert s.directory.startswith("https://127.0.0.1:") and s.directory.endswith("/directory")
        assert Path(s.ca_file) == caroot / "rootCA.pem"
        # the directory is served over TLS on a devcert certificate
        d = requests.get(s.directory, verify=s.ca_file, timeout=10 * UNIT).json()
        assert {"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"} <= set(d)
    assert s.rest_of_stdout == ""  # nothing but the one JSON line on stdout


# --- dns-01, wildcards ------------------------------------------------------------------------


def test_dns01_and_a_wildcard(caroot, tmp_path):
    dns = TxtServer()
    try:
        with acme_server(caroot, "--dns-server", f"127.0.0.1:{dns.port}") as server:
            acme = make_client(server.directory, server.ca_file)
            register(acme)
            key_pem = leaf_key_pem()
            order = acme.new_order(crypto_util.make_csr(key_pem, ["*.wild.localhost", "dns.localhost"]))
            for authz in order.authorizations:
                types = {type(c.chall) for c in authz.body.challenges}
                if authz.body.wildcard:
                    assert types == {challenges.DNS01}  # a wildcard is proven only in DNS
                chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01))
                name = f"_acme-challenge.{authz.body.identifier.value}."
                dns.records[name] = [chall.validation(acme.net.key)]
                acme.answer_challenge(chall, chall.response(acme.net.key))
            done = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
            chain = done.fullchain_pem.encode()
            handshake(chain, key_pem, server.ca_file, "any.wild.localhost", tmp_path)
            handshake(chain, key_pem, server.ca_file, "dns.localhost", tmp_path)
            # a TXT record with the wrong value fails the challenge
            order = acme.new_order(crypto_util.make_csr(leaf_key_pem(), ["nodns.localhost"]))
            chall = next(c for c in order.authorizations[0].body.challenges if isinstance(c.chall, challenges.DNS01))
            dns.records["_acme-challenge.nodns.localhost."] = ["not-the-value"]
            acme.answer_challenge(chall, chall.response(acme.net.key))
            with pytest.raises(errors.ValidationError):
                acme.poll_authorizations(order, dt.datetime.now() + dt.timedelta(seconds=30 * UNIT))
    finally:
        dns.close()


# --- the command line --------------------------------------------------------------------------


def test_bad_options_are_one_error_line(cli_env):
    for args, words in [(["--days", "900"], "at most 825"), (["--port", "70000"], "--port"),
                        (["--dns-server", "nowhere"], "--dns-server")]:
        result = run_devcert("acme", *args, env=cli_env, timeout=30 * UNIT)
        assert result.returncode == 2, (args, result.stderr)
        assert words in one_error_line(result.stderr)


def test_port_in_use_is_one_error_line(cli_env):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_devcert("acme", "--port", str(port), env=cli_env, timeout=60 * UNIT)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in one_error_line(result.stderr)


def test_human_output_has_the_client_lines(caroot, cli_env):

    proc = subprocess.Popen([devcert_exe(), "acme", "--port", "0", "--http-port", "5002"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    # a reader thread: a selector on a buffered pipe misses lines readline() already buffered
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("  acme.sh --issue") for line in lines) or proc.poll() is not None,
                 what="the client lines")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30 * UNIT)
        reader.join(30 * UNIT)
    text = "\n".join(lines)
    directory = lines[0].split()[-1]
    ca_file = str(caroot / "rootCA.pem")
    assert lines[0].startswith("ACME directory: https://127.0.0.1:") and directory.endswith("/directory")
    assert f"CA file:        {ca_file}" in text
    assert f"REQUESTS_CA_BUNDLE={ca_file} certbot certonly --standalone --http-01-port 5002 --server {directory}" in text
    assert f"LEGO_CA_CERTIFICATES={ca_file} lego --server {directory}" in text and "--http.port :5002" in text
    assert f"    acme_ca {directory}" in text and f"    acme_ca_root {ca_file}" in text
    assert f"        trusted_roots {ca_file}" in text
    assert f"--certificatesresolvers.devcert.acme.caserver={directory}" in text
    assert "kind: ClusterIssuer" in text and "caBundle: " in text
    assert f"acme.sh --issue --server {directory} --ca-bundle {ca_file}" in text


def test_name_option_puts_the_name_on_the_server_certificate_and_in_the_url(caroot):
    with acme_server(caroot, "--name", "acme.localhost") as s:
        assert s.directory == f"https://acme.localhost:{s.info['port']}/directory"
        peer = connect(s.info["port"], s.ca_file, "acme.localhost")  # trusting only the devcert CA
        assert "acme.localhost" in san_names(peer)
        # URLs in the directory follow the Host the client used
        d = requests.get(f"https://127.0.0.1:{s.info['port']}/directory", verify=s.ca_file, timeout=10 * UNIT).json()
        assert d["newOrder"] == f"https://127.0.0.1:{s.info['port']}/new-order"
