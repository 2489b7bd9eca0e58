"""``devcert create``, ``devcert caroot``, ``devcert ca init`` and ``devcert ca info``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import echo, fail, print_json, warn
from .application import app, ca_app

JSON_HELP = "Print one JSON object on stdout and nothing else there."


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
    cert_file: Annotated[Optional[str], typer.Option("--cert-file", help="Where to write the certificate (default: ./NAME.pem).")] = None,
    key_file: Annotated[Optional[str], typer.Option("--key-file", help="Where to write the key (default: ./NAME-key.pem).")] = None,
    p12_file: Annotated[Optional[str], typer.Option("--p12-file", help="Write a PKCS#12 file (key, cert, CA) instead of PEM files.")] = None,
    p12_password: Annotated[Optional[str], typer.Option("--p12-password", help="Password for --p12-file. Visible to other users in `ps`: prefer --p12-password-file or $DEVCERT_P12_PASSWORD (else it is asked for).")] = None,
    p12_password_file: Annotated[Optional[str], typer.Option("--p12-password-file", help="Read the --p12-file password from the first line of this file (- for standard input).")] = None,
    client: Annotated[bool, typer.Option("--client", help="Also allow client authentication (mTLS).")] = False,
    key_type: Annotated[str, typer.Option("--key-type", help="ecdsa (P-256, default) or rsa (2048).")] = "ecdsa",
    days: Annotated[Optional[int], typer.Option("--days", help="Validity in days (default 820, at most 825; 14 with --self-signed).", show_default=False)] = None,
    csr: Annotated[Optional[str], typer.Option("--csr", help="Sign this CSR (PEM or DER) instead of making a key.")] = None,
    self_signed: Annotated[bool, typer.Option("--self-signed", help="Make a CA-less certificate (e.g. for WebTransport hashes).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create a certificate and key for NAMES, signed by the local CA.

    The CA is created in CAROOT on first use. Files are written to the current folder with
    mkcert's names unless --cert-file / --key-file / --p12-file say otherwise.
    """
    from .create import run_create

    run_create(names=names or [], cert_file=cert_file, key_file=key_file, p12_file=p12_file,
               p12_password=p12_password, p12_password_file=p12_password_file, client=client, key_type=key_type, days=days, csr=csr,
               self_signed=self_signed, json_output=json_output)


@app.command(epilog="Example:\n\n  cp \"$(devcert caroot)/rootCA.pem\" ./ca.pem")
def caroot(json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Print the folder that holds the local CA ($DEVCERT_CAROOT, else the user data folder)."""
    from ..ca import CERT_FILE, LocalCA
    from ..ca import caroot as where

    folder = where()
    if json_output:
        exists = LocalCA.exists(folder)
        print_json({"caroot": str(folder), "ca_exists": exists, "cert": str(folder / CERT_FILE) if exists else None})
    else:
        echo(str(folder))


def _print_info(info: dict) -> None:  # type: ignore[type-arg]
    echo(f"Subject:     {info['subject']}")
    echo(f"SHA-256:     {info['sha256']}")
    echo(f"Key:         {info['key_type']}")
    echo(f"Valid:       {info['not_before'][:10]} to {info['not_after'][:10]}")
    echo(f"Certificate: {info['cert']}")
    if info.get("key_problem"):
        echo(f"Private key: unusable (this CA cannot sign): {info['key_problem']}")
    else:
        echo(f"Private key: {info['key'] or 'missing (this CA cannot sign)'}")
    constraints = info["constraints"]
    if constraints is None:
        echo("Constraints: none (this CA can sign for any name)")
    else:
        echo(f"Profile:     {constraints['profile']}: {constraints['about']}")
        echo(f"Permits:     {', '.join(constraints['dns'])}")
        if constraints["ip"] is not None:
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
    profile: Annotated[str, typer.Option("--profile", help="Name constraints: dns (default; every TLS stack accepts the leaves) or strict (also IP ranges, emails, URIs; Bun and Deno refuse some leaves).")] = "dns",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing CA (backed up in CAROOT/old/; stores that trust it keep trusting it until `devcert uninstall --stale`).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create the local CA in CAROOT.

    By default the CA may only sign development DNS names (localhost, *.test, *.example,
    *.invalid, *.local, *.internal, *.home.arpa), so a leaked key cannot be used against
    real sites; IP addresses, emails and URIs are not constrained (every TLS stack accepts
    such leaves). --profile strict also limits IPs to private ranges and emails/URIs to the
    development names. --permit widens that; --no-constraints removes it.
    """
    from ..ca import OLD_DIR, LocalCA, caroot, check_profile
    from ..errors import DevcertError, UnsafeCARootError
    from ..keys import check_key_type

    check_key_type(key_type)
    check_profile(profile)
    if no_constraints and permit:
        fail("--permit widens name constraints; it cannot be used with --no-constraints", 2)
    folder = caroot()
    old = None
    if LocalCA.exists(folder):
        if not force:
            fail(f"a CA already exists in {folder}; `devcert ca info` shows it, --force replaces it", 1)
        try:
            old = LocalCA.load(folder, require_key=False)
        except DevcertError as err:
            if isinstance(err, UnsafeCARootError):
                raise
            warn(f"replacing the unreadable CA files in {folder}")
    if no_constraints:
        warn("this CA has no name constraints: anyone who gets its key can impersonate any site "
             "to every client that trusts it")
    ca = LocalCA.create(folder, key_type=key_type, permit=permit or (), constraints=not no_constraints, force=force,
                        profile=profile)
    if old is not None:
        from ..lifecycle import still_trusted

        saved = folder / OLD_DIR / old.fingerprint
        trusted = still_trusted(old)
        if trusted:
            warn(f"replaced the CA {old.common_name} (SHA-256 {old.fingerprint[:16]}...), backed up in {saved}. It is "
                 f"still trusted by: {', '.join(trusted)}, and its certificates keep working there until you remove it "
                 f"with `devcert uninstall --stale` (next time, `devcert ca rotate` replaces a CA everywhere at once)")
        else:
            warn(f"replaced the CA {old.common_name} (SHA-256 {old.fingerprint[:16]}...), backed up in {saved}; "
                 f"no trust store here trusted it")
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
