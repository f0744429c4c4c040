"""What the transport manager remembers or skips per message, and that it stays correct."""

from __future__ import annotations

import socket

import pytest

from b2bua.sip import Address, Origin, Request, Response, parse_message, response_for
from b2bua.transport import ListenerConfig, TransportManager
from b2bua.transport.manager import family_of
from b2bua.transport.routing import response_destination, strip_brackets
from tests.unit.transport.helpers import FakeReactor, Receiver, sip_request

V4 = ListenerConfig("UDP", "192.0.2.99", 0)


def make(*listeners: ListenerConfig) -> tuple[TransportManager, FakeReactor, Receiver]:
    reactor = FakeReactor()
    receiver = Receiver()
    manager = TransportManager(reactor, receiver, list(listeners))
    manager.startService()
    return manager, reactor, receiver


def test_local_address_is_remembered_until_the_listeners_restart() -> None:
    manager, _, _ = make(V4)
    first = manager.local_address("UDP")
    assert manager.local_address("udp") is first  # asked often: answered from memory
    manager.stopService()
    manager.startService()  # port 0: a new ephemeral port
    second = manager.local_address("UDP")
    assert second.port != first.port
    assert manager.local_address("udp") == second
    with pytest.raises(LookupError):
        manager.local_address("UDP", socket.AF_INET6)


@pytest.mark.parametrize(
    "data",
    [b"", b" OPTIONS sip:bob@192.0.2.10 SIP/2.0\r\n\r\n", b"\x01\x02junk", b"\r\nINVITE"],
)
def test_datagrams_not_starting_with_a_letter_still_get_their_parse_error(data: bytes) -> None:
    _manager, reactor, receiver = make(V4)
    port = reactor.udp()
    port.receive(data, "203.0.113.7", 5060)
    assert receiver.messages == [] and port.written == []
    [(error, raw, origin)] = receiver.errors
    assert (
        error.status == 400 and raw == data and origin.peer == Address("UDP", "203.0.113.7", 5060)
    )


def test_the_origin_of_a_mapped_source_is_normalized_once_per_source() -> None:
    _manager, reactor, receiver = make(V4)
    port = reactor.udp()
    port.receive(sip_request(), "::ffff:203.0.113.7", 5060)
    port.receive(sip_request(call_id="call-2@192.0.2.1"), "::ffff:203.0.113.7", 5060)
    (_, first), (_, second) = receiver.messages
    assert first is second and first.peer == Address("UDP", "203.0.113.7", 5060)


@pytest.mark.parametrize(
    ("host", "stripped", "family"),
    [
        ("[2001:db8::1]", "2001:db8::1", socket.AF_INET6),
        ("2001:db8::1", "2001:db8::1", socket.AF_INET6),
        ("192.0.2.1", "192.0.2.1", socket.AF_INET),
        ("example.com", "example.com", socket.AF_INET),
        ("[", "[", socket.AF_INET),
        ("", "", socket.AF_INET),
    ],
)
def test_brackets_and_families(host: str, stripped: str, family: int) -> None:
    assert strip_brackets(host) == stripped
    assert family_of(host) == family


def _response(via: str) -> Response:
    request = parse_message(sip_request(via=via))
    assert isinstance(request, Request)
    return response_for(request, 200)


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1", Address("UDP", "192.0.2.1", 5070)),
        ("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1", Address("UDP", "192.0.2.1", 5060)),
        (
            "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;received=198.51.100.1;rport=6000",
            Address("UDP", "198.51.100.1", 6000),
        ),
        (
            "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;received=198.51.100.1;rport",
            Address("UDP", "198.51.100.1", 5070),
        ),
        (
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1;maddr=[2001:db8::7];rport=6000",
            Address("UDP", "2001:db8::7", 5060),
        ),
        ("SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK-1", Address("TLS", "2001:db8::1", 5061)),
    ],
)
def test_response_destination_reads_the_via_parameters(via: str, expected: Address) -> None:
    origin = Origin(Address("UDP", "203.0.113.7", 1), Address("UDP", "192.0.2.99", 5060))
    assert response_destination(_response(via), origin) == expected


def _request() -> Request:
    request = parse_message(sip_request())
    assert isinstance(request, Request)
    return request


def test_udp_routes_are_remembered_for_ip_literals_and_follow_a_restart() -> None:
    manager, reactor, receiver = make(V4)
    request = _request()
    destination = Address("UDP", "192.0.2.10", 5070)
    manager.send_request(request, destination)
    manager.send_request(request, destination)
    first = reactor.udp_ports[0]
    assert first.written == [(request.to_bytes(), ("192.0.2.10", 5070))] * 2
    manager.stopService()
    manager.send_request(request, destination)  # the remembered listener is closed
    reactor.advance(0)
    [(_, where, reason)] = receiver.failures
    assert where == destination and "no UDP listener for IPv4" in reason
    manager.startService()
    manager.send_request(request, destination)
    second = reactor.udp_ports[-1]
    assert second is not first and second.written == [(request.to_bytes(), ("192.0.2.10", 5070))]


def test_names_are_resolved_for_every_send() -> None:
    manager, reactor, _receiver = make(V4)
    request = _request()
    destination = Address("UDP", "pbx.example.com", 5060)
    reactor.names["pbx.example.com"] = "192.0.2.20"
    manager.send_request(request, destination)
    reactor.names["pbx.example.com"] = "192.0.2.21"
    manager.send_request(request, destination)
    assert [addr for _, addr in reactor.udp().written] == [
        ("192.0.2.20", 5060),
        ("192.0.2.21", 5060),
    ]


def test_remembered_udp_routes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("b2bua.transport.manager.MAX_REMEMBERED_ROUTES", 3)
    manager, reactor, _receiver = make(V4)
    request = _request()
    for i in range(10):
        manager.send_request(request, Address("UDP", f"192.0.2.{i + 1}", 5060))
        assert len(manager._udp_routes) <= 3
    assert [addr for _, addr in reactor.udp().written] == [
        (f"192.0.2.{i + 1}", 5060) for i in range(10)
    ]


def test_bracketed_ipv6_destinations_are_sent_to_the_canonical_address() -> None:
    manager, reactor, _receiver = make(V4, ListenerConfig("UDP", "2001:db8::99", 0))
    request = _request()
    for _ in range(2):
        manager.send_request(request, Address("UDP", "[2001:DB8::10]", 5070))
    assert [addr for _, addr in reactor.udp("2001:db8::99").written] == [("2001:db8::10", 5070)] * 2
    assert reactor.udp("192.0.2.99").written == []
