"""What ``install`` and ``uninstall`` share: the checks before touching a store, and the report of each store's result."""

from __future__ import annotations

from ..ca import caroot
from ..errors import DevcertError, UsageError
from pathlib import Path

from ..trust import Runner, TrustStore, entry_name, selected_stores, sudo_caroot_problem
from ..trust.rootfs import RootFSStore
from .messages import word
from .output import Failed, echo, print_json, warn


def chosen_stores(store: list[str] | None, root: Path | None) -> list[TrustStore]:
    """The stores ``--store`` names (or all found), or with ``--root DIR`` only DIR's system store:
    never this machine's, whatever $DEVCERT_TRUST_STORES says."""
    if root is None:
        return selected_stores(store)
    if store and any(part.strip().lower() not in ("system", "rootfs", "") for item in store for part in item.split(",")):
        raise UsageError("--root DIR changes only the system store inside DIR: drop --store, or use --store system")
    return [RootFSStore(root)]


def check_sudo() -> None:
    problem = sudo_caroot_problem()
    if problem is None:
        return
    advice, fatal = problem
    message = word(advice)
    if fatal:
        raise UsageError(message)
    warn(message)


def check_caroot() -> None:
    """A CAROOT that is a file would read as "no CA yet" and then fail to be created: say so first."""
    folder = caroot()
    if folder.exists() and not folder.is_dir():
        raise DevcertError(f"CAROOT {folder} is a file, not a folder; move it aside or point DEVCERT_CAROOT at a folder")


def checked_stores(store: list[str] | None, root: Path | None) -> list[TrustStore]:
    """What install and uninstall do first: the stores of ``--store`` / ``--root``
    (:func:`chosen_stores`), then the sudo and CAROOT checks."""
    stores = chosen_stores(store, root)
    check_sudo()
    check_caroot()
    return stores


class StoreReport:
    """What install / uninstall say: lines for people, or (``--json``) one object on stdout
    with each store's result while the lines go to stderr."""
    def __init__(self, json_output: bool, dry_run: bool, *, stale: bool = False) -> None:
        self.json, self.dry_run = json_output, dry_run
        self.stores: list[dict[str, str | None]] = []
        self.ca: dict | None = None  # type: ignore[type-arg]
        #: ``uninstall --stale``: one row per stale entry (store, entry, where, ..., result, error).
        self.entries: list[dict] | None = [] if stale else None  # type: ignore[type-arg]

    def say(self, line: str) -> None:
        echo(line, err=self.json)

    def about(self, ca) -> None:  # type: ignore[no-untyped-def]

        self.ca = {"subject": ca.subject, "sha256": ca.fingerprint, "cert": str(ca.cert_path), "entry": entry_name(ca)}

    def runner(self):  # type: ignore[no-untyped-def]

        return Runner(dry_run=self.dry_run, echo=lambda line: self.say(f"  {line}"))

    def header(self, store) -> None:  # type: ignore[no-untyped-def]
        self.say(f"{store.name}: {store.describe()}")

    def present(self, stores):  # type: ignore[no-untyped-def]
        """Each store found on this machine, after its header line; one "not found here" row
        for each that is not (uninstall and ``--stale`` have nothing to do there)."""
        for store in stores:
            self.header(store)
            if store.available():
                yield store
            else:
                self.result(store.name, "not found here")

    def result(self, store: str, result: str, error: str | None = None, **extra: object) -> None:
        self.stores.append({"store": store, "result": result, "error": error, **extra})  # type: ignore[dict-item]
        if error is None:
            self.say(f"  {result}")

    def store_result(self, store: TrustStore, result: str) -> None:
        """A store's success row; a root file system whose rebuild could not run here also gets
        the command for the image's next RUN line (``"run_in_image"`` in the JSON)."""
        if not isinstance(store, RootFSStore) or not store.deferred:
            self.result(store.name, result)
            return
        line = " && ".join(store.deferred)
        self.result(store.name, result, run_in_image=line)
        why = "devcert is not root" if not store.as_root else (
            "chroot is not installed" if store.chroot is None else "the update tool is not in the image")
        self.say(f"  the bundle in {store.root} is not rebuilt yet ({why}); the image's next RUN line:")
        self.say(f"    RUN {line}")

    def entry(self, store: str, entry, result: str, error: str | None = None) -> None:  # type: ignore[no-untyped-def]
        assert self.entries is not None
        self.entries.append({"store": store, **entry.as_dict(), "result": result, "error": error})
        if error is None:
            self.say(f"  {entry.name} ({entry.where}): {result}")

    def finish(self) -> None:
        lines = [f"{s['store']}: {s['error']}" for s in self.stores if s["error"] is not None]
        for e in self.entries or []:
            if e["error"] is not None:  # name the entry unless the store's message already does
                about = "" if e["entry"] in e["error"] else f"{e['entry']} ({e['where']}): "
                lines.append(f"{e['store']}: {about}{e['error']}")
        if self.json:
            obj = {"ca": self.ca, "dry_run": self.dry_run, "ok": not lines, "stores": self.stores}
            if self.entries is not None:
                obj["stale"] = self.entries
            print_json(obj)
        for line in lines:
            echo(f"devcert: error: {line}", err=True)
        if lines:
            raise Failed()
        if self.dry_run:
            self.say("Dry run: nothing was changed.")

