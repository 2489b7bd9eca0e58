"""``devcert env``: making runtimes trust the CA without the OS store, a combined bundle and the exports.

Many clients never look at the OS trust store: ``requests`` reads certifi's bundle, Node its
own compiled-in list, pip, botocore, httplib2 and gRPC their own. Most of them can be pointed
at a file by an environment variable, but those variables *replace* the default roots
instead of adding to them. So devcert writes a combined bundle (the system's bundle, or
certifi's when there is none, with any certifi roots the system lacks, plus the devcert CA)
into CAROOT and exports that, so public sites keep working while the local CA is trusted too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import certifi
from cryptography.hazmat.primitives import serialization

from .advice import Advice
from .errors import InputFileError, OptionError, UsageError
from .files import PUBLIC, atomic_write
from .safety import read_regular

if TYPE_CHECKING:
    from .ca import LocalCA

BUNDLE_FILE = "ca-bundle.pem"
#: The first line of every bundle devcert writes; a candidate source that starts with it is
#: one of ours (e.g. SSL_CERT_FILE already pointing at it) and is never fed back in.
MARKER = "# devcert combined bundle"

#: Where operating systems keep their PEM bundle of trusted roots, most common first.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch, Gentoo
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL, CentOS
    "/etc/pki/tls/certs/ca-bundle.crt",  # older RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, Alpine, OpenBSD (macOS: the system roots only)
    "/usr/local/etc/openssl@3/cert.pem",  # Homebrew OpenSSL
    "/opt/homebrew/etc/openssl@3/cert.pem",
)

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.S)


def pem_certificates_der(data: bytes) -> list[bytes]:
    """The DER of every PEM certificate in ``data`` (blocks that do not decode are skipped)."""
    found = []
    for match in _PEM_CERT.finditer(data):
        try:
            found.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except ValueError:
            continue
    return found


def file_has_cert(path: str | Path, der: bytes) -> bool:
    """Whether the PEM file at ``path`` holds the certificate ``der`` (False if unreadable).

    Trust variables may name anything: a FIFO or device is unreadable here, not a hang.
    """
    try:
        data = read_regular(path, "the CA bundle")
    except InputFileError:
        return False
    return der in pem_certificates_der(data)


def is_devcert_bundle(path: str | Path) -> bool:
    try:
        data = read_regular(path, "the CA bundle")
    except InputFileError:
        return False
    return data[:len(MARKER)].decode("ascii", "replace") == MARKER


def bundle_path(ca: LocalCA) -> Path:
    if ca.path is None:
        raise UsageError("an in-memory CA has no folder to keep a bundle in")
    return ca.path / BUNDLE_FILE


def _openssl_default_cafile() -> str | None:
    """OpenSSL's compiled-in CA file (``openssl_cafile``: not the SSL_CERT_FILE override)."""
    try:
        return ssl.get_default_verify_paths().openssl_cafile or None
    except Exception:  # pragma: no cover - exotic builds
        return None


def source_bundle(exclude: Path | None = None) -> tuple[Path, str]:
    """The bundle of public roots to start from: ``(path, "system" | "certifi")``.

    The system's bundle when there is one, found at the well-known places and at OpenSSL's
    compiled-in default, but deliberately not through ``SSL_CERT_FILE``: that variable may
    point at a previous devcert bundle, and feeding our own output back in would stack CAs
    (and keep a removed CA forever). Any file that is a devcert bundle is skipped.
    """
    candidates: list[str] = list(SYSTEM_BUNDLES)
    compiled = _openssl_default_cafile()
    if compiled:
        candidates.append(compiled)
    exclude_real = exclude.resolve() if exclude is not None else None
    for candidate in candidates:
        path = Path(candidate)
        try:
            if not path.is_file() or path.stat().st_size == 0:
                continue
            if exclude_real is not None and path.resolve() == exclude_real:
                continue
        except OSError:
            continue
        try:
            # Bounded and non-blocking: a FIFO or device swapped in after is_file() above
            # must not hang `devcert env`.
            data = read_regular(path, "the system CA bundle")
        except InputFileError:
            continue
        if data.startswith(MARKER.encode()) or not pem_certificates_der(data):
            continue
        return path, "system"
    return Path(certifi.where()), "certifi"


@dataclass
class Bundle:
    path: Path
    source: Path
    source_kind: str  # "system" or "certifi"
    action: str  # "written" or "kept"


def _certifi_extras(have: set[bytes]) -> bytes:
    """PEM blocks of certifi's roots that ``have`` (DER) lacks, in certifi's order.

    A client pointed at the combined bundle by REQUESTS_CA_BUNDLE used certifi's roots until
    then; a distribution's bundle lags Mozilla's list by months, so without these it would
    lose the newest public roots. Roots are only ever added: whatever the system distrusts
    and certifi (Mozilla) still ships is rare, and both sides track the same list.
    """
    data = Path(certifi.where()).read_bytes()
    out = []
    for match in _PEM_CERT.finditer(data):
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except ValueError:
            continue
        if der not in have:
            have.add(der)
            out.append(match.group(0) + b"\n")
    return b"".join(out)


def combined_bundle_bytes(ca: LocalCA, source: Path, source_kind: str) -> bytes:
    """The bundle: the source's roots, certifi's roots the source lacks, then the CA."""
    data = read_regular(source, "the system CA bundle")
    if not data.endswith(b"\n"):
        data += b"\n"
    extras = b""
    if source_kind != "certifi":
        extras = _certifi_extras(set(pem_certificates_der(data)))
    header = (
        f"{MARKER}: the public roots of {source} ({source_kind})"
        f"{' and certifi' if extras else ''} plus the devcert CA.\n"
        f"# Written by `devcert env`, rewritten when any of them changes; do not edit.\n"
        f"# source-sha256: {hashlib.sha256(data).hexdigest()}\n"
        f"# ca-sha256: {ca.fingerprint}\n\n"
    ).encode()
    if extras:
        extras = b"\n# certifi roots missing from the source above\n" + extras
    tail = f"\n# devcert CA: {ca.common_name}\n".encode() + ca.cert_pem
    return header + data + extras + tail


def ensure_bundle(ca: LocalCA) -> Bundle:
    """Write CAROOT/ca-bundle.pem if its content would change; otherwise leave it alone."""
    target = bundle_path(ca)
    source, kind = source_bundle(exclude=target)
    want = combined_bundle_bytes(ca, source, kind)
    try:
        # The file SSL_CERT_FILE & co. point at: whatever is there that is not a regular file
        # of ours (a FIFO, a device) is replaced by the atomic write, never read.
        have = read_regular(target, "the CA bundle")
    except InputFileError:
        have = None
    if have == want:
        return Bundle(target, source, kind, "kept")
    atomic_write(target, want, PUBLIC)
    return Bundle(target, source, kind, "written")


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    #: Advice when the reason names a devcert command (the CLI words it; ``str()`` is neutral).
    why: Advice | str


#: (name, "bundle" | "ca", why). "bundle" variables replace a client's roots, so they get the
#: combined bundle; Node *adds* NODE_EXTRA_CA_CERTS to its own roots, so it gets the CA alone.
ENV_SPEC: tuple[tuple[str, str, str], ...] = (
    ("SSL_CERT_FILE", "bundle",
     "OpenSSL's default CA file: Python ssl/urllib, httpx, aiohttp, websockets, uv, Ruby, PHP, Go on "
     "Linux and most OpenSSL-based tools read it, and it replaces their default roots"),
    ("REQUESTS_CA_BUNDLE", "bundle",
     "requests uses certifi's bundle, never the OS store, unless this is set"),
    ("CURL_CA_BUNDLE", "bundle",
     "curl's CA file (requests also falls back to it)"),
    ("NODE_EXTRA_CA_CERTS", "ca",
     "Node.js ignores SSL_CERT_FILE and the OS store; it adds these certificates to its built-in roots"),
    ("DENO_CERT", "bundle",
     "Deno loads its extra root certificates from this file"),
    ("GIT_SSL_CAINFO", "bundle",
     "git over https (its libcurl may be built with another default)"),
    ("PIP_CERT", "bundle",
     "pip uses its vendored certifi (or truststore) unless told otherwise"),
    ("AWS_CA_BUNDLE", "bundle",
     "botocore, boto3 and the AWS CLI use their own bundle otherwise"),
    ("HTTPLIB2_CA_CERTS", "bundle",
     "httplib2 (google-api-python-client, oauth2client) ships its own bundle"),
    ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "bundle",
     "gRPC's C core (grpcio, grpc-node native) reads its roots from here instead of its bundled list"),
    ("CARGO_HTTP_CAINFO", "bundle",
     "cargo's http.cainfo, for registries and git dependencies over https"),
    ("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "bundle",
     "the gcloud CLI bundles its own Python and certificates"),
    ("NIX_SSL_CERT_FILE", "bundle",
     "Nix and programs it builds look here instead of SSL_CERT_FILE"),
    ("BUNDLE_SSL_CA_CERT", "bundle",
     "Ruby's Bundler, for gem sources over https"),
    ("HEX_CACERTS_PATH", "bundle",
     "Elixir's Hex package manager uses its own bundled roots otherwise"),
)

#: Every name `devcert env` may export: ``--unset`` clears them all, whichever Node was found.
ENV_NAMES: tuple[str, ...] = (*(name for name, _, _ in ENV_SPEC), "NODE_USE_SYSTEM_CA")


@dataclass(frozen=True)
class NodeInfo:
    """The ``node`` found on PATH and its version."""

    path: str
    version: tuple[int, int, int]

    @property
    def text(self) -> str:
        return "v" + ".".join(map(str, self.version))

    @property
    def reads_system_ca(self) -> bool:
        """NODE_USE_SYSTEM_CA=1 (read the OS trust store) exists from Node 22.15 and 23.9 on."""
        return self.version >= (23, 9, 0) or (22, 15, 0) <= self.version < (23, 0, 0)


def parse_node_version(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"\s*v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def find_node(path: str | None = None) -> NodeInfo | None:
    """The first ``node`` on ``path`` (PATH by default) with its version, or None.

    None also when it does not answer ``--version`` within seconds: then nothing is known of
    it, and the exports fall back to NODE_EXTRA_CA_CERTS, which every Node reads.
    """
    node = shutil.which("node", path=path if path is not None else os.environ.get("PATH"))
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    version = parse_node_version(done.stdout) if done.returncode == 0 else None
    return NodeInfo(node, version) if version else None


def system_store_has(ca: LocalCA) -> bool:
    """Whether the OS bundle (what Node reads under NODE_USE_SYSTEM_CA=1 on Linux) holds the CA."""
    source, kind = source_bundle()
    return kind == "system" and file_has_cert(source, ca.cert.public_bytes(serialization.Encoding.DER))


def env_vars(ca: LocalCA, bundle: Path, node: NodeInfo | None = None, system_has_ca: bool = False) -> list[EnvVar]:
    """The exports. Node gets NODE_USE_SYSTEM_CA=1 when ``node`` can read the OS store and the
    CA is in it (``system_has_ca``: it then follows `devcert install` and rotations as the OS
    does), else NODE_EXTRA_CA_CERTS, which every Node version reads."""
    if ca.cert_path is None:
        raise UsageError("an in-memory CA has no file for clients to read")
    out = []
    for name, kind, spec_why in ENV_SPEC:
        why: Advice | str = spec_why
        if name == "NODE_EXTRA_CA_CERTS" and node is not None and node.reads_system_ca:
            if system_has_ca:
                out.append(EnvVar("NODE_USE_SYSTEM_CA", "1",
                                  Advice("Node {node} ({path}) reads the OS trust store under this, and the "
                                         "OS store holds the CA ({install})", {"node": node.text, "path": str(node.path)})))
                continue
            why = Advice("{why}. Node {node} could read the OS store (NODE_USE_SYSTEM_CA=1), but the CA is "
                         "not in it: `{install}` first", {"why": spec_why, "node": node.text})
        out.append(EnvVar(name, str(ca.cert_path if kind == "ca" else bundle), why))
    return out


SHELLS = ("sh", "fish", "powershell")


def check_shell(shell: str) -> str:
    """``shell`` if devcert can write its syntax (one of :data:`SHELLS`), else :class:`OptionError`."""
    if shell not in SHELLS:
        raise OptionError("shell", shell, f"choose one of {', '.join(SHELLS)}")
    return shell


def quote(value: str, shell: str) -> str:
    """``value`` as one literal word for ``shell``."""
    check_shell(shell)
    if shell == "sh":
        return "'" + value.replace("'", "'\"'\"'") + "'"
    if shell == "fish":  # inside single quotes fish treats only \\ and \' specially
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"  # PowerShell: '' is a literal quote


def export_lines(variables: list[EnvVar], shell: str, *, comments: bool = True) -> list[str]:
    check_shell(shell)
    lines = []
    for var in variables:
        if comments:
            lines.append(f"# {var.name}: {var.why}")
        value = quote(var.value, shell)
        if shell == "sh":
            lines.append(f"export {var.name}={value}")
        elif shell == "fish":
            lines.append(f"set -gx {var.name} {value}")
        else:
            lines.append(f"$Env:{var.name} = {value}")
    return lines


def unset_lines(names: tuple[str, ...] | list[str], shell: str) -> list[str]:
    check_shell(shell)
    if shell == "sh":
        return [f"unset {name}" for name in names]
    if shell == "fish":
        return [f"set -e {name}" for name in names]
    return [f"Remove-Item -ErrorAction SilentlyContinue Env:{name}" for name in names]
