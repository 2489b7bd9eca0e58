""":class:`WSSServer`: binding, lifecycle and routing; and the ways to run it (:func:`run` until
a signal, :meth:`WSSServer.run_in_thread` for synchronous code and tests)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import secrets
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from aiohttp import web

from ..ca import LocalCA
from ..errors import PortInUseError, ServeError, ServeOptionError
from ..names import DEFAULT_NAMES
from ..signals import serve_until_signal
from . import options, static, websocket
from .aiohttp_internals import HeadDeadline, Log, listen
from .echo import echo
from .logs import Summarized, one_line_logger
from .proxy import Proxy, has_passed
from .tls import Certificates

try:  # a dependency where it installs (not Windows): see pyproject.toml for why
    import uvloop
except ImportError:  # pragma: no cover - depends on what is installed
    uvloop = None

#: Seconds :meth:`WSSServer.run_in_thread` waits for the server to start, and then to stop.
THREAD_TIMEOUT = 30.0


def _quiet(level: str, message: str) -> None:
    pass


@dataclass
class WSSServer:
    """The serve-wss server, usable from Python::

        server = WSSServer(ssl_context, port=0)
        await server.start()          # binds; server.port is the real port
        ...
        await server.stop()           # open WebSockets get close code 1001

    or, from synchronous code and tests, ``with server.run_in_thread(): ...``.

    Options are checked by :func:`devcert.serve.options.check` (``ws_path`` None is ``/ws``;
    it does not apply with ``proxy``); a bad one raises :class:`~devcert.errors.ServeOptionError`.
    It reports what happens through ``log(level, message)``, level ``"info"``, ``"warning"`` or
    ``"error"``; it never prints.
    """

    ssl_context: ssl.SSLContext
    host: str = options.DEFAULT_HOST
    port: int = options.DEFAULT_PORT
    ws_path: str | None = None
    directory: str | Path | None = None
    #: serve names starting with a dot from ``directory`` too (else 404; ``/.well-known/`` is served)
    dotfiles: bool = False
    proxy: str | None = None
    #: ``NAME=UPSTREAM`` strings or :class:`~devcert.serve.options.Route` s: requests for each name
    #: (by SNI and Host) relayed to its upstream, each name with its own certificate, issued at
    #: the handshake by ``ca`` (the CA in CAROOT when None); ``proxy`` then serves names without one
    routes: Any = ()
    ca: LocalCA | None = None
    #: the names the default certificate (``ssl_context``'s) covers: no certificate is issued for them
    default_names: Any = DEFAULT_NAMES
    max_size: int = options.DEFAULT_MAX_SIZE
    handshake_timeout: float = options.HANDSHAKE_TIMEOUT
    request_head_timeout: float = options.REQUEST_HEAD_TIMEOUT
    keepalive_timeout: float = options.KEEPALIVE_TIMEOUT
    #: open connections at most (each idle wss:// one costs ~40 KiB with uvloop); past it new
    #: ones are dropped, so memory stays bounded whatever clients do
    max_connections: int = options.MAX_CONNECTIONS
    log: Log = _quiet
    #: how log lines and close reasons name options (``{"max_size": "--max-size"}`` from the CLI);
    #: by default their Python names
    option_names: Mapping[str, str] = field(default_factory=dict)
    #: the address actually listened on, once started (``--host localhost`` may be 127.0.0.1)
    address: str | None = field(default=None, init=False)
    _sockets: set[Any] = field(default_factory=set, init=False, repr=False)
    _connections: dict[Any, HeadDeadline] = field(default_factory=dict, init=False, repr=False)
    _proxy: Proxy | None = field(default=None, init=False, repr=False)
    _routed: dict[options.Route, Proxy] = field(default_factory=dict, init=False, repr=False)
    _certificates: Certificates | None = field(default=None, init=False, repr=False)
    _limit_words: str = field(default="", init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _server: asyncio.AbstractServer | None = field(default=None, init=False, repr=False)
    #: marks the requests this server relays (``Forwarded: ...;by=_devcert-TOKEN``), so one that
    #: comes back to it (a proxy pointed at itself, two servers pointed at each other) is answered
    #: 508 at once instead of being relayed again
    _token: str = field(default_factory=lambda: secrets.token_hex(8), init=False, repr=False)

    def __post_init__(self) -> None:
        #: what the server's parts log through: problems summarised, see :mod:`devcert.serve.logs`
        self._say = Summarized(self.log)
        self._limit_words = websocket.describe_size_limit(self.max_size, self.option_names)
        checked = options.check(host=self.host, port=self.port, ws_path=self.ws_path, directory=self.directory,
                                dotfiles=self.dotfiles, proxy=self.proxy, max_size=self.max_size, routes=self.routes)
        options.check_timeouts(self.request_head_timeout, self.keepalive_timeout, self.handshake_timeout)
        self.host, self.port, self.ws_path = checked.host, checked.port, checked.ws_path
        self.directory, self.proxy, self.routes = checked.directory, checked.proxy, checked.routes
        if self.proxy is not None:
            self._proxy = self._new_proxy(self.proxy)
        self._routed = {route: self._new_proxy(route.upstream) for route in self.routes}

    def _new_proxy(self, upstream: str) -> Proxy:
        return Proxy(upstream, max_size=self.max_size, log=self._say, sockets=self._sockets, token=self._token,
                     limit_words=self._limit_words)

    def _proxies(self) -> list[Proxy]:
        return ([self._proxy] if self._proxy is not None else []) + list(self._routed.values())

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; raises :class:`PortInUseError` when the port is taken."""
        if self.routes and self._certificates is None:
            ca = self.ca if self.ca is not None else LocalCA.load_or_create()
            self._certificates = Certificates(ca, self._managed_name, [str(n) for n in self.default_names],
                                              log=self._say)
            self._certificates.install(self.ssl_context)
        app = web.Application(client_max_size=self.max_size)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # aiohttp's own reports (a malformed request, a handler that failed) as one summarised
        # line each instead of a traceback on stderr
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, logger=one_line_logger(self._say),
                                     keepalive_timeout=self.keepalive_timeout, shutdown_timeout=websocket.CLOSE_TIMEOUT)
        await self._runner.setup()
        sock = self._bind()
        self._server = await listen(
            self._runner, sock, self.ssl_context, connections=self._connections,
            request_head_timeout=self.request_head_timeout, handshake_timeout=self.handshake_timeout,
            shutdown_timeout=websocket.CLOSE_TIMEOUT, log=self._say, max_connections=self.max_connections,
        )
        self.address, self.port = sock.getsockname()[:2]
        try:
            self._refuse_self_targets()
        except ServeOptionError:
            await self.stop()
            raise

    def _managed_name(self, name: str) -> str | None:
        """The name of the certificate kept in CAROOT for requests to ``name``: its route's name,
        or the wildcard route's for a name one label under it; None for any other name."""
        route = options.find_route(self.routes, name)
        if route is None:
            return None
        if route.name == name or name.count(".") == route.name.count("."):
            return route.name
        return None

    def _refuse_self_targets(self) -> None:
        """A relay target that is this server's own listening address would relay each request
        to itself: refused at start (a loop through another name or server still ends at 508)."""
        targets = [("proxy", self.proxy, "")] if self.proxy is not None else []
        targets += [("route", route.upstream, f"{route.name}=") for route in self.routes]
        for option, target, label in targets:
            if is_own_address(target, self.address or self.host, self.port):
                raise ServeOptionError("{-" + option + "} {label}{target} is this server's own address ({address} port "
                                       "{port}): it would relay every request to itself; give the dev server's address",
                                       label=label, target=target, address=self.address, port=self.port)

    def _bind(self) -> socket.socket:
        family, sockaddr = options.resolve_host(self.host)
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
            raise self._bind_error(err) from None
        return sock

    def _bind_error(self, err: OSError) -> ServeError:
        where = {"host": self.host, "port": self.port}
        if err.errno == errno.EADDRINUSE:
            return PortInUseError("port {port} on {host} is already in use; stop the other program or pick another "
                                  "with {-port}", **where)
        if err.errno == errno.EACCES:
            return ServeError("not allowed to listen on port {port} (ports below 1024 need root); pick another with "
                              "{-port}", **where)
        if err.errno == errno.EADDRNOTAVAIL:
            return ServeError("cannot listen on {host}: no such address on this machine", **where)
        return ServeError("cannot listen on {host}:{port}: {why}", why=err.strerror, **where)

    async def stop(self) -> None:
        """Stop accepting, close open WebSockets with 1001 (going away), then stop."""
        if self._server is not None:
            self._server.close()
        # proxied connections (splices) close both their client and their upstream side with 1001
        await websocket.close_all(list(self._sockets))
        if self._runner is not None:
            await self._runner.cleanup()
        for proxy in self._proxies():
            await proxy.close()
        self._server = self._runner = None
        self._say.flush()

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An event loop exception handler: asyncio's reports (a TLS handshake that failed, a
        callback that raised) as one summarised line, never a traceback."""
        err = context.get("exception")
        detail = " ".join((str(err) or type(err).__name__).split()) if err is not None else ""
        message = " ".join(str(context.get("message", "")).split())
        self._say("warning", f"{message}: {detail}" if detail else message)

    def run_in_thread(self) -> ThreadRunner:
        """A context manager running the server on its own event loop in a thread."""
        return ThreadRunner(self)

    # --- request handling ----------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        conn = self._connections.get(request.transport)
        if conn is None:
            return await self._route(request, None)
        conn.request_started()
        try:
            return await self._route(request, conn)
        finally:
            conn.request_done()

    async def _route(self, request: web.Request, conn: HeadDeadline | None) -> web.StreamResponse:
        if self.routes:
            return await self._by_name(request, conn)
        if self._proxy is not None:
            if has_passed(request, self._token):
                return self._loop_detected(request)
            return await self._proxy.handle(request, conn)
        if request.path == self.ws_path:
            if websocket.is_upgrade(request):
                if conn is not None:
                    # replies to frames read together go out as one TLS record and one send
                    # (~1.7x pipelined echo, half the CPU per message)
                    conn.coalesce_writes(request)
                return await echo(request, max_size=self.max_size, sockets=self._sockets, log=self._say,
                                  limit_words=self._limit_words)
            return web.Response(status=426, text=f"{self.ws_path} is a WebSocket endpoint: connect with wss://\n",
                                headers={"Upgrade": "websocket"})
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})
        if self.directory is not None:
            return static.serve_file(request, Path(self.directory), dotfiles=self.dotfiles)
        if request.path in ("/", "/index.html"):
            return static.demo_page(self.ws_path or options.DEFAULT_WS_PATH)
        return web.Response(status=404, text="not found\n")

    async def _by_name(self, request: web.Request, conn: HeadDeadline | None) -> web.StreamResponse:
        """Route by the Host header; one that is not the name the TLS connection was made for
        (SNI) gets 421, as the connection's certificate is another name's."""
        host = request_host(request)
        requested = None
        if self._certificates is not None:
            requested = self._certificates.server_name(request.transport.get_extra_info("ssl_object")
                                                       if request.transport is not None else None)
        if requested is not None and host != requested:
            return static.routes_page(421, host, self.port, self._listing(),
                                      f"This connection was made for {requested}, but the request is for {host}: "
                                      f"open https://{host}:{self.port}/ in its own connection.")
        route = options.find_route(self.routes, host)
        proxy = self._routed[route] if route is not None else self._proxy
        if proxy is not None:
            if has_passed(request, self._token):
                return self._loop_detected(request)
            return await proxy.handle(request, conn)
        return static.routes_page(404, host, self.port, self._listing(),
                                  f"No route on this server serves {host or 'a request without a Host'}.")

    def _listing(self) -> list[tuple[str, str]]:
        return [(route.name, route.upstream) for route in self.routes] + \
            ([("any other name", self.proxy)] if self.proxy is not None else [])

    def _loop_detected(self, request: web.BaseRequest) -> web.Response:
        self._say("warning", f"508 for {request.method} {request.rel_url} from {request.remote}: it came back "
                            f"through this server (a relay target leads back here)")
        return web.Response(status=508, text="devcert serve-wss: loop detected: this request already passed through "
                                             "this server, so a relay target leads back to it\n")


def request_host(request: web.BaseRequest) -> str:
    """The host name a request is for (Host without its port, lower case, no final dot)."""
    host = (request.host or "").strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def is_own_address(target: str, bound: str, port: int) -> bool:
    """Whether the upstream URL ``target`` reaches the socket bound at ``bound``:``port``."""
    parts = urlsplit(target)
    if parts.port != port or parts.hostname is None:
        return False
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False  # an upstream that does not resolve is reported per request (502)
    listening = ipaddress.ip_address(bound.split("%")[0])
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address == listening:
            return True
        if listening.is_unspecified and address.version == listening.version and _is_local(family, sockaddr[0]):
            return True
    return False


def _is_local(family: int, address: str) -> bool:
    """Whether ``address`` is one of this machine's (it can be bound)."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False


class ThreadRunner:
    """Runs a :class:`WSSServer` on a private event loop in a daemon thread."""

    def __init__(self, server: WSSServer):
        self.server = server
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    async def _serve(self) -> None:
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

    def _main(self) -> None:
        self.loop = loop = asyncio.new_event_loop()
        loop.set_exception_handler(self.server.loop_exception)
        try:
            loop.run_until_complete(self._serve())
        finally:
            try:
                finish_tasks(loop)
            finally:
                loop.close()

    def __enter__(self) -> WSSServer:
        self._thread = threading.Thread(target=self._main, name="devcert-serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(THREAD_TIMEOUT):
            raise ServeError("the server did not start within {seconds:g} s", seconds=THREAD_TIMEOUT)
        if self._error is not None:
            raise self._error
        return self.server

    def __exit__(self, *exc: Any) -> None:
        if self.loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(THREAD_TIMEOUT)


def finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
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
    if uvloop is None or os.environ.get("DEVCERT_NO_UVLOOP", "") not in ("", "0"):
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(server: WSSServer, *, on_ready: Callable[[WSSServer], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then close connections with 1001 and return."""
    loop = new_event_loop()
    loop.set_exception_handler(server.loop_exception)
    asyncio.set_event_loop(loop)

    def stopping() -> None:
        server.log("info", "shutting down: closing connections (1001 going away)")

    try:
        loop.run_until_complete(serve_until_signal(loop, server, on_ready=on_ready, stopping=stopping))
    finally:
        try:
            finish_tasks(loop)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

