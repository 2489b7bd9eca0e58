"""What the benchmark scripts share (they import it from their own folder, scripts/)."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(drop: tuple[str, ...], **extra: str) -> dict[str, str]:
    """This process's environment without the variables ``drop`` names (those that change which
    CAs a client trusts), plus ``extra``."""
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e.update(extra)
    return e
