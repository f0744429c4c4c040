"""plugins/local_users.py: calls to registered users go to their contacts (q order), 480/404."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task
from zope.interface.verify import verifyObject

from b2bua.config import ConfigError
from b2bua.interfaces import IPluginService, IRouter
from b2bua.location import Binding
from b2bua.plugin import PluginRuntime
from b2bua.registrar import LocationService
from b2bua.routing import Reject, Routes
from b2bua_plugins.local_users import LocalUsers
from tests.unit.plugins.conftest import LoadPlugins
from tests.unit.plugins.helpers import context, invite

HEAD = '\n[[plugin]]\nmodule = "local_users"\n'  # lines 5-7


def plugin(load: LoadPlugins, options: str = "") -> LocalUsers:
    plugins = load(HEAD + options)
    [router] = plugins.routers
    assert isinstance(router, LocalUsers)
    return router


def started(router: LocalUsers, location: Any) -> task.Clock:
    clock = task.Clock()
    router.start_plugin(PluginRuntime(clock, lambda method, uri: None, location))  # type: ignore[arg-type, return-value]
    return clock


def location_with(clock: task.Clock, *bindings: tuple[str, str, float | None, float]) -> LocationService:
    location = LocationService(clock, ["127.0.0.1"])
    by_aor: dict[str, list[Binding]] = {}
    for aor, contact, q, registered_at in bindings:
        binding = Binding(aor, f"<{contact}>", 3600, q, "c", 1, (), "", registered_at)
        by_aor.setdefault(aor, []).append(binding)
    for aor, group in by_aor.items():
        location.update(aor, group)
    return location


def uris(decision: object) -> list[str]:
    assert isinstance(decision, Routes)
    return [str(t.uri) for t in decision.targets]


def test_provides_router_and_plugin_service(load: LoadPlugins) -> None:
    router = plugin(load)
    assert verifyObject(IRouter, router) and verifyObject(IPluginService, router)


def test_registered_contacts_in_q_order_then_registration_order(load: LoadPlugins) -> None:
    router = plugin(load, 'ring_timeout = 15\ntimeout = 3\n')
    clock = task.Clock()
    location = location_with(
        clock,
        ("sip:alice@127.0.0.1", "sip:alice@192.0.2.1:5062", 0.5, 1),
        ("sip:alice@127.0.0.1", "sip:alice@192.0.2.2;transport=tcp", None, 2),
        ("sip:alice@127.0.0.1", "sip:alice@192.0.2.3", 0.5, 0),
        ("sip:alice@127.0.0.1", "tel:+15551234", 1.0, 3),  # not SIP: skipped
    )
    router.start_plugin(PluginRuntime(clock, lambda m, u: None, location))  # type: ignore[arg-type, return-value]
    decision = router.route(invite("sip:alice@127.0.0.1:5060;user=phone"), context())
    assert uris(decision) == [
        "sip:alice@192.0.2.2;transport=tcp",
        "sip:alice@192.0.2.1:5062",
        "sip:alice@192.0.2.3",
    ]
    assert isinstance(decision, Routes)
    assert {(t.timeout, t.ring_timeout) for t in decision.targets} == {(3.0, 15.0)}


@pytest.mark.parametrize(("fork", "parallel"), [("", False), ('fork = "parallel"\n', True)])
def test_fork_mode_reaches_the_decision(load: LoadPlugins, fork: str, parallel: bool) -> None:
    router = plugin(load, fork)
    clock = task.Clock()
    location = location_with(
        clock,
        ("sip:alice@127.0.0.1", "sip:alice@192.0.2.1", None, 0),
        ("sip:alice@127.0.0.1", "sip:alice@192.0.2.2", None, 1),
    )
    router.start_plugin(PluginRuntime(clock, lambda m, u: None, location))  # type: ignore[arg-type, return-value]
    decision = router.route(invite("sip:alice@127.0.0.1"), context())
    assert isinstance(decision, Routes) and decision.parallel is parallel
    assert len(decision.targets) == 2


def test_unregistered_known_user_gets_480_unknown_gets_404(load: LoadPlugins) -> None:
    router = plugin(load, 'users = ["carol"]\n')
    clock = task.Clock()
    location = location_with(clock, ("sip:alice@127.0.0.1", "sip:alice@192.0.2.1", None, 0))
    started(router, location)
    clock.advance(3600)  # alice's binding expires: she is known, not registered
    assert router.route(invite("sip:alice@127.0.0.1"), context()) == Reject(480)
    assert router.route(invite("sip:carol@127.0.0.1"), context()) == Reject(480)
    assert router.route(invite("sip:dave@127.0.0.1"), context()) == Reject(404)


def test_other_domains_and_uris_without_user_are_not_ours(load: LoadPlugins) -> None:
    router = plugin(load)
    started(router, location_with(task.Clock()))
    assert router.route(invite("sip:alice@example.com"), context()) is None
    assert router.route(invite("sip:127.0.0.1"), context()) is None
    assert router.route(invite("tel:+15551234"), context()) is None


def test_domains_default_to_the_registrar_and_may_be_configured(load: LoadPlugins) -> None:
    router = plugin(load, 'domains = ["Example.COM"]\n')
    started(router, location_with(task.Clock()))
    assert router.domains == frozenset({"example.com"})
    assert router.route(invite("sip:alice@example.com"), context()) == Reject(404)
    assert router.route(invite("sip:alice@127.0.0.1"), context()) is None


def test_without_a_location_service_known_users_get_480(load: LoadPlugins) -> None:
    router = plugin(load, 'domains = ["127.0.0.1"]\nusers = ["alice"]\n')
    started(router, None)
    assert router.route(invite("sip:alice@127.0.0.1"), context()) == Reject(480)
    assert router.route(invite("sip:bob@127.0.0.1"), context()) == Reject(404)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("colour = 1\n", "b2bua.toml:8: plugin[0].colour: unknown key"),
        ('domains = "x"\n', "b2bua.toml:8: plugin[0].domains: must be a list of non-empty strings"),
        ("domains = []\n", "plugin[0].domains: must not be empty"),
        ('domains = ["a b"]\n', "plugin[0].domains[0]: 'a b' is not a host name"),
        ('users = ["a b"]\n', "plugin[0].users[0]: 'a b' is not a SIP URI user part"),
        ("timeout = 0\n", "b2bua.toml:8: plugin[0].timeout: must be positive"),
        ("ring_timeout = -1\n", "plugin[0].ring_timeout: must not be negative"),
        ('timeout = "5"\n', "plugin[0].timeout: must be a number of seconds"),
        ('fork = "both"\n', "b2bua.toml:8: plugin[0].fork: must be one of serial, parallel"),
    ],
)
def test_option_errors_name_the_key(load: LoadPlugins, options: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(HEAD + options)
    assert expected in str(info.value)
