"""``devcert share``: the files a phone fetches, fetched over loopback and read as a device would.

The profile is parsed with plistlib (its root payload must hold the CA's DER), rootCA.crt must
be DER of the CA, the QR code in qr.png is decoded by a real reader (zbar-tools' zbarimg) and
must be the URL, and the server stops by itself when its time is up.
"""

from __future__ import annotations

import hashlib
import json
import plistlib
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devcert.ca import LocalCA
from devcert.share import NETWORK_SECURITY_CONFIG, mobileconfig, pretty_fingerprint
from tests.helpers import devcert_exe, one_error_line, require_tool, run_devcert

#: Seconds the shared server is given in these tests: enough for every fetch below on a busy
#: machine; the test then waits for it to end by itself.
SHARE_SECONDS = 20


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture
def shared(cli_env, tmp_path):  # type: ignore[no-untyped-def]
    """``devcert share`` on 127.0.0.1, any port, with --json: (process, its JSON line, the CA)."""
    ca = LocalCA.create(Path(cli_env["DEVCERT_CAROOT"]))
    proc = subprocess.Popen([devcert_exe(), "share", "--host", "127.0.0.1", "--port", "0",
                             "--timeout", str(SHARE_SECONDS), "--json"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield proc, json.loads(line), ca
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_files_parse_as_devices_read_them_and_the_server_stops_by_itself(shared, tmp_path):
    proc, info, ca = shared
    url = info["url"]
    assert url == f"http://127.0.0.1:{info['port']}/"
    assert info["sha256"] == ca.fingerprint
    ca_der = ca.cert.public_bytes(serialization.Encoding.DER)

    status, ctype, der = fetch(url + "rootCA.crt")
    assert (status, ctype) == (200, "application/x-x509-ca-cert")
    android = x509.load_der_x509_certificate(der)
    assert hashlib.sha256(der).hexdigest() == ca.fingerprint
    assert android.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    status, ctype, body = fetch(url + "devcert.mobileconfig")
    assert (status, ctype) == (200, "application/x-apple-aspen-config")
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    [root] = profile["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert root["PayloadContent"] == ca_der
    assert len({profile["PayloadUUID"], root["PayloadUUID"]}) == 2

    status, _, pem = fetch(url + "rootCA.pem")
    assert status == 200
    assert x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER) == ca_der

    status, ctype, png = fetch(url + "qr.png")
    assert (status, ctype) == (200, "image/png")
    zbarimg = require_tool("zbarimg", "reads the QR code as a phone's camera would")
    (tmp_path / "qr.png").write_bytes(png)
    decoded = subprocess.run([zbarimg, "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == url

    status, ctype, page = fetch(url)
    text = page.decode()
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    assert pretty_fingerprint(ca.fingerprint) in text
    assert "Certificate Trust Settings" in text and "full trust" in text
    assert "CA certificate" in text
    assert "&lt;certificates src=&quot;user&quot; /&gt;" in text  # the network_security_config XML, shown
    assert 'href="devcert.mobileconfig"' in text and 'href="rootCA.crt"' in text

    assert fetch(url + "rootCA-key.pem")[0] == 404  # never the key
    assert fetch(url + "../rootCA-key.pem")[0] == 404

    # It stops by itself: wait for the process to end (bounded), exit status 0.
    assert proc.wait(SHARE_SECONDS * 6) == 0
    stderr = proc.stderr.read() if proc.stderr else ""
    assert f"Stopped after {SHARE_SECONDS} s" in stderr
    assert pretty_fingerprint(ca.fingerprint) in stderr
    assert "127.0.0.1" in stderr and "Plain HTTP" in stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)
    assert proc.stdout is not None and proc.stdout.read() == ""  # one JSON line, nothing else on stdout


def test_terminal_shows_a_qr_code_that_decodes_to_the_url(cli_env, tmp_path):
    """Without --json: the terminal's QR code (text) is turned into a picture and read back."""
    LocalCA.create(Path(cli_env["DEVCERT_CAROOT"]))
    result = run_devcert("share", "--host", "127.0.0.1", "--timeout", "1", env=cli_env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    url = lines[0].split(" at ", 1)[1].split(" for ", 1)[0]
    assert url.startswith("http://127.0.0.1:")
    qr_lines = [line for line in lines if line and set(line) <= set("█▀▄ ")]
    assert len(qr_lines) > 10
    # Each character is two modules, top and bottom: draw them as a PGM picture for zbarimg.
    width, scale = len(qr_lines[0]), 6
    rows: list[list[int]] = []
    for line in qr_lines:
        top = [0 if ch in "█▀" else 255 for ch in line.ljust(width)]
        bottom = [0 if ch in "█▄" else 255 for ch in line.ljust(width)]
        rows += [top, bottom]
    # segno's terminal output draws light modules dark and the reverse (for dark terminals): invert.
    rows = [[255 - v for v in row] for row in rows]
    border = [[255] * width] * 4
    rows = border + rows + border
    pixels = bytearray()
    for row in rows:
        wide = bytes(v for v in row for _ in range(scale))
        pixels += (bytes([255] * 4 * scale) + wide + bytes([255] * 4 * scale)) * scale
    picture = tmp_path / "terminal.pgm"
    picture.write_bytes(f"P5 {(width + 8) * scale} {len(rows) * scale} 255\n".encode() + bytes(pixels))
    zbarimg = require_tool("zbarimg", "reads the QR code as a phone's camera would")
    decoded = subprocess.run([zbarimg, "--raw", "-q", str(picture)], capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == url
    assert "Stopped after 1 s" in result.stderr


def test_profile_is_the_same_for_the_same_ca():
    ca = LocalCA.ephemeral()
    first, again = plistlib.loads(mobileconfig(ca)), plistlib.loads(mobileconfig(ca))
    assert first["PayloadUUID"] == again["PayloadUUID"]  # re-installing replaces, never duplicates
    assert plistlib.loads(mobileconfig(LocalCA.ephemeral()))["PayloadUUID"] != first["PayloadUUID"]
    assert "<certificates src=\"user\" />" in NETWORK_SECURITY_CONFIG


def test_bad_options_and_a_taken_port(cli_env):
    for args, flag in ((["--timeout", "0"], "--timeout"), (["--port", "70000"], "--port"), (["--timeout", "x"], "--timeout")):
        result = run_devcert("share", "--host", "127.0.0.1", *args, env=cli_env)
        assert result.returncode == 2, result.stderr
        assert flag in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_devcert("share", "--host", "127.0.0.1", "--port", str(port), "--timeout", "5", env=cli_env)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(result.stderr)
    assert "--port" in result.stderr
