"""RFC 3263 next-hop resolution (NAPTR, SRV, A/AAAA) with twisted.names.

``Resolver(reactor).resolve(uri)`` gives a Deferred list of
:class:`~b2bua.sip.Address` to try in order: the first is the preferred
target, the others are for failover (RFC 3263 section 4.3).  Answers are cached
for their TTL, measured with ``reactor.seconds()``.

Steps (RFC 3263 section 4):

- The target is the URI's ``maddr`` parameter, else its host.
- A numeric target (IPv4 or IPv6 literal) or ``localhost`` needs no DNS.
- With an explicit port: A/AAAA only, on that port.
- With an explicit ``transport`` parameter: SRV for that transport, else A/AAAA
  on the transport's default port.
- Otherwise NAPTR (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``; only ``SIPS+D2T`` for
  sips: URIs) in order and preference, each followed by its SRV; when no NAPTR
  is usable, SRV queries for ``_sip._udp``, ``_sip._tcp`` and ``_sips._tcp``
  (only ``_sips._tcp`` for sips:); when no SRV either, A/AAAA on the default
  port with UDP (TLS for sips:).
- A sips: URI only ever yields TLS targets.
- SRV records are ordered by priority, then by RFC 2782 weighted random
  selection within a priority.  A and AAAA results: IPv4 first, then IPv6.

An empty list means nothing could be found (NXDOMAIN, no records, DNS errors):
the caller answers 503 or tries its next route.  Nothing here raises.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.names import dns
from twisted.names.error import DNSNameError
from twisted.python.failure import Failure

from b2bua.sip import URI, Address
from b2bua.sip.address import is_ip_literal

from ..logs import Logger
from .routing import default_port, normalize_ip, strip_brackets

log = Logger()

#: NAPTR service field -> transport (RFC 3263 section 4.1).
NAPTR_SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
#: Transport -> SRV service prefix (RFC 3263 section 4.1).
SRV_PREFIXES = {"UDP": "_sip._udp.", "TCP": "_sip._tcp.", "TLS": "_sips._tcp."}
#: URI ``transport`` parameter -> transport.
URI_TRANSPORTS = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
#: "localhost" and its like resolve here without DNS (hosts-file semantics).
LOCALHOST = ("127.0.0.1", "::1")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: Per-try timeouts of the default DNS client (9 s in all, well inside Timer B's 32 s).
DNS_TIMEOUTS = (1, 3, 5)


@dataclass(frozen=True, slots=True)
class SRVRecord:
    """One SRV answer (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


def order_srv(records: Sequence[SRVRecord], rng: random.Random | None = None) -> list[SRVRecord]:
    """RFC 2782 ordering: ascending priority; weighted random order within one.

    Within a priority, records of weight 0 are put first, then repeatedly a
    random number from 0 to the sum of the remaining weights (inclusive) picks
    the first record whose running sum reaches it.
    """
    pick = (rng or random).randint
    out: list[SRVRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            chosen = pick(0, total) if total else 0
            running = 0
            index = len(group) - 1
            for i, record in enumerate(group):
                running += record.weight
                if running >= chosen:
                    index = i
                    break
            out.append(group.pop(index))
    return out


def _name(value: Any) -> str:
    """A DNS name from twisted.names (``Name`` or bytes) as text without the final dot."""
    raw = getattr(value, "name", value)
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip(".")


def _charstr(value: Any) -> str:
    raw = getattr(value, "string", value)
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)


def _dedupe(addresses: list[Address]) -> list[Address]:
    seen: set[Address] = set()
    out: list[Address] = []
    for address in addresses:
        if address not in seen:
            seen.add(address)
            out.append(address)
    return out


def _flatten(lists: list[list[Address]]) -> list[Address]:
    return _dedupe([address for part in lists for address in part])


class Resolver:
    """RFC 3263 resolver; see the module docstring for the steps.

    :param reactor: provides ``seconds()`` (the cache's clock) and is handed to
        ``twisted.names.client.createResolver`` when ``names_resolver`` is None.
    :param names_resolver: an ``IResolver`` (tests pass a fake); by default one is
        created from /etc/resolv.conf and /etc/hosts on first use.
    :param transports: the transports we can use; others are skipped.
    :param rng: random source for SRV weights (tests pass a seeded one).
    :param negative_ttl: seconds to remember that a name has no such record.
    :param max_cache: cache entries kept before expired ones are purged.
    """

    def __init__(
        self,
        reactor: Any,
        names_resolver: Any = None,
        *,
        transports: Sequence[str] = ("UDP", "TCP", "TLS"),
        rng: random.Random | None = None,
        negative_ttl: float = 30.0,
        max_cache: int = 10000,
    ) -> None:
        self._reactor = reactor
        self._names = names_resolver
        self._transports = tuple(t.upper() for t in transports)
        self._rng = rng or random.Random()
        self.negative_ttl = negative_ttl
        self.max_cache = max_cache
        self._cache: dict[tuple[str, int], tuple[float, list[Any]]] = {}

    # -- public ------------------------------------------------------------------
    def resolve(self, uri: URI) -> defer.Deferred[list[Address]]:
        """The ordered targets for a sip: or sips: URI ([] for other schemes)."""
        if not uri.is_sip:
            return defer.succeed([])
        secure = uri.scheme == "sips"
        target = strip_brackets(uri.params.get("maddr") or uri.host)
        transport: str | None = None
        if uri.transport is not None:
            transport = URI_TRANSPORTS.get(uri.transport)
            if secure and transport is not None:
                transport = "TLS" if transport in ("TCP", "TLS") else None
            if transport is None or transport not in self._transports:
                return defer.succeed([])
        if is_ip_literal(target) or target.lower() in LOCAL_NAMES or uri.port is not None:
            if transport is None:
                transport = "TLS" if secure else "UDP"
            if transport not in self._transports:
                return defer.succeed([])
            return self.resolve_host(target, uri.port or default_port(transport), transport)
        if transport is not None:
            return self._srv_then_host(target, transport)
        d = self._query(target, dns.NAPTR)
        d.addCallback(self._from_naptr, target, secure)
        return d

    def resolve_host(self, host: str, port: int, transport: str) -> defer.Deferred[list[Address]]:
        """A/AAAA for ``host`` (IP literals and localhost need no DNS): IPv4 first.

        Also for RFC 3263 section 5, a response's sent-by host with a port.
        """
        host = strip_brackets(host)
        if is_ip_literal(host):
            return defer.succeed([Address(transport, normalize_ip(host), port)])
        if host.lower().rstrip(".") in LOCAL_NAMES:
            return defer.succeed([Address(transport, ip, port) for ip in LOCALHOST])
        queries = [self._query(host, dns.A), self._query(host, dns.AAAA)]

        def build(results: list[list[Any]]) -> list[Address]:
            out = [
                Address(transport, socket.inet_ntop(socket.AF_INET, rr.payload.address), port)
                for rr in results[0]
            ]
            out += [
                Address(transport, socket.inet_ntop(socket.AF_INET6, rr.payload.address), port)
                for rr in results[1]
            ]
            return _dedupe(out)

        return defer.gatherResults(queries).addCallback(build)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    # -- steps -------------------------------------------------------------------
    def _from_naptr(
        self, records: list[Any], target: str, secure: bool
    ) -> defer.Deferred[list[Address]] | list[Address]:
        usable: list[tuple[int, int, str, str]] = []
        for rr in records:
            p = rr.payload
            if _charstr(p.flags).lower() != "s":
                continue
            transport = NAPTR_SERVICES.get(_charstr(p.service).upper())
            if transport is None or transport not in self._transports:
                continue
            if secure and transport != "TLS":
                continue
            usable.append((p.order, p.preference, transport, _name(p.replacement)))
        usable.sort(key=lambda u: (u[0], u[1]))
        if usable:
            parts = [self._srv(replacement, transport) for _, _, transport, replacement in usable]
            d = defer.gatherResults(parts).addCallback(_flatten)
            return d.addCallback(self._or_fallback, target, secure)
        return self._srv_fallback(target, secure)

    def _or_fallback(
        self, found: list[Address], target: str, secure: bool
    ) -> defer.Deferred[list[Address]] | list[Address]:
        # NAPTR records whose SRV records are all missing: behave as if no NAPTR.
        return found if found else self._srv_fallback(target, secure)

    def _srv_fallback(self, target: str, secure: bool) -> defer.Deferred[list[Address]]:
        transports = ["TLS"] if secure else ["UDP", "TCP", "TLS"]
        transports = [t for t in transports if t in self._transports]
        parts = [self._srv(SRV_PREFIXES[t] + target, t) for t in transports]
        default = "TLS" if secure else "UDP"

        def done(lists: list[list[Address]]) -> defer.Deferred[list[Address]] | list[Address]:
            found = _flatten(lists)
            if found or default not in self._transports:
                return found
            return self.resolve_host(target, default_port(default), default)

        return defer.gatherResults(parts).addCallback(done)

    def _srv_then_host(self, target: str, transport: str) -> defer.Deferred[list[Address]]:
        def done(found: list[Address]) -> defer.Deferred[list[Address]] | list[Address]:
            return found if found else self.resolve_host(target, default_port(transport), transport)

        return self._srv(SRV_PREFIXES[transport] + target, transport).addCallback(done)

    def _srv(self, name: str, transport: str) -> defer.Deferred[list[Address]]:
        def targets(records: list[Any]) -> defer.Deferred[list[Address]] | list[Address]:
            srvs = [
                SRVRecord(
                    rr.payload.priority,
                    rr.payload.weight,
                    rr.payload.port,
                    _name(rr.payload.target),
                )
                for rr in records
            ]
            # RFC 2782: a single record with target "." means "decidedly not available".
            srvs = [s for s in srvs if s.target not in ("", ".")]
            if not srvs:
                return []
            ordered = order_srv(srvs, self._rng)
            parts = [self.resolve_host(s.target, s.port, transport) for s in ordered]
            return defer.gatherResults(parts).addCallback(_flatten)

        return self._query(name, dns.SRV).addCallback(targets)

    # -- DNS with a TTL cache -------------------------------------------------------
    def _lookup_method(self, qtype: int) -> Callable[[str], defer.Deferred[Any]]:
        if self._names is None:
            from twisted.names import client, hosts, resolve

            self._names = resolve.ResolverChain(  # type: ignore[no-untyped-call]
                [
                    hosts.Resolver(b"/etc/hosts"),  # type: ignore[no-untyped-call]
                    client.Resolver(  # type: ignore[no-untyped-call]
                        b"/etc/resolv.conf", timeout=DNS_TIMEOUTS, reactor=self._reactor
                    ),
                ]
            )
        names = self._names
        method: Callable[[str], defer.Deferred[Any]] = {
            dns.A: names.lookupAddress,
            dns.AAAA: names.lookupIPV6Address,
            dns.SRV: names.lookupService,
            dns.NAPTR: names.lookupNamingAuthorityPointer,
        }[qtype]
        return method

    def _now(self) -> float:
        return float(self._reactor.seconds())

    def _query(self, name: str, qtype: int) -> defer.Deferred[list[Any]]:
        """The answer records of type ``qtype`` for ``name`` (cached; [] on failure)."""
        key = (name.lower().rstrip("."), qtype)
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > self._now():
                return defer.succeed(cached[1])
            del self._cache[key]
        try:
            d = self._lookup_method(qtype)(key[0])
        except Exception:
            return defer.succeed(self._failed(Failure(), key))  # type: ignore[no-untyped-call]
        d.addCallbacks(self._answered, self._failed, callbackArgs=(key,), errbackArgs=(key,))
        return d

    def _answered(self, result: Any, key: tuple[str, int]) -> list[Any]:
        answers = [rr for rr in result[0] if rr.type == key[1]]
        if answers:
            ttl = float(min(rr.ttl for rr in answers))
        else:
            # NODATA: cached for the SOA minimum when the server sent one (RFC 2308 5)
            soas = [rr for rr in result[1] if rr.type == dns.SOA]
            ttl = (
                float(min(min(rr.ttl, rr.payload.minimum) for rr in soas))
                if soas
                else self.negative_ttl
            )
        self._store(key, answers, ttl)
        return answers

    def _failed(self, reason: Failure, key: tuple[str, int]) -> list[Any]:
        if isinstance(reason.value, DNSNameError):
            self._store(key, [], self.negative_ttl)
        else:
            qtype = dns.QUERY_TYPES.get(key[1], str(key[1]))
            log.info(
                "DNS {qtype} lookup for {name} failed: {why}",
                qtype=qtype,
                name=key[0],
                why=reason.getErrorMessage(),
            )
        return []

    def _store(self, key: tuple[str, int], answers: list[Any], ttl: float) -> None:
        if ttl <= 0:
            return
        cache = self._cache
        if len(cache) >= self.max_cache:
            now = self._now()
            for stale in [k for k, (expiry, _) in cache.items() if expiry <= now]:
                del cache[stale]
            if len(cache) >= self.max_cache:
                cache.clear()
        cache[key] = (self._now() + ttl, answers)
