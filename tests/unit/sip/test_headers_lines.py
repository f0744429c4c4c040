"""Headers.lines_except / add_lines: copying lines between messages as bytes gives
exactly what decoding each line and adding it again gives."""

from __future__ import annotations

import pytest

from b2bua.sip import Headers, Request, header_key, parse_message

HIDDEN = frozenset({"via", "from", "to", "call-id", "cseq", "content-length", "contact"})

SOURCES = [
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=a\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@x\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Subject:no space\r\n"
    b"k: timer, 100rel\r\n"
    b"User-Agent :   spaced   \r\n"
    b"X-Odd: caf\xc3\xa9 \xff\xfe\r\n"
    b"Supported: path\r\n"
    b"m: <sip:alice@10.0.0.1>\r\n"
    b"Allow: INVITE, ACK\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2\r\n"
    b"From: <sip:alice@example.com>;tag=a\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c2@x\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"X-Folded: one\r\n  two\r\n"
    b"Content-Length: 0\r\n\r\n",
]


@pytest.mark.parametrize("data", SOURCES)
@pytest.mark.parametrize("compact_source", [False, True])
@pytest.mark.parametrize("compact_into", [False, True])
def test_lines_copied_as_bytes_are_the_lines_added_as_text(
    data: bytes, compact_source: bool, compact_into: bool
) -> None:
    source = parse_message(data)
    if compact_source:
        source.compact()
    expected = Request("BYE", "sip:x@y")
    expected.headers.add("Via", "SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx")
    got = expected.copy()
    if compact_into:
        got.compact()
        _ = got.top_via  # a view dropped by the change below
    for name, value in source.headers.items():
        if header_key(name) not in HIDDEN:
            expected.headers.add(name, value)
    got.headers.add_lines(source.headers.lines_except(HIDDEN))
    assert got.to_bytes() == expected.to_bytes()
    assert got.headers.items() == expected.headers.items()
    for name in ("Supported", "k", "Subject", "X-Odd", "X-Folded", "Via", "Allow"):
        assert got.headers.get(name) == expected.headers.get(name)
        assert got.headers.get_all(name) == expected.headers.get_all(name)


def test_add_lines_drops_the_views_of_the_headers_it_adds() -> None:
    source = Headers([("Contact", "<sip:a@b>")])
    into = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    assert into.contacts == []
    into.headers.add_lines(source.lines_except(frozenset()))
    assert [str(c) for c in into.contacts] == ["<sip:a@b>"]
