"""Brute-force and enumeration protection: failed attempts, temporary bans, trusted networks.

Failed authentications are counted per source address and per user name within
a sliding window; ``max_failures`` of them ban that source or that user for
``ban_time`` seconds.  Unknown user names are counted exactly like known ones,
so a ban says nothing about which users exist.  A user ban does not lock out
the addresses that user authenticated from before it (so an attacker cannot
keep a real phone from registering by failing on purpose under its name).
Every table is bounded.  Pure: the current time is passed in.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Bans", "FailureCounter", "TrustedNetworks", "source_key"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def source_key(host: str) -> str:
    """What a source is banned by: its IPv4 address, or the /64 of an IPv6 address
    (one host commonly holds a whole /64).  Names are used as they are."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class TrustedNetworks:
    """Networks whose requests are never challenged (CIDR, IPv4 or IPv6)."""

    __slots__ = ("_cache", "networks")

    def __init__(self, networks: Iterable[str | IPNetwork] = ()) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n) if isinstance(n, str) else n for n in networks
        )
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self.networks:
            return False
        hit = self._cache.get(host)
        if hit is None:
            hit = self._match(host)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[host] = hit
        return hit

    def _match(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


@dataclass(slots=True)
class _Record:
    failures: deque[float]
    banned_until: float = 0.0


class FailureCounter:
    """Failures per key in a sliding ``window``; ``max_failures`` of them ban the key.

    ``max_failures = 0`` disables bans.  At most ``max_entries`` keys are kept
    (least recently failed first out).
    """

    __slots__ = ("_records", "ban_time", "max_entries", "max_failures", "window")

    def __init__(
        self, max_failures: int, window: float, ban_time: float, max_entries: int = 100_000
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.ban_time = ban_time
        self.max_entries = max_entries
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def banned(self, key: str, now: float) -> bool:
        """True while ``key`` is banned."""
        record = self._records.get(key)
        if record is None or not record.banned_until:
            return False
        if now < record.banned_until:
            return True
        del self._records[key]  # the ban is over: start afresh
        return False

    def failed(self, key: str, now: float) -> bool:
        """Count a failure; True when it bans ``key`` (from now, for ``ban_time``)."""
        if self.max_failures <= 0:
            return False
        records = self._records
        record = records.get(key)
        if record is None:
            record = records[key] = _Record(deque(maxlen=self.max_failures))
            if len(records) > self.max_entries:
                records.popitem(last=False)
        else:
            records.move_to_end(key)
            if record.banned_until:
                return False  # already banned: a ban is not extended
        failures = record.failures
        failures.append(now)
        horizon = now - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if len(failures) >= self.max_failures:
            failures.clear()
            record.banned_until = now + self.ban_time
            return True
        return False

    def forgive(self, key: str, now: float) -> None:
        """Forget ``key``'s failures, unless it is banned (a ban runs its course)."""
        record = self._records.get(key)
        if record is not None and not record.banned_until > now:
            del self._records[key]

    def banned_keys(self, now: float) -> list[str]:
        """The keys banned at ``now``."""
        return [k for k, r in self._records.items() if r.banned_until > now]


class Bans:
    """Failures and bans for sources and users, as the authenticator needs them."""

    __slots__ = ("_good", "_good_max", "_good_time", "sources", "users")

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 300.0,
        ban_time: float = 300.0,
        *,
        max_entries: int = 100_000,
        good_time: float = 86_400.0,
    ) -> None:
        self.sources = FailureCounter(max_failures, window, ban_time, max_entries)
        self.users = FailureCounter(max_failures, window, ban_time, max_entries)
        #: (user, source key) -> when that user last authenticated from there
        self._good: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._good_time = good_time
        self._good_max = max_entries

    def source_banned(self, host: str, now: float) -> bool:
        """True while requests from ``host`` are banned."""
        return bool(self.sources) and self.sources.banned(source_key(host), now)

    def user_banned(self, user: str, host: str, now: float) -> bool:
        """True while ``user`` is banned for requests from ``host`` (not for the
        sources it authenticated from lately)."""
        if not self.users or not self.users.banned(user, now):
            return False
        seen = self._good.get((user, source_key(host)))
        return seen is None or now - seen > self._good_time

    def failure(self, user: str, host: str, now: float) -> list[str]:
        """Count a failed authentication; returns what it banned ("source X", "user Y")."""
        banned = []
        key = source_key(host)
        if self.sources.failed(key, now):
            banned.append(f"source {key}")
        if self.users.failed(user, now):
            banned.append(f"user {user}")
        return banned

    def success(self, user: str, host: str, now: float) -> None:
        """``user`` authenticated from ``host``: its failures are forgotten (unless
        it is banned) and the source is remembered as one of the user's own."""
        self.users.forgive(user, now)
        good = self._good
        pair = (user, source_key(host))
        good[pair] = now
        good.move_to_end(pair)
        while len(good) > self._good_max:
            good.popitem(last=False)
