"""Every use of aiohttp's private or undocumented internals, in one place.

Checked against aiohttp 3.14.5 (pyproject asks for >= 3.11); tests/serve/test_aiohttp_internals.py
fails with a message naming what changed when a new aiohttp no longer does what this module
relies on:

- ``AppRunner.server`` (after ``setup()``) is aiohttp's low-level ``Server``: called with no
  arguments it returns a fresh ``web_protocol.RequestHandler``, an :class:`asyncio.Protocol`
  that sets its ``transport`` attribute in ``connection_made``. :func:`listen` wraps each in a
  :class:`HeadDeadline` and hands them to :meth:`loop.create_server` itself (``web.SockSite``
  would give no place for the wrapper).
- ``request.protocol`` is that handler, and both the response writer (``StreamWriter``) and
  ``WebSocketResponse.prepare`` read ``protocol.transport`` each time they write: setting it
  before ``prepare`` routes the 101 and every frame through :class:`CoalescingTransport`.
  Frames are written with ``transport.write`` after a ``transport.is_closing()`` check; flow
  control reaches the handler's ``pause_writing``/``resume_writing`` from the real transport.
- A WebSocket message of ``max_msg_size`` bytes or more is refused (1009): see
  :func:`max_msg_size`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

#: ``log(level, message)``, as :class:`devcert.serve.WSSServer` takes it.
Log = Callable[[str, str], None]

#: What a client that dribbles its request head gets before the connection is closed.
REQUEST_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                            b"Content-Length: 39\r\n\r\nthe request head took too long to send\n")


def max_msg_size(limit: int) -> int:
    """aiohttp's ``max_msg_size`` for accepting messages of up to ``limit`` bytes.

    aiohttp refuses a message of ``max_msg_size`` bytes or more (its reader compares with
    ``>=``), so ``limit`` itself needs one more.
    """
    return limit + 1


class CoalescingTransport:
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
            # the running loop, so a write from any other thread fails loudly instead of
            # holding bytes that no loop iteration would send
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


class HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol to bound the time to receive a request head.

    aiohttp limits the TLS handshake (``ssl_handshake_timeout``) and idle keep-alive time, but
    not a head sent one byte at a time. The clock starts when the connection is made, and again
    at the first byte after a request was handled (the next request on a keep-alive connection,
    or bytes left over from one); it stops at :meth:`request_started`, which the request
    handler calls once aiohttp hands it a complete request. It never runs while a request is
    being handled, so WebSockets, uploads and streamed (proxied) responses are not cut. On
    expiry: 408 if some bytes of a head came, then the connection is closed.

    ``connections`` maps each open connection's transport to its wrapper (added on
    ``connection_made``, removed on ``connection_lost``), so a handler finds it from
    ``request.transport``.
    """

    def __init__(self, inner: asyncio.Protocol, connections: dict[Any, HeadDeadline], timeout: float, log: Log,
                 max_connections: int = 0) -> None:
        self.inner = inner
        self.max_connections = max_connections
        self.connections = connections
        self.timeout = timeout
        self.log = log
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.got_bytes = False  # bytes since the clock started (or since the last request started)
        self.coalescer: CoalescingTransport | None = None
        #: a proxied WebSocket relayed as bytes (:class:`devcert.serve.splice.Splice`): once set,
        #: reads, the end of the connection and flow control go to it instead of aiohttp
        self.splice: Any = None

    # asyncio protocol: everything goes on to aiohttp's handler
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.max_connections and len(self.connections) >= self.max_connections:
            # memory stays bounded whatever clients do: past the limit a connection is dropped
            # before aiohttp sees it (it never got a handler, so its loss is not passed on)
            peer = transport.get_extra_info("peername")
            where = f" from {peer[0]}" if peer else ""
            self.log("warning", f"dropped a connection{where}: {self.max_connections} connections are open already")
            self.inner = asyncio.Protocol()
            transport.abort()
            return
        self.connections[transport] = self
        self._arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            self.splice.from_client(data)
            return
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
        self.connections.pop(self.transport, None)
        if self.splice is not None:
            self.splice.from_client_lost()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_paused()
            return
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_resumed()
            return
        self.inner.resume_writing()

    # the clock
    def _arm(self) -> None:
        self._disarm()
        self.got_bytes = False
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)

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
            self.log("warning", f"closed a connection{where}: no complete request within {self.timeout:g} s (408)")
            try:
                transport.write(REQUEST_TIMEOUT_RESPONSE)
            except Exception:  # pragma: no cover - the transport broke meanwhile
                pass
        transport.close()

    def coalesce_writes(self, request: web.BaseRequest) -> None:
        """From now on this connection's responses (a WebSocket's 101 and frames) are written
        through a :class:`CoalescingTransport`.

        Only for WebSockets: plain HTTP keeps the real transport, which ``loop.sendfile()`` for
        static files needs.
        """
        protocol = request.protocol
        if getattr(protocol, "transport", None) is self.transport:
            self.coalescer = protocol.transport = CoalescingTransport(self.transport)


async def listen(runner: web.AppRunner, sock: socket.socket, ssl_context: ssl.SSLContext | None, *,
                 connections: dict[Any, HeadDeadline], request_head_timeout: float, handshake_timeout: float,
                 shutdown_timeout: float, log: Log, max_connections: int = 0) -> asyncio.AbstractServer:
    """Serve ``runner``'s application on the listening ``sock``, each connection's aiohttp
    handler wrapped in a :class:`HeadDeadline`; past ``max_connections`` open ones (0: no
    limit) a new connection is dropped. ``runner`` must be set up."""
    handler_factory = runner.server
    if handler_factory is None:
        raise RuntimeError("the AppRunner is not set up")
    loop = asyncio.get_running_loop()
    tls: dict[str, Any] = {}
    if ssl_context is not None:
        tls = {"ssl": ssl_context, "ssl_handshake_timeout": handshake_timeout, "ssl_shutdown_timeout": shutdown_timeout}
    return await loop.create_server(
        lambda: HeadDeadline(handler_factory(), connections, request_head_timeout, log, max_connections),
        sock=sock, backlog=512, **tls,
    )


class _Verbatim:
    """What :class:`TransparentResponse` and :class:`TransparentWebSocketResponse` share.

    aiohttp's ``StreamResponse._prepare_headers`` (private) fills in ``Server: Python/...
    aiohttp/...`` and, for a response with a body, ``Content-Type: application/octet-stream``
    when the handler set none. A proxy passing on an upstream's response must add neither: after
    aiohttp's own step, whichever of the two the upstream did not send is removed again.
    ``Date`` stays: RFC 9110 6.6.1 asks a forwarding recipient with a clock to add it when missing.
    """

    async def _prepare_headers(self) -> None:
        headers = self.headers  # type: ignore[attr-defined]
        absent = [name for name in ("Server", "Content-Type") if name not in headers]
        await super()._prepare_headers()  # type: ignore[misc]
        for name in absent:
            headers.popall(name, None)


class TransparentResponse(_Verbatim, web.StreamResponse):
    """A streamed response that carries exactly the headers it was given (plus framing and Date)."""


class TransparentWebSocketResponse(_Verbatim, web.WebSocketResponse):
    """A server WebSocket whose 101 carries the headers it was given plus the handshake's own."""

