"""What the echo endpoint and the proxy share about WebSocket connections: the upgrade test,
the response both make, close codes and their time limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .aiohttp_internals import max_msg_size

#: Bytes buffered for sending to one slow WebSocket client before its sender waits (only that
#: connection waits; the others go on).
WRITE_LIMIT = 256 * 1024
#: Seconds given to open WebSocket connections to finish their closing handshake on shutdown.
CLOSE_TIMEOUT = 3.0
CLOSE_GOING_AWAY = 1001


def is_upgrade(request: web.BaseRequest) -> bool:
    """Whether ``request`` asks to become a WebSocket."""
    return "websocket" in request.headers.get("Upgrade", "").lower() and \
        "upgrade" in request.headers.get("Connection", "").lower()


def response(max_size: int, protocols: Iterable[str] = (), *, autoclose: bool = True,
             cls: type[web.WebSocketResponse] = web.WebSocketResponse) -> web.WebSocketResponse:
    """A server-side WebSocket (of class ``cls``) accepting messages of up to ``max_size`` bytes, uncompressed."""
    return cls(protocols=tuple(protocols), max_msg_size=max_msg_size(max_size), compress=False,
                                 writer_limit=WRITE_LIMIT, autoping=True, timeout=CLOSE_TIMEOUT, autoclose=autoclose)


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept a server answers to ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def sendable_close_code(code: int | None) -> int:
    """A close code that may go on the wire: 1005/1006/1015 are reserved for reporting only."""
    if code is None or code in (1005, 1006, 1015) or not (1000 <= code <= 4999):
        return 1000
    return code


async def close_all(sockets: Iterable[Any], timeout: float = CLOSE_TIMEOUT) -> None:
    """Close each WebSocket with 1001 (going away), waiting at most ``timeout`` for them all."""
    tasks = [asyncio.ensure_future(ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")) for ws in sockets]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def describe_size_limit(max_size: int, option_names: Mapping[str, str] | None = None) -> str:
    """How log lines and close reasons name the message size limit: ``max_size 1000 bytes``.

    ``option_names`` maps the option's Python name to the name its reader knows (the CLI
    passes its flags: ``--max-size``), so the core never spells a command line.
    """
    return f"{(option_names or {}).get('max_size', 'max_size')} {max_size} bytes"
