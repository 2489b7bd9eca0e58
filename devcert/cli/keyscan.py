"""``python -m devcert.cli.keyscan FILE...``: the devcert-no-private-keys pre-commit hook.

Exit 1 and name each file that holds a private key, or that could not be scanned (too large,
unreadable): a file the hook has not read whole is refused, never passed. Detection in
:mod:`devcert.keyscan`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..keyscan import MAX_SCAN, scan


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m devcert.cli.keyscan FILE...\n\nExit 1 and name each FILE that holds a private key "
              f"(or that cannot be scanned: unreadable, or larger than {MAX_SCAN / 2**30:g} GiB).")
        return 0
    found = scan(args)
    keys = [f for f in found if not f.unscanned]
    for f in keys:
        print(f"{f.path}: {f.kind}", file=sys.stderr)
    if keys:
        print(
            f"devcert: error: {len(keys)} file(s) hold a private key; do not commit keys. Unstage with "
            f"`git rm --cached FILE` and add them to .gitignore (`devcert sync --gitignore` does that "
            f"for declared certificates).",
            file=sys.stderr,
        )
    for f in found:
        if f.unscanned:
            # Why it fails and the way out, on the file's one line: a file the hook has not read
            # whole may hold a key, so it is refused rather than passed.
            print(f"{f.path}: {f.kind}; not checked for private keys, so refused: keep it out of git "
                  f"(or, if you know it holds no key, `exclude:` it from devcert-no-private-keys in "
                  f".pre-commit-config.yaml)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
