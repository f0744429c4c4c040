"""plugins/dispatcher.py: algorithms, OPTIONS probing, call failures, all-down, configuration."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger, LogLevel, formatEvent

from b2bua.config import ConfigError, load_config
from b2bua.interfaces import ICallFeature, IPluginService, IRouter
from b2bua.plugin import load_plugins
from b2bua.routing import CallInfo, Reject, Routes, Target
from b2bua.sip import URI, Request, Response, parse_uri
from b2bua.transaction.failures import FailureKind, SynthesizedResponse, TransactionFailure
from b2bua_plugins import dispatcher as dispatcher_module
from b2bua_plugins.dispatcher import Dispatcher
from tests.unit.plugins.conftest import LoadPlugins
from tests.unit.plugins.helpers import context, invite

ROOT = Path(__file__).resolve().parents[3]
HEAD = '\n[[plugin]]\nmodule = "dispatcher"\n'  # lines 5-7
A, B, C = "sip:127.0.0.1:5070", "sip:127.0.0.1:5071", "sip:127.0.0.1:5072"


def config(*, algorithm: str = "round-robin", uris: tuple[str, ...] = (A, B), **keys: Any) -> str:
    """A dispatcher with one group "pbx" (the default group) over ``uris``.

    ``keys`` go into the plugin table; ``dest`` (a dict uri -> extra keys) into
    the destination tables.
    """
    extra: dict[str, dict[str, Any]] = keys.pop("dest", {})
    lines = ['default_group = "pbx"']
    lines += [f"{name} = {toml(value)}" for name, value in keys.items()]
    lines += ["[[plugin.group]]", 'name = "pbx"', f'algorithm = "{algorithm}"']
    for uri in uris:
        lines += ["[[plugin.group.destination]]", f'uri = "{uri}"']
        lines += [f"{k} = {toml(v)}" for k, v in extra.get(uri, {}).items()]
    return HEAD + "\n".join(lines) + "\n"


def toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return str(value)


def build(load: LoadPlugins, text: str) -> Dispatcher:
    [loaded] = load(text).loaded
    assert isinstance(loaded.plugin, Dispatcher)
    return loaded.plugin


def call_to(call_id: str = "c1@x", caller: str = "sip:alice@example.com") -> Request:
    request = invite("sip:1001@127.0.0.1")
    request.headers.add("Call-ID", call_id)
    request.headers.add("From", f"<{caller}>;tag=1")
    return request


def uris(decision: object) -> list[str]:
    assert isinstance(decision, Routes), decision
    return [str(t.uri) for t in decision.targets]


def first(d: Dispatcher, request: Request | None = None) -> str:
    return uris(d.route(request or call_to(), context()))[0]


class FakeRuntime:
    """A PluginRuntime whose requests return Deferreds the test fires."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.sent: list[tuple[str, URI, Deferred[Response]]] = []

    def request(self, method: str, uri: URI) -> Deferred[Response]:
        d: Deferred[Response] = Deferred()
        self.sent.append((method, uri, d))
        return d

    def pending(self, uri: str) -> list[Deferred[Response]]:
        wanted = parse_uri(uri)
        return [d for _m, u, d in self.sent if u == wanted and not d.called]

    def answer(self, uri: str, status: int | Response = 200) -> None:
        """Answer every pending probe to ``uri``."""
        pending = self.pending(uri)
        assert pending, f"no probe pending for {uri}"
        for d in pending:
            d.callback(status if isinstance(status, Response) else Response(status))

    def answer_all(self, status: int = 200, *, but: str | None = None) -> None:
        for _m, u, d in self.sent:
            if not d.called and (but is None or u != parse_uri(but)):
                d.callback(Response(status))


def synthesized(kind: FailureKind = FailureKind.TRANSPORT) -> SynthesizedResponse:
    request = Request("OPTIONS", "sip:127.0.0.1:5071")
    for name, value in (
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
        ("From", "<sip:b2bua@127.0.0.1>;tag=1"),
        ("To", "<sip:127.0.0.1:5071>"),
        ("Call-ID", "probe@b2bua"),
        ("CSeq", "1 OPTIONS"),
    ):
        request.headers.add(name, value)
    return SynthesizedResponse(request, TransactionFailure(kind, "connection refused"))


def started(d: Dispatcher) -> FakeRuntime:
    runtime = FakeRuntime()
    d.start_plugin(runtime)
    return runtime


def cycle(runtime: FakeRuntime, interval: float, answers: dict[str, int | None]) -> None:
    """Answer the probes now pending (None: leave unanswered), then move to the next tick."""
    for uri, status in answers.items():
        if status is not None:
            runtime.answer(uri, status)
    runtime.clock.advance(interval)


def call_info(target: Target | None = None) -> CallInfo:
    return CallInfo("a@x", "b@y", context(), 0.0, target)


def target(uri: str) -> Target:
    return Target(parse_uri(uri))


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The log events of the dispatcher."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dispatcher_module,
        "_log",
        Logger(namespace="b2bua.dispatcher", observer=cast(ILogObserver, seen.append)),
    )
    return seen


# -- the plugin object -------------------------------------------------------------------------


def test_one_object_is_router_call_feature_and_service(load: LoadPlugins) -> None:
    plugins = load(config())
    [loaded] = plugins.loaded
    assert set(loaded.interfaces) == {IRouter, ICallFeature, IPluginService}
    assert plugins.routers == [loaded.plugin]
    assert plugins.features == [loaded.plugin]
    assert plugins.services == [loaded.plugin]


def test_targets_carry_the_group_settings(load: LoadPlugins) -> None:
    d = build(load, config(timeout=1.5, ring_timeout=0, transport="tcp"))
    decision = d.route(call_to(), context())
    assert isinstance(decision, Routes)
    assert decision.targets[0] == Target(
        parse_uri(A), transport="TCP", timeout=1.5, ring_timeout=0.0
    )


# -- algorithms --------------------------------------------------------------------------------


def test_round_robin_rotates_and_lists_the_others_as_failover(load: LoadPlugins) -> None:
    d = build(load, config(uris=(A, B, C)))
    decisions = [uris(d.route(call_to(), context())) for _ in range(4)]
    assert decisions == [[A, B, C], [B, C, A], [C, A, B], [A, B, C]]


def test_round_robin_spreads_evenly_over_the_live_destinations(load: LoadPlugins) -> None:
    d = build(load, config(uris=(A, B, C)))
    d.destination(B).up = False
    picks = [uris(d.route(call_to(), context())) for _ in range(100)]
    assert Counter(p[0] for p in picks) == {A: 50, C: 50}
    assert all(B not in p and len(p) == 2 for p in picks)


def test_weighted_gives_the_configured_ratio_interleaved(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="weighted", uris=(A, B), dest={A: {"weight": 3}}))
    picks = [first(d) for _ in range(400)]
    assert Counter(picks) == {A: 300, B: 100}
    # smooth: B's turns are spread out, never two in a row, A never four in a row
    text = "".join("a" if p == A else "b" for p in picks)
    assert "bb" not in text and "aaaa" not in text


def test_weighted_failover_order_is_by_weight(load: LoadPlugins) -> None:
    d = build(
        load,
        config(algorithm="weighted", uris=(A, B, C), dest={A: {"weight": 1}, B: {"weight": 5}}),
    )
    for _ in range(20):
        order = uris(d.route(call_to(), context()))
        assert sorted(order) == sorted([A, B, C])
        assert order[1:] == sorted(order[1:], key=[B, A, C].index)


def test_weight_zero_is_a_backup_used_only_for_failover(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="weighted", uris=(A, B), dest={B: {"weight": 0}}))
    assert all(uris(d.route(call_to(), context())) == [A, B] for _ in range(10))
    d.destination(A).up = False
    assert uris(d.route(call_to(), context())) == [B]


def test_hash_call_id_is_stable_and_spreads(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="hash-call-id", uris=(A, B, C)))
    orders = {f"call-{i}@x": uris(d.route(call_to(f"call-{i}@x"), context())) for i in range(900)}
    for call_id, order in list(orders.items())[:50]:
        assert uris(d.route(call_to(call_id), context())) == order  # same call, same order
        assert sorted(order) == sorted([A, B, C])
    counts = Counter(order[0] for order in orders.values())
    assert all(240 <= counts[u] <= 360 for u in (A, B, C)), counts
    # a second dispatcher (another process, a restart) hashes the same way
    again = build(load, config(algorithm="hash-call-id", uris=(A, B, C)))
    assert uris(again.route(call_to("call-7@x"), context())) == orders["call-7@x"]


def test_hash_moves_only_the_calls_of_a_destination_that_goes_down(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="hash-call-id", uris=(A, B, C)))
    before = {f"k{i}": first(d, call_to(f"k{i}")) for i in range(300)}
    d.destination(B).up = False
    after = {k: first(d, call_to(k)) for k in before}
    for key, was in before.items():
        if was != B:
            assert after[key] == was
    moved = Counter(after[k] for k, was in before.items() if was == B)
    assert set(moved) == {A, C} and min(moved.values()) > 20, moved


def test_hash_honours_weights(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="hash-call-id", uris=(A, B), dest={A: {"weight": 3}}))
    counts = Counter(first(d, call_to(f"w{i}")) for i in range(2000))
    assert 0.70 <= counts[A] / 2000 <= 0.80, counts


def test_hash_caller_keeps_a_caller_on_one_destination(load: LoadPlugins) -> None:
    d = build(load, config(algorithm="hash-caller", uris=(A, B, C)))
    picks = {first(d, call_to(f"c{i}", "sip:alice@Example.com")) for i in range(30)}
    assert len(picks) == 1
    callers = Counter(first(d, call_to("same", f"sip:user{i}@example.com")) for i in range(300))
    assert len(callers) == 3


def test_priority_prefers_the_lowest_number_and_rotates_within_it(load: LoadPlugins) -> None:
    d = build(
        load,
        config(
            algorithm="priority",
            uris=(A, B, C),
            dest={A: {"priority": 10}, B: {"priority": 0}, C: {"priority": 0}},
        ),
    )
    picks = [uris(d.route(call_to(), context())) for _ in range(4)]
    assert picks == [[B, C, A], [C, B, A], [B, C, A], [C, B, A]]
    d.destination(B).up = False
    d.destination(C).up = False
    assert uris(d.route(call_to(), context())) == [A]


def test_max_targets_limits_the_failover_list(load: LoadPlugins) -> None:
    d = build(load, config(uris=(A, B, C), max_targets=2))
    assert uris(d.route(call_to(), context())) == [A, B]
    assert uris(d.route(call_to(), context())) == [B, C]


# -- rules -------------------------------------------------------------------------------------


RULES = (
    HEAD
    + """default_group = "main"
[[plugin.group]]
name = "main"
[[plugin.group.destination]]
uri = "sip:10.0.0.1"
[[plugin.group]]
name = "intl"
[[plugin.group.destination]]
uri = "sip:10.0.0.2"
[[plugin.group]]
name = "office"
[[plugin.group.destination]]
uri = "sip:10.0.0.3"
[[plugin.rule]]
user_prefix = "00"
group = "intl"
[[plugin.rule]]
source = "192.168.0.0/16"
domain = "Office.example.com"
group = "office"
"""
)


def test_rules_pick_the_group_and_the_default_group_takes_the_rest(load: LoadPlugins) -> None:
    d = build(load, RULES)
    assert uris(d.route(invite("sip:0049301@x"), context())) == ["sip:10.0.0.2"]
    office = context("192.168.1.5")
    assert uris(d.route(invite("sip:1@office.example.com."), office)) == ["sip:10.0.0.3"]
    assert uris(d.route(invite("sip:1@office.example.com"), context())) == ["sip:10.0.0.1"]
    assert uris(d.route(invite("sip:1@x"), office)) == ["sip:10.0.0.1"]


def test_without_a_default_group_unmatched_calls_get_no_opinion(load: LoadPlugins) -> None:
    d = build(load, RULES.replace('default_group = "main"\n', ""))
    assert d.route(invite("sip:1@x"), context()) is None
    assert d.route(invite("sip:001@x"), context()) is not None


# -- probing -----------------------------------------------------------------------------------


def test_probes_go_out_at_start_and_every_interval(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=2))
    runtime = started(d)
    assert [(m, str(u)) for m, u, _ in runtime.sent] == [("OPTIONS", A), ("OPTIONS", B)]
    runtime.answer_all()
    runtime.clock.advance(2)
    assert len(runtime.sent) == 4
    runtime.answer_all()
    assert d.state()["pbx"][0]["up"] and d.state()["pbx"][0]["probes"] == 2


def test_probe_uri_carries_a_forced_transport(load: LoadPlugins) -> None:
    d = build(load, config(transport="tcp", uris=(A,)))
    runtime = started(d)
    assert str(runtime.sent[0][1]) == A + ";transport=tcp"


def test_down_after_failure_threshold_up_after_recovery_threshold(
    load: LoadPlugins, events: list[dict[str, Any]]
) -> None:
    d = build(load, config(probe_interval=1, failure_threshold=3, recovery_threshold=2))
    runtime = started(d)
    b = d.destination(B)
    for _ in range(2):
        cycle(runtime, 1, {A: 200, B: 503})
    assert b.up and b.failures == 2
    cycle(runtime, 1, {A: 200, B: 503})
    assert not b.up and b.failures == 3
    assert uris(d.route(call_to(), context())) == [A]
    [down] = [e for e in events if e.get("up") is False]
    assert down["log_level"] is LogLevel.warn
    assert re.search(r"pbx: sip:127.0.0.1:5071 is DOWN: 3 failures", _text(down))
    cycle(runtime, 1, {A: 200, B: 200})
    assert not b.up and b.successes == 1
    cycle(runtime, 1, {A: 200, B: 200})
    assert b.up
    [up] = [e for e in events if e.get("up") is True]
    assert up["log_level"] is LogLevel.info and "UP again" in _text(up)
    assert sorted(uris(d.route(call_to(), context()))) == [A, B]


def test_alternating_results_never_flap(load: LoadPlugins, events: list[dict[str, Any]]) -> None:
    d = build(load, config(probe_interval=1))  # thresholds 2 and 2
    runtime = started(d)
    for i in range(20):
        cycle(runtime, 1, {A: 200, B: 200 if i % 2 else 503})
    assert d.destination(B).up
    assert not [e for e in events if "up" in e]
    # once down, alternating results keep it down
    for _ in range(2):
        cycle(runtime, 1, {A: 200, B: 503})
    assert not d.destination(B).up
    for i in range(20):
        cycle(runtime, 1, {A: 200, B: 200 if i % 2 else 503})
    assert not d.destination(B).up
    assert len([e for e in events if "up" in e]) == 1


def test_a_probe_without_answer_fails_at_its_timeout(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=2, probe_timeout=0.5, failure_threshold=1))
    runtime = started(d)
    runtime.answer(A)
    [pending] = runtime.pending(B)
    runtime.clock.advance(0.4)
    assert d.destination(B).up
    runtime.clock.advance(0.1)
    b = d.destination(B)
    assert not b.up and "no final response within 0.5 s" in b.last_result
    assert pending.called  # abandoned (cancelled), so a late answer is not counted
    assert b.failures == 1 and b.probe_failures == 1


def test_the_timeout_defaults_to_the_interval(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=2))
    runtime = started(d)
    runtime.answer(A)
    runtime.clock.advance(2)  # B's first probe expires as the second goes out
    assert d.destination(B).failures == 1 and d.destination(B).up
    runtime.answer(A)
    runtime.clock.advance(2)
    assert not d.destination(B).up
    assert d.destination(A).up and d.destination(A).failures == 0
    assert len(runtime.pending(B)) == 1  # never more than one probe in flight


def test_probe_errors_and_synthesized_responses_are_failures(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1, failure_threshold=1, accept_codes=["any"]))
    runtime = started(d)
    runtime.answer(A, synthesized())  # "any" means any *received* response
    assert not d.destination(A).up
    assert "connection refused" in d.destination(A).last_result
    [pending] = runtime.pending(B)
    pending.errback(RuntimeError("boom"))
    assert not d.destination(B).up and "boom" in d.destination(B).last_result


@pytest.mark.parametrize(
    ("accept", "status", "alive"),
    [
        (None, 200, True),
        (None, 202, True),
        (None, 404, False),
        (None, 503, False),
        (["2xx", 404], 404, True),
        (["2xx", "405"], 405, True),
        (["200"], 202, False),
        (["any"], 486, True),
        (["5XX"], 503, True),
    ],
)
def test_accept_codes(
    load: LoadPlugins, accept: list[str | int] | None, status: int, alive: bool
) -> None:
    keys: dict[str, Any] = {"probe_interval": 1, "failure_threshold": 1}
    if accept is not None:
        keys["accept_codes"] = accept
    d = build(load, config(uris=(A,), **keys))
    runtime = started(d)
    runtime.answer(A, status)
    assert d.destination(A).up is alive
    assert d.destination(A).last_result.startswith(f"OPTIONS: {status} ")


def test_stop_cancels_timers_and_probes(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1, probe_timeout=0.5))
    runtime = started(d)
    pending = runtime.pending(A) + runtime.pending(B)
    assert runtime.clock.getDelayedCalls()
    d.stop_plugin()
    assert runtime.clock.getDelayedCalls() == []
    assert all(p.called for p in pending)
    failures: list[Any] = []
    pending[0].addErrback(failures.append)
    assert not failures  # the cancellation was consumed
    runtime.clock.advance(10)
    assert len(runtime.sent) == 2
    assert d.destination(A).up and d.destination(B).up  # nothing counted after stop


def test_a_late_answer_after_stop_is_ignored(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1, uris=(A,)))
    runtime = FakeRuntime()
    late: Deferred[Response] = Deferred(lambda d: None)  # cannot really be cancelled
    runtime.request = lambda method, uri: late  # type: ignore[method-assign]
    d.start_plugin(runtime)
    d.stop_plugin()
    assert late.called  # cancelled: errback with CancelledError, consumed
    failures: list[Any] = []
    late.addErrback(failures.append)
    assert not failures


def test_a_probe_waiting_on_an_inner_deferred_is_cancelled_at_its_timeout(
    load: LoadPlugins,
) -> None:
    """As the server's requester does: resolve first, then wait for the transaction."""
    d = build(load, config(probe_interval=1, probe_timeout=0.5, uris=(A,)))
    runtime = FakeRuntime()
    inner: Deferred[Response] = Deferred()
    resolved: Deferred[None] = Deferred()
    resolved.callback(None)
    outer = resolved.addCallback(lambda _: inner)
    runtime.request = lambda method, uri: outer  # type: ignore[method-assign]
    d.start_plugin(runtime)
    runtime.clock.advance(0.5)
    assert inner.called  # cancelled
    assert d.destination(A).failures == 1
    d.stop_plugin()


def test_probing_off_never_marks_down(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=0))
    runtime = started(d)
    assert runtime.sent == [] and runtime.clock.getDelayedCalls() == []
    for _ in range(5):
        d.target_failed(call_info(), target(B), synthesized())
    assert d.destination(B).up


def test_groups_may_override_the_plugin_settings(load: LoadPlugins) -> None:
    text = (
        HEAD
        + """default_group = "fast"
probe_interval = 10
[[plugin.group]]
name = "fast"
probe_interval = 1
[[plugin.group.destination]]
uri = "sip:10.0.0.1"
[[plugin.group]]
name = "slow"
[[plugin.group.destination]]
uri = "sip:10.0.0.2"
"""
    )
    d = build(load, text)
    runtime = started(d)
    runtime.answer_all()
    runtime.clock.advance(1)
    assert [str(u) for _m, u, _d in runtime.sent] == [
        "sip:10.0.0.1",
        "sip:10.0.0.2",
        "sip:10.0.0.1",
    ]
    assert d.groups["slow"].settings.probe_interval == 10.0


# -- call failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "counts"),
    [
        (lambda: synthesized(FailureKind.TRANSPORT), True),
        (lambda: synthesized(FailureKind.TIMEOUT), True),
        (lambda: Response(408), True),  # the bridge's own "no answer" timeout
        (lambda: Response(503), False),  # the PBX answered: it is alive
        (lambda: Response(486), False),
        (lambda: Response(500), False),
    ],
)
def test_target_failed_counts_timeouts_and_transport_errors(
    load: LoadPlugins, response: Callable[[], Response], counts: bool
) -> None:
    d = build(load, config(probe_interval=1))
    started(d)
    d.target_failed(call_info(), target(B), response())
    b = d.destination(B)
    assert (b.failures, b.call_failures) == ((1, 1) if counts else (0, 0))
    d.target_failed(call_info(), target(B), response())
    assert b.up is not counts
    assert d.destination(A).failures == 0


def test_call_failures_and_probes_add_up(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1))
    runtime = started(d)
    runtime.answer(A)
    runtime.answer(B, 500)  # one failed probe ...
    d.target_failed(call_info(), target(B), Response(408))  # ... and one failed call
    assert not d.destination(B).up
    assert "call failed: 408 Request Timeout" in d.destination(B).last_result


def test_call_failure_codes_are_configurable(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1, failure_threshold=1, call_failure_codes=[503]))
    started(d)
    d.target_failed(call_info(), target(A), Response(408))
    assert d.destination(A).up
    d.target_failed(call_info(), target(A), Response(503))
    assert not d.destination(A).up


def test_target_failed_for_a_foreign_target_is_ignored(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1, failure_threshold=1))
    started(d)
    d.target_failed(call_info(), target("sip:192.0.2.9"), synthesized())
    assert all(x["up"] for x in d.state()["pbx"])


def test_an_answered_call_clears_the_failure_count(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1))
    started(d)
    d.target_failed(call_info(), target(B), Response(408))
    assert d.destination(B).failures == 1
    assert d.answered(call_info(target(B)), Response(200)) is None
    assert d.destination(B).failures == 0
    d.target_failed(call_info(), target(B), Response(408))
    assert d.destination(B).up


# -- every destination down -------------------------------------------------------------------


def all_down(d: Dispatcher) -> None:
    for x in d.groups["pbx"].destinations:
        x.up = False


def test_all_down_rejects_with_503(load: LoadPlugins) -> None:
    d = build(load, config())
    all_down(d)
    assert d.route(call_to(), context()) == Reject(503)


def test_all_down_status_and_retry_after_are_configurable(load: LoadPlugins) -> None:
    d = build(load, config(reject_status=480, retry_after=30))
    all_down(d)
    assert d.route(call_to(), context()) == Reject(480, None, (("Retry-After", "30"),))


def test_all_down_pass_asks_the_next_router(load: LoadPlugins) -> None:
    d = build(load, config(when_all_down="pass"))
    all_down(d)
    assert d.route(call_to(), context()) is None


def test_all_down_try_tries_them_anyway(load: LoadPlugins) -> None:
    d = build(load, config(when_all_down="try"))
    all_down(d)
    assert uris(d.route(call_to(), context())) == [A, B]
    assert uris(d.route(call_to(), context())) == [B, A]


def test_every_destination_down_is_logged(load: LoadPlugins, events: list[dict[str, Any]]) -> None:
    d = build(load, config(probe_interval=1, failure_threshold=1))
    runtime = started(d)
    runtime.answer_all(503)
    texts = [_text(e) for e in events]
    assert any("every destination is down (reject)" in t for t in texts), texts


def test_state_snapshot(load: LoadPlugins) -> None:
    d = build(load, config(probe_interval=1))
    runtime = started(d)
    runtime.clock.advance(0.25)
    runtime.answer(A)
    runtime.answer(B, 404)
    [a, b] = d.state()["pbx"]
    assert a["uri"] == A and a["up"] and a["last_result"] == "OPTIONS: 200 OK"
    assert a["last_checked"] == 0.25 and a["since"] is None
    assert b["failures"] == 1 and b["probe_failures"] == 1 and b["probes"] == 1


# -- configuration -----------------------------------------------------------------------------


def test_defaults(load: LoadPlugins) -> None:
    s = build(load, config()).groups["pbx"].settings
    assert (s.probe_interval, s.deadline, s.failure_threshold, s.recovery_threshold) == (
        5.0,
        5.0,
        2,
        2,
    )
    assert 200 in s.accept_codes and 299 in s.accept_codes and 404 not in s.accept_codes
    assert 408 in s.call_failure_codes and 503 not in s.call_failure_codes
    assert (s.when_all_down, s.reject_status, s.retry_after, s.max_targets) == (
        "reject",
        503,
        0,
        None,
    )


GROUP = '[[plugin.group]]\nname = "pbx"\n[[plugin.group.destination]]\nuri = "sip:10.0.0.1"\n'


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('default_group = "pbx"\n', "plugin[0]", "at least one group"),
        ("group = 1\n", "plugin[0].group", "non-empty array"),
        ("frobnicate = 1\n" + GROUP, "plugin[0].frobnicate", "unknown key"),
        (GROUP, "plugin[0]", "needs 'default_group' or [[plugin.rule]]"),
        ('default_group = "x"\n' + GROUP, "plugin[0].default_group", "no group named 'x'"),
        (
            '[[plugin.group]]\nalgorithm = "round-robin"\n',
            "plugin[0].group[0]",
            "needs 'name'",
        ),
        (
            '[[plugin.group]]\nname = "pbx"\n',
            "plugin[0].group[0]",
            "at least one destination",
        ),
        (
            GROUP + '[[plugin.group]]\nname = "pbx"\n[[plugin.group.destination]]\nuri = "sip:b"\n',
            "plugin[0].group[1].name",
            "exists already",
        ),
        (
            GROUP.replace('name = "pbx"', 'name = "pbx"\nalgorithm = "random"'),
            "plugin[0].group[0].algorithm",
            "must be one of round-robin, weighted",
        ),
        (
            GROUP.replace("sip:10.0.0.1", "http://x"),
            "plugin[0].group[0].destination[0].uri",
            "not a sip: or sips: URI",
        ),
        (
            GROUP.replace("sip:10.0.0.1", "sip:"),
            "plugin[0].group[0].destination[0].uri",
            "not a valid URI",
        ),
        (
            GROUP + '[[plugin.group.destination]]\nuri = "sip:10.0.0.1"\n',
            "plugin[0].group[0].destination[1].uri",
            "in this group already",
        ),
        (
            GROUP + "weight = 2\n",
            "plugin[0].group[0].destination[0].weight",
            "only algorithms weighted, hash-call-id, hash-caller use weights",
        ),
        (
            GROUP.replace('name = "pbx"', 'name = "pbx"\nalgorithm = "weighted"') + "weight = -1\n",
            "plugin[0].group[0].destination[0].weight",
            "must not be negative",
        ),
        (
            GROUP.replace('name = "pbx"', 'name = "pbx"\nalgorithm = "weighted"') + "weight = 0\n",
            "plugin[0].group[0]",
            "weight above 0",
        ),
        (
            GROUP + "priority = 1\n",
            "plugin[0].group[0].destination[0].priority",
            'only algorithm "priority"',
        ),
        (GROUP + "port = 1\n", "plugin[0].group[0].destination[0].port", "unknown key"),
        ("probe_interval = -1\n" + GROUP, "plugin[0].probe_interval", "must not be negative"),
        ('probe_interval = "2s"\n' + GROUP, "plugin[0].probe_interval", "must be a number"),
        (
            "probe_interval = 1\nprobe_timeout = 2\n" + GROUP,
            "plugin[0].probe_timeout",
            "must not exceed probe_interval",
        ),
        (
            "probe_timeout = 2\n"
            + GROUP.replace('name = "pbx"', 'name = "pbx"\nprobe_interval = 1'),
            "plugin[0].group[0].probe_interval",
            "must not exceed probe_interval",
        ),
        ("failure_threshold = 0\n" + GROUP, "plugin[0].failure_threshold", "at least 1"),
        ("recovery_threshold = 1.5\n" + GROUP, "plugin[0].recovery_threshold", "an integer"),
        ("max_targets = 0\n" + GROUP, "plugin[0].max_targets", "at least 1"),
        ("accept_codes = []\n" + GROUP, "plugin[0].accept_codes", "non-empty list"),
        ('accept_codes = ["2xx", 100]\n' + GROUP, "plugin[0].accept_codes[1]", "status code"),
        ('accept_codes = ["7xx"]\n' + GROUP, "plugin[0].accept_codes[0]", "status code"),
        ('call_failure_codes = "408"\n' + GROUP, "plugin[0].call_failure_codes", "list"),
        ('when_all_down = "drop"\n' + GROUP, "plugin[0].when_all_down", "reject, pass, try"),
        ("reject_status = 302\n" + GROUP, "plugin[0].reject_status", "400 to 699"),
        ("retry_after = -5\n" + GROUP, "plugin[0].retry_after", "must not be negative"),
        ('transport = "sctp"\n' + GROUP, "plugin[0].transport", "udp, tcp, tls"),
        ("timeout = 0\n" + GROUP, "plugin[0].timeout", "positive number"),
        (
            GROUP.replace('name = "pbx"', 'name = "pbx"\nring_timeout = -1'),
            "plugin[0].group[0].ring_timeout",
            "must not be negative",
        ),
        (GROUP + '[[plugin.rule]]\nuser_prefix = "9"\n', "plugin[0].rule[0]", "needs 'group'"),
        (GROUP + '[[plugin.rule]]\ngroup = "x"\n', "plugin[0].rule[0].group", "no group named"),
        (
            GROUP + '[[plugin.rule]]\ngroup = "pbx"\nsource = "10.0.0.1/8"\n',
            "plugin[0].rule[0].source",
            "host bits set",
        ),
        (
            GROUP + '[[plugin.rule]]\ngroup = "pbx"\ndomain = "a b"\n',
            "plugin[0].rule[0].domain",
            "not a host name",
        ),
        (
            GROUP + '[[plugin.rule]]\ngroup = "pbx"\nsource_port = 0\n',
            "plugin[0].rule[0].source_port",
            "between 1 and 65535",
        ),
        (
            GROUP + '[[plugin.rule]]\ngroup = "pbx"\ntargets = ["sip:x"]\n',
            "plugin[0].rule[0].targets",
            "unknown key",
        ),
    ],
)
def test_configuration_errors_name_the_key(
    load: LoadPlugins, text: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(HEAD + text)
    assert info.value.key == key, str(info.value)
    assert reason in info.value.reason, str(info.value)
    assert info.value.line is not None


def test_an_error_names_the_line(load: LoadPlugins) -> None:
    with pytest.raises(ConfigError, match=r"b2bua\.toml:11: plugin\[0\]\.group\[0\]\.algorithm"):
        load(HEAD + 'default_group = "pbx"\n[[plugin.group]]\nname = "pbx"\nalgorithm = "x"\n')


# -- the example -------------------------------------------------------------------------------


def test_the_example_balances_two_pbxs_round_robin_with_probes_every_2_s() -> None:
    cfg = load_config(str(ROOT / "etc" / "examples" / "dispatcher.toml"))
    assert {(lc.transport, lc.host, lc.port) for lc in cfg.listen} == {
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.1", 5060),
    }
    [loaded] = load_plugins(cfg).loaded
    d = loaded.plugin
    assert isinstance(d, Dispatcher)
    [group] = d.groups.values()
    assert group.algorithm == "round-robin" and group.settings.probe_interval == 2.0
    firsts = [first(d) for _ in range(4)]
    assert firsts == [A, B, A, B]
    runtime = started(d)
    assert sorted(str(u) for _m, u, _d in runtime.sent) == [A, B]
    d.stop_plugin()


def _text(event: dict[str, Any]) -> str:
    return formatEvent(event)
