"""Start lines, datagram framing, bodies, pass-through and serialization of whole messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from b2bua.sip import (
    Headers,
    Request,
    Response,
    SIPParseError,
    canonical_name,
    parse_message,
    parse_uri,
    parser,
    response_for,
)
from tests.unit.sip.sipdata import (
    assert_round_trip,
    build,
    header_fields,
    header_items,
    parse_and_validate,
    request,
    response,
)

# --------------------------------------------------------------------------------------
# Start lines
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE"]
)
def test_request_line(method: str) -> None:
    m = parse_and_validate(request(method))
    assert isinstance(m, Request)
    assert m.method == method
    assert str(m.uri) == "sip:bob@biloxi.example.com"
    assert m.request_uri == parse_uri("sip:bob@biloxi.example.com")
    assert m.version == "SIP/2.0"


def test_unknown_method_passes_through_untouched() -> None:
    data = request("FOO.bar-BAZ~1", "X-Thing: keep me")
    m = parse_and_validate(data)
    assert isinstance(m, Request)
    assert m.method == "FOO.bar-BAZ~1"
    assert m.cseq.method == "FOO.bar-BAZ~1"
    assert m.to_bytes().startswith(b"FOO.bar-BAZ~1 sip:bob@biloxi.example.com SIP/2.0\r\n")


def test_methods_are_case_sensitive() -> None:
    """RFC 3261 7.1: "The method token is case-sensitive." """
    m = parse_and_validate(request("invite"))
    assert isinstance(m, Request)
    assert m.method == "invite"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (100, "Trying"),
        (180, "Ringing"),
        (200, "OK"),
        (302, "Moved"),
        (486, "Busy Here"),
        (699, "Whatever You Like"),
        (200, ""),
    ],
)
def test_status_line(status: int, reason: str) -> None:
    m = parse_and_validate(response(status, reason))
    assert isinstance(m, Response)
    assert (m.status, m.reason, m.version) == (status, reason, "SIP/2.0")
    assert_round_trip(m)


@pytest.mark.parametrize(
    "status", ["700", "999", "99", "1000", "20", "2000", "-200", "2OO", "4294967301"]
)
def test_status_code_outside_100_to_699_is_refused(status: str) -> None:
    """RFC 3261 7.2 / 21: Status-Code is 3DIGIT, classes 1xx to 6xx."""
    data = response().replace(b"SIP/2.0 200 OK", f"SIP/2.0 {status} Weird".encode())
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(data)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "start",
    [
        "INVITE sip:bob@biloxi.example.com SIP/3.0",
        "INVITE sip:bob@biloxi.example.com SIP/1.0",
        "INVITE sip:bob@biloxi.example.com SIP/2.1",
    ],
)
def test_other_sip_versions_get_505(start: str) -> None:
    data = request("INVITE").replace(b"INVITE sip:bob@biloxi.example.com SIP/2.0", start.encode())
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(data)
    assert info.value.status == 505


@pytest.mark.parametrize(
    "start",
    [
        "",
        "INVITE",
        "INVITE sip:bob@biloxi.example.com",
        "INVITE  SIP/2.0",
        "INV ITE sip:bob@biloxi.example.com SIP/2.0",
        "INVITE sip:bob@biloxi.example.com HTTP/1.1",
        "INVITE sip:bob@biloxi.example.com SIP/2.0 extra",
        "SIP/2.0",
        "SIP/2.0 OK",
        "HTTP/1.1 200 OK",
        "INV\x00ITE sip:bob@biloxi.example.com SIP/2.0",
    ],
)
def test_malformed_start_line_is_refused(start: str) -> None:
    data = request("INVITE").replace(b"INVITE sip:bob@biloxi.example.com SIP/2.0", start.encode())
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(data)
    assert info.value.status in (400, 505)


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n", b"garbage", b"\x00" * 50])
def test_not_a_message_is_refused(data: bytes) -> None:
    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_header_line_without_colon_is_refused() -> None:
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(request("OPTIONS", "This line has no colon"))
    assert info.value.status == 400


# --------------------------------------------------------------------------------------
# Datagram framing (RFC 3261 18.3)
# --------------------------------------------------------------------------------------


def test_content_length_shorter_than_datagram_truncates_the_body() -> None:
    """18.3: "... the remainder of the datagram ... after the end of the body ... MUST be
    discarded" (the extra octets are ignored)."""
    data = request("MESSAGE", "Content-Type: text/plain", body=b"hello", content_length=False)
    data = data.replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\n", 1) + b" and then junk"
    m = parse_and_validate(data)
    assert m.body == b"hello"
    assert b"junk" not in m.to_bytes()
    assert_round_trip(m)


def test_content_length_larger_than_datagram_is_400() -> None:
    """18.3 / RFC 4475 3.1.2.2 (clerr)."""
    data = request("MESSAGE", "Content-Length: 50", body=b"only ten!!", content_length=False)
    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_missing_content_length_in_a_datagram_means_the_rest() -> None:
    data = request(
        "MESSAGE", "Content-Type: text/plain", body=b"all\r\nof it", content_length=False
    )
    m = parse_and_validate(data)
    assert m.body == b"all\r\nof it"
    wire = m.to_bytes()
    assert b"\r\nContent-Length: 10\r\n" in wire or b"\r\nl: 10\r\n" in wire


@pytest.mark.parametrize(
    "value", ["-1", "-999", "five", "1.5", "0x10", "1 2", "", "+5", str(2**64), "9" * 40]
)
def test_malformed_content_length_is_400(value: str) -> None:
    """RFC 4475 3.1.2.3 (ncl): negative or non-numeric ("Content-Length: five")."""
    data = request("MESSAGE", f"Content-Length: {value}", body=b"12345", content_length=False)
    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_conflicting_content_lengths_are_400() -> None:
    """RFC 4475 3.3.9 (mcl01): "equivalent to an invalid Content-Length value"."""
    data = request("MESSAGE", "Content-Length: 3", "l: 5", body=b"12345", content_length=False)
    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_leading_crlf_before_the_start_line_is_ignored() -> None:
    """RFC 3261 7.5: "implementations processing SIP messages over stream-oriented
    transports MUST ignore any CRLF appearing before the start-line" (and, liberally, on
    datagrams too); either way it must not be a different message."""
    try:
        m = parse_and_validate(b"\r\n\r\n" + request("OPTIONS"))
    except SIPParseError as error:
        assert error.status == 400
    else:
        assert isinstance(m, Request)
        assert m.method == "OPTIONS"


# --------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------


def test_binary_body_is_kept_as_bytes() -> None:
    body = bytes(range(256)) * 3
    m = parse_and_validate(request("MESSAGE", "Content-Type: application/octet-stream", body=body))
    assert isinstance(m.body, bytes)
    assert m.body == body
    again = assert_round_trip(m)
    assert again.body == body


def test_body_that_looks_like_a_message_is_just_a_body() -> None:
    inner = request("BYE")
    m = parse_and_validate(request("MESSAGE", "Content-Type: message/sip", body=inner))
    assert m.body == inner
    assert isinstance(m, Request)
    assert m.method == "MESSAGE"


def test_content_length_is_always_rewritten_to_match_the_body() -> None:
    m = parse_and_validate(request("MESSAGE", body=b"hello"))
    m.body = b"a longer body"
    again = parse_message(m.to_bytes())
    assert again.body == b"a longer body"
    assert again.headers.get_all("Content-Length") == ["13"]


# --------------------------------------------------------------------------------------
# Pass-through and exact serialization
# --------------------------------------------------------------------------------------

ODD_HEADERS = (
    'X-Weird:    lots   of   space ;;; ,,, "quoted, comma" <brackets>',
    "x-lower-case-name:value-without-space",
    "X-UTF8: Grüße 日本",
    "X-Empty:",
    'P-Asserted-Identity: "Cullen Jennings" <sip:fluffy@cisco.example.com>',
    "Supported: 100rel,  timer ,path",
    "Route: <sip:p1.example.com;lr;x-odd=q%22>,<sip:p2.example.com;lr>",
    "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKx;x-param=1;x-flag",
)


def test_untouched_headers_serialize_byte_for_byte() -> None:
    data = request("INVITE", *ODD_HEADERS, body=b"v=0\r\n")
    m = parse_and_validate(data)
    wire = m.to_bytes()
    for raw in header_fields(data):
        if canonical_name(raw.split(b":", 1)[0].decode()) != "Content-Length":
            assert b"\r\n" + raw + b"\r\n" in wire, raw
    assert wire.endswith(b"\r\n\r\nv=0\r\n")
    assert_round_trip(m)


def test_a_message_already_in_canonical_form_serializes_identically() -> None:
    data = request("INVITE", *ODD_HEADERS, body=b"v=0\r\n")
    first = parse_message(data).to_bytes()
    assert parse_message(first).to_bytes() == first


def test_changing_one_header_leaves_the_others_byte_exact() -> None:
    data = request("INVITE", *ODD_HEADERS)
    m = parse_and_validate(data)
    m.headers.set("Subject", "new subject")
    m.headers.remove("X-Empty")
    wire = m.to_bytes()
    for raw in header_fields(data):
        name = canonical_name(raw.split(b":", 1)[0].decode())
        if name not in ("Content-Length", "X-Empty"):
            assert b"\r\n" + raw + b"\r\n" in wire, raw
    again = parse_message(wire)
    assert again.headers.get("Subject") == "new subject"
    assert "X-Empty" not in again.headers


def test_unknown_headers_and_params_are_kept() -> None:
    m = parse_and_validate(request("INVITE", *ODD_HEADERS))
    assert m.headers.get("X-UTF8") == "Grüße 日本"
    assert (m.headers.get("X-Empty") or "").strip() == ""
    assert m.headers.get("X-LOWER-CASE-NAME") == "value-without-space"
    assert m.headers.get_all("Supported") == ["100rel", "timer", "path"]
    assert len(m.headers.get_all("Route")) == 2
    via = m.vias[1]
    assert via.params.get("x-param") == "1"
    assert "x-flag" in via.params


def test_non_utf8_header_bytes_survive() -> None:
    """docs/sip-api.md: undecodable bytes are kept with surrogateescape."""
    data = request("OPTIONS").replace(b"\r\n\r\n", b"\r\nX-Latin1: caf\xe9 \xff\r\n\r\n", 1)
    try:
        m = parse_and_validate(data)
    except SIPParseError as error:
        assert error.status == 400
        return
    value = m.headers.get("X-Latin1")
    assert value is not None
    assert value.encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
    assert b"\r\nX-Latin1: caf\xe9 \xff\r\n" in m.to_bytes()


def test_non_utf8_bytes_survive_every_strict_first_decode_and_encode() -> None:
    """get(), add(), the views and the start lines decode strictly first and fall back
    to surrogateescape: the text is what surrogateescape alone gives."""
    raw = b"caf\xe9 \xff"
    text = raw.decode("utf-8", "surrogateescape")
    h = Headers()
    h.add("X-Latin1", text)
    h.add("X-Utf8", "caf\u00e9")
    assert h.raw("X-Latin1") == raw
    assert h.get("X-Latin1") == text
    assert h.raw("X-Utf8") == "caf\u00e9".encode()
    assert h.get("X-Utf8") == "caf\u00e9"
    data = request("OPTIONS", uri="sip:b@example.com;x=cafe")
    data = data.replace(b";x=cafe", b";x=caf\xe9\xff", 1)
    m = parse_message(data)
    assert isinstance(m, Request)
    assert m.uri == "sip:b@example.com;x=" + b"caf\xe9\xff".decode("utf-8", "surrogateescape")
    assert m.to_bytes().startswith(b"OPTIONS sip:b@example.com;x=caf\xe9\xff SIP/2.0\r\n")
    resp = Response(200, "caf" + text)
    assert resp.to_bytes().startswith(b"SIP/2.0 200 caf" + raw + b"\r\n")


def test_header_section_order_is_kept() -> None:
    data = request("INVITE", *ODD_HEADERS)
    m = parse_message(data)
    again = parse_message(m.to_bytes())
    assert [name for name, _ in again.headers.items()] == [name for name, _ in m.headers.items()]


# --------------------------------------------------------------------------------------
# Constructing messages
# --------------------------------------------------------------------------------------


def _dialog_headers() -> Headers:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8")
    h.add("Max-Forwards", "70")
    h.add("To", "Bob <sip:bob@biloxi.example.com>")
    h.add("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774")
    h.add("Call-ID", "a84b4c76e66710")
    h.add("CSeq", "314159 INVITE")
    return h


def test_request_built_from_parts() -> None:
    req = Request("INVITE", "sip:bob@biloxi.example.com", _dialog_headers(), b"v=0\r\n")
    assert req.version == "SIP/2.0"
    assert req.method == "INVITE"
    assert req.request_uri == parse_uri("sip:bob@biloxi.example.com")
    again = parse_and_validate(req.to_bytes())
    assert isinstance(again, Request)
    assert again.method == "INVITE"
    assert again.body == b"v=0\r\n"
    assert again.cseq.number == 314159
    assert again.from_tag == "1928301774"
    assert header_items(again) == header_items(req)


def test_request_built_with_a_uri_object() -> None:
    uri = parse_uri("sip:bob@[2001:db8::1]:5070;transport=tcp")
    req = Request("INVITE", uri, _dialog_headers())
    again = parse_message(req.to_bytes())
    assert isinstance(again, Request)
    assert again.request_uri == uri


def test_response_built_from_parts() -> None:
    resp = Response(180, "Ringing", _dialog_headers())
    assert resp.body == b""
    again = parse_and_validate(resp.to_bytes())
    assert isinstance(again, Response)
    assert (again.status, again.reason) == (180, "Ringing")
    assert again.to_bytes().startswith(b"SIP/2.0 180 Ringing\r\n")


# --------------------------------------------------------------------------------------
# response_for (RFC 3261 8.2.6.2)
# --------------------------------------------------------------------------------------


def _incoming_invite() -> Request:
    data = build(
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2d4790.1;received=192.0.2.3",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport=5066",
        "Max-Forwards: 69",
        "Record-Route: <sip:proxy.example.com;lr>",
        "To: Bob <sip:bob@biloxi.example.com>",
        'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        "Content-Type: application/sdp",
        "Supported: timer",
        body=b"v=0\r\n",
    )
    m = parse_and_validate(data)
    assert isinstance(m, Request)
    return m


def test_response_for_copies_exactly_via_from_to_call_id_cseq() -> None:
    req = _incoming_invite()
    resp = response_for(req, 486)
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason, resp.version) == (486, "Busy Here", "SIP/2.0")
    assert resp.body == b""
    names = [canonical_name(n) for n, _ in header_items(resp)]
    assert sorted(set(names)) == ["CSeq", "Call-ID", "From", "To", "Via"]
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    for name in ("From", "To", "Call-ID", "CSeq"):
        assert resp.headers.get(name) == req.headers.get(name), name
    # "adds nothing else": no To tag is invented here
    assert resp.to_tag is None
    assert resp.from_tag == "1928301774"
    assert [v.branch for v in resp.vias] == ["z9hG4bK2d4790.1", "z9hG4bKnashds8"]
    again = parse_and_validate(resp.to_bytes())
    assert isinstance(again, Response)
    assert again.status == 486
    assert again.call_id == req.call_id
    assert (again.cseq.number, again.cseq.method) == (314159, "INVITE")


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (100, "Trying"),
        (180, "Ringing"),
        (183, "Session Progress"),
        (200, "OK"),
        (400, "Bad Request"),
        (404, "Not Found"),
        (413, "Request Entity Too Large"),
        (416, "Unsupported URI Scheme"),
        (420, "Bad Extension"),
        (481, "Call/Transaction Does Not Exist"),
        (483, "Too Many Hops"),
        (487, "Request Terminated"),
        (500, "Server Internal Error"),
        (503, "Service Unavailable"),
        (505, "Version Not Supported"),
        (513, "Message Too Large"),
        (603, "Decline"),
    ],
)
def test_response_for_default_reason_phrases(status: int, phrase: str) -> None:
    """RFC 3261 section 21's reason phrases."""
    assert response_for(_incoming_invite(), status).reason == phrase


def test_response_for_explicit_reason() -> None:
    resp = response_for(_incoming_invite(), 480, "Gone Fishing")
    assert (resp.status, resp.reason) == (480, "Gone Fishing")


def test_response_for_does_not_share_headers_with_the_request() -> None:
    req = _incoming_invite()
    resp = response_for(req, 200)
    resp.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf")
    assert resp.to_tag == "a6c85cf"
    assert req.to_tag is None
    assert req.headers.get("To") == "Bob <sip:bob@biloxi.example.com>"


# --------------------------------------------------------------------------------------
# parse_message's own checks (docs/sip-api.md: "Via, CSeq, Call-ID, From, To must be
# present and well formed")
# --------------------------------------------------------------------------------------

_REPLACEMENTS = {
    "Via": b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "To": b"To: Bob <sip:bob@biloxi.example.com>",
    "From": b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
    "Call-ID": b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq": b"CSeq: 314159 INVITE",
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Via", "garbage"),
        ("Via", "SIP/2.0/UDP 192.0.2.15;;,;,,"),  # RFC 4475 badinv01
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, junk"),
        ("To", '"Mr. J. User <sip:j.user@example.com>'),  # RFC 4475 quotbal
        ("To", "<sip:bob@biloxi.example.com"),
        ("From", "<sip:alice@atlanta.example.com>;tag=1;;"),
        ("From", "not a name-addr at all"),
        ("CSeq", "x INVITE"),
        ("Call-ID", ""),
        ("Call-ID", "has space@atlanta.example.com"),  # callid = word [ "@" word ]
        ("Call-ID", "a@b@c"),
    ],
)
def test_parse_message_refuses_a_malformed_transaction_layer_header(name: str, value: str) -> None:
    data = request("INVITE").replace(_REPLACEMENTS[name], f"{name}: {value}".encode())
    assert data != request("INVITE")
    with pytest.raises(SIPParseError) as info:
        parse_message(data)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "duplicate",
    [
        "Call-ID: another@atlanta.example.com",
        "CSeq: 2 INVITE",
        "From: <sip:carol@chicago.example.com>;tag=9",
        "To: <sip:dave@example.com>",
    ],
)
def test_parse_message_refuses_a_second_single_valued_header(duplicate: str) -> None:
    """RFC 4475 3.3.8 (multi01): "An element receiving this request would respond with a
    400 Bad Request error" - and these are the fields the transaction layer relies on."""
    with pytest.raises(SIPParseError) as info:
        parse_message(request("INVITE", duplicate))
    assert info.value.status == 400


# --------------------------------------------------------------------------------------
# compact(): messages held for a whole call keep their text only
# --------------------------------------------------------------------------------------


def test_compact_keeps_every_field_and_drops_views_index_and_raw_lines() -> None:
    wire = (
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"v:  SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8 ,"
        b" SIP/2.0/UDP relay.example.com;branch=z9hG4bK77\r\n"
        b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nMax-Forwards: 70\r\n"
        b"Contact: <sip:alice@pc33.example.com>\r\nContent-Length: 4\r\n\r\nbody"
    )
    m = parse_message(wire)
    assert isinstance(m, Request)
    before = (m.top_via, m.from_tag, m.cseq, m.request_uri, m.contacts, m.body)
    assert m.headers.cache
    m.compact()
    assert m.headers.cache == {}
    assert all(raw is None for *_, raw in m.headers._entries)
    # Decoded again on demand, equal to what they were.
    assert (m.top_via, m.from_tag, m.cseq, m.request_uri, m.contacts, m.body) == before
    again = parse_message(m.to_bytes())
    assert [(n.lower(), v) for n, v in again.headers] == [
        (n.lower(), v) for n, v in parse_message(wire).headers
    ]
    assert again.body == b"body"


_HELD = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"v:  SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8 ,"
    b" SIP/2.0/UDP relay.example.com;branch=z9hG4bK77\r\n"
    b"Via: SIP/2.0/UDP third.example.com;branch=z9hG4bK78\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=1928301774\r\n'
    b"t: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nMax-Forwards: 70\r\n"
    b"Contact: <sip:alice@pc33.example.com>\r\nX-Odd:   \xc3\xa9t\xe9 \r\n"
    b"Content-Length: 4\r\n\r\nbody"
)


def _views(m: Request | Response) -> tuple[object, ...]:
    return (
        m.top_via, m.vias, m.branch, m.from_, m.to, m.from_tag, m.to_tag, m.call_id,
        m.cseq, m.max_forwards, m.contacts, m.content_type, m.headers.items(),
        m.headers.get_all("Via"), m.headers.raw("X-Odd"), len(m.headers), "t" in m.headers,
        m.headers.count("Via"),
    )  # fmt: skip


def test_a_compacted_message_reads_and_writes_as_before_and_keeps_no_views() -> None:
    """compact() keeps the header lines as one blob: the same bytes on the wire as the
    lines written from their names and values, the same views, nothing kept per read."""
    m = parse_message(_HELD)
    plain = parse_message(_HELD)
    plain.headers._entries = [(k, n, v, None) for k, n, v, _ in plain.headers._entries]
    before = _views(m)
    m.compact()
    assert m.to_bytes() == plain.to_bytes()
    assert _views(m) == before
    assert m.headers == plain.headers
    assert m.headers.cache == {}  # views decoded from a compacted message are not kept
    assert m.headers.copy().items() == plain.headers.items()
    assert response_for(m, 200).to_bytes() == response_for(plain, 200).to_bytes()  # type: ignore[arg-type]
    m.validate()
    m.compact()  # again: nothing changes
    assert m.to_bytes() == plain.to_bytes()


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.add("Route", "<sip:p.example.com;lr>"),
        lambda h: h.add("Via", "SIP/2.0/UDP b2b.example.com;branch=z9hG4bKb2b", first=True),
        lambda h: h.set("Max-Forwards", "69"),
        lambda h: h.remove("Contact"),
        lambda h: h.pop_first_value("Via"),
        lambda h: h.replace_first_value("v", "SIP/2.0/TCP new.example.com;branch=z9hG4bKn"),
    ],
)
def test_a_compacted_message_can_still_be_changed(change: Callable[[Headers], object]) -> None:
    m = parse_message(_HELD)
    plain = parse_message(_HELD)
    plain.headers._entries = [(k, n, v, None) for k, n, v, _ in plain.headers._entries]
    _ = (m.top_via, m.cseq)
    m.compact()
    _ = (m.top_via, m.to_tag)  # read while compacted
    assert change(m.headers) == change(plain.headers)
    assert m.to_bytes() == plain.to_bytes()
    assert _views(m) == _views(plain)
    assert m.headers.cache  # an ordinary Headers again: views kept
    m.compact()
    assert m.to_bytes() == plain.to_bytes()


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Colon: in name", "v"), ("X-Line", "a\r\nb"), ("X-\u20ac", "v"), ("X-Crlf\r\n", "v")],
)
def test_compact_keeps_lines_a_blob_cannot_hold(name: str, value: str) -> None:
    """A header name or value that would not split back from the blob the same keeps
    the message in lines (raw bytes dropped all the same)."""
    m = parse_message(request("OPTIONS"))
    m.headers.add(name, value)
    items = m.headers.items()
    m.compact()
    assert m.headers.items() == items
    assert m.headers.cache == {}
    assert all(raw is None for *_, raw in m.headers._entries)
    m.headers.add("Max-Forwards", "70")
    assert m.headers.get(name) == value


@pytest.mark.parametrize("to_tag", [None, "b2b-tag"])
def test_response_for_shares_the_request_views_of_the_lines_it_copies(to_tag: str | None) -> None:
    """The response's Via, From, Call-ID and CSeq lines are the request's: so are their
    views (decoded once); To's only when To is copied unchanged.  Each message still
    has its own cache, so a change to one leaves the other's views alone."""
    req = parse_message(_HELD)
    assert isinstance(req, Request)
    _ = req.from_
    resp = response_for(req, 200, to_tag=to_tag)
    fresh = parse_message(resp.to_bytes())
    assert resp.top_via is req.top_via and resp.cseq is req.cseq and resp.from_ is req.from_
    assert (resp.call_id, resp.from_tag) == (req.call_id, req.from_tag)
    assert (resp.top_via, resp.cseq, resp.from_, resp.call_id, resp.from_tag, resp.vias) == (
        fresh.top_via, fresh.cseq, fresh.from_, fresh.call_id, fresh.from_tag, fresh.vias,
    )  # fmt: skip
    assert (resp.to_tag, resp.to) == (fresh.to_tag, fresh.to)
    assert resp.to_tag == to_tag
    resp.headers.replace_first_value("Via", "SIP/2.0/UDP other.example.com;branch=z9hG4bKo")
    assert resp.top_via.host == "other.example.com"
    assert req.top_via.host == "pc33.example.com"


def test_status_lines_read_before_give_the_same_response_and_the_cache_is_bounded() -> None:
    """Status lines are remembered (the same few come again and again), within a limit."""
    for i in range(parser._STATUS_LINES_MAX * 2 + 3):
        for _ in range(2):
            m = parse_message(response(180, f"Ringing {i}"))
            assert isinstance(m, Response)
            assert (m.status, m.reason, m.version) == (180, f"Ringing {i}", "SIP/2.0")
    assert 0 < len(parser._STATUS_LINES) <= parser._STATUS_LINES_MAX
    good = response(180, "Ringing")
    for bad in (good.replace(b" 180 ", b" 99 "), good.replace(b"SIP/2.0 180", b"SIP/3.0 180")):
        for _ in range(2):  # refused every time, never remembered
            with pytest.raises(SIPParseError) as info:
                parse_message(bad)
            assert info.value.status in (400, 505)
