"""Every check of a server option, written once: the CLI (``serve-wss``) and :class:`WSSServer`
both call these, the CLI before it makes a CA or a certificate.

Messages name options as ``{-option}`` (see :class:`~devcert.errors.ServeError`): the Python
parameter's name here, the CLI's flag when the CLI words them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..ca import caroot
from ..errors import ServeOptionError, UsageError
from ..names import parse_dns_name

DEFAULT_PORT = 8443
DEFAULT_HOST = "127.0.0.1"
#: The echo endpoint's path when none is given.
DEFAULT_WS_PATH = "/ws"
#: Largest WebSocket message accepted (bigger ones close the connection with 1009).
DEFAULT_MAX_SIZE = 1024 * 1024
#: Upper bound for ``max_size``: aiohttp's C frame reader keeps the limit (plus one, see
#: :func:`devcert.serve.aiohttp_internals.max_msg_size`) in an unsigned 32-bit int, so 4 GiB
#: would overflow per connection.
MAX_MAX_SIZE = 2 * 1024 ** 3
#: Seconds a client has to finish the TLS handshake; a stalled one is dropped, never waited on.
HANDSHAKE_TIMEOUT = 10.0
#: Connections open at once, at most: about 400 MB of idle wss:// connections with uvloop, and
#: below the usual 20,000-descriptor limit with room for the proxy's upstream connections.
MAX_CONNECTIONS = 8192
#: Seconds an idle keep-alive HTTP connection is kept open.
KEEPALIVE_TIMEOUT = 15.0
#: Seconds a client has to send a complete request head (request line and headers), counted from
#: the end of the TLS handshake, or from the first byte of a later request on a keep-alive
#: connection; a slower one (slow-loris) gets 408 and is closed. Running requests, WebSockets and
#: streamed responses are never cut by it.
REQUEST_HEAD_TIMEOUT = 10.0

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
               "mib": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3}


class Route(NamedTuple):
    """Requests for ``name`` (a host name, or a wildcard ``*.app.localhost`` for every name under
    it) relayed to ``upstream`` (``ws://HOST:PORT``)."""

    name: str
    upstream: str

    def matches(self, host: str) -> bool:
        if self.name.startswith("*."):
            return host.endswith(self.name[1:]) and len(host) > len(self.name) - 1
        return host == self.name


class Checked(NamedTuple):
    """The options as the server uses them, every one checked."""

    host: str
    port: int
    ws_path: str
    directory: Path | None
    dotfiles: bool
    proxy: str | None
    max_size: int
    routes: tuple[Route, ...] = ()


def check(*, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, ws_path: str | None = None,
          directory: str | Path | None = None, dotfiles: bool = False, proxy: str | None = None,
          max_size: int = DEFAULT_MAX_SIZE, routes: Iterable[Route | str] = ()) -> Checked:
    """All options together, in the order a person fixes them; ``ws_path`` None is /ws.

    Raises :class:`ServeOptionError` (a usage error) for the first one that cannot be used. The
    host name is not looked up here (:func:`resolve_host` does, when binding).
    """
    size = check_max_size(max_size)
    port = check_port(port)
    if proxy is not None:
        proxy = parse_proxy(proxy)
        if directory is not None:
            raise ServeOptionError("{-directory} and {-proxy} cannot be combined: in proxy mode the upstream serves the pages")
        if ws_path is not None:
            raise ServeOptionError("{-ws_path} does not apply with {-proxy}: every path, /ws included, goes to the upstream")
    checked_routes = check_routes(routes)
    if checked_routes:
        if directory is not None:
            raise ServeOptionError("{-directory} and {-route} cannot be combined: each route's upstream serves its "
                                   "pages (serve the folder from a dev server and route a name to it)")
        if ws_path is not None:
            raise ServeOptionError("{-ws_path} does not apply with {-route}: every path of a routed name goes to "
                                   "its upstream")
    path = check_ws_path(DEFAULT_WS_PATH if ws_path is None else ws_path)
    if dotfiles and directory is None:
        raise ServeOptionError("{-dotfiles} applies only with {-directory}: it says which of the folder's files are served")
    folder = check_directory(directory) if directory is not None else None
    return Checked(check_host(host), port, path, folder, dotfiles, proxy, size, checked_routes)


def parse_route(text: str) -> Route:
    """``NAME=UPSTREAM`` as ``--route`` takes it: UPSTREAM a port (on 127.0.0.1), ``host:port``,
    or a ws:// / http:// URL; NAME a host name or a wildcard such as ``*.app.localhost``."""
    name, sep, upstream = text.partition("=")
    if not sep or not name.strip() or not upstream.strip():
        raise ServeOptionError("{-route} takes NAME=UPSTREAM, e.g. app.localhost=5173 (got {text!r})", text=text)
    return route(name, upstream)


def route(name: str, upstream: str | int) -> Route:
    """A checked :class:`Route` (``upstream`` as :func:`parse_route` takes it)."""
    try:
        host = parse_dns_name(name.strip(), allow_wildcard=True)
    except UsageError as err:
        raise ServeOptionError("{-route} {name!r} is not a host name: {why}", name=name, why=str(err)) from None
    if "*" in host and not host.startswith("*."):
        raise ServeOptionError("{-route} {name!r}: a wildcard is a first label *, as in *.app.localhost", name=name)
    text = str(upstream).strip()
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    return Route(host.lower(), parse_proxy(text, option="route"))


def check_routes(routes: Iterable[Route | str]) -> tuple[Route, ...]:
    """Each route checked (strings parsed as ``NAME=UPSTREAM``); a name routed twice is refused."""
    checked: dict[str, Route] = {}
    for item in routes:
        one = parse_route(item) if isinstance(item, str) else route(item.name, item.upstream)
        if one.name in checked and checked[one.name].upstream != one.upstream:
            raise ServeOptionError("{-route} {name} is given twice ({first} and {second}): give each name one upstream",
                                   name=one.name, first=checked[one.name].upstream, second=one.upstream)
        checked[one.name] = one
    return tuple(checked.values())


def find_route(routes: Iterable[Route], host: str) -> Route | None:
    """The route for ``host``: its exact name, else the wildcard with the longest suffix."""
    best: Route | None = None
    for one in routes:
        if one.name == host:
            return one
        if one.matches(host) and (best is None or len(one.name) > len(best.name)):
            best = one
    return best


def check_port(port: int) -> int:
    if not 0 <= port <= 65535:
        raise ServeOptionError("{-port} must be between 0 and 65535 (got {port})", port=port)
    return port


def check_host(host: str) -> str:
    """The address or name to listen on, without the brackets of ``[::1]`` (as in a URL)."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def parse_proxy(url: str, option: str = "proxy") -> str:
    """Check a proxy URL and return it as ``ws://host:port`` (or ``wss://``) with no path.

    The port is required: a dev server is never on 80/443, and a guessed port would only fail
    later, once per request. ``option`` is the option the URL was given with, for messages.
    """
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    if parts.scheme not in ("ws", "wss", "http", "https"):
        raise ServeOptionError("{-" + option + "} takes ws://HOST:PORT (got {url!r})", url=url)
    if not parts.hostname:
        raise ServeOptionError("{-" + option + "} needs a host, e.g. ws://127.0.0.1:5173 (got {url!r})", url=url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        raise ServeOptionError("{-" + option + "} needs a port, e.g. ws://127.0.0.1:5173 (got {url!r})", url=url)
    if not 1 <= port <= 65535:
        raise ServeOptionError("{-" + option + "} needs a port between 1 and 65535 (got {url!r})", url=url)
    if parts.path not in ("", "/") or parts.query:
        raise ServeOptionError("{-" + option + "} takes only ws://HOST:PORT; paths and queries come from each request "
                               "(got {url!r})", url=url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def check_ws_path(path: str) -> str:
    """The echo endpoint's path as requests are matched against it (decoded, starting with ``/``).

    ``/`` is refused (the page lives there), and so are ``?`` and ``#``: a request path never
    contains them, so such an endpoint could never be reached.
    """
    if not path.startswith("/"):
        path = "/" + path
    if path == "/":
        raise ServeOptionError("{-ws_path} cannot be / (the page is served there): give a path such as /ws")
    if "?" in path or "#" in path:
        raise ServeOptionError("{-ws_path} takes a path only, without a query or fragment (got {path!r})", path=path)
    if any(ch < " " or ch == "\x7f" for ch in path):
        raise ServeOptionError("{-ws_path} cannot contain control characters (got {path!r})", path=path)
    return path


def check_directory(directory: str | Path) -> Path:
    """The folder of files to serve, resolved; :class:`ServeOptionError` when it is not a
    folder, or when it is CAROOT, holds CAROOT or lies inside it.

    Serving any of those would hand the CA's private key (or the managed leaves' keys) to every
    client. Real paths are compared (symlinks resolved), and then file identities, so a symlink,
    a bind mount or another spelling on a case-insensitive disk is refused as well.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ServeOptionError("{-directory} {folder} is not a folder", folder=folder)
    resolved = folder.resolve()
    overlap = caroot_overlap(resolved)
    if overlap is not None:
        how, root = overlap
        # the real path, and what was typed when a link leads there
        shown = str(resolved) if folder.absolute() == resolved else f"{folder} (that is {resolved})"
        what = {"is": "it is CAROOT", "contains": f"it contains CAROOT {root}",
                "inside": f"it is inside CAROOT {root}"}[how]
        raise ServeOptionError("will not serve {shown}: {what}, which holds the CA's private key; "
                               "serve a folder of only your site's files instead, such as ./public",
                               shown=shown, what=what, folder=resolved, caroot=root)
    return resolved


def caroot_overlap(folder: Path) -> tuple[str, Path] | None:
    """How the resolved ``folder`` overlaps CAROOT: ``("is" | "contains" | "inside", CAROOT)``."""
    # not strict: CAROOT may not exist yet, and serve-wss makes it (and its key) before serving
    root = caroot().resolve()
    if folder == root:
        return "is", root
    if folder in root.parents:
        return "contains", root
    if root in folder.parents:
        return "inside", root
    return _same_file_overlap(folder, root)


def _same_file_overlap(folder: Path, root: Path) -> tuple[str, Path] | None:
    """The same folder under another path: a bind mount, or other letter case on macOS/Windows."""
    try:
        here = folder.stat()
    except OSError:
        return None
    for ancestor in (root, *root.parents):
        try:
            if os.path.samestat(here, ancestor.stat()):
                return ("is" if ancestor == root else "contains"), root
        except OSError:
            continue  # not made yet
    try:
        root_stat = root.stat()
    except OSError:
        return None
    for ancestor in folder.parents:
        try:
            if os.path.samestat(ancestor.stat(), root_stat):
                return "inside", root
        except OSError:
            continue
    return None


def check_max_size(size: int) -> int:
    if not 1 <= size <= MAX_MAX_SIZE:
        raise ServeOptionError("{-max_size} must be between 1 byte and 2GiB (got {size})", size=size)
    return size


def parse_size(text: str) -> int:
    """A message size limit written as a person does: ``1048576``, ``512KiB``, ``4MiB``, ``1g``."""
    raw = text.strip().lower()
    number = raw.rstrip("kmgib")
    unit = raw[len(number):]
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError, OverflowError):  # OverflowError: "inf"; ValueError: "nan"
        raise ServeOptionError("{-max_size} takes a size like 1048576, 512KiB or 4MiB (got {text!r})", text=text) from None
    if not 1 <= value <= MAX_MAX_SIZE:
        raise ServeOptionError("{-max_size} must be between 1 byte and 2GiB (got {text!r})", text=text, size=value)
    return value


def resolve_host(host: str) -> tuple[int, Any]:
    """``(family, sockaddr)`` to bind for ``host`` (an IP or a name); :class:`ServeOptionError`
    when a name does not resolve."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        return family, (host, 0)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise ServeOptionError("cannot resolve {-host} {host} ({why}): give an IP address such as 127.0.0.1",
                               host=host, why=why) from None
    if not infos:
        raise ServeOptionError("cannot resolve {-host} {host}: give an IP address such as 127.0.0.1", host=host)
    return infos[0][0], infos[0][4]


def is_unspecified(address: str) -> bool:
    """Whether a bound address (``0.0.0.0``, ``::``) takes connections from every network."""
    return ipaddress.ip_address(address.split("%")[0]).is_unspecified


def check_timeouts(*timeouts: float) -> None:
    if not all(t > 0 for t in timeouts):
        raise ServeOptionError("time limits must be more than 0 seconds")
