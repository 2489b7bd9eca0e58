"""A proxied WebSocket relayed as bytes: after the handshake, what one side sends is written to
the other from the transport's own ``data_received`` callback, with no frame decoding, no
re-encoding and no task switch per message.

Relaying decoded messages (read a frame into a message on one side, build and mask a new
frame on the other) cost two task wake-ups and a re-framing per message; a byte relay costs
one callback per read. What a proxy must still know about the frames it passes is kept by
:class:`FrameCounter`, which reads only frame headers: the size of each message (the
``max_size`` limit, closed with 1009 towards the sender and 1001 towards the other side, as
the decoding relay did), and whether a direction stands between two frames, so a close frame
can be put in (on shutdown, 1001 to both sides) without cutting a frame in two. Frames keep
their masking as sent: a client's are masked and go to the upstream, the upstream's are not
and go to the client, as RFC 6455 wants. No extension is negotiated (the proxy does not offer
the client's upstream), so frame lengths are message sizes.

Flow control is passed across: a side whose writes back up stops the other side's reads.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

from .aiohttp_internals import Log
from .websocket import CLOSE_GOING_AWAY, CLOSE_TIMEOUT, describe_size_limit

CLOSE_TOO_BIG = 1009


def close_frame(code: int, reason: bytes, *, masked: bool) -> bytes:
    """A close frame (RFC 6455 5.5.1); ``masked`` for one a client sends."""
    payload = struct.pack("!H", code) + reason[:123]
    if not masked:
        return bytes((0x88, len(payload))) + payload
    key = os.urandom(4)
    return bytes((0x88, 0x80 | len(payload))) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class FrameCounter:
    """Follows the frames in one direction from their headers: message sizes and boundaries."""

    __slots__ = ("max_size", "head", "left", "message", "saw_close")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.saw_close = False  # a close frame went this way
        self.head = b""  # the start of a header split across reads
        self.left = 0  # payload bytes of the current frame still to come
        self.message = 0  # bytes of the current (fragmented) message so far

    @property
    def between_frames(self) -> bool:
        return self.left == 0 and not self.head

    def feed(self, data: bytes) -> int:
        """Account for ``data``; returns -1, or the offset in ``data`` of the header of a frame
        that makes its message larger than ``max_size`` (nothing from there on is accounted)."""
        i, n = 0, len(data)
        while i < n:
            if self.left:
                take = min(self.left, n - i)
                self.left -= take
                i += take
                continue
            start = i - len(self.head)  # may be negative: the header began in an earlier read
            head = self.head + data[i:i + 14]
            if len(head) < 2:
                self.head = head
                return -1
            b0, b1 = head[0], head[1]
            length = b1 & 0x7F
            need = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if b1 & 0x80 else 0)
            if len(head) < need:
                self.head = head
                return -1
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            opcode = b0 & 0x0F
            if opcode < 8:  # a data or continuation frame: part of a message
                size = self.message + length
                if size > self.max_size:
                    return max(start, 0)
                self.message = 0 if b0 & 0x80 else size
            elif opcode == 8:
                self.saw_close = True
            i += need - len(self.head)
            self.head = b""
            self.left = length
        return -1


#: Largest upstream response head read for a WebSocket handshake.
MAX_HEAD = 64 * 1024


class UpstreamProtocol(asyncio.Protocol):
    """The connection to the upstream: first its handshake response head (``head``, a future
    of ``(head bytes, bytes after it)``), then, once :attr:`splice` is set, every read goes to
    the client through it."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.head: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.splice: Splice | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a lone frame goes out at once, not after the peer's delayed ACK
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):  # pragma: no cover - not TCP
                pass

    def data_received(self, data: bytes) -> None:
        if self.splice is not None:
            self.splice.from_upstream(data)
            return
        self.buffer += data
        if not self.head.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, self.buffer = self.buffer[:end + 4], self.buffer[end + 4:]
                self.head.set_result((head, b""))
            elif len(self.buffer) > MAX_HEAD:
                self.head.set_exception(ConnectionError(f"a response head over {MAX_HEAD} bytes"))
                self.transport.close()

    def start(self, splice: Splice) -> None:
        """Relay from now on; what came after the head so far goes first."""
        self.splice = splice
        pending, self.buffer = self.buffer, b""
        if pending:
            splice.from_upstream(pending)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionError(str(exc) if exc else "the connection closed before a response"))
        if self.splice is not None:
            self.splice.lost("upstream")

    def pause_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_transport.pause_reading()

    def resume_writing(self) -> None:
        if self.splice is not None:
            self.splice.client_transport.resume_reading()


class Splice:
    """One proxied WebSocket: ``client_transport`` (TLS, from the server) and
    ``upstream_transport`` (to the upstream), joined. :meth:`from_client` is called with the
    client's bytes (by the connection's protocol), and the client side's flow control is passed
    on with :meth:`client_paused` / :meth:`client_resumed`. ``done`` resolves once both
    connections are closed. ``close()`` is what shutdown calls (as on a WebSocket)."""

    def __init__(self, client_transport: Any, upstream_transport: Any, *, max_size: int, log: Log, what: str,
                 limit_words: str = "") -> None:
        self.client_transport = client_transport
        self.upstream_transport = upstream_transport
        self.log = log
        self.what = what
        self.up = FrameCounter(max_size)  # client -> upstream
        self.down = FrameCounter(max_size)  # upstream -> client
        self.closing = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self.max_size = max_size
        #: the size limit as the log line and close reason name it
        self.limit_words = limit_words or describe_size_limit(max_size)

    @property
    def closed(self) -> bool:
        return self.done.done()

    # the two directions
    def from_client(self, data: bytes) -> None:
        if self.closing:
            return  # the client's answer to our close frame: the upstream must not see it
        bad = self.up.feed(data)
        if bad < 0:
            self.upstream_transport.write(data)
            return
        if bad:
            self.upstream_transport.write(data[:bad])
        self._too_big("the client", self.client_transport, self.upstream_transport, client_sent=True)

    def from_upstream(self, data: bytes) -> None:
        if self.closing:
            return
        bad = self.down.feed(data)
        if bad < 0:
            self.client_transport.write(data)
            return
        if bad:
            self.client_transport.write(data[:bad])
        self._too_big("the upstream", self.upstream_transport, self.client_transport, client_sent=False)

    def from_client_lost(self) -> None:
        self.lost("client")

    def client_paused(self) -> None:
        self.upstream_transport.pause_reading()

    def client_resumed(self) -> None:
        self.upstream_transport.resume_reading()

    # closing
    def _too_big(self, side: str, sender: Any, other: Any, *, client_sent: bool) -> None:
        why = f"{side} sent a message larger than {self.limit_words}"
        self.log("warning", f"closed the proxied WebSocket {self.what}: {why} ({CLOSE_TOO_BIG})")
        # frames to the upstream are masked (we are its client), frames to the client are not
        sender.write(close_frame(CLOSE_TOO_BIG, b"", masked=not client_sent))
        other.write(close_frame(CLOSE_GOING_AWAY, why.encode(), masked=client_sent))
        self._start_closing()

    def _start_closing(self) -> None:
        self.closing = True
        # each side answers the close frame and then closes; whoever does not is cut
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        for transport in (self.client_transport, self.upstream_transport):
            if not transport.is_closing():
                transport.abort()
        self._finish()

    async def close(self, code: int = CLOSE_GOING_AWAY, message: bytes = b"") -> None:
        """Close both sides with ``code`` (as shutdown does with 1001), and wait for them."""
        if not self.closing and not self.closed:
            for counter, transport, masked in ((self.down, self.client_transport, False),
                                               (self.up, self.upstream_transport, True)):
                if counter.between_frames:
                    transport.write(close_frame(code, message, masked=masked))
                else:  # halfway through a frame: a close frame now would corrupt it
                    transport.abort()
            self._start_closing()
        try:
            await asyncio.wait_for(asyncio.shield(self.done), CLOSE_TIMEOUT + 1)
        except asyncio.TimeoutError:  # pragma: no cover - _abort has run by then
            pass

    def lost(self, side: str) -> None:
        """One side's connection ended: the other is closed once what it was sent is written
        (its close frame among it, if one came; if none did, it gets 1001 and why, between
        frames, as a decoding relay would have said)."""
        other = self.upstream_transport if side == "client" else self.client_transport
        towards = self.up if side == "client" else self.down
        if not other.is_closing():
            if not self.closing and not towards.saw_close and towards.between_frames:
                reason = f"the {'client' if side == 'client' else 'upstream'} connection was lost".encode()
                other.write(close_frame(CLOSE_GOING_AWAY, reason, masked=side == "client"))
            other.close()
        if self.client_transport.is_closing() and self.upstream_transport.is_closing():
            self._finish()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.done.done():
            self.done.set_result(None)
