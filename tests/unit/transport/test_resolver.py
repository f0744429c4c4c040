"""RFC 3263 resolution with a fake IResolver and task.Clock (never real DNS)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.names import dns
from twisted.names.common import ResolverBase
from twisted.names.error import DNSNameError, DNSQueryTimeoutError

from b2bua.sip import Address, parse_uri
from b2bua.transport import Resolver
from b2bua.transport.resolver import SRVRecord, order_srv


class FakeDNS(ResolverBase):
    """Canned answers keyed by (name, type); counts queries."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, int], list[dns.RRHeader]] = {}
        self.errors: dict[tuple[str, int], Exception] = {}
        self.queries: list[tuple[str, int]] = []

    def add(self, name: str, payload: Any, ttl: int = 300) -> None:
        rr = dns.RRHeader(name, payload.TYPE, dns.IN, ttl, payload)
        self.records.setdefault((name, payload.TYPE), []).append(rr)

    def a(self, name: str, *ips: str, ttl: int = 300) -> None:
        for ip in ips:
            self.add(name, dns.Record_A(ip, ttl), ttl)

    def aaaa(self, name: str, *ips: str, ttl: int = 300) -> None:
        for ip in ips:
            self.add(name, dns.Record_AAAA(ip, ttl), ttl)

    def srv(self, name: str, priority: int, weight: int, port: int, target: str, ttl: int = 300) -> None:
        self.add(name, dns.Record_SRV(priority, weight, port, target, ttl), ttl)

    def naptr(self, name: str, order: int, pref: int, service: bytes, replacement: str, flags: bytes = b"s") -> None:
        self.add(name, dns.Record_NAPTR(order, pref, flags, service, b"", replacement, 300), 300)

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred[Any]:
        key = (name.decode(), type)
        self.queries.append(key)
        if key in self.errors:
            return defer.fail(self.errors[key])
        if key not in self.records and not any(k[0] == key[0] for k in self.records):
            return defer.fail(DNSNameError(name))
        return defer.succeed((self.records.get(key, []), [], []))


def resolve(resolver: Resolver, uri: str) -> list[Address]:
    results: list[list[Address]] = []
    resolver.resolve(parse_uri(uri)).addCallback(results.append)
    assert len(results) == 1, "the fake resolver answers synchronously"
    return results[0]


@pytest.fixture
def fake() -> FakeDNS:
    return FakeDNS()


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


@pytest.fixture
def resolver(fake: FakeDNS, clock: task.Clock) -> Resolver:
    return Resolver(clock, fake, rng=random.Random(7))


def test_numeric_hosts_need_no_dns(resolver: Resolver, fake: FakeDNS) -> None:
    assert resolve(resolver, "sip:bob@192.0.2.1") == [Address("UDP", "192.0.2.1", 5060)]
    assert resolve(resolver, "sip:bob@192.0.2.1:5080;transport=tcp") == [Address("TCP", "192.0.2.1", 5080)]
    assert resolve(resolver, "sips:bob@192.0.2.1") == [Address("TLS", "192.0.2.1", 5061)]
    assert resolve(resolver, "sip:[2001:db8::1]:5070") == [Address("UDP", "2001:db8::1", 5070)]
    assert resolve(resolver, "sip:bob@example.com;maddr=192.0.2.9") == [Address("UDP", "192.0.2.9", 5060)]
    assert fake.queries == []


def test_localhost_needs_no_dns(resolver: Resolver, fake: FakeDNS) -> None:
    assert resolve(resolver, "sip:localhost") == [Address("UDP", "127.0.0.1", 5060), Address("UDP", "::1", 5060)]
    assert resolve(resolver, "sip:LOCALHOST:5070;transport=tcp")[0] == Address("TCP", "127.0.0.1", 5070)
    assert fake.queries == []


def test_explicit_port_means_a_and_aaaa_only(resolver: Resolver, fake: FakeDNS) -> None:
    fake.a("pbx.example.com", "192.0.2.1", "192.0.2.2")
    fake.aaaa("pbx.example.com", "2001:db8::1")
    fake.naptr("pbx.example.com", 10, 10, b"SIP+D2T", "_sip._tcp.pbx.example.com")
    assert resolve(resolver, "sip:pbx.example.com:5080") == [
        Address("UDP", "192.0.2.1", 5080),
        Address("UDP", "192.0.2.2", 5080),
        Address("UDP", "2001:db8::1", 5080),
    ]
    assert {t for _, t in fake.queries} == {dns.A, dns.AAAA}
    assert resolve(resolver, "sips:pbx.example.com:5081")[0] == Address("TLS", "192.0.2.1", 5081)


def test_explicit_transport_uses_srv_then_falls_back_to_a(resolver: Resolver, fake: FakeDNS) -> None:
    fake.srv("_sip._tcp.example.com", 10, 0, 5070, "pbx1.example.com")
    fake.a("pbx1.example.com", "192.0.2.11")
    fake.a("example.com", "192.0.2.99")
    assert resolve(resolver, "sip:example.com;transport=tcp") == [Address("TCP", "192.0.2.11", 5070)]
    assert ("example.com", dns.NAPTR) not in fake.queries
    assert resolve(resolver, "sip:example.com;transport=udp") == [Address("UDP", "192.0.2.99", 5060)]
    assert resolve(resolver, "sip:example.com;transport=tls") == [Address("TLS", "192.0.2.99", 5061)]
    assert resolve(resolver, "sip:example.com;transport=sctp") == []


def test_naptr_then_srv_then_a(resolver: Resolver, fake: FakeDNS) -> None:
    # RFC 3263 section 4.1 example shape: TCP preferred by order, then UDP
    fake.naptr("example.com", 90, 50, b"SIP+D2U", "_sip._udp.example.com")
    fake.naptr("example.com", 50, 50, b"SIP+D2T", "_sip._tcp.example.com")
    fake.naptr("example.com", 50, 40, b"SIPS+D2T", "_sips._tcp.example.com")
    fake.naptr("example.com", 10, 10, b"SIP+D2S", "_sip._sctp.example.com")  # unsupported
    fake.naptr("example.com", 5, 10, b"E2U+sip", "!^.*$!sip:x@y!", flags=b"u")  # not an SRV record
    fake.srv("_sips._tcp.example.com", 1, 0, 5061, "tls.example.com")
    fake.srv("_sip._tcp.example.com", 1, 0, 5060, "tcp.example.com")
    fake.srv("_sip._udp.example.com", 1, 0, 5060, "udp.example.com")
    fake.a("tls.example.com", "192.0.2.3")
    fake.a("tcp.example.com", "192.0.2.2")
    fake.aaaa("tcp.example.com", "2001:db8::2")
    fake.a("udp.example.com", "192.0.2.1")
    assert resolve(resolver, "sip:bob@example.com") == [
        Address("TLS", "192.0.2.3", 5061),
        Address("TCP", "192.0.2.2", 5060),
        Address("TCP", "2001:db8::2", 5060),
        Address("UDP", "192.0.2.1", 5060),
    ]


def test_sips_uri_only_yields_tls(resolver: Resolver, fake: FakeDNS) -> None:
    fake.naptr("example.com", 10, 10, b"SIP+D2U", "_sip._udp.example.com")
    fake.naptr("example.com", 20, 10, b"SIPS+D2T", "_sips._tcp.example.com")
    fake.srv("_sip._udp.example.com", 1, 0, 5060, "udp.example.com")
    fake.srv("_sips._tcp.example.com", 1, 0, 5061, "tls.example.com")
    fake.a("udp.example.com", "192.0.2.1")
    fake.a("tls.example.com", "192.0.2.3")
    assert resolve(resolver, "sips:bob@example.com") == [Address("TLS", "192.0.2.3", 5061)]
    assert resolve(resolver, "sips:bob@example.com;transport=udp") == []


def test_no_naptr_queries_srv_for_each_transport(resolver: Resolver, fake: FakeDNS) -> None:
    fake.srv("_sip._tcp.example.org", 1, 0, 5060, "pbx.example.org")
    fake.srv("_sips._tcp.example.org", 1, 0, 5061, "pbx.example.org")
    fake.a("pbx.example.org", "192.0.2.5")
    assert resolve(resolver, "sip:example.org") == [
        Address("TCP", "192.0.2.5", 5060),
        Address("TLS", "192.0.2.5", 5061),
    ]
    assert ("_sip._udp.example.org", dns.SRV) in fake.queries


def test_no_naptr_no_srv_means_a_with_default_port(resolver: Resolver, fake: FakeDNS) -> None:
    fake.a("plain.example.net", "192.0.2.7")
    fake.aaaa("plain.example.net", "2001:db8::7")
    assert resolve(resolver, "sip:plain.example.net") == [
        Address("UDP", "192.0.2.7", 5060),
        Address("UDP", "2001:db8::7", 5060),
    ]
    assert resolve(resolver, "sips:plain.example.net") == [
        Address("TLS", "192.0.2.7", 5061),
        Address("TLS", "2001:db8::7", 5061),
    ]


def test_naptr_whose_srv_is_missing_falls_back(resolver: Resolver, fake: FakeDNS) -> None:
    fake.naptr("example.com", 10, 10, b"SIP+D2T", "_sip._tcp.gone.example.com")
    fake.a("example.com", "192.0.2.8")
    assert resolve(resolver, "sip:example.com") == [Address("UDP", "192.0.2.8", 5060)]


def test_srv_dot_target_means_not_available(resolver: Resolver, fake: FakeDNS) -> None:
    fake.srv("_sip._udp.example.com", 0, 0, 0, "")  # the root name "."
    fake.a("example.com", "192.0.2.8")
    assert resolve(resolver, "sip:example.com;transport=udp") == [Address("UDP", "192.0.2.8", 5060)]


def test_srv_priority_order_and_failover_list(resolver: Resolver, fake: FakeDNS) -> None:
    fake.srv("_sip._udp.example.com", 20, 0, 5060, "backup.example.com")
    fake.srv("_sip._udp.example.com", 10, 0, 5060, "primary.example.com")
    fake.a("primary.example.com", "192.0.2.1")
    fake.a("backup.example.com", "192.0.2.2")
    assert resolve(resolver, "sip:example.com;transport=udp") == [
        Address("UDP", "192.0.2.1", 5060),
        Address("UDP", "192.0.2.2", 5060),
    ]


def test_nothing_found_is_an_empty_list(resolver: Resolver, fake: FakeDNS) -> None:
    assert resolve(resolver, "sip:nowhere.invalid") == []
    assert resolve(resolver, "tel:+15551234") == []


def test_dns_errors_are_empty_answers_and_not_cached(resolver: Resolver, fake: FakeDNS) -> None:
    fake.a("flaky.example.com", "192.0.2.1")
    fake.errors[("flaky.example.com", dns.A)] = DNSQueryTimeoutError(None)
    assert resolve(resolver, "sip:flaky.example.com:5060") == []
    del fake.errors[("flaky.example.com", dns.A)]
    assert resolve(resolver, "sip:flaky.example.com:5060") == [Address("UDP", "192.0.2.1", 5060)]


def test_answers_cached_for_their_ttl(resolver: Resolver, fake: FakeDNS, clock: task.Clock) -> None:
    fake.a("pbx.example.com", "192.0.2.1", ttl=60)
    fake.aaaa("pbx.example.com", "2001:db8::1", ttl=60)
    uri = "sip:pbx.example.com:5060"
    resolve(resolver, uri)
    count = len(fake.queries)
    clock.advance(59)
    resolve(resolver, uri)
    assert len(fake.queries) == count
    clock.advance(2)
    resolve(resolver, uri)
    assert len(fake.queries) > count


def test_negative_answers_cached_for_negative_ttl(fake: FakeDNS, clock: task.Clock) -> None:
    resolver = Resolver(clock, fake, negative_ttl=10)
    resolve(resolver, "sip:nowhere.invalid:5060")
    count = len(fake.queries)
    resolve(resolver, "sip:nowhere.invalid:5060")
    assert len(fake.queries) == count
    clock.advance(11)
    resolve(resolver, "sip:nowhere.invalid:5060")
    assert len(fake.queries) == 2 * count


def test_nodata_cached_for_the_soa_minimum(fake: FakeDNS, clock: task.Clock) -> None:
    resolver = Resolver(clock, fake, negative_ttl=1000)
    fake.a("v4only.example.com", "192.0.2.1", ttl=3600)
    soa = dns.Record_SOA(b"ns.example.com", b"admin.example.com", minimum=20, ttl=300)
    original = fake._lookup

    def with_soa(name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred[Any]:
        d = original(name, cls, type, timeout)
        if type == dns.AAAA:
            return d.addCallback(lambda r: (r[0], [dns.RRHeader(name, dns.SOA, dns.IN, 300, soa)], []))
        return d

    fake._lookup = with_soa  # type: ignore[method-assign]
    resolve(resolver, "sip:v4only.example.com:5060")
    clock.advance(19)
    resolve(resolver, "sip:v4only.example.com:5060")
    assert fake.queries.count(("v4only.example.com", dns.AAAA)) == 1
    clock.advance(2)
    resolve(resolver, "sip:v4only.example.com:5060")
    assert fake.queries.count(("v4only.example.com", dns.AAAA)) == 2
    assert fake.queries.count(("v4only.example.com", dns.A)) == 1


def test_transports_restricts_results(fake: FakeDNS, clock: task.Clock) -> None:
    resolver = Resolver(clock, fake, transports=("UDP", "TCP"))
    fake.naptr("example.com", 10, 10, b"SIPS+D2T", "_sips._tcp.example.com")
    fake.naptr("example.com", 20, 10, b"SIP+D2T", "_sip._tcp.example.com")
    fake.srv("_sips._tcp.example.com", 1, 0, 5061, "pbx.example.com")
    fake.srv("_sip._tcp.example.com", 1, 0, 5060, "pbx.example.com")
    fake.a("pbx.example.com", "192.0.2.5")
    assert resolve(resolver, "sip:example.com") == [Address("TCP", "192.0.2.5", 5060)]
    assert resolve(resolver, "sips:example.com") == []


def test_order_srv_weights_follow_rfc_2782() -> None:
    records = [SRVRecord(10, 60, 5060, "a"), SRVRecord(10, 30, 5060, "b"), SRVRecord(10, 10, 5060, "c"), SRVRecord(5, 0, 5060, "first")]
    rng = random.Random(12345)
    firsts: Counter[str] = Counter()
    for _ in range(5000):
        ordered = order_srv(records, rng)
        assert ordered[0].target == "first"
        assert sorted(r.target for r in ordered) == ["a", "b", "c", "first"]
        firsts[ordered[1].target] += 1
    assert 0.55 < firsts["a"] / 5000 < 0.65
    assert 0.25 < firsts["b"] / 5000 < 0.35
    assert 0.07 < firsts["c"] / 5000 < 0.13


def test_order_srv_zero_weights_keep_order() -> None:
    records = [SRVRecord(1, 0, 1, "x"), SRVRecord(1, 0, 2, "y")]
    assert order_srv(records, random.Random(1)) == records


def test_default_resolver_is_built_lazily(clock: task.Clock) -> None:
    resolver = Resolver(clock)
    # no DNS needed for these; nothing is created or read
    assert resolve(resolver, "sip:192.0.2.1") == [Address("UDP", "192.0.2.1", 5060)]
    assert resolver._names is None
