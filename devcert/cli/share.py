"""``devcert share``: serve the CA certificate to phones and other devices on the LAN, for a while."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Annotated, Optional

import typer

from ..ca import LocalCA
from ..errors import ServeError, UsageError
from .application import app
from .options import JsonOption, examples, whole_number
from .output import Failed, echo, warn
from .shared import load_ca_for_issuing

#: The flag for each option the core names (``{-port}`` in its messages).
FLAGS = {"host": "--host", "port": "--port", "timeout": "--timeout"}
#: One day: a share is for walking over to a device, not a service.
MAX_TIMEOUT = 86400


@app.command(
    epilog=examples(
        "devcert share                        # on this machine's LAN address, for 10 minutes",
        "devcert share --host 0.0.0.0 --port 8000 --timeout 120",
        "devcert share --json                 # one JSON line (url, sha256, ...) once it listens",
    )
)
def share(
    host: Annotated[Optional[str], typer.Option(
        "--host", help="Address to listen on (default: this machine's LAN address; 0.0.0.0: every address).",
        show_default=False, metavar="HOST")] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).", metavar="PORT",
                                      parser=whole_number)] = 0,
    timeout: Annotated[int, typer.Option("--timeout", help="Stop after this many seconds.", metavar="SECONDS",
                                         parser=whole_number)] = 600,
    json_output: JsonOption = False,
) -> None:
    """Serve the local CA over plain HTTP on the LAN for a limited time, for phones and other devices.

    Serves a page with the CA's SHA-256 and the steps for iOS and Android, the iOS profile
    (devcert.mobileconfig), the certificate in DER for Android (rootCA.crt), the PEM and a QR
    code of the URL, which the terminal shows too. Plain HTTP is enough because you compare
    the fingerprint on the device with the one printed here. Only the certificate is served.
    """
    if not 0 <= port < 65536:
        raise UsageError(f"--port {port}: give a port between 0 and 65535")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise UsageError(f"--timeout {timeout}: give a number of seconds between 1 and {MAX_TIMEOUT}")
    # Deferred: every command module is imported for `devcert --help`, and devcert.share brings
    # aiohttp (115-160 ms, measured for serve-wss) and segno (~36 ms, python -X importtime).
    from .. import share as core

    # Asked only when the URL needs it: with --host an address, nothing is probed.
    lan = core.lan_address() if host is None or _unspecified(host) else None
    if host is None:
        if lan is None:
            host = "127.0.0.1"
            warn("no LAN address found: listening on 127.0.0.1, which only this machine reaches; "
                 "give --host with the address the device can reach")
        else:
            host = lan
    url_host = None
    if _unspecified(host):
        url_host = lan or ("::1" if ":" in host else "127.0.0.1")
    ca = LocalCA.load(require_key=False) if LocalCA.exists() else load_ca_for_issuing()
    server = core.ShareServer(ca, host, port, timeout, url_host=url_host)
    try:
        stopped_by_time = asyncio.run(_run(server, core, json_output))
    except ServeError as err:
        raise Failed(err.worded(FLAGS), code=err.exit_code) from None
    except KeyboardInterrupt:
        stopped_by_time = False
    how = f"after {timeout} s" if stopped_by_time else "(Ctrl-C)"
    echo(f"Stopped {how}; {server.requests} request{'s' if server.requests != 1 else ''} served.", err=True)


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


async def _run(server, core, json_output: bool) -> bool:  # type: ignore[no-untyped-def]
    url = await server.start()
    try:
        _announce(server, core, url, json_output)
        return await server.wait()
    finally:
        await server.close()


def _announce(server, core, url: str, json_output: bool) -> None:  # type: ignore[no-untyped-def]
    ca = server.ca
    err = json_output  # with --json, stdout holds only the JSON line
    if json_output:
        echo(json.dumps({
            "url": url, "sha256": ca.fingerprint, "host": server.url_host or server.host, "listening": server.host,
            "port": server.port, "timeout": server.timeout,
            "files": {path.lstrip("/") or "page": url + path.lstrip("/") for path in server.files},
        }))
    echo(f"Sharing the local CA {ca.common_name} at {url} for {server.timeout} s.", err=err)
    echo(core.qr_terminal(url).rstrip("\n"), err=err)
    reach = server.url_host or server.host
    echo(f"Scan the code or open {url} on the device: it must reach {reach} port {server.port} "
         f"(same network; a firewall here may need to allow the port).", err=err)
    echo(f"SHA-256 to compare on the device: {core.pretty_fingerprint(ca.fingerprint)}", err=err)
    echo("iOS: devcert.mobileconfig, then Settings > General > About > Certificate Trust Settings (full trust); "
         "Android: rootCA.crt as a CA certificate. The page at / has the steps.", err=err)
    echo("Plain HTTP is fine here: the fingerprint is the check, and only the certificate is served.", err=err)
    echo(f"Press Ctrl-C to stop; it stops by itself after {server.timeout} s.", err=err)
