"""Serving until SIGINT or SIGTERM: the run loop ``serve-wss`` and ``acme`` share."""

from __future__ import annotations

import asyncio
import signal
from typing import Callable, Protocol, TypeVar


class Serving(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Serving)


async def serve_until_signal(loop: asyncio.AbstractEventLoop, server: S, *,
                             on_ready: Callable[[S], None] | None = None,
                             stopping: Callable[[], None] | None = None) -> None:
    """Start ``server``, call ``on_ready(server)``, wait for SIGINT or SIGTERM, then stop it
    (also when ``on_ready`` raises), ``stopping()`` first. The handlers are in place before the
    start, so a signal while it starts stops the server as soon as it is up."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await server.start()
    try:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
    finally:
        if stopping is not None:
            stopping()
        await server.stop()
