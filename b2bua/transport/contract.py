"""The two typing Protocols between the transport layer and the layer above.

:class:`Transport` is what the transaction layer calls (the
:class:`~b2bua.transport.manager.TransportManager` implements it);
:class:`Receiver` is what the transport layer calls back, given at construction.
"""

from __future__ import annotations

from typing import Protocol

from b2bua.sip import Address, Origin, Request, Response, SIPParseError


class Transport(Protocol):
    """Sends messages; what the transaction layer holds."""

    def send_request(self, request: Request, destination: Address) -> None:
        """Send a request to ``destination`` (failures come back as transport_error)."""

    def send_response(self, response: Response, origin: Origin) -> None:
        """Send a response per RFC 3261 18.2.2 for a request that came from ``origin``."""


class Receiver(Protocol):
    """Gets what the transport layer received; implemented by the core.

    Every call comes from the reactor thread, never re-entrantly from inside a
    ``send_request`` / ``send_response`` call.
    """

    def message_received(self, message: Request | Response, origin: Origin) -> None:
        """A well-framed message; requests already carry received/rport (18.2.1)."""

    def parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        """Bytes that are not a usable message.

        ``error`` is a :class:`~b2bua.sip.SIPParseError` (``.status`` is the code
        to answer with when ``data`` starts with a readable request line and Via).
        ``data`` is the whole datagram for UDP; for TCP/TLS it is the unparsed
        rest of the stream from the failing message on, and the connection is
        closed right after this call returns, once whatever was sent on it from
        inside the call (the 4xx answer, via ``send_response(resp, origin)``)
        has been written.  A message that framed but whose top Via is malformed
        is also reported here (``data`` is then the message re-serialized) and
        the connection stays open.
        """

    def transport_error(
        self, message: Request | Response, destination: Address, reason: str
    ) -> None:
        """``message`` could not be sent to ``destination``: connect failure,
        connection lost before it was written, TLS handshake or certificate
        verification failure, no listener for the address family, UDP send error.
        """


__all__ = ["Receiver", "Transport"]
