"""``devcert acme``: an RFC 8555 ACME server on the local CA, as an aiohttp application.

Every request is handled on the event loop's thread, and each state change is one SQLite
transaction in :mod:`.store`, so concurrent requests (four lego runs at once) never see half
an order. Challenges are validated in tasks (:mod:`.challenges`); signing happens inside the
transaction that makes the order valid. URLs are built from the request's Host, so a client
that reaches the server by another name (a container's ``host.docker.internal``) gets URLs it
can use, and the JWS ``url`` check compares against exactly what the client requested.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import secrets
import socket
import ssl
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import josepy
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .. import inventory
from ..ca import LocalCA
from ..errors import AcmeProblem, AcmeServerError, CSRError, DevcertError, NameNotPermittedError, UsageError
from ..files import PUBLIC, ensure_private_dir
from ..issue import Leaf, check_days, csr_names, load_csr
from ..names import Name, parse_name
from ..signals import serve_until_signal
from . import challenges, jws, problems
from .store import STATE_DIR, Store, now, parse_stamp, stamp

#: The largest request body read (RFC 8555 leaves it to the server): a CSR with a few hundred
#: names fits in a few KiB; nothing an ACME client sends comes near 64 KiB.
MAX_BODY = 64 * 1024
#: Nonces live at most this long, and at most this many are outstanding (oldest dropped first).
NONCE_LIFETIME = 3600.0
MAX_NONCES = 100_000
ORDER_LIFETIME = dt.timedelta(days=1)
#: Leaves are short-lived by default, as with public ACME CAs: clients renew on their own.
DEFAULT_DAYS = 90
#: Clients poll with these delays while a challenge or an order is processing.
RETRY_AFTER = "1"
#: How long a challenge POST waits for its validation before answering "processing".
VALIDATION_WAIT = 2.0
#: ARI clients ask again after this long (RFC 9773 4.3.3).
ARI_RETRY_AFTER = str(6 * 3600)
MAX_IDENTIFIERS = 100
JOSE = "application/jose+json"
REVOCATION_REASONS = {0, 1, 3, 4, 5, 6, 8, 9, 10}

TERMS = (
    "devcert acme: a development ACME server on this machine's local devcert CA.\n"
    "It issues certificates only for names inside the CA's name constraints, trusted only where\n"
    "the devcert CA is installed. There are no other terms.\n"
)


class Config(NamedTuple):
    """Where to listen, how long certificates last, how challenges are reached; ``url_host``
    is the host of the directory URL printed (a name the server's certificate covers), else
    the bound address."""

    host: str = "127.0.0.1"
    port: int = 0
    days: int = DEFAULT_DAYS
    settings: challenges.Settings = challenges.Settings()
    url_host: str | None = None


class Nonces:
    """Single-use nonces with an expiry, in memory (a restart invalidates them: clients retry)."""

    def __init__(self) -> None:
        self._issued: dict[str, float] = {}

    def new(self) -> str:
        if len(self._issued) >= MAX_NONCES:
            for old in list(self._issued)[: MAX_NONCES // 10]:  # dicts keep insertion order
                del self._issued[old]
        nonce = secrets.token_urlsafe(16)
        self._issued[nonce] = time.monotonic() + NONCE_LIFETIME
        return nonce

    def use(self, nonce: str) -> bool:
        expires = self._issued.pop(nonce, None)
        return expires is not None and expires > time.monotonic()


def _identifier(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "value": value}


def _serial_bytes(serial: int) -> bytes:
    """The DER INTEGER content octets of a (positive) serial: what an ARI certID encodes."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def ari_id(cert: x509.Certificate) -> str:
    """RFC 9773 4.1: base64url(AKI keyIdentifier) "." base64url(serial)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    return f"{josepy.b64encode(aki).decode()}.{josepy.b64encode(_serial_bytes(cert.serial_number)).decode()}"


def renewal_window(not_before: dt.datetime, not_after: dt.datetime, revoked: bool) -> tuple[dt.datetime, dt.datetime]:
    """When to renew: the middle of the last third of the lifetime; a revoked one at once."""
    if revoked:
        t = now()
        return t - dt.timedelta(hours=2), t - dt.timedelta(hours=1)
    life = not_after - not_before
    return not_before + life * 2 / 3, not_before + life * 5 / 6


class AcmeServer:
    """The ACME application over a CA and a state folder; :meth:`start` binds, :meth:`stop` closes."""

    def __init__(self, ca: LocalCA, tls: ssl.SSLContext, config: Config = Config(),
                 state_dir: Path | None = None, log: Callable[[str], None] | None = None,
                 word: Callable[[DevcertError], str] = str):
        """``word`` turns a core error into the problem detail a client shows its user: the CLI
        passes its own wording (with the command that widens the CA); the default is neutral."""
        self.ca, self.tls, self.config, self.word = ca, tls, config, word
        self.days = check_days(config.days)
        if ca.path is None and state_dir is None:
            raise UsageError("an ACME server needs a folder for its state: a CA loaded from CAROOT")
        self.state_dir = ensure_private_dir(state_dir or (ca.path / STATE_DIR))  # type: ignore[operator]
        self.cert_dir = ensure_private_dir(self.state_dir / "certs")
        self.store = Store(self.state_dir)
        self.nonces = Nonces()
        self.log = log or (lambda _line: None)
        self.port = 0
        self.address = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.app = self._make_app()

    # -- lifecycle ---------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._middleware])
        r = app.router
        r.add_get("/directory", self.directory)
        r.add_route("HEAD", "/new-nonce", self.new_nonce)
        r.add_get("/new-nonce", self.new_nonce, allow_head=False)
        r.add_get("/terms", self.terms)
        r.add_post("/new-account", self.new_account)
        r.add_post("/new-order", self.new_order)
        r.add_post("/key-change", self.key_change)
        r.add_post("/revoke-cert", self.revoke_cert)
        r.add_get("/renewal-info/{cert_id}", self.renewal_info)
        r.add_post("/acct/{id}", self.account)
        r.add_post("/acct/{id}/orders", self.account_orders)
        r.add_post("/order/{id}", self.order)
        r.add_post("/order/{id}/finalize", self.finalize)
        r.add_post("/authz/{id}", self.authz)
        r.add_post("/chall/{id}", self.challenge)
        r.add_post("/cert/{id}", self.certificate)
        return app

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((self.config.host, self.config.port))
        except OSError as err:
            sock.close()
            await self._runner.cleanup()
            raise AcmeServerError(f"cannot listen on {self.config.host} port {self.config.port}: "
                                  f"{err.strerror or err}") from None
        site = web.SockSite(self._runner, sock, ssl_context=self.tls)
        await site.start()
        self.address, self.port = sock.getsockname()[:2]
        self._record_pending()
        for chall in self.store.processing_challenges():
            self._spawn(self._validate(chall["id"]))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.store.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def base_url(self) -> str:
        """The URL clients on this machine use (the bound address; a name when --host was one)."""
        host = self.config.url_host or self.address
        try:
            if ipaddress.ip_address(host).is_unspecified:
                host = "::1" if ":" in host else "127.0.0.1"
        except ValueError:
            pass
        return f"https://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def directory_url(self) -> str:
        return f"{self.base_url}/directory"

    # -- plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except AcmeProblem as problem:
            response = self._problem(problem)
        except web.HTTPNotFound:
            response = self._problem(problems.not_found("resource"))
        except web.HTTPMethodNotAllowed as err:
            response = self._problem(AcmeProblem("malformed", f"method {request.method} is not allowed here"
                                                 f"{' (use POST-as-GET)' if request.method == 'GET' else ''}", 405))
            response.headers["Allow"] = ", ".join(sorted(err.allowed_methods))
        except web.HTTPRequestEntityTooLarge:
            response = self._problem(problems.malformed(f"the request body is larger than {MAX_BODY} bytes", 413))
        except DevcertError as err:
            response = self._problem(problems.server_internal(str(err)))
        response.headers["Replay-Nonce"] = self.nonces.new()
        response.headers.setdefault("Cache-Control", "no-store")
        if request.path != "/directory":
            response.headers.add("Link", f'<{self._url(request, "/directory")}>;rel="index"')
        return response

    def _problem(self, problem: AcmeProblem) -> web.Response:
        response = web.Response(status=problem.status, text=json.dumps(problems.document(problem)),
                                content_type=problems.CONTENT_TYPE)
        for key, value in problem.headers.items():
            response.headers[key] = value
        return response

    @staticmethod
    def _url(request: web.Request, path: str) -> str:
        return f"https://{request.host}{path}"

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        response = web.Response(status=status, text=json.dumps(obj), content_type="application/json")
        for key, value in (headers or {}).items():
            response.headers.add(key, value)
        return response

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise problems.malformed(f"the request body is larger than {MAX_BODY} bytes", 413)
        if request.content_type != JOSE:
            raise problems.malformed(f"the Content-Type must be {JOSE}, not {request.content_type!r}", 415)
        return await request.read()

    def _account_key(self, request: web.Request) -> Callable[[str], josepy.JWK]:
        def lookup(kid: str) -> josepy.JWK:
            row = self.store.account(_account_id(kid))
            if row is None:
                raise problems.account_does_not_exist(f"no account {kid} on this server: create one with newAccount")
            if row["status"] != "valid":
                raise problems.unauthorized(f"the account {kid} is {row['status']}")
            return josepy.JWK.from_json(json.loads(row["jwk"]))

        return lookup

    async def _verify(self, request: web.Request, **kwargs: Any) -> jws.Verified:
        body = await self._body(request)
        return jws.verify(body, url=self._url(request, request.path), use_nonce=self.nonces.use,
                          account_key=self._account_key(request), **kwargs)

    def _account_id(self, request: web.Request, verified: jws.Verified) -> str:
        assert verified.kid is not None
        return _account_id(verified.kid)

    async def _post_as_get(self, request: web.Request) -> tuple[jws.Verified, str]:
        verified = await self._verify(request)
        if verified.payload != b"":
            raise problems.malformed("this resource is read with POST-as-GET: an empty payload")
        return verified, self._account_id(request, verified)

    def _owned(self, row: Any, account_id: str, what: str) -> Any:
        if row is None:
            raise problems.not_found(what)
        if row["account"] != account_id:
            raise problems.unauthorized(f"this {what} belongs to another account")
        return row

    # -- directory, nonces, terms ------------------------------------------------------------

    async def directory(self, request: web.Request) -> web.Response:
        u = lambda path: self._url(request, path)  # noqa: E731
        return self._json({
            "newNonce": u("/new-nonce"), "newAccount": u("/new-account"), "newOrder": u("/new-order"),
            "revokeCert": u("/revoke-cert"), "keyChange": u("/key-change"), "renewalInfo": u("/renewal-info"),
            "meta": {"termsOfService": u("/terms"), "externalAccountRequired": False},
        })

    async def new_nonce(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if request.method == "HEAD" else 204)

    async def terms(self, request: web.Request) -> web.Response:
        return web.Response(text=TERMS, content_type="text/plain")

    # -- accounts ----------------------------------------------------------------------------

    def _account_json(self, request: web.Request, row: Any) -> dict[str, Any]:
        return {"status": row["status"], "contact": json.loads(row["contact"]),
                "termsOfServiceAgreed": bool(row["tos"]), "orders": self._url(request, f"/acct/{row['id']}/orders")}

    @staticmethod
    def _contact(payload: dict[str, Any]) -> list[str]:
        contact = payload.get("contact", [])
        if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
            raise AcmeProblem("invalidContact", "contact must be a list of mailto: URLs")
        for item in contact:
            if not item.startswith("mailto:"):
                raise AcmeProblem("unsupportedContact", f"only mailto: contacts are supported, not {item!r}")
            address = item[len("mailto:"):]
            if "@" not in address or "," in address or "?" in address or any(ch.isspace() for ch in address):
                raise AcmeProblem("invalidContact", f"{item!r} is not one mailto: address")
        return contact

    async def new_account(self, request: web.Request) -> web.Response:
        verified = await self._verify(request, jwk_only=True)
        payload = verified.json()
        thumb = jws.thumbprint(verified.key)
        existing = self.store.account_by_thumbprint(thumb)
        if existing is not None:
            location = self._url(request, f"/acct/{existing['id']}")
            if existing["status"] != "valid":
                raise problems.unauthorized(f"the account {location} of this key is {existing['status']}")
            return self._json(self._account_json(request, existing), 200, {"Location": location})
        if payload.get("onlyReturnExisting") is True:
            raise problems.account_does_not_exist("no account has this key (onlyReturnExisting was set)")
        contact = self._contact(payload)
        tos = payload.get("termsOfServiceAgreed", False)
        if not isinstance(tos, bool):
            raise problems.malformed("termsOfServiceAgreed must be true or false")
        if payload.get("externalAccountBinding") is not None:
            raise problems.malformed("this server does not use external account binding")
        account_id = self.store.add_account(thumb, jws.key_json(verified.key), contact, tos)
        self.log(f"new account {account_id}")
        row = self.store.account(account_id)
        return self._json(self._account_json(request, row), 201, {"Location": self._url(request, f"/acct/{account_id}")})

    async def account(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        if account_id != request.match_info["id"]:
            raise problems.unauthorized("the JWS kid is not this account")
        if verified.payload != b"":
            payload = verified.json()
            if "contact" in payload:
                self.store.update_account(account_id, contact=json.dumps(self._contact(payload)))
            if payload.get("termsOfServiceAgreed") is True:
                self.store.update_account(account_id, tos=1)
            status = payload.get("status")
            if status is not None:
                if status != "deactivated":
                    raise problems.malformed("an account's status can only be changed to \"deactivated\"")
                self.store.update_account(account_id, status="deactivated")
                self.log(f"account {account_id} deactivated")
        return self._json(self._account_json(request, self.store.account(account_id)))

    async def account_orders(self, request: web.Request) -> web.Response:
        verified, account_id = await self._post_as_get(request)
        if account_id != request.match_info["id"]:
            raise problems.unauthorized("the JWS kid is not this account")
        return self._json({"orders": [self._url(request, f"/order/{o['id']}") for o in self.store.orders_of(account_id)]})

    async def key_change(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        inner = jws.verify(verified.payload, url=self._url(request, request.path), use_nonce=self.nonces.use,
                           account_key=self._account_key(request), jwk_only=True, nonce=False)
        payload = inner.json()
        if payload.get("account") != verified.kid:
            raise problems.malformed("the key change's account is not the outer JWS's kid")
        try:
            old = jws.key_from_json(payload.get("oldKey"))
        except AcmeProblem:
            raise problems.malformed("the key change's oldKey is not a public key") from None
        if jws.thumbprint(old) != jws.thumbprint(verified.key):
            raise problems.malformed("the key change's oldKey is not the account's current key")
        thumb = jws.thumbprint(inner.key)
        other = self.store.account_by_thumbprint(thumb)
        if other is not None:
            raise AcmeProblem("conflict", "the new key already belongs to an account", 409,
                              headers={"Location": self._url(request, f"/acct/{other['id']}")})
        self.store.update_account(account_id, thumbprint=thumb, jwk=jws.key_json(inner.key))
        self.log(f"account {account_id} rolled over to a new key")
        return self._json(self._account_json(request, self.store.account(account_id)))

    # -- orders ------------------------------------------------------------------------------

    def _check_identifier(self, ident: Any) -> tuple[dict[str, str], Name]:
        if not isinstance(ident, dict) or not isinstance(ident.get("type"), str) or \
                not isinstance(ident.get("value"), str):
            raise problems.malformed("each identifier must be an object with a type and a value")
        kind, value = ident["type"], ident["value"]
        if kind not in ("dns", "ip"):
            raise problems.unsupported_identifier(f"identifier type {kind!r} is not supported (dns and ip are)",
                                                  _identifier(kind, value))
        try:
            name = parse_name(value)
        except UsageError as err:
            raise problems.rejected_identifier(str(err), _identifier(kind, value)) from None
        if name.kind != kind:
            raise problems.rejected_identifier(f"{value!r} is not an identifier of type {kind}",
                                               _identifier(kind, value))
        if kind == "ip" and value != name.value:
            raise problems.malformed(f"the IP identifier {value!r} must be written as {name.value!r} (RFC 8738)")
        try:
            self.ca.check_permitted([name])
        except NameNotPermittedError as err:
            raise problems.rejected_identifier(self.word(err), _identifier(kind, name.value)) from None
        return _identifier(kind, name.value), name

    async def new_order(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        payload = verified.json()
        raw = payload.get("identifiers")
        if not isinstance(raw, list) or not raw:
            raise problems.malformed("an order needs a non-empty list of identifiers")
        if len(raw) > MAX_IDENTIFIERS:
            raise problems.rejected_identifier(f"at most {MAX_IDENTIFIERS} identifiers per order", raw[0])
        for key in ("notBefore", "notAfter"):
            if payload.get(key) is not None:
                raise problems.malformed(f"{key} is not supported: certificates start now and last "
                                         f"{self.days} days")
        identifiers: list[dict[str, str]] = []
        kinds: list[list[str]] = []
        for ident in raw:
            checked, name = self._check_identifier(ident)
            if checked in identifiers:
                continue
            identifiers.append(checked)
            if name.is_wildcard:
                kinds.append(["dns-01"])
            elif name.kind == "ip":
                kinds.append(["http-01", "tls-alpn-01"])  # RFC 8738 7: no dns-01 for an IP
            else:
                kinds.append(["http-01", "tls-alpn-01", "dns-01"])
        replaces = payload.get("replaces")
        if replaces is not None:
            if not isinstance(replaces, str):
                raise problems.malformed("replaces must be an ARI certificate identifier")
            old = self.store.cert_by_ari_id(replaces)
            if old is None:
                raise problems.malformed(f"replaces names no certificate of this server: {replaces}")
            if old["account"] != account_id:
                raise problems.unauthorized("replaces names a certificate of another account")
            if old["replaced_by"] is not None:
                raise AcmeProblem("alreadyReplaced", "that certificate was already replaced by another order", 409)
        order_id = self.store.add_order(account_id, identifiers, now() + ORDER_LIFETIME, kinds, replaces)
        return self._json(self._order_json(request, self.store.order(order_id)), 201,
                          {"Location": self._url(request, f"/order/{order_id}")})

    def _order_json(self, request: web.Request, row: Any) -> dict[str, Any]:
        status = row["status"]
        if status in ("pending", "ready") and parse_stamp(row["expires"]) < now():
            self.store.expire(now())
            row = self.store.order(row["id"])
            status = row["status"]
        body: dict[str, Any] = {
            "status": status, "expires": row["expires"], "identifiers": json.loads(row["identifiers"]),
            "authorizations": [self._url(request, f"/authz/{a['id']}") for a in self.store.authzs_of(row["id"])],
            "finalize": self._url(request, f"/order/{row['id']}/finalize"),
        }
        if row["cert"]:
            body["certificate"] = self._url(request, f"/cert/{row['cert']}")
            cert = self.store.cert(row["cert"])
            body["notBefore"], body["notAfter"] = cert["not_before"], cert["not_after"]
        if row["error"]:
            body["error"] = json.loads(row["error"])
        if row["replaces"]:
            body["replaces"] = row["replaces"]
        return body

    async def order(self, request: web.Request) -> web.Response:
        _verified, account_id = await self._post_as_get(request)
        row = self._owned(self.store.order(request.match_info["id"]), account_id, "order")
        headers = {"Retry-After": RETRY_AFTER} if row["status"] in ("pending", "processing") else {}
        return self._json(self._order_json(request, row), headers=headers)

    async def finalize(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        order_id = request.match_info["id"]
        row = self._owned(self.store.order(order_id), account_id, "order")
        if row["status"] != "ready":
            raise problems.order_not_ready(f"the order is {row['status']}, not ready"
                                           + (": complete its authorizations first" if row["status"] == "pending" else ""))
        csr_text = verified.json().get("csr")
        if not isinstance(csr_text, str):
            raise problems.malformed("finalize needs a csr (base64url DER)")
        try:
            der = josepy.b64decode(csr_text)
            csr = load_csr(der)
            names = csr_names(csr)
        except (CSRError, ValueError, TypeError) as err:
            raise problems.bad_csr(f"{err}") from None
        want = {(i["type"], i["value"]) for i in json.loads(row["identifiers"])}
        have = {(n.kind, n.value) for n in names}
        if have != want:
            raise problems.bad_csr(f"the CSR's names ({', '.join(sorted(v for _k, v in have))}) must be exactly the "
                                   f"order's ({', '.join(sorted(v for _k, v in want))})")
        for cn in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            if (("ip" if _is_ip(str(cn.value)) else "dns"), str(cn.value).lower()) not in want:
                raise problems.bad_csr(f"the CSR's common name {cn.value!r} is not one of the order's names")

        def sign() -> dict[str, str]:
            try:
                leaf = self.ca.sign_csr(der, days=self.days)
            except CSRError as err:
                raise problems.bad_csr(self.word(err)) from None
            except NameNotPermittedError as err:
                raise problems.rejected_identifier(self.word(err), next(iter(json.loads(row["identifiers"])))) from None
            return {"serial": format(leaf.cert.serial_number, "x"), "ari_id": ari_id(leaf.cert),
                    "chain": (leaf.cert_pem + self.ca.cert_pem).decode(),
                    "not_before": stamp(leaf.cert.not_valid_before_utc), "not_after": stamp(leaf.not_after)}

        cert_id = self.store.issue(order_id, sign)
        if cert_id is None:
            raise problems.order_not_ready("the order is no longer ready")
        self.log(f"issued {self.store.cert(cert_id)['serial']} for {', '.join(v for _k, v in sorted(want))}")
        # The inventory is a convenience and lives in files: recorded after the commit, and at
        # the next start for a certificate a kill left unrecorded (Store.unrecorded).
        self._record(cert_id)
        return self._json(self._order_json(request, self.store.order(order_id)),
                          headers={"Location": self._url(request, f"/order/{order_id}")})

    # -- authorizations and challenges -------------------------------------------------------

    def _challenge_json(self, request: web.Request, row: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"type": row["type"], "url": self._url(request, f"/chall/{row['id']}"),
                                "token": row["token"], "status": row["status"]}
        if row["validated"]:
            body["validated"] = row["validated"]
        if row["error"]:
            body["error"] = json.loads(row["error"])
        return body

    def _authz_json(self, request: web.Request, row: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "identifier": _identifier(row["type"], row["value"]), "status": row["status"], "expires": row["expires"],
            "challenges": [self._challenge_json(request, c) for c in self.store.challenges_of(row["id"])],
        }
        if row["wildcard"]:
            body["wildcard"] = True
        return body

    async def authz(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        row = self._owned(self.store.authz(request.match_info["id"]), account_id, "authorization")
        if verified.payload != b"":
            if verified.json().get("status") != "deactivated":
                raise problems.malformed("an authorization's status can only be changed to \"deactivated\"")
            if row["status"] in ("pending", "valid"):
                self.store.deactivate_authz(row["id"])
            row = self.store.authz(row["id"])
        processing = any(c["status"] == "processing" for c in self.store.challenges_of(row["id"]))
        headers = {"Retry-After": RETRY_AFTER} if processing else {}
        return self._json(self._authz_json(request, row), headers=headers)

    async def challenge(self, request: web.Request) -> web.Response:
        verified = await self._verify(request)
        account_id = self._account_id(request, verified)
        chall = self.store.challenge(request.match_info["id"])
        if chall is None:
            raise problems.not_found("challenge")
        authz = self._owned(self.store.authz(chall["authz"]), account_id, "challenge")
        if verified.payload != b"":
            verified.json()  # the client's "{}": respond to the challenge
            if authz["status"] != "pending":
                if chall["status"] == "pending":
                    raise problems.malformed(f"the authorization is {authz['status']}: this challenge cannot start")
            elif self.store.start_challenge(chall["id"]):
                task = self._spawn(self._validate(chall["id"]))
                # A local challenge is settled in milliseconds: answering with its result saves the
                # client a poll and its Retry-After sleep. A slow one still answers "processing".
                await asyncio.wait({task}, timeout=VALIDATION_WAIT)
            chall = self.store.challenge(chall["id"])
        headers = {"Link": f'<{self._url(request, "/authz/" + authz["id"])}>;rel="up"'}
        if chall["status"] == "processing":
            headers["Retry-After"] = RETRY_AFTER
        return self._json(self._challenge_json(request, chall), headers=headers)

    async def _validate(self, challenge_id: str) -> None:
        chall = self.store.challenge(challenge_id)
        authz = self.store.authz(chall["authz"])
        account = self.store.account(authz["account"])
        key_authz = challenges.key_authorization(chall["token"], jws.thumbprint(
            josepy.JWK.from_json(json.loads(account["jwk"]))))
        kind, name, settings = authz["type"], authz["value"], self.config.settings
        try:
            if chall["type"] == "http-01":
                assert self._session is not None
                result = await challenges.http_01(self._session, kind, name, chall["token"], key_authz, settings)
            elif chall["type"] == "tls-alpn-01":
                result = await challenges.tls_alpn_01(kind, name, key_authz, settings)
            else:
                result = await challenges.dns_01(name, key_authz, settings)
        except Exception as err:  # a validator bug must fail the challenge, not leave it processing
            result = ("serverInternal", f"validation failed: {type(err).__name__}: {err}")
        error = None
        if result is not None:
            problem_kind, detail = result
            error = {"type": problems.PREFIX + problem_kind, "detail": detail, "status": 403,
                     "identifier": _identifier(kind, name)}
            self.log(f"{chall['type']} for {name} failed: {detail}")
        self.store.finish_challenge(challenge_id, error)

    # -- certificates ------------------------------------------------------------------------

    async def certificate(self, request: web.Request) -> web.Response:
        _verified, account_id = await self._post_as_get(request)
        row = self._owned(self.store.cert(request.match_info["id"]), account_id, "certificate")
        return web.Response(body=row["chain"].encode(), content_type="application/pem-certificate-chain")

    async def revoke_cert(self, request: web.Request) -> web.Response:
        verified = await self._verify(request, kid_only=False)
        payload = verified.json()
        try:
            der = josepy.b64decode(payload.get("certificate", ""))
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, TypeError):
            raise problems.malformed("certificate must be a base64url DER certificate") from None
        row = self.store.cert_by_serial(format(cert.serial_number, "x"))
        if row is None or row["chain"].encode().find(cert.public_bytes(Encoding.PEM)) != 0:
            raise problems.not_found("certificate issued by this server")
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or isinstance(reason, bool) or reason not in REVOCATION_REASONS:
            raise AcmeProblem("badRevocationReason", f"reason {reason!r} is not a revocation reason this server "
                                                     f"accepts ({sorted(REVOCATION_REASONS)})")
        if verified.kid is not None:
            if self._account_id(request, verified) != row["account"]:
                raise problems.unauthorized("this certificate was issued to another account")
        elif verified.key.key.public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
            raise problems.unauthorized("the JWS key is neither the account's nor the certificate's")
        if not self.store.revoke(row["id"], reason):
            raise AcmeProblem("alreadyRevoked", "the certificate is already revoked")
        self.log(f"revoked {row['serial']}")
        return web.Response(status=200)

    async def renewal_info(self, request: web.Request) -> web.Response:
        row = self.store.cert_by_ari_id(request.match_info["cert_id"])
        if row is None:
            raise problems.not_found("certificate")
        start, end = renewal_window(parse_stamp(row["not_before"]), parse_stamp(row["not_after"]), bool(row["revoked"]))
        return self._json({"suggestedWindow": {"start": stamp(start), "end": stamp(end)}},
                          headers={"Retry-After": ARI_RETRY_AFTER})

    # -- the inventory -----------------------------------------------------------------------

    def _record(self, cert_id: str) -> None:
        """Write the certificate to CAROOT/acme/certs/SERIAL.pem and record it in the
        inventory (source "acme") as one journaled change, then mark it recorded."""
        row = self.store.cert(cert_id)
        cert = x509.load_pem_x509_certificate(row["chain"].encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [parse_name(str(g.value)) for g in san]
        leaf = Leaf(cert, None, names, self.ca.cert)
        path = self.cert_dir / f"{leaf.serial}.pem"
        for line in inventory.save(self.ca, leaf, [(path, leaf.cert_pem, PUBLIC)], cert_path=path,
                                   days=self.days, source=inventory.ACME_SOURCE):
            self.log(f"warning: {line}")
        self.store.mark_recorded(cert_id)

    def _record_pending(self) -> None:
        for row in self.store.unrecorded():
            self._record(row["id"])


def run(server: AcmeServer, *, on_ready: Callable[[AcmeServer], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then finish: validations cancelled, the database closed."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve_until_signal(loop, server, on_ready=on_ready))
    finally:
        loop.close()


def _account_id(kid: str) -> str:
    """The account id of a kid: its path is /acct/ID. The host is not compared: a client that
    reached the server by another name (a container's host alias, a restart on another port)
    still signs with the URL it was given, and the signature is what authenticates it."""
    path = urlsplit(kid).path if kid.startswith(("https://", "http://")) else ""
    parts = path.split("/")
    return parts[2] if len(parts) == 3 and parts[1] == "acct" and parts[2] else ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
