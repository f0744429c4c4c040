"""Listener and TLS settings for the transport layer, and the error for bad ones.

The configuration loader builds these from the TOML file; the transport layer
never reads files other than the PEM files named here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

#: Transports a listener can serve.
LISTENER_TRANSPORTS = ("UDP", "TCP", "TLS")


class TransportConfigError(Exception):
    """A listener or TLS setting that cannot work (bad value, unreadable file).

    Raised at start-up, before any socket is opened; ``message`` names the file
    or setting and says what is wrong, ready to be shown to an operator.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """TLS settings of a listener, or of the connections we open.

    ``certificate`` is a PEM file holding our certificate, optionally followed by
    the intermediate certificates of its chain; ``private_key`` a PEM file with
    its unencrypted private key.  Both are required on a TLS listener; on the
    client side (``TransportManager(client_tls=...)``) they are the optional
    client certificate presented when a server asks for one (mutual TLS).

    ``ca_bundle`` is a PEM file of the CA certificates trusted to sign peers'
    certificates: servers we connect to and, with ``verify_client``, clients
    connecting to us.  ``None`` means the system's default trust store.

    ``verify_client`` makes a listener require a client certificate and verify
    its chain against ``ca_bundle`` (mutual TLS); connections without a valid
    one are refused during the handshake.
    """

    certificate: str | None = None
    private_key: str | None = None
    ca_bundle: str | None = None
    verify_client: bool = False


def _normalize_host(host: str, what: str) -> str:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise TransportConfigError(
            f"{what}: host {host!r} is not an IPv4 or IPv6 address "
            "(use 0.0.0.0 or :: to listen on every interface)"
        ) from None


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One socket to listen on.

    ``transport`` is ``"UDP"``, ``"TCP"`` or ``"TLS"`` (any case); ``host`` an
    IPv4 or IPv6 address to bind (``"0.0.0.0"`` / ``"::"`` for every interface;
    IPv6 with or without brackets); ``port`` 0 picks a free port.  ``tls`` is
    required for TLS listeners and ignored otherwise.

    ``advertised_host`` / ``advertised_port`` are what goes into Via sent-by and
    Contact for this listener when they differ from the bound address (NAT, a
    wildcard bind, a DNS name).  Without them a wildcard bind advertises the
    machine's primary address, found at start-up.

    Values are checked on construction; a bad one raises
    :class:`TransportConfigError`.
    """

    transport: str
    host: str
    port: int
    tls: TLSConfig | None = None
    advertised_host: str | None = None
    advertised_port: int | None = None

    def __post_init__(self) -> None:
        transport = self.transport.upper()
        what = f"{self.transport} listener {self.host}:{self.port}"
        if transport not in LISTENER_TRANSPORTS:
            raise TransportConfigError(
                f"{what}: transport must be one of {', '.join(LISTENER_TRANSPORTS)}"
            )
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise TransportConfigError(f"{what}: port must be an integer from 0 to 65535")
        if self.advertised_port is not None and not 0 < self.advertised_port <= 65535:
            raise TransportConfigError(f"{what}: advertised_port must be from 1 to 65535")
        if transport == "TLS":
            if self.tls is None:
                raise TransportConfigError(f"{what}: a TLS listener needs a [tls] section")
            if not self.tls.certificate or not self.tls.private_key:
                raise TransportConfigError(
                    f"{what}: a TLS listener needs both certificate and private_key"
                )
        object.__setattr__(self, "transport", transport)
        object.__setattr__(self, "host", _normalize_host(self.host, what))
        if self.advertised_host is not None and self.advertised_host.startswith("["):
            object.__setattr__(self, "advertised_host", self.advertised_host[1:-1])

    @property
    def is_ipv6(self) -> bool:
        """True when the listener binds an IPv6 address."""
        return ":" in self.host
