"""``devcert install``: make the local CA trusted by this machine's trust stores."""

from __future__ import annotations

from ..ca import LocalCA, caroot
from ..errors import DevcertError, TrustStoreError
from ..trust import entry_name
from .application import app
from .messages import said, word
from .options import DryRunOption, RootOption, StoreJsonOption, StoreOption, examples
from .store_report import StoreReport, checked_stores


@app.command(
    epilog=examples(
        "devcert install                     # every store found: system, NSS (Firefox, Chromium), Java",
        "devcert install --store system      # only the OS store",
        "devcert install --dry-run           # show each command and file write, change nothing",
        "devcert install --json              # each store's result as JSON",
        "devcert install --root ./rootfs     # into an image's root file system, not this machine",
        "DEVCERT_TRUST_STORES=system,nss devcert install",
    )
)
def install(
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    json_output: StoreJsonOption = False,
    root: RootOption = None,
) -> None:
    """Make the local CA trusted by this machine's trust stores (creating the CA if needed).

    Each store gets one entry named devcert-<SHA-256 prefix>, so running it again changes
    nothing. Commands that need root are run through sudo, and printed first. Only the CA
    certificate is needed: a CA whose key is elsewhere can still be installed.
    """
    stores = checked_stores(store, root)
    report = StoreReport(json_output, dry_run)
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

        raise TrustStoreError("no trust store found on this machine; `devcert status` lists what was looked for")
    report.say(f"{'Would install' if dry_run else 'Installing'} the local CA {ca.common_name} "
               f"(SHA-256 {ca.fingerprint[:16]}...) as {entry_name(ca)}")
    runner = report.runner()
    hints: list[str] = []
    for s in stores:
        report.header(s)
        if not s.available():
            report.result(s.name, "failed", word(s.not_available_reason()))
            continue
        problem = s.problem()
        if problem:
            report.result(s.name, "failed", word(problem))
            continue
        try:
            if s.is_installed(ca):
                report.result(s.name, "already installed")
                continue
            s.install(ca, runner)
        except DevcertError as err:  # TrustStoreError, or a file write error: one line each
            report.result(s.name, "failed", said(err))
            continue
        report.store_result(s, "would be installed" if dry_run else "installed")
        if s.restart_hint and not dry_run:
            hints.append(s.restart_hint)
    for hint in hints:
        report.say(f"Note: {hint}.")
    report.finish()

