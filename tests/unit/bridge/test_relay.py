"""The bridge's fast paths in relay.py give what the general paths give."""

from __future__ import annotations

import pytest

from b2bua.bridge.relay import HeaderPolicy, add_via, relay_response
from b2bua.sip import Address, Request, Response, parse_message

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=a\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@x\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject:no space\r\n"
    b"k: timer\r\n"
    b"User-Agent :  phone  \r\n"
    b"X-Odd: caf\xc3\xa9 \xff\r\n"
    b"Contact: <sip:alice@10.0.0.1>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 3\r\n\r\nv=0"
)


@pytest.mark.parametrize(
    "local",
    [
        Address("UDP", "192.0.2.1", 5060),
        Address("TCP", "b2bua.Example.com", 5080),
        Address("TLS", "2001:db8::1", 5061),
        Address("UDP", "[2001:db8::2]", 5062),
    ],
)
def test_add_via_stores_the_view_its_line_decodes_to(local: Address) -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    _ = request.top_via
    add_via(request, local)
    stored = request.top_via
    reparsed = parse_message(request.to_bytes())
    assert stored == reparsed.top_via
    assert str(stored) == request.headers.get_all("Via")[0]
    assert [str(v) for v in request.vias] == [str(v) for v in reparsed.vias]
    assert stored.branch is not None and stored.branch.startswith("z9hG4bK")


@pytest.mark.parametrize("pass_headers", [(), ("Contact", "Max-Forwards")])
def test_copy_gives_the_lines_copied_would_add(pass_headers: tuple[str, ...]) -> None:
    policy = HeaderPolicy(pass_headers)
    source = parse_message(INVITE)
    general = Request("INVITE", "sip:x@y")
    for name, value in policy.copied(source):
        general.headers.add(name, value)
    fast = Request("INVITE", "sip:x@y")
    policy.copy(source, fast)
    assert fast.to_bytes() == general.to_bytes()


def test_relay_response_is_the_general_copy() -> None:
    policy = HeaderPolicy()
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    response = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK9\r\n"
        b"From: <sip:b2bua@h>;tag=1\r\nTo: <sip:bob@h>;tag=2\r\nCall-ID: q\r\n"
        b"CSeq: 1 INVITE\r\nContact: <sip:bob@10.9.9.9>\r\nServer: theirs\r\n"
        b"Allow:INVITE,  BYE\r\nX-Y: z\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(response, Response)
    out = relay_response(policy, request, response, to_tag="t", contact="<sip:b2bua@me>")
    lines = out.to_bytes().split(b"\r\n")
    assert lines[-6:-3] == [b"Contact: <sip:b2bua@me>", b"Allow: INVITE,  BYE", b"X-Y: z"]
    assert b"Server" not in out.to_bytes() and b"10.9.9.9" not in out.to_bytes()
