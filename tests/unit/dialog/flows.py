"""Realistic messages for the dialog tests, parsed with parse_message.

Most come from RFC 3665 section 3.2 (Alice calls Bob through the record-routing
proxies ss1.atlanta.example.com and ss2.biloxi.example.com) and RFC 3261
16.12.1.2 (a dialog across four proxies, the third a strict router).
"""

from __future__ import annotations

from b2bua.sip import Request, Response, parse_message

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n"
    b"s=-\r\nc=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)


def msg(text: str, body: bytes = b"") -> Request | Response:
    """Parse a message written one header per line (CRLF and Content-Length added)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines.append(f"Content-Length: {len(body)}")
    return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def req(text: str, body: bytes = b"") -> Request:
    """A request parsed by :func:`msg`."""
    message = msg(text, body)
    assert isinstance(message, Request)
    return message


def resp(text: str, body: bytes = b"") -> Response:
    """A response parsed by :func:`msg`."""
    message = msg(text, body)
    assert isinstance(message, Response)
    return message


# --- RFC 3665 3.2: Alice -> ss1 -> ss2 -> Bob --------------------------------------

VIAS_AT_BOB = """
Via: SIP/2.0/TCP ss2.biloxi.example.com:5060;branch=z9hG4bK721e4.1
Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
"""

VIAS_AT_ALICE = """
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101
"""

CALL = """
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
Call-ID: 3848276298220188511@atlanta.example.com
"""


def alice_invite() -> Request:
    """F8: the INVITE as Alice sends it (no Record-Route yet)."""
    return req(
        """
        INVITE sip:bob@biloxi.example.com SIP/2.0
        Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
        Max-Forwards: 70
        From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        To: Bob <sip:bob@biloxi.example.com>
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: 2 INVITE
        Contact: <sip:alice@client.atlanta.example.com;transport=tcp>
        Proxy-Authorization: Digest username="alice", realm="atlanta.example.com", nonce="wf84f1ceczx41ae6cbe5aea9c8e88d359", opaque="", uri="sip:bob@biloxi.example.com", response="42ce3cef44b22f50c6a6071bc8"
        Content-Type: application/sdp
        """,
        SDP,
    )


def bob_invite() -> Request:
    """F11: the INVITE as it reaches Bob, record-routed by both proxies."""
    return req(
        f"""
        INVITE sip:bob@client.biloxi.example.com SIP/2.0
        {VIAS_AT_BOB}
        Max-Forwards: 68
        Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>
        {CALL}
        To: Bob <sip:bob@biloxi.example.com>
        CSeq: 2 INVITE
        Contact: <sip:alice@client.atlanta.example.com;transport=tcp>
        Content-Type: application/sdp
        """,
        SDP,
    )


def bob_response(status: int, reason: str, vias: str = VIAS_AT_BOB, body: bytes = b"") -> Response:
    """Bob's 180 (F12) or 200 (F15), as sent by Bob (or, with VIAS_AT_ALICE, as Alice gets it)."""
    ctype = "Content-Type: application/sdp" if body else ""
    return resp(
        f"""
        SIP/2.0 {status} {reason}
        {vias}
        Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>
        {CALL}
        To: Bob <sip:bob@biloxi.example.com>;tag=314159
        CSeq: 2 INVITE
        Contact: <sip:bob@client.biloxi.example.com;transport=tcp>
        {ctype}
        """,
        body,
    )


def alice_response(status: int, reason: str, body: bytes = b"") -> Response:
    """A response from Bob as it reaches Alice."""
    return bob_response(status, reason, VIAS_AT_ALICE, body)


# --- RFC 3261 16.12.1.2: U1 -> P1 -> P2 -> P3 (strict) -> P4 -> U2 -----------------

STRICT_RR = """
Record-Route: <sip:p4.domain.com;lr>
Record-Route: <sip:p3.middle.com>
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr>
"""


def strict_invite_at_u2() -> Request:
    """P4->U2: the INVITE with the four Record-Route values."""
    return req(
        f"""
        INVITE sip:callee@u2.domain.com SIP/2.0
        Via: SIP/2.0/UDP p4.domain.com;branch=z9hG4bKp4
        Via: SIP/2.0/UDP u1.example.com;branch=z9hG4bKu1
        Max-Forwards: 66
        From: <sip:caller@u1.example.com>;tag=u1tag
        To: <sip:callee@domain.com>
        Call-ID: strict-routing@u1.example.com
        CSeq: 1 INVITE
        Contact: sip:caller@u1.example.com
        {STRICT_RR}
        """
    )


def strict_ok_at_u1() -> Response:
    """U2's 200 OK as it reaches U1."""
    return resp(
        f"""
        SIP/2.0 200 OK
        Via: SIP/2.0/UDP u1.example.com;branch=z9hG4bKu1
        From: <sip:caller@u1.example.com>;tag=u1tag
        To: <sip:callee@domain.com>;tag=u2tag
        Call-ID: strict-routing@u1.example.com
        CSeq: 1 INVITE
        Contact: sip:callee@u2.domain.com
        {STRICT_RR}
        """
    )


def strict_invite_at_u1() -> Request:
    """U1->P1: the INVITE U1 sent."""
    return req(
        """
        INVITE sip:callee@domain.com SIP/2.0
        Via: SIP/2.0/UDP u1.example.com;branch=z9hG4bKu1
        Max-Forwards: 70
        From: <sip:caller@u1.example.com>;tag=u1tag
        To: <sip:callee@domain.com>
        Call-ID: strict-routing@u1.example.com
        CSeq: 1 INVITE
        Contact: sip:caller@u1.example.com
        """
    )


def route_values(request: Request) -> list[str]:
    """Every Route value of ``request``, in order."""
    return request.headers.get_all("Route")
