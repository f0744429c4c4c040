"""Every configuration in etc/ loads with its plugins, and the examples route as they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.config import load_config
from b2bua.plugin import Plugins, load_plugins
from b2bua.routing import Decision, Reject, Routes, Target
from b2bua.sip import parse_uri
from tests.unit.plugins.helpers import context, invite

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "etc").rglob("*.toml"))


def test_the_examples_exist() -> None:
    names = {p.relative_to(ROOT / "etc").as_posix() for p in EXAMPLES}
    assert {"b2bua.toml", "examples/pbx-front.toml", "examples/trunk-and-pbx.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_config_in_etc_loads_with_its_plugins(path: Path) -> None:
    load_plugins(load_config(str(path)))


def plugins(name: str) -> Plugins:
    return load_plugins(load_config(str(ROOT / "etc" / "examples" / name)))


def decide(p: Plugins, uri: str, host: str, port: int, transport: str = "UDP") -> Decision:
    results: list[Decision] = []
    p.route(invite(uri), context(host, port, transport)).addCallback(results.append)
    [decision] = results
    return decision


def test_pbx_front_listens_on_5060_and_sends_everything_to_the_pbx() -> None:
    config = load_config(str(ROOT / "etc" / "examples" / "pbx-front.toml"))
    assert {(lc.transport, lc.host, lc.port) for lc in config.listen} == {
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.1", 5060),
    }
    p = load_plugins(config)
    assert decide(p, "sip:1001@127.0.0.1", "127.0.0.1", 40000) == Routes(
        (Target(parse_uri("sip:1001@127.0.0.1:5070")),)
    )
    assert decide(p, "sip:alice@example.com", "192.0.2.1", 5060, "TCP") == Routes(
        (Target(parse_uri("sip:alice@127.0.0.1:5070")),)
    )


def test_trunk_and_pbx() -> None:
    p = plugins("trunk-and-pbx.toml")
    from_trunk = decide(p, "sip:+4930123456@127.0.0.1", "127.0.0.1", 5080)
    assert from_trunk == Routes((Target(parse_uri("sip:+4930123456@127.0.0.1:5070")),))
    from_pbx = decide(p, "sip:0301234@127.0.0.1", "127.0.0.1", 5070)
    assert isinstance(from_pbx, Routes)
    [target] = from_pbx.targets
    assert str(target.uri) == "sip:0301234@127.0.0.1:5080"
    assert target.transport == "UDP" and target.timeout == 10.0
    assert decide(p, "sip:1001@127.0.0.1", "127.0.0.1", 5999) == Reject(403, "Forbidden")
    assert decide(p, "sip:1001@127.0.0.1", "192.0.2.1", 5080) == Reject(403, "Forbidden")
