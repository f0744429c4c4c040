"""Call-IDs and tags kept by the bytes of their line (message._CALL_IDS, _TAGS)."""

from __future__ import annotations

import pytest

from b2bua.sip import message as M
from b2bua.sip.errors import SIPParseError
from b2bua.sip.fields import parse_via_general
from b2bua.sip.message import _tag_of
from b2bua.sip.parser import parse_message

HEAD = (
    "INVITE sip:b@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n"
    "From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)

GOOD = [
    ("<sip:a@example.com>;tag=1", "<sip:b@example.com>", "abc@host"),
    ('"A" <sip:a@example.com>;tag=x;foo', "sip:b@example.com;tag=y", "  odd-id  "),
    ("a <sip:a@example.com;lr>;Tag=Z", "<sip:b@example.com>;x=1;tag=2", '"q"@[::1]'),
]


def _parse(from_: str, to: str, call_id: str) -> M.Message:
    data = HEAD.format(from_=from_, to=to, call_id=call_id).encode()
    return parse_message(data)


@pytest.mark.parametrize(("from_", "to", "call_id"), GOOD)
def test_kept_views_equal_fresh_ones(from_: str, to: str, call_id: str) -> None:
    M._CALL_IDS.clear()
    M._TAGS.clear()
    fresh = _parse(from_, to, call_id)
    views = (fresh.call_id, fresh.from_tag, fresh.to_tag)
    assert views == (call_id.strip(" \t"), _tag_of(from_, "From"), _tag_of(to, "To"))
    again = _parse(from_, to, call_id)  # read from the tables this time
    assert (again.call_id, again.from_tag, again.to_tag) == views
    assert M._CALL_IDS and M._TAGS


@pytest.mark.parametrize(
    ("from_", "to", "call_id"),
    [
        ("<sip:a@example.com>;tag=1", "<sip:b@example.com>", "bad id"),
        ('"unterminated <sip:a@example.com>;tag=1', "<sip:b@example.com>", "x"),
        ("<sip:a@example.com>;tag=1", "<sip:b@example.com;tag=a", "x"),
    ],
)
def test_bad_values_are_refused_every_time(from_: str, to: str, call_id: str) -> None:
    for _ in range(2):
        with pytest.raises(SIPParseError):
            _parse(from_, to, call_id)


def test_tables_are_bounded() -> None:
    M._CALL_IDS.clear()
    for i in range(M._LINE_VIEWS_MAX + 5):
        _parse(f"<sip:a@x>;tag={i}", "<sip:b@x>", f"id-{i}")
    assert len(M._CALL_IDS) <= M._LINE_VIEWS_MAX
    assert len(M._TAGS) <= M._LINE_VIEWS_MAX


RESPONSE = (
    "SIP/2.0 180 Ringing\r\nVia: {via}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\n"
    "Call-ID: c@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport",
        "SIP/2.0/udp host.example;branch=z9hG4bK-2;ttl=3, SIP/2.0/TCP 10.0.0.2;branch=x",
        "SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK-3",  # the general path's
    ],
)
def test_kept_top_vias_equal_fresh_ones(via: str) -> None:
    M._VIA_LINES.clear()
    fresh = parse_message(RESPONSE.format(via=via).encode())
    again = parse_message(RESPONSE.format(via=via).encode())
    expected = parse_via_general(via.split(",")[0].strip())
    assert fresh.top_via == again.top_via == expected
    assert again.vias == fresh.vias


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport=70000",
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1, SIP/2.0/UDP h;ttl=300",
    ],
)
def test_bad_via_lines_are_refused_every_time(via: str) -> None:
    for _ in range(2):
        with pytest.raises(SIPParseError):
            parse_message(RESPONSE.format(via=via).encode())


def test_via_table_is_bounded() -> None:
    for i in range(M._LINE_VIEWS_MAX + 5):
        parse_message(RESPONSE.format(via=f"SIP/2.0/UDP h;branch=z9hG4bK-{i}").encode())
    assert len(M._VIA_LINES) <= M._LINE_VIEWS_MAX
