"""The transport layer: UDP, TCP and TLS on Twisted, and RFC 3263 resolution.

Thin by design: protocols frame bytes and hand messages to
:class:`TransportManager`, whose decisions are the pure functions of
:mod:`b2bua.transport.routing`.  See ``b2bua/transport/README.md``.
"""

from .config import ListenerConfig, TLSConfig, TransportConfigError
from .contract import Receiver, Transport
from .manager import DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, TransportManager
from .resolver import Resolver
from .routing import (
    needs_congestion_control,
    response_destination,
    stamp_received,
    tls_server_name,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "ListenerConfig",
    "Receiver",
    "Resolver",
    "TLSConfig",
    "Transport",
    "TransportConfigError",
    "TransportManager",
    "needs_congestion_control",
    "response_destination",
    "stamp_received",
    "tls_server_name",
]
