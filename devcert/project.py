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

import contextlib
import datetime as dt
import os
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from . import certs
from .advice import Advice
from .errors import ConfigError, DevcertError, InputFileError, NameNotPermittedError, OptionError
from .files import PUBLIC, TEMP_SUFFIX, atomic_write, ensure_dir, temp_prefix
from .issue import RENEW_BEFORE_DAYS, check_days, ensure_leaf
from .keys import check_key_type
from .lock import locked
from .names import Name, parse_names
from .safety import read_regular

if TYPE_CHECKING:
    from .ca import LocalCA

__all__ = ["CONFIG_FILES", "CertSpec", "ConfigError", "Project", "SyncResult", "add_to_gitignore", "check_permitted",
           "expiring_soon", "find_config", "gitignore_pattern", "gitignore_suggestions", "load_project",
           "parse_project", "sync"]

CONFIG_FILES = ("devcert.toml", "pyproject.toml")
TOP_KEYS = {"certs": "the list of certificates", "routes": "serve-wss's routes, a table of NAME = UPSTREAM"}
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
    try:
        data = read_regular(path, "the configuration", limit=1024 * 1024)
    except InputFileError as err:
        raise ConfigError(f"{path}: cannot read it: {err.reason}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        where = "there" if " line " in str(err) else "(the file ends before a value, table or string is closed)"
        raise ConfigError(f"{path}: is not valid TOML ({err}); fix the syntax {where}") from None
    except RecursionError:
        raise ConfigError(f"{path}: its arrays or tables are nested too deeply to read; a devcert configuration "
                          f"needs only `certs = [{{ ... }}]`") from None


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
            raise ConfigError(f"{path}: is a folder", path=path, fix="config-file",
                              api_fix="; give config= the pyproject.toml or devcert.toml file itself")
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
    else:
        found = find_config(start)
        if found is None:
            where = Path(start or Path.cwd()).absolute()
            raise ConfigError(
                f"no devcert configuration in {where} or any folder above it: add to pyproject.toml "
                f"`[tool.devcert]` with `certs = [{EXAMPLE}]` (or put `certs = [...]` in a devcert.toml",
                then=")", fix="sync-example")
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
            f"{where} unknown key {unknown[0]!r}; the settings are `certs = [...]`, a list of tables like {EXAMPLE}, "
            f"and serve-wss's `routes`"
        )
    declared = table.get("certs", [])
    if not isinstance(declared, list):
        raise ConfigError(f"{where} certs must be a list of tables, e.g. certs = [{EXAMPLE}]")
    outputs: dict[Path, str] = {}
    root = path.parent.resolve()
    for index, entry in enumerate(declared):
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
    except OptionError as err:  # said as the configuration says it: `days = 900`
        raise ConfigError(f"{label}: {err.option} = {err.value} ({err.option}=): {err.reason}",
                          fix=err.fix) from None
    except DevcertError as err:
        raise ConfigError(f"{label}: {err}") from None
    cert = _output(label, "cert", typed("cert", str), root)
    key = _output(label, "key", typed("key", str), root)
    if cert == key:
        raise ConfigError(f"{label}: cert and key are the same file; use e.g. cert = \"x.pem\", key = \"x-key.pem\"")
    return CertSpec(index, names, cert, key, client, key_type, days)


def _output(label: str, what: str, value: str, root: Path) -> Path:
    if not value.strip():
        raise ConfigError(f"{label}: {what} is empty; give a file path relative to {root}")
    if "\0" in value:
        raise ConfigError(f"{label}: {what} = {value!r} contains a NUL byte; give a plain file path")
    given = root / Path(value).expanduser()
    # The folder is resolved (symlinks followed, so it must stay inside the project); the file
    # name is not: a symlink there is replaced by the new file, never written through.
    path = given.parent.resolve() / given.name if given.name not in ("", ".", "..") else given.resolve()
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
    warnings: list[Advice | str] = field(default_factory=list)  # Advice: worded by the CLI

    @property
    def changed(self) -> bool:
        return self.action != "kept"


def _expiry(path: Path) -> dt.datetime | None:
    """The end of the certificate at ``path``, or None if it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def _not_after(path: Path) -> str | None:
    """The expiry of the certificate at ``path`` (ISO 8601, as for issued ones), or None if unreadable."""
    end = _expiry(path)
    return end.isoformat() if end is not None else None


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
                    f"{project.config}: {spec.label}: names: {err.problem}", name=err.name, widen=err.widen,
                    permits=err.permits, profile=err.profile, in_memory=err.in_memory, fix=err.fix,
                    api_fix=err.api_fix,
                    then=f"{err.then}; or remove {name.value!r} from {spec.label} (no certificate was written)",
                ) from None


def sync(project: Project, ca: LocalCA | None, *, check: bool = False,
         min_days: int = RENEW_BEFORE_DAYS) -> list[SyncResult]:
    """Make every declared certificate good (see the module docs); with ``check`` write nothing.

    ``ca`` may be None only with ``check`` (there is no local CA yet: everything would be made).
    Issued certificates are recorded in the inventory. The whole run holds the CAROOT lock, so
    concurrent syncs of one project take turns and the later ones find everything kept.
    """
    check_min_days("min_days", min_days)
    if ca is None:
        return [SyncResult(spec, "created" if not spec.cert.exists() else "renewed", "no local CA yet")
                for spec in project.certs]
    check_permitted(project, ca)  # before anything is written: all entries or none
    for spec in project.certs:
        ca.check_output(spec.cert)
        ca.check_output(spec.key)
    results = []
    with locked(ca.path) if ca.path is not None and not check else contextlib.nullcontext():
        for spec in project.certs:
            # A certificate declared shorter-lived than min_days would be renewed on every run;
            # such a one is renewed when half its declared life is left instead.
            threshold = min(min_days, spec.days // 2) if spec.days else min_days
            if not check:
                ensure_dir(spec.cert.parent)
                ensure_dir(spec.key.parent)
            done = ensure_leaf(ca, spec.names, spec.cert, spec.key, client=spec.client, key_type=spec.key_type,
                               days=spec.days, min_days=threshold, dry_run=check, record=True)
            if done.action == "kept":
                results.append(SyncResult(spec, "kept", not_after=_not_after(spec.cert)))
            elif done.leaf is None:
                results.append(SyncResult(spec, done.action, done.reason))
            else:
                results.append(SyncResult(spec, done.action, done.reason, done.leaf.not_after.isoformat(),
                                          list(done.leaf.warnings)))
    return results


def check_min_days(option: str, days: int | None) -> None:
    """Refuse a negative day count for ``option`` (``min_days``, ``warn_days``, ``expiring``)."""
    if days is not None and days < 0:
        raise OptionError(option, days, "give 0 or more days")


#: Kept certificates within this many days beyond ``min_days`` of their end are reported as
#: expiring soon: the next sync renews them (its --warn-days default).
WARN_MARGIN_DAYS = 30


def expiring_soon(results: list[SyncResult], *, min_days: int = RENEW_BEFORE_DAYS,
                  warn_days: int | None = None) -> list[tuple[SyncResult, int]]:
    """The kept certificates that expire within the warning window, each with its days left.

    The window is ``warn_days``, by default ``min_days + WARN_MARGIN_DAYS``: certificates that
    are still good enough not to be renewed now, but will be soon, so a team hears of it before
    a run of ``sync`` changes files. Created or renewed ones are fresh and never listed;
    unreadable ones cannot be dated and are not either.
    """
    check_min_days("warn_days", warn_days)
    within = warning_window(min_days, warn_days)
    soon = []
    for result in results:
        if result.action != "kept":
            continue
        end = _expiry(result.spec.cert)
        if end is None:
            continue
        left = certs.days_left(end)
        if left < within:
            soon.append((result, left))
    return soon


def warning_window(min_days: int = RENEW_BEFORE_DAYS, warn_days: int | None = None) -> int:
    """The days within which :func:`expiring_soon` reports a kept certificate."""
    return min_days + WARN_MARGIN_DAYS if warn_days is None else warn_days


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


def gitignore_pattern(path: str) -> str:
    """A .gitignore line that matches exactly the file at ``path`` (relative, with / separators).

    gitignore patterns are globs: ``[``, ``]``, ``*``, ``?`` and ``\\`` are escaped with a backslash, a
    leading ``!`` or ``#`` too, and trailing spaces (which git strips) as well. The leading ``/``
    anchors the line to the project folder.
    """
    out = []
    for char in path:
        out.append("\\" + char if char in "[]*?\\!#" else char)
    text = "".join(out)
    stripped = text.rstrip(" ")
    text = stripped + "\\ " * (len(text) - len(stripped))
    return "/" + text


def _lines_for(project: Project, path: Path) -> list[str]:
    """The file's own line and one for the temporaries an interrupted write of it may leave."""
    rel = project.relative(path)
    folder = rel.rpartition("/")[0]
    temps = gitignore_pattern((folder + "/" if folder else "") + temp_prefix(path)) + "*" + TEMP_SUFFIX
    return [gitignore_pattern(rel), temps]


def gitignore_suggestions(project: Project) -> list[str]:
    """The .gitignore lines (relative to the project folder) for the outputs, and their temporary
    files, that are not ignored yet."""
    outputs = [p for spec in project.certs for p in (spec.cert, spec.key)]
    if not outputs:
        return []
    existing: set[str] = set()
    gitignore = project.root / ".gitignore"
    if gitignore.is_file():
        existing = {line.strip() for line in gitignore.read_text(errors="replace").splitlines()}
    probes = [(line, path, i) for path in outputs for i, line in enumerate(_lines_for(project, path))]
    # A sample temporary name per output, for git to answer whether a line for it is needed.
    samples = [path if i == 0 else path.parent / f"{temp_prefix(path)}{'0' * 12}{TEMP_SUFFIX}" for _, path, i in probes]
    ignored = _git_ignored(project.root, samples)
    wanted = []
    for (line, _path, _i), sample in zip(probes, samples):
        if line in existing or line in wanted:
            continue
        if ignored is not None and (sample in ignored or Path(os.path.realpath(sample)) in ignored):
            continue
        wanted.append(line)
    return wanted


def add_to_gitignore(project: Project, lines: list[str]) -> Path:
    """Append ``lines`` (those not there yet) to the project's .gitignore, atomically; return its path."""
    path = project.root / ".gitignore"
    old = path.read_text() if path.exists() else ""
    have = {line.strip() for line in old.splitlines()}
    lines = [line for line in dict.fromkeys(lines) if line not in have]
    if not lines:
        return path
    if old and not old.endswith("\n"):
        old += "\n"
    block = "# development certificates made by `devcert sync`\n" + "".join(f"{line}\n" for line in lines)
    mode = path.stat().st_mode & 0o777 if path.exists() else PUBLIC
    atomic_write(path, (old + block).encode(), mode)
    return path


def project_routes(start: str | os.PathLike[str] | None = None) -> tuple[Path, list[tuple[str, str]]] | None:
    """serve-wss's routes declared in the nearest configuration (found from ``start`` up), as
    ``(file, [(name, upstream), ...])``; None when no configuration declares any::

        [tool.devcert.routes]
        "app.localhost" = 5173                  # a port on 127.0.0.1
        "api.localhost" = "127.0.0.1:8000"      # host:port, or a ws:// / http:// URL
        "*.preview.localhost" = "ws://127.0.0.1:4173"

    Only the shape is checked here; names and upstreams are checked by serve-wss as its
    ``--route`` options are.
    """
    path = find_config(start)
    table = _devcert_table(path) if path is not None else None
    if path is None or table is None or "routes" not in table:
        return None
    routes = table["routes"]
    where = f"{path}: tool.devcert.routes" if path.name == "pyproject.toml" else f"{path}: routes"
    if not isinstance(routes, dict):
        raise ConfigError(f'{where} must be a table of names and upstreams, e.g. "app.localhost" = 5173')
    listed = []
    for name, upstream in routes.items():
        if isinstance(upstream, bool) or not isinstance(upstream, (int, str)):
            raise ConfigError(f'{where}: {name!r} must be a port or an address such as "127.0.0.1:5173", '
                              f"not {type(upstream).__name__}")
        listed.append((name, str(upstream)))
    return path, listed
