"""RFC 4475 (SIP Torture Test Messages) and RFC 5118 (... for IPv6) against b2bua.sip.

Every message is a fixture in tests/data/torture/ (see its README.md for provenance).
Each message arrives as one UDP datagram: ``parse_message`` has datagram semantics.

- Well-formed messages must parse, validate, and survive ``to_bytes`` / ``parse_message``.
- Malformed messages must be refused with ``SIPParseError`` carrying the status a UAS
  answers with, except where the RFC lets an element be liberal: there the test accepts
  either outcome, and checks what the RFC requires of an element that accepts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from b2bua.sip import Request, Response, SIPParseError, parse_message, parse_uri
from tests.unit.sip.sipdata import (
    Message,
    assert_round_trip,
    field_name,
    find_param,
    header_fields,
    load,
    parse_and_validate,
    squeeze,
    user_octets,
)

SDP_150 = (
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.%s\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.%s\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# RFC 4475 3.1.1 (valid), 3.2 badbranch is below, 3.3 and 3.4 messages that "must parse".
WELL_FORMED_4475 = [
    "wsinv",  # 3.1.1.1 A Short Tortuous INVITE
    "intmeth",  # 3.1.1.2 Wide Range of Valid Characters
    "esc01",  # 3.1.1.3 Valid Use of the % Escaping Mechanism
    "escnull",  # 3.1.1.4 Escaped Nulls in URIs
    "esc02",  # 3.1.1.5 Use of % When It Is Not an Escape
    "lwsdisp",  # 3.1.1.6 Message with No LWS between Display Name and <
    "longreq",  # 3.1.1.7 Long Values in Header Fields
    "dblreq",  # 3.1.1.8 Extra Trailing Octets in a UDP Datagram
    "semiuri",  # 3.1.1.9 Semicolon-Separated Parameters in URI User Part
    "transports",  # 3.1.1.10 Varied and Unknown Transport Types
    "mpart01",  # 3.1.1.11 Multipart MIME Message
    "unreason",  # 3.1.1.12 Unusual Reason Phrase
    "noreason",  # 3.1.1.13 Empty Reason Phrase
    "unksm2",  # 3.3.4 Unknown URI Schemes in Header Fields ("syntactically valid")
    "bext01",  # 3.3.5 Proxy-Require and Require (answered 420 by the application)
    "invut",  # 3.3.6 Unknown Content-Type (415 by an endpoint, not a parse error)
    "regaut01",  # 3.3.7 Unknown Authorization Scheme ("The request is well formed")
    "bcast",  # 3.3.10 200 OK Response with Broadcast Via ("The message is well formed")
    "zeromf",  # 3.3.11 Max-Forwards of Zero ("a legal SIP request")
    "cparam01",  # 3.3.12 REGISTER with a Contact Header Parameter
    "cparam02",  # 3.3.13 REGISTER with a url-parameter
    "regescrt",  # 3.3.14 REGISTER with a URL Escaped Header
    "sdp01",  # 3.3.15 Unacceptable Accept Offering (406 or 400 by the application)
    "inv2543",  # 3.4.1 INVITE with RFC 2543 Syntax
]

# RFC 5118 section 4: everything but ipv6-bad "must parse".
WELL_FORMED_5118 = [
    "ipv6-good",  # 4.1
    "port-ambiguous",  # 4.3 "From a parsing perspective, the request below is well-formed"
    "port-unambiguous",  # 4.4
    "via-received-param-with-delim",  # 4.5 "must parse them successfully"
    "via-received-param-no-delim",  # 4.5
    "ipv6-in-sdp",  # 4.6
    "mult-ip-in-header",  # 4.7
    "mult-ip-in-sdp",  # 4.8
    "ipv4-mapped-ipv6",  # 4.9 "must be prepared to parse it successfully"
    "ipv6-bug-abnf-3-colons",  # 4.10 "an implementation must tolerate both of the above"
    "ipv6-correct-abnf-2-colons",  # 4.10
]

WELL_FORMED = WELL_FORMED_4475 + WELL_FORMED_5118


@pytest.mark.parametrize("name", WELL_FORMED)
def test_well_formed_message_parses_validates_and_round_trips(name: str) -> None:
    message = parse_and_validate(load(name))
    assert_round_trip(message)


@pytest.mark.parametrize("name", WELL_FORMED)
def test_untouched_headers_serialize_from_their_original_bytes(name: str) -> None:
    """docs/sip-api.md: "Headers nobody changed serialize from their original bytes"."""
    data = load(name)
    wire = parse_message(data).to_bytes()
    head = wire.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    position = 0
    for raw in header_fields(data):
        if field_name(raw) == "Content-Length":
            continue
        found = head.find(b"\r\n" + raw + b"\r\n", position)
        assert found >= 0, f"header field {raw!r} not kept byte for byte (or out of order)"
        position = found + 2


# --------------------------------------------------------------------------------------
# RFC 4475 section 3.1.1: what each valid message is about
# --------------------------------------------------------------------------------------


def test_wsinv_short_tortuous_invite() -> None:
    m = parse_and_validate(load("wsinv"))
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    # "unknown Request-URI parameter", "a uri parameter with no value"
    assert m.request_uri.user == "vivekg"
    assert m.request_uri.host == "chair-dnrc.example.com"
    assert m.request_uri.params == {"unknownparam": None}
    # "LWS between colons, semicolons, header field values, and other fields"
    assert m.to.uri == parse_uri("sip:vivekg@chair-dnrc.example.com")
    assert m.to_tag == "1918181833n"
    # "escaped characters within quotes": "J Rosenberg \\\"" is J Rosenberg \"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.uri == parse_uri("sip:jdrosen@example.com")
    assert m.from_tag == "98asjd8"
    # "integer fields (Max-Forwards and CSeq) with leading zeros"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    # "both comma separated and separately listed header field values", "a mix of short
    # and long form for the same header field name"
    assert [v.transport for v in m.vias] == ["UDP", "TCP", "UDP"]
    assert [v.host for v in m.vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert [v.branch for v in m.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert m.top_via.host == "192.0.2.2"
    assert m.branch == "390skdjuw"
    # "an empty subject"
    assert "Subject" in m.headers
    assert (m.headers.get("Subject") or "").strip() == ""
    # "unknown header fields"
    assert squeeze(m.headers.get("NewFangledHeader") or "") == (
        "newfangled value continued newfangled value"
    )
    # "an unknown header field with a value that would be syntactically invalid if it were
    # defined in terms of generic-param ... it must parse it as a header value"
    assert m.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    assert [squeeze(v) for v in m.headers.get_all("Route")] == [
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    ]
    # "unknown parameters of a known header field", "a header parameter with no value"
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.uri == parse_uri("sip:jdrosen@example.com")
    assert find_param(contact.params, "newparam") == (True, "newvalue")
    assert find_param(contact.params, "secondparam") == (True, None)
    assert find_param(contact.params, "q") == (True, "0.33")
    assert m.body == SDP_150 % (b"3", b"4")


def test_intmeth_wide_range_of_valid_characters() -> None:
    m = parse_and_validate(load("intmeth"))
    assert isinstance(m, Request)
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    # "% is not an escape character for this field"
    assert m.method == method
    assert m.cseq.method == method
    assert m.cseq.number == 139122385
    assert user_octets(m.request_uri.user) == b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert user_octets(m.request_uri.password) == b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.request_uri.host == "example.com"
    # "A branch parameter contains all non-alphanum characters from token."
    assert m.branch == "z9hG4bK-.!%66*_+`'~"
    # "quoted-pair expansions, including a quoted NULL character"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert user_octets(m.to.uri.user) == b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    # "multiple tokens (instead of a quoted string)"; UTF-8 in an unknown parameter
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert find_param(m.from_.params, "fromParam''~+*_!.-%") == (True, "работающий")
    assert m.from_tag == "_token~1'+`*%!-."
    # "% is not an escape character", '" does not start a quoted string', no grouping
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_percent_escapes_compare_as_the_characters_they_encode() -> None:
    m = parse_and_validate(load("esc01"))
    assert isinstance(m, Request)
    # "The request-URI has sips:user@example.com embedded in its userpart."
    assert user_octets(m.request_uri.user) == b"sips:user@example.com"
    assert m.request_uri.host == "example.net"
    assert m.request_uri.scheme == "sip"
    assert m.request_uri == parse_uri("sip:sips%3Auser%40example.com@example.net")
    # RFC 3261 19.1.4: %75se%72 is "user" (unreserved characters equal their escapes)
    assert m.to.uri == parse_uri("sip:user@example.com")
    assert hash(m.to.uri) == hash(parse_uri("sip:user@example.com"))
    assert user_octets(m.from_.uri.user) == b"I have spaces"
    assert m.from_.uri == parse_uri("sip:I%20have%20spaces@example.net")
    # "the "name" uri-parameter has a value of "value%41", which is NOT equivalent to
    # "valueA".  Per [RFC3986], unescaping URI components is never performed recursively."
    # "%6C%72" is the parameter lr, "n%61me" the parameter name (19.1.4 compares them
    # unescaped), so a URI with another value for name is a different URI.
    (contact,) = m.contacts
    assert user_octets(contact.uri.user) == b"caller"
    assert contact.uri == parse_uri("sip:caller@host5.example.net;lr;name=value%2541")
    assert contact.uri != parse_uri("sip:caller@host5.example.net;lr;name=valueA")
    assert contact.uri != parse_uri("sip:caller@host5.example.net;lr;name=other")
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact form "i"
    assert m.headers.get("Content-Type") == "application/sdp"  # compact form "C"


def test_escnull_escaped_nulls_do_not_shorten_the_user() -> None:
    m = parse_and_validate(load("escnull"))
    assert isinstance(m, Request)
    assert user_octets(m.to.uri.user) == b"null-\x00-null"
    assert user_octets(m.from_.uri.user) == b"null-\x00-null"
    assert m.to.uri != parse_uri("sip:null-@example.com")
    # "This request registers two distinct contact URIs."
    first, second = m.contacts
    assert user_octets(first.uri.user) == b"\x00"
    assert user_octets(second.uri.user) == b"\x00\x00"
    assert first.uri != second.uri


def test_esc02_percent_that_is_not_an_escape() -> None:
    m = parse_and_validate(load("esc02"))
    assert isinstance(m, Request)
    # "The request method is unknown.  It is NOT equivalent to REGISTER."
    assert m.method == "RE%47IST%45R"
    assert m.cseq.method == "RE%47IST%45R"
    # 'The display name portion of the To and From header fields is "%Z%45".'
    assert m.to.display_name == "%Z%45"
    assert m.from_.display_name == "%Z%45"
    assert m.branch == "z9hG4bK209%fzsnel234"
    # "This message has two Contact header field values, not three."
    assert [c.uri for c in m.contacts] == [
        parse_uri("sip:alias1@host1.example.com"),
        parse_uri("sip:alias3@host3.example.com"),
    ]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_no_lws_between_display_name_and_laquot() -> None:
    m = parse_and_validate(load("lwsdisp"))
    assert m.from_.display_name == "caller"
    assert m.from_.uri == parse_uri("sip:caller@example.com")
    assert m.from_tag == "323"


def test_longreq_long_values_and_many_vias() -> None:
    m = parse_and_validate(load("longreq"))
    assert isinstance(m, Request)
    assert m.to.display_name == ("I have a user name of " + "extreme" * 10 + " proportion")
    assert m.to.uri.port == 6000
    assert len(m.to.uri.params) == 3
    assert m.from_tag == "1" + "298" * 50 + "2424"
    assert len(m.from_.params) == 3
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    # 34 Via values, in order, over 34 lines spelt in every case and compact form
    assert len(m.vias) == 34
    assert [v.host for v in m.vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert all(v.transport == "TCP" for v in m.vias)
    last = m.vias[-1]
    assert last.received == "192.0.2.5"
    assert last.branch == "very" + "long" * 50 + "branchvalue"
    assert (m.headers.get("Unknown-" + "Long" * 20 + "-Name") or "").startswith(
        "unknown-" + "long" * 20 + "-value"
    )
    assert user_octets(m.contacts[0].uri.user) == b"amazinglylongcallername" * 5
    assert m.body == SDP_150 % (b"1", b"1")


def test_dblreq_extra_octets_in_a_datagram_are_ignored() -> None:
    data = load("dblreq")
    m = parse_and_validate(data)
    # "they are just spurious noise that must be ignored"
    assert isinstance(m, Request)
    assert m.method == "REGISTER"
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.body == b""
    # "the INVITE octets would not appear in the forwarded request"
    assert b"INVITE" not in m.to_bytes()
    assert b"INVITE" in data


def test_semiuri_semicolon_in_user_part() -> None:
    m = parse_and_validate(load("semiuri"))
    assert isinstance(m, Request)
    # 'The Request-URI will parse so that the user part is "user;par=u@example.net".'
    assert user_octets(m.request_uri.user) == b"user;par=u@example.net"
    assert m.request_uri.host == "example.com"
    assert m.request_uri.params == {}
    # one Accept header folded over three lines, six values
    assert [squeeze(v) for v in m.headers.get_all("Accept")] == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_varied_and_unknown_transport_types() -> None:
    m = parse_and_validate(load("transports"))
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in m.vias] == [f"t{n}.example.com" for n in range(1, 6)]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def _mpart01_body() -> bytes:
    data = load("mpart01")
    body = data[data.index(b"\r\n\r\n") + 4 :]
    assert len(body) == 553  # its Content-Length
    return body


def test_mpart01_binary_multipart_body_is_kept_byte_exact() -> None:
    m = parse_and_validate(load("mpart01"))
    body = _mpart01_body()
    # "The second part is binary encoded and contains null (0x00) characters."
    assert b"\x00" in body
    assert body.endswith(b"\r\n--7a9cbec02ceef655--\r\n")
    assert m.body == body
    again = parse_message(m.to_bytes())
    assert again.body == body
    assert m.top_via.port == 5070
    assert m.top_via.rport is True
    assert (m.headers.get("Identity") or "").startswith("r5mwreLuyDRYBi/0TiPwEsY3rEVsk")
    assert m.headers.get("Content-Type") == "multipart/mixed;boundary=7a9cbec02ceef655"


def test_unreason_utf8_reason_phrase() -> None:
    m = parse_and_validate(load("unreason"))
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert m.body == SDP_150 % (b"198", b"198")


def test_noreason_empty_reason_phrase() -> None:
    m = parse_and_validate(load("noreason"))
    assert isinstance(m, Response)
    assert m.status == 100
    assert m.reason == ""


# --------------------------------------------------------------------------------------
# RFC 4475 section 3.1.2: invalid messages
# --------------------------------------------------------------------------------------

# Messages every element must refuse, with the response the RFC names.
MUST_REJECT = {
    # 3.1.2.1 "An element receiving this request should respond with a 400 Bad Request"
    "badinv01": 400,
    # 3.1.2.2 "When sent over UDP ... should respond with a 400 Bad Request error"
    "clerr": 400,
    # 3.1.2.3 "An element receiving this message should respond with an error."
    "ncl": 400,
    # 3.1.2.4 "should respond with a 400 Bad Request due to the CSeq error"
    "scalar02": 400,
    # 3.1.2.5 "An element receiving this response will simply discard it." (CSeq > 2**32-1)
    "scalarlg": 400,
    # 3.1.2.16 "The element should respond to the request with a 505 Version Not Supported"
    "badvers": 505,
    # 3.1.2.17 "Any element receiving this request will respond with a 400 Bad Request."
    "mismatch01": 400,
    # 3.1.2.19 "This response has a response code larger than 699 ... should simply drop it"
    "bigcode": 400,
    # 3.3.1 Missing Required Header Fields (no Call-ID, From, To): 400 Bad Request
    "insuf": 400,
    # 3.3.8 "multiple Call-ID, To, From, Max-Forwards, and CSeq values ... would respond
    # with a 400 Bad Request error"
    "multi01": 400,
    # 3.3.9 Multiple Content-Length Values: "should respond with an error"
    "mcl01": 400,
    # RFC 5118 4.2 "should respond with a 400 Bad Request error"
    "ipv6-bad": 400,
}


@pytest.mark.parametrize(("name", "status"), sorted(MUST_REJECT.items()))
def test_malformed_message_is_refused_with_the_right_status(name: str, status: int) -> None:
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(load(name))
    assert info.value.status == status
    assert info.value.reason


def _accepting_never_forwards_brackets(m: Message) -> None:
    # ltgtruri: "If the element forwards the request, it must not include the brackets"
    assert isinstance(m, Request)
    assert m.request_uri == parse_uri("sip:user@example.com")
    assert b"<" not in m.to_bytes().split(b"\r\n", 1)[0]


def _accepting_ignores_lws_in_ruri(m: Message) -> None:
    # lwsruri: "An element could attempt to ignore the embedded LWS"
    assert isinstance(m, Request)
    assert m.request_uri == parse_uri("sip:user@example.com;lr")


def _accepting_drops_extra_sp(expected: bytes) -> Callable[[Message], None]:
    # lwsstart, trws: "If the element forwards the request, it must not include these
    # extra SP characters in the messages it sends."
    def check(m: Message) -> None:
        assert m.to_bytes().split(b"\r\n", 1)[0] == expected

    return check


def _accepting_infers_brackets(m: Message) -> None:
    # regbadct: "could infer the angle brackets since there is no ambiguity"
    (contact,) = m.contacts
    assert any(k.lower() == "route" for k in contact.uri.headers)


def _accepting_ignores_spaces_in_addr_spec(m: Message) -> None:
    # badaspec: "Elements attempting to be liberal may ignore the spaces."
    assert m.to.uri == parse_uri("sip:t.watson@example.org")


def _accepting_keeps_unknown_method(m: Message) -> None:
    # mismatch02: an element that parses it answers 501 Not Implemented
    assert isinstance(m, Request)
    assert (m.method, m.cseq.method) == ("NEWMETHOD", "INVITE")


def _no_check(m: Message) -> None:
    assert isinstance(m, Request | Response)


# Messages the RFC lets an element accept liberally: refusing is 400 (or the listed
# statuses), accepting must satisfy the check.
MAY_ACCEPT: dict[str, tuple[tuple[int, ...], Callable[[Message], None]]] = {
    # 3.1.2.6 "should return a 400 Bad Request error.  An element could attempt to infer
    # a terminating quote and accept the message."
    "quotbal": ((400,), _no_check),
    # 3.1.2.7 "It is reasonable always to reject a request with this error with a 400 Bad
    # Request.  Elements attempting to be liberal ... may choose to ignore the brackets."
    "ltgtruri": ((400,), _accepting_never_forwards_brackets),
    # 3.1.2.8 "should respond with a 400 Bad Request.  An element could attempt to ignore
    # the embedded LWS for those schemes (like SIP) where doing so would not introduce
    # ambiguity."
    "lwsruri": ((400,), _accepting_ignores_lws_in_ruri),
    # 3.1.2.9 "It is acceptable to reject this request as malformed.  An element that is
    # liberal in what it accepts may ignore these extra SP characters"
    "lwsstart": ((400,), _accepting_drops_extra_sp(b"INVITE sip:user@example.com SIP/2.0")),
    # 3.1.2.10 same words as 3.1.2.9
    "trws": ((400,), _accepting_drops_extra_sp(b"OPTIONS sip:remote-target@example.com SIP/2.0")),
    # 3.1.2.11 "It is acceptable for an element to reject this request with a 400 Bad
    # Request.  An element could choose to be liberal in what it accepts and ignore the
    # escaped headers."
    "escruri": ((400,), _no_check),
    # 3.1.2.13 "It is reasonable for an element receiving this request to respond with a
    # 400 Bad Request.  An element choosing to be liberal in what it accepts could infer
    # the angle brackets"
    "regbadct": ((400,), _accepting_infers_brackets),
    # 3.1.2.14 "It is reasonable to reject this request with a 400 Bad Request response.
    # Elements attempting to be liberal may ignore the spaces."
    "badaspec": ((400,), _accepting_ignores_spaces_in_addr_spec),
    # 3.1.2.15 "It is reasonable always to reject this kind of error with a 400 Bad Request
    # response.  An element may attempt to be liberal in what it receives and infer the
    # missing quotes."  (The archive's file also lacks the empty line ending the headers.)
    "baddn": ((400,), _no_check),
    # 3.1.2.18 "should respond with a 501 Not Implemented.  A 400 Bad Request is also
    # acceptable"
    "mismatch02": ((400, 501), _accepting_keeps_unknown_method),
}


@pytest.mark.parametrize("name", sorted(MAY_ACCEPT))
def test_malformed_message_the_rfc_lets_an_element_accept(name: str) -> None:
    statuses, check = MAY_ACCEPT[name]
    try:
        m = parse_and_validate(load(name))
    except SIPParseError as error:
        assert error.status in statuses
    else:
        check(m)


def test_baddn_with_its_header_section_ended_is_judged_on_the_display_names() -> None:
    """The archive's baddn.dat has no empty line; this copy tests only the display names."""
    data = load("baddn") + b"\r\n"
    try:
        m = parse_and_validate(data)
    except SIPParseError as error:
        assert error.status == 400
    else:
        # "infer the missing quotes"
        assert m.from_.uri == parse_uri("sip:a.g.bell@example.com")
        assert m.to.uri == parse_uri("sip:t.watson@example.org")


def test_baddate_the_date_only_matters_to_validate() -> None:
    """3.1.2.12: "It is acceptable to reject this request as malformed (though an element
    shouldn't do that unless the contents of the Date header field were actually important
    to its processing)."  Date is not one of the fields parse_message checks."""
    m = parse_message(load("baddate"))
    assert isinstance(m, Request)
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    try:
        m.validate()
    except SIPParseError as error:
        assert error.status == 400


def test_bigcode_is_refused_before_any_field_is_trusted() -> None:
    with pytest.raises(SIPParseError):
        parse_message(load("bigcode"))


def test_framing_errors_are_refused_by_parse_message_itself() -> None:
    """Framing errors are found by parse_message, before validate()."""
    for name in ("clerr", "ncl", "mcl01"):
        with pytest.raises(SIPParseError) as info:
            parse_message(load(name))
        assert info.value.status == 400, name


# --------------------------------------------------------------------------------------
# RFC 4475 section 3.2: transaction layer semantics (parse level)
# --------------------------------------------------------------------------------------


def test_badbranch_magic_cookie_without_identifier() -> None:
    """3.2.1: "A parser must not break when receiving this message.  An element receiving
    this request could reject the request with a 400 Response ... or it could fall back to
    the RFC 2543-style transaction identifier." """
    try:
        m = parse_and_validate(load("badbranch"))
    except SIPParseError as error:
        assert error.status == 400
    else:
        assert m.branch == "z9hG4bK"
        assert_round_trip(m)


# --------------------------------------------------------------------------------------
# RFC 4475 section 3.3: application layer semantics (parse level)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scheme"), [("unkscm", "nobodyknowsthisscheme"), ("novelsc", "soap.beep")]
)
def test_request_uri_with_unknown_or_atypical_scheme(name: str, scheme: str) -> None:
    """3.3.2: "A parser must accept this as a well-formed SIP request.  An element receiving
    this request will reject it with a 416 Unsupported URI Scheme response."  (3.3.3 alike.)
    So parse_message must accept it; validate may refuse it, with 416 only."""
    m = parse_message(load(name))
    assert isinstance(m, Request)
    assert m.request_uri.scheme.lower() == scheme
    try:
        m.validate()
    except SIPParseError as error:
        assert error.status == 416
    else:
        assert_round_trip(m)


def test_unksm2_unknown_schemes_in_header_fields() -> None:
    m = parse_and_validate(load("unksm2"))
    assert m.to.uri.scheme.lower() == "isbn"
    assert m.from_.uri.scheme.lower() == "http"
    assert m.from_tag == "3234233"
    assert [c.uri.scheme.lower() for c in m.contacts] == ["name"]


def test_bext01_unknown_option_tags_are_listed() -> None:
    m = parse_and_validate(load("bext01"))
    assert m.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.headers.get_all("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]
    assert m.top_via.transport == "TLS"


def test_invut_unknown_content_type_body_is_kept() -> None:
    m = parse_and_validate(load("invut"))
    assert m.headers.get("Content-Type") == "application/unknownformat"
    assert m.body == b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n'


def test_regaut01_unknown_authorization_scheme_is_one_value() -> None:
    m = parse_and_validate(load("regaut01"))
    assert m.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]


def test_bcast_broadcast_via_parses() -> None:
    m = parse_and_validate(load("bcast"))
    assert isinstance(m, Response)
    assert m.status == 200
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


def test_zeromf_max_forwards_zero() -> None:
    m = parse_and_validate(load("zeromf"))
    assert m.max_forwards == 0


def test_cparam01_unbracketed_contact_parameter_is_a_header_parameter() -> None:
    """3.3.12: "the 'unknownparam' parameter must be interpreted as a contact-param and not
    a url-param" (RFC 3261 20.10: without <>, parameters belong to the header)."""
    (contact,) = parse_and_validate(load("cparam01")).contacts
    assert find_param(contact.params, "unknownparam") == (True, None)
    assert find_param(contact.uri.params, "unknownparam") == (False, None)
    assert contact.uri == parse_uri("sip:+19725552222@gw1.example.net")


def test_cparam02_bracketed_contact_parameter_is_a_uri_parameter() -> None:
    (contact,) = parse_and_validate(load("cparam02")).contacts
    assert find_param(contact.uri.params, "unknownparam") == (True, None)
    assert find_param(contact.params, "unknownparam") == (False, None)


def test_regescrt_escaped_header_in_contact_uri() -> None:
    """3.3.14: "a subsequent retrieval of the registration must include the escaped Route
    header in the contact URI" - so the URI keeps it."""
    (contact,) = parse_and_validate(load("regescrt")).contacts
    routes = [v for k, v in contact.uri.headers.items() if k.lower() == "route"]
    assert len(routes) == 1
    assert user_octets(routes[0]) == b"<sip:sip.example.com>"
    assert contact.uri == parse_uri("sip:user@example.com?Route=%3Csip:sip.example.com%3E")
    assert contact.uri != parse_uri("sip:user@example.com")


def test_sdp01_accept_header_is_kept() -> None:
    m = parse_and_validate(load("sdp01"))
    assert m.headers.get_all("Accept") == ["text/nobodyKnowsThis"]


# --------------------------------------------------------------------------------------
# RFC 4475 section 3.4: backward compatibility
# --------------------------------------------------------------------------------------


def test_inv2543_rfc2543_syntax_is_accepted() -> None:
    """3.4.1: no branch, no From tag, no Content-Length ("The body is assumed to be all
    octets in the datagram after the null-line."), no Max-Forwards."""
    m = parse_and_validate(load("inv2543"))
    assert isinstance(m, Request)
    assert m.branch is None
    assert m.top_via.host == "iftgw.example.com"
    assert m.from_tag is None
    assert m.to_tag is None
    assert m.max_forwards is None
    assert m.body == (
        b"v=0\r\n"
        b"o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
        b"s=-\r\n"
        b"c=IN IP4 192.0.2.5\r\n"
        b"t=0 0\r\n"
        b"m=audio 49217 RTP/AVP 0\r\n"
    )
    # RFC 3261 20.10: without <>, ";user=phone" after an addr-spec is a header parameter
    assert find_param(m.to.params, "user") == (True, "phone")
    assert m.to.uri == parse_uri("sip:+16505552222@ss1.example.net")
    assert m.from_.uri == parse_uri("sip:+13035551111@ift.client.example.net;user=phone")


# --------------------------------------------------------------------------------------
# RFC 5118: IPv6
# --------------------------------------------------------------------------------------


def test_ipv6_good_references_everywhere() -> None:
    m = parse_and_validate(load("ipv6-good"))
    assert isinstance(m, Request)
    assert m.request_uri.host == "[2001:db8::10]"
    assert m.request_uri.port is None
    assert m.top_via.host == "[2001:db8::9:1]"
    assert m.top_via.port is None
    assert m.contacts[0].uri.host == "[2001:db8::1]"
    assert m.contacts[0].display_name == "Caller"


def test_ipv6_port_inside_brackets_is_part_of_the_address() -> None:
    """4.3: "From a parsing perspective, the request below is well-formed.  However, from a
    semantic point of view, it will not yield the desired result." """
    ambiguous = parse_and_validate(load("port-ambiguous"))
    assert isinstance(ambiguous, Request)
    assert ambiguous.request_uri.host == "[2001:db8::10:5070]"
    assert ambiguous.request_uri.port is None
    unambiguous = parse_and_validate(load("port-unambiguous"))
    assert isinstance(unambiguous, Request)
    assert unambiguous.request_uri.host == "[2001:db8::10]"
    assert unambiguous.request_uri.port == 5070
    assert ambiguous.request_uri != unambiguous.request_uri


def test_ipv6_received_parameter_with_and_without_brackets() -> None:
    """4.5: "be liberal in accepting a 'received' parameter with or without the delimiting
    '[' and ']' tokens" """
    with_delim = parse_and_validate(load("via-received-param-with-delim"))
    assert with_delim.top_via.host == "[2001:db8::9:1]"
    assert with_delim.top_via.received in ("[2001:db8::9:255]", "2001:db8::9:255")
    assert with_delim.branch == "z9hG4bKas3-111"
    no_delim = parse_and_validate(load("via-received-param-no-delim"))
    assert no_delim.top_via.received == "2001:db8::9:255"
    assert no_delim.branch == "z9hG4bKas3"


def test_ipv6_mixed_address_families_in_vias() -> None:
    m = parse_and_validate(load("mult-ip-in-header"))
    assert [(v.transport, v.host, v.port) for v in m.vias] == [
        ("UDP", "[2001:db8::9:1]", 6050),
        ("UDP", "192.0.2.1", None),
        ("TCP", "[2001:db8::9:255]", None),
    ]
    assert m.vias[2].received == "192.0.2.200"


def test_ipv6_in_sdp_bodies_is_only_body() -> None:
    m = parse_and_validate(load("ipv6-in-sdp"))
    assert b"c=IN IP6 2001:db8::20\r\n" in m.body
    assert m.to.uri.host == "[2001:db8::10]"
    m = parse_and_validate(load("mult-ip-in-sdp"))
    assert m.body.endswith(b"a=rtpmap:107 H263-1998/90000\r\n")


def test_ipv4_mapped_ipv6_addresses() -> None:
    m = parse_and_validate(load("ipv4-mapped-ipv6"))
    assert [(v.host, v.port) for v in m.vias] == [
        ("[::ffff:192.0.2.10]", 19823),
        ("[::ffff:192.0.2.2]", None),
    ]
    assert m.contacts[0].uri.host == "[::ffff:192.0.2.2]"


@pytest.mark.parametrize(
    ("name", "hosts"),
    [
        ("ipv6-bug-abnf-3-colons", ("[2001:db8:::192.0.2.1]", "[2001:db8::192.0.2.1]")),
        ("ipv6-correct-abnf-2-colons", ("[2001:db8::192.0.2.1]",)),
    ],
)
def test_ipv6_reference_with_embedded_ipv4(name: str, hosts: tuple[str, ...]) -> None:
    m = parse_and_validate(load(name))
    assert isinstance(m, Request)
    assert m.request_uri.host in hosts
    assert m.to.uri.host in hosts
