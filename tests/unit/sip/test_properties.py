"""Property tests for b2bua.sip: generated messages round-trip; no input breaks the parser.

- Valid requests and responses built from the RFC 3261 grammar parse to what was put in,
  and ``parse_message(m.to_bytes())`` gives ``m`` back (start line, headers, body).
- Arbitrary octets, and valid messages mutated, truncated or spliced, make
  ``parse_message``/``validate``/the accessors and ``StreamFramer.feed`` raise
  ``SIPParseError`` or nothing: never IndexError, ValueError, UnicodeDecodeError,
  RecursionError..., and never take long (hypothesis' deadline).
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2bua.sip import (
    Headers,
    Limits,
    Request,
    Response,
    SIPParseError,
    StreamFramer,
    parse_message,
    parse_uri,
)
from tests.unit.sip.sipdata import Message, assert_round_trip, header_items, start_line

PROPERTY = settings(
    max_examples=300,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings(PROPERTY, max_examples=400)

ALNUM = string.ascii_letters + string.digits
TOKEN = ALNUM + "-.!%*_+`'~"
UNRESERVED = ALNUM + "-_.!~*'()"
WORD = ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}"

tokens = st.text(TOKEN, min_size=1, max_size=12)
methods = st.sampled_from(
    ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "MESSAGE", "NOTIFY"]
) | tokens.filter(lambda t: t != "SIP/2.0")

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
toplabels = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
hostnames = st.builds(lambda ls, top: ".".join([*ls, top]), st.lists(labels, max_size=3), toplabels)
ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6s = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = st.one_of(hostnames, ipv4s, ipv6s)
ports = st.none() | st.integers(1, 65535)

escapes = st.sampled_from(["%41", "%20", "%00", "%25", "%3A", "%40", "%e2%82%ac"])
users = st.lists(
    st.text(UNRESERVED + "&=+$,;?/", min_size=1, max_size=6) | escapes, min_size=1, max_size=4
).map("".join)
passwords = st.none() | st.text(UNRESERVED + "&=+$,", min_size=0, max_size=8)
param_names = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8).filter(
    lambda n: n not in ("transport", "user", "method", "ttl", "maddr", "lr", "tag", "branch")
)
param_values = st.none() | st.text(UNRESERVED, min_size=1, max_size=8)
params = st.dictionaries(param_names, param_values, max_size=3)


def _params(values: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in values.items())


@st.composite
def sip_uris(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sip", "sips"]))
    userinfo = ""
    if draw(st.booleans()):
        password = draw(passwords)
        userinfo = draw(users) + ("" if password is None else ":" + password) + "@"
    port = draw(ports)
    hostport = draw(hosts) + ("" if port is None else f":{port}")
    return f"{scheme}:{userinfo}{hostport}{_params(draw(params))}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


quoted_names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    max_size=12,
)
token_names = st.lists(tokens, min_size=1, max_size=3).map(" ".join)


@dataclass
class Party:
    """What a From or To value was built from."""

    text: str
    uri: str
    display: str | None
    tag: str | None


@st.composite
def parties(draw: st.DrawFn, tag: bool) -> Party:
    uri = draw(sip_uris())
    kind = draw(st.sampled_from(["none", "token", "quoted"]))
    display: str | None = None
    written = ""
    if kind == "token":
        display = draw(token_names)
        written = display + " "
    elif kind == "quoted":
        display = draw(quoted_names)
        written = _quote(display) + " "
    tag_value = draw(tokens) if tag else None
    text = f"{written}<{uri}>" + ("" if tag_value is None else f";tag={tag_value}")
    return Party(text, uri, display, tag_value)


@dataclass
class Expected:
    """What a generated message was built from, to check the parse against."""

    start: str
    method: str | None
    status: int | None
    reason: str | None
    ruri: str | None
    headers: list[tuple[str, str]]
    body: bytes
    from_: Party
    to: Party
    call_id: str
    cseq: tuple[int, str]
    vias: list[tuple[str, str, int | None, str]]
    max_forwards: int | None
    extra: list[tuple[str, str]] = field(default_factory=list)


@st.composite
def via_values(draw: st.DrawFn) -> tuple[str, tuple[str, str, int | None, str]]:
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]))
    host = draw(hosts)
    port = draw(ports)
    branch = "z9hG4bK" + draw(tokens)
    text = f"SIP/2.0/{transport} {host}" + ("" if port is None else f":{port}")
    text += f";branch={branch}"
    if draw(st.booleans()):
        text += ";rport"
    if draw(st.booleans()):
        text += ";received=" + draw(ipv4s)
    return text, (transport, host, port, branch)


header_texts = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    max_size=30,
).map(str.strip)


@st.composite
def messages(draw: st.DrawFn) -> Expected:
    is_request = draw(st.booleans())
    cseq_number = draw(st.integers(0, 2**32 - 1))
    method: str | None = None
    status: int | None = None
    reason: str | None = None
    ruri: str | None = None
    if is_request:
        method = draw(methods)
        ruri = draw(sip_uris())
        start = f"{method} {ruri} SIP/2.0"
        cseq_method = method
    else:
        status = draw(st.integers(100, 699))
        reason = draw(header_texts)
        start = f"SIP/2.0 {status} {reason}"
        cseq_method = draw(methods)
    from_ = draw(parties(tag=True))
    to = draw(parties(tag=draw(st.booleans())))
    call_id = draw(st.text(WORD, min_size=1, max_size=16))
    if draw(st.booleans()):
        call_id += "@" + draw(st.text(WORD, min_size=1, max_size=10))
    vias = draw(st.lists(via_values(), min_size=1, max_size=3))
    max_forwards = draw(st.none() | st.integers(0, 255)) if is_request else None
    extra = draw(st.lists(st.tuples(tokens.map(lambda t: "X-" + t), header_texts), max_size=4))
    headers: list[tuple[str, str]] = [("Via", text) for text, _ in vias]
    headers += [
        ("From", from_.text),
        ("To", to.text),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq_number} {cseq_method}"),
    ]
    if max_forwards is not None:
        headers.append(("Max-Forwards", str(max_forwards)))
    headers += extra
    order = draw(st.permutations(range(len(headers))))
    shuffled = [headers[i] for i in order]
    # keep the Via values in their order: the permutation may move them, not reorder them
    via_iter = iter(h for h in headers if h[0] == "Via")
    shuffled = [next(via_iter) if h[0] == "Via" else h for h in shuffled]
    body = draw(st.binary(max_size=300))
    return Expected(
        start=start,
        method=method,
        status=status,
        reason=reason,
        ruri=ruri,
        headers=shuffled,
        body=body,
        from_=from_,
        to=to,
        call_id=call_id,
        cseq=(cseq_number, cseq_method),
        vias=[v for _, v in vias],
        max_forwards=max_forwards,
        extra=extra,
    )


def encode(e: Expected) -> bytes:
    lines = [e.start, *(f"{n}: {v}" for n, v in e.headers), f"Content-Length: {len(e.body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + e.body


def check_against(m: Message, e: Expected) -> None:
    if e.method is not None:
        assert isinstance(m, Request)
        assert m.method == e.method
        assert m.request_uri == parse_uri(e.ruri or "")
    else:
        assert isinstance(m, Response)
        assert (m.status, m.reason) == (e.status, e.reason)
    assert m.body == e.body
    assert m.call_id == e.call_id
    assert (m.cseq.number, m.cseq.method) == e.cseq
    assert [(v.transport, v.host, v.port, v.branch) for v in m.vias] == e.vias
    assert m.max_forwards == e.max_forwards
    for party, got in ((e.from_, m.from_), (e.to, m.to)):
        assert got.uri == parse_uri(party.uri)
        assert (got.display_name or None) == (party.display or None)
        assert got.tag == party.tag
    assert m.from_tag == e.from_.tag
    assert m.to_tag == e.to.tag
    assert header_items(m) == e.headers


@PROPERTY
@given(messages())
def test_generated_message_parses_to_what_was_put_in_and_round_trips(e: Expected) -> None:
    m = parse_message(encode(e))
    m.validate()
    check_against(m, e)
    again = assert_round_trip(m)
    check_against(again, e)


@PROPERTY
@given(messages())
def test_message_built_with_the_api_round_trips(e: Expected) -> None:
    headers = Headers()
    for name, value in e.headers:
        headers.add(name, value)
    built: Message
    if e.method is not None:
        built = Request(e.method, e.ruri or "", headers, e.body)
    else:
        built = Response(e.status or 0, e.reason or "", headers, e.body)
    m = parse_message(built.to_bytes())
    m.validate()
    assert start_line(m) == start_line(built)
    assert header_items(m) == header_items(built) == e.headers
    assert m.body == built.body == e.body
    check_against(m, e)


@PROPERTY
@given(messages(), st.data())
def test_stream_framer_gives_the_same_messages_whatever_the_chunking(
    e: Expected, data: st.DataObject
) -> None:
    one = encode(e)
    stream = one + b"\r\n\r\n" + one
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = StreamFramer()
    got: list[Message] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        got.extend(framer.feed(stream[previous:cut]))
        previous = cut
    assert len(got) == 2
    for m in got:
        check_against(m, e)


# --------------------------------------------------------------------------------------
# Robustness: only SIPParseError, whatever the octets
# --------------------------------------------------------------------------------------


def exercise(data: bytes, limits: Limits | None = None) -> None:
    """Everything a UAS does with an incoming datagram; SIPParseError is the only way out."""
    try:
        m = parse_message(data, limits=limits)
        m.validate()
        if isinstance(m, Request):
            _ = (m.method, m.uri, m.request_uri)
        else:
            _ = (m.status, m.reason)
        _ = (m.call_id, m.cseq, m.vias, m.top_via, m.branch, m.from_, m.to)
        _ = (m.from_tag, m.to_tag, m.max_forwards, m.contacts, m.headers.items(), m.body)
        for name, _value in m.headers.items():
            m.headers.get_all(name)
    except SIPParseError as error:
        assert isinstance(error.status, int)
        assert 400 <= error.status <= 599
        assert isinstance(error.reason, str)
        return
    # whatever was accepted must serialize to something that parses back the same
    again = parse_message(m.to_bytes(), limits=limits)
    again.validate()
    assert start_line(again) == start_line(m)
    assert header_items(again) == header_items(m)
    assert again.body == m.body


def exercise_stream(data: bytes, cuts: list[int], limits: Limits | None = None) -> None:
    framer = StreamFramer(limits)
    previous = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            for m in framer.feed(data[previous:cut]):
                assert isinstance(m, Request | Response)
            previous = cut
    except SIPParseError as error:
        assert 400 <= error.status <= 599


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_octets_raise_only_sip_parse_error(data: bytes) -> None:
    exercise(data)
    exercise_stream(data, [len(data) // 3])


SIPISH = st.lists(
    st.sampled_from(
        [
            b"INVITE",
            b"SIP/2.0",
            b" ",
            b"\r\n",
            b"\r\n\r\n",
            b":",
            b";",
            b",",
            b"<",
            b">",
            b'"',
            b"\\",
            b"sip:",
            b"@",
            b"[",
            b"]",
            b"%",
            b"=",
            b"Via",
            b"v",
            b"l",
            b"Content-Length",
            b"CSeq",
            b"From",
            b"To",
            b"Call-ID",
            b"\t",
            b"\x00",
            b"\xff",
            b"0",
            b"99999999999",
            b"-1",
            b"z9hG4bK",
            b"tag",
            b"\xe2\x82",
            b"SIP/2.0/UDP",
        ]
    ),
    max_size=80,
).map(b"".join)


@FUZZ
@given(SIPISH)
def test_sip_looking_token_soup_raises_only_sip_parse_error(data: bytes) -> None:
    exercise(data)
    exercise_stream(data, [len(data) // 2])


MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "truncate", "duplicate"]),
    st.integers(0, 10_000),
    st.binary(min_size=1, max_size=6)
    | st.sampled_from([b"\r\n", b"\r\n ", b":", b",", b";", b'"', b"<", b">", b"\x00", b"\r"]),
)


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for kind, where, payload in mutations:
        if not data:
            break
        at = where % (len(data) + 1)
        if kind == "replace":
            data = data[:at] + payload + data[at + len(payload) :]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(payload) :]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + data[at : at + 40] * 2 + data[at + 40 :]
    return data


@FUZZ
@given(messages(), st.lists(MUTATION, min_size=1, max_size=4), st.lists(st.integers(0, 3000)))
def test_mutated_valid_messages_raise_only_sip_parse_error(
    e: Expected, mutations: list[tuple[str, int, bytes]], cuts: list[int]
) -> None:
    data = mutate(encode(e), mutations)
    exercise(data)
    exercise_stream(data, [c % (len(data) + 1) for c in cuts])


# Pathological inputs within the default limits: each must be handled quickly.
PATHOLOGICAL = [
    b"Contact: " + b"<" * 60000,
    b"Contact: " + b'"' * 60000,
    b"To: " + b'"\\' * 30000,
    b"Via: " + b"," * 60000,
    b"Route: " + b"<sip:a>," * 7000,
    b"From: <sip:a@b>" + b";p" * 30000,
    b"Via: SIP/2.0/UDP h" + b";rport" * 9000,
    b"X-Fold: a" + b"\r\n b" * 15000,
    b"Contact: <sip:" + b"%" * 60000 + b">",
    b"To: <sip:[" + b":" * 60000 + b"]>",
]


def test_pathological_headers_are_handled_quickly() -> None:
    base = (
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
        b"To: <sip:bob@biloxi.example.com>\r\n"
        b"From: <sip:alice@atlanta.example.com>;tag=1\r\n"
        b"Call-ID: patho@atlanta.example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
    )
    roomy = Limits(max_message_size=200_000, max_headers=100_000, max_line_length=200_000)
    for line in PATHOLOGICAL:
        data = base + line + b"\r\nContent-Length: 0\r\n\r\n"
        began = time.monotonic()
        exercise(data)
        exercise(data, roomy)
        exercise_stream(data, [1000, 30000])
        exercise_stream(data, [1000, 30000], roomy)
        assert time.monotonic() - began < 2.0, line[:20]


_NAMES = st.sampled_from(
    ["Via", "v", "VIA", "From", "f", "To", "Call-ID", "i", "CSeq", "Contact", "m", "Route",
     "Content-Length", "l", "X-Custom", "x-custom", "Subject", "X:Odd", "X-\u00e9", "X-\u20ac", ""]
)  # fmt: skip
_VALUES = st.one_of(
    st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=30),
    st.text(max_size=10),  # any characters: CR, LF, non-ASCII, surrogates...
    st.binary(max_size=12),
)


@PROPERTY
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=12), st.data())
def test_a_compacted_header_section_answers_and_changes_as_its_lines_do(
    lines: list[tuple[str, str | bytes]], data: st.DataObject
) -> None:
    """Whatever the lines, compact() keeps their meaning: the same items, lookups and
    wire bytes as the lines without raw bytes, before and after a change."""
    held, plain = Headers(), Headers()
    for name, value in lines:
        held.add(name, value)
        plain.add(name, value)
    held.compact()

    def same() -> None:
        assert held.items() == plain.items()
        assert len(held) == len(plain)
        for name in {n for n, _ in lines} | {"Via", "Contact"}:
            assert held.get(name) == plain.get(name)
            assert held.raw(name) == plain.raw(name)
            assert held.get_lines(name) == plain.get_lines(name)
            assert (name in held) == (name in plain)
        try:
            wire = plain.to_bytes(5)
        except UnicodeEncodeError:
            return
        assert held.to_bytes(5) == wire

    same()
    name = data.draw(_NAMES)
    value = data.draw(st.text(alphabet=string.ascii_letters, min_size=1, max_size=8))
    change = data.draw(st.sampled_from(["add", "first", "set", "remove", "pop", "replace"]))

    def apply(headers: Headers) -> object:
        try:
            if change == "add":
                return headers.add(name, value)
            if change == "first":
                return headers.add(name, value, first=True)
            if change == "set":
                return headers.set(name, value)
            if change == "remove":
                return headers.remove(name)
            if change == "pop":
                return headers.pop_first_value(name)
            return headers.replace_first_value(name, value)
        except SIPParseError as error:  # a list value with a bad quote, say
            return (error.status, error.reason)

    assert apply(held) == apply(plain)
    same()
