"""TransportManager over UDP with a fake reactor: receiving, sending, routing, the size rule."""

from __future__ import annotations

import socket
import struct

import pytest

from b2bua.sip import Address, Limits, Origin, Request, Response, parse_message, response_for
from b2bua.transport import ListenerConfig, Transport, TransportManager
from tests.unit.transport.helpers import FakeReactor, Receiver, sip_request, sip_response


def make(
    *listeners: ListenerConfig, **kwargs: object
) -> tuple[TransportManager, FakeReactor, Receiver]:
    reactor = FakeReactor()
    receiver = Receiver()
    manager = TransportManager(reactor, receiver, list(listeners), **kwargs)  # type: ignore[arg-type]
    manager.startService()
    return manager, reactor, receiver


V4 = ListenerConfig("UDP", "192.0.2.99", 5060)
V6 = ListenerConfig("UDP", "2001:db8::99", 5060)
TCP4 = ListenerConfig("TCP", "192.0.2.99", 5060)


def test_manager_satisfies_transport_protocol() -> None:
    manager, _, _ = make(V4)
    transport: Transport = manager
    assert transport is manager


def test_listeners_and_local_addresses() -> None:
    manager, _reactor, _ = make(V4, V6, ListenerConfig("UDP", "127.0.0.1", 0), TCP4)
    assert manager.local_address("UDP") == Address("UDP", "192.0.2.99", 5060)
    assert manager.local_address("udp", socket.AF_INET6) == Address("UDP", "2001:db8::99", 5060)
    assert manager.local_address("TCP") == Address("TCP", "192.0.2.99", 5060)
    assert manager.local_address_for(Address("UDP", "2001:db8::5", 5060)).host == "2001:db8::99"
    with pytest.raises(LookupError):
        manager.local_address("TLS")
    with pytest.raises(LookupError):
        manager.local_address("TCP", socket.AF_INET6)
    ephemeral = manager.listening_addresses[2]
    assert ephemeral.host == "127.0.0.1" and ephemeral.port != 0


def test_advertised_address_and_wildcard() -> None:
    manager, _, _ = make(
        ListenerConfig("UDP", "0.0.0.0", 5060, advertised_host="sip.example.com", advertised_port=5080),
        ListenerConfig("TCP", "0.0.0.0", 5060),
    )
    assert manager.local_address("UDP") == Address("UDP", "sip.example.com", 5080)
    tcp = manager.local_address("TCP")
    assert tcp.host != "0.0.0.0" and tcp.port == 5060


def test_ipv6_wildcard_listeners_are_ipv6_only() -> None:
    manager, reactor, _ = make(
        ListenerConfig("UDP", "0.0.0.0", 0),
        ListenerConfig("UDP", "::", 0),
        ListenerConfig("TCP", "::", 0),
        ListenerConfig("TCP", "0.0.0.0", 0),
    )
    assert reactor.v6only == [1, 1]
    assert [a.host for a in manager.listening_addresses] == ["0.0.0.0", "::", "::", "0.0.0.0"]
    assert all(a.port for a in manager.listening_addresses)
    assert manager.local_address("UDP", socket.AF_INET6).host != "::"


def test_request_received_with_origin_and_received_stamp() -> None:
    _manager, reactor, receiver = make(V4)
    reactor.udp().receive(sip_request(via="SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-1"), "203.0.113.7", 40000)
    [(message, origin)] = receiver.messages
    assert isinstance(message, Request)
    assert origin == Origin(Address("UDP", "203.0.113.7", 40000), Address("UDP", "192.0.2.99", 5060), None)
    assert message.top_via.received == "203.0.113.7" and message.top_via.rport == 40000


def test_the_origin_of_a_source_is_built_once_and_the_memory_of_sources_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import b2bua.transport.manager as manager_module

    monkeypatch.setattr(manager_module, "MAX_REMEMBERED_ORIGINS", 3)
    _manager, reactor, receiver = make(V4)
    for i in range(2):
        reactor.udp().receive(sip_request(via=f"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-{i}"), "203.0.113.7", 40000)
    first, second = (origin for _, origin in receiver.messages)
    assert first is second  # remembered: the same immutable Origin
    for port in range(5):
        reactor.udp().receive(sip_request(via=f"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-p{port}"), "203.0.113.8", port + 1)
    assert len(_manager._listeners[0].origins) <= 3
    assert [o.peer.port for _, o in receiver.messages[2:]] == [1, 2, 3, 4, 5]


def test_ipv4_mapped_source_is_normalized() -> None:
    _manager, reactor, receiver = make(V6)
    reactor.udp().receive(sip_request(via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1"), "::ffff:192.0.2.1", 5060)
    [(message, origin)] = receiver.messages
    assert origin.peer == Address("UDP", "192.0.2.1", 5060)
    assert message.top_via.received is None


def test_response_received_is_not_stamped() -> None:
    _manager, reactor, receiver = make(V4)
    data = sip_response(via="SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-1")
    reactor.udp().receive(data, "203.0.113.7", 5060)
    [(message, _)] = receiver.messages
    assert isinstance(message, Response) and message.to_bytes() == data


def test_garbage_goes_to_parse_error_with_the_datagram() -> None:
    _manager, reactor, receiver = make(V4)
    data = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1\r\n\r\n"
    reactor.udp().receive(data, "203.0.113.7", 5060)
    assert receiver.messages == []
    [(error, raw, origin)] = receiver.errors
    assert error.status == 400 and raw == data and origin.peer.host == "203.0.113.7"


def test_oversized_datagram_is_a_413_parse_error() -> None:
    _manager, reactor, receiver = make(V4, limits=Limits(max_message_size=2000))
    data = sip_request(body=b"x" * 3000)
    reactor.udp().receive(data, "203.0.113.7", 5060)
    [(error, raw, _)] = receiver.errors
    assert error.status == 413 and raw == data


def test_malformed_top_via_is_a_parse_error() -> None:
    _manager, reactor, receiver = make(V4)
    data = sip_request(via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1;rport=99999999")
    reactor.udp().receive(data, "203.0.113.7", 5060)
    assert receiver.messages == []
    [(error, raw, _)] = receiver.errors
    assert error.status == 400 and raw == data


@pytest.mark.parametrize("ping", [b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n\r\n"])
def test_crlf_datagrams_are_ignored(ping: bytes) -> None:
    _manager, reactor, receiver = make(V4)
    port = reactor.udp()
    port.receive(ping, "203.0.113.7", 5060)
    assert receiver.messages == [] and receiver.errors == [] and port.written == []


def test_stun_binding_request_is_answered_from_the_listener() -> None:
    _manager, reactor, receiver = make(V4)
    port = reactor.udp()
    request = struct.pack("!HHI", 1, 0, 0x2112A442) + b"123456789012"
    port.receive(request, "203.0.113.7", 4444)
    [(answer, addr)] = port.written
    assert addr == ("203.0.113.7", 4444)
    assert answer[:2] == b"\x01\x01" and answer[8:20] == b"123456789012"
    assert receiver.messages == [] and receiver.errors == []


def test_send_request_over_udp_from_the_family_listener() -> None:
    manager, reactor, _receiver = make(V4, V6)
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    manager.send_request(request, Address("UDP", "192.0.2.10", 5070))
    manager.send_request(request, Address("UDP", "2001:db8::10", 5070))
    assert reactor.udp("192.0.2.99").written == [(request.to_bytes(), ("192.0.2.10", 5070))]
    assert reactor.udp("2001:db8::99").written == [(request.to_bytes(), ("2001:db8::10", 5070))]


def test_send_to_a_family_without_listener_is_an_async_transport_error() -> None:
    manager, reactor, receiver = make(V4)
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    destination = Address("UDP", "2001:db8::10", 5060)
    manager.send_request(request, destination)
    assert receiver.failures == []  # never re-entrant
    reactor.advance(0)
    [(message, where, reason)] = receiver.failures
    assert message is request and where == destination and "no UDP listener for IPv6" in reason


def test_send_to_a_name_resolves_it() -> None:
    manager, reactor, receiver = make(V4)
    reactor.names["pbx.example.com"] = "192.0.2.20"
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    manager.send_request(request, Address("UDP", "pbx.example.com", 5060))
    manager.send_request(request, Address("UDP", "nowhere.example.com", 5060))
    assert reactor.udp().written == [(request.to_bytes(), ("192.0.2.20", 5060))]
    [(_, where, reason)] = receiver.failures
    assert where.host == "nowhere.example.com" and "cannot resolve" in reason


def test_udp_write_error_is_reported() -> None:
    manager, reactor, receiver = make(V4)
    request = parse_message(sip_request())
    assert isinstance(request, Request)

    def boom(data: bytes, addr: tuple[str, int]) -> None:
        raise OSError("Network is unreachable")

    reactor.udp().write = boom  # type: ignore[method-assign]
    manager.send_request(request, Address("UDP", "192.0.2.10", 5060))
    reactor.advance(0)
    assert "Network is unreachable" in receiver.failures[0][2]


def test_response_goes_to_received_and_rport_from_the_request_listener() -> None:
    manager, reactor, receiver = make(ListenerConfig("UDP", "192.0.2.99", 5060), ListenerConfig("UDP", "192.0.2.98", 5080))
    second = reactor.udp("192.0.2.98")
    second.receive(sip_request(via="SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-1"), "203.0.113.7", 40000)
    [(request, origin)] = receiver.messages
    assert isinstance(request, Request)
    assert origin.local == Address("UDP", "192.0.2.98", 5080)
    response = response_for(request, 200)
    manager.send_response(response, origin)
    assert second.written == [(response.to_bytes(), ("203.0.113.7", 40000))]
    assert reactor.udp("192.0.2.99").written == []


def test_response_without_rport_goes_to_received_and_sent_by_port() -> None:
    manager, reactor, receiver = make(V4)
    reactor.udp().receive(sip_request(via="SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1"), "203.0.113.7", 40000)
    [(request, origin)] = receiver.messages
    assert isinstance(request, Request)
    manager.send_response(response_for(request, 180), origin)
    assert reactor.udp().written[0][1] == ("203.0.113.7", 5070)


def big_request() -> Request:
    request = parse_message(
        sip_request(
            "INVITE",
            via="SIP/2.0/UDP 192.0.2.99:5060;rport;branch=z9hG4bK-big",
            extra=("Content-Type: application/sdp",),
            body=b"v=0\r\n" + b"a=x-padding:" + b"p" * 1400 + b"\r\n",
        )
    )
    assert isinstance(request, Request)
    return request


def test_big_udp_request_goes_over_tcp_with_via_rewritten() -> None:
    manager, reactor, _receiver = make(V4, ListenerConfig("TCP", "192.0.2.99", 5070))
    request = big_request()
    manager.send_request(request, Address("UDP", "192.0.2.10", 5060))
    assert reactor.udp().written == []
    [(host, port, *_)] = reactor.tcpClients
    assert (host, port) == ("192.0.2.10", 5060)
    via = request.top_via
    assert (via.transport, via.host, via.port, via.branch) == ("TCP", "192.0.2.99", 5070, "z9hG4bK-big")
    from tests.unit.transport.helpers import complete_outbound

    _, transport = complete_outbound(reactor)
    assert transport.value() == request.to_bytes()
    assert b"Via: SIP/2.0/TCP 192.0.2.99:5070;rport;branch=z9hG4bK-big\r\n" in transport.value()


def test_big_request_stays_on_udp_when_switch_disabled_or_mtu_large() -> None:
    for kwargs in ({"udp_to_tcp": False}, {"path_mtu": 9000}):
        manager, reactor, _ = make(V4, **kwargs)
        request = big_request()
        manager.send_request(request, Address("UDP", "192.0.2.10", 5060))
        assert len(reactor.udp().written) == 1 and reactor.tcpClients == []
        assert request.top_via.transport == "UDP"


def test_small_request_stays_on_udp() -> None:
    manager, _reactor, _ = make(V4)
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    destination, data = manager.prepare_request(request, Address("UDP", "192.0.2.10", 5060))
    assert destination.transport == "UDP" and data == request.to_bytes()


def test_stop_service_stops_listening() -> None:
    manager, reactor, _ = make(V4, TCP4)
    d = manager.stopService()
    assert all(not p.listening for p in reactor.udp_ports + reactor.stream_ports)
    fired: list[object] = []
    d.addCallback(fired.append)
    assert fired == [None]
    assert manager.listening_addresses == []


def test_receiver_exceptions_do_not_escape() -> None:
    _manager, reactor, receiver = make(V4)

    def explode(message: object, origin: object) -> None:
        raise RuntimeError("core bug")

    receiver.on_message = explode
    reactor.udp().receive(sip_request(), "203.0.113.7", 5060)
    reactor.udp().receive(sip_request(call_id="second"), "203.0.113.7", 5060)
    assert len(receiver.messages) == 2


def test_sip_trace_logs_both_directions_only_when_enabled() -> None:
    from twisted.logger import globalLogPublisher

    events: list[dict[str, object]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for enabled in (False, True):
            manager, reactor, receiver = make(V4, sip_trace=enabled)
            reactor.udp().receive(sip_request(), "203.0.113.7", 5060)
            [(request, origin)] = receiver.messages
            assert isinstance(request, Request)
            manager.send_response(response_for(request, 200), origin)
    finally:
        globalLogPublisher.removeObserver(events.append)
    traced = [e for e in events if e.get("log_namespace") == "b2bua.trace"]
    assert [e["direction"] for e in traced] == ["received from", "sent to"]
    assert "OPTIONS sip:bob@192.0.2.10" in str(traced[0]["text"])
    assert str(traced[1]["text"]).startswith("SIP/2.0 200 OK")


def test_udp_receive_buffer_is_grown_on_real_sockets() -> None:
    """The configured receive buffer is asked for on the listening socket."""
    import socket

    from twisted.internet import reactor

    from b2bua.transport import ListenerConfig, TransportManager

    class Sink:
        def message_received(self, *args: object) -> None: ...
        def parse_error(self, *args: object) -> None: ...
        def transport_error(self, *args: object) -> None: ...

    manager = TransportManager(
        reactor, Sink(), [ListenerConfig("UDP", "127.0.0.1", 0)], udp_receive_buffer=1 << 20
    )
    manager.startService()
    try:
        [listener] = manager._listeners
        granted = listener.port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        default = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            base = default.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        finally:
            default.close()
        assert granted > base
    finally:
        for listener in manager._listeners:
            listener.port.stopListening()
