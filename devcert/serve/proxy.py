"""The proxy mode: every WebSocket and every plain HTTP request relayed to an upstream
``ws://`` / ``http://`` dev server, so a whole dev app (pages, assets, HMR socket) works over
https:// and wss://."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import websocket
from .tls import upstream_context
from .aiohttp_internals import Log, TransparentResponse, TransparentWebSocketResponse
from .splice import Splice, UpstreamProtocol

#: Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection, so a proxy drops them (and
#: every header the ``Connection`` header names) in both directions. Framing is the proxy's own:
#: ``Transfer-Encoding`` is redone on each side; ``Content-Length`` is kept when a body has one.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-connection",
})
#: What the upstream's WebSocket request does not carry of the client's: body framing (a
#: handshake has none) and the extensions offered. Key, version, subprotocols and Origin go as the
#: client sent them, so the upstream's answer is the one the client expects and frames pass
#: unchanged. permessage-deflate is not offered: ``max_size`` is enforced on frame lengths, which
#: compressed frames would hide (a 1 KiB message of one byte repeated deflates to a dozen bytes).
WS_REQUEST_DROP = frozenset({"content-length", "sec-websocket-extensions"})
#: Headers of the upstream's 101 that the client's 101 makes itself (aiohttp computes the same
#: accept from the same key and repeats the upstream's subprotocol choice).
UPSTREAM_101_OWN = frozenset({"sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions",
                              "content-length", "date"})
#: Seconds an upstream has to answer a WebSocket handshake.
HANDSHAKE_ANSWER_TIMEOUT = 30
#: What aiohttp's client adds on its own to every request (``Accept``, ``Accept-Encoding: gzip,
#: deflate``, ``User-Agent``, and ``Content-Type`` for a body): skipped, so the upstream gets
#: only what the client sent; a client that sent no Accept-Encoding gets no compressed body.
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
#: The proxy's own forwarding headers: replaced with what this hop saw (a client's
#: X-Forwarded-For and Forwarded are extended instead, as RFC 7239 lists each hop).
FORWARDING = frozenset({"x-forwarded-proto", "x-forwarded-host"})
#: Seconds to connect to the upstream; a response itself may take as long as it needs.
CONNECT_TIMEOUT = 5


def connection_tokens(headers: Any) -> frozenset[str]:
    """The header names listed in ``Connection`` (all its lines), lower-cased: hop-by-hop too."""
    return frozenset(token.strip().lower() for line in headers.getall("Connection", ())
                     for token in line.split(",") if token.strip())


def forwarded_node(address: str) -> str:
    """An address as RFC 7239 writes it in ``for=``: IPv6 in brackets and quotes."""
    return f'"[{address}]"' if ":" in address else (address or "unknown")


def loop_marker(token: str) -> str:
    """The ``by=`` value (an RFC 7239 obfuscated identifier) this server puts in ``Forwarded``."""
    return f"by=_devcert-{token}"


def has_passed(request: web.BaseRequest, token: str) -> bool:
    """Whether ``request`` already went through the server whose marker is ``token``."""
    marker = loop_marker(token)
    return any(marker in line for line in request.headers.getall("Forwarded", ()))


def forward_headers(request: web.BaseRequest, drop: frozenset[str], token: str) -> CIMultiDict[str]:
    """The client's headers in their order, repeated ones kept, minus hop-by-hop ones (and those
    ``Connection`` names) and ``drop``; plus this hop's X-Forwarded-* and Forwarded."""
    skip = HOP_BY_HOP | connection_tokens(request.headers) | drop | FORWARDING
    headers: CIMultiDict[str] = CIMultiDict()
    prior_for: list[str] = []
    for key, value in request.headers.items():
        lower = key.lower()
        if lower in skip:
            continue
        if lower == "x-forwarded-for":
            prior_for.append(value)
            continue
        headers.add(key, value)
    peer = request.remote or ""
    headers["X-Forwarded-For"] = ", ".join([*prior_for, peer]) if prior_for else peer
    headers["X-Forwarded-Proto"] = "https"
    headers["X-Forwarded-Host"] = request.host
    host = request.host.replace('"', "")
    headers.add("Forwarded", f'for={forwarded_node(peer)};host="{host}";proto=https;{loop_marker(token)}')
    return headers


def response_headers(upstream: Any, drop: frozenset[str] = frozenset()) -> CIMultiDict[str]:
    """An upstream response's headers in order, repeated ones kept, minus hop-by-hop ones."""
    skip = HOP_BY_HOP | connection_tokens(upstream) | drop
    return CIMultiDict((k, v) for k, v in upstream.items() if k.lower() not in skip)


def parse_head(head: bytes) -> tuple[str, CIMultiDict[str]]:
    """The status line and the headers (in order, repeated ones kept) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        raise ValueError(lines[0][:80])
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ValueError(f"bad header line {line[:80]!r}")
            headers.add(name, value.strip())
    return lines[0], headers


class Proxy:
    """Relays requests to ``upstream`` (``ws://HOST:PORT``, checked). Open client WebSockets
    are in ``sockets`` (shared with the server, which closes them on shutdown, both sides). ``token`` marks what passed through this server
    (see :func:`has_passed`)."""

    def __init__(self, upstream: str, *, max_size: int, log: Log, sockets: set[Any], token: str = "",
                 limit_words: str = "") -> None:
        self.upstream = upstream
        self.max_size = max_size
        self.limit_words = limit_words
        self.log = log
        self.sockets = sockets
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.BaseRequest, conn: Any) -> web.StreamResponse:
        """Relay ``request``; ``conn`` is its connection's :class:`HeadDeadline` (a WebSocket is
        relayed as bytes through it)."""
        if websocket.is_upgrade(request):
            return await self.websocket(request, conn)
        return await self.http(request)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=SKIP_AUTO_HEADERS,
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT),
                connector=aiohttp.TCPConnector(limit=0, ssl=upstream_context()),
            )
        return self._session

    def bad_gateway(self, what: str, err: BaseException) -> web.Response:
        if isinstance(err, aiohttp.ClientResponseError):  # it answered, but not with HTTP aiohttp could parse
            detail = " ".join(str(err.message).split())  # aiohttp's parser messages span lines
            problem = f"answered {what} with an invalid HTTP response ({detail})"
        else:
            problem = f"is not reachable for {what} ({' '.join((str(err) or type(err).__name__).split())})"
        self.log("error", f"upstream {self.upstream} {problem}")
        return web.Response(status=502, text=f"devcert serve-wss: the upstream server {self.upstream} {problem}\n")

    # --- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, request: web.BaseRequest, conn: Any) -> web.StreamResponse:
        """Open the upstream WebSocket with the client's own handshake (its key, subprotocols,
        extensions, Origin and other headers, minus hop-by-hop ones, plus X-Forwarded-*), answer
        the client with the upstream's 101 (same accept, choice and headers), then relay bytes
        (:class:`~devcert.serve.splice.Splice`) until both sides are closed."""
        what = f"{request.rel_url} from {request.remote}"
        if conn is None:  # pragma: no cover - every connection the server accepts has one
            return web.Response(status=500, text="this connection cannot be relayed\n")
        opened = await self._open_upstream(request)
        if isinstance(opened, web.Response):
            return opened
        transport, protocol, status_line, answer = opened
        chosen = answer.get("Sec-WebSocket-Protocol")
        client = websocket.response(self.max_size, [chosen] if chosen else (), autoclose=False,
                                    cls=TransparentWebSocketResponse)
        # the upstream's 101 headers (cookies, custom ones, the extensions it agreed to) reach the client
        client.headers.extend(response_headers(answer, UPSTREAM_101_OWN))
        splice = Splice(request.transport, transport, max_size=self.max_size, log=self.log, what=what,
                        limit_words=self.limit_words)
        conn.splice = splice  # the client's frames after the 101 go to the upstream as they are
        try:
            await client.prepare(request)
        except Exception:
            conn.splice = None
            transport.close()
            raise
        protocol.start(splice)
        self.sockets.add(splice)
        try:
            await splice.done
        finally:
            self.sockets.discard(splice)
        return client

    async def _open_upstream(self, request: web.BaseRequest) -> Any:
        """``(transport, protocol, status line, headers)`` of an upstream that answered 101 to
        the client's handshake, or the response to give the client instead."""
        parts = urlsplit(self.upstream)
        host, port, secure = parts.hostname or "", parts.port or 0, parts.scheme == "wss"
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await asyncio.wait_for(loop.create_connection(
                UpstreamProtocol, host, port, ssl=upstream_context() if secure else None,
                server_hostname=host if secure else None), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as err:
            return self.bad_gateway(f"WebSocket {request.rel_url}", err)
        headers = forward_headers(request, WS_REQUEST_DROP, self.token)
        lines = [f"GET {request.raw_path} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        try:
            head, _ = await asyncio.wait_for(protocol.head, HANDSHAKE_ANSWER_TIMEOUT)
            status_line, answer = parse_head(head)
            status = int(status_line.split(" ", 2)[1])
        except (OSError, asyncio.TimeoutError, ValueError, IndexError) as err:
            transport.close()
            if isinstance(err, (ValueError, IndexError)):
                err = aiohttp.ClientResponseError(None, (), message=f"not an HTTP response: {err}")  # type: ignore[arg-type]
            return self.bad_gateway(f"WebSocket {request.rel_url}", err)
        key = request.headers.get("Sec-WebSocket-Key", "")
        if status == 101 and answer.get("Sec-WebSocket-Accept") != websocket.accept_for(key):
            status_line = "HTTP/1.1 502 a wrong Sec-WebSocket-Accept"
            status = 502
        if status != 101:
            transport.close()
            reason = status_line.split(" ", 2)[2] if status_line.count(" ") >= 2 else ""
            self.log("warning", f"upstream refused the WebSocket {request.rel_url}: HTTP {status} {reason}")
            return web.Response(status=502 if status < 400 else status,
                                text=f"the upstream server refused the WebSocket connection: {status} {reason}\n")
        return transport, protocol, status_line, answer

    # --- plain HTTP --------------------------------------------------------------------------

    async def http(self, request: web.BaseRequest) -> web.StreamResponse:
        base = self.upstream.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        # a body is streamed as it comes, with the client's Content-Length when it sent one
        # (else chunked); a request without a body goes without either
        drop = frozenset() if request.body_exists else frozenset({"content-length"})
        body = request.content.iter_any() if request.body_exists else None
        try:
            upstream = await self.session().request(
                request.method, f"{base}{request.rel_url}", headers=forward_headers(request, drop, self.token),
                data=body, allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            return self.bad_gateway(f"{request.method} {request.rel_url}", err)
        try:
            response = TransparentResponse(status=upstream.status, reason=upstream.reason,
                                           headers=response_headers(upstream.headers))
            if "Content-Length" not in upstream.headers and request.method != "HEAD" and request.version >= (1, 1):
                response.enable_chunked_encoding()
            await response.prepare(request)
            if request.method != "HEAD":
                # the body as the upstream sent it: a gzip'ed one stays gzip'ed (auto_decompress off)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()
