"""What is served from files: the folder given as ``directory`` (never its dotfiles unless
asked) and the demo page."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web

#: The demo page and what it loads; shipped as package data.
ASSETS = Path(__file__).with_name("assets")
#: The one dot folder served by default (RFC 8615): ACME http-01 challenges, security.txt and
#: the like live there and hold nothing secret. Dot names inside it are still hidden.
WELL_KNOWN = ".well-known"
#: Bytes read per chunk for a file response (when sendfile cannot be used).
CHUNK_SIZE = 64 * 1024


def hidden(parts: Iterable[str]) -> bool:
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
    if not dotfiles and hidden(parts):
        return None
    try:
        resolved = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved != root and root not in resolved.parents:
        return None
    if resolved.is_dir():
        try:
            index = (resolved / "index.html").resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if root not in index.parents or not index.is_file():
            return None
        resolved = index
    elif not resolved.is_file():
        return None
    if not dotfiles and hidden(resolved.relative_to(root).parts):
        return None
    return resolved


def serve_file(request: web.BaseRequest, root: Path, *, dotfiles: bool) -> web.StreamResponse:
    """The response for a GET or HEAD of ``request.path`` under ``root``: the file, a redirect
    to the folder's URL with its trailing slash, or 404."""
    target = safe_static_path(root, request.path, dotfiles=dotfiles)
    if target is None:
        return web.Response(status=404, text="not found\n")
    if not request.path.endswith("/") and target.name == "index.html" and not request.path.endswith("/index.html"):
        # a folder: its page's relative links need the trailing slash, as any web server does
        # (one leading slash, so the Location can never be //other-host/)
        location = "/" + request.rel_url.raw_path.lstrip("/") + "/"
        if request.rel_url.raw_query_string:
            location += "?" + request.rel_url.raw_query_string
        raise web.HTTPMovedPermanently(location)
    return web.FileResponse(target, chunk_size=CHUNK_SIZE)


def demo_page(ws_path: str) -> web.Response:
    """The demo page, talking to the echo endpoint at ``ws_path``."""
    page = (ASSETS / "index.html").read_text(encoding="utf-8")
    # a JS string literal inside <script>: JSON, with "<" escaped so "</script>" cannot end it
    page = page.replace("__WS_PATH_JSON__", json.dumps(ws_path).replace("<", "\\u003c"))
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


def routes_page(status: int, host: str, port: int, routes: Iterable[tuple[str, str]], why: str) -> web.Response:
    """The page for a name without a route (404), or for a request whose Host is not the name
    its TLS connection was made for (421): what was asked, and every route with its link."""
    rows = []
    for name, upstream in routes:
        shown = html.escape(name)
        link = shown if name.startswith("*.") else f'<a href="https://{shown}:{port}/">https://{shown}:{port}/</a>'
        rows.append(f"<li>{link} &rarr; {html.escape(upstream)}</li>")
    title = {404: "No route for this name", 421: "Misdirected request"}.get(status, "devcert serve-wss")
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>'
            f"<h1>{title}</h1><p>{html.escape(why)}</p><p>Routes on this server:</p>"
            f'<ul id="routes">{"".join(rows) or "<li>none</li>"}</ul></body></html>\n')
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})
