"""The names other programs import from devcert, pinned (as httpx's tests/test_exported_members.py does).

A change here is a change of devcert's public API: it must be deliberate, and the README and
the release notes must say so.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import devcert
import devcert.errors
import devcert.trust

ROOT = Path(__file__).resolve().parent.parent


def test_top_level_exports_exactly() -> None:
    assert devcert.__all__ == ["Constraints", "DevcertError", "Leaf", "LocalCA", "__version__", "caroot"]
    for name in devcert.__all__:
        assert getattr(devcert, name) is not None, name
    assert isinstance(devcert.__version__, str) and devcert.__version__.count(".") >= 2
    assert callable(devcert.caroot) and isinstance(devcert.caroot(), Path)
    for name in ("LocalCA", "Leaf", "Constraints"):
        assert inspect.isclass(getattr(devcert, name)), name
    for method in ("load", "load_or_create", "create", "ephemeral", "issue", "sign_csr", "client_context"):
        assert callable(getattr(devcert.LocalCA, method)), method
    for method in ("write", "files", "pkcs12", "server_context"):
        assert callable(getattr(devcert.Leaf, method)), method


#: Every exception class and the one it derives from: the tree errors.py draws.
EXCEPTIONS = {
    "DevcertError": "Exception",
    "UsageError": "DevcertError",
    "InvalidNameError": "UsageError",
    "CSRError": "UsageError",
    "InputFileError": "UsageError",
    "ConfigError": "UsageError",
    "OptionError": "UsageError",
    "OptionConflictError": "UsageError",
    "NotRecordedError": "UsageError",
    "NameNotPermittedError": "DevcertError",
    "NotRenewableError": "DevcertError",
    "CAError": "DevcertError",
    "CAMissingError": "CAError",
    "UnsafeCARootError": "CAError",
    "FileWriteError": "DevcertError",
    "TrustStoreError": "DevcertError",
    "ServeError": "DevcertError",
    "PortInUseError": "ServeError",
    "ServeOptionError": "ServeError",
}


def test_every_exception_lives_in_errors_and_is_drawn_in_its_tree() -> None:
    classes = {name: obj for name, obj in vars(devcert.errors).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == "devcert.errors"}
    for name, base in EXCEPTIONS.items():
        assert name in classes, name
        assert classes[name].__bases__[0].__name__ == base, name
        assert name in (devcert.errors.__doc__ or ""), f"{name} is not in errors.py's tree"
    for name, cls in classes.items():
        assert issubclass(cls, devcert.DevcertError), name
    assert devcert.DevcertError is devcert.errors.DevcertError
    assert devcert.errors.DevcertError.exit_code == 1 and devcert.errors.UsageError.exit_code == 2


def test_no_exception_class_outside_errors() -> None:
    """Every DevcertError subclass any devcert module defines is defined in devcert.errors."""
    outside = []
    for path in sorted((ROOT / "devcert").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if name.endswith("__main__") or name.startswith("devcert.snippets."):  # snippets/*.py are templates
            continue
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, devcert.DevcertError)
                    and obj.__module__ == name and name != "devcert.errors"):
                outside.append(f"{name}.{obj.__name__}")
    assert outside == []


def test_trust_public_names() -> None:
    assert devcert.trust.__all__ == [
        "ENV_VAR", "STORE_NAMES", "Entry", "Runner", "StoreStatus", "TrustStore", "all_stores", "default_runner",
        "entry_name", "remove_stale", "selected_stores", "stale_entries", "sudo_caroot_problem", "trusted_anywhere",
    ]
    for name in devcert.trust.__all__:
        assert hasattr(devcert.trust, name), name


def test_serve_wss_server_is_importable() -> None:
    from devcert.serve import WSSServer

    assert inspect.isclass(WSSServer)


def test_pytest_plugin_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"devcert": "devcert.pytest_plugin"}
    assert project["scripts"] == {"devcert": "devcert.cli:main"}
    plugin = importlib.import_module("devcert.pytest_plugin")
    for fixture in ("devcert_ca", "devcert_leaf", "devcert_server_ssl_context", "devcert_client_ssl_context"):
        assert hasattr(plugin, fixture), fixture
