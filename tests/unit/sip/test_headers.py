"""Headers (RFC 3261 section 7.3), compact forms, folding, list splitting; Via, NameAddr, CSeq."""

from __future__ import annotations

import pytest

from b2bua.sip import Headers, SIPParseError, canonical_name, header_key, parse_message, parse_uri
from tests.unit.sip.sipdata import (
    build,
    find_param,
    parse_and_validate,
    request,
    squeeze,
    user_octets,
)

# RFC 3261 7.3.3 and 20, RFC 3515 (r), RFC 3892 (b), RFC 4028 (x), RFC 6665 (o, u),
# RFC 3841 (a, j, d), RFC 4474 (y, n).
COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "f": "From",
    "t": "To",
    "v": "Via",
    "s": "Subject",
    "k": "Supported",
    "c": "Content-Type",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "u": "Allow-Events",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}


@pytest.mark.parametrize(("short", "long"), sorted(COMPACT.items()))
def test_canonical_name_maps_compact_forms(short: str, long: str) -> None:
    assert canonical_name(short) == long
    assert canonical_name(short.upper()) == long
    assert canonical_name(long) == long
    assert canonical_name(long.lower()) == long
    assert canonical_name(long.upper()) == long


def test_canonical_name_of_unknown_header_keeps_the_name() -> None:
    assert canonical_name("X-Custom-Thing").lower() == "x-custom-thing"
    assert canonical_name("q").lower() == "q"  # not a compact form


@pytest.mark.parametrize(("short", "long"), sorted(COMPACT.items()))
def test_headers_lookups_accept_either_form(short: str, long: str) -> None:
    h = Headers()
    h.add(short, "value-1")
    h.add(long.upper(), "value-2")
    assert short in h
    assert long in h
    assert long.lower() in h
    assert h.get(long) == "value-1"
    assert h.get(short.upper()) == "value-1"
    assert len(h) == 2
    # items() keeps each name as it was given
    assert h.items() == [(short, "value-1"), (long.upper(), "value-2")]


def test_compact_forms_in_a_parsed_message() -> None:
    data = build(
        "MESSAGE sip:bob@biloxi.example.com SIP/2.0",
        "v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "t: <sip:bob@biloxi.example.com>",
        "f: <sip:alice@atlanta.example.com>;tag=1928301774",
        "i: compact@atlanta.example.com",
        "CSeq: 1 MESSAGE",
        "m: <sip:alice@pc33.atlanta.example.com>",
        "c: text/plain",
        "e: gzip",
        "s: lunch",
        "k: 100rel, timer",
        "o: refer",
        "u: presence",
        "r: <sip:carol@chicago.example.com>",
        "b: <sip:alice@atlanta.example.com>",
        "x: 1800;refresher=uac",
        "a: *;audio",
        "j: *;video",
        "d: proxy, recurse",
        "y: c2lnbmF0dXJl",
        "n: <https://atlanta.example.com/cert>;alg=rsa-sha1",
        body=b"hi",
        content_length=False,
    )
    data = data.replace(b"\r\n\r\n", b"\r\nl: 2\r\n\r\n", 1)
    m = parse_and_validate(data)
    assert m.call_id == "compact@atlanta.example.com"
    assert m.to.uri == parse_uri("sip:bob@biloxi.example.com")
    assert m.from_tag == "1928301774"
    assert m.top_via.host == "pc33.atlanta.example.com"
    assert [c.uri for c in m.contacts] == [parse_uri("sip:alice@pc33.atlanta.example.com")]
    assert m.body == b"hi"
    expected = {
        "Content-Type": "text/plain",
        "Content-Encoding": "gzip",
        "Subject": "lunch",
        "Event": "refer",
        "Allow-Events": "presence",
        "Refer-To": "<sip:carol@chicago.example.com>",
        "Referred-By": "<sip:alice@atlanta.example.com>",
        "Session-Expires": "1800;refresher=uac",
        "Identity": "c2lnbmF0dXJl",
        "Identity-Info": "<https://atlanta.example.com/cert>;alg=rsa-sha1",
        "Content-Length": "2",
    }
    for name, value in expected.items():
        assert m.headers.get(name) == value, name
    assert m.headers.get_all("Supported") == ["100rel", "timer"]
    assert m.headers.get_all("Request-Disposition") == ["proxy", "recurse"]


def test_header_names_are_case_insensitive_in_a_message() -> None:
    data = build(
        "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
        "vIA: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "TO: <sip:bob@biloxi.example.com>",
        "fRoM: <sip:alice@atlanta.example.com>;tag=1",
        "CALL-ID: case@atlanta.example.com",
        "cseq: 7 OPTIONS",
        "MAX-FORWARDS: 70",
    )
    m = parse_and_validate(data)
    assert m.call_id == "case@atlanta.example.com"
    assert m.cseq.number == 7
    assert m.max_forwards == 70
    assert [name for name, _ in m.headers.items()][:2] == ["vIA", "TO"]


# --------------------------------------------------------------------------------------
# Headers API
# --------------------------------------------------------------------------------------


def test_add_set_remove_get() -> None:
    h = Headers()
    assert len(h) == 0
    assert h.get("Via") is None
    assert h.get_all("Via") == []
    assert "Via" not in h
    h.add("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2")
    h.add("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1", first=True)
    h.add("Subject", "one")
    assert h.get("via") == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"
    assert h.get_all("v") == [
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
    ]
    h.set("Via", "SIP/2.0/TCP c.example.com;branch=z9hG4bK3")
    assert h.get_all("Via") == ["SIP/2.0/TCP c.example.com;branch=z9hG4bK3"]
    h.set("X-New", "fresh")  # set on an absent header adds it
    assert h.get("x-new") == "fresh"
    h.remove("v")
    assert "Via" not in h
    assert [name.lower() for name, _ in h.items()] == ["subject", "x-new"]
    h.remove("Not-There")  # removing an absent header is harmless
    assert len(h) == 2


def test_get_returns_the_first_lines_full_value() -> None:
    h = Headers()
    h.add("Allow", "INVITE, ACK, BYE")
    h.add("Allow", "OPTIONS")
    assert h.get("Allow") == "INVITE, ACK, BYE"
    assert h.get_all("Allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]


def test_first_add_puts_the_value_on_top_of_every_other_header() -> None:
    h = Headers()
    h.add("Call-ID", "x@y")
    h.add("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1")
    h.add("Via", "SIP/2.0/UDP top.example.com;branch=z9hG4bK0", first=True)
    assert h.get_all("Via")[0] == "SIP/2.0/UDP top.example.com;branch=z9hG4bK0"


def test_message_caches_follow_header_changes() -> None:
    m = parse_message(request("OPTIONS"))
    assert m.top_via.host == "pc33.atlanta.example.com"
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    m.headers.add("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKtop", first=True)
    assert m.top_via.host == "proxy.example.com"
    assert m.branch == "z9hG4bKtop"
    assert len(m.vias) == 2
    m.headers.set("Call-ID", "changed@example.com")
    assert m.call_id == "changed@example.com"
    m.headers.set("To", "<sip:bob@biloxi.example.com>;tag=xyz")
    assert m.to_tag == "xyz"
    m.headers.remove("Max-Forwards")
    assert m.max_forwards is None
    again = parse_message(m.to_bytes())
    assert again.top_via.host == "proxy.example.com"
    assert again.call_id == "changed@example.com"
    assert again.to_tag == "xyz"
    assert again.max_forwards is None


# --------------------------------------------------------------------------------------
# Folding and list values
# --------------------------------------------------------------------------------------


def test_folded_header_equals_its_unfolded_value() -> None:
    """RFC 3261 7.3.1: the two Subject forms in the RFC are equivalent."""
    folded = parse_and_validate(
        request("OPTIONS", "Subject: I know you're there,\r\n         pick up the phone")
    )
    plain = parse_and_validate(
        request("OPTIONS", "Subject: I know you're there, pick up the phone")
    )
    assert squeeze(folded.headers.get("Subject") or "") == "I know you're there, pick up the phone"
    assert squeeze(folded.headers.get("Subject") or "") == plain.headers.get("Subject")


def test_folded_structured_header_parses() -> None:
    m = parse_and_validate(
        request(
            "OPTIONS",
            "Contact:\r\n <sip:alice@pc33.atlanta.example.com>\r\n\t;expires=60",
        )
    )
    (contact,) = m.contacts
    assert contact.uri == parse_uri("sip:alice@pc33.atlanta.example.com")
    assert find_param(contact.params, "expires") == (True, "60")


def test_several_via_values_in_one_line_and_one_value_over_several_lines() -> None:
    data = build(
        "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/TCP second.example.com"
        ":5070;branch=z9hG4bK2",
        "Via: SIP/2.0/UDP\r\n third.example.com\r\n ;branch=z9hG4bK3 ,\r\n"
        "\tSIP/2.0/SCTP fourth.example.com;branch=z9hG4bK4",
        "v: SIP/2.0/TLS fifth.example.com;branch=z9hG4bK5",
        "To: <sip:bob@biloxi.example.com>",
        "From: <sip:alice@atlanta.example.com>;tag=1",
        "Call-ID: vias@atlanta.example.com",
        "CSeq: 1 OPTIONS",
    )
    m = parse_and_validate(data)
    assert [(v.transport, v.host, v.port, v.branch) for v in m.vias] == [
        ("UDP", "first.example.com", None, "z9hG4bK1"),
        ("TCP", "second.example.com", 5070, "z9hG4bK2"),
        ("UDP", "third.example.com", None, "z9hG4bK3"),
        ("SCTP", "fourth.example.com", None, "z9hG4bK4"),
        ("TLS", "fifth.example.com", None, "z9hG4bK5"),
    ]
    assert len(m.headers.get_all("Via")) == 5
    assert m.top_via.host == "first.example.com"


def test_list_values_split_on_commas_outside_quotes_and_brackets() -> None:
    m = parse_and_validate(
        request(
            "REGISTER",
            'Contact: "Doe, John" <sip:jo,hn@example.com;a=b>, <sip:j2@example.com>;q=0.5',
            'Contact: "\\"x, y\\"" <sip:xy@example.com>',
        )
    )
    assert [c.display_name for c in m.contacts] == ["Doe, John", None, '"x, y"']
    assert user_octets(m.contacts[0].uri.user) == b"jo,hn"
    assert m.contacts[1].uri == parse_uri("sip:j2@example.com")
    assert find_param(m.contacts[1].params, "q") == (True, "0.5")
    assert len(m.headers.get_all("Contact")) == 3


AUTH_VALUES = {
    "WWW-Authenticate": 'Digest realm="atlanta.example.com", qop="auth,auth-int", '
    'nonce="84a4cc6f3082121f32b42a2187831a9e", algorithm=MD5',
    "Proxy-Authenticate": 'Digest realm="atlanta.example.com", domain="sip:ss1.example.com", '
    'qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE',
    "Authorization": 'Digest username="bob", realm="biloxi.example.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.example.com", '
    'qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"',
    "Proxy-Authorization": 'Digest username="alice", realm="atlanta.example.com", '
    'nonce="wf84f1ceczx41ae6cbe5aea9c8e88d359", opaque="", uri="sip:bob@biloxi.example.com", '
    'response="42ce3cef44b22f50c6a6071bc8"',
    "Date": "Sat, 13 Nov 2010 23:29:00 GMT",
}


@pytest.mark.parametrize("name", sorted(AUTH_VALUES))
def test_get_all_never_splits_auth_headers_or_date(name: str) -> None:
    value = AUTH_VALUES[name]
    m = parse_and_validate(request("INVITE", f"{name}: {value}", f"{name}: {value}"))
    assert m.headers.get_all(name) == [value, value]
    h = Headers()
    h.add(name, value)
    assert h.get_all(name) == [value]


def test_unknown_headers_are_never_split() -> None:
    m = parse_and_validate(request("OPTIONS", "X-List: a, b, c"))
    assert m.headers.get_all("X-List") == ["a, b, c"]


# --------------------------------------------------------------------------------------
# name-addr: display names, quoted strings, parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "display"),
    [
        ('"Alice" <sip:alice@atlanta.example.com>', "Alice"),
        ('"Alice \\"the\\" Great" <sip:alice@atlanta.example.com>', 'Alice "the" Great'),
        ('"back\\\\slash" <sip:alice@atlanta.example.com>', "back\\slash"),
        ('"" <sip:alice@atlanta.example.com>', ""),
        ("Alice Liddell <sip:alice@atlanta.example.com>", "Alice Liddell"),
        ('"Ali<ce>; \\"x\\"" <sip:alice@atlanta.example.com>', 'Ali<ce>; "x"'),
        ('"Élodie 日本" <sip:alice@atlanta.example.com>', "Élodie 日本"),
        ("<sip:alice@atlanta.example.com>", None),
        ("sip:alice@atlanta.example.com", None),
    ],
)
def test_display_names(written: str, display: str | None) -> None:
    m = parse_and_validate(
        build(
            "OPTIONS sip:bob@biloxi.example.com SIP/2.0",
            "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
            "To: <sip:bob@biloxi.example.com>",
            f"From: {written};tag=88sja8x",
            "Call-ID: dn@atlanta.example.com",
            "CSeq: 1 OPTIONS",
        )
    )
    if display:
        assert m.from_.display_name == display
    else:
        assert m.from_.display_name in (None, "")
    assert m.from_.uri == parse_uri("sip:alice@atlanta.example.com")
    assert m.from_tag == "88sja8x"
    # str() of the value parses back to the same display name, URI and tag
    m.headers.set("From", str(m.from_))
    again = parse_message(m.to_bytes())
    assert again.from_.display_name == m.from_.display_name
    assert again.from_.uri == m.from_.uri
    assert again.from_tag == "88sja8x"


def test_addr_spec_parameters_belong_to_the_header_not_the_uri() -> None:
    """RFC 3261 20.10: in "sip:a@b;tag=x" without <>, tag is a header parameter."""
    m = parse_and_validate(request("OPTIONS"))
    m.headers.set("To", "sip:bob@biloxi.example.com;tag=7;user=phone")
    assert m.to_tag == "7"
    assert find_param(m.to.params, "user") == (True, "phone")
    assert m.to.uri.params == {}


def test_contact_star() -> None:
    m = parse_and_validate(request("REGISTER", "Contact: *", "Expires: 0"))
    (contact,) = m.contacts
    assert contact.is_star
    m = parse_and_validate(request("REGISTER"))
    assert m.contacts == []


def test_tags_absent_are_none() -> None:
    m = parse_and_validate(request("INVITE"))
    assert m.to_tag is None
    assert m.from_tag == "1928301774"


# --------------------------------------------------------------------------------------
# Via
# --------------------------------------------------------------------------------------


def test_via_parameters() -> None:
    m = parse_and_validate(
        request(
            "INVITE",
            "Via: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.99;rport=5071"
            ";branch=z9hG4bKnashds8;maddr=224.2.0.1;ttl=16;x-unknown=keep;flag",
        )
    )
    via = m.vias[1]
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.1", 5060)
    assert via.branch == "z9hG4bKnashds8"
    assert via.received == "192.0.2.99"
    assert via.rport == 5071
    assert via.maddr == "224.2.0.1"
    assert via.ttl == 16
    assert find_param(via.params, "x-unknown") == (True, "keep")
    assert find_param(via.params, "flag") == (True, None)
    assert m.top_via.rport is None
    assert m.top_via.received is None
    assert m.top_via.maddr is None
    assert m.top_via.ttl is None


def test_via_rport_without_value_is_true() -> None:
    """RFC 3581: a client asks for symmetric response routing with a bare rport."""
    m = parse_and_validate(
        request("OPTIONS").replace(b";branch=z9hG4bK776asdhds", b";rport;branch=z9hG4bK776asdhds")
    )
    assert m.top_via.rport is True
    assert m.branch == "z9hG4bK776asdhds"


def test_via_ipv6_sent_by() -> None:
    m = parse_and_validate(
        request("OPTIONS", "Via: SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bK6")
    )
    via = m.vias[1]
    assert (via.host, via.port) == ("[2001:db8::9:1]", 5061)


def test_via_str_parses_back() -> None:
    m = parse_and_validate(
        request(
            "OPTIONS",
            "Via: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.99;rport=5071;branch=z9hG4bKa",
        )
    )
    via = m.vias[1]
    m.headers.set("Via", str(via))
    again = parse_message(m.to_bytes())
    (copy,) = again.vias
    assert (copy.transport, copy.host, copy.port, copy.branch, copy.received, copy.rport) == (
        "UDP",
        "192.0.2.1",
        5060,
        "z9hG4bKa",
        "192.0.2.99",
        5071,
    )


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 host.example.com",
        "SIP/2.0/UDP host.example.com:port",
        "SIP/2.0/UDP host.example.com:70000",
        "SIP/2.0/UDP host.example.com;ttl=256",
        "SIP/2.0/UDP host.example.com;rport=99999",
        "SIP/2.0/UDP [2001:db8::1;branch=z9hG4bK1",
        "SIP/2.0/UDP host.example.com;;branch=z9hG4bK1",
    ],
)
def test_malformed_via_is_refused(value: str) -> None:
    data = request("OPTIONS").replace(
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        f"Via: {value}".encode(),
    )
    with pytest.raises(SIPParseError) as info:
        m = parse_message(data)
        _ = m.vias
        m.validate()
    assert info.value.status == 400


# --------------------------------------------------------------------------------------
# Scalars: CSeq, Max-Forwards
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [0, 1, 2**31, 2**32 - 1])
def test_cseq_in_range(number: int) -> None:
    m = parse_and_validate(request("INVITE", cseq=f"{number} INVITE"))
    assert (m.cseq.number, m.cseq.method) == (number, "INVITE")


@pytest.mark.parametrize(
    "cseq",
    [
        f"{2**32} INVITE",
        f"{2**64} INVITE",
        "-1 INVITE",
        "one INVITE",
        "1",
        "INVITE",
        "1 INVITE extra",
        "1 IN<VITE",
        "",
    ],
)
def test_cseq_out_of_range_or_malformed_is_refused(cseq: str) -> None:
    """RFC 3261 8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned
    integer"."""
    with pytest.raises(SIPParseError) as info:
        parse_and_validate(request("INVITE", cseq=cseq))
    assert info.value.status == 400


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("70", 70), ("255", 255), ("0070", 70)])
def test_max_forwards(text: str, value: int) -> None:
    data = request("OPTIONS").replace(b"Max-Forwards: 70", f"Max-Forwards: {text}".encode())
    assert parse_and_validate(data).max_forwards == value


@pytest.mark.parametrize("text", ["256", "-1", "seventy", "", "7 0"])
def test_max_forwards_out_of_range_is_refused(text: str) -> None:
    data = request("OPTIONS").replace(b"Max-Forwards: 70", f"Max-Forwards: {text}".encode())
    with pytest.raises(SIPParseError) as info:
        m = parse_message(data)
        _ = m.max_forwards
        m.validate()
    assert info.value.status == 400


@pytest.mark.parametrize("missing", ["Via", "To", "From", "Call-ID", "CSeq"])
def test_parse_message_requires_transaction_layer_headers(missing: str) -> None:
    data = request("OPTIONS")
    lines = [
        line
        for line in data.split(b"\r\n")
        if not line.lower().startswith(missing.lower().encode() + b":")
    ]
    with pytest.raises(SIPParseError) as info:
        parse_message(b"\r\n".join(lines))
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("name", "value", "accessor"),
    [
        ("CSeq", "not a cseq", "cseq"),
        ("Max-Forwards", "lots", "max_forwards"),
        ("Via", "garbage", "vias"),
        ("Via", "garbage", "top_via"),
        ("From", "<sip:alice@atlanta.example.com", "from_"),
        ("To", '"unterminated <sip:bob@biloxi.example.com>', "to"),
        ("Contact", "<sip:a@b.example.com>;;;", "contacts"),
        ("Call-ID", "", "call_id"),
    ],
)
def test_accessors_raise_sip_parse_error_on_a_malformed_value(
    name: str, value: str, accessor: str
) -> None:
    """docs/sip-api.md: accessors "raise SIPParseError if malformed"."""
    m = parse_and_validate(request("INVITE", "Contact: <sip:alice@pc33.atlanta.example.com>"))
    _ = getattr(m, accessor)  # fills the cache with the good value
    m.headers.set(name, value)
    with pytest.raises(SIPParseError) as info:
        getattr(m, accessor)
    assert info.value.status == 400
    with pytest.raises(SIPParseError):
        m.validate()


def test_replace_first_value_keeps_the_rest_of_the_line_and_every_other_line() -> None:
    h = Headers()
    h.add("Call-ID", "x@y")
    h.add("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com")
    h.add("v", "SIP/2.0/UDP c.example.com")
    h.replace_first_value("Via", "SIP/2.0/UDP new.example.com;branch=z9hG4bK9")
    assert h.get_all("Via") == [
        "SIP/2.0/UDP new.example.com;branch=z9hG4bK9",
        "SIP/2.0/UDP b.example.com",
        "SIP/2.0/UDP c.example.com",
    ]
    assert h.items()[0] == ("Call-ID", "x@y")
    h.replace_first_value("v", "SIP/2.0/TCP only.example.com")
    assert h.get_all("Via")[:2] == ["SIP/2.0/TCP only.example.com", "SIP/2.0/UDP b.example.com"]
    h.replace_first_value("Route", "<sip:proxy.example.com;lr>")
    assert h.get("Route") == "<sip:proxy.example.com;lr>"


def test_replace_first_value_resets_the_top_via_view() -> None:
    m = parse_message(request("OPTIONS"))
    assert m.top_via.host == "pc33.atlanta.example.com"
    cseq = m.cseq
    m.headers.replace_first_value("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKx")
    assert m.top_via.host == "proxy.example.com"
    assert m.cseq is cseq
    assert parse_message(m.to_bytes()).top_via.host == "proxy.example.com"


def test_header_keys_of_any_spelling_are_one_shared_string() -> None:
    """Keys come from one cache: every spelling of a name gives the same key object."""
    spellings = ["Via", "via", "VIA", "v", "V", "vIa"]
    keys = [header_key(name) for name in spellings]
    assert keys == ["via"] * len(spellings)
    assert all(key is keys[0] for key in keys)
    assert header_key("X-Brand-New-Header") == "x-brand-new-header"
    assert header_key("x-BRAND-new-header") is header_key("X-Brand-New-Header")


def test_header_keys_stay_right_when_the_key_cache_is_full() -> None:
    names = [f"X-Filler-{i}" for i in range(3000)]  # more than the cache keeps
    assert [header_key(name) for name in names] == [name.lower() for name in names]
    h = Headers([("X-Filler-2999", "a"), ("x-filler-2999", "b")])
    assert h.get_all("X-FILLER-2999") == ["a", "b"]


def test_the_line_index_of_built_headers_follows_every_change() -> None:
    """add() keeps the index of a new Headers up to date (no rebuild per lookup); every
    lookup after any change answers what the lines say."""
    h = Headers()
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("add", ("CSeq", "1 INVITE")),
        ("add", ("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1")),
        ("first", ("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2")),
        ("add", ("Route", "<sip:p1.example.com;lr>")),
        ("add", ("route", "<sip:p2.example.com;lr>")),
        ("set", ("Route", "<sip:p3.example.com;lr>")),
        ("remove", ("v",)),
        ("add", ("Via", "SIP/2.0/UDP c.example.com;branch=z9hG4bK3")),
        ("pop", ("Via",)),
        ("replace", ("CSeq", "2 INVITE")),
    ]
    for op, args in steps:
        if op == "add":
            h.add(*args)
        elif op == "first":
            h.add(*args, first=True)
        elif op == "set":
            h.set(*args)
        elif op == "remove":
            h.remove(*args)
        elif op == "pop":
            h.pop_first_value(*args)
        else:
            h.replace_first_value(*args)
        lines = h.items()
        for name in ("Via", "CSeq", "Route", "Contact"):
            expected = [v for n, v in lines if header_key(n) == header_key(name)]
            assert h.get(name) == (expected[0] if expected else None), (op, name)
            assert (name in h) == bool(expected)
            assert h.get_lines(name) == expected
