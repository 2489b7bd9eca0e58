"""Finding private keys in files: the ``devcert-no-private-keys`` pre-commit hook.

    python -m devcert.cli.keyscan FILE...  # exit 1 and name each file that holds a private key

Detects, in any file:

- PEM private keys of every kind: ``PRIVATE KEY`` (PKCS#8), ``ENCRYPTED PRIVATE KEY``,
  ``RSA`` / ``EC`` / ``DSA`` / ``OPENSSH`` ``PRIVATE KEY`` (also with ``Proc-Type: 4,ENCRYPTED``
  headers), ``PGP PRIVATE KEY BLOCK``, wrapped at any width, also inside other text: a .env
  value, a JSON string with ``\\n`` escapes, a JSON array of the key's lines (on one line or
  many), a YAML block scalar, string literals in code, lines behind a comment or quote prefix
  (``#``, ``//``, ``;``, ``--``, ``*``, ``>``), a line flattened with spaces;
- DER private keys, PKCS#8 (plain or encrypted) and traditional (PKCS#1 RSA, SEC1 EC), found
  by parsing the file with ``cryptography`` (trailing bytes after the key, such as a newline,
  are ignored);
- PKCS#12 / PFX files, by their ASN.1 shape. One that opens without a password and holds only
  certificates (a trust store) passes; any other may hold a key and is refused;
- PuTTY key files;
- any of these in a UTF-16 text file (what PowerShell 5's ``>`` writes), and base64-wrapped:
  a base64 run that decodes to a PEM key, a PuTTY key or a DER key / PKCS#12 file (a
  Kubernetes Secret's ``data: tls.key: LS0t...``, ``base64 key.der``).

Certificates, CSRs and public keys pass. A PEM key is a ``-----BEGIN ... PRIVATE KEY-----``
line at the start of a line (or of a quoted / assigned value), optional ``Name: value``
headers, base64 body lines (the first at least 40 characters, or all as wide as the first, at
least 16, the last no wider), and the matching ``-----END ... PRIVATE KEY-----`` line; code and
documentation that merely mention the markers do not trip the hook.

Files are read whole, in overlapping windows (bounded memory), up to MAX_SCAN bytes; :func:`scan`
reports a larger or unreadable file as not scanned, never as clean. PEM markers are searched in
every window; the DER, PKCS#12, PuTTY and base64 checks look at the file's head only (bounds
below).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

#: Larger files are not DER keys or PKCS#12 key files.
MAX_DER = 256 * 1024
#: Larger files are refused as "too large to scan": reading them would make every commit slow,
#: and passing them unread would let a key through.
MAX_SCAN = 1024 * 1024 * 1024
#: Base64-wrapped keys are looked for in the first MAX_B64_SCAN bytes, in at most MAX_B64_RUNS
#: candidate runs, each at most MAX_B64_RUN characters long.
MAX_B64_SCAN = 4 * 1024 * 1024
MAX_B64_RUNS = 1024
MAX_B64_RUN = 1024 * 1024

_DASHES = b"-" * 5
# The BEGIN line; what precedes and follows it is checked by _pem_key.
_PEM_BEGIN = re.compile(_DASHES + rb"BEGIN ((?:[A-Z0-9]+ )*?PRIVATE KEY(?: BLOCK)?)" + _DASHES)
# What may stand right before "-----BEGIN": the start of a line or of a value (quote, `=`, `:`,
# whitespace, a bracket, a comment marker), or a `\n` escape.
_PEM_BEFORE = frozenset(b" \t\r\n\"'`=:(>|,[{#;*/")
# A line break between PEM lines: a real one (with the indentation of a YAML block scalar, or a
# comment / quote prefix), a `\n` / `\r\n` escape (JSON, .env; once or twice escaped), a string
# literal closed and the next one opened (`"...\n" +` / `"...",`: a key in code or in a JSON
# array); blank lines included. Or spaces: a key flattened onto one line. Atomic, so a long run
# of blanks costs linear time.
_ESC = rb"(?:\\{1,2}r)?\\{1,2}n"
_BLANKS = rb"[ \t]{0,128}+"  # bounded: a megabyte of spaces must not cost a megabyte per try
# What may start each line of a key pasted into a comment or a quote: `#` (shell, YAML, Python),
# `//`, `;` (INI, Lisp), `--` (SQL, Lua), `*` (inside /* */), `>` (a quoted mail, Markdown), up
# to four deep (`> > `). `//` and `--` must not be followed by what continues a line, so a body
# line that starts with "/" keeps its slashes and "-----END" is not read as a comment.
_PREFIX = rb"(?:[#;*>]|//(?![A-Za-z0-9+/=\\])|--(?!-))"
_NL = rb"\r?\n" + _BLANKS + rb"(?:" + _PREFIX + _BLANKS + rb"){0,4}+"
# A string literal closed and the next one opened: after a `,` or `+` (a JSON array or a list of
# the key's lines, on one line or many; concatenation in code), or on the next line.
_QNL = (rb"""["'`]""" + _BLANKS + rb"(?:[,+]" + _BLANKS + rb"(?:\r?\n" + _BLANKS + rb")?|\r?\n" + _BLANKS + rb")"
        + rb"\+?" + _BLANKS + rb"""["'`]""")
_SEP = (rb"(?>(?:" + _BLANKS + rb"(?:" + _ESC + rb"(?:" + _QNL + rb"|" + _NL + rb")?|" + _QNL + rb"|" + _NL + rb"))++"
        + _BLANKS + rb"|[ \t]{1,128}+)")
_SEP_RE = re.compile(_SEP)
_B64 = rb"(?:[A-Za-z0-9+/=]|\\/)"  # `\/`: JSON encoders that escape slashes
# One or more _B64, a character class run at a time (much faster than one alternation per character).
_B64S = rb"(?:[A-Za-z0-9+/=]++|\\/)++"
_PEM_REST = re.compile(
    _SEP
    # Proc-Type / DEK-Info (encrypted PKCS#1), Version / Comment (PGP armor)
    + rb"(?P<headers>(?:[A-Za-z][A-Za-z0-9-]{0,40}: [^\r\n\\]{0,200}?" + _SEP + rb"){0,16})"
    # The body's lines; how wide they must be is checked by _pem_body_ok.
    + rb"(?P<body>(?=" + _B64 + rb"{4})" + _B64S + rb"(?:" + _SEP + _B64S + rb")*+)"
    + _SEP + _DASHES + rb"END (?P<end>(?:[A-Z0-9]+ )*?PRIVATE KEY(?: BLOCK)?)" + _DASHES
)
#: A PEM key's body is searched for in at most this many bytes after its BEGIN line.
MAX_PEM = 1024 * 1024
#: Files are read in windows: CHUNK bytes searched for BEGIN markers, the OVERLAP bytes after
#: them (searched again by the next window), so a key that starts in a window also ends in it,
#: and _CONTEXT bytes before them (what precedes a marker, checked by _pem_key).
CHUNK = 8 * 1024 * 1024
OVERLAP = MAX_PEM + 64 * 1024
_CONTEXT = 16
# Labels whose body is DER (a SEQUENCE, base64 "M...") unless encrypted with Proc-Type headers.
_DER_LABELS = frozenset({b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY",
                         b"DSA PRIVATE KEY"})
_PUTTY = re.compile(rb"^PuTTY-User-Key-File-\d+: ", re.M)
# Base64 runs that may wrap a key: of "-----BEGIN", of "PuTTY-User-Key-File-", or of a DER
# SEQUENCE ("M"); long single lines, or lines of 60+ characters wrapped (`base64` wraps at 76).
_B64_RUN = re.compile(
    rb"(?<![A-Za-z0-9+/])(?:LS0tLS1CRUdJTi|UHVUVFktVXNlci1LZXktRmlsZS|M[A-Za-z0-9+/])[A-Za-z0-9+/]{58,}"
    rb"(?:\r?\n[ \t]*[A-Za-z0-9+/]{4,})*={0,2}"
)
# "-----BEGIN " and "PuTTY-User-Key-File-" in UTF-16 without the NUL at either end: the LE form
# is this and a NUL, the BE form a NUL and this. A compiled literal, since bytes.find is slow on
# NUL-heavy data (a sparse file, a disk image) for a needle that holds NULs.
_UTF16_MARKERS = tuple(re.compile(re.escape(marker.encode("utf-16-le")[:-1]))
                       for marker in ("-----BEGIN ", "PuTTY-User-Key-File-"))
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
    # cryptography costs the hook ~60 ms per run; most commits hold no DER or PKCS#12 file,
    # so only a file that looks like one pays for it.
    from cryptography.hazmat.primitives.serialization import pkcs12

    for password in (None, b""):
        try:
            key, _cert, _extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError):
            continue
        return key is None
    return False


def _der_object(data: bytes) -> bytes:
    """``data`` up to the end of its outer DER object (dropping e.g. a trailing newline), else ``data``."""
    head = _der_length(data, 1)
    if head is not None and head[1] + head[0] <= len(data):
        return data[:head[1] + head[0]]
    return data


def _der_key(data: bytes) -> str | None:
    from cryptography.hazmat.primitives import serialization  # as in _pkcs12_certs_only: only for DER-shaped files

    try:
        serialization.load_der_private_key(data, password=None)
        return "DER private key"
    except TypeError:  # "Password was not given but private key is encrypted"
        return "encrypted DER private key (PKCS#8)"
    except Exception:
        return None


def _der_detect(data: bytes) -> str | None:
    if len(data) > MAX_DER or data[:1] != b"\x30":
        return None
    data = _der_object(data)
    kind = _der_key(data)
    if kind:
        return kind
    if looks_like_pkcs12(data) and not _pkcs12_certs_only(data):
        return "PKCS#12 file (may hold a private key)"
    return None


def _der_key_shape(data: bytes) -> bool:
    """A SEQUENCE that starts like a private key or a PFX: version INTEGER 0..3 (PKCS#8, PKCS#1,
    SEC1, DSA, PFX), or an AlgorithmIdentifier (encrypted PKCS#8). Certificates and CSRs do not."""
    head = _der_length(data, 1)
    if data[:1] != b"\x30" or head is None:
        return False
    pos = head[1]
    if data[pos:pos + 2] == b"\x02\x01" and data[pos + 2:pos + 3] in (b"\x00", b"\x01", b"\x02", b"\x03"):
        return True
    inner = _der_length(data, pos + 1) if data[pos:pos + 1] == b"\x30" else None
    return inner is not None and data[inner[1]:inner[1] + 1] == b"\x06"


def _pem_body_ok(body: bytes, label: bytes, headers: bytes) -> bool:
    """Whether ``body`` (base64 lines and the separators between them) is shaped like a key's."""
    lines = [line.replace(b"\\/", b"/") for line in _SEP_RE.split(body)]
    if all(line.startswith(b"//") for line in lines):
        lines = [line[2:] for line in lines]  # "//" comments without a blank, which _PREFIX leaves alone
    if len(lines) > 1 and lines[-1].startswith(b"="):
        lines.pop()  # PGP armor's checksum line, "=" and 4 characters
    width = len(lines[0])
    # A first line of 40+ characters is a key's, wrapped at 64 (or flattened). A narrower one must
    # be a wrapping width, so that words between two markers in prose or placeholders do not pass
    # for a body: every line as wide as the first, the last no wider, 64 characters in all (an
    # Ed25519 PKCS#8 key).
    if width < 40 and (width < 16 or len(lines[-1]) > width or any(len(line) != width for line in lines[1:-1])
                       or sum(map(len, lines)) < 64):
        return False
    joined = b"".join(lines)
    if label == b"OPENSSH PRIVATE KEY" and not joined.startswith(b"b3BlbnNzaC1rZXktdjE"):  # "openssh-key-v1"
        return False
    if label in _DER_LABELS and not headers and not joined.startswith(b"M"):
        return False  # e.g. a hex digest between two markers in code
    return True


def _pem_key(text: bytes, pos: int = 0) -> str | None:
    """The PEM key whose BEGIN marker is at or after ``pos`` in ``text`` (what is before ``pos`` is context)."""
    for m in _PEM_BEGIN.finditer(text, pos):
        start, label = m.start(), m.group(1)
        if start and text[start - 1] not in _PEM_BEFORE and text[max(0, start - 2):start] != b"\\n":
            continue  # "...-----BEGIN" inside a word
        rest = _PEM_REST.match(text, m.end(), m.end() + MAX_PEM)
        if not rest or rest["end"] != label or not _pem_body_ok(rest["body"], label, rest["headers"]):
            continue
        return f"PEM {label.decode()}"
    return None


def _utf16_text(text: bytes, *, head: bool) -> bytes | None:
    """UTF-16 text (with a BOM, if ``text`` is the file's head, or holding a marker in UTF-16) as
    UTF-8, else None. A window starts at an even offset, so a marker's parity is the file's."""
    if head and text[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return text.decode("utf-16", errors="replace").encode("utf-8", errors="replace")
    for marker in _UTF16_MARKERS:
        for m in marker.finditer(text):
            if text[m.end():m.end() + 1] == b"\0":
                codec, at = "utf-16-le", m.start()
            elif m.start() and text[m.start() - 1] == 0:
                codec, at = "utf-16-be", m.start() - 1
            else:
                continue
            return text[at % 2:].decode(codec, errors="replace").encode("utf-8", errors="replace")
    return None


def _base64_blobs(text: bytes) -> Iterator[bytes]:
    """The decoded base64 runs in ``text`` that may wrap a key (bounded, see MAX_B64_*)."""
    for count, m in enumerate(_B64_RUN.finditer(text, 0, MAX_B64_SCAN)):
        if count >= MAX_B64_RUNS:
            return
        run = re.sub(rb"\s+", b"", m.group()[:MAX_B64_RUN]).rstrip(b"=")
        if len(run) % 4 == 1:
            run = run[:-1]
        try:
            blob = base64.b64decode(run + b"=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        if blob[:1] != b"\x30" or _der_key_shape(blob):
            yield blob


def _detect(data: bytes, *, utf16: bool, b64: bool, head: bool = True, pos: int = 0) -> str | None:
    """The key in ``data``: a whole (decoded) blob, or one window of a file, searched for PEM
    markers from ``pos``. Only the file's head (its first window) gets the checks that look at
    the start of a file or at a bounded prefix: BOM, PuTTY, DER / PKCS#12, base64."""
    text = data
    if head and text.startswith(codecs.BOM_UTF8):
        text = text[len(codecs.BOM_UTF8):]
    kind = _pem_key(text, pos)
    if kind:
        return kind
    if head and _PUTTY.search(text[:4096]):
        return "PuTTY private key"
    kind = _der_detect(data) if head else None  # MAX_DER < a window: the head of a longer file is no DER file
    if kind:
        return kind
    if utf16:
        decoded = _utf16_text(text, head=head)  # a window's context bytes decode harmlessly
        if decoded is not None:
            kind = _detect(decoded, utf16=False, b64=b64 and head, head=head)
            if kind:
                return f"{kind} (UTF-16 text)"
    if b64 and head:
        for blob in _base64_blobs(text):
            kind = _detect(blob, utf16=False, b64=False)
            if kind:
                return f"base64-encoded {kind}"
    return None


def _windows(read: Callable[[int], bytes]) -> Iterator[tuple[bytes, int]]:
    """``(window, pos)`` covering everything ``read`` returns: the first window is the first
    CHUNK + OVERLAP bytes, searched from 0; each next one starts _CONTEXT + OVERLAP bytes before
    the previous one's end and is searched from _CONTEXT. Memory stays about two windows."""
    window = read(CHUNK + OVERLAP)
    pos = 0
    while True:
        yield window, pos
        if len(window) - pos < CHUNK + OVERLAP:
            return  # the stream ended in this window
        more = read(CHUNK)
        if not more:
            return
        window = window[len(window) - OVERLAP - _CONTEXT:] + more
        pos = _CONTEXT


def _detect_stream(read: Callable[[int], bytes]) -> str | None:
    for window, pos in _windows(read):
        kind = _detect(window, utf16=True, b64=True, head=pos == 0, pos=pos)
        if kind:
            return kind
    return None


def detect(data: bytes) -> str | None:
    """What kind of private key ``data`` holds, or None if it holds none."""
    return _detect_stream(io.BytesIO(data).read)


class Finding(NamedTuple):
    """A file :func:`scan` refuses."""

    path: str
    #: The kind of private key the file holds, or why it was not scanned.
    kind: str
    #: True when the file could not be scanned whole (too large, unreadable): refused, not passed.
    unscanned: bool = False


class _Limited:
    """A file's ``read`` that raises _TooLarge past MAX_SCAN bytes (a file that grew after its stat)."""

    def __init__(self, handle: io.BufferedReader) -> None:
        self.handle, self.total = handle, 0

    def read(self, n: int) -> bytes:
        data = self.handle.read(min(n, MAX_SCAN + 1 - self.total))
        self.total += len(data)
        if self.total > MAX_SCAN:
            raise _TooLarge(self.total)
        return data


class _TooLarge(Exception):
    pass


def _too_large(size: int, *, more: bool = False) -> str:
    return f"too large to scan ({size}{'+' if more else ''} bytes > {MAX_SCAN})"


def scan(paths: Sequence[str | Path]) -> list[Finding]:
    """A :class:`Finding` for each file that holds a private key or could not be scanned."""
    found = []
    for path in paths:
        p = Path(path)
        try:
            if not p.is_file():
                continue  # deleted, a directory, a dangling link: nothing would be committed
            with p.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > MAX_SCAN:
                    found.append(Finding(str(path), _too_large(size), True))
                    continue
                kind = _detect_stream(_Limited(handle).read)
        except _TooLarge as grown:
            found.append(Finding(str(path), _too_large(grown.args[0], more=True), True))
            continue
        except OSError as err:
            found.append(Finding(str(path), f"cannot read ({err.strerror or err})", True))
            continue
        if kind:
            found.append(Finding(str(path), kind))
    return found


if __name__ == "__main__":
    # The hook is devcert.cli.keyscan (printing and exit codes live in the CLI). This module
    # once ran it too; run as a script it refuses, so an old hook entry fails instead of
    # silently passing every file.
    raise SystemExit("devcert: error: the private-key hook is `python -m devcert.cli.keyscan FILE...`")
