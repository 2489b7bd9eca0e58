"""Kill devcert at every commit point of an operation and check what the next command finds.

For each syscall that can be a commit point (rename, link, unlink, fsync, mkdir, rmdir), the
operation runs under ``strace -e inject=SYSCALL:signal=KILL:when=N`` for N = 1, 2, ... until
a run finishes without reaching its N-th call: SIGKILL arrives as the N-th call is entered, so
the process dies before it. After each kill, a devcert command (``devcert list --json``, which
finishes interrupted work first) runs and the state is checked the way a user would: the CA's
key matches its certificate, every recorded certificate and key make a real TLS handshake
with a client that trusts only the CA on disk, the inventory records the certificate that is on
disk, and nothing is left half done (no journal, no rotation record).

Also runnable as a module (``python -m tests.crashkit rotate BASE``, with the project folder on
PYTHONPATH) inside the trust-store sandbox,
where the rotation's store changes happen in private copies; it prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import UNIT, devcert_exe, serves

SYSCALLS = ("rename", "link", "unlink", "fsync", "mkdir", "rmdir")
#: A bound on kill points per syscall, so a loop that never ends fails instead.
MAX_POINTS = 200
KILLED = (-9, 128 + 9)  # strace re-raises its tracee's SIGKILL on itself (or exits 137)


def run(argv: list[str], env: dict[str, str], cwd: Path, *, inject: tuple[str, int] | None = None,
        stdin: str | None = None, timeout: float = 300 * UNIT) -> subprocess.CompletedProcess[str]:
    full = [devcert_exe(), *argv]
    if inject is not None:
        syscall, n = inject
        # Only the devcert process itself (no -f): its children (certutil, update-ca-certificates)
        # are not commit points of devcert's. The syscall must be traced for inject to apply.
        full = ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}",
                "-e", f"inject={syscall}:signal=KILL:when={n}", *full]
    return subprocess.run(full, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          input=stdin)


def sha256_of_pem(path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mounts") as handle:
            return [line.split()[1].replace("\\040", " ") for line in handle]
    except OSError:
        return []


def _holds_mount(path: str) -> bool:
    """True for a mount point or a folder with one inside (the sandbox binds its copies of
    /etc/ssl/certs/java and JDK cacerts files there: not ours to replace)."""
    real = os.path.realpath(path)
    return any(m == real or m.startswith(real + "/") for m in _mount_points())


@dataclass
class Operation:
    """One devcert operation to kill: its command line, its starting state, and what must hold."""

    name: str
    argv: list[str]
    prepare: Callable[[Path, dict[str, str]], None]  # makes the starting state under a work folder
    extra_check: Callable[[Path, dict[str, str], bool], None] | None = None  # (work, env, completed)
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: Files outside the work folder that the operation changes (trust stores), saved and restored.
    outside: tuple[str, ...] = ()


class KillLoop:
    """Runs an :class:`Operation` to every kill point; ``points`` counts them per syscall."""

    def __init__(self, op: Operation, base: Path, env: dict[str, str], syscalls: tuple[str, ...] = SYSCALLS):
        self.op = op
        self.syscalls = syscalls
        self.work = base / "work"  # fixed path: the inventory records absolute paths
        self.template = base / "template"
        self.saved_outside = base / "outside"
        self.env = {**env, "DEVCERT_CAROOT": str(self.work / "caroot"), "PYTHONDONTWRITEBYTECODE": "1", **op.env}
        self.points: dict[str, int] = {}

    @property
    def caroot(self) -> Path:
        return self.work / "caroot"

    def setup(self) -> None:
        self.work.mkdir(parents=True)
        self.op.prepare(self.work, self.env)
        shutil.copytree(self.work, self.template, symlinks=True)
        for i, path in enumerate(self.op.outside):
            if os.path.exists(path):
                # A folder mounted inside (the sandbox's own copy of /etc/ssl/certs/java) is not ours.
                shutil.copytree(path, self.saved_outside / str(i), symlinks=True,
                                ignore=lambda d, names: [n for n in names if _holds_mount(os.path.join(d, n))])

    def restore(self) -> None:
        shutil.rmtree(self.work)
        shutil.copytree(self.template, self.work, symlinks=True)
        for i, path in enumerate(self.op.outside):
            saved = self.saved_outside / str(i)
            for child in os.listdir(path):
                target = os.path.join(path, child)
                if _holds_mount(target):
                    continue
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            for child in os.listdir(saved):
                src, dst = saved / child, os.path.join(path, child)
                if _holds_mount(dst):
                    continue
                if src.is_dir() and not src.is_symlink():
                    shutil.copytree(src, dst, symlinks=True)
                else:
                    shutil.copy2(src, dst, follow_symlinks=False)

    def run_all(self) -> dict[str, int]:
        self.setup()
        for syscall in self.syscalls:
            n = 0
            while True:
                n += 1
                assert n <= MAX_POINTS, f"{self.op.name}: more than {MAX_POINTS} {syscall} calls"
                self.restore()
                res = run(self.op.argv, self.env, self.work, inject=(syscall, n),
                          stdin=self.op.stdin)
                if res.returncode not in KILLED:
                    assert res.returncode == 0, f"{self.op.name} failed without a kill: {res.stderr}"
                    self.check(completed=True, where="the uninterrupted run")
                    break
                self.check(completed=False, where=f"kill at {syscall} #{n}")
                self.points[syscall] = n
        return self.points

    def check(self, *, completed: bool, where: str) -> None:
        """What the next devcert command finds: complete old state or complete new state."""
        listed = run(["list", "--json"], self.env, self.work)
        assert listed.returncode == 0, f"{self.op.name}, {where}: `devcert list` failed: {listed.stderr}"
        assert "Traceback" not in listed.stderr
        ca_cert, ca_key = self.caroot / "rootCA.pem", self.caroot / "rootCA-key.pem"
        if ca_cert.exists() or ca_key.exists():
            info = run(["ca", "info", "--json"], self.env, self.work)
            assert info.returncode == 0, f"{self.op.name}, {where}: {info.stderr}"
            data = json.loads(info.stdout)
            assert data["key"] and data["key_problem"] is None, f"{self.op.name}, {where}: CA pair broken: {data}"
        leftovers = [p.name for p in (self.caroot / "pending").glob(".devcert-*.journal")] if (self.caroot / "pending").is_dir() else []
        assert not leftovers, f"{self.op.name}, {where}: unfinished journals {leftovers}"
        assert not (self.caroot / "rotation.json").exists() or self.op.name.startswith("rotate-pending"), \
            f"{self.op.name}, {where}: the rotation was not finished"
        for entry in json.loads(listed.stdout)["certs"]:
            cert = Path(entry["cert"])
            assert not entry["missing"], f"{self.op.name}, {where}: {cert} missing"
            assert not entry["replaced"], f"{self.op.name}, {where}: the inventory records another certificate than {cert}"
            if entry.get("key"):
                name = next((n for n in entry["names"] if "@" not in n and "://" not in n), "localhost")
                try:
                    serves(cert, Path(entry["key"]), ca_cert, name.replace("*", "x"))
                except (ssl.SSLError, OSError) as err:
                    raise AssertionError(f"{self.op.name}, {where}: {cert} and its key fail a handshake: {err}") from None
        if self.op.extra_check is not None:
            self.op.extra_check(self.work, self.env, completed)


# -- the operations -------------------------------------------------------------------------------


def must(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, res.stderr
    return res


def prepare_ca_and_leaf(work: Path, env: dict[str, str]) -> None:
    must(run(["ca", "init"], env, work))
    (work / "out").mkdir()
    must(run(["create", "localhost", "127.0.0.1", "--cert-file", "out/dev.pem", "--key-file", "out/dev-key.pem"], env, work))


def prepare_project(work: Path, env: dict[str, str]) -> None:
    must(run(["ca", "init"], env, work))
    (work / "pyproject.toml").write_text(
        "[tool.devcert]\ncerts = [\n"
        '  { names = ["localhost", "127.0.0.1"], cert = "certs/dev.pem", key = "certs/dev-key.pem" },\n'
        '  { names = ["api.localhost"], cert = "certs/api.pem", key = "certs/api-key.pem", key_type = "rsa" },\n'
        "]\n")
    must(run(["sync", "--no-gitignore"], env, work))
    # Change the names, so the next sync reissues both (the operation under test).
    text = (work / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(text.replace('"localhost", "127.0.0.1"', '"localhost", "::1"')
                                         .replace('["api.localhost"]', '["api.localhost", "app.localhost"]'))


def check_ca_replaced(work: Path, env: dict[str, str], completed: bool) -> None:
    """After ca init --force / import-mkcert: the old CA is kept in old/ whenever it was replaced."""
    template_fp = json.loads((work / "old-ca.json").read_text())["sha256"]
    now = json.loads(must(run(["ca", "info", "--json"], env, work)).stdout)["sha256"]
    if now != template_fp:
        backup = work / "caroot" / "old" / template_fp
        assert (backup / "rootCA-key.pem").is_file() and (backup / "rootCA.pem").is_file(), "old CA not backed up"
    elif completed:
        raise AssertionError("the uninterrupted run did not replace the CA")


def prepare_ca_for_replacement(work: Path, env: dict[str, str]) -> None:
    must(run(["ca", "init"], env, work))
    (work / "old-ca.json").write_text(must(run(["ca", "info", "--json"], env, work)).stdout)


def prepare_mkcert(work: Path, env: dict[str, str]) -> None:
    prepare_ca_for_replacement(work, env)
    mk_env = {**env, "DEVCERT_CAROOT": str(work / "mkcert")}
    must(run(["ca", "init", "--no-constraints"], mk_env, work))  # an unconstrained CA, as mkcert's is


def check_first_init(work: Path, env: dict[str, str], completed: bool) -> None:
    cert, key = work / "caroot" / "rootCA.pem", work / "caroot" / "rootCA-key.pem"
    assert cert.exists() == key.exists(), "a lone CA file was left"
    assert must(run(["ca", "init"] if not cert.exists() else ["ca", "info"], env, work))


def prepare_empty(work: Path, env: dict[str, str]) -> None:
    pass


def prepare_p12(work: Path, env: dict[str, str]) -> None:
    must(run(["ca", "init"], env, work))
    must(run(["create", "localhost", "--p12-file", "dev.p12", "--cert-file", "dev.pem"], env, work))


def check_p12(work: Path, env: dict[str, str], completed: bool) -> None:
    """The PKCS#12 file and the PEM certificate beside it are the same certificate, and it handshakes."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

    key, cert, _chain = pkcs12.load_key_and_certificates((work / "dev.p12").read_bytes(), b"s3cret-pass")
    assert cert is not None and key is not None
    assert cert.public_bytes(Encoding.PEM) == (work / "dev.pem").read_bytes(), "the .p12 and the .pem disagree"
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp, "k.pem")
        key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        serves(work / "dev.pem", key_file, work / "caroot" / "rootCA.pem", "localhost")


OPERATIONS: dict[str, Operation] = {
    "ca-init": Operation("ca-init", ["ca", "init"], prepare_empty, check_first_init),
    "ca-init-force": Operation("ca-init-force", ["ca", "init", "--force"], prepare_ca_for_replacement, check_ca_replaced),
    "import-mkcert": Operation("import-mkcert", ["ca", "import-mkcert", "--force", "--caroot", "mkcert"],
                               prepare_mkcert, check_ca_replaced),
    "create": Operation("create", ["create", "localhost", "::1", "--cert-file", "out/dev.pem", "--key-file", "out/dev-key.pem"],
                        prepare_ca_and_leaf),
    "create-p12": Operation("create-p12", ["create", "localhost", "--p12-file", "dev.p12", "--cert-file", "dev.pem"],
                            prepare_p12, check_p12),
    "sync": Operation("sync", ["sync", "--no-gitignore"], prepare_project),
}
for _op in OPERATIONS.values():
    _op.env.setdefault("DEVCERT_P12_PASSWORD", "s3cret-pass")
    _op.env.setdefault("DEVCERT_TRUST_STORES", "system")  # the hint after create reads one file, no tools


# -- rotation, inside the trust-store sandbox ------------------------------------------------------

NSSDB = ".local/share/pki/nssdb"


def prepare_rotation(work: Path, env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    must(run(["ca", "init"], env, work))
    must(run(["install"], env, work))
    (work / "out").mkdir()
    must(run(["create", "localhost", "--cert-file", "out/a.pem", "--key-file", "out/a-key.pem"], env, work))
    must(run(["create", "app.test", "--key-type", "rsa", "--cert-file", "out/b.pem", "--key-file", "out/b-key.pem"], env, work))
    (work / "old-ca.json").write_text(must(run(["ca", "info", "--json"], env, work)).stdout)


def check_rotation(work: Path, env: dict[str, str], completed: bool) -> None:
    """Stores trust exactly the CA in CAROOT: the new one, or (killed before the switch and rolled
    forward) the new one too; never a CA CAROOT no longer holds, never neither."""
    status = json.loads(must(run(["status", "--json"], env, work)).stdout)
    assert status["stale"] == [], f"stale CAs left trusted: {status['stale']}"
    for row in status["stores"]:
        if row["store"] in ("system", "nss"):
            assert row["installed"] is True, f"{row['store']} does not trust the CA in CAROOT: {row}"
    old_fp = json.loads((work / "old-ca.json").read_text())["sha256"]
    now_fp = json.loads(must(run(["ca", "info", "--json"], env, work)).stdout)["sha256"]
    if completed:
        assert now_fp != old_fp
    if now_fp != old_fp:
        assert (work / "caroot" / "old" / old_fp / "rootCA-key.pem").is_file()


def rotation_operation() -> Operation:
    home = os.environ["HOME"]
    return Operation("rotate", ["ca", "rotate", "--yes"], prepare_rotation, check_rotation,
                     env={"DEVCERT_TRUST_STORES": "system,nss"},
                     outside=("/usr/local/share/ca-certificates", "/etc/ssl/certs", f"{home}/.pki"))


def main(argv: list[str]) -> int:
    """``crashkit.py rotate BASE [SYSCALL,...]``: run a kill loop (the rotation inside the sandbox)
    and print the counts as one JSON line."""
    name, base = argv[0], Path(argv[1])
    syscalls = tuple(argv[2].split(",")) if len(argv) > 2 else SYSCALLS
    op = rotation_operation() if name == "rotate" else OPERATIONS[name]
    env = {k: v for k, v in os.environ.items()}
    loop = KillLoop(op, base, env, syscalls)
    points = loop.run_all()
    print(json.dumps({"operation": name, "points": points}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
