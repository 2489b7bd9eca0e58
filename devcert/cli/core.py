"""``devcert create``, ``devcert caroot``, ``devcert ca init`` and ``devcert ca info``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import app, ca_app, echo, fail, print_json, warn

JSON_HELP = "Print one JSON object on stdout and nothing else there."


def _abs(path: Path | None) -> str | None:
    return str(path.absolute()) if path is not None else None


def load_ca_for_issuing(json_output: bool = False):  # type: ignore[no-untyped-def]
    """The CA in CAROOT, created on first need with a line that says so."""
    from ..ca import LocalCA, caroot

    existed = LocalCA.exists()
    ca = LocalCA.load_or_create()
    if not existed:
        echo(f"Created a new local CA in {caroot()} ({ca.common_name}).", err=True)
        echo("Run `devcert install` to make browsers and tools trust it.", err=True)
    return ca


def not_trusted_hint(ca) -> None:  # type: ignore[no-untyped-def]
    """One line when the CA is not trusted by any store here, as mkcert does; else nothing."""
    try:
        from ..trust import trusted_anywhere
    except ImportError:
        return
    try:
        if not trusted_anywhere(ca):
            echo("Note: the local CA is not trusted here yet; run `devcert install` once. ⚠", err=True)
    except Exception:  # a hint must never break issuing
        return


@app.command(
    epilog=(
        "Examples:\n\n"
        "  devcert create localhost 127.0.0.1 ::1   # ./localhost+2.pem and ./localhost+2-key.pem\n\n"
        "  devcert create '*.app.test' app.test     # ./_wildcard.app.test+1.pem\n\n"
        "  devcert create --client alice@app.test   # a client / S/MIME certificate\n\n"
        "  devcert create --csr req.csr             # sign a CSR; the key stays with you"
    )
)
def create(
    names: Annotated[Optional[list[str]], typer.Argument(help="Host names, wildcards (*.app.test), IPs, emails or URIs.", show_default=False)] = None,
    cert_file: Annotated[Optional[Path], typer.Option("--cert-file", help="Where to write the certificate (default: ./NAME.pem).")] = None,
    key_file: Annotated[Optional[Path], typer.Option("--key-file", help="Where to write the key (default: ./NAME-key.pem).")] = None,
    p12_file: Annotated[Optional[Path], typer.Option("--p12-file", help="Write a PKCS#12 file (key, cert, CA) instead of PEM files.")] = None,
    p12_password: Annotated[Optional[str], typer.Option("--p12-password", help="Password for --p12-file (asked for when omitted).")] = None,
    client: Annotated[bool, typer.Option("--client", help="Also allow client authentication (mTLS).")] = False,
    key_type: Annotated[str, typer.Option("--key-type", help="ecdsa (P-256, default) or rsa (2048).")] = "ecdsa",
    days: Annotated[Optional[int], typer.Option("--days", help="Validity in days (default 820, at most 825; 14 with --self-signed).", show_default=False)] = None,
    csr: Annotated[Optional[Path], typer.Option("--csr", help="Sign this CSR (PEM or DER) instead of making a key.")] = None,
    self_signed: Annotated[bool, typer.Option("--self-signed", help="Make a CA-less certificate (e.g. for WebTransport hashes).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create a certificate and key for NAMES, signed by the local CA.

    The CA is created in CAROOT on first use. Files are written to the current folder with
    mkcert's names unless --cert-file / --key-file / --p12-file say otherwise.
    """
    from ..errors import UsageError
    from ..files import PRIVATE, atomic_write, default_output_paths
    from ..issue import issue_self_signed
    from ..keys import check_key_type
    from ..names import parse_names

    check_key_type(key_type)
    if csr is not None and names:
        raise UsageError("--csr takes its names from the CSR: give either names or --csr")
    if csr is not None and self_signed:
        raise UsageError("--csr and --self-signed cannot be combined")
    if csr is not None and (p12_file or key_file):
        raise UsageError("with --csr there is no key here: --key-file and --p12-file do not apply")
    if p12_file is None and p12_password is not None:
        raise UsageError("--p12-password needs --p12-file")

    ca = None
    if csr is not None:
        try:
            data = csr.read_bytes()
        except OSError as err:
            raise UsageError(f"cannot read the CSR {csr}: {err.strerror}") from None
        ca = load_ca_for_issuing()
        leaf = ca.sign_csr(data, client=client, days=days)
    elif self_signed:
        if not names:
            raise UsageError("give at least one name, e.g. `devcert create --self-signed localhost`")
        leaf = issue_self_signed(parse_names(names), client=client, key_type=key_type, days=days)
    else:
        if not names:
            raise UsageError("give at least one name, e.g. `devcert create localhost 127.0.0.1 ::1`")
        parsed = parse_names(names)  # bad names fail before any CA is created
        ca = load_ca_for_issuing()
        leaf = ca.issue(*(n.value for n in parsed), client=client, key_type=key_type, days=days)

    for message in leaf.warnings:
        warn(message)

    default_cert, default_key, default_p12 = default_output_paths([n.value for n in leaf.names], client)
    written: dict[str, str | None] = {"cert": None, "key": None, "p12": None}
    if p12_file is not None:
        password = p12_password
        if password is None:
            if not sys.stdin.isatty():
                raise UsageError("--p12-file needs a password: give --p12-password, or run in a terminal to be asked")
            password = typer.prompt("Password for the PKCS#12 file", hide_input=True, confirmation_prompt=True)
        if not password:
            raise UsageError("the PKCS#12 password cannot be empty")
        written["p12"] = str(atomic_write(p12_file, leaf.pkcs12(password.encode()), PRIVATE))
        if cert_file is not None:
            leaf.write(cert_file)
            written["cert"] = _abs(cert_file)
    else:
        out_cert = cert_file or default_cert
        out_key = None if csr is not None else (key_file or default_key)
        leaf.write(out_cert, out_key)
        written["cert"] = _abs(out_cert)
        written["key"] = _abs(out_key)

    if json_output:
        print_json({
            **written,
            "ca": _abs(ca.cert_path) if ca is not None and ca.cert_path else None,
            "names": [n.value for n in leaf.names],
            "not_after": leaf.not_after.isoformat(),
            "serial": leaf.serial,
            "sha256": leaf.sha256,
            "self_signed": self_signed,
            "warnings": leaf.warnings,
        })
        return
    kind = "client certificate" if client else "certificate"
    echo(f"Created a {kind} for: {', '.join(n.value for n in leaf.names)}")
    if written["cert"]:
        echo(f"  certificate: {written['cert']}")
    if written["key"]:
        echo(f"  key:         {written['key']}")
    if written["p12"]:
        echo(f"  PKCS#12:     {written['p12']}")
    echo(f"  expires:     {leaf.not_after:%Y-%m-%d}")
    if self_signed:
        echo(f"  SHA-256:     {leaf.sha256}")
    elif ca is not None:
        not_trusted_hint(ca)


@app.command(epilog="Example:\n\n  cp \"$(devcert caroot)/rootCA.pem\" ./ca.pem")
def caroot() -> None:
    """Print the folder that holds the local CA ($DEVCERT_CAROOT, else the user data folder)."""
    from ..ca import caroot as where

    echo(str(where()))


def _print_info(info: dict) -> None:  # type: ignore[type-arg]
    echo(f"Subject:     {info['subject']}")
    echo(f"SHA-256:     {info['sha256']}")
    echo(f"Key:         {info['key_type']}")
    echo(f"Valid:       {info['not_before'][:10]} to {info['not_after'][:10]}")
    echo(f"Certificate: {info['cert']}")
    echo(f"Private key: {info['key'] or 'missing (this CA cannot sign)'}")
    constraints = info["constraints"]
    if constraints is None:
        echo("Constraints: none (this CA can sign for any name)")
    else:
        echo(f"Permits:     {', '.join(constraints['dns'])}")
        echo(f"             {', '.join(constraints['ip'])}")


@ca_app.command(
    "init",
    epilog=(
        "Examples:\n\n"
        "  devcert ca init\n\n"
        "  devcert ca init --permit corp.example.dev --permit 100.64.0.0/10\n\n"
        "  devcert ca init --force --key-type rsa"
    ),
)
def ca_init(
    key_type: Annotated[str, typer.Option("--key-type", help="ecdsa (P-256, default) or rsa (3072).")] = "ecdsa",
    permit: Annotated[Optional[list[str]], typer.Option("--permit", help="Also permit this DNS name (and its subdomains) or CIDR range. Repeatable.", show_default=False)] = None,
    no_constraints: Annotated[bool, typer.Option("--no-constraints", help="Make a CA that can sign for any name (not recommended).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing CA (it stops being usable).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create the local CA in CAROOT.

    By default the CA may only sign development names (localhost, *.test, *.example,
    *.invalid, *.local, *.internal, *.home.arpa) and private addresses, so a leaked key
    cannot be used against real sites. --permit widens that; --no-constraints removes it.
    """
    from ..ca import LocalCA, caroot
    from ..keys import check_key_type

    check_key_type(key_type)
    folder = caroot()
    if LocalCA.exists(folder):
        if not force:
            fail(f"a CA already exists in {folder}; `devcert ca info` shows it, --force replaces it", 1)
        try:
            old = LocalCA.load(folder, require_key=False)
            warn(f"replacing the CA {old.common_name} (SHA-256 {old.fingerprint}); certificates it "
                 f"signed will no longer be trusted once the new CA is installed")
        except Exception:
            warn(f"replacing the unreadable CA files in {folder}")
    if no_constraints:
        warn("this CA has no name constraints: anyone who gets its key can impersonate any site "
             "to every client that trusts it")
    ca = LocalCA.create(folder, key_type=key_type, permit=permit or (), constraints=not no_constraints, force=force)
    if json_output:
        print_json(ca.info())
        return
    echo(f"Created the local CA in {folder}")
    _print_info(ca.info())
    echo("Run `devcert install` to make browsers and tools trust it.")


@ca_app.command("info", epilog="Example:\n\n  devcert ca info --json")
def ca_info(json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Show the local CA: subject, SHA-256 fingerprint, validity, key type, constraints."""
    from ..ca import LocalCA

    ca = LocalCA.load(require_key=False)
    if json_output:
        print_json(ca.info())
    else:
        _print_info(ca.info())
