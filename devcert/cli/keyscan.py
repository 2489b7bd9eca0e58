"""``python -m devcert.cli.keyscan FILE...``: the devcert-no-private-keys pre-commit hook.

Exit 1 and name each file that holds a private key (detection in :mod:`devcert.keyscan`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..keyscan import scan


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m devcert.cli.keyscan FILE...\n\nExit 1 and name each FILE that holds a private key.")
        return 0
    found = scan(args)
    for path, kind in found:
        print(f"{path}: {kind}", file=sys.stderr)
    if found:
        print(
            f"devcert: error: {len(found)} file(s) hold a private key; do not commit keys. Unstage with "
            f"`git rm --cached FILE` and add them to .gitignore (`devcert sync --gitignore` does that "
            f"for declared certificates).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
