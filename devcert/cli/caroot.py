"""``devcert caroot``: the folder that holds the local CA."""

from __future__ import annotations

from ..ca import CERT_FILE, LocalCA
from ..ca import caroot as where
from .application import app
from .options import JsonOption, examples
from .output import echo, print_json


@app.command(epilog=examples(
    'cp "$(devcert caroot)/rootCA.pem" ./ca.pem',
))
def caroot(json_output: JsonOption = False) -> None:
    """Print the folder that holds the local CA ($DEVCERT_CAROOT, else the user data folder)."""
    folder = where()
    if json_output:
        exists = LocalCA.exists(folder)
        print_json({"caroot": str(folder), "ca_exists": exists, "cert": str(folder / CERT_FILE) if exists else None})
    else:
        echo(str(folder))

