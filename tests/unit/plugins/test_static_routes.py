"""plugins/static_routes.py: matching, targets, and an error naming the key for every mistake."""

from __future__ import annotations

import pytest

from b2bua.config import ConfigError
from b2bua.routing import Reject, Routes, Target
from b2bua.sip import parse_uri
from b2bua_plugins import static_routes
from b2bua_plugins.static_routes import StaticRoutes, normalize_host
from tests.unit.plugins.conftest import LoadPlugins
from tests.unit.plugins.helpers import context, invite

HEAD = '\n[[plugin]]\nmodule = "static_routes"\n'  # lines 5-7


def router(load: LoadPlugins, routes: str) -> StaticRoutes:
    [plugin] = load(HEAD + routes).routers
    assert isinstance(plugin, StaticRoutes)
    return plugin


def route(**keys: object) -> str:
    """A [[plugin.route]] table with these keys, one a line, in the order given."""
    lines = ["[[plugin.route]]"]
    lines.extend(f"{name} = {toml(value)}" for name, value in keys.items())
    return "\n".join(lines) + "\n"


def toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return str(value)


def uris(decision: object) -> list[str]:
    assert isinstance(decision, Routes)
    return [str(t.uri) for t in decision.targets]


# -- matching ------------------------------------------------------------------------------


def test_a_route_without_match_keys_takes_every_call(load: LoadPlugins) -> None:
    r = router(load, route(targets=["sip:127.0.0.1:5070"]))
    assert uris(r.route(invite("sip:1001@example.com"), context())) == ["sip:1001@127.0.0.1:5070"]
    assert uris(r.route(invite("sip:example.com"), context())) == ["sip:127.0.0.1:5070"]


def test_user_prefix(load: LoadPlugins) -> None:
    r = router(load, route(user_prefix="00", targets=["sip:intl@gw"]))
    assert uris(r.route(invite("sip:0044123@x"), context())) == ["sip:intl@gw"]
    assert r.route(invite("sip:044123@x"), context()) is None
    assert r.route(invite("sip:x"), context()) is None  # no user at all


def test_an_empty_user_prefix_matches_everything(load: LoadPlugins) -> None:
    r = router(load, route(user_prefix="", targets=["sip:pbx"]))
    assert r.route(invite("sip:x"), context()) is not None
    assert r.route(invite("sip:1@x"), context()) is not None


def test_domain_is_case_insensitive(load: LoadPlugins) -> None:
    r = router(load, route(domain="Example.COM", targets=["sip:pbx"]))
    assert r.route(invite("sip:1@example.com"), context()) is not None
    assert r.route(invite("sip:1@EXAMPLE.com."), context()) is not None
    assert r.route(invite("sip:1@example.org"), context()) is None
    assert r.route(invite("sip:1@sub.example.com"), context()) is None


@pytest.mark.parametrize("domain", ["::1", "[::1]", "0:0::1"])
def test_domain_ip_addresses_compare_as_addresses(load: LoadPlugins, domain: str) -> None:
    r = router(load, route(domain=domain, targets=["sip:pbx"]))
    assert r.route(invite("sip:1@[0::1]:5060"), context()) is not None
    assert r.route(invite("sip:1@[::2]"), context()) is None


def test_source_network(load: LoadPlugins) -> None:
    r = router(load, route(source="10.1.0.0/16", targets=["sip:pbx"]))
    assert r.route(invite(), context("10.1.2.3")) is not None
    assert r.route(invite(), context("10.2.0.1")) is None
    assert r.route(invite(), context("::ffff:10.1.2.3")) is not None  # dual-stack socket
    assert r.route(invite(), context("2001:db8::1")) is None
    assert r.route(invite(), context("some.host.name")) is None


def test_source_ipv6_and_a_bare_address(load: LoadPlugins) -> None:
    r = router(
        load,
        route(source="2001:db8::/32", targets=["sip:six"])
        + route(source="192.0.2.7", targets=["sip:seven"]),
    )
    assert uris(r.route(invite("sip:x"), context("2001:db8::5"))) == ["sip:six"]
    assert uris(r.route(invite("sip:x"), context("192.0.2.7"))) == ["sip:seven"]
    assert r.route(invite("sip:x"), context("192.0.2.8")) is None


def test_source_port(load: LoadPlugins) -> None:
    r = router(load, route(source="127.0.0.1", source_port=5080, targets=["sip:pbx"]))
    assert r.route(invite(), context("127.0.0.1", 5080)) is not None
    assert r.route(invite(), context("127.0.0.1", 5070)) is None
    assert r.route(invite(), context("127.0.0.2", 5080)) is None


def test_every_given_key_must_match(load: LoadPlugins) -> None:
    r = router(
        load,
        route(user_prefix="1", domain="example.com", source="10.0.0.0/8", targets=["sip:pbx"]),
    )
    assert r.route(invite("sip:100@example.com"), context("10.0.0.1")) is not None
    assert r.route(invite("sip:200@example.com"), context("10.0.0.1")) is None
    assert r.route(invite("sip:100@example.org"), context("10.0.0.1")) is None
    assert r.route(invite("sip:100@example.com"), context("11.0.0.1")) is None


def test_the_first_matching_route_wins(load: LoadPlugins) -> None:
    r = router(
        load,
        route(user_prefix="12", targets=["sip:a"])
        + route(user_prefix="1", targets=["sip:b"])
        + route(targets=["sip:c"]),
    )
    assert uris(r.route(invite("sip:123@x"), context())) == ["sip:123@a"]
    assert uris(r.route(invite("sip:133@x"), context())) == ["sip:133@b"]
    assert uris(r.route(invite("sip:233@x"), context())) == ["sip:233@c"]


def test_no_match_is_no_opinion(load: LoadPlugins) -> None:
    r = router(load, route(user_prefix="9", targets=["sip:a"]))
    assert r.route(invite("sip:1@x"), context()) is None


def test_a_reject_route(load: LoadPlugins) -> None:
    r = router(
        load,
        route(source="10.0.0.0/8", targets=["sip:pbx"])
        + route(reject=403, reason="Not From Here")
        + route(reject=480),
    )
    assert r.route(invite(), context("192.0.2.1")) == Reject(403, "Not From Here")
    assert isinstance(r.route(invite(), context("10.0.0.1")), Routes)


# -- targets -------------------------------------------------------------------------------


def test_targets_in_order_and_the_called_user(load: LoadPlugins) -> None:
    r = router(
        load,
        route(targets=["sip:127.0.0.1:5070", "sip:ivr@10.0.0.2;transport=tcp", "sips:[::1]:5061"]),
    )
    decision = r.route(invite("sip:1001@127.0.0.1"), context())
    assert uris(decision) == [
        "sip:1001@127.0.0.1:5070",  # no user: the called user
        "sip:ivr@10.0.0.2;transport=tcp",  # its own user is kept
        "sips:1001@[::1]:5061",
    ]


def test_the_called_user_is_copied_as_written(load: LoadPlugins) -> None:
    r = router(load, route(targets=["sip:gw"]))
    assert uris(r.route(invite("sip:%2A31%23;phone-context=x@host"), context())) == [
        "sip:%2A31%23;phone-context=x@gw"
    ]
    assert uris(r.route(invite("tel:+4930123"), context())) == ["sip:+4930123@gw"]


def test_strip_prefix(load: LoadPlugins) -> None:
    r = router(
        load,
        route(user_prefix="0", strip_prefix=True, targets=["sip:trunk:5080", "sip:fixed@gw"]),
    )
    assert uris(r.route(invite("sip:0301234@x"), context())) == [
        "sip:301234@trunk:5080",
        "sip:fixed@gw",
    ]
    # Nothing left after the prefix: the target has no user.
    assert uris(r.route(invite("sip:0@x"), context())) == ["sip:trunk:5080", "sip:fixed@gw"]


def test_timeouts_and_transport_go_into_every_target(load: LoadPlugins) -> None:
    r = router(
        load,
        route(targets=["sip:a", "sip:b"], timeout=2, ring_timeout=7.5, transport="TCP"),
    )
    decision = r.route(invite("sip:x"), context())
    assert decision == Routes(
        (
            Target(parse_uri("sip:a"), transport="TCP", timeout=2.0, ring_timeout=7.5),
            Target(parse_uri("sip:b"), transport="TCP", timeout=2.0, ring_timeout=7.5),
        )
    )


def test_a_zero_ring_timeout_disables_it_for_the_route(load: LoadPlugins) -> None:
    decision = router(load, route(targets=["sip:a"], ring_timeout=0)).route(
        invite("sip:x"), context()
    )
    assert decision == Routes((Target(parse_uri("sip:a"), ring_timeout=0.0),))


def test_defaults_leave_timeouts_and_transport_to_the_bridge(load: LoadPlugins) -> None:
    decision = router(load, route(targets=["sip:a"])).route(invite("sip:x"), context())
    assert decision == Routes((Target(parse_uri("sip:a")),))


def test_routes_are_not_shared_between_calls(load: LoadPlugins) -> None:
    r = router(load, route(targets=["sip:pbx"]))
    first = r.route(invite("sip:1@x"), context())
    second = r.route(invite("sip:2@x"), context())
    assert uris(first) == ["sip:1@pbx"] and uris(second) == ["sip:2@pbx"]


def test_normalize_host() -> None:
    assert normalize_host("Example.COM.") == "example.com"
    assert normalize_host("[0:0::1]") == "::1"
    assert normalize_host("010.1.1.1") == "010.1.1.1"  # not an address: left as a name


# -- validation: every mistake names the key (and its line) ----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":6: plugin[0]: needs at least one route ([[plugin.route]] table)"),
        ("colour = 1\n", ":8: plugin[0].colour: unknown key (known keys: route)"),
        ("route = 1\n", ":8: plugin[0].route: must be a non-empty array of tables"),
        ("route = []\n", ":8: plugin[0].route: must be a non-empty array of tables"),
        ("route = [1]\n", ":8: plugin[0].route[0]: must be a table"),
        (
            route(targets=["sip:a"], colour=1),
            ":10: plugin[0].route[0].colour: unknown key (known keys:",
        ),
        (
            route(user_prefix=1, targets=["sip:a"]),
            ":9: plugin[0].route[0].user_prefix: must be a string, not 1",
        ),
        (
            route(user_prefix="1@2", targets=["sip:a"]),
            ":9: plugin[0].route[0].user_prefix: '1@2' is not valid",
        ),
        (
            route(user_prefix="1 2", targets=["sip:a"]),
            "plugin[0].route[0].user_prefix: '1 2' is not valid",
        ),
        (
            route(domain="example.com:5060", targets=["sip:a"]),
            ":9: plugin[0].route[0].domain: 'example.com:5060' is not a host name",
        ),
        (route(domain="", targets=["sip:a"]), "plugin[0].route[0].domain: '' is not a host name"),
        (
            route(domain=True, targets=["sip:a"]),
            "plugin[0].route[0].domain: must be a string, not True",
        ),
        (
            route(source="10.0.0.0/33", targets=["sip:a"]),
            ":9: plugin[0].route[0].source: '10.0.0.0/33' is not an IPv4 or IPv6 address or network (CIDR)",
        ),
        (
            route(source="10.0.0.1/8", targets=["sip:a"]),
            "plugin[0].route[0].source: '10.0.0.1/8' is not an IPv4 or IPv6 address or network (CIDR): 10.0.0.1/8 has host bits set",
        ),
        (
            route(source="pbx.example.com", targets=["sip:a"]),
            "plugin[0].route[0].source: 'pbx.example.com' is not",
        ),
        (
            route(source_port=0, targets=["sip:a"]),
            ":9: plugin[0].route[0].source_port: must be between 1 and 65535",
        ),
        (
            route(source_port="5060", targets=["sip:a"]),
            "plugin[0].route[0].source_port: must be an integer, not '5060'",
        ),
        (
            route(user_prefix="1"),
            ":8: plugin[0].route[0]: needs either 'targets' (where to send the call) or 'reject'",
        ),
        (
            route(targets=["sip:a"], reject=403),
            ":8: plugin[0].route[0]: takes 'targets' or 'reject', not both",
        ),
        (route(targets=[]), ":9: plugin[0].route[0].targets: must be a non-empty list of SIP URIs"),
        (
            route(targets="sip:a"),
            ":9: plugin[0].route[0].targets: must be a non-empty list of SIP URIs",
        ),
        (
            route(targets=["sip:a", 5]),
            ":9: plugin[0].route[0].targets[1]: must be a SIP URI string, not 5",
        ),
        (
            route(targets=["sip:a", "sip:"]),
            ":9: plugin[0].route[0].targets[1]: 'sip:' is not a valid URI: ",
        ),
        (
            route(targets=["127.0.0.1:5070"]),
            "plugin[0].route[0].targets[0]: '127.0.0.1:5070' is not a valid URI",
        ),
        (
            route(targets=["tel:+123"]),
            ":9: plugin[0].route[0].targets[0]: 'tel:+123' is not a sip: or sips: URI",
        ),
        (
            route(targets=["sip:a"], timeout=0),
            ":10: plugin[0].route[0].timeout: must be a positive number of seconds",
        ),
        (
            route(targets=["sip:a"], timeout="5"),
            ":10: plugin[0].route[0].timeout: must be a number, not '5'",
        ),
        (
            route(targets=["sip:a"], ring_timeout=-1),
            ":10: plugin[0].route[0].ring_timeout: must not be negative (0 disables it)",
        ),
        (
            route(targets=["sip:a"], transport="sctp"),
            ":10: plugin[0].route[0].transport: must be one of udp, tcp, tls",
        ),
        (
            route(targets=["sip:a"], strip_prefix=1),
            ":10: plugin[0].route[0].strip_prefix: must be true or false, not 1",
        ),
        (
            route(targets=["sip:a"], strip_prefix=True),
            ":10: plugin[0].route[0].strip_prefix: needs a non-empty 'user_prefix'",
        ),
        (
            route(targets=["sip:a"], reason="x"),
            ":10: plugin[0].route[0].reason: only a route with 'reject' takes it",
        ),
        (
            route(reject=200),
            ":9: plugin[0].route[0].reject: must be a final error status (400 to 699)",
        ),
        (route(reject="403"), ":9: plugin[0].route[0].reject: must be an integer, not '403'"),
        (
            route(reject=403, reason=""),
            ":10: plugin[0].route[0].reason: must be a non-empty line of text",
        ),
        (
            route(reject=403, timeout=3),
            ":10: plugin[0].route[0].timeout: only a route with 'targets' takes it",
        ),
        (
            route(targets=["sip:a"]) + route(targets=["sip:b"], domain="a b"),
            ":12: plugin[0].route[1].domain: 'a b' is not a host name",
        ),
    ],
)
def test_errors_name_the_key_and_line(load: LoadPlugins, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(HEAD + text)
    message = str(info.value)
    assert expected in message, message
    assert message.startswith(str(info.value.path))


def test_errors_in_inline_tables_name_their_line(load: LoadPlugins) -> None:
    text = (
        HEAD
        + "route = [\n"
        + '  { user_prefix = "1", targets = ["sip:a"] },\n'
        + '  { user_prefix = "2", targets = ["sip:b"], timeout = -1 },\n'
        + "]\n"
    )
    with pytest.raises(
        ConfigError, match=r":10: plugin\[0\]\.route\[1\]\.timeout: must be a positive"
    ):
        load(text)


def test_errors_in_the_second_plugin_name_it(load: LoadPlugins) -> None:
    text = HEAD + route(targets=["sip:a"]) + HEAD + route(targets=["sip:"])
    with pytest.raises(
        ConfigError, match=r":14: plugin\[1\]\.route\[0\]\.targets\[0\]: 'sip:' is not"
    ):
        load(text)


def test_route_credentials_reach_the_targets(load: LoadPlugins) -> None:
    r = router(load, route(targets=["sip:127.0.0.1:5070"], username="trunk", password="pw"))
    decision = r.route(invite("sip:1001@127.0.0.1"), context())
    assert isinstance(decision, Routes)
    assert decision.targets[0].credentials == ("trunk", "pw")


def test_username_without_password_is_an_error(load: LoadPlugins) -> None:
    with pytest.raises(ConfigError, match="'username' and 'password' go together"):
        router(load, route(targets=["sip:127.0.0.1:5070"], username="trunk"))


def test_a_decision_kept_for_a_user_is_the_one_made_anew(load: LoadPlugins) -> None:
    """Route.decide keeps its decisions by user (bounded): the same as building them."""
    plugin = router(
        load,
        route(
            user_prefix="9",
            strip_prefix=True,
            targets=["sip:127.0.0.1:5070", "sip:fixed@127.0.0.1:5071"],
            timeout=2,
        ),
    )
    [taken] = plugin.routes
    users = [f"9{n}" for n in range(static_routes._DECISIONS_MAX + 10)] + ["9", "91", "90"]
    for user in users:
        kept = taken.decide(user)
        assert kept == taken._targets_for(user)
        assert taken.decide(user) is kept
    assert len(taken._decisions) <= static_routes._DECISIONS_MAX
    assert uris(taken.decide("91")) == ["sip:1@127.0.0.1:5070", "sip:fixed@127.0.0.1:5071"]
