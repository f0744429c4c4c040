"""The back-to-back bridge: one :class:`Call` per call, owning its legs.

:class:`CallManager` is the only place that knows both sides of a call.  It gets
its sender (the transaction layer) and the network (resolution, local
addresses) handed in, and never imports the transport.
"""

from .call import Call, CallState
from .manager import BridgeSettings, CallManager
from .network import Network, Transactions
from .relay import HIDDEN, HeaderPolicy

__all__ = [
    "HIDDEN",
    "BridgeSettings",
    "Call",
    "CallManager",
    "CallState",
    "HeaderPolicy",
    "Network",
    "Transactions",
]
