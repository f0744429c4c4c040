"""TransportManager over TCP/TLS with MemoryReactorClock and StringTransport.

Framing, keep-alives, parse errors, connection reuse (ours and the peer's),
queueing while connecting, connect failures, idle and connect timeouts, and
routing responses over the request's connection or a new one.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.python.failure import Failure

from b2bua.sip import Address, Limits, Origin, Request, Response, parse_message, response_for
from b2bua.transport import ListenerConfig, TransportManager
from b2bua.transport.protocols import ConnState
from tests.unit.transport.helpers import (
    FakeReactor,
    Receiver,
    complete_outbound,
    connect_inbound,
    sip_request,
    sip_response,
)

TCP = ListenerConfig("TCP", "192.0.2.99", 5060)
UDP = ListenerConfig("UDP", "192.0.2.99", 5060)
PEER = ("203.0.113.7", 40000)


def make(**kwargs: Any) -> tuple[TransportManager, FakeReactor, Receiver]:
    reactor = FakeReactor()
    receiver = Receiver()
    manager = TransportManager(reactor, receiver, [UDP, TCP], **kwargs)
    manager.startService()
    return manager, reactor, receiver


def inbound(manager: TransportManager, reactor: FakeReactor, peer: tuple[str, int] = PEER) -> tuple[Any, Any]:
    factory = reactor.stream_ports[0].factory
    return connect_inbound(factory, peer, ("192.0.2.99", 5060))


def request(via: str = "SIP/2.0/TCP 10.0.0.1:5060;rport;branch=z9hG4bK-1", **kw: Any) -> Request:
    message = parse_message(sip_request(via=via, **kw))
    assert isinstance(message, Request)
    return message


# -- receiving ---------------------------------------------------------------------


def test_inbound_messages_are_framed_and_stamped() -> None:
    manager, reactor, receiver = make()
    proto, transport = inbound(manager, reactor)
    one = sip_request(via="SIP/2.0/TCP 10.0.0.1:5060;rport;branch=z9hG4bK-1")
    two = sip_request(via="SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-2", call_id="c2", body=b"hello")
    data = one + two
    proto.dataReceived(data[:10])
    proto.dataReceived(data[10:len(one) + 5])
    assert len(receiver.messages) == 1
    proto.dataReceived(data[len(one) + 5:])
    assert len(receiver.messages) == 2
    (m1, o1), (m2, o2) = receiver.messages
    assert o1 == o2 == Origin(Address("TCP", *PEER), Address("TCP", "192.0.2.99", 5060), proto.id)
    assert m1.top_via.rport == 40000 and m1.top_via.received == "203.0.113.7"
    assert m2.top_via.received == "203.0.113.7" and m2.body == b"hello"
    assert transport.value() == b""


def test_crlf_ping_gets_a_pong() -> None:
    manager, reactor, receiver = make()
    proto, transport = inbound(manager, reactor)
    proto.dataReceived(b"\r\n\r\n")
    assert transport.value() == b"\r\n"
    proto.dataReceived(b"\r\n\r\n" + sip_request() + b"\r\n\r\n")
    assert transport.value() == b"\r\n\r\n\r\n"
    assert len(receiver.messages) == 1


def test_framing_error_is_handed_over_then_connection_closed() -> None:
    manager, reactor, receiver = make()
    proto, transport = inbound(manager, reactor)
    good = sip_request()
    bad = sip_request(via="SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-bad", call_id="bad").replace(b"Content-Length: 0\r\n", b"")

    def answer(error: Any, data: bytes, origin: Origin) -> None:
        # what the core does: answer 400 over the same connection
        reply = sip_response(400, via="SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-bad")
        response = parse_message(reply)
        assert isinstance(response, Response)
        manager.send_response(response, origin)

    receiver.on_error = answer
    proto.dataReceived(good)
    proto.dataReceived(bad)
    [(error, data, origin)] = receiver.errors
    assert error.status == 400 and data == bad and origin.connection == proto.id
    assert transport.value().startswith(b"SIP/2.0 400")
    assert transport.disconnecting
    proto.dataReceived(sip_request(call_id="after"))  # ignored after the error
    assert len(receiver.messages) == 1
    assert manager.connection(proto.id) is not None  # until connectionLost
    proto.connectionLost(Failure(ConnectionDone()))
    assert manager.connection(proto.id) is None


def test_framing_error_data_starts_at_the_failing_message() -> None:
    manager, reactor, receiver = make()
    proto, _ = inbound(manager, reactor)
    partial = sip_request(body=b"abcdef")
    proto.dataReceived(partial[:-3])
    proto.dataReceived(partial[-3:])
    proto.dataReceived(b"\r\n\r\nGARB")
    proto.dataReceived(b"AGE\r\n\r\n")
    assert len(receiver.messages) == 1
    [(_error, data, _)] = receiver.errors
    assert data == b"GARBAGE\r\n\r\n"


def test_good_message_before_bad_one_in_the_same_chunk() -> None:
    manager, reactor, receiver = make()
    proto, _ = inbound(manager, reactor)
    proto.dataReceived(sip_request(body=b"abcdef") + b"GARBAGE\r\n\r\n")
    assert len(receiver.messages) == 1
    [(_error, data, _)] = receiver.errors
    assert data == b"GARBAGE\r\n\r\n"


def test_oversized_stream_message_is_413() -> None:
    manager, reactor, receiver = make(limits=Limits(max_message_size=500))
    proto, transport = inbound(manager, reactor)
    proto.dataReceived(sip_request(body=b"x" * 600))
    [(error, _, _)] = receiver.errors
    assert error.status == 413 and transport.disconnecting


# -- responses -------------------------------------------------------------------


def test_response_uses_the_request_connection() -> None:
    manager, reactor, receiver = make()
    proto, transport = inbound(manager, reactor)
    proto.dataReceived(sip_request(via="SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-1"))
    [(req, origin)] = receiver.messages
    assert isinstance(req, Request)
    response = response_for(req, 200)
    manager.send_response(response, origin)
    assert transport.value() == response.to_bytes()
    assert reactor.tcpClients == []


def test_response_after_connection_closed_opens_one_to_received_and_sent_by_port() -> None:
    manager, reactor, receiver = make()
    proto, _ = inbound(manager, reactor)
    proto.dataReceived(sip_request(via="SIP/2.0/TCP 10.0.0.1:5070;rport;branch=z9hG4bK-1"))
    [(req, origin)] = receiver.messages
    assert isinstance(req, Request)
    proto.connectionLost(Failure(ConnectionDone()))
    response = response_for(req, 200)
    manager.send_response(response, origin)
    [(host, port, *_)] = reactor.tcpClients
    assert (host, port) == ("203.0.113.7", 5070)  # received, sent-by port (rport ignored)
    _, transport = complete_outbound(reactor)
    assert transport.value() == response.to_bytes()


def test_udp_via_response_to_a_tcp_origin_without_connection_goes_by_udp() -> None:
    manager, reactor, _receiver = make()
    response = parse_message(sip_response(via="SIP/2.0/UDP 10.0.0.1:5070;received=203.0.113.7;branch=z9hG4bK-1"))
    assert isinstance(response, Response)
    manager.send_response(response, Origin(Address("TCP", *PEER), Address("TCP", "192.0.2.99", 5060), 999))
    assert reactor.udp().written == [(response.to_bytes(), ("203.0.113.7", 5070))]


# -- requests, reuse, queueing ------------------------------------------------------------


def test_outbound_request_queued_until_connected_then_reused() -> None:
    manager, reactor, _receiver = make()
    dest = Address("TCP", "192.0.2.10", 5060)
    first, second, third = request(call_id="1"), request(call_id="2"), request(call_id="3")
    manager.send_request(first, dest)
    manager.send_request(second, dest)
    assert len(reactor.tcpClients) == 1
    host, port, _, timeout, _ = reactor.tcpClients[0]
    assert (host, port, timeout) == ("192.0.2.10", 5060, manager.connect_timeout)
    proto, transport = complete_outbound(reactor)
    assert transport.value() == first.to_bytes() + second.to_bytes()
    manager.send_request(third, dest)
    assert len(reactor.tcpClients) == 1
    assert transport.value().endswith(third.to_bytes())
    assert proto.state is ConnState.READY


def test_responses_arriving_on_an_outbound_connection() -> None:
    manager, reactor, receiver = make()
    manager.send_request(request(via="SIP/2.0/TCP 192.0.2.99:5060;branch=z9hG4bK-9"), Address("TCP", "192.0.2.10", 5060))
    proto, _ = complete_outbound(reactor)
    proto.dataReceived(sip_response(via="SIP/2.0/TCP 192.0.2.99:5060;branch=z9hG4bK-9"))
    [(message, origin)] = receiver.messages
    assert isinstance(message, Response)
    assert origin.peer == Address("TCP", "192.0.2.10", 5060)
    assert origin.local == Address("TCP", "192.0.2.99", 5060)  # our listener, not the ephemeral port
    assert origin.connection == proto.id


def test_request_reuses_a_connection_the_peer_opened() -> None:
    manager, reactor, _receiver = make()
    _proto, transport = inbound(manager, reactor, ("192.0.2.10", 5060))
    req = request()
    manager.send_request(req, Address("TCP", "192.0.2.10", 5060))
    assert reactor.tcpClients == []
    assert transport.value() == req.to_bytes()


def test_ipv6_destination_and_reuse() -> None:
    manager, reactor, _receiver = make()
    dest = Address("TCP", "2001:db8::10", 5060)
    manager.send_request(request(), dest)
    manager.send_request(request(), Address("TCP", "2001:db8:0::10", 5060))
    assert len(reactor.tcpClients) == 1 and reactor.tcpClients[0][0] == "2001:db8::10"


def test_connect_failure_reports_every_queued_message() -> None:
    manager, reactor, receiver = make()
    dest = Address("TCP", "192.0.2.10", 5060)
    first, second = request(call_id="1"), request(call_id="2")
    manager.send_request(first, dest)
    manager.send_request(second, dest)
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert [(m, d) for m, d, _ in receiver.failures] == [(first, dest), (second, dest)]
    assert "refused" in receiver.failures[0][2].lower()
    assert manager.connections == []
    manager.send_request(request(call_id="3"), dest)  # a new attempt
    assert len(reactor.tcpClients) == 2


def test_connect_timeout_reports_queued_messages() -> None:
    manager, reactor, receiver = make(connect_timeout=5)
    manager.send_request(request(), Address("TCP", "192.0.2.10", 5060))
    reactor.advance(5)
    [(_, _, reason)] = receiver.failures
    assert "timed out" in reason
    assert manager.connections == []


def test_connection_lost_before_sending_reports_the_queue() -> None:
    manager, reactor, receiver = make()
    dest = Address("TLS", "192.0.2.10", 5061)
    req = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-1", uri="sips:bob@192.0.2.10")
    manager.send_request(req, dest)
    [(host, port, _factory, _creator, _timeout, _)] = reactor.sslClients
    assert (host, port) == ("192.0.2.10", 5061)
    proto, transport = complete_outbound(reactor, ssl=True)
    assert transport.value() == b""  # waits for the TLS handshake
    proto.connectionLost(Failure(ConnectionDone()))
    [(message, where, _)] = receiver.failures
    assert message is req and where == dest


def test_tls_waits_for_handshake_then_sends() -> None:
    manager, reactor, _receiver = make()
    req = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-1", uri="sips:bob@example.com")
    manager.send_request(req, Address("TLS", "192.0.2.10", 5061))
    proto, transport = complete_outbound(reactor, ssl=True)
    proto.handshakeCompleted()
    assert transport.value() == req.to_bytes()
    assert proto.server_name == "example.com"
    # TLS connections to the same address for another name are not shared
    other = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-2", uri="sips:bob@other.example.com")
    manager.send_request(other, Address("TLS", "192.0.2.10", 5061))
    assert len(reactor.sslClients) == 2
    same = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-3", uri="sips:carol@example.com")
    manager.send_request(same, Address("TLS", "192.0.2.10", 5061))
    assert len(reactor.sslClients) == 2
    explicit = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-4", uri="sips:carol@other.example.com")
    manager.send_request(explicit, Address("TLS", "192.0.2.10", 5061), server_name="example.com")
    assert transport.value().endswith(explicit.to_bytes())


def test_tls_verification_failure_after_flush_reports_unconfirmed_messages() -> None:
    from OpenSSL import SSL

    manager, reactor, receiver = make()
    req = request(via="SIP/2.0/TLS 192.0.2.99;branch=z9hG4bK-1", uri="sips:bob@example.com")
    manager.send_request(req, Address("TLS", "192.0.2.10", 5061))
    proto, _ = complete_outbound(reactor, ssl=True)
    proto.handshakeCompleted()
    error = SSL.Error([("SSL routines", "", "tlsv13 alert certificate required")])
    proto.connectionLost(Failure(error))
    [(message, _, reason)] = receiver.failures
    assert message is req and "certificate required" in reason


def test_idle_connection_closed_and_timer_reset_by_traffic() -> None:
    manager, reactor, _receiver = make(idle_timeout=100)
    proto, transport = inbound(manager, reactor)
    reactor.advance(60)
    proto.dataReceived(b"\r\n\r\n")  # keep-alive counts as traffic
    reactor.advance(60)
    assert not transport.disconnecting
    proto.dataReceived(sip_request())
    reactor.advance(99)
    assert not transport.disconnecting
    reactor.advance(1)
    assert transport.disconnecting
    # a closing connection is not reused
    manager.send_request(request(), Address("TCP", *PEER))
    assert len(reactor.tcpClients) == 1
    proto.connectionLost(Failure(ConnectionDone()))
    assert [c.id for c in manager.connections] == [proto.id + 1]


def test_outbound_idle_timer_and_sending_resets_it() -> None:
    manager, reactor, _receiver = make(idle_timeout=100)
    dest = Address("TCP", "192.0.2.10", 5060)
    manager.send_request(request(), dest)
    _proto, transport = complete_outbound(reactor)
    reactor.advance(90)
    manager.send_request(request(call_id="again"), dest)
    reactor.advance(90)
    assert not transport.disconnecting
    reactor.advance(10)
    assert transport.disconnecting


def test_connection_lost_unregisters_and_cancels_timer() -> None:
    manager, reactor, _receiver = make()
    proto, _ = inbound(manager, reactor)
    assert len(reactor.getDelayedCalls()) == 1
    proto.connectionLost(Failure(ConnectionDone()))
    assert reactor.getDelayedCalls() == []
    assert manager.connections == []


def test_stop_service_closes_connections_and_fails_pending() -> None:
    manager, reactor, receiver = make()
    proto, transport = inbound(manager, reactor)
    manager.send_request(request(), Address("TCP", "192.0.2.10", 5060))  # still connecting
    d = manager.stopService()
    fired: list[object] = []
    d.addCallback(fired.append)
    assert transport.disconnecting
    assert len(receiver.failures) == 1 and "stopped" in receiver.failures[0][2]
    assert fired == []
    proto.connectionLost(Failure(ConnectionDone()))
    assert fired == [None]
    assert reactor.getDelayedCalls() == []


def test_closing_connection_is_aborted_if_it_does_not_close() -> None:
    from b2bua.transport.manager import CLOSE_GRACE

    manager, reactor, _receiver = make(idle_timeout=10)
    proto, transport = inbound(manager, reactor)
    reactor.advance(10)
    assert transport.disconnecting and not transport.disconnected
    reactor.advance(CLOSE_GRACE)
    assert transport.disconnected  # abortConnection
    proto.connectionLost(Failure(ConnectionDone()))
    assert reactor.getDelayedCalls() == []


def test_names_in_destinations_share_connections_case_insensitively() -> None:
    manager, reactor, _receiver = make()
    manager.send_request(request(), Address("TCP", "PBX.example.com", 5060))
    manager.send_request(request(), Address("TCP", "pbx.example.com", 5060))
    assert len(reactor.tcpClients) == 1
