"""Advice the core returns as a value (a doctor row's fix, a store's hint), worded by its reader.

The core knows what remedies a problem ("install the CA", "replace the CA"), not how a
command line spells it: CLI flag names and command lines live only in ``devcert/cli/``. So a
piece of advice is an :class:`Advice`: a sentence whose ``{remedy}`` placeholders name
remedies, plus the facts they need (``fields``). ``str(advice)`` words it neutrally for the
Python API; ``devcert.cli.messages.word`` words it with the CLI's commands, word for word what
the CLI printed before.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import NamedTuple

#: The neutral words of each remedy (the Python API's); the CLI's are ``cli.messages.REMEDIES``.
NEUTRAL: dict[str, str] = {
    "init_ca": "create a CA",
    "replace_ca": "replace the CA (force)",
    "rotate_ca": "rotate the CA",
    "install": "install the CA",
    "install_store": "install the CA in the {store} store",
    "install_system": "install the CA in the system store",
    "uninstall_stale": "uninstall the stale CAs",
    "env": "export the trust variables of the combined bundle",
    "caroot": "the CAROOT folder",
}


class Advice(NamedTuple):
    """``template`` with ``{remedy}`` placeholders (keys of :data:`NEUTRAL`) and ``{field}`` ones."""

    template: str
    fields: Mapping[str, str] = {}

    def worded(self, remedies: Mapping[str, str]) -> str:
        """The sentence with each remedy in ``remedies``' words (which may use the fields too)."""
        named = {field for _, field, _, _ in Formatter().parse(self.template) if field}
        # Only the remedies the sentence names: each may need fields that only its sentences carry.
        values = {**{k: remedies[k].format_map(self.fields) for k in named if k in remedies}, **self.fields}
        return self.template.format_map(values)

    def __str__(self) -> str:
        return self.worded(NEUTRAL)
