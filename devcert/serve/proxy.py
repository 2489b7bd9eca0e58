"""The proxy mode: every WebSocket and every plain HTTP request relayed to an upstream
``ws://`` / ``http://`` dev server, so a whole dev app (pages, assets, HMR socket) works over
https:// and wss://."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import websocket
from .tls import upstream_context
from .aiohttp_internals import Log, TransparentResponse, TransparentWebSocketResponse, handshake_headers, max_msg_size

#: Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection, so a proxy drops them (and
#: every header the ``Connection`` header names) in both directions. Framing is the proxy's own:
#: ``Transfer-Encoding`` is redone on each side; ``Content-Length`` is kept when a body has one.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-connection",
})
#: WebSocket handshake headers the upstream handshake makes afresh (aiohttp's ``ws_connect``
#: writes its own key, version, offered subprotocols and Origin; extensions are not offered
#: upstream because messages are relayed decoded, so permessage-deflate is negotiated with neither).
WS_HANDSHAKE = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-protocol", "sec-websocket-accept", "origin", "content-length",
})
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


class Proxy:
    """Relays requests to ``upstream`` (``ws://HOST:PORT``, checked). Open client WebSockets
    are in ``sockets`` (shared with the server, which closes them on shutdown), each with its
    upstream connection in ``upstreams``. ``token`` marks what passed through this server
    (see :func:`has_passed`)."""

    def __init__(self, upstream: str, *, max_size: int, log: Log, sockets: set[Any], token: str = "") -> None:
        self.upstream = upstream
        self.max_size = max_size
        self.log = log
        self.sockets = sockets
        self.token = token
        self.upstreams: dict[Any, aiohttp.ClientWebSocketResponse] = {}
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if websocket.is_upgrade(request):
            return await self.websocket(request)
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

    async def websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        upstream = await self._connect_upstream(request)
        if isinstance(upstream, web.Response):
            return upstream
        # close frames are relayed, not answered here
        client = websocket.response(self.max_size, [upstream.protocol] if upstream.protocol else (), autoclose=False,
                                    cls=TransparentWebSocketResponse)
        # the upstream's 101 reaches the client with its own headers (cookies, custom ones)
        client.headers.extend(response_headers(handshake_headers(upstream), WS_HANDSHAKE | {"date"}))
        try:
            await client.prepare(request)
        except Exception:
            await upstream.close()
            raise
        self.sockets.add(client)
        self.upstreams[client] = upstream
        up = asyncio.ensure_future(self._relay(request, client, upstream, client))
        down = asyncio.ensure_future(self._relay(request, upstream, client, client))
        try:
            await asyncio.wait([up, down], return_when=asyncio.ALL_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            self.sockets.discard(client)
            self.upstreams.pop(client, None)
            if not upstream.closed:
                await upstream.close(code=websocket.CLOSE_GOING_AWAY)
        return client

    async def _connect_upstream(self, request: web.BaseRequest) -> aiohttp.ClientWebSocketResponse | web.Response:
        """The upstream WebSocket for ``request`` (same path, query and subprotocols), or the
        502 (or the upstream's refusal) to answer instead."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = forward_headers(request, WS_HANDSHAKE, self.token)
        try:
            return await self.session().ws_connect(
                f"{self.upstream}{request.rel_url}", protocols=offered, origin=request.headers.get("Origin"),
                headers=headers, max_msg_size=max_msg_size(self.max_size), autoclose=False, autoping=True,
                compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=websocket.CLOSE_TIMEOUT),
            )
        except aiohttp.WSServerHandshakeError as err:
            self.log("warning", f"upstream refused the WebSocket {request.rel_url}: HTTP {err.status} {err.message}")
            return web.Response(status=502 if err.status < 400 else err.status,
                                text=f"the upstream server refused the WebSocket connection: {err.status} {err.message}\n")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            return self.bad_gateway(f"WebSocket {request.rel_url}", err)

    async def _relay(self, request: web.BaseRequest, src: Any, dst: Any, client: Any) -> None:
        """Frames from ``src`` to ``dst`` as they are; a close frame is passed on with its code
        and reason, and answered on the side it came from once the other side has answered it."""
        try:
            while True:
                msg = await src.receive()
                if msg.type is WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type is WSMsgType.CLOSE:
                    code, reason = websocket.sendable_close_code(msg.data), (msg.extra or "").encode()[:123]
                    if not dst.closed:
                        await dst.close(code=code, message=reason)
                    if not src.closed:
                        await src.close(code=code, message=reason)
                    return
                elif msg.type is WSMsgType.CLOSING:
                    return  # the other direction is closing both sides
                elif msg.type is WSMsgType.ERROR:
                    await self._relay_error(request, msg.data, "the client" if src is client else "the upstream", dst)
                    return
                else:  # CLOSED: the connection was lost without a close frame
                    if not dst.closed:
                        await dst.close(code=websocket.CLOSE_GOING_AWAY)
                    return
        except (ConnectionError, RuntimeError):
            if not dst.closed:
                await dst.close(code=websocket.CLOSE_GOING_AWAY)

    async def _relay_error(self, request: web.BaseRequest, error: Any, side: str, dst: Any) -> None:
        """One side broke the protocol; aiohttp has closed it with the code that says how (1009
        message too big, 1002, 1007). The other side hears 1001 and why."""
        code = getattr(error, "code", None)
        if code == 1009:
            why = f"{side} sent a message larger than {websocket.describe_size_limit(self.max_size)}"
        else:
            why = f"{side} failed: {error or 'connection error'}"
        self.log("warning", f"closed the proxied WebSocket {request.rel_url} from {request.remote}: "
                            f"{why}" + (f" ({code})" if code else ""))
        if not dst.closed:
            await dst.close(code=websocket.CLOSE_GOING_AWAY if code else 1011,
                            message=why.encode()[:123].decode("utf-8", "ignore").encode())

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
