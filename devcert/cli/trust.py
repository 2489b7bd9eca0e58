"""``devcert install``, ``devcert uninstall`` and ``devcert status``: the CA in the trust stores."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import app, echo, print_json, warn

STORE_HELP = "Only this store: system, nss or java (repeatable; default: every store found, or $DEVCERT_TRUST_STORES)."
DRY_RUN_HELP = "Print every command and file write without doing any."
JSON_HELP = "Print one JSON object on stdout (each store's result); progress goes to stderr."


def _sudo_check() -> None:
    from ..errors import UsageError
    from ..trust import sudo_caroot_problem

    problem = sudo_caroot_problem()
    if problem is None:
        return
    message, fatal = problem
    if fatal:
        raise UsageError(message)
    warn(message)


def _caroot_check() -> None:
    """A CAROOT that is a file would read as "no CA yet" and then fail to be created: say so first."""
    from ..ca import caroot
    from ..errors import DevcertError

    folder = caroot()
    if folder.exists() and not folder.is_dir():
        raise DevcertError(f"CAROOT {folder} is a file, not a folder; move it aside or point DEVCERT_CAROOT at a folder")


class _Report:
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
        from ..trust import entry_name

        self.ca = {"subject": ca.subject, "sha256": ca.fingerprint, "cert": str(ca.cert_path), "entry": entry_name(ca)}

    def runner(self):  # type: ignore[no-untyped-def]
        from ..trust import Runner

        return Runner(dry_run=self.dry_run, echo=lambda line: self.say(f"  {line}"))

    def header(self, store) -> None:  # type: ignore[no-untyped-def]
        self.say(f"{store.name}: {store.describe()}")

    def result(self, store: str, result: str, error: str | None = None) -> None:
        self.stores.append({"store": store, "result": result, "error": error})
        if error is None:
            self.say(f"  {result}")

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
            raise typer.Exit(1)
        if self.dry_run:
            self.say("Dry run: nothing was changed.")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  devcert install                     # every store found: system, NSS (Firefox, Chromium), Java\n\n"
        "  devcert install --store system      # only the OS store\n\n"
        "  devcert install --dry-run           # show each command and file write, change nothing\n\n"
        "  devcert install --json              # each store's result as JSON\n\n"
        "  DEVCERT_TRUST_STORES=system,nss devcert install"
    )
)
def install(
    store: Annotated[Optional[list[str]], typer.Option("--store", help=STORE_HELP, show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Make the local CA trusted by this machine's trust stores (creating the CA if needed).

    Each store gets one entry named devcert-<SHA-256 prefix>, so running it again changes
    nothing. Commands that need root are run through sudo, and printed first. Only the CA
    certificate is needed: a CA whose key is elsewhere can still be installed.
    """
    from ..ca import LocalCA, caroot
    from ..errors import DevcertError
    from ..trust import entry_name, selected_stores

    stores = selected_stores(store)
    _sudo_check()
    _caroot_check()
    report = _Report(json_output, dry_run)
    if not LocalCA.exists():
        if dry_run:
            report.say(f"There is no local CA in {caroot()} yet: `devcert install` would create one, then install it into:")
            for s in stores:
                report.header(s)
                report.result(s.name, "would be installed")
            report.finish()
            return
        ca = LocalCA.load_or_create()
        report.say(f"Created a new local CA in {caroot()} ({ca.common_name}).")
    else:
        ca = LocalCA.load(require_key=False)
    report.about(ca)
    if not stores:
        from ..errors import TrustStoreError

        raise TrustStoreError("no trust store found on this machine; `devcert status` lists what was looked for")
    report.say(f"{'Would install' if dry_run else 'Installing'} the local CA {ca.common_name} "
               f"(SHA-256 {ca.fingerprint[:16]}...) as {entry_name(ca)}")
    runner = report.runner()
    hints: list[str] = []
    for s in stores:
        report.header(s)
        if not s.available():
            report.result(s.name, "failed", s.not_available_reason())
            continue
        problem = s.problem()
        if problem:
            report.result(s.name, "failed", problem)
            continue
        try:
            if s.is_installed(ca):
                report.result(s.name, "already installed")
                continue
            s.install(ca, runner)
        except DevcertError as err:  # TrustStoreError, or a file write error: one line each
            report.result(s.name, "failed", str(err))
            continue
        report.result(s.name, "would be installed" if dry_run else "installed")
        if s.restart_hint and not dry_run:
            hints.append(s.restart_hint)
    for hint in hints:
        report.say(f"Note: {hint}.")
    report.finish()


@app.command(
    epilog=(
        "Examples:\n\n"
        "  devcert uninstall                   # from every store found\n\n"
        "  devcert uninstall --store nss       # only from Firefox / Chromium databases\n\n"
        "  devcert uninstall --dry-run\n\n"
        "  devcert uninstall --stale --dry-run # every devcert entry that is not the local CA"
    )
)
def uninstall(
    store: Annotated[Optional[list[str]], typer.Option("--store", help=STORE_HELP, show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    stale: Annotated[bool, typer.Option(
        "--stale", help="Instead, remove every devcert entry that is not the local CA's (older or other CAs; "
                        "with no local CA, all of them). The local CA stays trusted.")] = False,
) -> None:
    """Remove the local CA from the trust stores: exactly this CA, nothing else.

    The CA files in CAROOT stay (`devcert ca info` shows them); install again any time.
    With --stale, remove the entries of every other devcert CA instead (`devcert status`
    lists them), and keep this one.
    """
    from ..ca import LocalCA, caroot
    from ..errors import DevcertError
    from ..trust import entry_name, selected_stores

    stores = selected_stores(store)
    _sudo_check()
    _caroot_check()
    report = _Report(json_output, dry_run, stale=stale)
    if stale:
        _uninstall_stale(LocalCA.load(require_key=False) if LocalCA.exists() else None, stores, report)
        return
    if not LocalCA.exists():
        report.say(f"There is no local CA in {caroot()}: nothing to uninstall.")
        report.finish()
        return
    ca = LocalCA.load(require_key=False)
    report.about(ca)
    report.say(f"{'Would remove' if dry_run else 'Removing'} the local CA {ca.common_name} ({entry_name(ca)})")
    runner = report.runner()
    for s in stores:
        report.header(s)
        if not s.available():
            report.result(s.name, "not found here")
            continue
        try:
            before = len(runner.actions)
            s.uninstall(ca, runner)
        except DevcertError as err:
            report.result(s.name, "failed", str(err))
            continue
        if len(runner.actions) == before:
            report.result(s.name, "not installed")
        else:
            report.result(s.name, "would be removed" if dry_run else "removed")
    report.finish()


def _uninstall_stale(ca, stores, report: _Report) -> None:  # type: ignore[no-untyped-def]
    """``uninstall --stale``: per store, list the stale entries, remove them, one row each."""
    from ..ca import caroot
    from ..errors import DevcertError
    from ..trust import entry_name, stale_entries

    doing = "Would remove" if report.dry_run else "Removing"
    if ca is None:
        report.say(f"There is no local CA in {caroot()}: every devcert entry is stale. {doing} them all.")
    else:
        report.about(ca)
        report.say(f"{doing} every devcert entry that is not the local CA {ca.common_name} ({entry_name(ca)} stays)")
    runner = report.runner()
    for s in stores:
        report.header(s)
        if not s.available():
            report.result(s.name, "not found here")
            continue
        try:
            found = [entry for _, entry in stale_entries(ca, [s])]
            failed = {id(entry): err for entry, err in s.remove_entries(found, runner)} if found else {}
        except DevcertError as err:  # TrustStoreError, or a file error: one line for the store
            report.result(s.name, "failed", str(err))
            continue
        if not found:
            report.result(s.name, "no stale entries")
            continue
        done = "would be removed" if report.dry_run else "removed"
        for entry in found:
            err = failed.get(id(entry))
            report.entry(s.name, entry, "failed" if err else done, None if err is None else str(err))
        noun = "stale entry" if len(found) == 1 else "stale entries"
        if failed:
            report.result(s.name, f"{len(found) - len(failed)} of {len(found)} {noun} {done}, {len(failed)} failed")
        else:
            report.result(s.name, f"{len(found)} {noun} {done}")
    report.finish()


@app.command(epilog="Examples:\n\n  devcert status\n\n  devcert status --json")
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")] = False,
) -> None:
    """Show each trust store: where it is, whether the local CA is installed, and how to fix it.

    Also lists stale entries: those of any devcert CA that is not the local one.
    """
    from ..ca import LocalCA, caroot
    from ..trust import entry_name, selected_stores, stale_entries

    _caroot_check()
    ca = LocalCA.load(require_key=False) if LocalCA.exists() else None
    stores = selected_stores(include_unavailable=True)
    rows = [s.status(ca) for s in stores]
    unlisted: list[dict[str, str]] = []
    stale = stale_entries(ca, stores, on_error=lambda s, err: unlisted.append({"store": s.name, "error": str(err)}))
    if json_output:
        print_json({
            "caroot": str(caroot()),
            "ca": None if ca is None else {"subject": ca.subject, "sha256": ca.fingerprint, "entry": entry_name(ca)},
            "trusted_anywhere": any(r.installed for r in rows),
            "stores": [r.as_dict() for r in rows],
            "stale": [{"store": s.name, **entry.as_dict()} for s, entry in stale],
            "stale_unknown": unlisted,
        })
        return
    if ca is None:
        echo(f"No local CA in {caroot()} yet: `devcert install` creates and installs one.")
    else:
        echo(f"Local CA: {ca.common_name} (SHA-256 {ca.fingerprint[:16]}..., entries named {entry_name(ca)})")
    table = [("STORE", "STATE", "WHERE", "FIX")]
    for r in rows:
        state = ("installed" if r.installed else r.detail) if r.available else "not found"
        table.append((r.name, state, r.where, r.fix or ("" if r.available else r.detail)))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    if stale:
        whose = "no local CA here issues from them" if ca is None else "not the local CA, still trusted"
        echo("")
        echo(f"Stale entries ({whose}):")
        cells = [(s.name, entry.name, entry.where) for s, entry in stale]
        widths = [max(len(c[i]) for c in cells) for i in range(2)]
        for name, entry_text, where in cells:
            echo(f"  {name.ljust(widths[0])}  {entry_text.ljust(widths[1])}  {where}")
        echo("Remove them with `devcert uninstall --stale` (`--dry-run` first shows what it would do).")
    for item in unlisted:
        echo(f"Cannot look for stale entries in {item['store']}: {item['error']}")
