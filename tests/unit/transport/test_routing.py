"""The transport's pure decisions: Via stamping, response routing, the UDP size rule."""

from __future__ import annotations

import pytest

from b2bua.sip import Address, Origin, Request, Response, SIPParseError, parse_message
from b2bua.transport.routing import (
    is_crlf_keepalive,
    needs_congestion_control,
    normalize_ip,
    response_destination,
    same_host,
    stamp_received,
    switch_to_stream,
    tls_server_name,
)
from tests.unit.transport.helpers import sip_request, sip_response

UDP_LOCAL = Address("UDP", "192.0.2.99", 5060)


def origin(host: str, port: int, transport: str = "UDP", connection: int | None = None) -> Origin:
    return Origin(Address(transport, host, port), Address(transport, "192.0.2.99", 5060), connection)


def req(via: str, *extra: str, uri: str = "sip:bob@192.0.2.10") -> Request:
    message = parse_message(sip_request(via=via, extra=extra, uri=uri))
    assert isinstance(message, Request)
    return message


def resp(via: str) -> Response:
    message = parse_message(sip_response(via=via))
    assert isinstance(message, Response)
    return message


def reparsed(message: Request | Response) -> Request | Response:
    return parse_message(message.to_bytes())


# -- RFC 3261 18.2.1 / RFC 3581 stamping ------------------------------------------


def test_same_host_no_rport_is_left_alone() -> None:
    request = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1")
    raw = request.to_bytes()
    assert stamp_received(request, origin("192.0.2.1", 5060)) is False
    assert request.to_bytes() == raw


def test_received_added_when_sent_by_host_differs() -> None:
    request = req("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1")
    assert stamp_received(request, origin("203.0.113.7", 5060))
    assert request.top_via.received == "203.0.113.7"
    assert request.top_via.branch == "z9hG4bK-1"
    again = reparsed(request)
    assert again.top_via.received == "203.0.113.7"
    assert again.top_via.host == "10.0.0.1" and again.top_via.port == 5060


def test_received_added_for_a_domain_name_sent_by() -> None:
    request = req("SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK-1")
    stamp_received(request, origin("192.0.2.1", 5060))
    assert request.top_via.received == "192.0.2.1"


def test_empty_rport_is_filled_and_received_always_added() -> None:
    request = req("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK-1")
    assert stamp_received(request, origin("192.0.2.1", 61000))
    via = reparsed(request).top_via
    assert via.rport == 61000
    assert via.received == "192.0.2.1"  # RFC 3581 section 4: even if identical to sent-by
    # the parameter keeps its place
    assert list(via.params) == ["rport", "branch", "received"]


def test_rport_with_a_value_is_not_changed() -> None:
    request = req("SIP/2.0/UDP 192.0.2.1:5060;rport=5070;branch=z9hG4bK-1")
    assert stamp_received(request, origin("192.0.2.1", 61000)) is False
    assert request.top_via.rport == 5070


def test_stamping_twice_is_a_no_op() -> None:
    request = req("SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bK-1")
    assert stamp_received(request, origin("203.0.113.7", 4000))
    raw = request.to_bytes()
    assert stamp_received(request, origin("203.0.113.7", 4000)) is False
    assert request.to_bytes() == raw


def test_only_the_top_via_of_a_comma_list_changes() -> None:
    request = req(
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-0",
        "Via: SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK-00",
    )
    stamp_received(request, origin("203.0.113.7", 5060))
    vias = reparsed(request).vias
    assert [v.host for v in vias] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert vias[0].received == "203.0.113.7"
    assert vias[1].received is None and vias[2].received is None


def test_compact_via_header() -> None:
    data = sip_request(via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1").replace(b"\r\nVia:", b"\r\nv:")
    request = parse_message(data)
    assert isinstance(request, Request)
    stamp_received(request, origin("203.0.113.7", 5060))
    again = reparsed(request)
    assert len(again.vias) == 1 and again.top_via.received == "203.0.113.7"


def test_ipv6_sent_by_in_brackets_matches_source() -> None:
    request = req("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1")
    assert stamp_received(request, origin("2001:db8:0:0::1", 5060)) is False


def test_ipv6_received_is_written_without_brackets() -> None:
    request = req("SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9hG4bK-1")
    stamp_received(request, origin("2001:db8::2", 5999))
    via = reparsed(request).top_via
    assert via.received == "2001:db8::2"
    assert via.rport == 5999


def test_malformed_top_via_raises_parse_error() -> None:
    request = req("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1")
    request.headers.set("Via", "garbage")
    with pytest.raises(SIPParseError):
        stamp_received(request, origin("203.0.113.7", 5060))


# -- RFC 3261 18.2.2 / RFC 3581 response routing --------------------------------------


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        # unreliable: received + rport
        ("SIP/2.0/UDP 10.0.0.1:5070;rport=61000;received=203.0.113.7;branch=z9hG4bK-1", Address("UDP", "203.0.113.7", 61000)),
        # unreliable: received, no rport -> sent-by port
        ("SIP/2.0/UDP 10.0.0.1:5070;received=203.0.113.7;branch=z9hG4bK-1", Address("UDP", "203.0.113.7", 5070)),
        # unreliable: received, no sent-by port -> 5060
        ("SIP/2.0/UDP 10.0.0.1;received=203.0.113.7;branch=z9hG4bK-1", Address("UDP", "203.0.113.7", 5060)),
        # unreliable: rport flag never filled -> sent-by port
        ("SIP/2.0/UDP 192.0.2.1:5070;rport;branch=z9hG4bK-1", Address("UDP", "192.0.2.1", 5070)),
        # unreliable: nothing -> sent-by (name, resolved later per RFC 3263 section 5)
        ("SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK-1", Address("UDP", "pc33.atlanta.example.com", 5060)),
        # maddr wins over received and rport
        ("SIP/2.0/UDP 10.0.0.1:5070;maddr=239.255.255.1;ttl=1;rport=4000;received=203.0.113.7;branch=z9hG4bK-1", Address("UDP", "239.255.255.1", 5070)),
        ("SIP/2.0/UDP 10.0.0.1;maddr=192.0.2.50;branch=z9hG4bK-1", Address("UDP", "192.0.2.50", 5060)),
        # reliable: received + sent-by port; rport ignored
        ("SIP/2.0/TCP 10.0.0.1:5070;rport=61000;received=203.0.113.7;branch=z9hG4bK-1", Address("TCP", "203.0.113.7", 5070)),
        ("SIP/2.0/TCP client.example.com;branch=z9hG4bK-1", Address("TCP", "client.example.com", 5060)),
        # TLS default port is 5061
        ("SIP/2.0/TLS client.example.com;received=203.0.113.7;branch=z9hG4bK-1", Address("TLS", "203.0.113.7", 5061)),
        # IPv6
        ("SIP/2.0/UDP [2001:db8::1];rport=7000;received=2001:db8::9;branch=z9hG4bK-1", Address("UDP", "2001:db8::9", 7000)),
        ("SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bK-1", Address("UDP", "2001:db8::1", 5080)),
    ],
)
def test_response_destination_table(via: str, expected: Address) -> None:
    assert response_destination(resp(via), origin("198.51.100.1", 1234)) == expected


def test_response_destination_after_stamping_the_request() -> None:
    request = req("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-1")
    stamp_received(request, origin("203.0.113.7", 40000))
    from b2bua.sip import response_for

    response = response_for(request, 200)
    assert response_destination(response) == Address("UDP", "203.0.113.7", 40000)


# -- RFC 3261 18.1.1 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "mtu", "switch"),
    [
        (1300, None, False),
        (1301, None, True),
        (1300, 1500, False),
        (1301, 1500, True),
        (8800, 9000, False),
        (8801, 9000, True),
        (100, None, False),
    ],
)
def test_needs_congestion_control(size: int, mtu: int | None, switch: bool) -> None:
    assert needs_congestion_control(size, mtu) is switch


def test_switch_to_stream_rewrites_transport_and_keeps_branch() -> None:
    request = req("SIP/2.0/UDP 192.0.2.99:5060;rport;branch=z9hG4bK-big")
    switch_to_stream(request, "TCP")
    via = reparsed(request).top_via
    assert (via.transport, via.host, via.port, via.branch) == ("TCP", "192.0.2.99", 5060, "z9hG4bK-big")
    assert "rport" in via.params


def test_switch_to_stream_moves_sent_by_to_our_tcp_listener() -> None:
    request = req("SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-big")
    switch_to_stream(request, "TCP", (UDP_LOCAL, Address("TCP", "192.0.2.99", 5070)))
    via = reparsed(request).top_via
    assert (via.transport, via.host, via.port) == ("TCP", "192.0.2.99", 5070)


def test_switch_to_stream_keeps_a_foreign_sent_by() -> None:
    request = req("SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-big")
    switch_to_stream(request, "TCP", (UDP_LOCAL, Address("TCP", "192.0.2.99", 5070)))
    via = reparsed(request).top_via
    assert (via.transport, via.host, via.port) == ("TCP", "proxy.example.com", None)


def test_switch_to_stream_ipv6_sent_by() -> None:
    request = req("SIP/2.0/UDP [2001:db8::99]:5060;branch=z9hG4bK-big")
    old, new = Address("UDP", "2001:db8::99", 5060), Address("TCP", "2001:db8::99", 5070)
    switch_to_stream(request, "TCP", (old, new))
    via = reparsed(request).top_via
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::99]", 5070)


# -- misc --------------------------------------------------------------------


def test_tls_server_name_from_request_uri_route_and_maddr() -> None:
    assert tls_server_name(req("SIP/2.0/TLS a;branch=z9hG4bK-1", uri="sips:bob@example.com")) == "example.com"
    routed = req("SIP/2.0/TLS a;branch=z9hG4bK-1", "Route: <sips:proxy.example.net;lr>, <sip:x.example>", uri="sips:bob@example.com")
    assert tls_server_name(routed) == "proxy.example.net"
    strict = req("SIP/2.0/TLS a;branch=z9hG4bK-1", "Route: <sips:proxy.example.net>", uri="sips:bob@example.com")
    assert tls_server_name(strict) == "example.com"
    assert tls_server_name(req("SIP/2.0/TLS a;branch=z9hG4bK-1", uri="sips:bob@[2001:db8::5]")) == "2001:db8::5"
    assert tls_server_name(req("SIP/2.0/TLS a;branch=z9hG4bK-1", uri="sips:bob@example.com;maddr=edge.example.com")) == "edge.example.com"


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"\r\n", True), (b"\r\n\r\n", True), (b"\n", True), (b"", False), (b"\r\nOPTIONS", False), (b" \r\n", False)],
)
def test_is_crlf_keepalive(data: bytes, expected: bool) -> None:
    assert is_crlf_keepalive(data) is expected


def test_normalize_and_same_host() -> None:
    assert normalize_ip("::ffff:192.0.2.1") == "192.0.2.1"
    assert normalize_ip("[2001:DB8::1]") == "2001:db8::1"
    assert normalize_ip("Example.COM") == "Example.COM"
    assert same_host("[2001:db8::1]", "2001:db8:0::1")
    assert same_host("EXAMPLE.com", "example.COM")
    assert not same_host("192.0.2.1", "192.0.2.2")
    assert not same_host("example.com", "192.0.2.1")
