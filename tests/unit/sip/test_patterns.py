"""The fast path of b2bua.sip (patterns.py) never changes what the general code decides.

Every pattern must accept only values the general code accepts, and what a view
builds from a match must equal what the general code builds.  Checked on values
generated from the grammar and on good values mutated one character at a time; and
each pattern must take linear time on long, nasty input.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip import (
    CSeq,
    Headers,
    Request,
    SIPParseError,
    Via,
    message,
    parse_message,
    patterns,
    salvage_request,
)
from b2bua.sip.fields import (
    NameAddr,
    parse_cseq,
    parse_cseq_general,
    parse_name_addr,
    parse_name_addr_general,
    parse_via,
    parse_via_general,
)
from b2bua.sip.grammar import checked_params, is_token
from b2bua.sip.message import _FAST_CHECKS, _VALUE_CHECKS, _tag_of, _tag_of_general
from b2bua.sip.uri import URI, parse_uri, parse_uri_general
from tests.unit.sip.sipdata import build, request
from tests.unit.sip.test_properties import PROPERTY, hosts, params, parties, ports, sip_uris

#: Good values of every header with a fast check, in the shapes real messages use.
GOOD: dict[str, list[str]] = {
    "via": [
        "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport",
        "SIP/2.0/TCP 192.0.2.4;branch=z9hG4bK1;received=192.0.2.9;rport=5061;ttl=16",
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TLS b.example.com:5061;maddr=x",
        "SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK2;received=[2001:db8::1]",
    ],
    "from": [
        '"Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
        "Bob <sips:bob:pw@biloxi.example.com:5061;transport=tcp>;tag=a;x",
        ' "" <SIP:a@b.example.com;LR>;Tag=x ',
        "A \t B  C<sip:a@b.example.com>",
        "sip:a:@b.example.com:5060;TAG=1;x=y ",
        "sip:carol@chicago.example.com;tag=887s",
        "<sip:%61lice@192.0.2.1>",
    ],
    "contact": [
        "<sip:alice@192.0.2.101:5060;transport=udp>;expires=60",
        '"A" <sip:a@a.example.com>, B <sip:b@b.example.com;lr>;q=0.5',
        "<sip:a,b@a.example.com>",
    ],
    "max-forwards": ["70", "0", "255", "256"],
    "content-length": ["0", "349", "123456789", "1234567890"],
    "content-type": ["application/sdp", "multipart/mixed;boundary=unique-boundary-1"],
    "allow": ["INVITE, ACK, CANCEL, OPTIONS, BYE", " , INVITE ,, ", "100rel"],
}
#: Characters that matter to the grammars, for mutations.
ALPHABET = ' \t"<>;:,=@[]%?&/\\*.-+~ab0159ZTLtlgrpoSIP'


def _outcome(check: object, *args: object) -> tuple[str, object]:
    """("ok", result) or ("error", (status, reason)): what a call decides."""
    assert callable(check)
    try:
        return ("ok", check(*args))
    except SIPParseError as error:
        return ("error", (error.status, error.reason))


def _fields(outcome: tuple[str, object]) -> tuple[str, object]:
    """An outcome with a Via or URI result replaced by its fields, for comparing."""
    kind, result = outcome
    if isinstance(result, Via):
        return kind, (result.protocol, result.transport, result.host, result.port, result.params)
    if isinstance(result, URI):
        uri = result
        return kind, (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params)
    if isinstance(result, NameAddr):
        addr = result
        uri_fields = _fields(("ok", addr.uri))[1]
        return kind, (uri_fields, addr.uri.headers, addr.display_name, addr.params, addr.is_star)
    return outcome


def _assert_fast_agrees(key: str, value: str) -> None:
    """Whatever the fast path makes of ``value``, the general code makes the same."""
    data = value.encode("utf-8", "surrogateescape")
    if _FAST_CHECKS[key].fullmatch(data) is not None:
        _VALUE_CHECKS[key](value, key)  # must not raise
    if key == "via":
        for part in value.split(","):
            assert _fields(_outcome(parse_via, part)) == _fields(_outcome(parse_via_general, part))
        top = patterns.TOP_VIA_RE.match(value)
        if top is not None:
            via = parse_via_general(value.split(",")[0])
            assert (top.group(1).upper(), top.group(2)) == (via.transport, via.host)
    if key in ("from", "contact"):
        for part in value.split(",") if key == "contact" else [value]:
            assert _outcome(_tag_of, part, "From") == _outcome(_tag_of_general, part, "From")
            assert _fields(_outcome(parse_name_addr, part, "From")) == _fields(
                _outcome(parse_name_addr_general, part, "From")
            )
            inner = part[part.find("<") + 1 : part.find(">")] if "<" in part else part
            assert _fields(_outcome(parse_uri, inner)) == _fields(
                _outcome(parse_uri_general, inner)
            )


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in GOOD.items() for v in vs])
def test_good_values_take_the_fast_path_or_agree(key: str, value: str) -> None:
    _assert_fast_agrees(key, value)


def test_the_usual_values_do_take_the_fast_path() -> None:
    """The benchmark's INVITE must not fall back: that is what the patterns are for."""
    for key, values in GOOD.items():
        for value in values[:2]:
            assert _FAST_CHECKS[key].fullmatch(value.encode()) is not None, (key, value)
    for value in (*GOOD["from"], GOOD["contact"][0]):  # From, To and Contact views
        fast = patterns.NAME_ADDR_RE.fullmatch(value) or patterns.ADDR_SPEC_RE.fullmatch(value)
        assert fast is not None, value


@PROPERTY
@given(st.data())
def test_mutated_values_decide_as_the_general_code(data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(GOOD)))
    value = data.draw(st.sampled_from(GOOD[key]))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(value)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from(ALPHABET))
        if op == "insert":
            value = value[:at] + char + value[at:]
        elif op == "delete":
            value = value[:at] + value[at + 1 :]
        else:
            value = value[:at] + char + value[at + 1 :]
    _assert_fast_agrees(key, value)


@PROPERTY
@given(sip_uris())
def test_generated_uris_parse_as_the_general_code_parses_them(text: str) -> None:
    assert _fields(_outcome(parse_uri, text)) == _fields(_outcome(parse_uri_general, text))


@PROPERTY
@given(parties(tag=True))
def test_generated_name_addrs_pass_the_fast_check_only_when_valid(party: object) -> None:
    text = party.text  # type: ignore[attr-defined]
    _assert_fast_agrees("from", text)
    _assert_fast_agrees("contact", f"{text}, {text}")


@PROPERTY
@given(
    st.sampled_from(["UDP", "tcp", "TLS", "SCTP", "WS", "x-new"]),
    hosts,
    ports,
    params,
    st.sampled_from(["", ";rport", ";rport=5060", ";ttl=1", ";TTL=255", ";ttl=256", ";rport=0"]),
)
def test_generated_vias_parse_as_the_general_code_parses_them(
    transport: str, host: str, port: int | None, extra: dict[str, str | None], special: str
) -> None:
    hostport = host if port is None else f"{host}:{port}"
    rest = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in extra.items())
    text = f"SIP/2.0/{transport} {hostport};branch=z9hG4bK1{rest}{special}"
    _assert_fast_agrees("via", text)
    _assert_fast_agrees("via", f"{text} , {text}")


@pytest.mark.parametrize(
    "text", ["1 INVITE", " 4294967295 ACK ", "4294967296 BYE", "01 X", "1\tINVITE", "1  BYE x"]
)
def test_cseq_fast_path_agrees(text: str) -> None:
    fast, general = _outcome(parse_cseq, text), _outcome(parse_cseq_general, text)
    assert fast == general


def test_cseq_views_are_shared_by_their_bytes_and_agree_with_the_general_code() -> None:
    """Message.cseq keeps each CSeq it decodes by its bytes (bounded); bad values are
    not kept and raise every time."""
    first = parse_message(request("OPTIONS")).cseq
    again = parse_message(request("OPTIONS")).cseq
    assert again is first
    assert first == parse_cseq_general(f"{first.number} {first.method}")
    for i in range(message._CSEQS_MAX + 10):
        assert parse_message(request("OPTIONS", cseq=f"{i} OPTIONS")).cseq.number == i
    assert 0 < len(message._CSEQS) <= message._CSEQS_MAX
    for _ in range(2):
        with pytest.raises(SIPParseError, match="CSeq number out of range"):
            parse_message(request("OPTIONS", cseq="4294967296 OPTIONS"))


NASTY = [
    "a" * 20000 + "!",
    "a-" * 10000 + "!",
    "a." * 10000 + "!",
    "1." * 10000,
    ";a" * 10000 + ";",
    " " * 20000 + ",",
    ", " * 10000 + "!",
    "%4" * 10000,
    '"' + "a" * 20000,
    "<sip:" + "a" * 20000 + "@",
    "SIP/2.0/UDP " + "a" * 20000 + "!",
    "sip:" + "a;" * 10000 + "@",
    "sip:a@" + "b" * 20000 + "-",
    "a " * 10000 + "<",
]


@pytest.mark.parametrize(
    "pattern",
    [
        patterns.TOP_VIA_RE,
        patterns.SIP_URI_RE,
        patterns.NAME_ADDR_RE,
        patterns.ADDR_SPEC_RE,
        patterns.TAGGED_RE,
        patterns.CSEQ_RE,
        *sorted(set(_FAST_CHECKS.values()), key=lambda p: p.pattern),
    ],
    ids=lambda p: str(p.pattern)[:30],
)
def test_patterns_take_linear_time(pattern: object) -> None:
    began = time.monotonic()
    for nasty in NASTY:
        for text in (nasty, "SIP/2.0/UDP h;" + nasty, "<sip:a@b>;" + nasty, "A <sip:" + nasty):
            subject: str | bytes = text
            if isinstance(pattern.pattern, bytes):  # type: ignore[attr-defined]
                subject = text.encode()
            pattern.fullmatch(subject)  # type: ignore[attr-defined]
            pattern.match(subject)  # type: ignore[attr-defined]
    assert time.monotonic() - began < 1.0


# --------------------------------------------------------------------------------------
# Only the top Via is decoded; the others are still checked
# --------------------------------------------------------------------------------------

BAD_SECOND_VIAS = [
    "SIP/2.0/UDP second.example.com:99999;branch=z9hG4bK2",
    "SIP/2.0/UDP second.example.com;ttl=300",
    "SIP/2.0/UDP 999.0.0.1;branch=z9hG4bK2",
    "garbage",
    "SIP/2.0/UDP second.example.com;branch=",
]


@pytest.mark.parametrize("bad", BAD_SECOND_VIAS)
def test_a_bad_second_via_is_refused_as_the_general_code_refuses_it(bad: str) -> None:
    for data in (
        request("OPTIONS", f"Via: {bad}"),
        request("OPTIONS").replace(b"branch=z9hG4bK776asdhds", b"branch=z9hG4bK1, " + bad.encode()),
    ):
        with pytest.raises(SIPParseError) as info:
            parse_message(data)
        expected = _outcome(parse_via_general, bad.strip())
        assert expected[0] == "error"
        assert ("error", (info.value.status, info.value.reason)) == expected
        assert salvage_request(data) is None


def test_top_via_decodes_the_top_value_alone() -> None:
    headers = Headers()
    headers.add("Via", "SIP/2.0/UDP top.example.com;branch=z9hG4bKtop, garbage")
    message = Request("OPTIONS", "sip:bob@biloxi.example.com", headers)
    assert message.top_via.host == "top.example.com"
    with pytest.raises(SIPParseError):
        message.check_vias()
    with pytest.raises(SIPParseError):
        _ = message.vias


def test_views_are_decoded_once_and_kept_across_changes_to_other_headers() -> None:
    m = parse_message(request("INVITE", "Contact: <sip:alice@pc33.atlanta.example.com>"))
    via, cseq, from_tag = m.top_via, m.cseq, m.from_tag
    assert m.top_via is via and m.cseq is cseq
    m.headers.set("To", "<sip:bob@biloxi.example.com>;tag=xyz")
    m.headers.add("Record-Route", "<sip:proxy.example.com;lr>")
    assert m.top_via is via and m.cseq is cseq and m.from_tag == from_tag
    assert m.to_tag == "xyz"
    m.headers.add("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKnew", first=True)
    assert m.top_via.host == "proxy.example.com"
    assert m.cseq is cseq


def test_a_head_with_a_line_too_long_or_folded_takes_the_general_loop() -> None:
    """Both loops give the same headers."""
    plain = parse_message(request("OPTIONS", "Subject: hello world"))
    folded = parse_message(request("OPTIONS", "Subject: hello\r\n world"))
    assert plain.headers == folded.headers
    data = build(
        "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "To: <sip:bob@biloxi.example.com>",
        "From: <sip:alice@atlanta.example.com>;tag=1",
        "Call-ID: a@b",
        "CSeq: 1 OPTIONS",
        "X-Line: " + "x" * 9000,
    )
    with pytest.raises(SIPParseError, match="max_line_length"):
        parse_message(data)


def test_views_built_by_the_parser_are_ordinary_frozen_values() -> None:
    """The parser sets Via and CSeq slots directly; the results behave as constructed ones."""
    via = parse_via("SIP/2.0/udp h.example.com:5;branch=z9hG4bK1")
    assert via == Via("UDP", "h.example.com", 5, {"branch": "z9hG4bK1"})
    assert str(via) == "SIP/2.0/UDP h.example.com:5;branch=z9hG4bK1"
    cseq = parse_cseq("7 INVITE")
    assert cseq == CSeq(7, "INVITE")
    assert hash(cseq) == hash(CSeq(7, "INVITE"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        via.host = "elsewhere"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cseq.number = 8  # type: ignore[misc]
    uri = parse_uri("SIP:bob@biloxi.example.com:5060;Transport=udp")
    built = URI("sip", "bob", None, "biloxi.example.com", 5060, {"transport": "udp"})
    assert (uri, hash(uri), uri.headers, uri.opaque) == (built, hash(built), {}, None)
    assert uri.replace(port=None) == parse_uri("sip:bob@biloxi.example.com;transport=udp")
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.host = "elsewhere"  # type: ignore[misc]
    addr = parse_name_addr('"Bob" <sip:bob@biloxi.example.com>;tag=1')
    assert addr == NameAddr(parse_uri("sip:bob@biloxi.example.com"), "Bob", {"tag": "1"})
    assert [type(v) for v in (via, cseq, uri, addr)] == [Via, CSeq, URI, NameAddr]
    with pytest.raises(dataclasses.FrozenInstanceError):
        addr.display_name = "Eve"  # type: ignore[misc]


def test_remembered_values_and_names_are_bounded_and_never_excuse_a_bad_one() -> None:
    """validate() keeps good values and header names it saw, within fixed limits."""
    for i in range(message._KNOWN_GOOD_MAX * 2 + 10):
        parse_message(request("OPTIONS", f"Allow: INVITE, X{i}", f"X-Name-{i}: 1")).validate()
    assert 0 < len(message._KNOWN_GOOD["allow"]) <= message._KNOWN_GOOD_MAX
    assert 0 < len(message._TOKEN_NAMES) <= message._TOKEN_NAMES_MAX
    for bad in ("Allow: INVITE, a b", "X Name: 1", "Max-Forwards: 256", "Contact: <sip:a@b"):
        with pytest.raises(SIPParseError):
            parse_message(request("OPTIONS", bad)).validate()
    good = request("OPTIONS", "Allow: INVITE, X1")
    parse_message(good).validate()
    parse_message(good).validate()  # the second time from the remembered value


@pytest.mark.parametrize(
    "value",
    [
        "<sip:a@b.example.com>;tag=1",
        "<sip:a@b.example.com>;TAG=1;Tag=2",
        "<sip:a@b.example.com>;tag=1;tag",
        "<sip:a@b.example.com>;tagx=1;xtag=2",
        "<sip:a@b.example.com>;x=tag;tag-=3",
        '"A" <sip:a@b.example.com>;tag=1;x',
        "<sip:a@b.example.com> ;tag=1",
        "sip:a@b.example.com;tag=1",
        '"A" <sip:a@b.example.com>;TaG=x-1',
        "A B <sip:a@b.example.com>",
        "<sip:a@b.example.com>;tag=",
        "<sip:a@b.example.com>;tag=[::1]:5",
        '"A <sip:a@b.example.com>;tag=1',
        '"A" x <sip:a@b.example.com>;tag=1',
        "<sip:a@b.example.com>;tag=1 ",
    ],
)
def test_tags_read_by_the_pattern_are_the_general_code_tags(value: str) -> None:
    assert _outcome(_tag_of, value, "To") == _outcome(_tag_of_general, value, "To")


@pytest.mark.parametrize(
    "vias",
    [
        ["Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1"],
        ["Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1", "Via: SIP/2.0/UDP b.example.com"],
        ["Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1", "Via: SIP/2.0/UDP b.example.com;x="],
        ["Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;;"],
        ["Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1;ttl=256"],
        ["Via: SIP/2.0/UDP  a.example.com ;branch=z9hG4bK1"],
    ],
)
@pytest.mark.parametrize(
    "route", [[], ["Route: <sip:r1.example.com>", "Route: <sip:r2.example.com>"]]
)
def test_parse_checks_the_vias_as_check_vias_does(vias: list[str], route: list[str]) -> None:
    """parse_message checks one Via line alone when no header name repeats; whatever it
    decides, check_vias on the same lines (looking at every line) decides the same."""
    data = request("OPTIONS", *route)
    data = data.replace(
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n", b""
    )
    assert b"Via" not in data
    data = data.replace(b"\r\n", ("\r\n" + "\r\n".join(vias) + "\r\n").encode(), 1)
    parsed = _outcome(parse_message, data)
    lines = [line.split(": ", 1) for line in vias]
    general = Request("OPTIONS", "sip:b@example.com", Headers([(n, v) for n, v in lines]))
    checked = _outcome(general.check_vias)
    assert parsed[0] == checked[0]
    if parsed[0] == "ok":
        msg = parsed[1]
        assert isinstance(msg, Request)
        assert msg.top_via == general.top_via
        assert len(msg.vias) == len(general.vias)
    else:
        assert parsed == checked


@pytest.mark.parametrize(
    "value",
    [
        "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
        '"A" <sip:a@b.example.com>;tag=1;tag=2',
        "<sip:a@b.example.com>;tag=",
        "sip:a@b.example.com;tag=x",
    ],
)
def test_the_tag_views_agree_with_the_general_code(value: str) -> None:
    msg = build(
        "OPTIONS sip:b@example.com SIP/2.0",
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        f"From: {value}",
        f"To: {value}",
        "Call-ID: 1@a.example.com",
        "CSeq: 1 OPTIONS",
    )
    parsed = _outcome(parse_message, msg)
    general = _outcome(_tag_of_general, value, "From")
    if parsed[0] == "ok":
        m = parsed[1]
        assert isinstance(m, Request)
        assert ("ok", m.from_tag) == ("ok", m.to_tag) == general
    else:
        assert general[0] == "error"


@pytest.mark.parametrize("text", ["tag=1", "lr", "Transport=UDP", "x=", "a=b;c", "A;b=C;a=d", ""])
def test_checked_params_one_pair_agrees_with_the_loop(text: str) -> None:
    looped: dict[str, str | None] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        looped[name.lower()] = value or None
    assert checked_params(text) == looped


def test_methods_validate_does_not_match_are_tokens() -> None:
    assert all(is_token(method) for method in message._KNOWN_METHODS)


def test_via_ports_are_the_ports_parse_via_general_reads() -> None:
    for port in ("5060", "05060", "0", "65535"):
        text = f"SIP/2.0/UDP a.example.com:{port};branch=z9hG4bK1"
        for _ in range(2):  # the second time from uri._PORTS
            assert parse_via(text).port == parse_via_general(text).port == int(port)
