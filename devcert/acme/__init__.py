"""``devcert acme``: an ACME (RFC 8555) server that issues from the local CA.

- :mod:`.server`: the aiohttp application, its routes and the run loop
- :mod:`.store`: accounts, orders, authorizations, challenges, certificates in SQLite (CAROOT/acme)
- :mod:`.jws`: request signatures, verified through josepy
- :mod:`.challenges`: http-01, tls-alpn-01 (RFC 8737) and dns-01 validation
- :mod:`.problems`: RFC 7807 problem documents with RFC 8555's types
"""

from __future__ import annotations

from .server import DEFAULT_DAYS, AcmeServer, Config, run
from .challenges import Settings

__all__ = ["AcmeServer", "Config", "DEFAULT_DAYS", "Settings", "run"]
