"""StreamFramer (RFC 3261 18.3 stream framing, RFC 5626 4.4.1 CRLF keep-alives) and Limits."""

from __future__ import annotations

import dataclasses

import pytest

from b2bua.sip import Limits, Request, Response, SIPParseError, StreamFramer, parse_message
from tests.unit.sip.sipdata import Message, load, request, response, start_line

ONE = request("INVITE", "Content-Type: text/plain", body=b"first body")
TWO = response(180, "Ringing")
THREE = request("BYE", body=b"")


def _same(a: Message, b: Message) -> None:
    assert start_line(a) == start_line(b)
    assert a.headers.items() == b.headers.items()
    assert a.body == b.body


def test_limits_defaults_and_frozen() -> None:
    limits = Limits()
    assert (
        limits.max_message_size,
        limits.max_headers,
        limits.max_line_length,
        limits.max_body_size,
    ) == (65535, 256, 8192, 65535)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_headers = 1  # type: ignore[misc]


def test_one_message_in_one_chunk() -> None:
    framer = StreamFramer()
    (m,) = framer.feed(ONE)
    assert isinstance(m, Request)
    _same(m, parse_message(ONE))
    assert framer.feed(b"") == []


def test_several_messages_in_one_chunk() -> None:
    framer = StreamFramer()
    messages = framer.feed(ONE + TWO + THREE)
    assert [type(m) for m in messages] == [Request, Response, Request]
    for got, data in zip(messages, (ONE, TWO, THREE), strict=True):
        _same(got, parse_message(data))


def test_one_message_split_byte_by_byte() -> None:
    framer = StreamFramer()
    out: list[Message] = []
    for i in range(len(ONE)):
        got = framer.feed(ONE[i : i + 1])
        if i < len(ONE) - 1:
            assert got == [], f"a message came out after {i + 1} of {len(ONE)} octets"
        out.extend(got)
    (m,) = out
    _same(m, parse_message(ONE))


def test_every_two_chunk_split_gives_the_same_message() -> None:
    expected = parse_message(ONE)
    for cut in range(len(ONE) + 1):
        framer = StreamFramer()
        messages = framer.feed(ONE[:cut]) + framer.feed(ONE[cut:])
        assert len(messages) == 1, cut
        _same(messages[0], expected)


def test_three_messages_split_at_odd_places() -> None:
    stream = ONE + TWO + THREE
    framer = StreamFramer()
    out: list[Message] = []
    for start in range(0, len(stream), 7):
        out.extend(framer.feed(stream[start : start + 7]))
    assert [start_line(m) for m in out] == [start_line(parse_message(d)) for d in (ONE, TWO, THREE)]


def test_crlf_keepalives_between_messages_are_skipped_and_counted() -> None:
    framer = StreamFramer()
    assert framer.keepalives_seen == 0
    assert framer.feed(b"\r\n\r\n") == []
    first = framer.keepalives_seen
    assert first >= 1
    messages = framer.feed(ONE + b"\r\n\r\n" + TWO)
    assert len(messages) == 2
    second = framer.keepalives_seen
    assert second > first
    messages = framer.feed(b"\r\n\r\n" + b"\r\n" + THREE[:10])
    assert messages == []
    assert framer.keepalives_seen > second
    (m,) = framer.feed(THREE[10:])
    _same(m, parse_message(THREE))


def test_keepalive_split_across_chunks_is_still_counted() -> None:
    """TCP keeps no segment boundaries: a "\r\n\r\n" ping (RFC 5626 4.4.1) may arrive
    one octet at a time, and must still be seen so that the transport answers it."""
    framer = StreamFramer()
    for octet in b"\r\n\r\n":
        assert framer.feed(bytes([octet])) == []
    assert framer.keepalives_seen >= 1
    (m,) = framer.feed(ONE)
    _same(m, parse_message(ONE))


def test_keepalive_split_before_a_message() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n" + ONE[:5]) == []
    (m,) = framer.feed(ONE[5:])
    _same(m, parse_message(ONE))


def test_body_waits_for_content_length_octets() -> None:
    framer = StreamFramer()
    head, body = ONE.split(b"\r\n\r\n", 1)
    assert framer.feed(head + b"\r\n\r\n") == []
    assert framer.feed(body[:-1]) == []
    (m,) = framer.feed(body[-1:] + TWO[:3])
    assert m.body == b"first body"


def test_compact_content_length_frames_too() -> None:
    data = request("MESSAGE", "l: 4", body=b"abcd", content_length=False)
    framer = StreamFramer()
    (m,) = framer.feed(data + data)[:1]
    assert m.body == b"abcd"


def test_missing_content_length_on_a_stream_is_400() -> None:
    """RFC 3261 18.3: "In the case of stream-oriented transports such as TCP, the
    Content-Length header field indicates the size of the body ... MUST be used"."""
    data = request("MESSAGE", body=b"", content_length=False)
    framer = StreamFramer()
    with pytest.raises(SIPParseError) as info:
        framer.feed(data + b"body without length")
    assert info.value.status == 400


@pytest.mark.parametrize("name", ["ncl", "mcl01"])
def test_framing_errors_on_a_stream_are_400(name: str) -> None:
    """RFC 4475 3.1.2.3 / 3.3.9: "If a request like this arrives over TCP, the framing
    error is not recoverable, and the connection should be closed." """
    framer = StreamFramer()
    with pytest.raises(SIPParseError) as info:
        framer.feed(load(name))
    assert info.value.status == 400


def test_clerr_on_a_stream_waits_for_more() -> None:
    """RFC 4475 3.1.2.2: over TCP "there's not much the receiving party could do but wait
    for more data on the stream"."""
    framer = StreamFramer()
    assert framer.feed(load("clerr")) == []


# --------------------------------------------------------------------------------------
# Limits: each one enforced, each error naming the limit
# --------------------------------------------------------------------------------------


def _padded(total: int) -> bytes:
    """A request of exactly ``total`` octets, padded in an X-Pad header."""
    base = request("OPTIONS", "X-Pad: ")
    pad = total - len(base)
    assert pad >= 0
    return request("OPTIONS", "X-Pad: " + "p" * pad)


def test_padding_helper() -> None:
    assert len(_padded(600)) == 600


def test_max_message_size() -> None:
    limits = Limits(max_message_size=600)
    parse_message(_padded(600), limits=limits)
    with pytest.raises(SIPParseError) as info:
        parse_message(_padded(601), limits=limits)
    assert info.value.status == 413
    assert "max_message_size" in info.value.reason
    (m,) = StreamFramer(limits).feed(_padded(600))
    assert isinstance(m, Request)
    with pytest.raises(SIPParseError) as info:
        StreamFramer(limits).feed(_padded(601))
    assert info.value.status == 413
    assert "max_message_size" in info.value.reason


def test_max_message_size_on_a_stream_that_never_ends_its_headers() -> None:
    """A peer that sends headers forever must hit the limit, not exhaust memory."""
    framer = StreamFramer(Limits(max_message_size=2000))
    framer.feed(b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n")
    with pytest.raises(SIPParseError) as info:
        for _ in range(200):
            framer.feed(b"X-Endless: " + b"e" * 40 + b"\r\n")
    assert "max_message_size" in info.value.reason
    assert info.value.status == 413


def _with_headers(count: int) -> bytes:
    """A request with exactly ``count`` header fields (Content-Length included)."""
    base = request("OPTIONS")
    fields = base.split(b"\r\n\r\n")[0].count(b"\r\n")
    extra = [f"X-H{i}: {i}" for i in range(count - fields)]
    data = request("OPTIONS", *extra)
    assert data.split(b"\r\n\r\n")[0].count(b"\r\n") == count
    return data


def test_max_headers() -> None:
    limits = Limits(max_headers=20)
    parse_message(_with_headers(20), limits=limits)
    (m,) = StreamFramer(limits).feed(_with_headers(20))
    assert isinstance(m, Request)
    for attempt in (
        lambda: parse_message(_with_headers(21), limits=limits),
        lambda: StreamFramer(limits).feed(_with_headers(21)),
    ):
        with pytest.raises(SIPParseError) as info:
            attempt()
        assert "max_headers" in info.value.reason
        assert info.value.status in (400, 413, 513)


def test_max_line_length() -> None:
    limits = Limits(max_line_length=200)
    parse_message(request("OPTIONS", "X-Long: " + "l" * 100), limits=limits)
    long_line = request("OPTIONS", "X-Long: " + "l" * 300)
    folded = request("OPTIONS", "X-Long: " + "l" * 150 + "\r\n " + "l" * 150)
    for data in (long_line, folded):
        for attempt in (
            lambda d=data: parse_message(d, limits=limits),
            lambda d=data: StreamFramer(limits).feed(d),
        ):
            try:
                attempt()
            except SIPParseError as error:
                assert "max_line_length" in error.reason
                assert error.status in (400, 413, 414, 513)
            else:
                # only a folded field may pass: each of its lines is short
                assert data is folded


def test_long_request_uri_line_hits_max_line_length() -> None:
    limits = Limits(max_line_length=200)
    data = request("OPTIONS", uri="sip:" + "u" * 300 + "@biloxi.example.com")
    with pytest.raises(SIPParseError) as info:
        parse_message(data, limits=limits)
    assert "max_line_length" in info.value.reason
    assert info.value.status in (400, 414, 413, 513)


def test_max_body_size() -> None:
    limits = Limits(max_body_size=100)
    (m,) = StreamFramer(limits).feed(request("MESSAGE", body=b"b" * 100))
    assert len(m.body) == 100
    assert len(parse_message(request("MESSAGE", body=b"b" * 100), limits=limits).body) == 100
    for attempt in (
        lambda: parse_message(request("MESSAGE", body=b"b" * 101), limits=limits),
        lambda: StreamFramer(limits).feed(request("MESSAGE", body=b"b" * 101)),
    ):
        with pytest.raises(SIPParseError) as info:
            attempt()
        assert "max_body_size" in info.value.reason
        assert info.value.status == 413


def test_max_body_size_is_checked_before_the_body_arrives() -> None:
    """A stream announcing a huge Content-Length is refused at once, not buffered."""
    framer = StreamFramer(Limits(max_body_size=1000))
    data = request("MESSAGE", "Content-Length: 999999999", content_length=False)
    with pytest.raises(SIPParseError) as info:
        framer.feed(data)
    assert "max_body_size" in info.value.reason
    assert info.value.status == 413


def test_default_limits_accept_a_realistic_large_message() -> None:
    body = b"a=x-filler:" + b"z" * 20000 + b"\r\n"
    data = request("INVITE", *[f"X-Header-{i}: value {i}" for i in range(100)], body=body)
    (m,) = StreamFramer().feed(data)
    assert m.body == body
    assert parse_message(data).body == body
