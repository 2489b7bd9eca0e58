"""A project's declared certificates (``[tool.devcert]`` or ``devcert.toml``) and ``devcert sync``.

A team declares the certificates its development stack needs next to its code::

    # pyproject.toml                        # or devcert.toml, without the [tool.devcert] line
    [tool.devcert]
    certs = [
      { names = ["localhost", "127.0.0.1"], cert = "certs/dev.pem", key = "certs/dev-key.pem" },
      { names = ["alice@app.test"], cert = "certs/alice.pem", key = "certs/alice-key.pem", client = true },
    ]

and every member runs ``devcert sync``: each certificate is made to exist, chain to that
member's own local CA, carry exactly the declared names and options, and stay valid for at
least 30 more days. The check itself is :func:`devcert.issue.leaf_problem`, shared with
``serve-wss`` and ``snippet``; this module only reads the declaration and walks it.

The configuration is found by walking up from the current folder; in each folder a
``devcert.toml`` wins over a ``pyproject.toml`` with a ``[tool.devcert]`` table. Every path
is relative to the folder of the file that declares it and must stay inside that folder.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DevcertError, NameNotPermittedError, UsageError
from .names import Name, parse_names

if TYPE_CHECKING:
    from .ca import LocalCA

CONFIG_FILES = ("devcert.toml", "pyproject.toml")
TOP_KEYS = {"certs": "the list of certificates"}
ENTRY_KEYS = {
    "names": "a non-empty list of strings (host names, IPs, emails, URIs)",
    "cert": "a string (path of the certificate file)",
    "key": "a string (path of the private key file)",
    "client": "a boolean (also allow client authentication)",
    "key_type": "a string ('ecdsa' or 'rsa')",
    "days": "an integer (validity, 1 to 825)",
}
REQUIRED_KEYS = ("names", "cert", "key")
EXAMPLE = '{ names = ["localhost", "127.0.0.1"], cert = "certs/dev.pem", key = "certs/dev-key.pem" }'


class ConfigError(UsageError):
    """The project configuration is malformed; the message names the file, entry and fix."""


@dataclass(frozen=True)
class CertSpec:
    """One declared certificate, validated, with absolute paths."""

    index: int
    names: list[Name]
    cert: Path
    key: Path
    client: bool = False
    key_type: str = "ecdsa"
    days: int | None = None

    @property
    def label(self) -> str:
        return f"certs[{self.index}]"


@dataclass
class Project:
    """A configuration file and what it declares."""

    config: Path
    certs: list[CertSpec] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.config.parent

    @property
    def table(self) -> str:
        return "[tool.devcert]" if self.config.name == "pyproject.toml" else "the top level"

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


# -- finding and reading -------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it: {err.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        where = "there" if " line " in str(err) else "(the file ends before a value, table or string is closed)"
        raise ConfigError(f"{path}: is not valid TOML ({err}); fix the syntax {where}") from None


def _devcert_table(path: Path) -> dict[str, Any] | None:
    """The devcert settings in ``path``, or None if it declares none (a pyproject without them)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        tool = data.get("tool")
        if not isinstance(tool, dict) or "devcert" not in tool:
            return None
        table = tool["devcert"]
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tool.devcert must be a table: write [tool.devcert] and then certs = [...]")
        return table
    return data


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``devcert.toml``, or ``pyproject.toml`` with ``[tool.devcert]``, from ``start`` up."""
    folder = Path(start or Path.cwd()).absolute()
    for candidate_dir in (folder, *folder.parents):
        for name in CONFIG_FILES:
            path = candidate_dir / name
            if path.is_file() and _devcert_table(path) is not None:
                return path
    return None


def load_project(start: str | os.PathLike[str] | None = None, *, config: str | os.PathLike[str] | None = None) -> Project:
    """Read and validate the project configuration (found from ``start``, or the file ``config``)."""
    if config is not None:
        path = Path(config).absolute()
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give --config the pyproject.toml or devcert.toml file itself")
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
    else:
        found = find_config(start)
        if found is None:
            where = Path(start or Path.cwd()).absolute()
            raise ConfigError(
                f"no devcert configuration in {where} or any folder above it: add to pyproject.toml "
                f"`[tool.devcert]` with `certs = [{EXAMPLE}]` (or put `certs = [...]` in a devcert.toml; "
                f"`devcert sync --help` shows an example)"
            )
        path = found
    table = _devcert_table(path)
    if table is None:
        raise ConfigError(f"{path}: has no [tool.devcert] table; add one with certs = [...]")
    return parse_project(path, table)


def parse_project(path: Path, table: dict[str, Any]) -> Project:
    """Validate the devcert settings ``table`` read from ``path``."""
    project = Project(config=path)
    where = f"{path}: {project.table}" if path.name == "pyproject.toml" else f"{path}:"
    unknown = [k for k in table if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(
            f"{where} unknown key {unknown[0]!r}; the only setting is `certs = [...]`, a list of tables like {EXAMPLE}"
        )
    certs = table.get("certs", [])
    if not isinstance(certs, list):
        raise ConfigError(f"{where} certs must be a list of tables, e.g. certs = [{EXAMPLE}]")
    outputs: dict[Path, str] = {}
    root = path.parent.resolve()
    for index, entry in enumerate(certs):
        label = f"{path}: certs[{index}]"
        spec = _parse_entry(label, index, entry, root)
        for what, out in (("cert", spec.cert), ("key", spec.key)):
            if out in outputs:
                raise ConfigError(
                    f"{label}: {what} = {project.relative(out)!r} is also the output of {outputs[out]}; "
                    f"give each certificate and key its own file"
                )
            outputs[out] = f"certs[{index}] {what}"
        project.certs.append(spec)
    return project


def _parse_entry(label: str, index: int, entry: Any, root: Path) -> CertSpec:
    from .issue import check_days
    from .keys import check_key_type

    if not isinstance(entry, dict):
        raise ConfigError(f"{label}: each entry must be a table like {EXAMPLE}, not {type(entry).__name__}")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise ConfigError(f"{label}: unknown key {key!r}; allowed keys: {', '.join(ENTRY_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise ConfigError(f"{label}: {key!r} is missing; every entry needs names, cert and key, e.g. {EXAMPLE}")

    def typed(key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = entry.get(key, default)
        # bool is an int in Python; an integer setting given `true` is still a mistake.
        if key in entry and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ConfigError(f"{label}: {key} must be {ENTRY_KEYS[key]}, not {value!r}")
        return value

    names_raw = typed("names", list)
    if not names_raw or not all(isinstance(n, str) for n in names_raw):
        raise ConfigError(f"{label}: names must be {ENTRY_KEYS['names']}, e.g. names = [\"localhost\"]")
    try:
        names = parse_names(names_raw)
    except DevcertError as err:
        raise ConfigError(f"{label}: names: {err}") from None
    client = typed("client", bool, False)
    key_type = typed("key_type", str, "ecdsa")
    days = typed("days", int)
    try:
        check_key_type(key_type)
        check_days(days)
    except DevcertError as err:
        message = str(err).replace("--days", "days =")
        raise ConfigError(f"{label}: {message}") from None
    cert = _output(label, "cert", typed("cert", str), root)
    key = _output(label, "key", typed("key", str), root)
    if cert == key:
        raise ConfigError(f"{label}: cert and key are the same file; use e.g. cert = \"x.pem\", key = \"x-key.pem\"")
    return CertSpec(index, names, cert, key, client, key_type, days)


def _output(label: str, what: str, value: str, root: Path) -> Path:
    if not value.strip():
        raise ConfigError(f"{label}: {what} is empty; give a file path relative to {root}")
    path = (root / Path(value).expanduser()).resolve()
    if path != root and root not in path.parents:
        raise ConfigError(
            f"{label}: {what} = {value!r} is outside the project folder {root}; "
            f"use a path inside it, such as \"certs/{Path(value).name}\""
        )
    if path == root or path.is_dir():
        raise ConfigError(f"{label}: {what} = {value!r} is a folder; give a file path such as \"certs/dev.pem\"")
    return path


# -- sync ----------------------------------------------------------------------------------


@dataclass
class SyncResult:
    """What sync did (or, with ``check``, would do) for one declared certificate."""

    spec: CertSpec
    action: str  # "kept", "created", "renewed"
    reason: str = ""
    not_after: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.action != "kept"


def _key_type_problem(spec: CertSpec) -> str | None:
    """leaf_problem checks everything but the key type; a declared key_type is an option too."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        cert = x509.load_pem_x509_certificate(spec.cert.read_bytes())
    except (OSError, ValueError):
        return None
    key = cert.public_key()
    have = "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) else "rsa" if isinstance(key, rsa.RSAPublicKey) else "other"
    return None if have == spec.key_type else f"key type changed to {spec.key_type}"


def _not_after(path: Path) -> str | None:
    """The expiry of the certificate at ``path`` (ISO 8601, as for issued ones), or None if unreadable."""
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.isoformat()
    except (OSError, ValueError):
        return None


def check_permitted(project: Project, ca: LocalCA) -> None:
    """Raise :class:`NameNotPermittedError` naming the file, entry and name if ``ca`` cannot sign a declared name.

    Issuing would refuse the same name, but only after earlier entries were written and with
    a message that says nothing of the configuration; this checks every entry up front.
    """
    for spec in project.certs:
        for name in spec.names:
            try:
                ca.check_permitted([name])
            except NameNotPermittedError as err:
                raise NameNotPermittedError(
                    f"{project.config}: {spec.label}: names: {err}; or remove {name.value!r} from "
                    f"{spec.label} (no certificate was written)"
                ) from None


def sync(project: Project, ca: LocalCA | None, *, check: bool = False, min_days: int = 30) -> list[SyncResult]:
    """Make every declared certificate good (see the module docs); with ``check`` write nothing.

    ``ca`` may be None only with ``check`` (there is no local CA yet: everything would be made).
    Issued certificates are recorded in the inventory.
    """
    from .issue import issue_leaf, leaf_problem

    if min_days < 0:
        raise UsageError(f"--min-days {min_days}: give 0 or more days")
    if ca is not None:
        check_permitted(project, ca)  # before anything is written: all entries or none
    results = []
    for spec in project.certs:
        if ca is None:
            action = "created" if not spec.cert.exists() else "renewed"
            results.append(SyncResult(spec, action, "no local CA yet"))
            continue
        # A certificate declared shorter-lived than min_days would be renewed on every run;
        # such a one is renewed when half its declared life is left instead.
        threshold = min(min_days, spec.days // 2) if spec.days else min_days
        problem = leaf_problem(ca, spec.cert, spec.key, spec.names, client=spec.client, min_days=threshold)
        if problem is None:
            problem = _key_type_problem(spec)
        if problem is None:
            results.append(SyncResult(spec, "kept", not_after=_not_after(spec.cert)))
            continue
        action = "created" if problem == "missing" else "renewed"
        if check:
            results.append(SyncResult(spec, action, problem))
            continue
        spec.cert.parent.mkdir(parents=True, exist_ok=True)
        spec.key.parent.mkdir(parents=True, exist_ok=True)
        leaf = issue_leaf(ca, spec.names, client=spec.client, key_type=spec.key_type, days=spec.days)
        leaf.write(spec.cert, spec.key)
        assert leaf is not None
        from . import inventory

        warnings = list(leaf.warnings) + inventory.record(ca, leaf, spec.cert, spec.key, days=spec.days)
        results.append(SyncResult(spec, action, problem, leaf.not_after.isoformat(), warnings))
    return results


# -- .gitignore ----------------------------------------------------------------------------


def _git_ignored(root: Path, paths: list[Path]) -> set[Path] | None:
    """Which ``paths`` git ignores, or None when ``root`` is not in a git work tree (or no git)."""
    try:
        proc = subprocess.run(
            ["git", "check-ignore", "--no-index", "--stdin", "-z"],
            cwd=root, input=b"".join(str(p).encode() + b"\0" for p in paths),
            capture_output=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode not in (0, 1):  # 128: not a git repository
        return None
    return {Path(p.decode()) for p in proc.stdout.split(b"\0") if p}


def gitignore_suggestions(project: Project) -> list[str]:
    """The .gitignore lines (relative to the project folder) that would ignore the outputs not yet ignored."""
    outputs = [p for spec in project.certs for p in (spec.cert, spec.key)]
    if not outputs:
        return []
    ignored = _git_ignored(project.root, outputs)
    if ignored is None:
        existing = set()
        gitignore = project.root / ".gitignore"
        if gitignore.exists():
            existing = {line.strip() for line in gitignore.read_text(errors="replace").splitlines()}
        return [line for line in ("/" + project.relative(p) for p in outputs)
                if line not in existing and line.lstrip("/") not in existing]
    return ["/" + project.relative(p) for p in outputs if p not in ignored and Path(os.path.realpath(p)) not in ignored]


def add_to_gitignore(project: Project, lines: list[str]) -> Path:
    """Append ``lines`` to the project's .gitignore (atomically) and return its path."""
    from .files import PUBLIC, atomic_write

    path = project.root / ".gitignore"
    old = path.read_text() if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    block = "# development certificates made by `devcert sync`\n" + "".join(f"{line}\n" for line in lines)
    mode = path.stat().st_mode & 0o777 if path.exists() else PUBLIC
    atomic_write(path, (old + block).encode(), mode)
    return path
