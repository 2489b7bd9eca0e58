"""Every TLS stack a developer meets verifies devcert's certificates: real handshakes.

One matrix: for each kind of leaf (``devcert create``'s default names, ``serve-wss``'s, a DNS
name, a wildcard, IPv4, IPv6, a ``--client`` certificate with an email used for mTLS, a URI
SAN, RSA and ECDSA leaves), from an ECDSA CA and from an RSA CA, made with the real
``devcert`` CLI in a private CAROOT, a Python ``ssl`` server on 127.0.0.1 / ::1 presents the
leaf and every stack connects trusting only that CA:

- OpenSSL: Python ``ssl``, curl, ``openssl s_client -verify_return_error``
- Node.js: ``https.get`` with ``ca`` (OpenSSL)
- Bun: ``fetch`` with ``tls: {ca}`` (BoringSSL's verifier)
- Deno: ``Deno.startTls`` under ``deno run --cert CA.pem`` (rustls, webpki)
- Go: crypto/tls with a pool holding only the CA (tests/stacks/tlsclient.go, built once)
- GnuTLS: ``gnutls-cli --x509cafile``
- Java: PKIX with a trust store holding only the CA (tests/stacks/TlsClient.java, compiled once)

NSS (Chromium, Firefox) is covered by the browser tests. Under the default ``dns`` profile
every stack accepts every kind. Under ``--profile strict`` the two known refusals are
asserted with their exact error (Bun: every leaf with an IP address; Deno: every leaf with an
email or URI name), so the README's claims are proven, not assumed. The protection test: a
leaf forged with the CA key for a public DNS name is refused by every stack with a
name-constraint error; the trade-off of the ``dns`` profile (public IPs and emails are not
constrained) is asserted too.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devcert.serve import DEFAULT_NAMES as SERVE_DEFAULT_NAMES
from tests.helpers import IN_CI, NODE_BIN, STACKS_DIR, UNIT, TLSServer, clean_env, ipv6_loopback_works, require_tool, run_devcert

#: Bound on one client run, process start included (a JVM takes a second or two).
CLIENT_TIMEOUT = 30 * UNIT
#: Bound on the server's wait for a request or a close.
SERVER_TIMEOUT = 15 * UNIT

STACKS = ("python", "curl", "s_client", "node", "bun", "deno", "go", "gnutls", "java")
#: The stacks that can present a client certificate from a file without ceremony. Deno's
#: Deno.startTls (needed to verify a name other than the address) takes none.
MTLS_STACKS = frozenset({"python", "curl", "s_client", "node", "bun", "go", "gnutls", "java"})


@dataclass(frozen=True)
class Kind:
    """A kind of leaf: the names given to ``devcert create``, and how a client checks it."""

    names: tuple[str, ...]
    host: str  # where the server listens and the client connects
    verify: str  # the name the client verifies (and sends as SNI when it is a DNS name)
    key_type: str = "ecdsa"
    client: bool = False  # --client: the server then demands it back as the client certificate


KINDS: dict[str, Kind] = {
    "create-default": Kind(("localhost", "127.0.0.1", "::1"), "127.0.0.1", "localhost"),
    "serve-wss-default": Kind(tuple(SERVE_DEFAULT_NAMES), "127.0.0.1", "127.0.0.1"),
    "dns-ecdsa": Kind(("app.test",), "127.0.0.1", "app.test"),
    "wildcard": Kind(("*.app.test",), "127.0.0.1", "x.app.test"),
    "ipv4": Kind(("127.0.0.1",), "127.0.0.1", "127.0.0.1"),
    "ipv6": Kind(("::1",), "::1", "::1"),
    # An email SAN in a --client certificate: every stack verifies it as the server's leaf
    # (so its email name meets the CA's constraints), and presents it back for mTLS.
    "email-client": Kind(("localhost", "dev@app.test"), "127.0.0.1", "localhost", client=True),
    "uri": Kind(("localhost", "spiffe://app.test/api"), "127.0.0.1", "localhost"),
    "dns-rsa": Kind(("app.test",), "127.0.0.1", "app.test", key_type="rsa"),
}

#: Under --profile strict: (stack, kind) -> the error text the stack must fail with.
BUN_IP = "UNSUPPORTED_CONSTRAINT_TYPE: unsupported name constraint type"
DENO_EMAIL_URI = "invalid peer certificate: Other(OtherError(NameConstraintViolation))"
STRICT_FAILURES: dict[tuple[str, str], str] = {
    **{("bun", kind): BUN_IP for kind in ("create-default", "serve-wss-default", "ipv4", "ipv6")},
    ("deno", "email-client"): DENO_EMAIL_URI,
    ("deno", "uri"): DENO_EMAIL_URI,
}


# -- the CAs and leaves, made with the real CLI, once per module -----------------------------

@dataclass
class Pair:
    cert: Path
    key: Path


class Certs:
    """CAs (profile x key type) and their leaves, each made on first use and then kept."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._locks: dict[object, threading.Lock] = {}
        self._made: dict[object, object] = {}

    def _once(self, key: object, make: Callable[[], object]) -> object:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]

    def caroot(self, profile: str, ca_key: str) -> Path:
        def make() -> Path:
            root = self.folder / f"ca-{profile}-{ca_key}"
            args = ["ca", "init", "--key-type", ca_key, "--profile", profile]
            done = run_devcert(*args, env=self.env(root))
            assert done.returncode == 0, done.stderr
            return root
        return self._once(("ca", profile, ca_key), make)  # type: ignore[return-value]

    def ca(self, profile: str, ca_key: str) -> Path:
        return self.caroot(profile, ca_key) / "rootCA.pem"

    def env(self, root: Path) -> dict[str, str]:
        # DEVCERT_TRUST_STORES=system: the "not trusted yet" hint reads one file, no certutil.
        return clean_env(DEVCERT_CAROOT=str(root), DEVCERT_TRUST_STORES="system")

    def leaf(self, profile: str, ca_key: str, kind_name: str) -> Pair:
        kind = KINDS[kind_name]

        def make() -> Pair:
            root = self.caroot(profile, ca_key)
            out = self.folder / f"leaf-{profile}-{ca_key}-{kind_name}"
            out.mkdir()
            pair = Pair(out / "cert.pem", out / "key.pem")
            args = ["create", *kind.names, "--cert-file", str(pair.cert), "--key-file", str(pair.key),
                    "--key-type", kind.key_type]
            if kind.client:
                args.append("--client")
            done = run_devcert(*args, env=self.env(root))
            assert done.returncode == 0, done.stderr
            return pair
        return self._once(("leaf", profile, ca_key, kind_name), make)  # type: ignore[return-value]

    def ca_key(self, profile: str, ca_key: str) -> tuple[x509.Certificate, object]:
        root = self.caroot(profile, ca_key)
        cert = x509.load_pem_x509_certificate((root / "rootCA.pem").read_bytes())
        key = serialization.load_pem_private_key((root / "rootCA-key.pem").read_bytes(), None)
        return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("stacks"))


# -- the clients, each built or found once per session ---------------------------------------

@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    go = require_tool("go", "the Go column of the matrix")
    out = tmp_path_factory.mktemp("go") / "tlsclient"
    # GOTOOLCHAIN=local: never fetch another toolchain; GOFLAGS empty: no module look-ups.
    env = clean_env(GOTOOLCHAIN="local", GOFLAGS="", GO111MODULE="on")
    done = subprocess.run([go, "build", "-o", str(out), str(STACKS_DIR / "tlsclient.go")], env=env,
                          capture_output=True, text=True, timeout=300 * UNIT)
    assert done.returncode == 0, done.stderr
    return str(out)


class JavaWorker:
    """One JVM for the whole session (TlsClient without arguments): a handshake per line.

    A JVM takes a second of CPU to start; the matrix makes dozens of Java handshakes. Each
    request is bounded by CLIENT_TIMEOUT; a worker that does not answer is ended (by its pid,
    it is ours) and every later request fails at once.
    """

    def __init__(self, java: str, classes: str, env: dict[str, str]):
        import queue

        self.proc = subprocess.Popen([java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", classes,
                                      "TlsClient"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("ERR the Java worker ended")

    def run(self, args: list[str]) -> Result:
        import queue

        with self.lock:
            if self.proc.poll() is not None:
                return Result(False, "the Java worker ended")
            assert self.proc.stdin is not None
            self.proc.stdin.write("\t".join(args) + "\n")
            self.proc.stdin.flush()
            try:
                line = self.lines.get(timeout=CLIENT_TIMEOUT)
            except queue.Empty:
                self.proc.kill()
                return Result(False, f"no answer within {CLIENT_TIMEOUT:.0f} s")
        verdict, _, detail = line.partition(" ")
        return Result(verdict == "OK", detail)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the end of its input ends it
        try:
            self.proc.wait(10 * UNIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5 * UNIT)


@pytest.fixture(scope="session")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JavaWorker]:
    javac = require_tool("javac", "the Java column of the matrix")
    java = require_tool("java", "the Java column of the matrix")
    out = tmp_path_factory.mktemp("java")
    done = subprocess.run([javac, "-d", str(out), str(STACKS_DIR / "TlsClient.java")], env=clean_env(),
                          capture_output=True, text=True, timeout=300 * UNIT)
    assert done.returncode == 0, done.stderr
    worker = JavaWorker(java, str(out), clean_env())
    yield worker
    worker.close()


def _tool(name: str) -> str:
    """A tool from PATH, else from .cache/node (where scripts/test puts bun and deno)."""
    found = shutil.which(name) or shutil.which(name, path=str(NODE_BIN))
    if found:
        return found
    return require_tool(name, "a column of the stack matrix")


@dataclass
class Result:
    ok: bool
    detail: str  # the answer's first line, or the client's one-line error


@dataclass
class Target:
    host: str
    port: int
    name: str
    ca: Path
    client: Pair | None = None


class Clients:
    """Runs one stack's client against a target; each run bounded by CLIENT_TIMEOUT."""

    def __init__(self, go: str, java: JavaWorker, tmp: Path):
        self.go = go
        self.java = java
        self.env = clean_env(DENO_NO_UPDATE_CHECK="1", DENO_NO_PROMPT="1", DENO_DIR=str(tmp / "deno"),
                             GOTOOLCHAIN="local", NO_COLOR="1")
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            self.env.pop(proxy, None)  # loopback only, never through a proxy

    def run(self, stack: str, target: Target) -> Result:
        return getattr(self, "_" + stack)(target)

    @staticmethod
    def _is_ip(name: str) -> bool:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _exec(self, argv: list[str], stdin: str | None = None, marker: str = "") -> Result:
        """Run a client; its verdict is its exit status and answer, its error the last stderr
        line (or the first one holding ``marker``, where a client says why before what)."""
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, env=self.env,
                                  input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Result(False, f"no answer within {CLIENT_TIMEOUT:.0f} s")
        if done.returncode == 0 and ("200" in done.stdout or "hello" in done.stdout):
            return Result(True, done.stdout.strip().splitlines()[0])
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        marked = [line for line in lines if marker and marker in line]
        if marked:
            return Result(False, marked[0])
        return Result(False, (lines[-1] if lines else "") or f"exit status {done.returncode}: {done.stdout[-300:]}")

    def _python(self, t: Target) -> Result:
        ctx = ssl.create_default_context(cafile=str(t.ca))  # only this CA: no default roots
        if t.client:
            ctx.load_cert_chain(t.client.cert, t.client.key)
        try:
            with socket.create_connection((t.host, t.port), timeout=CLIENT_TIMEOUT) as raw:
                with ctx.wrap_socket(raw, server_hostname=t.name) as tls:
                    tls.sendall(f"GET / HTTP/1.0\r\nHost: {t.name}\r\n\r\n".encode())
                    answer = tls.recv(4096).decode("latin-1")
        except (OSError, ssl.SSLError) as err:
            return Result(False, f"{type(err).__name__}: {err}")
        if not answer:
            return Result(False, "the server closed the connection without an answer")
        return Result(True, answer.splitlines()[0])

    def _curl(self, t: Target) -> Result:
        argv = [_tool("curl"), "-sS", "--max-time", f"{20 * UNIT:g}", "--noproxy", "*", "--cacert", str(t.ca)]
        if self._is_ip(t.name):
            url = f"https://{'[' + t.name + ']' if ':' in t.name else t.name}:{t.port}/"
        else:
            url = f"https://{t.name}:{t.port}/"
            argv += ["--resolve", f"{t.name}:{t.port}:{t.host}"]
        if t.client:
            argv += ["--cert", str(t.client.cert), "--key", str(t.client.key)]
        return self._exec([*argv, url], marker="curl: (")

    def _s_client(self, t: Target) -> Result:
        host = f"[{t.host}]" if ":" in t.host else t.host
        argv = [_tool("openssl"), "s_client", "-connect", f"{host}:{t.port}", "-CAfile", str(t.ca),
                "-verify_return_error", "-quiet"]
        if self._is_ip(t.name):
            argv += ["-verify_ip", t.name, "-noservername"]
        else:
            argv += ["-verify_hostname", t.name, "-servername", t.name]
        if t.client:
            argv += ["-cert", str(t.client.cert), "-key", str(t.client.key)]
        # s_client says why on a "verify error:" line, before the generic last one.
        return self._exec(argv, stdin=f"GET / HTTP/1.0\r\nHost: {t.name}\r\n\r\n", marker="verify error")

    def _node(self, t: Target) -> Result:
        return self._exec([_tool("node"), str(STACKS_DIR / "node_client.js"), t.host, str(t.port), t.name,
                           str(t.ca), *self._client_args(t)])

    def _bun(self, t: Target) -> Result:
        return self._exec([_tool("bun"), str(STACKS_DIR / "bun_client.js"), t.host, str(t.port), t.name,
                           str(t.ca), *self._client_args(t)])

    def _deno(self, t: Target) -> Result:
        return self._exec([_tool("deno"), "run", "--allow-net", "--cert", str(t.ca),
                           str(STACKS_DIR / "deno_client.ts"), t.host, str(t.port), t.name])

    def _go(self, t: Target) -> Result:
        host = f"[{t.host}]" if ":" in t.host else t.host
        argv = [self.go, "-addr", f"{host}:{t.port}", "-name", t.name, "-ca", str(t.ca)]
        if t.client:
            argv += ["-cert", str(t.client.cert), "-key", str(t.client.key)]
        return self._exec(argv)

    def _gnutls(self, t: Target) -> Result:
        argv = [_tool("gnutls-cli"), "--x509cafile", str(t.ca), "--port", str(t.port),
                "--verify-hostname", t.name]
        if not self._is_ip(t.name):
            argv += ["--sni-hostname", t.name]
        if t.client:
            argv += ["--x509certfile", str(t.client.cert), "--x509keyfile", str(t.client.key)]
        try:
            done = subprocess.run([*argv, t.host], capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                                  env=self.env, input=f"GET / HTTP/1.0\r\nHost: {t.name}\r\n\r\n")
        except subprocess.TimeoutExpired:
            return Result(False, f"no answer within {CLIENT_TIMEOUT:.0f} s")
        if done.returncode == 0 and "hello" in done.stdout:
            return Result(True, "HTTP/1.0 200 OK")
        # gnutls-cli tells the verdict on its "- Status:" line (stdout), the rest on "***" lines.
        lines = done.stdout.splitlines() + done.stderr.splitlines()
        status = [line.strip() for line in lines if "Status:" in line and "NOT trusted" in line]
        fatal = [line.strip() for line in lines if line.startswith("***")]
        return Result(False, " ".join(status + fatal)[:500] or f"exit status {done.returncode}")

    def _java(self, t: Target) -> Result:
        return self.java.run([t.host, str(t.port), t.name, str(t.ca), *self._client_args(t)])

    @staticmethod
    def _client_args(t: Target) -> list[str]:
        return [str(t.client.cert), str(t.client.key)] if t.client else []


@pytest.fixture(scope="module")
def clients(go_client: str, java_client: JavaWorker, tmp_path_factory: pytest.TempPathFactory) -> Clients:
    for tool in ("curl", "openssl", "node", "gnutls-cli"):
        require_tool(tool, "a column of the stack matrix")
    for tool in ("bun", "deno"):
        _tool(tool)
    return Clients(go_client, java_client, tmp_path_factory.mktemp("clients"))


# -- the server ------------------------------------------------------------------------------

def Server(leaf: Pair, host: str, client_ca: Path | None = None) -> TLSServer:  # noqa: N802 (reads as the class it makes)
    """tests.helpers.TLSServer presenting ``leaf`` on ``host`` port 0, answering each connection
    with an HTTP ``hello``; with ``client_ca`` it demands a client certificate signed by that CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert, leaf.key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return TLSServer(ctx, host, timeout=SERVER_TIMEOUT)


def run_stacks(clients: Clients, stacks: tuple[str, ...], target: Target,
               plain: Target | None = None) -> dict[str, Result]:
    """Every stack against ``target``, side by side (each one is its own process); stacks that
    cannot present a client certificate go to ``plain`` (a server that asks for none)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {stack: pool.submit(clients.run, stack,
                                      target if stack in MTLS_STACKS or plain is None else plain)
                   for stack in stacks}
        return {stack: future.result(timeout=CLIENT_TIMEOUT * len(stacks)) for stack, future in futures.items()}


def table(results: dict[str, Result]) -> str:
    return "\n".join(f"  {stack:9} {'ok  ' if r.ok else 'FAIL'} {r.detail}" for stack, r in results.items())


def matrix_case(certs: Certs, clients: Clients, profile: str, ca_key: str, kind_name: str) -> dict[str, Result]:
    kind = KINDS[kind_name]
    if ":" in kind.host and not ipv6_loopback_works():
        if IN_CI:
            pytest.fail("::1 is not usable here")
        pytest.skip("::1 is not usable here")
    leaf = certs.leaf(profile, ca_key, kind_name)
    ca = certs.ca(profile, ca_key)
    if not kind.client:
        with Server(leaf, kind.host) as server:
            return run_stacks(clients, STACKS, Target(kind.host, server.port, kind.verify, ca))
    # mTLS: this server demands a client certificate from the CA; the stacks that cannot send
    # one verify the same leaf at a second server that asks for none.
    with Server(leaf, kind.host, client_ca=ca) as server, Server(leaf, kind.host) as plain:
        results = run_stacks(clients, STACKS, Target(kind.host, server.port, kind.verify, ca, leaf),
                             Target(kind.host, plain.port, kind.verify, ca))
        sent = sum(results[s].ok for s in STACKS if s in MTLS_STACKS)
        assert len(server.peer_certs) >= sent, (server.peer_certs, table(results))
    return results


# -- the matrix ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind_name", list(KINDS))
@pytest.mark.parametrize("ca_key", ["ecdsa", "rsa"])
def test_every_stack_accepts_every_leaf_of_the_default_profile(certs, clients, ca_key, kind_name):
    results = matrix_case(certs, clients, "dns", ca_key, kind_name)
    failed = {stack: r for stack, r in results.items() if not r.ok}
    assert not failed, f"{kind_name} leaf from an {ca_key} CA (default dns profile):\n{table(results)}"


@pytest.mark.parametrize("kind_name", list(KINDS))
@pytest.mark.parametrize("ca_key", ["ecdsa", "rsa"])
def test_strict_profile_fails_exactly_where_the_readme_says(certs, clients, ca_key, kind_name):
    """Bun refuses every IP leaf, Deno every email / URI leaf, under --profile strict; nothing else fails."""
    results = matrix_case(certs, clients, "strict", ca_key, kind_name)
    report = f"{kind_name} leaf from an {ca_key} CA (--profile strict):\n{table(results)}"
    for stack, result in results.items():
        expected = STRICT_FAILURES.get((stack, kind_name))
        if expected is None:
            assert result.ok, report
        else:
            assert not result.ok, f"{stack} now accepts this leaf: update README and STRICT_FAILURES\n{report}"
            assert expected in result.detail, report


def test_every_stack_verifies_against_the_given_ca_only(certs, clients):
    """The control: the same leaf checked against another CA fails everywhere (no stack skips
    verification, and none trusts the leaf through some other root)."""
    leaf = certs.leaf("dns", "ecdsa", "dns-ecdsa")
    other = certs.ca("dns", "rsa")
    with Server(leaf, "127.0.0.1") as server:
        results = run_stacks(clients, STACKS, Target("127.0.0.1", server.port, "app.test", other))
    assert not any(r.ok for r in results.values()), table(results)


# -- protection: what a leaked CA key can and cannot sign for ---------------------------------

def forge_leaf(certs: Certs, profile: str, names: list[x509.GeneralName], folder: Path) -> Pair:
    """A leaf signed directly with the CA key, bypassing devcert's own refusal of such names."""
    ca_cert, ca_key = certs.ca_key(profile, "ecdsa")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "forged")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    folder.mkdir(exist_ok=True)
    pair = Pair(folder / "forged.pem", folder / "forged-key.pem")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


#: How each stack words "the CA may not sign for this name".
NAME_CONSTRAINT_ERRORS: dict[str, tuple[str, ...]] = {
    "python": ("permitted subtree violation",),
    "curl": ("permitted subtree violation",),
    "s_client": ("permitted subtree violation",),
    "node": ("permitted subtree violation",),
    "bun": ("PERMITTED_VIOLATION: permitted subtree violation",),
    "deno": ("NameConstraintViolation",),
    "go": ("is not permitted by any constraint",),
    "gnutls": ("violates the signer's constraints",),
}
#: Stacks that never apply a root's name constraints. Java's PKIX validator takes the trust
#: anchor's certificate as a name and a key only: the NameConstraints of the root (devcert's CA
#: is a root) are ignored, so the constraints protect no Java client. Asserted, so that a JDK
#: that starts enforcing them shows up here.
IGNORES_ROOT_CONSTRAINTS = frozenset({"java"})
ENFORCING = tuple(s for s in STACKS if s not in IGNORES_ROOT_CONSTRAINTS)


@pytest.mark.parametrize("profile", ["dns", "strict"])
def test_a_forged_leaf_for_a_public_name_is_refused_by_every_stack(certs, clients, tmp_path, profile):
    pair = forge_leaf(certs, profile, [x509.DNSName("www.google.com")], tmp_path)
    with Server(pair, "127.0.0.1") as server:
        results = run_stacks(clients, STACKS, Target("127.0.0.1", server.port, "www.google.com",
                                                     certs.ca(profile, "ecdsa")))
    for stack in ENFORCING:
        assert not results[stack].ok, table(results)
        assert any(text in results[stack].detail for text in NAME_CONSTRAINT_ERRORS[stack]), (stack, table(results))
    for stack in IGNORES_ROOT_CONSTRAINTS:
        assert results[stack].ok, f"{stack} now enforces a root's name constraints: update the README\n{table(results)}"


def test_the_dns_profile_does_not_constrain_ips_or_emails(certs, clients, tmp_path):
    """The trade-off of the default profile, asserted so it stays a known one: a leaf the leaked
    key signed for a public IP address and a public email address (next to localhost, which the
    clients verify) is accepted by every stack, as a CA without IP or email subtrees means."""
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("8.8.8.8")),
             x509.RFC822Name("someone@gmail.com")]
    pair = forge_leaf(certs, "dns", names, tmp_path)
    with Server(pair, "127.0.0.1") as server:
        results = run_stacks(clients, STACKS, Target("127.0.0.1", server.port, "localhost", certs.ca("dns", "ecdsa")))
    assert all(r.ok for r in results.values()), table(results)


def test_the_strict_profile_constrains_ips_and_emails(certs, clients, tmp_path):
    """The same leaf under --profile strict: refused by the stacks that evaluate IP and email
    constraints, and by Bun and Deno, which refuse them outright (Java ignores them all)."""
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("8.8.8.8")),
             x509.RFC822Name("someone@gmail.com")]
    pair = forge_leaf(certs, "strict", names, tmp_path)
    with Server(pair, "127.0.0.1") as server:
        results = run_stacks(clients, STACKS, Target("127.0.0.1", server.port, "localhost",
                                                     certs.ca("strict", "ecdsa")))
    assert not any(results[stack].ok for stack in ENFORCING), table(results)
    assert all(results[stack].ok for stack in IGNORES_ROOT_CONSTRAINTS), table(results)
    assert BUN_IP in results["bun"].detail, table(results)
    assert "NameConstraintViolation" in results["deno"].detail, table(results)
    for stack in ("python", "curl", "s_client", "node", "go", "gnutls"):
        assert any(text in results[stack].detail for text in NAME_CONSTRAINT_ERRORS[stack]
                   + ("not permitted",)), (stack, table(results))
