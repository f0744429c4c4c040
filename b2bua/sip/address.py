"""Network addresses as the SIP layers see them: transport, host, port."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

#: Transports that deliver reliably (no retransmissions, RFC 3261 17.1.1.2).
RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "WS", "WSS"})
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "SCTP": 5060, "WS": 80, "WSS": 443}


@functools.lru_cache(maxsize=4096)
def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (IPv6 with or without brackets), False for names.

    Cached (bounded): ``ipaddress`` parsing costs microseconds, and the transport
    and the bridge ask this of the same few hosts for every message they send.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Address:
    """A transport endpoint.  ``host`` is an IP literal (IPv6 without brackets) or a name."""

    transport: str  # "UDP", "TCP" or "TLS"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """True for stream transports (TCP, TLS)."""
        return self.transport in RELIABLE_TRANSPORTS

    @property
    def host_for_uri(self) -> str:
        """The host as written in a URI or Via (IPv6 in brackets)."""
        return f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host_for_uri}:{self.port}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a received message came from and which listener got it.

    ``connection`` identifies the TCP/TLS connection (None for UDP), so responses
    go back over the connection the request arrived on (RFC 3261 18.2.2).
    """

    peer: Address
    local: Address
    connection: int | None = None
