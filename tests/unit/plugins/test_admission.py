"""plugins/admission.py: concurrent calls and calls per second, released exactly once."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from b2bua.config import ConfigError, load_config
from b2bua.features import CallFeature
from b2bua.interfaces import ICallFeature
from b2bua.plugin import load_plugins
from b2bua.routing import CallInfo, Reject, RequestContext, Routes, Target
from b2bua.sip import Address, Request
from b2bua_plugins.access import Access
from b2bua_plugins.admission import Admission, Bucket
from tests.unit.bridge.harness import CALLEE, CALLEE2, Callee, Caller, Harness, routes
from tests.unit.plugins.conftest import LoadPlugins

HEAD = '\n[[plugin]]\nmodule = "admission"\n'  # lines 5-7
ROOT = Path(__file__).resolve().parents[3]
BUSY = Reject(503, None, (("Retry-After", "5"),))
_IDS = itertools.count()


def feature(load: LoadPlugins, text: str) -> Admission:
    [loaded] = load(HEAD + text).loaded
    assert isinstance(loaded.plugin, Admission)
    return loaded.plugin


def info(source: str = "192.0.2.1", at: float = 0.0) -> CallInfo:
    n = next(_IDS)
    context = RequestContext(Address("UDP", source, 5060), Address("UDP", "127.0.0.1", 5060))
    return CallInfo(f"a{n}@x", f"b{n}@y", context, at)


INVITE = Request("INVITE", "sip:1001@127.0.0.1")


def start(a: Admission, call: CallInfo) -> Reject | None:
    return a.call_started(call, INVITE)


def route(a: Admission, call: CallInfo, *uris: str) -> Reject | None:
    return a.call_routed(call, Routes(tuple(Target.of(u) for u in uris)))


def end(a: Admission, *calls: CallInfo) -> None:
    for call in calls:
        a.call_ended(call, "over")


# -- global concurrency ----------------------------------------------------------------


def test_it_is_a_call_feature(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 1\n")
    assert verifyObject(ICallFeature, a)


def test_max_calls_refuses_exactly_the_excess_with_retry_after(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 5\n")
    calls = [info() for _ in range(10)]
    results = [start(a, c) for c in calls]
    assert results[:5] == [None] * 5
    assert results[5:] == [BUSY] * 5
    assert a.calls == 5 and a.refused == {"global": 5}
    for refused in calls[5:]:  # the bridge ends refused calls too: nothing to release
        a.call_ended(refused, "rejected 503")
    assert a.calls == 5
    a.call_ended(calls[0], "over")
    assert a.calls == 4
    assert start(a, info()) is None
    assert start(a, info()) == BUSY


def test_call_ended_twice_releases_once(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 2\n")
    first, second = info(), info()
    start(a, first)
    start(a, second)
    end(a, first, first, first)
    assert a.calls == 1


def test_max_calls_zero_refuses_everything(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 0\n")
    assert start(a, info()) == BUSY


def test_status_reason_and_retry_after(load: LoadPlugins) -> None:
    a = feature(
        load,
        'status = 480\nreason = "Try Later"\nretry_after = 30\n[plugin.global]\nmax_calls = 0\n',
    )
    assert start(a, info()) == Reject(480, "Try Later", (("Retry-After", "30"),))
    a = feature(load, "retry_after = 0\n[plugin.global]\nmax_calls = 0\n")
    assert start(a, info()) == Reject(503)


def test_a_limit_table_overrides_the_refusal_key_by_key(load: LoadPlugins) -> None:
    a = feature(
        load,
        'reason = "Busy"\nretry_after = 9\n'
        "[plugin.global]\nmax_calls = 1\nstatus = 480\n"
        "[plugin.per_source]\nmax_calls = 0\nretry_after = 0\n",
    )
    assert start(a, info()) == Reject(503, "Busy")  # per_source, first refused
    a = feature(load, 'reason = "Busy"\n[plugin.global]\nmax_calls = 0\nstatus = 480\n')
    assert start(a, info()) == Reject(480, "Busy", (("Retry-After", "5"),))


# -- calls per second ----------------------------------------------------------------


def test_max_cps_is_a_token_bucket_on_the_call_start_time(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_cps = 2\n")  # burst 2
    t = 1000.0
    assert [start(a, info(at=t)) for _ in range(3)] == [None, None, BUSY]
    assert start(a, info(at=t + 0.4)) == BUSY  # 0.8 tokens
    assert start(a, info(at=t + 0.5)) is None  # 1 token
    assert start(a, info(at=t + 0.5)) == BUSY
    assert [start(a, info(at=t + 10)) for _ in range(3)] == [None, None, BUSY]  # never > burst


def test_burst_and_fractional_rates(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_cps = 0.5\nburst = 3\n")
    assert [start(a, info(at=0)) for _ in range(4)] == [None, None, None, BUSY]
    assert start(a, info(at=1.9)) == BUSY
    assert start(a, info(at=2.0)) is None


def test_cps_does_not_count_ends(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_cps = 1\n")
    first = info(at=0)
    assert start(a, first) is None
    end(a, first)
    assert start(a, info(at=0.5)) == BUSY


def test_calls_routed_out_of_order_and_a_clock_stepped_back() -> None:
    bucket = Bucket(rate=1.0, burst=5.0, tokens=0.0, last=100.0)
    bucket.refill(99.0)  # a call that started earlier, routed later: nothing added
    assert (bucket.tokens, bucket.last) == (0.0, 100.0)
    bucket.refill(102.0)
    assert bucket.tokens == 2.0
    bucket.refill(10.0)  # the wall clock went back 92 s: start counting from there
    assert bucket.last == 10.0 and bucket.tokens == 2.0
    bucket.refill(11.0)
    assert bucket.tokens == 3.0


# -- per source ----------------------------------------------------------------------


def test_per_source_counts_each_address_on_its_own(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.per_source]\nmax_calls = 2\n")
    one = [info("10.0.0.1") for _ in range(3)]
    two = [info("10.0.0.2") for _ in range(2)]
    assert [start(a, c) for c in one] == [None, None, BUSY]
    assert [start(a, c) for c in two] == [None, None]
    assert a.refused == {"per_source": 1}
    assert a.source_calls("10.0.0.1") == 2
    end(a, *one)
    assert a.source_calls("10.0.0.1") == 0
    assert a._sources.slots.keys() == {"10.0.0.2"}  # no bucket, no call: forgotten at once


def test_per_source_addresses_compare_canonically(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.per_source]\nmax_calls = 1\n")
    assert start(a, info("2001:db8::1")) is None
    assert start(a, info("2001:DB8:0::1")) == BUSY


def test_a_refused_call_takes_nothing_anywhere(load: LoadPlugins) -> None:
    a = feature(
        load,
        "[plugin.global]\nmax_calls = 10\nmax_cps = 3\n[plugin.per_source]\nmax_calls = 1\n",
    )
    assert start(a, info("10.0.0.1")) is None
    assert start(a, info("10.0.0.1")) == BUSY  # per source: global slot and token kept
    assert a.calls == 1
    assert start(a, info("10.0.0.2")) is None
    assert start(a, info("10.0.0.3")) is None  # the third global token is still there
    assert start(a, info("10.0.0.4")) == BUSY  # now the bucket is empty
    assert a.refused == {"per_source": 1, "global": 1}


def test_idle_sources_are_swept_so_memory_stays_bounded(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.per_source]\nmax_cps = 1\n")
    for n in range(5000):
        call = info(f"10.0.{n // 256}.{n % 256}", at=float(n))
        assert start(a, call) is None
        end(a, call)
    assert len(a._sources.slots) <= 1025


def test_busy_sources_are_kept_by_a_sweep(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.per_source]\nmax_calls = 1\nmax_cps = 1\n")
    busy = info("10.9.9.9", at=0.0)
    assert start(a, busy) is None
    for n in range(3000):
        call = info(f"10.0.{n // 256}.{n % 256}", at=float(n))
        start(a, call)
        end(a, call)
    assert start(a, info("10.9.9.9", at=3000.0)) == BUSY  # still counted
    end(a, busy)
    assert start(a, info("10.9.9.9", at=3000.0)) is None


# -- destinations --------------------------------------------------------------------

GROUPS = """
[[plugin.group]]
name = "pbx"
targets = ["127.0.0.1:5070", "pbx.example.com", "sip:10.0.0.5;transport=tls"]
max_calls = 2

[plugin.per_destination]
max_calls = 1
"""


def test_groups_share_one_limit_across_their_targets(load: LoadPlugins) -> None:
    a = feature(load, GROUPS)
    calls = [info() for _ in range(3)]
    assert route(a, calls[0], "sip:1@127.0.0.1:5070") is None
    assert route(a, calls[1], "sip:2@PBX.example.com.:5999", "sip:127.0.0.1:9") is None
    assert route(a, calls[2], "sip:10.0.0.5:5061") == BUSY
    assert a.destination_calls("pbx") == 2 and a.refused == {"pbx": 1}
    end(a, *calls)
    assert a.destination_calls("pbx") == 0


def test_group_entries_match_ports_as_written(load: LoadPlugins) -> None:
    a = feature(load, GROUPS)
    # 127.0.0.1:5070 only; the sips/TLS URI without a port means 5061
    assert route(a, info(), "sip:127.0.0.1") is None  # per_destination 127.0.0.1:5060
    assert a.destination_calls("127.0.0.1:5060") == 1
    assert route(a, info(), "sip:10.0.0.5;transport=tls") is None
    assert route(a, info(), "sips:10.0.0.5") is None
    assert route(a, info(), "sip:10.0.0.5") is None  # 10.0.0.5:5060: not the group
    assert a.destination_calls("pbx") == 2
    assert a.destination_calls("10.0.0.5:5060") == 1


def test_per_destination_counts_each_first_target(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.per_destination]\nmax_calls = 1\n")
    one, two, three = info(), info(), info()
    assert route(a, one, "sip:a@198.51.100.1:5070", "sip:198.51.100.2") is None
    assert route(a, two, "sip:b@198.51.100.1:5070") == BUSY
    assert route(a, three, "sip:198.51.100.2", "sip:198.51.100.1:5070") is None
    assert route(a, info(), "sip:[2001:db8::1]:5070") is None
    assert a.destination_calls("[2001:db8::1]:5070") == 1
    end(a, one)
    assert route(a, two, "sip:b@198.51.100.1:5070") is None


def test_global_and_destination_together_release_both(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 3\n" + GROUPS)
    call = info()
    assert start(a, call) is None
    assert route(a, call, "sip:127.0.0.1:5070") is None
    assert (a.calls, a.destination_calls("pbx")) == (1, 1)
    refused_later = info()
    assert start(a, refused_later) is None
    assert route(a, refused_later, "sip:198.51.100.7") is None
    assert route(a, info(), "sip:198.51.100.7") == BUSY  # (a call not started here)
    end(a, call, refused_later)
    assert (a.calls, a.destination_calls("pbx")) == (0, 0)
    assert a.destination_calls("198.51.100.7:5060") == 0


# -- in the bridge: every accepted call released exactly once ---------------------------


class RefuseSecond(CallFeature):
    """A feature after admission that refuses every second call in call_started."""

    def __init__(self) -> None:
        self.n = 0

    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        self.n += 1
        return Reject(486) if self.n % 2 == 0 else None


def test_with_the_bridge_every_kind_of_call_ending_releases_once(load: LoadPlugins) -> None:
    a = feature(
        load,
        "[plugin.global]\nmax_calls = 2\n[plugin.per_source]\nmax_calls = 2\n"
        '[[plugin.group]]\nname = "b"\ntargets = ["127.0.0.2"]\nmax_calls = 1\n',
    )
    h = Harness(features=[a])
    callee = Callee(h, CALLEE)

    def caller(n: int) -> Caller:
        return Caller(h, call_id=f"call{n}@alice", tag=f"alice{n}")

    # answered, then a third call over the global limit, then BYE: all released
    first = caller(1)
    first.send_invite()
    callee.answer(200)
    first.learn()
    first.ack(first.responses(200, "INVITE")[-1])
    second = caller(2)
    second.send_invite()  # global 2/2, but the group "b" is full: 503 in call_routed
    assert second.statuses("INVITE")[-1] == 503
    assert second.responses(503)[-1].headers.get("Retry-After") == "5"
    assert (a.calls, a.destination_calls("b")) == (1, 1)
    first.request("BYE")
    assert (a.calls, a.destination_calls("b"), a.source_calls("127.0.0.1")) == (0, 0, 0)

    # cancelled while ringing
    third = caller(3)
    third.send_invite()
    callee.answer(180, request=callee.invite)
    assert (a.calls, a.destination_calls("b")) == (1, 1)
    third.cancel()
    callee.answer(487, request=callee.invite)
    assert (a.calls, a.destination_calls("b")) == (0, 0)

    # failed: busy
    fourth = caller(4)
    fourth.send_invite()
    callee.answer(486, request=callee.invite)
    assert (a.calls, a.destination_calls("b")) == (0, 0)

    # refused by the router
    h.decision = Reject(404)
    fifth = caller(5)
    fifth.send_invite()
    assert fifth.statuses("INVITE")[-1] == 404
    assert a.calls == 0
    h.advance(40)
    h.assert_idle()


def test_with_the_bridge_a_later_feature_refusing_releases_the_slot(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 2\n")
    later = RefuseSecond()
    h = Harness(features=[a, later])
    h.decision = routes(CALLEE2)
    Callee(h, CALLEE2)
    callers = [Caller(h, call_id=f"c{n}@alice", tag=f"t{n}") for n in range(4)]
    callers[0].send_invite()  # counted, calling
    callers[1].send_invite()  # counted by admission, then refused by the later feature
    assert callers[1].statuses("INVITE")[-1] == 486
    assert a.calls == 1  # released by call_ended
    callers[2].send_invite()  # so this one fits
    assert a.calls == 2 and 503 not in callers[2].statuses("INVITE")
    callers[3].send_invite()
    assert callers[3].statuses("INVITE")[-1] == 503 and later.n == 3
    assert a.refused == {"global": 1}
    callers[0].cancel()
    callers[2].cancel()
    assert a.calls == 0


def test_with_the_bridge_refused_by_an_earlier_feature_never_counts(load: LoadPlugins) -> None:
    a = feature(load, "[plugin.global]\nmax_calls = 1\n")
    access = Access(None)  # trusts nobody
    h = Harness(features=[access, a])
    for n in range(3):
        c = Caller(h, call_id=f"x{n}@alice", tag=f"x{n}")
        c.send_invite()
        assert c.statuses("INVITE")[-1] == 403
    assert a.calls == 0 and a.refused == {}


# -- the example --------------------------------------------------------------------


def test_the_example() -> None:
    plugins = load_plugins(load_config(str(ROOT / "etc" / "examples" / "admission.toml")))
    [a] = [p.plugin for p in plugins.loaded if isinstance(p.plugin, Admission)]
    assert isinstance(plugins.loaded[0].plugin, Access)
    assert a.everything is not None and a.everything.max_calls == 200
    assert a.everything.burst == 40
    refusal = Reject(503, None, (("Retry-After", "10"),))
    calls = [info("127.0.0.9", at=float(n)) for n in range(11)]  # per_source 2 cps
    assert [start(a, c) for c in calls] == [None] * 10 + [refusal]  # per_source 10 calls
    assert route(a, calls[0], "sip:127.0.0.1:5071") is None
    assert a.destination_calls("pbx") == 1


# -- option errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":6: plugin[0]: sets no limit"),
        ("limit = 1\n", ":8: plugin[0].limit: unknown key (known keys:"),
        ("global = 1\n", "plugin[0].global: must be a table"),
        ("[plugin.global]\n", ":8: plugin[0].global: needs 'max_calls' or 'max_cps'"),
        ("[plugin.global]\nmax_calls = -1\n", ":9: plugin[0].global.max_calls: must not be"),
        ("[plugin.global]\nmax_calls = 1.5\n", "global.max_calls: must be an integer"),
        ("[plugin.global]\nmax_cps = 0\n", "plugin[0].global.max_cps: must be a positive"),
        ('[plugin.global]\nmax_cps = "5"\n', "plugin[0].global.max_cps: must be a number"),
        ("[plugin.global]\nmax_calls = 1\nburst = 2\n", "global.burst: only a limit with"),
        ("[plugin.global]\nmax_cps = 1\nburst = 0.5\n", "global.burst: must be a number of"),
        ("[plugin.global]\nmax_calls = 1\nstatus = 302\n", "global.status: must be a final"),
        ("[plugin.global]\nmax_calls = 1\nretry_after = -1\n", "global.retry_after: must be"),
        ("[plugin.global]\nmax_calls = 1\nwhat = 1\n", "plugin[0].global.what: unknown key"),
        ('reason = "a\\nb"\n[plugin.global]\nmax_calls = 1\n', "plugin[0].reason: must be a"),
        ("[plugin.per_source]\nmax_calls = 1\nname = 1\n", "per_source.name: unknown key"),
        ("group = []\n", "plugin[0].group: must be a non-empty array"),
        ("[[plugin.group]]\nmax_calls = 1\n", ":8: plugin[0].group[0]: needs a non-empty 'name'"),
        ('[[plugin.group]]\nname = "a"\nmax_calls = 1\n', "group[0]: needs 'targets'"),
        (
            '[[plugin.group]]\nname = "a"\ntargets = ["sip:"]\nmax_calls = 1\n',
            ":10: plugin[0].group[0].targets[0]: 'sip:' is not a host",
        ),
        (
            '[[plugin.group]]\nname = "a"\ntargets = ["u@h"]\nmax_calls = 1\n',
            "group[0].targets[0]: 'u@h' is not a host, host:port or SIP URI",
        ),
        ('[[plugin.group]]\nname = "a"\ntargets = ["h"]\n', "group[0]: needs 'max_calls' or"),
        (
            '[[plugin.group]]\nname = "a"\ntargets = ["h"]\nmax_calls = 1\n'
            '[[plugin.group]]\nname = "a"\ntargets = ["i"]\nmax_calls = 1\n',
            ":13: plugin[0].group[1].name: a second group named 'a'",
        ),
    ],
)
def test_option_errors_name_file_line_and_key(load: LoadPlugins, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info_:
        load(HEAD + text)
    message = str(info_.value)
    assert expected in message, message
    assert message.startswith(str(info_.value.path))


def test_ipv6_group_entries(load: LoadPlugins) -> None:
    a = feature(
        load,
        '[[plugin.group]]\nname = "v6"\ntargets = ["2001:db8::1", "[2001:db8::2]:5070"]\n'
        "max_calls = 5\n",
    )
    assert a.groups[0].hosts == (("2001:db8::1", None), ("2001:db8::2", 5070))
    assert route(a, info(), "sip:[2001:db8::1]:7") is None
    assert route(a, info(), "sip:[2001:db8:0::2]:5070") is None
    assert route(a, info(), "sip:[2001:db8::2]") is None  # not the group: no limit
    assert a.destination_calls("v6") == 2
