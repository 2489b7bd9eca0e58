"""Where devcert keeps its state: the CAROOT folder and the names of the files in it.

The lowest module that knows about CAROOT, so that ``ca``, ``inventory``, ``issue``,
``lifecycle`` and the trust stores agree on every name without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

CERT_FILE = "rootCA.pem"
KEY_FILE = "rootCA-key.pem"
#: CAROOT/pending holds the journals of multi-file writes (files.write_together) of recorded
#: state: the CA pair, leaves with their inventory entry. Every load finishes them first.
PENDING_DIR = "pending"
#: CAROOT/old/<sha256>/ keeps every CA that was replaced (rotate, init --force, import-mkcert).
OLD_DIR = "old"
#: A rotation in progress: its record, and the new CA until it replaces the old one (lifecycle.py).
ROTATION_FILE = "rotation.json"
NEXT_DIR = "next"
#: Certificates devcert manages itself (serve-wss, snippet).
LEAVES_DIR = "leaves"
INVENTORY_FILE = "inventory.json"


def caroot() -> Path:
    """The folder that holds the CA: ``$DEVCERT_CAROOT``, else the user data folder."""
    env = os.environ.get("DEVCERT_CAROOT")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs  # only needed when no folder is given: ~13 ms off every run that names its folder

    return Path(platformdirs.user_data_dir("devcert", appauthor=False)).absolute()
