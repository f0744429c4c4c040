"""Thin Twisted protocols: they frame bytes and hand messages to the manager.

:class:`SIPDatagramProtocol` serves one UDP listener; :class:`SIPStreamProtocol`
is one TCP or TLS connection (inbound or outbound) and doubles as the record of
that connection in the manager's tables (state, send queue, idle timer).  Every
decision is taken by the :class:`~b2bua.transport.manager.TransportManager`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.internet import protocol
from twisted.internet.interfaces import IHandshakeListener
from twisted.python.failure import Failure
from zope.interface import implementer

from b2bua.sip import Address, FramingError, Origin, Request, Response, StreamFramer

if TYPE_CHECKING:
    from .manager import TransportManager, _Listener


class DelayedCall(Protocol):
    """What we use of ``IDelayedCall``."""

    def active(self) -> bool:
        """True until the call ran or was cancelled."""

    def cancel(self) -> None:
        """Stop the call from running."""

    def reset(self, secondsFromNow: float) -> None:
        """Run the call ``secondsFromNow`` seconds from now instead."""


class StreamTransport(Protocol):
    """What we use of a TCP/TLS ``ITransport``."""

    def write(self, data: bytes) -> None:
        """Queue bytes for sending."""

    def loseConnection(self) -> None:
        """Close after the queued bytes are written."""

    def abortConnection(self) -> None:
        """Close now, dropping queued bytes."""

    def getPeer(self) -> Any:
        """The remote address (``.host``, ``.port``)."""

    def getHost(self) -> Any:
        """The local address (``.host``, ``.port``)."""


class ConnState(enum.Enum):
    """Life of a stream connection."""

    CONNECTING = "connecting"  # outbound, TCP connect or TLS handshake under way
    READY = "ready"  # messages can be written
    CLOSING = "closing"  # close requested (idle, parse error, stop); no new messages
    CLOSED = "closed"


#: Queued or in-flight message: (wire bytes, message, destination as given by the caller).
Pending = tuple[bytes, "Request | Response", Address]
#: Messages written on a fresh outbound TLS connection before the peer sent anything.
MAX_UNCONFIRMED = 16


class SIPDatagramProtocol(protocol.DatagramProtocol):
    """One UDP listener: every datagram goes to the manager as it is."""

    noisy = False

    def __init__(self, manager: TransportManager, listener: _Listener) -> None:
        self._manager = manager
        self._listener = listener

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """Hand the datagram and its source ``(host, port)`` to the manager."""
        self._manager.datagram_received(self._listener, datagram, addr)


@implementer(IHandshakeListener)
class SIPStreamProtocol(protocol.Protocol):
    """One TCP or TLS connection: frames the stream, answers CRLF pings.

    ``connection_id`` is what :class:`~b2bua.sip.Origin` carries as
    ``connection``.  For outbound connections ``destination`` is where we were
    asked to connect and ``server_name`` the identity its TLS certificate was
    checked against.
    """

    def __init__(
        self,
        manager: TransportManager,
        transport_name: str,
        connection_id: int,
        *,
        outbound: bool,
        listener: _Listener | None = None,
        destination: Address | None = None,
        server_name: str | None = None,
    ) -> None:
        self.manager = manager
        self.transport_name = transport_name
        self.id = connection_id
        self.outbound = outbound
        self.listener = listener
        self.destination = destination
        self.server_name = server_name
        self.state = ConnState.CONNECTING
        self.framer = StreamFramer(manager.limits)
        self.queue: list[Pending] = []
        self.unconfirmed: list[Pending] | None = [] if transport_name == "TLS" else None
        self.peer: Address | None = None
        self.origin: Origin | None = None
        self.keys: list[tuple[Address, str | None]] = []
        self.timer: DelayedCall | None = None
        self.connector: Any = None
        self.close_reason: str | None = None
        self.closed_waiters: list[Any] = []
        self._pings = 0

    @property
    def stream(self) -> StreamTransport:
        """The Twisted transport, typed for what we use of it."""
        return cast(StreamTransport, self.transport)

    def connectionMade(self) -> None:
        """Register with the manager (TCP is ready now, TLS after the handshake)."""
        self.manager.connection_made(self)

    def handshakeCompleted(self) -> None:
        """TLS handshake done (and peer verified): queued messages can go."""
        if self.state is ConnState.CONNECTING:
            self.manager.connection_ready(self)

    def dataReceived(self, data: bytes) -> None:
        """Frame the bytes; answer pings; hand over messages or the framing error."""
        if self.state is ConnState.CLOSING or self.state is ConnState.CLOSED:
            return
        if self.unconfirmed is not None:
            self.unconfirmed = None  # the peer talks to us: the handshake was accepted
        framer = self.framer
        try:
            messages = framer.feed(data)
        except FramingError as error:
            if error.completed:
                self.manager.stream_received(self, error.completed)
            self.manager.stream_parse_error(self, error, error.data.lstrip(b"\r\n"))
            return
        pings = framer.keepalives_seen - self._pings
        if pings:
            self._pings = framer.keepalives_seen
            self.stream.write(b"\r\n" * pings)  # RFC 5626 3.5.1: one CRLF pong per ping
        self.manager.stream_received(self, messages)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        """Tell the manager; it reports whatever was still waiting to be sent."""
        self.manager.connection_lost(self, reason)

    def __repr__(self) -> str:
        where = self.peer or self.destination
        return f"<SIPStreamProtocol #{self.id} {self.transport_name} {where} {self.state.value}>"


class OutboundFactory(protocol.ClientFactory):
    """Builds the one pre-made protocol of an outbound connection attempt."""

    noisy = False

    def __init__(self, connection: SIPStreamProtocol) -> None:
        self.connection = connection

    def buildProtocol(self, addr: Any) -> SIPStreamProtocol:
        """The connection record made before connecting."""
        self.connection.factory = self
        return self.connection

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        """The connect attempt failed: report the queued messages."""
        self.connection.manager.connect_failed(self.connection, reason)


class InboundFactory(protocol.Factory):
    """Builds a :class:`SIPStreamProtocol` for each connection to a TCP/TLS listener."""

    noisy = False

    def __init__(self, manager: TransportManager, listener: _Listener) -> None:
        self.manager = manager
        self.listener = listener

    def buildProtocol(self, addr: Any) -> SIPStreamProtocol:
        """A new inbound connection record."""
        conn = SIPStreamProtocol(
            self.manager,
            self.listener.config.transport,
            self.manager.next_connection_id(),
            outbound=False,
            listener=self.listener,
        )
        conn.factory = self
        return conn
