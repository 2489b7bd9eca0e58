"""Which host to put in the URLs a server announces: a name the certificate covers that reaches
the address the server listens on, found with (bounded, parallel) DNS lookups.

It returns a value; the CLI turns it into lines.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Sequence
from typing import Literal, NamedTuple

from ..names import Name

#: At most this many names are looked up (each in its own thread), so start-up stays quick.
MAX_LOOKUPS = 8
#: Seconds the lookups get together; a slower resolver counts as not resolving.
LOOKUP_TIMEOUT = 2.0

Problem = Literal["name-elsewhere", "ip-elsewhere", "no-names"]


class UrlPlan(NamedTuple):
    """The URL host, and when no covered name reaches the server, what is wrong.

    ``listening`` is where the server listens as it goes after "on" (``[::1]:8443``).

    ``problem``: None (``host`` connects and verifies); ``"name-elsewhere"``: ``name`` (a covered
    name, or one under the certificate's ``wildcard``) resolves to ``addresses`` (maybe none)
    and not to ``bound``, and ``resolve`` pins it to ``connect`` (``NAME:PORT:ADDRESS``);
    ``"ip-elsewhere"``: the certificate's ``ips`` are not ``bound``; ``"no-names"``: the
    certificate covers no host name or IP address.
    """

    host: str
    listening: str
    problem: Problem | None = None
    bound: str = ""
    connect: str = ""
    name: str | None = None
    wildcard: str | None = None
    addresses: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    resolve: str | None = None


def bracket(address: str) -> str:
    """An IP as it goes in a URL or after a colon: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def reaches(address: str, bound: str) -> bool:
    """Whether a client connecting to ``address`` reaches a socket bound to ``bound``."""
    try:
        ip, listening = ipaddress.ip_address(address), ipaddress.ip_address(bound)
    except ValueError:
        return False
    # IPV6_V6ONLY is set: "::" does not take IPv4 connections
    return ip.version == listening.version and (listening.is_unspecified or ip == listening)


def connect_address(bound: str) -> str:
    """The address a local client dials to reach ``bound`` (loopback for 0.0.0.0 and ::)."""
    ip = ipaddress.ip_address(bound)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return bound


def resolve_all(hosts: Sequence[str], timeout: float = LOOKUP_TIMEOUT) -> dict[str, set[str]]:
    """Each host's addresses (empty when it does not resolve), looked up in parallel; a resolver
    slower than ``timeout`` counts as not resolving, so start-up never hangs on DNS."""
    found: dict[str, set[str]] = {}

    def look_up(host: str) -> None:
        try:
            found[host] = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError):
            found[host] = set()

    threads = [threading.Thread(target=look_up, args=(host,), daemon=True) for host in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {host: set(found.get(host, ())) for host in hosts}


def url_plan(names: Sequence[Name], bound: str, port: int) -> UrlPlan:
    """The URL host for a server listening on ``bound``:``port`` with a certificate for ``names``.

    The host is a name the certificate covers that reaches ``bound``: ``localhost``, another DNS
    name that resolves to it, the bound IP itself, or a name under a wildcard. When none does,
    the plan keeps a covered name (so TLS would verify) and says why it will not connect.
    """
    dns = [n.value for n in names if n.kind == "dns" and not n.is_wildcard]
    wildcards = [n.value for n in names if n.is_wildcard]
    ips = [n.value for n in names if n.kind == "ip"]
    named = sorted(dns, key=lambda name: name != "localhost")  # localhost first, else as given
    under = [f"www.{w[2:]}" for w in wildcards]  # a name each wildcard covers
    resolved = resolve_all((named + under)[:MAX_LOOKUPS])
    listening = f"{bracket(bound)}:{port}"
    for name in named:
        if any(reaches(address, bound) for address in resolved.get(name, ())):
            return UrlPlan(name, listening)
    for ip in ips:
        if reaches(ip, bound):
            return UrlPlan(bracket(ip), listening)
    for name in under:
        if any(reaches(address, bound) for address in resolved.get(name, ())):
            return UrlPlan(name, listening)

    connect = connect_address(bound)
    if named or under:
        name = (named or under)[0]
        return UrlPlan(name, listening, "name-elsewhere", bound, connect, name, None if named else wildcards[0],
                       tuple(sorted(resolved.get(name) or ())), resolve=f"{name}:{port}:{bracket(connect)}")
    if ips:
        return UrlPlan(bracket(ips[0]), listening, "ip-elsewhere", bound, connect, ips=tuple(ips))
    return UrlPlan(bracket(connect), listening, "no-names", bound, connect)
