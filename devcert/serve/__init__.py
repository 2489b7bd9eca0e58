"""``devcert serve-wss``: a trusted https:// page and wss:// endpoint on one port.

One TLS port speaks both protocols: ``GET /`` is a demo page (or the static files of
``directory``, which is never CAROOT or a folder around it, and whose dotfiles answer 404 unless
``dotfiles``), ``ws_path`` (``/ws``) echoes text and binary messages, and with ``proxy`` every
WebSocket connection and every plain HTTP request is relayed to an upstream ``ws://`` /
``http://`` dev server, so a whole dev app (pages, assets, HMR socket) works over https:// and
wss://. With ``routes`` (``NAME=UPSTREAM``, wildcards allowed) one port serves a dev stack: each
name (by SNI and Host) goes to its own upstream and presents its own certificate, issued at the
TLS handshake the first time the name is seen; a name without a route gets a 404 page listing
the routes, a Host that is not the connection's name a 421. The proxy is transparent (the
client's headers in order, minus hop-by-hop ones, plus X-Forwarded-*/Forwarded), refuses a
target that is its own address, and answers 508 to a request that already went through it.

Time limits: the TLS handshake (``handshake_timeout``, 10 s), the request head
(``request_head_timeout``, 10 s, then 408 and close: a client dribbling header bytes cannot hold a
connection) and idle keep-alive connections (``keepalive_timeout``, 15 s). Open WebSockets and
requests being handled (uploads, streamed proxied responses) have no time limit.

Built on aiohttp rather than websockets' ``process_request`` hook: the HTTP relay needs
streamed responses and keep-alive, which ``process_request`` (one buffered response, then the
connection closes) cannot give, and aiohttp's C frame parser measured at least as fast as
websockets' asyncio server on the echo benchmark (scripts/bench wss). Importing this package
imports aiohttp; the CLI imports it only in ``serve-wss``, so ``devcert create`` never pays.

The modules::

    options    every option check, done once (the CLI and WSSServer both call them)
    urls       which host the announced URLs use (DNS lookups); returns a value
    tls        the managed leaf under CAROOT/leaves and its TLS context; per-name leaves at SNI
    server     WSSServer: binding, lifecycle, routing; run() and run_in_thread()
    static     the directory's files (no dotfiles unless asked) and the demo page
    echo       the echo endpoint
    proxy      WebSocket and HTTP relaying to an upstream dev server (headers passed on as sent)
    splice     a proxied WebSocket relayed as bytes, frames followed from their headers
    logs       one line per problem, repeats summarised; aiohttp's and asyncio's reports as lines
    websocket  what echo and proxy share (upgrade test, response, close codes)
    aiohttp_internals  every use of aiohttp internals, checked by tests/serve/test_aiohttp_internals.py

Nothing here prints: :class:`WSSServer` reports through its ``log(level, message)`` callback.
"""

from __future__ import annotations

from ..errors import PortInUseError, ServeError, ServeOptionError
from ..names import DEFAULT_NAMES
from .options import (
    DEFAULT_HOST,
    DEFAULT_MAX_SIZE,
    DEFAULT_PORT,
    DEFAULT_WS_PATH,
    HANDSHAKE_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    MAX_MAX_SIZE,
    REQUEST_HEAD_TIMEOUT,
    Route,
    check_directory,
    check_max_size,
    check_ws_path,
    parse_proxy,
    parse_route,
    parse_size,
    resolve_host,
)
from .server import ThreadRunner, WSSServer, finish_tasks, new_event_loop, run
from .static import WELL_KNOWN, safe_static_path
from .tls import Certificates, ensure_certificate, server_context
from .websocket import CLOSE_GOING_AWAY, CLOSE_TIMEOUT, WRITE_LIMIT

__all__ = [
    "CLOSE_GOING_AWAY", "CLOSE_TIMEOUT", "DEFAULT_HOST", "DEFAULT_MAX_SIZE", "DEFAULT_NAMES", "DEFAULT_PORT",
    "DEFAULT_WS_PATH", "HANDSHAKE_TIMEOUT", "KEEPALIVE_TIMEOUT", "MAX_MAX_SIZE", "REQUEST_HEAD_TIMEOUT",
    "WELL_KNOWN", "WRITE_LIMIT", "Certificates", "PortInUseError", "Route", "ServeError", "ServeOptionError",
    "ThreadRunner", "WSSServer",
    "check_directory", "check_max_size", "check_ws_path", "ensure_certificate", "finish_tasks", "new_event_loop",
    "parse_proxy", "parse_route", "parse_size", "resolve_host", "run", "safe_static_path", "server_context",
]
