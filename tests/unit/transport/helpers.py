"""Fakes and builders shared by the transport tests (no sockets, no real reactor)."""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from b2bua.sip import Address, Origin, Request, Response, SIPParseError

_ports = itertools.count(40000)


def _address(kind: str, host: str, port: int) -> IPv4Address | IPv6Address:
    if ":" in host:
        return IPv6Address(kind, host, port)
    return IPv4Address(kind, host, port)


class FakeUDPPort:
    """A listening UDP port that records what is written to it."""

    def __init__(self, host: str, port: int, protocol: Any) -> None:
        self.host = host
        self.port = port or next(_ports)
        self.protocol = protocol
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.listening = True

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        if ":" in addr[0] and ":" not in self.host:
            raise ValueError("IPv4 port write() called with IPv6 address")
        self.written.append((data, addr))

    def getHost(self) -> IPv4Address | IPv6Address:
        return _address("UDP", self.host, self.port)

    def stopListening(self) -> None:
        self.listening = False

    def receive(self, data: bytes, host: str, port: int) -> None:
        """Deliver a datagram to the protocol as if it came from host:port."""
        self.protocol.datagramReceived(data, (host, port))


class FakeStreamPort:
    """A listening TCP/TLS port (records nothing; the test drives the factory)."""

    def __init__(self, host: str, port: int, factory: Any) -> None:
        self.host = host
        self.port = port or next(_ports)
        self.factory = factory
        self.listening = True

    def getHost(self) -> IPv4Address | IPv6Address:
        return _address("TCP", self.host, self.port)

    def stopListening(self) -> None:
        self.listening = False


class FakeReactor(MemoryReactorClock):
    """MemoryReactorClock plus UDP ports, ports that know their interface, resolve()."""

    def __init__(self) -> None:
        super().__init__()
        self.udp_ports: list[FakeUDPPort] = []
        self.stream_ports: list[FakeStreamPort] = []
        self.names: dict[str, str] = {}
        self.v6only: list[int] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> FakeUDPPort:
        p = FakeUDPPort(interface or "0.0.0.0", port, protocol)
        protocol.transport = p
        self.udp_ports.append(p)
        return p

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> FakeStreamPort:
        super().listenTCP(port, factory, backlog, interface)
        p = FakeStreamPort(interface or "0.0.0.0", port, factory)
        self.stream_ports.append(p)
        return p

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = "") -> FakeStreamPort:
        super().listenSSL(port, factory, contextFactory, backlog, interface)
        p = FakeStreamPort(interface or "0.0.0.0", port, factory)
        self.stream_ports.append(p)
        return p

    def adoptDatagramPort(self, fileDescriptor: int, addressFamily: int, protocol: Any, maxPacketSize: int = 8192) -> FakeUDPPort:
        with socket.fromfd(fileDescriptor, addressFamily, socket.SOCK_DGRAM) as sock:
            host, port = sock.getsockname()[:2]
            self.v6only.append(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        p = FakeUDPPort(host, port, protocol)
        protocol.transport = p
        self.udp_ports.append(p)
        return p

    def adoptStreamPort(self, fileDescriptor: int, addressFamily: int, factory: Any) -> FakeStreamPort:
        with socket.fromfd(fileDescriptor, addressFamily, socket.SOCK_STREAM) as sock:
            host, port = sock.getsockname()[:2]
            self.v6only.append(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        p = FakeStreamPort(host, port, factory)
        self.stream_ports.append(p)
        return p

    def resolve(self, name: str, timeout: Any = (1, 3, 11, 45)) -> defer.Deferred[str]:
        if name in self.names:
            return defer.succeed(self.names[name])
        return defer.fail(OSError(f"unknown host {name}"))

    def udp(self, host: str | None = None) -> FakeUDPPort:
        """The (first) UDP port bound to host."""
        return next(p for p in self.udp_ports if host is None or p.host == host)


@dataclass
class Receiver:
    """Records every call the transport makes upward."""

    messages: list[tuple[Request | Response, Origin]] = field(default_factory=list)
    errors: list[tuple[SIPParseError, bytes, Origin]] = field(default_factory=list)
    failures: list[tuple[Request | Response, Address, str]] = field(default_factory=list)
    on_message: Any = None
    on_error: Any = None

    def message_received(self, message: Request | Response, origin: Origin) -> None:
        self.messages.append((message, origin))
        if self.on_message is not None:
            self.on_message(message, origin)

    def parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        self.errors.append((error, data, origin))
        if self.on_error is not None:
            self.on_error(error, data, origin)

    def transport_error(self, message: Request | Response, destination: Address, reason: str) -> None:
        self.failures.append((message, destination, reason))


def connect_inbound(
    factory: Any, peer: tuple[str, int], local: tuple[str, int] = ("127.0.0.1", 5060)
) -> tuple[Any, StringTransport]:
    """Make the factory's protocol for a connection from ``peer`` over a StringTransport."""
    proto = factory.buildProtocol(_address("TCP", *peer))
    transport = StringTransport(hostAddress=_address("TCP", *local), peerAddress=_address("TCP", *peer))
    proto.makeConnection(transport)
    return proto, transport


def complete_outbound(reactor: FakeReactor, index: int = -1, *, ssl: bool = False, peer: tuple[str, int] | None = None) -> tuple[Any, StringTransport]:
    """Let the index-th recorded outbound connection succeed over a StringTransport."""
    clients = reactor.sslClients if ssl else reactor.tcpClients
    host, port, factory = clients[index][:3]
    peer = peer or (host, port)
    proto = factory.buildProtocol(_address("TCP", *peer))
    transport = StringTransport(hostAddress=_address("TCP", "127.0.0.1", 50000), peerAddress=_address("TCP", *peer))
    proto.makeConnection(transport)
    return proto, transport


def sip_request(
    method: str = "OPTIONS",
    *,
    uri: str = "sip:bob@192.0.2.10",
    via: str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1",
    extra: tuple[str, ...] = (),
    body: bytes = b"",
    call_id: str = "call-1@192.0.2.1",
) -> bytes:
    """The bytes of a minimal valid request."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        "From: <sip:alice@192.0.2.1>;tag=a1",
        "To: <sip:bob@192.0.2.10>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        *extra,
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sip_response(status: int = 200, *, via: str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1", method: str = "OPTIONS") -> bytes:
    """The bytes of a minimal valid response."""
    lines = [
        f"SIP/2.0 {status} OK",
        f"Via: {via}",
        "From: <sip:alice@192.0.2.1>;tag=a1",
        "To: <sip:bob@192.0.2.10>;tag=b1",
        "Call-ID: call-1@192.0.2.1",
        f"CSeq: 1 {method}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
