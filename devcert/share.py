"""``devcert share``: hand the CA certificate to a phone or another device over the LAN.

A small plain-HTTP server, up for a limited time, serves what each device installs:

    /                       a page with the CA's SHA-256 and the steps for iOS and Android
    /rootCA.crt             the certificate in DER (what Android's "CA certificate" installer takes)
    /devcert.mobileconfig   an iOS/iPadOS configuration profile with one com.apple.security.root payload
    /rootCA.pem             the PEM, for everything else
    /qr.png                 a QR code of the page's URL

Plain HTTP on purpose: a phone has no way to trust an https:// certificate from a CA it does
not trust yet. What protects the user is the fingerprint: the device shows the SHA-256 of what
it installs, and the user compares it with the one devcert prints. Only the certificate is
served, never the key. Requests are bounded (GET/HEAD of those five paths, aiohttp's header
limits, no bodies read) and the server stops by itself after ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import html
import io
import ipaddress
import plistlib
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import segno
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from .errors import PortInUseError, ServeError

if TYPE_CHECKING:
    from .ca import LocalCA

__all__ = ["DEFAULT_TIMEOUT", "NETWORK_SECURITY_CONFIG", "ShareServer", "lan_address", "mobileconfig",
           "pretty_fingerprint", "qr_png", "qr_terminal", "shared_files"]

#: Seconds the server stays up unless told otherwise: long enough to walk to a phone and
#: through iOS's three screens, short enough not to stay open on a café network.
DEFAULT_TIMEOUT = 600
#: A namespace for the profile's UUIDs: the same CA gives the same profile, so installing it
#: again replaces the earlier one on the device instead of adding a second.
_PROFILE_NAMESPACE = uuid.UUID("6f1d2c1e-6a43-4c51-9a53-8d1f6b0c6d0e")

#: What an Android app needs to trust user-installed CAs (Android 7+ trusts only system CAs by
#: default): res/xml/network_security_config.xml, named in the manifest's <application
#: android:networkSecurityConfig="@xml/network_security_config">.
NETWORK_SECURITY_CONFIG = """\
<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
    <debug-overrides>
        <trust-anchors>
            <certificates src="user" />
            <certificates src="system" />
        </trust-anchors>
    </debug-overrides>
</network-security-config>
"""


def pretty_fingerprint(sha256_hex: str) -> str:
    """``AB:CD:...``: how iOS (More Details) and Android (certificate details) show it."""
    text = sha256_hex.upper()
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def mobileconfig(ca: LocalCA) -> bytes:
    """An iOS/iPadOS configuration profile (XML plist) installing ``ca`` as a root.

    After installing it the user still has to turn on full trust in Settings > General >
    About > Certificate Trust Settings: iOS requires that for every profile-installed root.
    """
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    ident = f"dev.devcert.ca.{ca.fingerprint[:16]}"
    payload = {
        "PayloadCertificateFileName": "rootCA.crt",
        "PayloadContent": der,
        "PayloadDescription": "Adds the devcert development CA as a trusted root",
        "PayloadDisplayName": ca.common_name,
        "PayloadIdentifier": f"{ident}.root",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": str(uuid.uuid5(_PROFILE_NAMESPACE, ca.fingerprint + "/root")).upper(),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [payload],
        "PayloadDescription": f"devcert development CA, SHA-256 {pretty_fingerprint(ca.fingerprint)}",
        "PayloadDisplayName": f"devcert CA ({ca.fingerprint[:8]})",
        "PayloadIdentifier": ident,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(_PROFILE_NAMESPACE, ca.fingerprint)).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def qr_png(url: str) -> bytes:
    qr = segno.make(url, error="m")
    out = io.BytesIO()
    qr.save(out, kind="png", scale=8, border=4)
    return out.getvalue()


def qr_terminal(url: str) -> str:
    """The QR code of ``url`` as text for a terminal (half blocks: two modules per line)."""
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def _page(ca: LocalCA, url: str) -> bytes:
    fp = html.escape(pretty_fingerprint(ca.fingerprint))
    name = html.escape(ca.common_name)
    xml = html.escape(NETWORK_SECURITY_CONFIG)
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>devcert CA: {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:1rem auto;padding:0 1rem;line-height:1.45}}
code,pre{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}} code{{overflow-wrap:anywhere}} pre{{padding:.6rem;overflow-x:auto}}
.fp{{font-family:monospace;word-break:break-all;font-size:1.05rem;background:#fff6d6;padding:.5rem}}
a.button{{display:inline-block;margin:.2rem 0;padding:.5rem .8rem;border:1px solid #888;border-radius:6px;text-decoration:none}}</style>
</head><body>
<h1>Trust the devcert CA</h1>
<p>CA: <strong>{name}</strong>. Its SHA-256 fingerprint, to compare with what your computer's terminal
shows and what the device shows before you trust it:</p>
<p class="fp" id="sha256">{fp}</p>
<p>This page is plain HTTP on purpose: the device cannot check an https:// certificate from a CA it does
not trust yet. The fingerprint is the check: if it differs, do not install.</p>

<h2>iPhone, iPad (iOS, iPadOS)</h2>
<ol>
<li>Open this page in Safari and tap <a class="button" href="devcert.mobileconfig">Download the profile</a>; allow the download.</li>
<li>Open Settings: <em>Profile Downloaded</em> (or General &gt; VPN &amp; Device Management), tap the devcert profile,
then <em>Install</em>. Under <em>More Details</em> compare the SHA-256 with the one above.</li>
<li>Settings &gt; General &gt; About &gt; <em>Certificate Trust Settings</em>: turn on <em>full trust</em> for {name}.
Without this last step Safari and apps still refuse the certificates.</li>
</ol>

<h2>Android</h2>
<ol>
<li>Download <a class="button" href="rootCA.crt">rootCA.crt</a>.</li>
<li>Settings &gt; Security (&amp; privacy) &gt; More security settings &gt; Encryption &amp; credentials &gt;
<em>Install a certificate</em> &gt; <em>CA certificate</em>, and pick the downloaded file (the path differs a little
between vendors: search Settings for "CA certificate").</li>
<li>Chrome and the system browser trust it then. Apps trust user-installed CAs only when they say so
(Android 7 and later): in your app's debug build add <code>res/xml/network_security_config.xml</code>
<pre>{xml}</pre>
and <code>android:networkSecurityConfig="@xml/network_security_config"</code> on the manifest's
<code>&lt;application&gt;</code>.</li>
</ol>

<h2>Other devices</h2>
<p><a class="button" href="rootCA.pem">rootCA.pem</a> (PEM) and <a class="button" href="rootCA.crt">rootCA.crt</a> (DER).
This page: <a href="{html.escape(url)}">{html.escape(url)}</a> <a href="qr.png">(QR code)</a></p>
</body></html>
"""
    return text.encode("utf-8")


def shared_files(ca: LocalCA, url: str) -> dict[str, tuple[str, bytes]]:
    """Path -> (content type, body) of everything the server hands out."""
    return {
        "/": ("text/html; charset=utf-8", _page(ca, url)),
        "/rootCA.crt": ("application/x-x509-ca-cert", ca.cert.public_bytes(serialization.Encoding.DER)),
        "/devcert.mobileconfig": ("application/x-apple-aspen-config", mobileconfig(ca)),
        "/rootCA.pem": ("application/x-pem-file", ca.cert_pem),
        "/qr.png": ("image/png", qr_png(url)),
    }


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def lan_address() -> str | None:
    """This machine's IPv4 address on the LAN (what a phone on the same Wi-Fi reaches), or None.

    First the host name's addresses; then the source address the kernel would pick for a
    route off this machine: ``connect`` on a UDP socket only chooses a route, it sends nothing
    (192.0.2.1 is TEST-NET-1, reserved for documentation).
    """
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            if _usable(str(info[4][0])):
                return str(info[4][0])
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return address if _usable(address) else None


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@dataclass
class ShareServer:
    """The server: ``await start()`` binds and returns the URL, ``await wait()`` returns when the
    time is up (or :meth:`stop` was called), ``await close()`` releases the port."""

    ca: LocalCA
    host: str
    port: int = 0
    timeout: float = DEFAULT_TIMEOUT
    #: The address put in the URL when it is not ``host`` (``host`` 0.0.0.0: the LAN address).
    url_host: str | None = None
    url: str = ""
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: int = 0
    _runner: web.AppRunner | None = None
    _stopped: asyncio.Event | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        found = self.files.get(request.path)
        if found is None:
            return web.Response(status=404, text="not found: this server hands out only the devcert CA\n")
        content_type, body = found
        headers = {"Cache-Control": "no-store"}
        if request.path != "/" and request.path != "/qr.png":
            headers["Content-Disposition"] = f'attachment; filename="{request.path[1:]}"'
        return web.Response(body=body, content_type=content_type.split(";")[0], headers=headers,
                            charset="utf-8" if content_type.startswith("text/") else None)

    async def start(self) -> str:
        app = web.Application(client_max_size=1024)
        app.router.add_route("GET", "/{tail:.*}", self._handle)  # GET routes answer HEAD too
        # The socket is bound here, not by aiohttp, so the port it got (port 0: any free one)
        # is known through public API.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(16)
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                raise PortInUseError("port {port} on {host} is in use by another program: choose another with {-port}",
                                     host=self.host, port=self.port) from None
            raise ServeError("cannot listen on {host}: {reason}; give an address of this machine with {-host}",
                             host=self.host, reason=err.strerror or str(err)) from None
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.url = url_for(self.url_host or self.host, self.port)
        self.files = shared_files(self.ca, self.url)
        self._stopped = asyncio.Event()
        return self.url

    def stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    async def wait(self) -> bool:
        """Serve until the time is up (True) or :meth:`stop` (False)."""
        assert self._stopped is not None
        try:
            await asyncio.wait_for(self._stopped.wait(), self.timeout)
        except asyncio.TimeoutError:
            return True
        return False

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
