"""Header lines kept by their bytes (parser._LINES) give the entries a fresh cut gives."""

from __future__ import annotations

import pytest

from b2bua.sip import parser as P
from b2bua.sip.errors import SIPParseError
from b2bua.sip.parser import parse_message

DATA = (
    b"INVITE sip:b@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: x@y\r\n"
    b"CSeq: 1 INVITE\r\nMax-Forwards:70\r\nX-Odd :  spaced  \r\nContact: <sip:a@h>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_kept_entries_equal_fresh_ones() -> None:
    P._LINES.clear()
    fresh = parse_message(DATA).headers
    assert P._LINES  # CSeq, Max-Forwards, X-Odd, Contact, Content-Length
    assert not {entry[0] for entry in P._LINES.values()} & P._UNIQUE_LINES
    again = parse_message(DATA).headers
    assert again._entries == fresh._entries
    assert again._first == fresh._first


def test_a_kept_line_twice_is_still_refused() -> None:
    parse_message(DATA)
    doubled = DATA.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nCSeq: 1 INVITE\r\n")
    with pytest.raises(SIPParseError, match="more than one CSeq"):
        parse_message(doubled)
    repeated = DATA.replace(b"X-Odd :  spaced  \r\n", b"X-Odd :  spaced  \r\n" * 2)
    assert len(parse_message(repeated).headers.get_all("X-Odd")) == 2


def test_table_is_bounded() -> None:
    for i in range(P._LINES_MAX + 5):
        parse_message(DATA.replace(b"X-Odd :  spaced", b"X-Odd: %d" % i))
    assert len(P._LINES) <= P._LINES_MAX
