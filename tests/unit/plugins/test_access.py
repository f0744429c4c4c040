"""plugins/access.py: trusted networks per listener, 403 before routing, option errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from b2bua.config import ConfigError, load_config
from b2bua.interfaces import ICallFeature
from b2bua.plugin import load_plugins
from b2bua.routing import CallInfo, Reject, RequestContext
from b2bua.sip import Address, Request
from b2bua_plugins.access import Access
from tests.unit.bridge.harness import CALLEE, Callee, Caller, Harness
from tests.unit.plugins.conftest import LoadPlugins

HEAD = '\n[[plugin]]\nmodule = "access"\n'  # lines 5-7
ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = Reject(403)


def feature(load: LoadPlugins, text: str) -> Access:
    [loaded] = load(HEAD + text).loaded
    assert isinstance(loaded.plugin, Access)
    return loaded.plugin


def call(
    source: str = "192.0.2.1",
    listener: tuple[str, str, int] = ("UDP", "127.0.0.1", 5060),
    identity: str | None = None,
) -> CallInfo:
    transport, host, port = listener
    context = RequestContext(
        Address(transport, source, 5060), Address(transport, host, port), identity
    )
    return CallInfo("a@x", "b@y", context, 0.0)


def started(access: Access, info: CallInfo) -> Reject | None:
    return access.call_started(info, Request("INVITE", "sip:1001@127.0.0.1"))


# -- who gets in --------------------------------------------------------------------


def test_it_is_a_call_feature(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["10.0.0.0/8"]\n')
    assert verifyObject(ICallFeature, access)
    assert load(HEAD + 'trusted = ["10.0.0.0/8"]\n').routers == []  # not a router


def test_trusted_networks_get_in_others_get_403(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]\n')
    assert started(access, call("10.1.2.3")) is None
    assert started(access, call("192.0.2.7")) is None
    assert started(access, call("2001:db8::1")) is None
    assert started(access, call("192.0.2.8")) == FORBIDDEN
    assert started(access, call("11.0.0.1")) == FORBIDDEN
    assert started(access, call("2001:db9::1")) == FORBIDDEN
    assert access.refused == 3


def test_an_ipv4_peer_on_a_dual_stack_socket_matches_ipv4_networks(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["10.0.0.0/8"]\n')
    assert started(access, call("::ffff:10.0.0.1")) is None
    assert started(access, call("::ffff:11.0.0.1")) == FORBIDDEN


def test_a_source_that_is_not_an_address_is_never_trusted(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["0.0.0.0/0", "::/0"]\n')
    assert started(access, call("phone.example.com")) == FORBIDDEN


def test_an_empty_list_trusts_nobody(load: LoadPlugins) -> None:
    access = feature(load, "trusted = []\n")
    assert started(access, call("127.0.0.1")) == FORBIDDEN


def test_a_single_network_may_be_a_string(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = "10.0.0.0/8"\n')
    assert started(access, call("10.9.9.9")) is None


def test_authenticated_callers_get_in_from_anywhere(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["10.0.0.0/8"]\n')
    assert started(access, call("203.0.113.9", identity="alice")) is None
    assert started(access, call("203.0.113.9")) == FORBIDDEN


def test_allow_authenticated_false(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["10.0.0.0/8"]\nallow_authenticated = false\n')
    assert started(access, call("203.0.113.9", identity="alice")) == FORBIDDEN
    assert started(access, call("10.0.0.1", identity="alice")) is None


def test_status_and_reason(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = []\nstatus = 404\nreason = "Not Here"\n')
    assert started(access, call()) == Reject(404, "Not Here")


# -- per listener -------------------------------------------------------------------

LISTENERS = """trusted = ["10.0.0.0/8"]

[[plugin.listener]]
transport = "udp"
port = 5080
trusted = ["203.0.113.10"]

[[plugin.listener]]
host = "::1"
trusted = ["::1"]
allow_authenticated = false
"""


def test_the_first_matching_listener_rule_replaces_the_default(load: LoadPlugins) -> None:
    access = feature(load, LISTENERS)
    trunk = ("UDP", "127.0.0.1", 5080)
    assert started(access, call("203.0.113.10", trunk)) is None
    assert started(access, call("10.0.0.1", trunk)) == FORBIDDEN  # not added to the default
    assert started(access, call("10.0.0.1", ("TCP", "127.0.0.1", 5080))) is None  # not udp
    assert started(access, call("203.0.113.10", ("TCP", "127.0.0.1", 5080))) == FORBIDDEN
    assert started(access, call("10.0.0.1")) is None


def test_listener_host_compares_as_an_address(load: LoadPlugins) -> None:
    access = feature(load, LISTENERS)
    v6 = ("UDP", "0:0::1", 5060)
    assert started(access, call("::1", v6)) is None
    assert started(access, call("10.0.0.1", v6)) == FORBIDDEN
    assert started(access, call("2001:db8::9", v6, identity="bob")) == FORBIDDEN  # no auth here


def test_without_a_default_unmatched_listeners_trust_nobody(load: LoadPlugins) -> None:
    access = feature(load, '[[plugin.listener]]\nport = 5080\ntrusted = ["0.0.0.0/0"]\n')
    assert started(access, call("192.0.2.1", ("UDP", "127.0.0.1", 5080))) is None
    assert started(access, call("192.0.2.1", ("UDP", "127.0.0.1", 5060))) == FORBIDDEN
    assert started(access, call("192.0.2.1", identity="alice")) is None


# -- in the bridge: refused before routing ------------------------------------------


def test_an_untrusted_caller_gets_403_and_no_router_is_asked(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["192.0.2.0/24"]\n')
    h = Harness(features=[access])
    caller = Caller(h)  # 127.0.0.1:5080
    caller.send_invite()
    assert caller.statuses("INVITE")[-1] == 403
    assert h.route_calls == []
    assert Callee(h, CALLEE).requests() == []
    caller.ack_failure(caller.responses(403)[-1])
    h.advance(40)
    h.assert_idle()


def test_a_trusted_caller_is_bridged(load: LoadPlugins) -> None:
    access = feature(load, 'trusted = ["127.0.0.0/8"]\n')
    h = Harness(features=[access])
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(200)
    assert caller.statuses("INVITE")[-1] == 200


# -- the example --------------------------------------------------------------------


def test_the_example_trusts_loopback_and_only_the_carrier_on_the_trunk_port() -> None:
    plugins = load_plugins(load_config(str(ROOT / "etc" / "examples" / "access.toml")))
    assert isinstance(plugins.loaded[0].plugin, Access)  # first, before the router
    access = plugins.loaded[0].plugin
    assert started(access, call("127.0.0.5")) is None
    assert started(access, call("192.168.1.1")) == FORBIDDEN
    trunk = ("UDP", "127.0.0.1", 5080)
    assert started(access, call("127.0.0.1", trunk)) is None
    assert started(access, call("127.0.0.2", trunk)) == FORBIDDEN


# -- option errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":6: plugin[0]: needs 'trusted'"),
        ('trusted = ["10.0.0.1/8"]\n', ":8: plugin[0].trusted[0]: '10.0.0.1/8' is not an IPv4"),
        ('trusted = ["nonsense"]\n', "plugin[0].trusted[0]: 'nonsense' is not"),
        ("trusted = [1]\n", "plugin[0].trusted[0]: must be a string, not 1"),
        ("trusted = 1\n", "plugin[0].trusted: must be a list of networks"),
        ('trusted = []\nallow = ["x"]\n', ":9: plugin[0].allow: unknown key (known keys:"),
        ("trusted = []\nallow_authenticated = 1\n", "allow_authenticated: must be true or false"),
        ("trusted = []\nstatus = 200\n", "plugin[0].status: must be a final error status"),
        ('trusted = []\nstatus = "403"\n', "plugin[0].status: must be an integer"),
        ('trusted = []\nreason = ""\n', "plugin[0].reason: must be a non-empty line"),
        ("trusted = []\nlog = 1\n", "plugin[0].log: must be true or false"),
        ("listener = []\n", "plugin[0].listener: must be a non-empty array of tables"),
        ("[[plugin.listener]]\nport = 5060\n", ":8: plugin[0].listener[0]: needs 'trusted'"),
        (
            '[[plugin.listener]]\ntrusted = []\ntransport = "sctp"\n',
            ":10: plugin[0].listener[0].transport: must be one of udp, tcp, tls",
        ),
        ("[[plugin.listener]]\ntrusted = []\nport = 0\n", "listener[0].port: must be between"),
        (
            '[[plugin.listener]]\ntrusted = []\nhost = "a b"\n',
            "listener[0].host: 'a b' is not an IP address or host name",
        ),
        ("[[plugin.listener]]\ntrusted = []\nname = 1\n", "listener[0].name: unknown key"),
    ],
)
def test_option_errors_name_file_line_and_key(load: LoadPlugins, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(HEAD + text)
    message = str(info.value)
    assert expected in message, message
    assert message.startswith(str(info.value.path))
