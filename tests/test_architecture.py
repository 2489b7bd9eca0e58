"""The layering rules of docs/ARCHITECTURE.md, checked from the source (ast), not by convention.

- the core (every module outside ``devcert.cli``) never imports ``devcert.cli``;
- there are no import cycles between devcert modules, counting imports inside functions
  (a deferred import hides a cycle from Python, not from a reader); a package importing its
  own submodules is fine, ``if TYPE_CHECKING:`` imports are not imports at run time;
- no module imports another module's private (``_name``) names;
- every import inside a function says why it is deferred: a comment on its line, or above the
  group of imports it belongs to, or the function's docstring saying what importing costs.

Each rule runs once for the core and once for the CLI, so a failure says which side broke it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcert.advice import NEUTRAL
from devcert.cli.messages import REMEDIES

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "devcert"
#: ``python -m devcert`` (devcert/__main__.py) is the command line's entry point, so it is CLI.
SCOPES = {
    "core": lambda module: not _within(module, "devcert.cli") and module != "devcert.__main__",
    "cli": lambda module: _within(module, "devcert.cli") or module == "devcert.__main__",
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the devcert module imported (the deepest one that exists)
    names: tuple[str, ...]  # names taken from it (``from x import a, b``), else ()
    line: int
    in_function: bool
    type_checking: bool
    docstring_says_why: bool = False


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return SOURCES[module].name == "__init__.py"


def _deepest(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a devcert module."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in SOURCES:
            return candidate
    return None


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str) -> list[Import]:
    tree = ast.parse(SOURCES[module].read_text(), str(SOURCES[module]))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool, why: bool = False) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(child) or ""
                visit(child, True, type_checking, "import" in doc)
            elif isinstance(child, ast.Lambda):
                visit(child, True, type_checking, why)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, True, why)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, type_checking, why)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    target = _deepest(alias.name) if alias.name.startswith("devcert") else None
                    found.append(Import(module, target or alias.name, (), child.lineno, in_function, type_checking, why))
            elif isinstance(child, ast.ImportFrom):
                source = _resolve(module, child)
                if not _within(source, "devcert"):
                    found.append(Import(module, source, (), child.lineno, in_function, type_checking, why))
                    continue
                for alias in child.names:
                    # `from . import inventory` imports a module; `from .ca import caroot` a name of one.
                    submodule = f"{source}.{alias.name}"
                    if submodule in SOURCES:
                        found.append(Import(module, submodule, (), child.lineno, in_function, type_checking, why))
                    else:
                        found.append(Import(module, _deepest(source) or source, (alias.name,), child.lineno,
                                            in_function, type_checking, why))
            else:
                visit(child, in_function, type_checking, why)

    visit(tree, False, False)
    return found


IMPORTS = {module: _imports(module) for module in SOURCES}


def _modules(scope: str) -> list[str]:
    return [m for m in SOURCES if SCOPES[scope](m)]


def _edges() -> dict[str, set[str]]:
    """Run-time import edges between devcert modules, without a package's imports of its own submodules."""
    graph: dict[str, set[str]] = {m: set() for m in SOURCES}
    for module, imports in IMPORTS.items():
        for imp in imports:
            if imp.type_checking or imp.target not in SOURCES or imp.target == module:
                continue
            if _is_package(module) and _within(imp.target, module):
                continue
            graph[module].add(imp.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def _where(imp: Import) -> str:
    return f"{SOURCES[imp.module].relative_to(PACKAGE_DIR.parent)}:{imp.line}"


@pytest.mark.parametrize("scope", list(SCOPES))
def test_the_core_never_imports_the_cli(scope: str) -> None:
    if scope == "cli":
        assert any(_within(imp.target, "devcert.cli") for m in _modules("cli") for imp in IMPORTS[m])  # sanity
        return
    bad = [f"{_where(imp)} imports {imp.target}" for m in _modules(scope) for imp in IMPORTS[m]
           if _within(imp.target, "devcert.cli")]
    assert "devcert.ca" in _modules(scope) and "devcert.__main__" not in _modules(scope)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("scope", list(SCOPES))
def test_no_import_cycles(scope: str) -> None:
    cycles = [c for c in _cycles(_edges()) if any(SCOPES[scope](m) for m in c)]
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("scope", list(SCOPES))
def test_no_private_names_imported_across_modules(scope: str) -> None:
    bad = []
    for module in _modules(scope):
        for imp in IMPORTS[module]:
            if imp.target not in SOURCES or imp.target == module:
                continue
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if private:
                bad.append(f"{_where(imp)} imports {', '.join(private)} from {imp.target}")
        bad += _private_attributes(module)
    assert not bad, "\n".join(bad)


def _private_attributes(module: str) -> list[str]:
    """``other._name`` where ``other`` is a devcert module bound by an import in ``module``."""
    tree = ast.parse(SOURCES[module].read_text())
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _within(_resolve(module, node), "devcert"):
            for alias in node.names:
                submodule = f"{_resolve(module, node)}.{alias.name}"
                if submodule in SOURCES:
                    bound[alias.asname or alias.name] = submodule
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in SOURCES and alias.asname:
                    bound[alias.asname] = alias.name
    bad = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and node.attr.startswith("_") and not node.attr.startswith("__") and bound[node.value.id] != module):
            bad.append(f"{SOURCES[module].relative_to(PACKAGE_DIR.parent)}:{node.lineno} uses "
                       f"{bound[node.value.id]}.{node.attr}")
    return bad


def _comment_lines(path: Path) -> set[int]:
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.COMMENT:
            lines.add(tok.start[0])
    return lines


def _import_lines(path: Path) -> set[int]:
    """Every line an import statement covers."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def _commented(line: int, comments: set[int], imports: set[int], blank: set[int]) -> bool:
    """A comment on ``line``, or on the first line above the group of imports (blank lines
    between them allowed) that ``line`` belongs to."""
    if line in comments:
        return True
    above = line - 1
    while above > 0 and (above in imports or above in blank) and above not in comments:
        above -= 1
    return above in comments


@pytest.mark.parametrize("scope", list(SCOPES))
def test_every_deferred_import_says_why(scope: str) -> None:
    bad = []
    for module in _modules(scope):
        path = SOURCES[module]
        comments, imports = _comment_lines(path), _import_lines(path)
        blank = {n for n, text in enumerate(path.read_text().splitlines(), 1) if not text.strip()}
        for imp in IMPORTS[module]:
            if imp.in_function and not imp.docstring_says_why and not _commented(imp.line, comments, imports, blank):
                bad.append(f"{_where(imp)} imports {imp.target} inside a function without a comment saying why")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_checks_see_the_package() -> None:
    """The rules above pass vacuously if the walk finds nothing: it must see the modules and their imports."""
    assert {"devcert", "devcert.ca", "devcert.errors", "devcert.cli"} <= set(SOURCES)
    assert any(imp.target == "devcert.errors" for imp in IMPORTS["devcert.ca"])
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    # a comment above a group of imports covers the group; code in between breaks it
    assert _commented(3, comments={1}, imports={2, 3}, blank=set())
    assert not _commented(5, comments={1}, imports={2, 5}, blank=set())


# -- no CLI command lines or flags in the core's strings ------------------------------------

#: (module, part of a string) the core may keep although it looks like devcert's command line,
#: each with why; the part must be what looks like it.
ALLOWED_STRINGS = {
    # node's own flag, in the row that says node did not answer it
    ("devcert.doctor", "node does not answer `node --version`"),
    # headers of files devcert writes, naming the command that rewrites them (read in the file,
    # not advice to a user of the Python API)
    ("devcert.env", "# Written by `devcert env`, rewritten when any of them changes; do not edit."),
    ("devcert.project", "# development certificates made by `devcert sync`"),
}
#: Package managers whose command lines rootfs returns for an image's next RUN line.
PACKAGE_MANAGERS = ("apt-get ", "apk ", "dnf ", "pacman ", "zypper ")


def _cli_flags() -> set[str]:
    """Every ``--flag`` of devcert's own CLI, from the typer app itself."""
    import typer.main  # the CLI's app, loaded only by this check

    from devcert.cli.application import load_commands

    flags: set[str] = set()

    def walk(command: object) -> None:
        for param in getattr(command, "params", []):
            flags.update(o for o in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
                         if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(load_commands()))
    return flags


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (they document the CLI; they are not returned to anyone)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _argv_strings(tree: ast.AST) -> set[int]:
    """ids of the strings in a list literal given to a call: argv lists for other programs."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.List):
                    found.update(id(e) for e in arg.elts if isinstance(e, ast.Constant))
    return found


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _command_line_strings(module: str, flags: set[str]) -> list[str]:
    path = SOURCES[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree) | _argv_strings(tree)
    bad = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
            continue
        text = node.value
        if any(module == where and part in text for where, part in ALLOWED_STRINGS):
            continue
        if module == "devcert.trust.rootfs" and text.startswith(PACKAGE_MANAGERS):
            continue
        ours = sorted(set(_FLAG.findall(text)) & flags)
        if "`devcert " in text or ours:
            bad.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}: {text!r}"
                       + (f" (flags {', '.join(ours)})" if ours else ""))
    return bad


def test_no_command_lines_in_the_core() -> None:
    """Advice the core returns names remedies (``devcert.advice.Advice``); only ``cli/`` spells
    devcert's commands and flags, and the snippets' templates (files for users) may show them."""
    flags = _cli_flags()
    assert {"--force", "--store", "--max-size", "--stale"} <= flags  # sanity: the walk sees the app
    core = [m for m in _modules("core") if not _within(m, "devcert.snippets")]
    bad = [line for m in core for line in _command_line_strings(m, flags)]
    assert not bad, "\n".join(bad)
    # and the check sees what it looks for
    assert _FLAG.findall("run it with --store system, not ---x") == ["--store"]
    # every remedy the core may name has the CLI's words and neutral ones
    assert set(REMEDIES) == set(NEUTRAL)
