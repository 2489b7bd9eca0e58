"""``devcert env``: the exports that make this shell's clients trust the CA."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from ..env import (
    ENV_NAMES,
    check_shell,
    ensure_bundle,
    env_vars,
    export_lines,
    find_node,
    system_store_has,
    unset_lines,
)
from .application import app
from .messages import word
from .options import JsonOption, examples
from .output import echo, print_json
from .shared import load_ca_for_issuing


@app.command(
    epilog=examples(
        'eval "$(devcert env)"                         # bash, zsh, sh',
        "devcert env --shell fish | source",
        "devcert env --shell powershell | Invoke-Expression",
        'eval "$(devcert env --unset)"                 # undo',
    )
)
def env(
    shell: Annotated[str, typer.Option("--shell", help="sh (bash, zsh), fish or powershell.", metavar="SHELL")] = "sh",
    json_output: JsonOption = False,
    unset: Annotated[bool, typer.Option("--unset", help="Print the lines that undo the exports.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No comment lines, only the exports.")] = False,
) -> None:
    """Print the exports that make this shell's Python, Node, curl, Deno, git ... trust the CA.

    Writes CAROOT/ca-bundle.pem: the system's CA bundle (certifi's if there is none) plus the
    local CA, refreshed when either changes, so clients that read a bundle instead of the OS
    store (requests, pip, botocore, ...) trust the CA and still trust public sites. Node gets
    the CA alone in NODE_EXTRA_CA_CERTS, which it adds to its own roots; a Node 22.15+ / 23.9+
    on PATH gets NODE_USE_SYSTEM_CA=1 instead once the OS store holds the CA (devcert install).
    """
    check_shell(shell)
    if unset:
        if json_output:
            print_json({"unset": list(ENV_NAMES)})
        else:
            for line in unset_lines(ENV_NAMES, shell):
                echo(line)
        return

    ca = load_ca_for_issuing()
    bundle = ensure_bundle(ca)
    node = find_node()
    found = env_vars(ca, bundle.path, node, system_has_ca=node is not None and node.reads_system_ca
                     and system_store_has(ca))
    variables = [replace(v, why=word(v.why)) for v in found]  # each reason in the CLI's words
    if json_output:
        print_json({
            "bundle": str(bundle.path),
            "ca": str(ca.cert_path),
            "source": str(bundle.source),
            "source_kind": bundle.source_kind,
            "action": bundle.action,
            "variables": {v.name: v.value for v in variables},
            "reasons": {v.name: v.why for v in variables},
        })
        return
    if not quiet:
        echo(f"# devcert env: trust the devcert CA ({ca.common_name}) in addition to the public roots of")
        echo(f"# {bundle.source} ({bundle.source_kind}), combined in {bundle.path}.")
    for line in export_lines(variables, shell, comments=not quiet):
        echo(line)

