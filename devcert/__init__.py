"""devcert: locally trusted development certificates, from one command or from Python.

    from devcert import LocalCA
    ca = LocalCA.ephemeral()              # or LocalCA.load_or_create() for the CA in CAROOT
    leaf = ca.issue("localhost", "127.0.0.1")
    server_ctx = leaf.server_context()
    client_ctx = ca.client_context()
"""

from .ca import Constraints, LocalCA, caroot
from .errors import DevcertError
from .issue import Leaf

__version__ = "0.1.0"
__all__ = ["Constraints", "DevcertError", "Leaf", "LocalCA", "__version__", "caroot"]
