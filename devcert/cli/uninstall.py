"""``devcert uninstall``: remove the local CA (or, with ``--stale``, every other devcert CA) from the trust stores."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ca import LocalCA, caroot
from ..errors import DevcertError
from ..trust import entry_name, stale_entries
from .application import app
from .messages import said
from .options import DryRunOption, RootOption, StoreJsonOption, StoreOption, examples
from .store_report import StoreReport, checked_stores


@app.command(
    epilog=examples(
        "devcert uninstall                   # from every store found",
        "devcert uninstall --store nss       # only from Firefox / Chromium databases",
        "devcert uninstall --dry-run",
        "devcert uninstall --root ./rootfs   # from an image's root file system",
        "devcert uninstall --stale --dry-run # every devcert entry that is not the local CA",
    )
)
def uninstall(
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    json_output: StoreJsonOption = False,
    root: RootOption = None,
    stale: Annotated[bool, typer.Option(
        "--stale", help="Instead, remove every devcert entry that is not the local CA's (older or other CAs; "
                        "with no local CA, all of them). The local CA stays trusted.")] = False,
) -> None:
    """Remove the local CA from the trust stores: exactly this CA, nothing else.

    The CA files in CAROOT stay (`devcert ca info` shows them); install again any time.
    With --stale, remove the entries of every other devcert CA instead (`devcert status`
    lists them), and keep this one.
    """
    stores = checked_stores(store, root)
    report = StoreReport(json_output, dry_run, stale=stale)
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
    for s in report.present(stores):
        try:
            before = len(runner.actions)
            s.uninstall(ca, runner)
        except DevcertError as err:
            report.result(s.name, "failed", said(err))
            continue
        if len(runner.actions) == before:
            report.result(s.name, "not installed")
        else:
            report.store_result(s, "would be removed" if dry_run else "removed")
    report.finish()


def _uninstall_stale(ca, stores, report: StoreReport) -> None:  # type: ignore[no-untyped-def]
    """``uninstall --stale``: per store, list the stale entries, remove them, one row each."""
    doing = "Would remove" if report.dry_run else "Removing"
    if ca is None:
        report.say(f"There is no local CA in {caroot()}: every devcert entry is stale. {doing} them all.")
    else:
        report.about(ca)
        report.say(f"{doing} every devcert entry that is not the local CA {ca.common_name} ({entry_name(ca)} stays)")
    runner = report.runner()
    for s in report.present(stores):
        try:
            found = [entry for _, entry in stale_entries(ca, [s])]
            failed = {id(entry): err for entry, err in s.remove_entries(found, runner)} if found else {}
        except DevcertError as err:  # TrustStoreError, or a file error: one line for the store
            report.result(s.name, "failed", said(err))
            continue
        if not found:
            report.result(s.name, "no stale entries")
            continue
        done = "would be removed" if report.dry_run else "removed"
        for entry in found:
            err = failed.get(id(entry))
            report.entry(s.name, entry, "failed" if err else done, None if err is None else said(err))
        noun = "stale entry" if len(found) == 1 else "stale entries"
        if failed:
            report.result(s.name, f"{len(found) - len(failed)} of {len(found)} {noun} {done}, {len(failed)} failed")
        else:
            report.result(s.name, f"{len(found)} {noun} {done}")
    report.finish()

