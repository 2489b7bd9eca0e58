"""``devcert sync``, ``list``, ``renew``, ``inspect``, ``ca rotate`` and ``ca import-mkcert``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import echo, fail, print_json, warn
from .application import app, ca_app

JSON_HELP = "Print one JSON object on stdout and nothing else there."


def _existing_ca(require_key: bool = False):  # type: ignore[no-untyped-def]
    """The CA in CAROOT, or None when there is none yet."""
    from ..ca import LocalCA

    return LocalCA.load(require_key=require_key) if LocalCA.exists() else None


def _readable_ca():  # type: ignore[no-untyped-def]
    """For commands that only report (list, inspect): the CA, or None with a warning when it is unreadable.

    A damaged rootCA.pem must not stop `devcert inspect some.pem` or `devcert list`.
    """
    from ..errors import DevcertError

    try:
        return _existing_ca()
    except DevcertError as err:
        warn(f"{err}; reporting without the local CA")
        return None


def _check_days(option: str, days: int | None) -> None:
    if days is not None and days < 0:
        from ..errors import UsageError

        raise UsageError(f"{option} {days}: give 0 or more days")


def _date(iso: str | None) -> str:
    return iso[:10] if iso else "?"


# -- sync ----------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Declare certificates in pyproject.toml:\n\n"
        "  [tool.devcert]\n\n"
        "  certs = [{ names = [\"localhost\", \"127.0.0.1\"], cert = \"certs/dev.pem\", key = \"certs/dev-key.pem\" }]\n\n"
        "Examples:\n\n"
        "  devcert sync                 # create or renew what the project declares\n\n"
        "  devcert sync --check         # change nothing; exit 1 if something would change\n\n"
        "  devcert sync --gitignore     # also add the outputs to .gitignore without asking"
    )
)
def sync(
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if something would change.")] = False,
    min_days: Annotated[int, typer.Option("--min-days", help="Renew certificates valid for fewer days than this.")] = 30,
    warn_days: Annotated[Optional[int], typer.Option("--warn-days", help="Warn about certificates expiring within this many days (default: min-days + 30).", show_default=False)] = None,
    gitignore: Annotated[Optional[bool], typer.Option("--gitignore/--no-gitignore", help="Add the outputs to .gitignore without asking / never offer to.", show_default=False)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Use this pyproject.toml or devcert.toml instead of searching upwards.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create or renew the certificates the project declares ([tool.devcert] or devcert.toml).

    Each declared certificate must exist, be signed by this machine's local CA, carry exactly
    the declared names and options, and be valid for --min-days more days. Only those that
    are not are reissued, one line each; a second run changes nothing.
    """
    from ..project import load_project
    from ..project import sync as do_sync

    _check_days("--min-days", min_days)
    _check_days("--warn-days", warn_days)
    project = load_project(config=config)
    if check:
        ca = _existing_ca(require_key=False)
    else:
        from .create import load_ca_for_issuing

        ca = load_ca_for_issuing() if project.certs else _existing_ca()
    results = do_sync(project, ca, check=check, min_days=min_days)
    changed = [r for r in results if r.changed]

    warn_within = min_days + 30 if warn_days is None else warn_days
    expiring = []
    for r in results:
        if r.action != "kept":
            continue
        days_left = _days_left(r.spec.cert)
        if days_left is not None and days_left < warn_within:
            expiring.append((r, days_left))

    suggestions: list[str] = []
    added = None
    if gitignore is not False:
        from ..project import add_to_gitignore, gitignore_suggestions

        suggestions = gitignore_suggestions(project)
        if suggestions and not check:
            if gitignore is True:
                added = add_to_gitignore(project, suggestions)
            elif sys.stdin.isatty() and not json_output:
                echo(f"These outputs are not in .gitignore: {', '.join(suggestions)}")
                if typer.confirm(f"Add them to {project.root / '.gitignore'}?", default=True):
                    added = add_to_gitignore(project, suggestions)

    if json_output:
        print_json({
            "config": str(project.config),
            "check": check,
            "ok": not changed,
            "certs": [
                {
                    "cert": str(r.spec.cert), "key": str(r.spec.key), "names": [n.value for n in r.spec.names],
                    "action": r.action, "reason": r.reason, "not_after": r.not_after, "warnings": r.warnings,
                }
                for r in results
            ],
            "expiring_soon": [str(r.spec.cert) for r, _ in expiring],
            "gitignore_missing": [] if added else suggestions,
            "gitignore_added": str(added) if added else None,
        })
    else:
        for r in results:
            for message in r.warnings:
                warn(message)
            if not r.changed:
                continue
            rel = project.relative(r.spec.cert)
            names = ", ".join(n.value for n in r.spec.names)
            if check:
                verb = "would create" if r.action == "created" else "would renew"
                echo(f"{verb} {rel} ({names}): {r.reason}")
            else:
                echo(f"{r.action} {rel} ({names}){'' if r.action == 'created' else ': ' + r.reason}; "
                     f"valid until {_date(r.not_after)}")
        if not changed:
            echo(f"All {len(results)} certificates declared in {project.config.name} are up to date."
                 if results else f"{project.config} declares no certificates.")
        for r, days_left in expiring:
            warn(f"{project.relative(r.spec.cert)} expires in {days_left} days; "
                 f"`devcert sync --min-days {warn_within}` renews it now")
        if added:
            echo(f"Added {len(suggestions)} line(s) to {added}.")
        elif suggestions:
            warn(f"{', '.join(suggestions)} {'is' if len(suggestions) == 1 else 'are'} not in .gitignore, so a key "
                 f"could be committed; add {'it' if len(suggestions) == 1 else 'them'} to "
                 f"{project.root / '.gitignore'} (or run `devcert sync --gitignore`)")
    if check and changed:
        raise typer.Exit(1)


def _days_left(path: Path) -> int | None:
    import datetime as dt

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return (cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).days


# -- list / renew --------------------------------------------------------------------------


def _flags(entry: dict[str, Any]) -> str:
    flags = []
    if entry["missing"]:
        flags.append("missing")
    elif entry["replaced"]:
        flags.append("replaced since")
    if entry.get("key_missing") and not entry["missing"]:
        flags.append("key missing")
    if entry.get("expired"):
        flags.append("expired")
    if entry.get("other_ca"):
        flags.append("other CA")
    if entry.get("client"):
        flags.append("client")
    return ", ".join(flags)


@app.command("list", epilog="Examples:\n\n  devcert list\n\n  devcert list --expiring 30 --json")
def list_(
    expiring: Annotated[Optional[int], typer.Option("--expiring", help="Only certificates that expire within DAYS (or already have).", metavar="DAYS", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the certificates devcert issued (the inventory in CAROOT), marking missing files."""
    from .. import inventory
    from ..ca import caroot

    _check_days("--expiring", expiring)
    ca = _readable_ca()
    entries, warnings = inventory.read(caroot())
    for message in warnings:
        warn(message)
    rows = [inventory.status(e, ca) for e in entries]
    if expiring is not None:
        rows = [r for r in rows if r["days_left"] is not None and r["days_left"] < expiring]
    rows.sort(key=lambda r: r.get("not_after") or "")
    if json_output:
        print_json({"inventory": str(inventory.inventory_path(caroot())), "certs": rows})
        return
    if not rows:
        echo("No certificates" + (f" expire within {expiring} days." if expiring is not None else " recorded yet."))
        return
    for r in rows:
        flags = _flags(r)
        left = f"{r['days_left']:>4}d" if r["days_left"] is not None else "   ?"
        echo(f"{_date(r.get('not_after'))} {left}  {r['cert']}  ({', '.join(r['names'])})" + (f"  [{flags}]" if flags else ""))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  devcert renew certs/dev.pem\n\n"
        "  devcert renew --expiring 30\n\n"
        "  devcert renew --all"
    )
)
def renew(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Certificate (or key) files to renew.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Renew every certificate in the inventory whose file exists.")] = False,
    expiring: Annotated[Optional[int], typer.Option("--expiring", help="Renew those that expire within DAYS.", metavar="DAYS", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Reissue certificates from the inventory: the same names and options, to the same paths."""
    from .. import inventory
    from ..ca import caroot
    from ..errors import DevcertError, UsageError
    from .create import load_ca_for_issuing

    _check_days("--expiring", expiring)
    modes = sum([bool(paths), all_, expiring is not None])
    if modes != 1:
        raise UsageError("say what to renew: PATH..., --all, or --expiring DAYS (one of them)")
    entries, warnings = inventory.read(caroot())
    for message in warnings:
        warn(message)
    selected: list[dict[str, Any]] = []
    skipped: list[str] = []
    if paths:
        by_path = {}
        for e in entries:
            by_path[e["cert"]] = e
            if e.get("key"):
                by_path[e["key"]] = e
        for p in paths:
            key = str(p.absolute())
            entry = by_path.get(key) or by_path.get(str(p.resolve()))
            if entry is None:
                raise UsageError(f"{p} is not in the inventory (`devcert list` shows it); issue it with `devcert create` "
                                 f"or declare it in the project and run `devcert sync`")
            if entry not in selected:
                selected.append(entry)
    else:
        ca_now = _existing_ca()
        for e in entries:
            st = inventory.status(e, ca_now)
            if expiring is not None and not (st["days_left"] is not None and st["days_left"] < expiring):
                continue
            if st["missing"]:
                skipped.append(f"{e['cert']} (file missing)")
                continue
            reason = inventory.not_renewable(e)
            if reason is not None:
                skipped.append(f"{e['cert']} ({reason})")
                continue
            selected.append(e)
    ca = load_ca_for_issuing() if selected else None
    done = []
    errors = []
    for entry in selected:
        try:
            leaf, warns = inventory.reissue(ca, entry)
        except inventory.CSRLeafError as err:
            errors.append(str(err))  # it names the file already
            continue
        except DevcertError as err:
            errors.append(f"{entry['cert']}: {err}")
            continue
        for message in warns:
            warn(message)
        done.append({"cert": entry["cert"], "key": entry.get("key"), "names": entry["names"],
                     "not_after": leaf.not_after.isoformat(), "serial": leaf.serial})
    if json_output:
        print_json({"renewed": done, "skipped": skipped, "errors": errors})
    else:
        for d in done:
            echo(f"renewed {d['cert']} ({', '.join(d['names'])}); valid until {_date(d['not_after'])}")
        for s in skipped:
            echo(f"skipped {s}")
        if not done and not errors:
            echo("Nothing to renew.")
    for e in errors:
        echo(f"devcert: error: {e}", err=True)
    if errors:
        raise typer.Exit(1)


# -- inspect -------------------------------------------------------------------------------


@app.command(
    epilog="Examples:\n\n  devcert inspect certs/dev.pem\n\n  devcert inspect localhost:8443 --json"
)
def inspect(
    target: Annotated[str, typer.Argument(help="A certificate file (PEM or DER), or HOST:PORT of a TLS server.", show_default=False)],
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show a certificate's subject, names, validity, key, issuer and fingerprint, and whether
    it chains to this machine's local CA (for a server: the chain it sent and the handshake result)."""
    from ..inspect import inspect as do_inspect

    report = do_inspect(target, _readable_ca())
    if json_output:
        print_json(report)
        return
    if report["kind"] == "server":
        echo(f"Server {report['source']}: {report['tls_version']} {report['cipher']}, sent "
             f"{len(report['certificates'])} certificate(s)")
    else:
        echo(f"File {report['source']}: {len(report['certificates'])} certificate(s)")
    for i, c in enumerate(report["certificates"]):
        if i:
            echo("")
        echo(f"[{i}] Subject:  {c['subject']}")
        echo(f"    Names:    {', '.join(c['names']) or '(none)'}")
        echo(f"    Valid:    {c['not_before'][:19]} to {c['not_after'][:19]} "
             f"({'EXPIRED' if c['expired'] else str(c['days_left']) + ' days left'})")
        echo(f"    Key:      {c['key']}")
        echo(f"    Issuer:   {c['issuer']}")
        echo(f"    Serial:   {c['serial']}")
        echo(f"    SHA-256:  {c['sha256']}")
        if c["extended_key_usage"]:
            echo(f"    Usage:    {', '.join(c['extended_key_usage'])}")
    mark = "yes" if report["chains_to_local_ca"] else "no"
    echo(f"Chains to the local CA: {mark} ({report['verdict']})")


# -- CA lifecycle --------------------------------------------------------------------------


@ca_app.command("rotate", epilog="Example:\n\n  devcert ca rotate --yes")
def ca_rotate(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    profile: Annotated[str, typer.Option("--profile", help="Name constraints of the new CA: dns (default) or strict (see `devcert ca init --help`).")] = "dns",
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Replace the local CA with a new one everywhere it is used.

    Makes a new CA (same key type and --permit widenings), installs it in every trust store
    that trusted the old one, reissues the certificates in the inventory, then removes the old
    CA from those stores. The old CA's files are kept in CAROOT/old/<fingerprint>/.
    """
    from ..ca import LocalCA, caroot, check_profile
    from ..errors import UsageError
    from ..lifecycle import rotate

    check_profile(profile)
    old = LocalCA.load()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("rotating replaces the CA and reissues every recorded certificate: confirm with --yes")
        if not typer.confirm(f"Replace the CA {old.common_name} (SHA-256 {old.short_id}) with a new one?", default=False):
            fail("not rotated: the CA and its certificates are unchanged", 1)
    report = rotate(caroot(), progress=None if json_output else echo, profile=profile)
    for message in report.warnings:
        warn(message)
    if json_output:
        print_json(report.as_dict())
    else:
        for s in report.skipped:
            echo(f"skipped {s}")
        if report.resumed:
            echo(f"Finished the rotation an earlier `devcert ca rotate` began: the CA is now {report.new.common_name} "
                 f"(run it again to rotate once more).")
        if not report.trusted:
            echo("The old CA was not installed in any trust store here; run `devcert install` to trust the new one.")
        echo(f"Rotated: {len(report.reissued)} certificate(s) reissued; the old CA is in {report.backup}.")
        if report.errors:
            echo("A store that refused the new CA keeps the old one: `devcert status` shows it as stale; "
                 "`devcert install` then `devcert uninstall --stale` finish the move.")
    for e in report.errors:
        echo(f"devcert: error: {e}", err=True)
    if report.errors:
        raise typer.Exit(1)


@ca_app.command(
    "import-mkcert",
    epilog="Examples:\n\n  devcert ca import-mkcert\n\n  devcert ca import-mkcert --caroot ~/.local/share/mkcert --force",
)
def ca_import_mkcert(
    caroot_: Annotated[Optional[Path], typer.Option("--caroot", help="mkcert's CA folder (default: $CAROOT, else `mkcert -CAROOT`).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing devcert CA (it is backed up in CAROOT/old/).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Adopt mkcert's CA as devcert's, for machines that already trust it.

    mkcert's CA carries no name constraints: it can sign for any name, so guard its key. A
    devcert CA (`devcert ca init`) permits only development names and private addresses.
    """
    from ..ca import caroot
    from ..lifecycle import import_mkcert

    report = import_mkcert(caroot_, caroot(), force=force)
    constrained = report.ca.constraints is not None
    if json_output:
        print_json({**report.ca.info(), "source": str(report.source), "unchanged": report.unchanged,
                    "replaced_sha256": report.replaced.fingerprint if report.replaced else None,
                    "backup": str(report.backup) if report.backup else None})
        return
    if report.unchanged:
        echo(f"devcert already uses mkcert's CA {report.ca.common_name} ({report.source}).")
    else:
        echo(f"Adopted mkcert's CA {report.ca.common_name} from {report.source} into {caroot()}.")
    echo(f"  SHA-256: {report.ca.fingerprint}")
    if not constrained:
        warn("this CA carries no name constraints: it can sign for any name, so anyone with its key can "
             "impersonate any site to this machine; `devcert ca init --force` makes a constrained one")
    if report.replaced is not None:
        warn(f"replaced the CA {report.replaced.common_name}; its files are in {report.backup}. If it was "
             f"installed, remove it with `DEVCERT_CAROOT={report.backup} devcert uninstall`")
    echo("Stores that trust mkcert's CA (after `mkcert -install`) now trust devcert's certificates; "
         "`devcert install` adds the rest.")
