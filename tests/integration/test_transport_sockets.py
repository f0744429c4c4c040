"""The transport layer on real sockets (loopback, ephemeral ports), with the real reactor.

Written as ``twisted.trial.unittest.TestCase`` classes: pytest runs them, and
trial spins the global reactor until each test's Deferred fires (and fails a
test that leaves sockets or delayed calls behind).  Certificates are generated
per run into a temporary directory.
"""

from __future__ import annotations

import socket
import tempfile
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

from b2bua.sip import Address, Origin, Request, Response, SIPParseError, parse_message, response_for
from b2bua.transport import ListenerConfig, TLSConfig, TransportManager
from tests.conftest import free_port
from tests.unit.transport.certs import PKI, make_pki
from tests.unit.transport.helpers import sip_request

_PKI: PKI | None = None


def pki() -> PKI:
    global _PKI
    if _PKI is None:
        _PKI = make_pki(tempfile.mkdtemp(prefix="b2bua-transport-pki-"))
    return _PKI


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Peer:
    """A TransportManager plus a receiver that answers every request with 200."""

    def __init__(self, listeners: list[ListenerConfig], answer: bool = True, **kwargs: Any) -> None:
        self.messages: list[tuple[Request | Response, Origin]] = []
        self.errors: list[tuple[SIPParseError, bytes, Origin]] = []
        self.failures: list[tuple[Request | Response, Address, str]] = []
        self.answer = answer
        self._waiting: list[tuple[str, defer.Deferred[Any]]] = []
        self.manager = TransportManager(reactor, self, listeners, **kwargs)

    # Receiver
    def message_received(self, message: Request | Response, origin: Origin) -> None:
        self.messages.append((message, origin))
        if isinstance(message, Request) and self.answer:
            self.manager.send_response(response_for(message, 200), origin)
        self._fire("message", (message, origin))

    def parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        self.errors.append((error, data, origin))
        self._fire("error", (error, data, origin))

    def transport_error(self, message: Request | Response, destination: Address, reason: str) -> None:
        self.failures.append((message, destination, reason))
        self._fire("failure", (message, destination, reason))

    def _fire(self, kind: str, value: Any) -> None:
        for item in list(self._waiting):
            if item[0] == kind:
                self._waiting.remove(item)
                item[1].callback(value)
                return

    def next(self, kind: str) -> defer.Deferred[Any]:
        """A Deferred for the next 'message', 'error' or 'failure'."""
        d: defer.Deferred[Any] = defer.Deferred()
        self._waiting.append((kind, d))
        return d

    def address(self, transport: str, family: int = socket.AF_INET) -> Address:
        return self.manager.local_address(transport, family)


def options(
    transport: str, target: Address, *, uri: str | None = None, via_host: str = "127.0.0.1", via_port: int = 5060, body: bytes = b""
) -> Request:
    host = f"[{target.host}]" if ":" in target.host else target.host
    request = parse_message(
        sip_request(
            "OPTIONS",
            uri=uri or f"sip:bob@{host}:{target.port}",
            via=f"SIP/2.0/{transport} {via_host}:{via_port};rport;branch=z9hG4bK-{id(target)}",
            body=body,
        )
    )
    assert isinstance(request, Request)
    return request


class TransportTestCase(unittest.TestCase):
    timeout = 15

    def peer(self, *listeners: ListenerConfig, **kwargs: Any) -> Peer:
        peer = Peer(list(listeners), **kwargs)
        peer.manager.startService()
        self.addCleanup(peer.manager.stopService)
        return peer


class UDPTests(TransportTestCase):
    @defer.inlineCallbacks
    def round_trip(self, host: str, family: int) -> Any:
        server = self.peer(ListenerConfig("UDP", host, 0))
        client = self.peer(ListenerConfig("UDP", host, 0))
        target = server.address("UDP", family)
        local = client.address("UDP", family)
        request = options("UDP", target, via_host=local.host_for_uri, via_port=local.port)
        got_request = server.next("message")
        got_response = client.next("message")
        client.manager.send_request(request, target)
        received, origin = yield got_request
        self.assertEqual(origin.peer, Address("UDP", local.host, local.port))
        self.assertEqual(received.top_via.rport, local.port)
        response, _ = yield got_response
        self.assertIsInstance(response, Response)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.branch, request.branch)

    def test_ipv4_round_trip(self) -> Any:
        return self.round_trip("127.0.0.1", socket.AF_INET)

    def test_ipv6_round_trip(self) -> Any:
        if not ipv6_available():
            raise unittest.SkipTest("no IPv6 loopback")
        return self.round_trip("::1", socket.AF_INET6)

    @defer.inlineCallbacks
    def test_malformed_datagram_reaches_parse_error(self) -> Any:
        server = self.peer(ListenerConfig("UDP", "127.0.0.1", 0))
        target = server.address("UDP")
        got = server.next("error")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.sendto(b"OPTIONS sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", (target.host, target.port))
        error, data, origin = yield got
        self.assertEqual(error.status, 400)
        self.assertTrue(data.startswith(b"OPTIONS"))
        self.assertEqual(origin.peer.port, sock.getsockname()[1])

    @defer.inlineCallbacks
    def test_big_request_switches_to_tcp(self) -> Any:
        port = free_port("both")
        server = self.peer(ListenerConfig("UDP", "127.0.0.1", port), ListenerConfig("TCP", "127.0.0.1", port))
        client = self.peer(ListenerConfig("UDP", "127.0.0.1", 0), ListenerConfig("TCP", "127.0.0.1", 0))
        target = server.address("UDP")
        local = client.address("UDP")
        request = options("UDP", target, via_port=local.port, body=b"x" * 2000)
        got_request = server.next("message")
        got_response = client.next("message")
        client.manager.send_request(request, target)
        received, origin = yield got_request
        self.assertEqual(origin.peer.transport, "TCP")
        self.assertEqual(received.top_via.transport, "TCP")
        self.assertEqual(received.top_via.port, client.address("TCP").port)
        response, _ = yield got_response
        self.assertEqual(response.status, 200)


class TCPTests(TransportTestCase):
    @defer.inlineCallbacks
    def test_round_trip_and_reuse(self) -> Any:
        server = self.peer(ListenerConfig("TCP", "127.0.0.1", 0))
        client = self.peer(ListenerConfig("TCP", "127.0.0.1", 0))
        target = server.address("TCP")
        for _ in range(2):
            got_request = server.next("message")
            got_response = client.next("message")
            client.manager.send_request(options("TCP", target, via_port=client.address("TCP").port), target)
            _, origin = yield got_request
            self.assertIsNotNone(origin.connection)
            response, _ = yield got_response
            self.assertEqual(response.status, 200)
        self.assertEqual(len(client.manager.connections), 1)
        self.assertEqual(len(server.manager.connections), 1)

    @defer.inlineCallbacks
    def test_ipv6_round_trip(self) -> Any:
        if not ipv6_available():
            raise unittest.SkipTest("no IPv6 loopback")
        server = self.peer(ListenerConfig("TCP", "::1", 0))
        client = self.peer(ListenerConfig("TCP", "::1", 0))
        target = server.address("TCP", socket.AF_INET6)
        got_response = client.next("message")
        client.manager.send_request(options("TCP", target, via_host="[::1]"), target)
        response, _ = yield got_response
        self.assertEqual(response.status, 200)

    @defer.inlineCallbacks
    def test_connection_refused_is_a_transport_error(self) -> Any:
        client = self.peer(ListenerConfig("TCP", "127.0.0.1", 0))
        target = Address("TCP", "127.0.0.1", free_port("tcp"))
        request = options("TCP", target)
        got = client.next("failure")
        client.manager.send_request(request, target)
        message, destination, reason = yield got
        self.assertIs(message, request)
        self.assertEqual(destination, target)
        self.assertIn("refused", reason.lower())

    @defer.inlineCallbacks
    def test_crlf_keepalive_and_framing_error_close(self) -> Any:
        server = self.peer(ListenerConfig("TCP", "127.0.0.1", 0))
        target = server.address("TCP")

        class Raw(protocol.Protocol):
            def __init__(self) -> None:
                self.data = b""
                self.lost: defer.Deferred[None] = defer.Deferred()
                self.got: defer.Deferred[None] | None = None

            def dataReceived(self, data: bytes) -> None:
                self.data += data
                if self.got is not None:
                    d, self.got = self.got, None
                    d.callback(None)

            def connectionLost(self, reason: Any = None) -> None:
                self.lost.callback(None)

        raw = Raw()
        yield connectProtocol(TCP4ClientEndpoint(reactor, target.host, target.port), raw)
        raw.got = defer.Deferred()
        raw.transport.write(b"\r\n\r\n")  # type: ignore[union-attr]
        yield raw.got
        self.assertEqual(raw.data, b"\r\n")
        got_error = server.next("error")
        raw.transport.write(b"NOT SIP AT ALL\r\n\r\n")  # type: ignore[union-attr]
        _error, data, _ = yield got_error
        self.assertEqual(data, b"NOT SIP AT ALL\r\n\r\n")
        yield raw.lost  # the server closed the connection


class TLSTests(TransportTestCase):
    def server_tls(self, **kwargs: Any) -> ListenerConfig:
        p = pki()
        tls = TLSConfig(certificate=kwargs.pop("cert", p.server_chain), private_key=kwargs.pop("key", p.server_key), **kwargs)
        return ListenerConfig("TLS", "127.0.0.1", 0, tls)

    def client(self, **kwargs: Any) -> Peer:
        return self.peer(ListenerConfig("UDP", "127.0.0.1", 0), client_tls=TLSConfig(ca_bundle=pki().ca, **kwargs))

    @defer.inlineCallbacks
    def test_round_trip_verifies_hostname(self) -> Any:
        server = self.peer(self.server_tls())
        client = self.client()
        target = server.address("TLS")
        got_request = server.next("message")
        got_response = client.next("message")
        client.manager.send_request(options("TLS", target, uri="sips:bob@localhost"), target)
        _, origin = yield got_request
        self.assertEqual(origin.peer.transport, "TLS")
        response, _ = yield got_response
        self.assertEqual(response.status, 200)
        [conn] = client.manager.connections
        self.assertEqual(conn.server_name, "localhost")

    @defer.inlineCallbacks
    def test_ip_address_identity(self) -> Any:
        server = self.peer(self.server_tls())
        client = self.client()
        target = server.address("TLS")
        got_response = client.next("message")
        client.manager.send_request(options("TLS", target, uri=f"sips:bob@127.0.0.1:{target.port}"), target)
        response, _ = yield got_response
        self.assertEqual(response.status, 200)

    @defer.inlineCallbacks
    def test_hostname_mismatch_is_refused(self) -> Any:
        server = self.peer(self.server_tls())
        client = self.client()
        target = server.address("TLS")
        request = options("TLS", target, uri="sips:bob@wrong.example.com")
        got = client.next("failure")
        client.manager.send_request(request, target)
        message, _destination, reason = yield got
        self.assertIs(message, request)
        self.assertIn("TLS", reason)
        self.assertEqual(server.messages, [])

    @defer.inlineCallbacks
    def test_untrusted_ca_is_refused(self) -> Any:
        p = pki()
        server = self.peer(self.server_tls(cert=p.other_cert, key=p.other_key))
        client = self.client()
        target = server.address("TLS")
        got = client.next("failure")
        client.manager.send_request(options("TLS", target, uri="sips:bob@localhost"), target)
        _, _, reason = yield got
        self.assertIn("TLS", reason)
        self.assertEqual(server.messages, [])

    @defer.inlineCallbacks
    def test_mutual_tls_refuses_a_client_without_certificate(self) -> Any:
        server = self.peer(self.server_tls(ca_bundle=pki().ca, verify_client=True))
        client = self.client()
        target = server.address("TLS")
        request = options("TLS", target, uri="sips:bob@localhost")
        got = client.next("failure")
        client.manager.send_request(request, target)
        message, _, reason = yield got
        self.assertIs(message, request)
        self.assertIn("TLS", reason)
        self.assertEqual(server.messages, [])

    @defer.inlineCallbacks
    def test_mutual_tls_accepts_a_client_certificate(self) -> Any:
        p = pki()
        server = self.peer(self.server_tls(ca_bundle=p.ca, verify_client=True))
        client = self.client(certificate=p.client_cert, private_key=p.client_key)
        target = server.address("TLS")
        got_response = client.next("message")
        client.manager.send_request(options("TLS", target, uri="sips:bob@localhost"), target)
        response, _ = yield got_response
        self.assertEqual(response.status, 200)


class DualStackTests(TransportTestCase):
    """``0.0.0.0`` and ``::`` on the same port (the ``::`` socket is IPv6-only)."""

    @defer.inlineCallbacks
    def test_udp_tcp_and_tls_on_both_wildcards(self) -> Any:
        if not ipv6_available():
            raise unittest.SkipTest("no IPv6 loopback")
        p = pki()
        tls = TLSConfig(certificate=p.server_chain, private_key=p.server_key)
        port, tls_port = free_port("both"), free_port("tcp")
        server = self.peer(
            ListenerConfig("UDP", "0.0.0.0", port),
            ListenerConfig("UDP", "::", port),
            ListenerConfig("TCP", "0.0.0.0", port),
            ListenerConfig("TCP", "::", port),
            ListenerConfig("TLS", "::", tls_port, tls),
        )
        client = self.peer(
            ListenerConfig("UDP", "127.0.0.1", 0),
            ListenerConfig("UDP", "::1", 0),
            client_tls=TLSConfig(ca_bundle=p.ca),
        )
        targets = [
            (Address("UDP", "127.0.0.1", port), "127.0.0.1", None),
            (Address("UDP", "::1", port), "[::1]", None),
            (Address("TCP", "127.0.0.1", port), "127.0.0.1", None),
            (Address("TCP", "::1", port), "[::1]", None),
            (Address("TLS", "::1", tls_port), "[::1]", "sips:bob@[::1]"),
        ]
        for target, via_host, uri in targets:
            got_request = server.next("message")
            got_response = client.next("message")
            local_port = client.address("UDP", socket.AF_INET6 if ":" in target.host else socket.AF_INET).port
            client.manager.send_request(
                options(target.transport, target, via_host=via_host, via_port=local_port, uri=uri), target
            )
            _, origin = yield got_request
            self.assertEqual(origin.peer.host, target.host)
            response, _ = yield got_response
            self.assertEqual(response.status, 200)
