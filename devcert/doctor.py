"""``devcert doctor``: which parts of this machine trust the local CA, which do not, and why.

Every check returns a :class:`Check` (data, never printed here): the CA's files, each trust
store, environment variables that override trust, and, by a real TLS handshake against a
short-lived local server presenting a devcert leaf, each client present on the machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
import importlib.util
import shlex

import platformdirs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import certs, keys
from .advice import Advice
from .ca import LocalCA
from .env import find_node, pem_certificates_der
from .errors import CAError, InputFileError, UnsafeCARootError
from .issue import issue_leaf
from .layout import CERT_FILE, KEY_FILE, caroot
from .names import parse_names
from .safety import MAX_INPUT, ca_weakness, caroot_problem, read_regular
from .trust import selected_stores, stale_entries

OK = "ok"
WARN = "warn"
PROBLEM = "problem"
ABSENT = "not present"
SKIPPED = "skipped"

#: The CA expiring within this many days is a warning, within CRITICAL_DAYS a problem.
WARN_DAYS = 90
CRITICAL_DAYS = 30
#: Bound on each client's handshake (process start included: Java compiles its source).
CLIENT_TIMEOUT = 60.0
#: The remedy that covers every runtime without the OS store (worded by the CLI as `eval "$(devcert env)"`).
ENV_FIX = "{env}"


@dataclass
class Check:
    group: str  # "ca", "store", "env", "client"
    name: str
    status: str  # ok | warn | problem | not present | skipped
    detail: str = ""
    #: What to do: an :class:`Advice` where the remedy is a devcert command (the CLI words it),
    #: else plain words.
    fix: Advice | str = ""

    def to_dict(self) -> dict[str, str]:
        """The row as JSON-ready text, the advice in neutral words (the CLI words it first)."""
        return {**asdict(self), "fix": str(self.fix)}


@dataclass
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.status == PROBLEM for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


# -- the CA ---------------------------------------------------------------------------------

def check_ca(root: Path | None = None) -> tuple[list[Check], LocalCA | None]:
    folder = root or caroot()
    checks: list[Check] = []
    cert_file = folder / CERT_FILE
    key_file = folder / KEY_FILE
    if folder.exists() and not folder.is_dir():
        checks.append(Check("ca", "CA certificate", PROBLEM,
                            f"CAROOT {folder} is a file, not a folder, so no CA can be kept there",
                            "move that file aside, or point DEVCERT_CAROOT at a folder"))
        return checks, None
    unsafe = caroot_problem(folder)
    # Another owner, writable by others, a symlinked CA file: someone could swap in their own CA.
    # (A key readable by others is the "CA key" row's finding, below.)
    reported = unsafe is not None
    if reported:
        checks.append(Check("ca", "CAROOT", PROBLEM, f"{unsafe.path}: {unsafe.reason}", unsafe.remedy))
    if not cert_file.exists():
        checks.append(Check("ca", "CA certificate", PROBLEM, f"there is no CA in {folder}",
                            Advice("{init_ca} (then {install})")))
        return checks, None
    # LocalCA.load reads both files whole: make sure first that neither is a FIFO (it would hang
    # doctor), a device or huge (it would never end), so doctor can say so instead.
    for path, what in ((cert_file, "the CA certificate"), (key_file, "the CA key")):
        if path is key_file and not os.path.lexists(path):
            continue  # a missing key is reported below
        try:
            read_regular(path, what)
        except InputFileError as err:
            checks.append(Check("ca", "CA certificate" if path is cert_file else "CA key", PROBLEM,
                                f"cannot read {what} {path}: {err.reason}",
                                Advice("move it aside and restore the CA's files, or {replace_ca}")))
            return checks, None
    try:
        ca = LocalCA.load(folder, require_key=False)
    except UnsafeCARootError as err:  # loading refuses what caroot_problem found
        if not reported:
            checks.append(Check("ca", "CAROOT", PROBLEM, f"{err.path}: {err.reason}", err.remedy))
        return checks, None
    except CAError as err:
        checks.append(Check("ca", "CA certificate", PROBLEM, str(err), Advice("{replace_ca}")))
        return checks, None
    checks.append(Check("ca", "CA certificate", OK, f"{ca.common_name} in {cert_file}"))

    if ca.key_problem:
        checks.append(Check("ca", "CA key", PROBLEM, f"{ca.key_problem}: the CA cannot sign new certificates",
                            Advice("restore the key from a backup, or {replace_ca}")))
    elif ca.key is None:
        checks.append(Check("ca", "CA key", WARN, f"{key_file} is missing: the CA cannot sign new certificates",
                            Advice("restore the key, or {replace_ca}")))
    elif os.name == "posix":
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            checks.append(Check("ca", "CA key", PROBLEM,
                                f"{key_file} has mode {mode:04o}: other users can read the CA key",
                                f"chmod 600 {_sh(str(key_file))}"))
        else:
            checks.append(Check("ca", "CA key", OK, f"{key_file} is private ({mode:04o})"))
        folder_mode = stat.S_IMODE(folder.stat().st_mode)
        if folder_mode & 0o077 and not (reported and unsafe.path == folder):
            checks.append(Check("ca", "CA folder", WARN, f"{folder} has mode {folder_mode:04o}",
                                f"chmod 700 {_sh(str(folder))}"))
    else:  # pragma: no cover - Windows ACLs are not modes
        checks.append(Check("ca", "CA key", OK, str(key_file)))

    now = certs.now()
    left = ca.not_after - now
    days_left = certs.days_left(ca.not_after, now)
    when = f"{ca.not_after:%Y-%m-%d}"
    renew = "{replace_ca}, then {install} and reissue certificates"
    weakness = ca_weakness(ca.cert, now)
    if ca.cert.not_valid_before_utc > now:
        checks.append(Check("ca", "CA validity", PROBLEM, f"the CA is not valid yet: {weakness}",
                            Advice(f"fix the clock, or {renew}")))
        weakness = None  # the only thing ca_weakness looked at; its key is checked below
    elif left <= dt.timedelta(0):
        checks.append(Check("ca", "CA validity", PROBLEM, f"the CA expired on {when}", Advice(renew)))
        weakness = None
    elif left < dt.timedelta(days=CRITICAL_DAYS):
        checks.append(Check("ca", "CA validity", PROBLEM, f"the CA expires in {days_left} days ({when})", Advice(renew)))
    elif left < dt.timedelta(days=WARN_DAYS):
        checks.append(Check("ca", "CA validity", WARN, f"the CA expires in {days_left} days ({when})", renew))
    else:
        checks.append(Check("ca", "CA validity", OK, f"valid until {when} ({days_left} days)"))
    if weakness is None:
        # ca_weakness stops at the first reason; when that was the dates (reported above), ask
        # again about the key alone, as of the CA's first valid moment.
        weakness = ca_weakness(ca.cert, ca.cert.not_valid_before_utc)
    if weakness:
        checks.append(Check("ca", "CA strength", PROBLEM,
                            f"the CA is too weak for clients to trust: {weakness}", Advice(renew)))
    else:
        checks.append(Check("ca", "CA strength", OK, _key_description(ca.cert)))
    return checks, ca


def _key_description(cert: x509.Certificate) -> str:
    return f"{keys.describe(cert.public_key())} key"  # type: ignore[arg-type]


# -- trust stores ---------------------------------------------------------------------------

def check_stores(ca: LocalCA, environ: dict[str, str] | None = None) -> list[Check]:
    checks = []
    try:
        stores = list(selected_stores(environ=environ) if environ is not None else selected_stores())
    except Exception as err:
        return [Check("store", "trust stores", PROBLEM, f"cannot list the trust stores: {err}")]
    for store in stores:
        name = getattr(store, "name", type(store).__name__)
        try:
            described = store.describe()
        except Exception:
            described = name
        try:
            if not store.available():
                checks.append(Check("store", name, ABSENT, f"{described}: not present on this machine"))
                continue
            installed = store.is_installed(ca)
        except Exception as err:
            checks.append(Check("store", name, PROBLEM, f"{described}: cannot be read: {err}"))
            continue
        if installed:
            checks.append(Check("store", name, OK, f"the CA is installed in {described}"))
        else:
            checks.append(Check("store", name, PROBLEM, f"the CA is not installed in {described}", Advice("{install}")))
    checks += check_stale(ca, stores)
    return checks


def check_stale(ca: LocalCA, stores: list) -> list[Check]:  # type: ignore[type-arg]
    """Every devcert CA a store still trusts that is not the current one (replaced, or left by an
    interrupted rotation): trusted, its certificates keep working there, and its key may be anywhere."""
    unreadable: list[str] = []
    found = stale_entries(ca, stores, on_error=lambda store, err: unreadable.append(f"{store.name}: {err}"))
    checks = []
    if found:
        where = "; ".join(f"{store.name}: {entry.name} ({entry.where})" for store, entry in found)
        checks.append(Check("store", "stale CAs", PROBLEM,
                            f"{len(found)} devcert CA entr{'y' if len(found) == 1 else 'ies'} that are not the "
                            f"current CA still trusted: {where}", Advice("{uninstall_stale}")))
    if unreadable:
        checks.append(Check("store", "stale CAs", WARN, "cannot list devcert's entries in " + "; ".join(unreadable)))
    return checks


# -- environment ----------------------------------------------------------------------------

#: Variables whose file *replaces* a client's roots: the file must hold the CA.
REPLACING = (
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE",
    "HTTPLIB2_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "DENO_CERT", "CARGO_HTTP_CAINFO",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "NIX_SSL_CERT_FILE", "BUNDLE_SSL_CA_CERT", "HEX_CACERTS_PATH",
)
#: NODE_EXTRA_CA_CERTS adds to Node's roots; it still must hold the CA for Node to trust it.
ADDING = ("NODE_EXTRA_CA_CERTS",)


#: OpenSSL looks a CA up in an SSL_CERT_DIR folder by these names (subject hash, then .0, .1 ...;
#: ``.rN`` for CRLs), and opens the file it finds: only these names can hang a client.
_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.r?[0-9]+$")
#: Entries of one SSL_CERT_DIR folder looked at (the system's has a few hundred).
_MAX_DIR_ENTRIES = 20000


@dataclass
class _TrustFile:
    data: bytes | None  # None when it cannot be read safely
    problem: str = ""  # why not, as the end of "NAME=VALUE ..."
    #: What it is when a client reading it could hang or exhaust memory ("a FIFO", "a device"...).
    hazard: str = ""


def _read_trust_file(value: str) -> _TrustFile:
    """The file a trust variable names, read only if it is a regular file under the size limit.

    A variable may name anything: ``SSL_CERT_FILE=/dev/zero`` would exhaust memory, a FIFO
    would hang doctor for good.
    """
    try:
        return _TrustFile(read_regular(value, "the trust file"))
    except InputFileError as err:
        reason = err.reason
    try:
        st = os.stat(value)  # stat never blocks, even on a FIFO
    except (OSError, ValueError):
        if not os.path.lexists(value):
            return _TrustFile(None, "does not exist, so clients that read it fail")
        return _TrustFile(None, f"cannot be read ({reason}), so clients that read it fail")
    if stat.S_ISDIR(st.st_mode):
        return _TrustFile(None, "is a folder; it must be a PEM file")
    if stat.S_ISFIFO(st.st_mode):
        return _TrustFile(None, "is a FIFO, not a PEM file: a client that reads it hangs", hazard="a FIFO")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return _TrustFile(None, "is a device, not a PEM file: a client that reads it may hang or never finish",
                          hazard="a device")
    if not stat.S_ISREG(st.st_mode):  # a socket: opening it fails at once
        return _TrustFile(None, "is not a regular file; it must be a PEM file")
    if st.st_size > MAX_INPUT:
        return _TrustFile(None, f"is {st.st_size} bytes, too large for a CA bundle (the limit is {MAX_INPUT} "
                                f"bytes; a full public bundle is ~200 KiB)",
                          hazard=f"{st.st_size} bytes, too large")
    return _TrustFile(None, f"cannot be read ({reason}), so clients that read it fail")


def _dir_hazards(folder: str) -> list[str]:
    """Entries of an SSL_CERT_DIR folder that OpenSSL may open and that could hang it or never
    end: FIFOs, devices, files over the size limit.

    Only ``stat``: nothing in the folder is opened, so a FIFO or device there cannot hang doctor.
    """
    found = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= _MAX_DIR_ENTRIES:
                    break
                if not _HASHED_NAME.match(entry.name):
                    continue
                try:
                    st = entry.stat()  # follows symlinks, as OpenSSL does
                except OSError:
                    continue  # a dangling link: OpenSSL's open fails, no hang
                if stat.S_ISFIFO(st.st_mode):
                    found.append(f"{entry.name} (a FIFO)")
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    found.append(f"{entry.name} (a device)")
                elif stat.S_ISREG(st.st_mode) and st.st_size > MAX_INPUT:
                    found.append(f"{entry.name} ({st.st_size} bytes, too large)")
    except OSError:
        pass
    return found


def check_env(ca: LocalCA, environ: dict[str, str] | None = None) -> list[Check]:
    environ = dict(os.environ if environ is None else environ)
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    checks = []
    for name in (*REPLACING, *ADDING):
        value = environ.get(name)
        if not value:
            continue
        found = _read_trust_file(value)
        if found.data is None:
            checks.append(Check("env", name, PROBLEM, f"{name}={value} {found.problem}",
                                Advice(ENV_FIX + ", or unset {name}", {"name": name})))
        elif der in pem_certificates_der(found.data):
            checks.append(Check("env", name, OK, f"{name}={value} holds the CA"))
        else:
            effect = ("adds these certificates to Node's roots, but not the CA" if name in ADDING
                      else "replaces the default roots with a file that lacks the CA")
            checks.append(Check("env", name, PROBLEM, f"{name}={value} {effect}", Advice(ENV_FIX + ", or unset {name}", {"name": name})))
    cert_dir = environ.get("SSL_CERT_DIR")
    if cert_dir:
        for part in cert_dir.split(os.pathsep):
            if not part:
                continue
            if not Path(part).is_dir():
                checks.append(Check("env", "SSL_CERT_DIR", WARN, f"SSL_CERT_DIR lists {part}, which is not a folder",
                                    "unset SSL_CERT_DIR or fix it"))
                continue
            hazards = _dir_hazards(part)
            if hazards:
                checks.append(Check("env", "SSL_CERT_DIR", PROBLEM,
                                    f"SSL_CERT_DIR lists {part}, which holds {', '.join(hazards[:3])}"
                                    f"{' ...' if len(hazards) > 3 else ''}: a client that looks a CA up "
                                    f"there may hang", f"remove those entries, or take {part} out of SSL_CERT_DIR"))
    return checks


def client_environ(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``environ`` for the client handshakes, without trust variables that could hang a client.

    A client reading ``SSL_CERT_FILE=/dev/zero`` or a FIFO never finishes (its timeout would
    stall doctor for a minute, and /dev/zero can eat its memory first). Such a variable is
    left out, and said so: the second value names each one left out, and why.
    """
    env = dict(environ)
    left_out = []
    for name in (*REPLACING, *ADDING):
        value = env.get(name)
        if value:
            found = _read_trust_file(value)
            if found.hazard:
                del env[name]
                left_out.append(f"{name} ({found.hazard})")
    cert_dir = env.get("SSL_CERT_DIR")
    if cert_dir:
        parts = cert_dir.split(os.pathsep)
        kept = [part for part in parts if not (part and Path(part).is_dir() and _dir_hazards(part))]
        if kept != parts:
            dropped = ", ".join(part for part in parts if part not in kept)
            left_out.append(f"SSL_CERT_DIR's {dropped} (FIFOs, devices or huge files in it)")
            if any(kept):
                env["SSL_CERT_DIR"] = os.pathsep.join(kept)
            else:
                del env["SSL_CERT_DIR"]
    return env, left_out


# -- real handshakes ------------------------------------------------------------------------

class _Server:
    """A tiny HTTPS server on 127.0.0.1 (OS-picked port) answering every request with "ok"."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="devcert-doctor-server", daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                            b"Connection: close\r\n\r\nok\n")
        except (OSError, ssl.SSLError):
            pass  # the client rejected the certificate, or went away: its side reports it
        finally:
            try:
                conn.close()
            except OSError:
                pass


@contextmanager
def local_server(ca: LocalCA) -> Iterator[str]:
    """``https://127.0.0.1:PORT/`` served with a fresh in-memory devcert leaf, while inside."""
    leaf = issue_leaf(ca, parse_names(["localhost", "127.0.0.1"]), days=1)
    with _Server(leaf.server_context()) as server:
        yield f"https://127.0.0.1:{server.port}/"


@dataclass
class ClientResult:
    status: str  # OK, PROBLEM, ABSENT
    detail: str
    fix: Advice | str = ""  # when set, replaces the client's usual fix (the cause is known)
    version: str = ""  # e.g. "v22.15.0", named in the row


def _run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("Picked up")]
    return lines[-1][:300] if lines else ""


def client_python_ssl(url: str, env: dict[str, str]) -> ClientResult:
    # A subprocess, so SSL_CERT_FILE & co. of ``env`` apply exactly as in the user's shell.
    code = ("import ssl,sys,urllib.request\n"
            "urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(), timeout=20).read()\n")
    return _python_client(code, url, env)


def client_requests(url: str, env: dict[str, str]) -> ClientResult:
    code = "import sys,requests\nrequests.get(sys.argv[1], timeout=20).raise_for_status()\n"
    return _python_client(code, url, env, module="requests")


def client_httpx(url: str, env: dict[str, str]) -> ClientResult:
    code = "import sys,httpx\nhttpx.get(sys.argv[1], timeout=20).raise_for_status()\n"
    return _python_client(code, url, env, module="httpx")


def _python_client(code: str, url: str, env: dict[str, str], module: str | None = None) -> ClientResult:
    if module is not None:
        if importlib.util.find_spec(module) is None:
            return ClientResult(ABSENT, f"{module} is not installed for {sys.executable}")
    try:
        done = _run([sys.executable, "-c", code, url], env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s")
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate")
    return ClientResult(PROBLEM, _last_line(done.stderr) or f"exit status {done.returncode}")


def client_curl(url: str, env: dict[str, str]) -> ClientResult:
    curl = shutil.which("curl", path=env.get("PATH"))
    if curl is None:
        return ClientResult(ABSENT, "curl is not installed")
    try:
        done = _run([curl, "-sS", "-o", os.devnull, "--max-time", "20", url], env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s")
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate")
    first = done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""
    return ClientResult(PROBLEM, first or f"curl exit status {done.returncode}")


_NODE_CLIENT = r"""
const https = require('https');
const req = https.get(process.argv[1], { timeout: 20000 }, (res) => { res.resume(); res.on('end', () => process.exit(0)); });
req.on('timeout', () => { console.error('timed out'); process.exit(3); });
req.on('error', (err) => { console.error(err.code ? `${err.code}: ${err.message}` : err.message); process.exit(2); });
"""


def client_node(url: str, env: dict[str, str]) -> ClientResult:
    node = find_node(env.get("PATH"))
    if node is None:
        if shutil.which("node", path=env.get("PATH")) is None:
            return ClientResult(ABSENT, "node is not installed")
        return ClientResult(PROBLEM, "node does not answer `node --version`")
    try:
        done = _run([node.path, "-e", _NODE_CLIENT, url], env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s", version=node.text)
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate", version=node.text)
    detail = _last_line(done.stderr) or f"node exit status {done.returncode}"
    if not node.reads_system_ca:
        return ClientResult(PROBLEM, detail, version=node.text,
                            fix=Advice(ENV_FIX + " (NODE_EXTRA_CA_CERTS): Node {node} does not read the OS store", {"node": node.text}))
    if env.get("NODE_USE_SYSTEM_CA") == "1":
        return ClientResult(PROBLEM, detail, version=node.text,
                            fix=Advice("{install} (NODE_USE_SYSTEM_CA=1 makes Node {node} read the OS store), or " + ENV_FIX,
                                       {"node": node.text}))
    # This Node can read the OS store: say whether that alone would do, by trying it.
    try:
        again = _run([node.path, "-e", _NODE_CLIENT, url], {**env, "NODE_USE_SYSTEM_CA": "1"})
        would = again.returncode == 0
    except subprocess.TimeoutExpired:
        would = False
    if would:
        fix = Advice("export NODE_USE_SYSTEM_CA=1 (Node {node} then reads the OS store, which trusts the CA), or " + ENV_FIX,
                     {"node": node.text})
    else:
        fix = Advice("{install}, then export NODE_USE_SYSTEM_CA=1 (Node {node} reads the OS store), or " + ENV_FIX,
                     {"node": node.text})
    return ClientResult(PROBLEM, detail, version=node.text, fix=fix)


def _version(argv: list[str], env: dict[str, str], pattern: str) -> str:
    """The first match of ``pattern`` in ``argv``'s output (e.g. ``bun --version``), or ""."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(pattern, done.stdout)
    return match.group(1) if match else ""


def bun_version(bun: str, env: dict[str, str]) -> str:
    return _version([bun, "--version"], env, r"(\d+\.\d+\.\d+\S*)")


def deno_version(deno: str, env: dict[str, str]) -> str:
    return _version([deno, "--version"], env, r"deno (\d+\.\d+\.\d+\S*)")


#: Under name constraints BoringSSL cannot evaluate (iPAddress), and webpki will not (rfc822Name,
#: URI), Bun and Deno refuse the leaf with these errors whatever the trust settings.
BUN_CONSTRAINT_ERROR = "UNSUPPORTED_CONSTRAINT_TYPE"
DENO_CONSTRAINT_ERROR = "NameConstraintViolation"
ROTATE_FIX = Advice("{rotate_ca} (makes a CA with the default DNS-only profile and keeps it trusted where "
              "this one is)")

_BUN_CLIENT = r"""
try {
  const res = await fetch(process.argv[process.argv.length - 1], { signal: AbortSignal.timeout(20000) });
  await res.text();
} catch (err) {
  console.error(err.code ? `${err.code}: ${err.message}` : String(err.message || err));
  process.exit(2);
}
"""


def client_bun(url: str, env: dict[str, str]) -> ClientResult:
    bun = shutil.which("bun", path=env.get("PATH"))
    if bun is None:
        return ClientResult(ABSENT, "bun is not installed")
    return _fetch_client("bun", [bun, "-e", _BUN_CLIENT, url], env, bun_version(bun, env), BUN_CONSTRAINT_ERROR)


_DENO_CLIENT = r"""
try {
  const res = await fetch(Deno.args[0], { signal: AbortSignal.timeout(20000) });
  await res.text();
} catch (err) {
  let cause = err;
  while (cause.cause) cause = cause.cause;
  console.error(cause === err ? String(err.message) : `${err.message}: ${cause.message || cause}`);
  Deno.exit(2);
}
"""


def client_deno(url: str, env: dict[str, str]) -> ClientResult:
    deno = shutil.which("deno", path=env.get("PATH"))
    if deno is None:
        return ClientResult(ABSENT, "deno is not installed")
    version = deno_version(deno, env)
    # No update check (it would reach the network) and no prompt (no terminal is there).
    run_env = {**env, "DENO_NO_UPDATE_CHECK": "1", "DENO_NO_PROMPT": "1", "NO_COLOR": "1"}
    return _fetch_client("deno", [deno, "eval", _DENO_CLIENT, url], run_env, version, DENO_CONSTRAINT_ERROR)


def _fetch_client(tool: str, argv: list[str], env: dict[str, str], version: str, constraint_error: str) -> ClientResult:
    """Bun's or Deno's verdict from running its fetch client ``argv``: a refusal that names
    ``constraint_error`` (a name constraint it cannot evaluate) gets :data:`ROTATE_FIX`."""
    try:
        done = _run(argv, env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s", version=version)
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate", version=version)
    detail = _last_line(done.stderr) or f"{tool} exit status {done.returncode}"
    fix = ROTATE_FIX if constraint_error in detail else ""
    return ClientResult(PROBLEM, detail, version=version, fix=fix)


#: Go's client: crypto/tls with the default config, so the roots are what a Go program on this
#: machine gets (on Linux: SSL_CERT_FILE / SSL_CERT_DIR, else the OS bundle).
_GO_CLIENT = """package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

func main() {
	u, err := url.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dialer := &net.Dialer{Timeout: 20 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", u.Host, &tls.Config{ServerName: u.Hostname()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	conn.Close()
}
"""


def go_client_binary(go: str, env: dict[str, str]) -> tuple[str | None, str]:
    """Go's client, built once per source and Go version: ``(path, "")`` or ``(None, why not)``.

    `go run` would compile on every doctor run (seconds); the binary is kept in devcert's
    cache folder (the user's own, mode 0700, so nobody else can swap what doctor runs).
    """
    version = _version([go, "version"], env, r"go version go(\S+)")
    if not version:
        return None, "`go version` does not answer"
    digest = hashlib.sha256(f"{_GO_CLIENT}\0{go}\0{version}".encode()).hexdigest()[:16]
    folder = Path(platformdirs.user_cache_dir("devcert", appauthor=False)) / "go-client"
    binary = folder / f"tlsclient-{digest}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return str(binary), ""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(prefix="devcert-go-", dir=folder) as tmp:
            source = Path(tmp, "main.go")
            source.write_text(_GO_CLIENT, encoding="utf-8")
            # GOTOOLCHAIN=local: never download another toolchain to build this.
            build_env = {**env, "GOTOOLCHAIN": "local", "GOFLAGS": "", "GO111MODULE": "on"}
            done = subprocess.run([go, "build", "-o", str(Path(tmp, "tlsclient")), str(source)], capture_output=True,
                                  text=True, timeout=CLIENT_TIMEOUT, env=build_env, cwd=tmp, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                return None, f"cannot build the Go client: {_last_line(done.stderr) or done.returncode}"
            os.replace(Path(tmp, "tlsclient"), binary)  # atomic: a concurrent doctor sees all or nothing
    except subprocess.TimeoutExpired:
        return None, f"building the Go client took over {CLIENT_TIMEOUT:.0f} s"
    except OSError as err:
        return None, f"cannot build the Go client in {folder}: {err}"
    return str(binary), ""


def client_go(url: str, env: dict[str, str]) -> ClientResult:
    go = shutil.which("go", path=env.get("PATH"))
    if go is None:
        return ClientResult(ABSENT, "go is not installed")
    version = _version([go, "version"], env, r"go version go(\S+)")
    binary, why = go_client_binary(go, env)
    if binary is None:
        return ClientResult(SKIPPED, why, version=version)
    try:
        done = _run([binary, url], env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s", version=version)
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate", version=version)
    return ClientResult(PROBLEM, _last_line(done.stderr) or f"exit status {done.returncode}", version=version)


_JAVA_CLIENT = r"""
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class Client {
    public static void main(String[] args) throws Exception {
        HttpsURLConnection conn = (HttpsURLConnection) new URL(args[0]).openConnection();
        conn.setConnectTimeout(20000);
        conn.setReadTimeout(20000);
        try {
            int code = conn.getResponseCode();
            System.exit(code == 200 ? 0 : 4);
        } catch (javax.net.ssl.SSLException e) {
            System.err.println(e.getClass().getSimpleName() + ": " + e.getMessage());
            System.exit(2);
        }
    }
}
"""


def client_java(url: str, env: dict[str, str]) -> ClientResult:
    java = shutil.which("java", path=env.get("PATH"))
    if java is None:
        return ClientResult(ABSENT, "java is not installed")
    with tempfile.TemporaryDirectory(prefix="devcert-doctor-") as tmp:
        source = Path(tmp, "Client.java")
        source.write_text(_JAVA_CLIENT, encoding="utf-8")
        try:
            done = _run([java, str(source), url], env, cwd=tmp)
        except subprocess.TimeoutExpired:
            return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s")
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate")
    if "Client.java" in done.stderr and "error:" in done.stderr:
        return ClientResult(ABSENT, "this java cannot run a source file (needs Java 11+)")
    return ClientResult(PROBLEM, _last_line(done.stderr) or f"java exit status {done.returncode}")


#: (name, probe, fix when it does not trust the CA)
CLIENTS: tuple[tuple[str, Callable[[str, dict[str, str]], ClientResult], str], ...] = (
    ("python ssl", client_python_ssl, Advice("{install} (the OS store), or {env} (SSL_CERT_FILE)")),
    ("requests", client_requests, Advice("{env}: requests reads certifi's bundle, never the OS store (REQUESTS_CA_BUNDLE)")),
    ("httpx", client_httpx, Advice("{env}: httpx reads certifi's bundle unless SSL_CERT_FILE is set")),
    ("curl", client_curl, Advice("{install}, or {env} (CURL_CA_BUNDLE)")),
    ("node", client_node, Advice("{env} (NODE_EXTRA_CA_CERTS): Node does not read the OS store")),
    ("bun", client_bun, Advice("{env} (NODE_EXTRA_CA_CERTS, which Bun reads as Node does)")),
    ("deno", client_deno, Advice("{env} (DENO_CERT), or DENO_TLS_CA_STORE=system after {install}")),
    ("go", client_go, Advice("{install} (Go reads the OS bundle), or {env} (SSL_CERT_FILE)")),
    ("java", client_java, Advice("{install} (the Java keystore)")),
)


def check_clients(ca: LocalCA, environ: dict[str, str] | None = None,
                  only: tuple[str, ...] | None = None) -> list[Check]:
    if ca.key is None:
        return [Check("client", "clients", SKIPPED, "the CA key is missing or unusable, so no test certificate can be made")]
    env, left_out = client_environ(dict(os.environ if environ is None else environ))
    checks = []
    if left_out:
        # A warning, not a problem: the Environment group already counts each one as a problem.
        it = "it" if len(left_out) == 1 else "them"
        checks.append(Check("client", "environment", WARN,
                            f"{'; '.join(left_out)}: left out of the clients' environment, where {it} could "
                            f"hang them or exhaust their memory; the verdicts below are without {it}",
                            Advice(ENV_FIX + ", or unset or fix what is named")))
    chosen = [c for c in CLIENTS if only is None or c[0] in only]
    results: dict[str, ClientResult] = {}
    with local_server(ca) as url:
        # The clients are independent processes: run them side by side (Java alone takes seconds).
        threads = []
        for name, probe, _ in chosen:
            def run(name: str = name, probe: Callable[[str, dict[str, str]], ClientResult] = probe) -> None:
                try:
                    results[name] = probe(url, env)
                except Exception as err:  # a probe must never break the report
                    results[name] = ClientResult(PROBLEM, f"could not run: {err}")
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 10)
    for name, _, fix in chosen:
        result = results.get(name, ClientResult(PROBLEM, "did not finish"))
        which = f"{name} {result.version}: " if result.version else ""
        if result.status == OK:
            checks.append(Check("client", name, OK, f"{which}trusts the CA (real TLS handshake)"))
        elif result.status in (ABSENT, SKIPPED):
            checks.append(Check("client", name, result.status, which + result.detail))
        else:
            checks.append(Check("client", name, PROBLEM, f"{which}does not trust the CA: {result.detail}",
                                result.fix or fix))
    return checks


# -- name constraints each client can evaluate ------------------------------------------------

def check_constraint_support(ca: LocalCA, environ: dict[str, str] | None = None) -> list[Check]:
    """A problem row for each client on PATH that refuses leaves under this CA's constraint types.

    BoringSSL (Bun) evaluates DNS, email and URI constraints but no iPAddress ones: under IP
    subtrees it fails every leaf that carries an IP address. webpki (rustls, Deno) refuses
    every leaf with an email or URI name under email or URI subtrees. The default ``dns``
    profile has neither; a CA made before it (or with ``--profile strict``) has both.
    """
    try:
        ext = ca.cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    subtrees = [*(ext.permitted_subtrees or ()), *(ext.excluded_subtrees or ())]
    ip = any(isinstance(g, x509.IPAddress) for g in subtrees)
    email_uri = any(isinstance(g, (x509.RFC822Name, x509.UniformResourceIdentifier)) for g in subtrees)
    env = dict(os.environ if environ is None else environ)
    checks = []
    bun = shutil.which("bun", path=env.get("PATH")) if ip else None
    if bun:
        version = bun_version(bun, env)
        checks.append(Check("ca", "constraints: bun", PROBLEM,
                            f"Bun {version or '(version unknown)'} ({bun}) uses BoringSSL, which cannot check the "
                            f"CA's IP address constraints: it fails every leaf with an IP address "
                            f"({BUN_CONSTRAINT_ERROR})", ROTATE_FIX))
    deno = shutil.which("deno", path=env.get("PATH")) if email_uri else None
    if deno:
        version = deno_version(deno, env)
        checks.append(Check("ca", "constraints: deno", PROBLEM,
                            f"Deno {version or '(version unknown)'} ({deno}) uses rustls/webpki, which refuses the "
                            f"CA's email and URI constraints: it fails every leaf with an email or URI SAN "
                            f"({DENO_CONSTRAINT_ERROR})", ROTATE_FIX))
    return checks


def run_doctor(root: Path | None = None, environ: dict[str, str] | None = None, *, clients: bool = True) -> Report:
    """Every check, in the order a person would look: CA, stores, environment, clients."""
    checks, ca = check_ca(root)
    if ca is None:
        return Report(checks)
    # Store checks (keytool starts a JVM) and client handshakes (Java compiles its client)
    # take seconds each: run the two groups side by side.
    stores: list[Check] = []

    def store_checks() -> None:
        stores.extend(check_stores(ca, environ))

    thread = threading.Thread(target=store_checks, daemon=True)
    thread.start()
    client_checks = check_clients(ca, environ) if clients else []
    thread.join(CLIENT_TIMEOUT * 3)
    if thread.is_alive():
        stores.append(Check("store", "trust stores", PROBLEM, "the trust stores did not answer in time"))
    return Report(checks + check_constraint_support(ca, environ) + stores + check_env(ca, environ) + client_checks)


def _sh(value: str) -> str:
    return shlex.quote(value)
