"""Finding private keys in files: the ``devcert-no-private-keys`` pre-commit hook.

    python -m devcert.keyscan FILE...      # exit 1 and name each file that holds a private key

Detects, in any file:

- PEM private keys of every kind: ``PRIVATE KEY`` (PKCS#8), ``ENCRYPTED PRIVATE KEY``,
  ``RSA`` / ``EC`` / ``DSA`` / ``OPENSSH`` ``PRIVATE KEY`` (also with ``Proc-Type: 4,ENCRYPTED``
  headers), ``PGP PRIVATE KEY BLOCK``, even inside other text (a .env, a JSON string);
- DER private keys, PKCS#8 (plain or encrypted) and traditional (PKCS#1 RSA, SEC1 EC), found
  by parsing the file with ``cryptography``;
- PKCS#12 / PFX files, by their ASN.1 shape. One that opens without a password and holds only
  certificates (a trust store) passes; any other may hold a key and is refused;
- PuTTY key files.

Certificates, CSRs and public keys pass. A marker needs a base64 body after it, so code and
documentation that merely mention ``BEGIN PRIVATE KEY`` do not trip the hook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

#: Larger files are not DER keys or PKCS#12 key files; PEM markers are searched in the first MAX_TEXT bytes.
MAX_DER = 256 * 1024
MAX_TEXT = 32 * 1024 * 1024

_DASHES = "-" * 5
_PEM_KEY = re.compile(
    (_DASHES + r"BEGIN ((?:[A-Z0-9]+ )*?)PRIVATE KEY( BLOCK)?" + _DASHES + r"(.{0,400}?)([A-Za-z0-9+/]{40})").encode(),
    re.S,
)
_PUTTY = re.compile(rb"^PuTTY-User-Key-File-\d+: ", re.M)
# pkcs7-data / pkcs7-signedData, the content types of a PFX's authSafe (RFC 7292).
_PKCS7_DATA_OIDS = (bytes.fromhex("06092a864886f70d010701"), bytes.fromhex("06092a864886f70d010702"))


def _der_length(data: bytes, pos: int) -> tuple[int, int] | None:
    """(length, position after the length octets) of the DER length at ``pos``."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or n > 4 or pos + 1 + n > len(data):
        return None
    return int.from_bytes(data[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER 3, authSafe ContentInfo { pkcs7-data ... }, ... }."""
    if len(data) < 20 or data[0] != 0x30:
        return False
    head = _der_length(data, 1)
    if head is None:
        return False
    length, pos = head
    if pos + length > len(data) + 0 or data[pos:pos + 3] != b"\x02\x01\x03":
        return False
    pos += 3
    if pos >= len(data) or data[pos] != 0x30:
        return False
    inner = _der_length(data, pos + 1)
    if inner is None:
        return False
    pos = inner[1]
    return any(data[pos:pos + len(oid)] == oid for oid in _PKCS7_DATA_OIDS)


def _pkcs12_certs_only(data: bytes) -> bool:
    """True if the PKCS#12 file opens without a password (or with an empty one) and holds no key."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    for password in (None, b""):
        try:
            key, _cert, _extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError):
            continue
        return key is None
    return False


def _der_key(data: bytes) -> str | None:
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_der_private_key(data, password=None)
        return "DER private key"
    except TypeError:  # "Password was not given but private key is encrypted"
        return "encrypted DER private key (PKCS#8)"
    except (ValueError, Exception):
        return None


def detect(data: bytes) -> str | None:
    """What kind of private key ``data`` holds, or None if it holds none."""
    text = data[:MAX_TEXT]
    m = _PEM_KEY.search(text)
    if m:
        label = (m.group(1).decode() + "PRIVATE KEY" + (m.group(2) or b"").decode()).strip()
        return f"PEM {label}"
    if _PUTTY.search(text[:4096]):
        return "PuTTY private key"
    if len(data) <= MAX_DER and data[:1] == b"\x30":
        kind = _der_key(data)
        if kind:
            return kind
        if looks_like_pkcs12(data) and not _pkcs12_certs_only(data):
            return "PKCS#12 file (may hold a private key)"
    return None


def scan(paths: Sequence[str | Path]) -> list[tuple[str, str]]:
    """``(path, kind)`` for each file that holds a private key."""
    found = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            continue
        try:
            with p.open("rb") as handle:
                data = handle.read(MAX_TEXT)
        except OSError:
            continue
        kind = detect(data)
        if kind:
            found.append((str(path), kind))
    return found
