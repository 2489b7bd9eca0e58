"""What devcert.serve.aiohttp_internals relies on in aiohttp, checked against the installed one.

Each test drives aiohttp itself (a bare ``web.Application``, not WSSServer) over a real TLS
connection on 127.0.0.1, so a failure here names the aiohttp behaviour that changed, not a
symptom three layers up.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import WSMsgType, web

from devcert.serve.aiohttp_internals import CoalescingTransport, HeadDeadline, listen, max_msg_size
from tests.helpers import UNIT

#: How long any one step may take before the test gives up (generous: the machine is shared).
STEP = 20 * UNIT

CHANGED = f"aiohttp {aiohttp.__version__} changed what devcert/serve/aiohttp_internals.py relies on: "


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class Served:
    """An aiohttp app served through :func:`listen` on 127.0.0.1, as WSSServer serves it."""

    def __init__(self, handler: Any, server_ctx: ssl.SSLContext, request_head_timeout: float = STEP) -> None:
        self.handler = handler
        self.server_ctx = server_ctx
        self.request_head_timeout = request_head_timeout
        self.connections: dict[Any, HeadDeadline] = {}
        self.logged: list[tuple[str, str]] = []

    async def __aenter__(self) -> Served:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handler)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server = await listen(self.runner, sock, self.server_ctx, connections=self.connections,
                                   request_head_timeout=self.request_head_timeout, handshake_timeout=STEP,
                                   shutdown_timeout=UNIT, log=lambda level, message: self.logged.append((level, message)))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()
        await self.runner.cleanup()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 3 * STEP))


def test_app_runner_server_makes_a_request_handler_protocol() -> None:
    """listen() calls AppRunner.server() for each connection and drives the result as an
    asyncio protocol whose ``transport`` attribute the response writers read."""

    async def body() -> None:
        runner = web.AppRunner(web.Application(), handle_signals=False)
        await runner.setup()
        try:
            factory = runner.server
            assert callable(factory), CHANGED + "AppRunner.server is not a protocol factory after setup()"
            handler = factory()
            assert isinstance(handler, asyncio.Protocol), CHANGED + f"AppRunner.server() made {type(handler)!r}"
            for method in ("connection_made", "data_received", "eof_received", "connection_lost",
                           "pause_writing", "resume_writing"):
                assert callable(getattr(handler, method, None)), CHANGED + f"the request handler has no {method}()"
            assert hasattr(handler, "transport"), CHANGED + "the request handler has no transport attribute"
        finally:
            await runner.cleanup()

    run(body())
    params = inspect.signature(web.BaseRequest.protocol.fget).parameters  # type: ignore[union-attr]
    assert list(params) == ["self"], CHANGED + "BaseRequest.protocol is no longer a plain property"


def test_request_transport_is_the_wrapped_connection(tls) -> None:  # type: ignore[no-untyped-def]
    """A handler finds its HeadDeadline from ``request.transport``, and ``request.protocol``
    is the handler that HeadDeadline wraps."""
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        conn = served.connections.get(request.transport)
        seen.append((conn, conn is not None and request.protocol is conn.inner))
        return web.Response(text="ok")

    served = Served(handler, tls[0])

    async def body() -> None:
        async with served as s, aiohttp.ClientSession() as client:
            async with client.get(f"https://127.0.0.1:{s.port}/", ssl=tls[1]) as response:
                assert await response.text() == "ok"

    run(body())
    assert seen and isinstance(seen[0][0], HeadDeadline), \
        CHANGED + "request.transport is not the transport the protocol got in connection_made()"
    assert seen[0][1], CHANGED + "request.protocol is not the handler made by AppRunner.server()"


def test_websocket_writes_go_through_the_swapped_transport(tls, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Setting ``request.protocol.transport`` before ``prepare()`` routes the 101 and every
    frame through CoalescingTransport (the write path reads ``protocol.transport`` each time)."""
    writes: list[bytes] = []
    real_write = CoalescingTransport.write

    def counting_write(self: CoalescingTransport, data: Any) -> None:
        writes.append(bytes(data))
        real_write(self, data)

    monkeypatch.setattr(CoalescingTransport, "write", counting_write)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        served.connections[request.transport].coalesce_writes(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    served = Served(handler, tls[0])

    async def body() -> list[str]:
        got = []
        async with served as s, aiohttp.ClientSession() as client:
            async with client.ws_connect(f"wss://127.0.0.1:{s.port}/ws", ssl=tls[1]) as ws:
                for i in range(5):  # sent together: the replies may be held and joined
                    await ws.send_str(f"m{i}")
                for _ in range(5):
                    got.append(await ws.receive_str(timeout=STEP))
        return got

    assert run(body()) == [f"m{i}" for i in range(5)], CHANGED + "the echo through CoalescingTransport lost messages"
    assert writes and writes[0].startswith(b"HTTP/1.1 101"), \
        CHANGED + "the 101 response no longer goes through request.protocol.transport"
    assert len(writes) >= 6, CHANGED + f"WebSocket frames bypass request.protocol.transport ({len(writes)} writes)"


def test_a_message_of_max_msg_size_bytes_is_refused(tls) -> None:  # type: ignore[no-untyped-def]
    """aiohttp refuses a message of ``max_msg_size`` bytes (1009), which is why
    max_msg_size(limit) is limit + 1; with it, ``limit`` bytes pass and one more does not."""
    limit = 100

    def handler_for(max_msg: int) -> Any:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(max_msg_size=max_msg)
            await ws.prepare(request)
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
            return ws
        return handler

    async def close_code_after(max_msg: int, size: int) -> int | None:
        async with Served(handler_for(max_msg), tls[0]) as s, aiohttp.ClientSession() as client:
            async with client.ws_connect(f"wss://127.0.0.1:{s.port}/ws", ssl=tls[1]) as ws:
                await ws.send_bytes(b"x" * size)
                msg = await ws.receive(timeout=STEP)
                if msg.type is WSMsgType.BINARY:
                    return None
                return ws.close_code if msg.type is WSMsgType.CLOSED else msg.data

    assert run(close_code_after(limit, limit)) == 1009, \
        CHANGED + "a message of exactly max_msg_size bytes is accepted now: max_msg_size() must return limit"
    assert run(close_code_after(max_msg_size(limit), limit)) is None
    assert run(close_code_after(max_msg_size(limit), limit + 1)) == 1009


def test_head_deadline_answers_a_dribbled_head_with_408(tls) -> None:  # type: ignore[no-untyped-def]
    """The clock runs from connection_made until the handler calls request_started(); a partial
    head that outlives it gets 408 and the connection is closed."""

    async def handler(request: web.Request) -> web.Response:
        conn = served.connections[request.transport]
        conn.request_started()
        try:
            return web.Response(text="ok")
        finally:
            conn.request_done()

    # long enough that the partial head surely arrives first, even on a loaded machine
    served = Served(handler, tls[0], request_head_timeout=2 * UNIT)

    async def body() -> bytes:
        async with served as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port, ssl=tls[1])
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            data = await asyncio.wait_for(reader.read(), STEP)
            writer.close()
            return data

    answer = run(body())
    assert answer.startswith(b"HTTP/1.1 408 "), CHANGED + f"a dribbled head got {answer[:40]!r}"
    assert [level for level, _ in served.logged] == ["warning"], served.logged


def test_every_aiohttp_name_used_exists() -> None:
    """The names aiohttp_internals and the WebSocket path call, with the keywords passed."""
    for name in ("AppRunner", "Application", "WebSocketResponse", "BaseRequest"):
        assert hasattr(web, name), CHANGED + f"aiohttp.web.{name} is gone"
    ws_params = inspect.signature(web.WebSocketResponse).parameters
    for keyword in ("protocols", "max_msg_size", "compress", "writer_limit", "autoping", "timeout", "autoclose"):
        assert keyword in ws_params, CHANGED + f"WebSocketResponse() takes no {keyword}="
    assert isinstance(web.AppRunner.server, property), CHANGED + "AppRunner.server is not a property"
