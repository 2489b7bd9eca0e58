"""Trust stores: make the local CA trusted by the tools on this machine, and remove it again.

One module per store, each behind the same small interface (:class:`TrustStore`):
``available()``, ``is_installed(ca)``, ``install(ca, runner)``, ``uninstall(ca, runner)``,
``describe()``. This module only lists them and picks the ones to use:

    from devcert import LocalCA
    from devcert.trust import selected_stores
    ca = LocalCA.load(require_key=False)     # installing needs only the certificate
    for store in selected_stores():          # the stores present here (or DEVCERT_TRUST_STORES)
        store.install(ca)                    # default runner: runs the commands, no sudo, no output

Store names: ``system`` (the OS store: Linux distribution bundle, macOS System keychain or
Windows user Root store), ``nss`` (Firefox profiles, Chromium's ~/.pki/nssdb), ``java``, and
under WSL ``windows`` (the Windows user's Root store, through certutil.exe: :mod:`.wsl`).
Every entry devcert adds is named ``devcert-<16 hex of the CA's SHA-256>`` (:func:`entry_name`).

Entries of CAs that are no longer the current one (replaced by ``ca init --force``, left by an
interrupted ``ca rotate``, another CAROOT's) are *stale*: still trusted, issued by nobody here.

    from devcert.trust import stale_entries, remove_stale
    for store, entry in stale_entries(ca):    # ca=None (no CA yet): every devcert entry
        print(store.name, entry.name, entry.where)
    for store, entry, error in remove_stale(ca, runner=Runner(dry_run=True)):
        ...                                   # error is None when removed (or would be)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..advice import Advice
from ..errors import TrustStoreError, UsageError
from ..layout import CERT_FILE, caroot
from .base import Entry, Runner, StoreStatus, TrustStore, default_runner, entry_name, platform_key

if TYPE_CHECKING:
    from ..ca import LocalCA

__all__ = [
    "ENV_VAR", "STORE_NAMES", "Entry", "Runner", "StoreStatus", "TrustStore", "all_stores", "default_runner",
    "entry_name", "remove_stale", "selected_stores", "stale_entries", "sudo_caroot_problem", "trusted_anywhere",
]

#: Environment variable that limits the stores, like mkcert's TRUST_STORES: "system,nss".
ENV_VAR = "DEVCERT_TRUST_STORES"
#: Every store name, in the order they are used and listed.
STORE_NAMES = ("system", "nss", "java", "windows")
#: Names people try for the OS store, and what that store is.
_OS_NAMES = {"macos": "the macOS System keychain", "darwin": "the macOS System keychain", "keychain": "the macOS System keychain",
             "linux": "the distribution's CA bundle", "os": "the OS store"}


def _system_store() -> TrustStore:
    kind = platform_key()
    if kind == "darwin":
        from .macos import MacOSKeychainStore  # each platform imports its own store only

        return MacOSKeychainStore()
    if kind == "windows":
        from .windows import WindowsRootStore  # each platform imports its own store only

        return WindowsRootStore()
    from .linux import LinuxSystemStore  # each platform imports its own store only

    return LinuxSystemStore()


def all_stores() -> list[TrustStore]:
    """One instance of each store for this platform, present or not; the Windows side only under WSL."""
    # Not at module level: the Java store costs `devcert create`'s trust hint ~10 ms (any_trusts).
    from .java import JavaStore
    from .nss import NSSStore  # (see JavaStore)
    from .wsl import WSLWindowsStore, is_wsl  # (see JavaStore)

    stores = [_system_store(), NSSStore(), JavaStore()]
    if is_wsl():
        stores.append(WSLWindowsStore(wsl=True))
    return stores


def parse_store_names(names: Iterable[str]) -> list[str]:
    """Split comma lists, check each name, keep order, drop repeats; UsageError if unknown."""
    wanted: list[str] = []
    for item in names:
        for part in str(item).split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name in _OS_NAMES:
                raise UsageError(f"unknown trust store {name!r}: `system` is {_OS_NAMES[name]} there; "
                                 f"choose from {', '.join(STORE_NAMES)}")
            if name not in STORE_NAMES:
                raise UsageError(f"unknown trust store {name!r}: choose from {', '.join(STORE_NAMES)}")
            if name not in wanted:
                wanted.append(name)
    return wanted


def selected_stores(names: Iterable[str] | None = None, *, include_unavailable: bool = False,
                    environ: Mapping[str, str] | None = None) -> list[TrustStore]:
    """The stores to use: those named (``names``, else ``$DEVCERT_TRUST_STORES``), else all present.

    Named stores are returned even when not present, so the caller can say why it cannot use
    them; without names only stores whose ``available()`` is true are returned, unless
    ``include_unavailable`` (``devcert status`` lists every store).
    """
    env = os.environ if environ is None else environ
    wanted = parse_store_names(names) if names else []
    if not wanted and env.get(ENV_VAR, "").strip():
        wanted = parse_store_names([env[ENV_VAR]])
    stores = all_stores()
    if wanted:
        by_name = {s.name: s for s in stores}
        if "windows" in wanted and "windows" not in by_name:  # named outside WSL: it says why not
            from .wsl import WSLWindowsStore

            by_name["windows"] = WSLWindowsStore(wsl=False)
        return [by_name[n] for n in wanted]
    if include_unavailable:
        return stores
    return [s for s in stores if s.available()]


def trusted_anywhere(ca: LocalCA) -> bool:
    """True when at least one selected store trusts ``ca``: the hint after ``devcert create``.

    Cheap stores (a file read: the Linux bundle; one query on macOS/Windows) are asked first;
    NSS is asked only if they say no (one certutil call per database, milliseconds); Java is
    never asked here (each keytool call starts a JVM).
    """
    env = os.environ.get(ENV_VAR, "").strip()
    wanted = parse_store_names([env]) if env else list(STORE_NAMES)
    if "system" in wanted or "nss" in wanted:
        # Only the stores asked here are made: importing the Java store costs `devcert create`
        # ~10 ms, and it is never asked anyway.
        stores: list[TrustStore] = [_system_store()] if "system" in wanted else []
        if "nss" in wanted:
            from .nss import NSSStore  # deferred with the others (all_stores)

            stores.append(NSSStore())
        stores = [s for s in stores if s.available()]
    else:
        stores = selected_stores()
    ordered = [s for s in stores if s.cheap_check] + [s for s in stores if s.name == "nss"]
    for store in ordered:
        try:
            if store.is_installed(ca):
                return True
        except (TrustStoreError, OSError):
            continue
    if not ordered:
        # Only Java (or nothing) selected: do not claim it is untrusted without asking keytool.
        return not stores or any(_safe_installed(s, ca) for s in stores)
    return False


def stale_entries(ca: LocalCA | None, stores: Sequence[TrustStore] | None = None, *,
                  on_error: Callable[[TrustStore, TrustStoreError], object] | None = None,
                  ) -> list[tuple[TrustStore, Entry]]:
    """Every devcert entry in ``stores`` that is not ``ca``'s: ``(store, entry)`` pairs.

    ``stores`` defaults to :func:`selected_stores` (those present, or $DEVCERT_TRUST_STORES);
    stores that are not present are skipped. With ``ca`` None (no CA in CAROOT) every devcert
    entry is stale: no CA here can issue for it. A store that exists but cannot be listed
    (its tool is missing) raises :class:`TrustStoreError`, unless ``on_error`` is given: then
    it is called with the store and the error, and the other stores are still listed.
    Read-only; Java costs one JVM start per keystore.
    """
    chosen = selected_stores() if stores is None else list(stores)
    found: list[tuple[TrustStore, Entry]] = []
    for store in chosen:
        try:
            if not store.available():
                continue
            entries = store.entries()
        except TrustStoreError as err:
            if on_error is None:
                raise
            on_error(store, err)
            continue
        found.extend((store, entry) for entry in entries if not store.is_current(entry, ca))
    return found


def remove_stale(ca: LocalCA | None, stores: Sequence[TrustStore] | None = None, runner: Runner | None = None, *,
                 on_error: Callable[[TrustStore, TrustStoreError], object] | None = None,
                 ) -> list[tuple[TrustStore, Entry, TrustStoreError | None]]:
    """Remove every stale entry (:func:`stale_entries`); never ``ca``'s own.

    Returns ``(store, entry, error)`` per stale entry: ``error`` None when it was removed (in
    a dry run: would be), else why not (that entry was left as it was). ``runner`` as for
    ``install``: a dry-run runner only records the changes. ``on_error`` as for stale_entries.
    """
    found = stale_entries(ca, stores, on_error=on_error)
    results: list[tuple[TrustStore, Entry, TrustStoreError | None]] = []
    by_store: dict[int, tuple[TrustStore, list[Entry]]] = {}
    for store, entry in found:
        by_store.setdefault(id(store), (store, []))[1].append(entry)
    for store, entries in by_store.values():
        try:
            failed = {id(entry): err for entry, err in store.remove_entries(entries, runner)}
        except TrustStoreError as err:  # the store cannot be changed at all (its tool is missing)
            failed = {id(entry): err for entry in entries}
        results.extend((store, entry, failed.get(id(entry))) for entry in entries)
    return results


def _safe_installed(store: TrustStore, ca: LocalCA) -> bool:
    try:
        return store.is_installed(ca)
    except (TrustStoreError, OSError):
        return False


def _default_caroot_for(home: str) -> Path:
    """Where platformdirs puts CAROOT for a user whose home is ``home`` (POSIX)."""
    if platform_key() == "darwin":
        return Path(home, "Library", "Application Support", "devcert")
    return Path(home, ".local", "share", "devcert")


def sudo_caroot_problem(environ: Mapping[str, str] | None = None, *, euid: int | None = None,
                        home_of: object = None) -> tuple[Advice, bool] | None:
    """Explain running under sudo with root's CAROOT instead of the invoking user's.

    Returns ``(message, fatal)`` or None; the message is :class:`Advice` (its remedy is the install). Fatal when root has no CA but the user has one:
    installing would make and trust a second CA nobody issues from. ``home_of`` (for tests)
    maps a user name to a home folder; by default the password database is used.
    """
    env = os.environ if environ is None else environ
    if os.name != "posix":
        return None
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    user = env.get("SUDO_USER", "")
    if not user or user == "root" or env.get("DEVCERT_CAROOT"):
        return None
    try:
        if callable(home_of):
            home = home_of(user)
        else:
            import pwd  # POSIX only (checked above), and only under sudo

            home = pwd.getpwnam(user).pw_dir
    except (KeyError, OSError):
        return None
    theirs = _default_caroot_for(str(home))
    mine = caroot()
    if theirs == mine or not (theirs / CERT_FILE).exists():
        return None
    fatal = not (mine / CERT_FILE).exists()
    message = Advice(
        "running under sudo: devcert is using root's CAROOT {mine}, not {user}'s {theirs} (where "
        "{user}'s CA is). Run `{install}` without sudo (it asks for sudo itself, for the "
        "commands that need it), or keep sudo and name the CA: "
        "`sudo DEVCERT_CAROOT={theirs} {install}`", {"mine": str(mine), "user": user, "theirs": str(theirs)})
    return message, fatal
