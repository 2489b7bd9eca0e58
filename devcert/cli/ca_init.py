"""``devcert ca init``: create the local CA in CAROOT."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..ca import OLD_DIR, LocalCA, caroot, check_profile
from ..errors import DevcertError, UnsafeCARootError
from ..keys import check_key_type
from ..lifecycle import still_trusted
from .application import ca_app
from .options import JsonOption, examples
from .output import Failed, echo, print_json, warn
from .shared import print_ca_info


@ca_app.command(
    "init",
    epilog=examples(
        "devcert ca init",
        "devcert ca init --permit corp.example.dev --permit 100.64.0.0/10",
        "devcert ca init --force --key-type rsa",
    ),
)
def ca_init(
    key_type: Annotated[str, typer.Option("--key-type", help="ecdsa (P-256, default) or rsa (3072).", metavar="KEY_TYPE")] = "ecdsa",
    permit: Annotated[Optional[list[str]], typer.Option("--permit", help="Also permit this DNS name (and its subdomains) or CIDR range. Repeatable.", show_default=False, metavar="PERMIT")] = None,
    no_constraints: Annotated[bool, typer.Option("--no-constraints", help="Make a CA that can sign for any name (not recommended).")] = False,
    profile: Annotated[str, typer.Option("--profile", help="Name constraints: dns (default; every TLS stack accepts the leaves) or strict (also IP ranges, emails, URIs; Bun and Deno refuse some leaves).", metavar="PROFILE")] = "dns",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing CA (backed up in CAROOT/old/; stores that trust it keep trusting it until `devcert uninstall --stale`).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Create the local CA in CAROOT.

    By default the CA may only sign development DNS names (localhost, *.test, *.example,
    *.invalid, *.local, *.internal, *.home.arpa), so a leaked key cannot be used against
    real sites; IP addresses, emails and URIs are not constrained (every TLS stack accepts
    such leaves). --profile strict also limits IPs to private ranges and emails/URIs to the
    development names. --permit widens that; --no-constraints removes it.
    """
    check_key_type(key_type)
    check_profile(profile)
    if no_constraints and permit:
        raise Failed("--permit widens name constraints; it cannot be used with --no-constraints", code=2)
    folder = caroot()
    old = None
    if LocalCA.exists(folder):
        if not force:
            raise Failed(f"a CA already exists in {folder}; `devcert ca info` shows it, --force replaces it")
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
    print_ca_info(ca.info())
    echo("Run `devcert install` to make browsers and tools trust it.")

