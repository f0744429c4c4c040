"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966) and their comparison (19.1.4)."""

from __future__ import annotations

import dataclasses

import pytest

from b2bua.sip import URI, SIPParseError, parse_uri
from b2bua.sip.grammar import NO_HEADERS, NO_PARAMS
from tests.unit.sip.sipdata import find_param, user_octets


def test_sip_uri_with_every_component() -> None:
    uri = parse_uri("sip:alice:secretword@atlanta.example.com:5061;transport=tcp;lr?subject=x")
    assert uri.scheme == "sip"
    assert uri.user == "alice"
    assert uri.password == "secretword"
    assert uri.host == "atlanta.example.com"
    assert uri.port == 5061
    assert uri.params == {"transport": "tcp", "lr": None}
    assert {k.lower(): v for k, v in uri.headers.items()} == {"subject": "x"}


def test_sips_uri_with_ipv6_reference_and_port() -> None:
    uri = parse_uri("sips:bob@[2001:db8::1]:5061;maddr=[2001:db8::2]")
    assert uri.scheme == "sips"
    assert uri.user == "bob"
    assert uri.host == "[2001:db8::1]"
    assert uri.port == 5061
    assert find_param(uri.params, "maddr") == (True, "[2001:db8::2]")


def test_ipv6_reference_without_port_and_without_user() -> None:
    uri = parse_uri("sip:[2001:db8::10]")
    assert uri.host == "[2001:db8::10]"
    assert uri.port is None
    assert uri.user in (None, "")


def test_host_only_uri_with_port() -> None:
    uri = parse_uri("sip:192.0.2.4:5060")
    assert uri.user in (None, "")
    assert (uri.host, uri.port) == ("192.0.2.4", 5060)


def test_parameter_names_are_lowercased() -> None:
    uri = parse_uri("sip:carol@chicago.example.com;Transport=TCP;NewParam=Value;LR")
    assert set(uri.params) == {"transport", "newparam", "lr"}


def test_uri_headers_with_several_fields() -> None:
    uri = parse_uri("sip:alice@atlanta.example.com?subject=project%20x&priority=urgent")
    headers = {k.lower(): user_octets(v) for k, v in uri.headers.items()}
    assert headers == {"subject": b"project x", "priority": b"urgent"}


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert uri.scheme == "tel"
    assert parse_uri(str(uri)) == uri
    assert uri != parse_uri("sip:+1-201-555-0123@example.com;user=phone")


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.example.com",
        "sips:alice@atlanta.example.com:5061;transport=tls",
        "sip:+1-212-555-1212:1234@gateway.example.com;user=phone",
        "sip:alice;day=tuesday@atlanta.example.com",
        "sip:atlanta.example.com;method=REGISTER?to=alice%40atlanta.example.com",
        "sip:[2001:db8::10]:5070;lr",
        "sip:%61lice@atlanta.example.com;transport=TCP",
        "tel:+358-555-1234567;postd=pp22",
    ],
)
def test_str_parses_back_to_an_equal_uri(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(str(uri), str)
    again = parse_uri(str(uri))
    assert again == uri
    assert hash(again) == hash(uri)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:",
        "sip:alice@",
        "sip:alice@host:notaport",
        "sip:alice@host:99999999999999999999",
        "sip:alice@[2001:db8::1",
        "sip:alice@2001:db8::1",  # RFC 5118 4.2: an IPv6 address needs its brackets
        "sip:alice@host with space",
        "alice@atlanta.example.com",
        "sip:alice@host\r\nVia: x",
        "sip:alice\x00@host",
    ],
)
def test_malformed_uri_raises_sip_parse_error_only(text: str) -> None:
    with pytest.raises(SIPParseError) as info:
        parse_uri(text)
    assert info.value.status in (400, 416)


def test_with_params_and_replace_return_new_uris() -> None:
    uri = parse_uri("sip:alice@atlanta.example.com;transport=udp")
    changed = uri.with_params(transport="tcp", lr=None)
    assert changed is not uri
    assert changed.params == {"transport": "tcp", "lr": None}
    assert uri.params == {"transport": "udp"}  # the original is untouched
    moved = uri.replace(host="biloxi.example.com", port=5080)
    assert (moved.host, moved.port) == ("biloxi.example.com", 5080)
    assert (uri.host, uri.port) == ("atlanta.example.com", None)
    assert moved == parse_uri("sip:alice@biloxi.example.com:5080;transport=udp")


# --------------------------------------------------------------------------------------
# RFC 3261 section 19.1.4: URI comparison, the RFC's own examples (all of them)
# --------------------------------------------------------------------------------------

EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]

NOT_EQUIVALENT = [
    # different usernames
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    # can resolve to different ports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    # can resolve to different transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    # can resolve to different port and transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    # different header component
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    # even though that's what phone21.boxesbybob.com resolves to
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # "Note that equality is not transitive": both equal sip:carol@chicago.com, not each other
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub
    assert ub == ua
    assert (ua != ub) is False
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_non_equivalent_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua != ub
    assert ub != ua
    assert (ua == ub) is False


def test_equality_is_not_transitive_but_hash_stays_consistent() -> None:
    plain = parse_uri("sip:carol@chicago.com")
    on = parse_uri("sip:carol@chicago.com;security=on")
    off = parse_uri("sip:carol@chicago.com;security=off")
    assert plain == on and plain == off and on != off
    assert hash(plain) == hash(on) == hash(off)
    # usable as dict keys / in sets the way == says
    assert on in {plain}
    assert {plain: 1}[off] == 1


# The rules of 19.1.4 beyond the RFC's example list.
RULE_EQUAL = [
    # host comparison is case-insensitive; scheme too
    ("sip:alice@ATLANTA.example.COM", "sip:alice@atlanta.example.com"),
    ("SIPS:alice@atlanta.example.com", "sips:alice@atlanta.example.com"),
    # "Characters other than those in the "reserved" set ... are equivalent to their
    # "%" HEX HEX encoding."
    ("sip:al%69ce@atlanta.example.com", "sip:alice@atlanta.example.com"),
    (
        "sip:alice@atlanta.example.com;transport=t%63p",
        "sip:alice@atlanta.example.com;transport=tcp",
    ),
    # parameter names and (other than for user, method...) values: case-insensitive
    (
        "sip:alice@atlanta.example.com;MADDR=A.example.com",
        "sip:alice@atlanta.example.com;maddr=a.example.com",
    ),
    # a parameter in only one URI (other than user, ttl, method, maddr) is ignored
    ("sip:alice@atlanta.example.com;lr", "sip:alice@atlanta.example.com"),
    # header order does not matter; header names are case-insensitive
    ("sip:a@b.example.com?X-A=1&X-B=2", "sip:a@b.example.com?x-b=2&x-a=1"),
    # IPv6 references: the same address
    ("sip:alice@[2001:DB8::1]", "sip:alice@[2001:db8::1]"),
]

RULE_NOT_EQUAL = [
    # "A SIP and SIPS URI are never equivalent."
    ("sip:alice@atlanta.example.com", "sips:alice@atlanta.example.com"),
    # "Comparison of the userinfo of SIP and SIPS URIs is case-sensitive."
    ("sip:Alice@atlanta.example.com", "sip:alice@atlanta.example.com"),
    ("sip:alice:pw@atlanta.example.com", "sip:alice:PW@atlanta.example.com"),
    ("sip:alice:pw@atlanta.example.com", "sip:alice@atlanta.example.com"),
    # user, ttl, method and maddr "MUST match" when present in either URI
    ("sip:+15551234@example.com;user=phone", "sip:+15551234@example.com"),
    ("sip:alice@atlanta.example.com;ttl=15", "sip:alice@atlanta.example.com"),
    ("sip:alice@atlanta.example.com;method=INVITE", "sip:alice@atlanta.example.com"),
    ("sip:alice@atlanta.example.com;maddr=239.255.255.1", "sip:alice@atlanta.example.com"),
    ("sip:alice@atlanta.example.com;method=INVITE", "sip:alice@atlanta.example.com;method=BYE"),
    # escaped parameter names are the parameters they spell (RFC 4475 3.1.1.3: the
    # application "must treat the % HEX HEX expansions as equivalent")
    ("sip:alice@atlanta.example.com;us%65r=phone", "sip:alice@atlanta.example.com"),
    ("sip:alice@atlanta.example.com;m%61ddr=192.0.2.1", "sip:alice@atlanta.example.com"),
    ("sip:alice@atlanta.example.com;n%61me=one", "sip:alice@atlanta.example.com;name=two"),
    # "unescaping URI components is never performed recursively" (RFC 4475 3.1.1.3)
    ("sip:alice@atlanta.example.com;name=value%2541", "sip:alice@atlanta.example.com;name=valueA"),
    ("sip:value%2541@atlanta.example.com", "sip:valueA@atlanta.example.com"),
    # a header present in one URI only, or with another value
    ("sip:a@b.example.com?subject=x", "sip:a@b.example.com?subject=y"),
    ("sip:a@b.example.com?subject=x&priority=urgent", "sip:a@b.example.com?subject=x"),
    # different hosts, users, ports
    ("sip:alice@atlanta.example.com", "sip:alice@biloxi.example.com"),
    ("sip:alice@atlanta.example.com:5060", "sip:alice@atlanta.example.com:5061"),
]


@pytest.mark.parametrize(("a", "b"), RULE_EQUAL)
def test_comparison_rule_equal(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(("a", "b"), RULE_NOT_EQUAL)
def test_comparison_rule_not_equal(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua != ub
    assert ub != ua


def test_uri_is_not_equal_to_other_types() -> None:
    uri = parse_uri("sip:alice@atlanta.example.com")
    assert uri != "sip:alice@atlanta.example.com"
    assert uri != 42
    assert isinstance(uri, URI)


@pytest.mark.parametrize(
    "uri",
    [
        parse_uri("sip:alice@atlanta.example.com"),
        parse_uri("SIP:alice@atlanta.example.com:5060"),
        parse_uri("tel:+1-201-555-0123"),
        URI("sip", host="example.com"),
        parse_uri("sip:a@b.example.com;lr").without_params("lr"),
    ],
)
def test_uris_without_parameters_share_one_empty_dict_that_refuses_changes(uri: URI) -> None:
    """Values without parameters share one empty dict (memory per held call); it
    refuses every change, so no value can change another through it."""
    assert uri.params == {} and uri.headers == {}
    assert uri.params is NO_PARAMS and uri.headers is NO_HEADERS
    for change in (
        lambda: uri.params.__setitem__("lr", None),
        lambda: uri.params.update(lr=None),
        lambda: uri.params.setdefault("lr"),
        lambda: uri.params.pop("lr", None),
        lambda: uri.params.clear(),
        lambda: uri.headers.__setitem__("subject", "x"),
    ):
        with pytest.raises(TypeError):
            change()
    assert NO_PARAMS == {}
    assert uri.with_params(lr=None).params == {"lr": None}
    assert str(uri.with_params(lr=None)).endswith(";lr")
    assert uri.params == {}


def test_parsed_uris_of_one_host_share_the_host_string_and_port_number() -> None:
    a = parse_uri("sip:alice@shared-host.example.com:5070")
    b = parse_uri("SIP:bob@shared-host.example.com:5070;transport=tcp")
    assert a.host is b.host
    assert a.port is b.port
    assert a.scheme == b.scheme == "sip"
    for i in range(3000):  # more than are kept: the tables are emptied, never wrong
        uri = parse_uri(f"sip:h{i}.example.com:{i + 1}")
        assert (uri.host, uri.port) == (f"h{i}.example.com", i + 1)


def test_replace_and_parameter_copies_equal_what_dataclasses_replace_builds() -> None:
    uri = parse_uri("sips:alice:pw@atlanta.example.com:5061;transport=tcp;lr?subject=x")
    for changes in ({}, {"user": "bob"}, {"port": None, "params": {"maddr": "h"}}, {"host": "h"}):
        copy = uri.replace(**changes)
        assert type(copy) is URI
        assert [getattr(copy, f.name) for f in dataclasses.fields(URI)] == [
            getattr(dataclasses.replace(uri, **changes), f.name)  # type: ignore[arg-type]
            for f in dataclasses.fields(URI)
        ]
    assert uri.with_params(lr="1", ttl="5").params == {"transport": "tcp", "lr": "1", "ttl": "5"}
    assert uri.without_params("lr", "transport").params is NO_PARAMS
    assert (
        str(uri.without_params("lr"))
        == "sips:alice:pw@atlanta.example.com:5061;transport=tcp?subject=x"
    )
    with pytest.raises(TypeError):
        uri.replace(colour="blue")
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.replace(user="x").user = "y"  # type: ignore[misc]
