"""``devcert ca info``: show the local CA."""

from __future__ import annotations

from ..ca import LocalCA
from .application import ca_app
from .messages import describe
from .options import JsonOption, examples
from .output import print_json
from .shared import print_ca_info


@ca_app.command("info", epilog=examples(
    "devcert ca info --json",
))
def ca_info(json_output: JsonOption = False) -> None:
    """Show the local CA: subject, SHA-256 fingerprint, validity, key type, constraints."""
    ca = LocalCA.load(require_key=False)
    info = ca.info()
    if ca.key_error is not None:  # why the key is unusable, with the CLI's fix
        info["key_problem"] = describe(ca.key_error)
    if json_output:
        print_json(info)
    else:
        print_ca_info(info)

