"""The echo endpoint: every text and binary message is sent back as it came."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from . import websocket
from .aiohttp_internals import Log


async def echo(request: web.BaseRequest, *, max_size: int, sockets: set[Any], log: Log,
               limit_words: str = "") -> web.WebSocketResponse:
    """Answer the upgrade, then echo until the client closes; ``sockets`` holds the connection
    while it is open (so shutdown can close it with 1001). ``limit_words`` names the size limit in
    the log line (``websocket.describe_size_limit``'s, by default)."""
    ws = websocket.response(max_size)
    await ws.prepare(request)
    sockets.add(ws)
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
        sockets.discard(ws)
    if getattr(error, "code", None) == 1009:
        log("warning", f"closed a connection from {request.remote}: message larger than "
                       f"{limit_words or websocket.describe_size_limit(max_size)} (1009)")
    return ws
