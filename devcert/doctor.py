"""``devcert doctor``: which parts of this machine trust the local CA, which do not, and why.

Every check returns a :class:`Check` (data, never printed here): the CA's files, each trust
store, environment variables that override trust, and, by a real TLS handshake against a
short-lived local server presenting a devcert leaf, each client present on the machine.
"""

from __future__ import annotations

import datetime as dt
import os
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ca import LocalCA

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
ENV_FIX = 'eval "$(devcert env)"'


@dataclass
class Check:
    group: str  # "ca", "store", "env", "client"
    name: str
    status: str  # ok | warn | problem | not present | skipped
    detail: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


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
    from .ca import CERT_FILE, KEY_FILE, LocalCA, _now, caroot
    from .errors import CAError

    folder = root or caroot()
    checks: list[Check] = []
    cert_file = folder / CERT_FILE
    if folder.exists() and not folder.is_dir():
        checks.append(Check("ca", "CA certificate", PROBLEM,
                            f"CAROOT {folder} is a file, not a folder, so no CA can be kept there",
                            "move that file aside, or point DEVCERT_CAROOT at a folder"))
        return checks, None
    if not cert_file.exists():
        checks.append(Check("ca", "CA certificate", PROBLEM, f"there is no CA in {folder}",
                            "devcert ca init (then devcert install)"))
        return checks, None
    try:
        ca = LocalCA.load(folder, require_key=False)
    except CAError as err:
        checks.append(Check("ca", "CA certificate", PROBLEM, str(err), "devcert ca init --force"))
        return checks, None
    checks.append(Check("ca", "CA certificate", OK, f"{ca.common_name} in {cert_file}"))

    key_file = folder / KEY_FILE
    if ca.key_problem:
        checks.append(Check("ca", "CA key", PROBLEM, f"{ca.key_problem}: the CA cannot sign new certificates",
                            "restore the key from a backup, or devcert ca init --force"))
    elif ca.key is None:
        checks.append(Check("ca", "CA key", WARN, f"{key_file} is missing: the CA cannot sign new certificates",
                            "restore the key, or devcert ca init --force"))
    elif os.name == "posix":
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            checks.append(Check("ca", "CA key", PROBLEM,
                                f"{key_file} has mode {mode:04o}: other users can read the CA key",
                                f"chmod 600 {_sh(str(key_file))}"))
        else:
            checks.append(Check("ca", "CA key", OK, f"{key_file} is private ({mode:04o})"))
        folder_mode = stat.S_IMODE(folder.stat().st_mode)
        if folder_mode & 0o077:
            checks.append(Check("ca", "CA folder", WARN, f"{folder} has mode {folder_mode:04o}",
                                f"chmod 700 {_sh(str(folder))}"))
    else:  # pragma: no cover - Windows ACLs are not modes
        checks.append(Check("ca", "CA key", OK, str(key_file)))

    left = ca.not_after - _now()
    when = f"{ca.not_after:%Y-%m-%d}"
    renew = "devcert ca init --force, then devcert install and reissue certificates"
    if left <= dt.timedelta(0):
        checks.append(Check("ca", "CA validity", PROBLEM, f"the CA expired on {when}", renew))
    elif left < dt.timedelta(days=CRITICAL_DAYS):
        checks.append(Check("ca", "CA validity", PROBLEM, f"the CA expires in {left.days} days ({when})", renew))
    elif left < dt.timedelta(days=WARN_DAYS):
        checks.append(Check("ca", "CA validity", WARN, f"the CA expires in {left.days} days ({when})", renew))
    else:
        checks.append(Check("ca", "CA validity", OK, f"valid until {when} ({left.days} days)"))
    return checks, ca


# -- trust stores ---------------------------------------------------------------------------

def check_stores(ca: LocalCA, environ: dict[str, str] | None = None) -> list[Check]:
    try:
        from .trust import selected_stores
    except ImportError:
        return [Check("store", "trust stores", SKIPPED, "this devcert has no trust store support")]
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
            checks.append(Check("store", name, PROBLEM, f"the CA is not installed in {described}", "devcert install"))
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


def check_env(ca: LocalCA, environ: dict[str, str] | None = None) -> list[Check]:
    from cryptography.hazmat.primitives import serialization

    from .clients import file_has_cert

    environ = dict(os.environ if environ is None else environ)
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    checks = []
    for name in (*REPLACING, *ADDING):
        value = environ.get(name)
        if not value:
            continue
        path = Path(value)
        if not path.exists():
            checks.append(Check("env", name, PROBLEM, f"{name}={value} does not exist, so clients that read it fail",
                                f"{ENV_FIX}, or unset {name}"))
        elif path.is_dir():
            checks.append(Check("env", name, PROBLEM, f"{name}={value} is a folder; it must be a PEM file",
                                f"{ENV_FIX}, or unset {name}"))
        elif file_has_cert(path, der):
            checks.append(Check("env", name, OK, f"{name}={value} holds the CA"))
        else:
            effect = ("adds these certificates to Node's roots, but not the CA" if name in ADDING
                      else "replaces the default roots with a file that lacks the CA")
            checks.append(Check("env", name, PROBLEM, f"{name}={value} {effect}", f"{ENV_FIX}, or unset {name}"))
    cert_dir = environ.get("SSL_CERT_DIR")
    if cert_dir:
        for part in cert_dir.split(os.pathsep):
            if part and not Path(part).is_dir():
                checks.append(Check("env", "SSL_CERT_DIR", WARN, f"SSL_CERT_DIR lists {part}, which is not a folder",
                                    "unset SSL_CERT_DIR or fix it"))
    return checks


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
    from .issue import issue_leaf
    from .names import parse_names

    leaf = issue_leaf(ca, parse_names(["localhost", "127.0.0.1"]), days=1)
    with _Server(leaf.server_context()) as server:
        yield f"https://127.0.0.1:{server.port}/"


@dataclass
class ClientResult:
    status: str  # OK, PROBLEM, ABSENT
    detail: str


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
        import importlib.util

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
    node = shutil.which("node", path=env.get("PATH"))
    if node is None:
        return ClientResult(ABSENT, "node is not installed")
    try:
        done = _run([node, "-e", _NODE_CLIENT, url], env)
    except subprocess.TimeoutExpired:
        return ClientResult(PROBLEM, f"no answer within {CLIENT_TIMEOUT:.0f} s")
    if done.returncode == 0:
        return ClientResult(OK, "verified the devcert certificate")
    return ClientResult(PROBLEM, _last_line(done.stderr) or f"node exit status {done.returncode}")


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
    ("python ssl", client_python_ssl, f"devcert install (the OS store), or {ENV_FIX} (SSL_CERT_FILE)"),
    ("requests", client_requests, f"{ENV_FIX}: requests reads certifi's bundle, never the OS store (REQUESTS_CA_BUNDLE)"),
    ("httpx", client_httpx, f"{ENV_FIX}: httpx reads certifi's bundle unless SSL_CERT_FILE is set"),
    ("curl", client_curl, f"devcert install, or {ENV_FIX} (CURL_CA_BUNDLE)"),
    ("node", client_node, f"{ENV_FIX} (NODE_EXTRA_CA_CERTS): Node does not read the OS store"),
    ("java", client_java, "devcert install (the Java keystore)"),
)


def check_clients(ca: LocalCA, environ: dict[str, str] | None = None,
                  only: tuple[str, ...] | None = None) -> list[Check]:
    env = dict(os.environ if environ is None else environ)
    if ca.key is None:
        return [Check("client", "clients", SKIPPED, "the CA key is missing or unusable, so no test certificate can be made")]
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
    checks = []
    for name, _, fix in chosen:
        result = results.get(name, ClientResult(PROBLEM, "did not finish"))
        if result.status == OK:
            checks.append(Check("client", name, OK, "trusts the CA (real TLS handshake)"))
        elif result.status == ABSENT:
            checks.append(Check("client", name, ABSENT, result.detail))
        else:
            checks.append(Check("client", name, PROBLEM, f"does not trust the CA: {result.detail}", fix))
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
    return Report(checks + stores + check_env(ca, environ) + client_checks)


def _sh(value: str) -> str:
    import shlex

    return shlex.quote(value)
