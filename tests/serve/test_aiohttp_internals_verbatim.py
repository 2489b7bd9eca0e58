"""What devcert.serve.aiohttp_internals' TransparentResponse relies on in aiohttp: that
``StreamResponse._prepare_headers`` is where aiohttp fills in ``Server`` and a default
``Content-Type``, so removing what the upstream did not send after it leaves the head as given.
Driven against a bare aiohttp app over a real socket; a failure names the aiohttp version."""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
from aiohttp import web

from devcert.serve.aiohttp_internals import TransparentResponse, TransparentWebSocketResponse
from tests.helpers import UNIT

CHANGED = f"aiohttp {aiohttp.__version__} changed what devcert/serve/aiohttp_internals.py relies on: "


def test_prepare_headers_is_the_hook() -> None:
    hook = getattr(web.StreamResponse, "_prepare_headers", None)
    assert hook is not None and inspect.iscoroutinefunction(hook), \
        CHANGED + "StreamResponse._prepare_headers is gone or no longer a coroutine"
    assert issubclass(TransparentWebSocketResponse, web.WebSocketResponse)


def test_transparent_response_adds_no_server_or_content_type() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = TransparentResponse(status=200, headers={"X-Up": "1", "Content-Length": "5"})
        await response.prepare(request)
        await response.write(b"hello")
        await response.write_eof()
        return response

    async def main() -> bytes:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 20 * UNIT)
            writer.close()
            return data
        finally:
            await runner.cleanup()

    head = asyncio.run(main()).split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nx-up: 1" in head, head
    assert b"\r\nserver:" not in head, CHANGED + f"Server is added after _prepare_headers: {head!r}"
    assert b"\r\ncontent-type:" not in head, CHANGED + f"Content-Type is added after _prepare_headers: {head!r}"
    assert b"\r\ndate:" in head  # RFC 9110 6.6.1: a forwarding recipient adds a missing Date
