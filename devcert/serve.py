"""``devcert serve-wss``: a trusted https:// page and wss:// endpoint on one port.

One TLS port speaks both protocols: ``GET /`` is a demo page (or the static files of
``directory``, which is never CAROOT or a folder around it, and whose dotfiles answer 404 unless
``dotfiles``), ``ws_path`` (``/ws``) echoes text and binary messages, and with ``proxy`` every
WebSocket connection and every plain HTTP request is relayed to an upstream ``ws://`` /
``http://`` dev server, so a whole dev app (pages, assets, HMR socket) works over https:// and
wss://.

Time limits: the TLS handshake (``handshake_timeout``, 10 s), the request head
(``request_head_timeout``, 10 s, then 408 and close: a client dribbling header bytes cannot hold a
connection) and idle keep-alive connections (``keepalive_timeout``, 15 s). Open WebSockets and
requests being handled (uploads, streamed proxied responses) have no time limit.

Built on aiohttp rather than websockets' ``process_request`` hook: the HTTP relay needs
streamed responses and keep-alive, which ``process_request`` (one buffered response, then the
connection closes) cannot give, and aiohttp's C frame parser measured at least as fast as
websockets' asyncio server on the echo benchmark (scripts/bench wss). aiohttp is imported
only when a server is built, so ``devcert create`` never pays for it.

This module never prints: it reports what happens through the ``log`` callback given to
:class:`WSSServer` (``log(level, message)``, level ``"info"``, ``"warning"`` or ``"error"``).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from .errors import DevcertError, UsageError

#: Names a leaf is made for when none are given.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
DEFAULT_PORT = 8443
DEFAULT_HOST = "127.0.0.1"
#: Largest WebSocket message accepted (bigger ones close the connection with 1009).
DEFAULT_MAX_SIZE = 1024 * 1024
#: Upper bound for ``max_size``: aiohttp's C frame reader keeps the limit (plus one, see
#: :meth:`WSSServer._ws_response`) in an unsigned 32-bit int, so 4 GiB would overflow per connection.
MAX_MAX_SIZE = 2 * 1024 ** 3
#: Seconds a client has to finish the TLS handshake; a stalled one is dropped, never waited on.
HANDSHAKE_TIMEOUT = 10.0
#: Bytes buffered for sending to one slow WebSocket client before its sender waits (only that
#: connection waits; the others go on).
WRITE_LIMIT = 256 * 1024
#: Seconds an idle keep-alive HTTP connection is kept open.
KEEPALIVE_TIMEOUT = 15.0
#: Seconds a client has to send a complete request head (request line and headers), counted from
#: the end of the TLS handshake, or from the first byte of a later request on a keep-alive
#: connection; a slower one (slow-loris) gets 408 and is closed. Running requests, WebSockets and
#: streamed responses are never cut by it.
REQUEST_HEAD_TIMEOUT = 10.0
#: Seconds given to open WebSocket connections to finish their closing handshake on shutdown.
CLOSE_TIMEOUT = 3.0
CLOSE_GOING_AWAY = 1001

STATIC = Path(__file__).with_name("serve_static")

#: Hop-by-hop headers (RFC 9110 7.6.1) a proxy must not forward, plus the ones aiohttp sets.
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-connection",
}
#: WebSocket handshake headers the upstream handshake makes afresh.
_WS_HANDSHAKE = {
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-protocol", "sec-websocket-accept", "host", "content-length",
}

Log = Callable[[str, str], None]


class ServeError(DevcertError):
    """The server could not start (address unusable, bad upstream, ...)."""


class PortInUseError(ServeError):
    """The port asked for is taken by another program."""


def _quiet(level: str, message: str) -> None:
    pass


def parse_proxy(url: str) -> str:
    """Check a ``--proxy`` URL and return it as ``ws://host:port`` (or ``wss://``) with no path.

    The port is required: a dev server is never on 80/443, and a guessed port would only fail
    later, once per request.
    """
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    if parts.scheme not in ("ws", "wss", "http", "https"):
        raise UsageError(f"--proxy takes ws://HOST:PORT (got {url!r})")
    if not parts.hostname:
        raise UsageError(f"--proxy needs a host, e.g. ws://127.0.0.1:5173 (got {url!r})")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        raise UsageError(f"--proxy needs a port, e.g. ws://127.0.0.1:5173 (got {url!r})")
    if not 1 <= port <= 65535:
        raise UsageError(f"--proxy needs a port between 1 and 65535 (got {url!r})")
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--proxy takes only ws://HOST:PORT; paths and queries come from each request (got {url!r})")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def check_ws_path(path: str) -> str:
    """The ``--ws-path`` as requests are matched against it (decoded, starting with ``/``).

    ``/`` is refused (the page lives there), and so are ``?`` and ``#``: a request path never
    contains them, so such an endpoint could never be reached.
    """
    if not path.startswith("/"):
        path = "/" + path
    if path == "/":
        raise UsageError("--ws-path cannot be / (the page is served there): give a path such as /ws")
    if "?" in path or "#" in path:
        raise UsageError(f"--ws-path takes a path only, without a query or fragment (got {path!r})")
    if any(ch < " " or ch == "\x7f" for ch in path):
        raise UsageError(f"--ws-path cannot contain control characters (got {path!r})")
    return path


def check_directory(directory: str | Path) -> Path:
    """The ``--dir`` folder, resolved; :class:`UsageError` when it is not a folder, or when it is
    CAROOT, holds CAROOT or lies inside it.

    Serving any of those would hand the CA's private key (or the managed leaves' keys) to every
    client. Real paths are compared (symlinks resolved), and then file identities, so a symlink,
    a bind mount or another spelling on a case-insensitive disk is refused as well.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"--dir {folder} is not a folder")
    resolved = folder.resolve()
    overlap = _caroot_overlap(resolved)
    if overlap is not None:
        how, root = overlap
        # the real path, and what was typed when a link leads there
        shown = str(resolved) if folder.absolute() == resolved else f"{folder} (that is {resolved})"
        what = {"is": "it is CAROOT", "contains": f"it contains CAROOT {root}",
                "inside": f"it is inside CAROOT {root}"}[how]
        raise UsageError(f"will not serve {shown}: {what}, which holds the CA's private key; "
                         f"serve a folder of only your site's files instead, such as ./public")
    return resolved


def _caroot_overlap(folder: Path) -> tuple[str, Path] | None:
    """How the resolved ``folder`` overlaps CAROOT: ``("is" | "contains" | "inside", CAROOT)``."""
    import os

    from .ca import caroot

    # not strict: CAROOT may not exist yet, and serve-wss makes it (and its key) before serving
    root = caroot().resolve()
    if folder == root:
        return "is", root
    if folder in root.parents:
        return "contains", root
    if root in folder.parents:
        return "inside", root
    # The same folder under another path: a bind mount, or other letter case on macOS/Windows.
    try:
        here = folder.stat()
    except OSError:
        return None
    for ancestor in (root, *root.parents):
        try:
            if os.path.samestat(here, ancestor.stat()):
                return ("is" if ancestor == root else "contains"), root
        except OSError:
            continue  # not made yet
    try:
        root_stat = root.stat()
    except OSError:
        return None
    for ancestor in folder.parents:
        try:
            if os.path.samestat(ancestor.stat(), root_stat):
                return "inside", root
        except OSError:
            continue
    return None


def check_max_size(size: int) -> int:
    if not 1 <= size <= MAX_MAX_SIZE:
        raise UsageError(f"--max-size must be between 1 byte and 2GiB (got {size})")
    return size


def resolve_host(host: str) -> tuple[int, Any]:
    """``(family, sockaddr)`` to bind for ``--host`` (an IP or a name); :class:`UsageError` when
    a name does not resolve."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        return family, (host, 0)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise UsageError(f"cannot resolve --host {host} ({why}): give an IP address such as 127.0.0.1") from None
    if not infos:
        raise UsageError(f"cannot resolve --host {host}: give an IP address such as 127.0.0.1")
    return infos[0][0], infos[0][4]


def ensure_certificate(names: Iterable[str] = DEFAULT_NAMES, ca: Any = None) -> tuple[Any, Any]:
    """The CA (created on first need) and a managed leaf for ``names`` under CAROOT/leaves.

    The leaf is reissued when missing, expired, near expiry, or not signed by this CA.
    Returns ``(ca, ensured)`` with ``ensured.cert_path``, ``ensured.key_path``, ``ensured.action``.
    """
    from .ca import LocalCA
    from .issue import ensure_leaf, managed_leaf_paths
    from .names import parse_names

    parsed = parse_names(list(names))
    if ca is None:
        ca = LocalCA.load_or_create()
    cert_path, key_path = managed_leaf_paths(ca, parsed)
    return ca, ensure_leaf(ca, parsed, cert_path, key_path)


def server_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    """A TLS server context for the leaf (TLS 1.2+, HTTP/1.1 over ALPN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _is_ws_upgrade(request: Any) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower() and \
        "upgrade" in request.headers.get("Connection", "").lower()


def _sendable_close_code(code: int | None) -> int:
    """A close code that may go on the wire: 1005/1006/1015 are reserved for reporting only."""
    if code is None or code in (1005, 1006, 1015) or not (1000 <= code <= 4999):
        return 1000
    return code


#: The one dot folder served by default (RFC 8615): ACME http-01 challenges, security.txt and
#: the like live there and hold nothing secret. Dot names inside it are still hidden.
WELL_KNOWN = ".well-known"


def _hidden(parts: Iterable[str]) -> bool:
    """Whether a path (as segments from the served folder) is a dotfile or lies in a dot folder."""
    return any(part.startswith(".") and not (i == 0 and part == WELL_KNOWN) for i, part in enumerate(parts))


def safe_static_path(root: Path, url_path: str, *, dotfiles: bool = False) -> Path | None:
    """The file under ``root`` for a decoded URL path, or None when it would leave ``root`` or,
    unless ``dotfiles``, when a segment starts with a dot (``.env``, ``.git/config``) except a
    leading ``.well-known``.

    Rejects ``..`` segments, backslashes, NUL bytes and symlinks that resolve outside ``root``
    (``root`` itself must already be resolved). A folder maps to its index.html. The dot rule is
    applied to the URL and to the resolved file, so a plain-named symlink to ``.git`` does not
    expose it either. None is answered as 404, the same as a missing file, so a client cannot
    tell which secrets exist.
    """
    if "\x00" in url_path or "\\" in url_path:
        return None
    parts = [p for p in url_path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    if not dotfiles and _hidden(parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved != root and root not in resolved.parents:
        return None
    if resolved.is_dir():
        index = (resolved / "index.html")
        try:
            index_resolved = index.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if root not in index_resolved.parents or not index_resolved.is_file():
            return None
        resolved = index_resolved
    elif not resolved.is_file():
        return None
    if not dotfiles and _hidden(resolved.relative_to(root).parts):
        return None
    return resolved


@dataclass
class WSSServer:
    """The serve-wss server, usable from Python::

        server = WSSServer(ssl_context, port=0)
        await server.start()          # binds; server.port is the real port
        ...
        await server.stop()           # open WebSockets get close code 1001

    or, from synchronous code and tests, ``with server.run_in_thread(): ...``.
    """

    ssl_context: ssl.SSLContext
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    ws_path: str = "/ws"
    directory: str | Path | None = None
    #: serve names starting with a dot from ``directory`` too (else 404; ``/.well-known/`` is served)
    dotfiles: bool = False
    proxy: str | None = None
    max_size: int = DEFAULT_MAX_SIZE
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    request_head_timeout: float = REQUEST_HEAD_TIMEOUT
    keepalive_timeout: float = KEEPALIVE_TIMEOUT
    log: Log = _quiet
    _sockets: set[Any] = field(default_factory=set, init=False, repr=False)
    _upstreams: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)
    _connections: dict[Any, _HeadDeadline] = field(default_factory=dict, init=False, repr=False)
    #: the address actually listened on, once started (``--host localhost`` may be 127.0.0.1)
    address: str | None = field(default=None, init=False)
    _runner: Any = field(default=None, init=False, repr=False)
    _server: Any = field(default=None, init=False, repr=False)
    _session: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ws_path = check_ws_path(self.ws_path)
        check_max_size(self.max_size)
        if not (self.request_head_timeout > 0 and self.keepalive_timeout > 0 and self.handshake_timeout > 0):
            raise UsageError("time limits must be more than 0 seconds")
        if self.proxy is not None:
            self.proxy = parse_proxy(self.proxy)
            if self.directory is not None:
                raise UsageError("--dir and --proxy cannot be combined: in proxy mode the upstream serves the pages")
        if self.directory is not None:
            self.directory = check_directory(self.directory)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; raises :class:`PortInUseError` when the port is taken."""
        from aiohttp import web

        app = web.Application(client_max_size=self.max_size)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     keepalive_timeout=self.keepalive_timeout, shutdown_timeout=CLOSE_TIMEOUT)
        await self._runner.setup()
        sock = self._bind()
        loop = asyncio.get_running_loop()
        handler_factory = self._runner.server
        self._server = await loop.create_server(
            lambda: _HeadDeadline(handler_factory(), self), sock=sock, ssl=self.ssl_context,
            ssl_handshake_timeout=self.handshake_timeout, ssl_shutdown_timeout=CLOSE_TIMEOUT, backlog=512,
        )
        self.address, self.port = sock.getsockname()[:2]

    def _bind(self) -> socket.socket:
        family, sockaddr = resolve_host(self.host)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((sockaddr[0], self.port, *sockaddr[2:]))
            sock.listen(512)
            sock.setblocking(False)
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {self.port} on {self.host} is already in use; stop the other program or pick another with --port"
                ) from None
            if err.errno == errno.EACCES:
                raise ServeError(f"not allowed to listen on port {self.port} (ports below 1024 need root); pick another with --port") from None
            if err.errno == errno.EADDRNOTAVAIL:
                raise ServeError(f"cannot listen on {self.host}: no such address on this machine") from None
            raise ServeError(f"cannot listen on {self.host}:{self.port}: {err.strerror}") from None
        return sock

    async def stop(self) -> None:
        """Stop accepting, close open WebSockets with 1001 (going away), then stop."""
        if self._server is not None:
            self._server.close()
        # proxied connections: both the client and the upstream side hear 1001
        sockets = list(self._sockets) + [self._upstreams[ws] for ws in self._sockets if ws in self._upstreams]
        if sockets:
            await asyncio.wait(
                [asyncio.ensure_future(ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")) for ws in sockets],
                timeout=CLOSE_TIMEOUT,
            )
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._server = self._runner = self._session = None

    def run_in_thread(self) -> _ThreadRunner:
        """A context manager running the server on its own event loop in a thread."""
        return _ThreadRunner(self)

    # --- request handling ----------------------------------------------------------------

    async def _dispatch(self, request: Any) -> Any:
        conn = self._connections.get(request.transport)
        if conn is None:
            return await self._route(request)
        conn.request_started()
        try:
            return await self._route(request)
        finally:
            conn.request_done()

    async def _route(self, request: Any) -> Any:
        from aiohttp import web

        if self.proxy is not None:
            if _is_ws_upgrade(request):
                return await self._proxy_ws(request)
            return await self._proxy_http(request)
        if request.path == self.ws_path:
            if _is_ws_upgrade(request):
                return await self._echo(request)
            return web.Response(status=426, text=f"{self.ws_path} is a WebSocket endpoint: connect with wss://\n",
                                headers={"Upgrade": "websocket"})
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})
        if self.directory is not None:
            target = safe_static_path(self.directory, request.path, dotfiles=self.dotfiles)  # type: ignore[arg-type]
            if target is None:
                return web.Response(status=404, text="not found\n")
            if not request.path.endswith("/") and target.name == "index.html" and \
                    not request.path.endswith("/index.html"):
                # a folder: its page's relative links need the trailing slash, as any web server does
                # (one leading slash, so the Location can never be //other-host/)
                location = "/" + request.rel_url.raw_path.lstrip("/") + "/"
                if request.rel_url.raw_query_string:
                    location += "?" + request.rel_url.raw_query_string
                raise web.HTTPMovedPermanently(location)
            return web.FileResponse(target, chunk_size=64 * 1024)
        if request.path in ("/", "/index.html"):
            return web.Response(text=self._demo_page(), content_type="text/html", charset="utf-8",
                                headers={"Cache-Control": "no-store"})
        return web.Response(status=404, text="not found\n")

    def _demo_page(self) -> str:
        import json

        page = (STATIC / "index.html").read_text(encoding="utf-8")
        # a JS string literal inside <script>: JSON, with "<" escaped so "</script>" cannot end it
        return page.replace("__WS_PATH_JSON__", json.dumps(self.ws_path).replace("<", "\\u003c"))

    def _ws_response(self, protocols: Iterable[str] = (), *, autoclose: bool = True) -> Any:
        from aiohttp import web

        # aiohttp refuses a message of max_msg_size bytes or more: + 1 so max_size itself is accepted
        return web.WebSocketResponse(protocols=tuple(protocols), max_msg_size=self.max_size + 1, compress=False,
                                     writer_limit=WRITE_LIMIT, autoping=True, timeout=CLOSE_TIMEOUT,
                                     autoclose=autoclose)

    async def _echo(self, request: Any) -> Any:
        from aiohttp import WSMsgType

        ws = self._ws_response()
        # The WebSocket writes through a _CoalescingTransport from here on: replies to frames read
        # together go out as one TLS record and one send (~1.7x pipelined echo, half the CPU per
        # message). Plain HTTP keeps the real transport: loop.sendfile() for --dir files needs it.
        protocol = getattr(request, "protocol", None)
        conn = self._connections.get(request.transport)
        if conn is not None and getattr(protocol, "transport", None) is conn.transport:
            conn.coalescer = protocol.transport = _CoalescingTransport(conn.transport)
        await ws.prepare(request)
        self._sockets.add(ws)
        error = None
        try:
            send_str, send_bytes = ws.send_str, ws.send_bytes
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await send_bytes(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    # aiohttp has sent the close frame (1009 for a message too big, 1002, 1007);
                    # ws.close_code may say 1006 by now if the client never answered it
                    error = msg.data
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._sockets.discard(ws)
        if getattr(error, "code", None) == 1009:
            self.log("warning", f"closed a connection from {request.remote}: message larger than "
                                f"--max-size {self.max_size} bytes (1009)")
        return ws

    # --- proxy ---------------------------------------------------------------------------

    def _client_session(self) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    def _upstream_headers(self, request: Any, drop: set[str]) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in drop}
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-Host"] = request.host
        return headers

    def _bad_gateway(self, what: str, err: BaseException) -> Any:
        from aiohttp import ClientResponseError, web

        if isinstance(err, ClientResponseError):  # it answered, but not with HTTP aiohttp could parse
            detail = " ".join(str(err.message).split())  # aiohttp's parser messages span lines
            problem = f"answered {what} with an invalid HTTP response ({detail})"
        else:
            problem = f"is not reachable for {what} ({' '.join((str(err) or type(err).__name__).split())})"
        self.log("error", f"upstream {self.proxy} {problem}")
        return web.Response(status=502, text=f"devcert serve-wss: the upstream server {self.proxy} {problem}\n")

    async def _proxy_ws(self, request: Any) -> Any:
        import aiohttp
        from aiohttp import WSMsgType

        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = self._upstream_headers(request, _HOP_BY_HOP | _WS_HANDSHAKE | {"origin"})
        url = f"{self.proxy}{request.rel_url}"
        try:
            upstream = await self._client_session().ws_connect(
                url, protocols=offered, origin=request.headers.get("Origin"), headers=headers,
                max_msg_size=self.max_size + 1, autoclose=False, autoping=True, compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
            )
        except aiohttp.WSServerHandshakeError as err:
            from aiohttp import web

            self.log("warning", f"upstream refused the WebSocket {request.rel_url}: HTTP {err.status} {err.message}")
            return web.Response(status=502 if err.status < 400 else err.status,
                                text=f"the upstream server refused the WebSocket connection: {err.status} {err.message}\n")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            return self._bad_gateway(f"WebSocket {request.rel_url}", err)

        # close frames are relayed, not answered here
        client = self._ws_response([upstream.protocol] if upstream.protocol else (), autoclose=False)
        try:
            await client.prepare(request)
        except Exception:
            await upstream.close()
            raise
        self._sockets.add(client)
        self._upstreams[client] = upstream

        async def relay(src: Any, dst: Any) -> None:
            # Frames go across as they are; a close frame is passed on with its code and reason,
            # and answered on the side it came from once the other side has answered it.
            try:
                while True:
                    msg = await src.receive()
                    if msg.type is WSMsgType.TEXT:
                        await dst.send_str(msg.data)
                    elif msg.type is WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)
                    elif msg.type is WSMsgType.CLOSE:
                        code, reason = _sendable_close_code(msg.data), (msg.extra or "").encode()[:123]
                        if not dst.closed:
                            await dst.close(code=code, message=reason)
                        if not src.closed:
                            await src.close(code=code, message=reason)
                        return
                    elif msg.type is WSMsgType.CLOSING:
                        return  # the other direction is closing both sides
                    elif msg.type is WSMsgType.ERROR:
                        # src broke the protocol; aiohttp has closed it with the code that says how
                        # (1009 message too big, 1002, 1007). The other side hears 1001 and why.
                        code = getattr(msg.data, "code", None)
                        side = "the client" if src is client else "the upstream"
                        if code == 1009:
                            why = f"{side} sent a message larger than --max-size {self.max_size} bytes"
                        else:
                            why = f"{side} failed: {msg.data or 'connection error'}"
                        self.log("warning", f"closed the proxied WebSocket {request.rel_url} from {request.remote}: "
                                            f"{why}" + (f" ({code})" if code else ""))
                        if not dst.closed:
                            await dst.close(code=CLOSE_GOING_AWAY if code else 1011,
                                            message=why.encode()[:123].decode("utf-8", "ignore").encode())
                        return
                    else:  # CLOSED: the connection was lost without a close frame
                        if not dst.closed:
                            await dst.close(code=CLOSE_GOING_AWAY)
                        return
            except (ConnectionError, RuntimeError):
                if not dst.closed:
                    await dst.close(code=CLOSE_GOING_AWAY)

        up = asyncio.ensure_future(relay(client, upstream))
        down = asyncio.ensure_future(relay(upstream, client))
        try:
            await asyncio.wait([up, down], return_when=asyncio.ALL_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            self._sockets.discard(client)
            self._upstreams.pop(client, None)
            if not upstream.closed:
                await upstream.close(code=CLOSE_GOING_AWAY)
        return client

    async def _proxy_http(self, request: Any) -> Any:
        import aiohttp
        from aiohttp import web

        base = self.proxy.replace("ws://", "http://", 1).replace("wss://", "https://", 1)  # type: ignore[union-attr]
        headers = self._upstream_headers(request, _HOP_BY_HOP | {"content-length"} if not request.body_exists else _HOP_BY_HOP)
        body = request.content.iter_any() if request.body_exists else None
        try:
            upstream = await self._client_session().request(
                request.method, f"{base}{request.rel_url}", headers=headers, data=body,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            return self._bad_gateway(f"{request.method} {request.rel_url}", err)
        try:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            if "Content-Length" not in upstream.headers and request.method != "HEAD":
                response.enable_chunked_encoding()
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()


class _CoalescingTransport:
    """A WebSocket connection's transport that sends the replies to frames read together at once.

    A client that pipelines messages gets many frames from one read, and the echo answers each
    with its own ``write()``: one TLS record and one send system call per message. Here the first
    write after each read goes straight out (a lone round trip is not delayed), and further writes
    are held and joined into one write from a ``call_soon`` callback, so a burst of replies costs
    one record and one send. Every held byte is sent within one loop iteration, whatever wrote it
    (echo replies, pongs, close frames). The rest is the wrapped transport's: flow control
    (pause/resume_writing reach the protocol from the real transport; ``get_write_buffer_size``
    counts the held bytes too), ``get_extra_info``, reading. ``close()`` and ``write_eof()`` send
    what is held first; ``abort()`` drops it.
    """

    __slots__ = ("_inner", "_pending", "_pending_size", "_scheduled", "direct", "is_closing", "get_extra_info")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._scheduled = False
        #: set by the connection's protocol on each read: the next write may go out at once
        self.direct = False
        # called per frame by aiohttp's writer: the real transport's, without a wrapper call
        self.is_closing = inner.is_closing
        self.get_extra_info = inner.get_extra_info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, data: Any) -> None:
        if self.direct and not self._pending:
            self.direct = False
            self._inner.write(data)
            return
        if not data:
            return
        if self._inner.is_closing():
            self._inner.write(data)  # the real transport reports it as it would have
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def writelines(self, chunks: Iterable[Any]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush_soon(self) -> None:
        self._scheduled = False
        self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = []
        self._pending_size = 0
        if not self._inner.is_closing():
            self._inner.write(data)

    def get_write_buffer_size(self) -> int:
        return self._pending_size + self._inner.get_write_buffer_size()

    def write_eof(self) -> None:
        self._flush()
        self._inner.write_eof()

    def close(self) -> None:
        self._flush()
        self._inner.close()

    def abort(self) -> None:
        self._pending = []
        self._pending_size = 0
        self._inner.abort()


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol to bound the time to receive a request head.

    aiohttp limits the TLS handshake (``ssl_handshake_timeout``) and idle keep-alive time, but
    not a head sent one byte at a time. The clock starts when the connection is made, and again
    at the first byte after a request was handled (the next request on a keep-alive connection,
    or bytes left over from one); it stops when aiohttp hands a complete request to
    :meth:`WSSServer._dispatch`. It never runs while a request is being handled, so WebSockets,
    uploads and streamed (proxied) responses are not cut. On expiry: 408 if some bytes of a head
    came, then the connection is closed.
    """

    def __init__(self, inner: Any, owner: WSSServer) -> None:
        self.inner = inner
        self.owner = owner
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.got_bytes = False  # bytes since the clock started (or since the last request started)
        self.coalescer: _CoalescingTransport | None = None

    # asyncio protocol: everything goes on to aiohttp's handler
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.owner._connections[transport] = self
        self._arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if data:
            if self.in_flight == 0 and self.timer is None:
                self._arm()  # the first byte of a new request head
            self.got_bytes = True
            if self.coalescer is not None:
                self.coalescer.direct = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self.owner._connections.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # the clock
    def _arm(self) -> None:
        self._disarm()
        self.got_bytes = False
        self.timer = asyncio.get_running_loop().call_later(self.owner.request_head_timeout, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def request_started(self) -> None:
        self.in_flight += 1
        self._disarm()
        self.got_bytes = False

    def request_done(self) -> None:
        self.in_flight -= 1
        # bytes that came while the request ran may be the start of the next head: time it
        if self.in_flight == 0 and self.got_bytes and self.transport is not None and not self.transport.is_closing():
            self._arm()

    def _expired(self) -> None:
        self.timer = None
        transport = self.transport
        if self.in_flight or transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        where = f" from {peer[0]}" if peer else ""
        if self.got_bytes:
            self.owner.log("warning", f"closed a connection{where}: no complete request within "
                                      f"{self.owner.request_head_timeout:g} s (408)")
            try:
                transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 39\r\n\r\nthe request head took too long to send\n")
            except Exception:  # pragma: no cover - the transport broke meanwhile
                pass
        transport.close()


class _ThreadRunner:
    """Runs a :class:`WSSServer` on a private event loop in a daemon thread."""

    def __init__(self, server: WSSServer):
        self.server = server
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()

        async def body() -> None:
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as err:
                self._error = err
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.stop()

        try:
            self.loop.run_until_complete(body())
        finally:
            try:
                _finish_tasks(self.loop)
            finally:
                self.loop.close()

    def __enter__(self) -> WSSServer:
        self._thread = threading.Thread(target=self._main, name="devcert-serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise ServeError("the server did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self.server

    def __exit__(self, *exc: Any) -> None:
        if self.loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await what is left on ``loop`` before it closes, as :func:`asyncio.run` does.

    asyncio's own TLS accept task (``_accept_connection2``) for a client still in its handshake
    is not ended by closing the server; left pending it is reported as "Task was destroyed but
    it is pending!" when the loop goes away. Cancelled, it closes that connection itself.
    """
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, else asyncio's (DEVCERT_NO_UVLOOP=1 forces asyncio)."""
    import os

    if os.environ.get("DEVCERT_NO_UVLOOP", "") not in ("", "0"):
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(server: WSSServer, *, on_ready: Callable[[WSSServer], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then close connections with 1001 and return."""
    import signal

    loop = new_event_loop()
    asyncio.set_event_loop(loop)

    async def body() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        await server.start()
        if on_ready is not None:
            on_ready(server)
        try:
            await stop.wait()
        finally:
            server.log("info", "shutting down: closing connections (1001 going away)")
            await server.stop()

    try:
        loop.run_until_complete(body())
    finally:
        try:
            _finish_tasks(loop)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
