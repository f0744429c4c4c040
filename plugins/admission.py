"""Admission control: limits on concurrent calls and on new calls per second.

Configured as::

    [[plugin]]
    module = "admission"
    retry_after = 10            # seconds in Retry-After of the refusal (0: none)

    [plugin.global]             # every call
    max_calls = 500
    max_cps = 50

    [plugin.per_source]         # each source address on its own
    max_calls = 20
    max_cps = 2

    [plugin.per_destination]    # each target host:port not in a group
    max_calls = 100

    [[plugin.group]]            # named destination groups: shared limits
    name = "pbx"
    targets = ["127.0.0.1:5070", "pbx.example.com"]
    max_calls = 30

A call over any limit is refused with 503 Service Unavailable and Retry-After
(``status``, ``reason``, ``retry_after``; each limit table may override them).

- ``max_calls`` counts calls from acceptance to their end: a call is counted
  against the global and per-source limits in ``call_started`` and against its
  destination in ``call_routed``, and released in ``call_ended``, which the
  bridge calls exactly once for every call, refused or not.  What a call holds
  is kept in ``CallInfo.data``, so a call that was refused (here or by another
  feature) releases only what it was given.
- ``max_cps`` is a token bucket: ``burst`` calls at once (default: ``max_cps``
  rounded up), refilled at ``max_cps`` per second.  Time is the call's start
  time (``CallInfo.started``, the server clock), so no clock is needed.
- A call is checked against every limit that applies before it takes anything:
  a refused call uses no slot and no token anywhere.
- The destination of a call is the **first** target the routers chose; a call
  that fails over to another target stays counted against the first one.

plugins/README.md is the reference.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger

from b2bua.features import CallFeature
from b2bua.interfaces import CallInfo, Reject, Routes, Target
from b2bua.plugin_options import (
    check_known_keys,
    normalize_host,
    option,
    subkey,
    table_array,
)
from b2bua.sip import URI, Request, SIPParseError, parse_uri

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext

__all__ = ["Admission", "Bucket", "Group", "Limit", "make_plugin", "parse_admission"]

REJECT_KEYS = ("status", "reason", "retry_after")
LIMIT_KEYS = ("max_calls", "max_cps", "burst", *REJECT_KEYS)
GROUP_KEYS = ("name", "targets", *LIMIT_KEYS)
SCOPES = ("global", "per_source", "per_destination")
PLUGIN_KEYS = (*SCOPES, "group", *REJECT_KEYS)
DEFAULT_RETRY_AFTER = 5
#: Sources and destinations tracked before idle entries are swept out.
SWEEP_AT = 1024

_log = Logger(namespace="b2bua.plugins.admission")


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit: at most ``max_calls`` at once and ``max_cps`` new calls a second
    (bursts of ``burst``); None means no such limit.  ``reject`` is the refusal."""

    max_calls: int | None
    max_cps: float | None
    burst: float
    reject: Reject
    name: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    """A named destination group: targets sharing one limit.

    ``hosts`` are (host, port) pairs, host normalised; port None matches any port.
    """

    name: str
    hosts: tuple[tuple[str, int | None], ...]
    limit: Limit

    def contains(self, host: str, port: int) -> bool:
        """True when the target ``host:port`` is one of the group's."""
        return any(h == host and (p is None or p == port) for h, p in self.hosts)


@dataclass(slots=True)
class Bucket:
    """A token bucket refilled at ``rate`` tokens a second, holding at most ``burst``."""

    rate: float
    burst: float
    tokens: float
    last: float

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last refill.

        ``now`` may be a little older than ``last`` (a call routed after a later
        call): nothing is added then.  A clock stepped back by more than a minute
        restarts the count from ``now``.
        """
        elapsed = now - self.last
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.last = now
        elif elapsed < -60:
            self.last = now

    def full_at(self, now: float) -> bool:
        """True when the bucket is full at ``now`` (forgetting it changes nothing)."""
        return self.tokens + max(0.0, now - self.last) * self.rate >= self.burst


class Slot:
    """What one limited thing (everything, a source, a destination) uses now."""

    __slots__ = ("bucket", "calls")

    def __init__(self, limit: Limit, now: float) -> None:
        self.calls = 0
        self.bucket = (
            Bucket(limit.max_cps, limit.burst, limit.burst, now) if limit.max_cps else None
        )

    def admits(self, limit: Limit, now: float) -> bool:
        """True when one more call fits (refills the bucket; takes nothing)."""
        if limit.max_calls is not None and self.calls >= limit.max_calls:
            return False
        bucket = self.bucket
        if bucket is None:
            return True
        bucket.refill(now)
        return bucket.tokens >= 1

    def take(self) -> None:
        """Count one more call (after :meth:`admits` said yes)."""
        self.calls += 1
        if self.bucket is not None:
            self.bucket.tokens -= 1

    def idle(self, now: float) -> bool:
        """No call and a full bucket: the slot can be forgotten."""
        return self.calls == 0 and (self.bucket is None or self.bucket.full_at(now))


@dataclass(slots=True)
class _Table:
    """Slots by key (source address, destination) under one limit each."""

    slots: dict[str, Slot] = field(default_factory=dict)
    sweep_at: int = SWEEP_AT

    def slot(self, key: str, limit: Limit, now: float) -> Slot:
        slot = self.slots.get(key)
        if slot is None:
            if len(self.slots) >= self.sweep_at:
                self.sweep(now)
            slot = self.slots[key] = Slot(limit, now)
        return slot

    def sweep(self, now: float) -> None:
        """Forget idle slots; sweep again when the table has doubled."""
        for key in [k for k, s in self.slots.items() if s.idle(now)]:
            del self.slots[key]
        self.sweep_at = max(SWEEP_AT, 2 * len(self.slots))


#: What a call holds: (table or None for the global slot, key, slot).
_Held = list[tuple["_Table | None", str, Slot]]


class Admission(CallFeature):
    """ICallFeature refusing calls over the configured limits (see the module doc)."""

    def __init__(
        self,
        everything: Limit | None = None,
        per_source: Limit | None = None,
        per_destination: Limit | None = None,
        groups: Sequence[Group] = (),
        key: str = "admission",
    ) -> None:
        self.everything = everything
        self.per_source = per_source
        self.per_destination = per_destination
        self.groups = tuple(groups)
        #: the CallInfo.data key of what a call holds (one per plugin instance)
        self.key = key
        self._global = Slot(everything, 0.0) if everything is not None else None
        self._sources = _Table()
        self._destinations = _Table()
        self._groups = {g.name: Slot(g.limit, 0.0) for g in self.groups}
        #: calls refused so far, by limit ("global", "per_source", a group name...)
        self.refused: dict[str, int] = {}

    # -- what is in use, for tests and statistics ------------------------------------
    @property
    def calls(self) -> int:
        """Calls counted against the global limit now."""
        return self._global.calls if self._global is not None else 0

    def source_calls(self, source: str) -> int:
        """Calls from ``source`` (an IP address) counted now."""
        slot = self._sources.slots.get(normalize_host(source))
        return slot.calls if slot is not None else 0

    def destination_calls(self, name: str) -> int:
        """Calls counted now against a group (by name) or a ``host:port`` destination."""
        slot = self._groups.get(name) or self._destinations.slots.get(name)
        return slot.calls if slot is not None else 0

    # -- hooks ---------------------------------------------------------------------
    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        """Count the call against the global and per-source limits, or refuse it."""
        if self._global is None and self.per_source is None:
            return None
        now = call.started
        wanted: _Held = []
        if self._global is not None:
            assert self.everything is not None
            if not self._global.admits(self.everything, now):
                return self._refuse(self.everything, call)
            wanted.append((None, "", self._global))
        if self.per_source is not None:
            key = normalize_host(call.context.source.host)
            slot = self._sources.slot(key, self.per_source, now)
            if not slot.admits(self.per_source, now):
                return self._refuse(self.per_source, call)
            wanted.append((self._sources, key, slot))
        self._hold(call, wanted)
        return None

    def call_routed(self, call: CallInfo, routes: Routes) -> Reject | None:
        """Count the call against its first target's group or destination, or refuse it."""
        if not self.groups and self.per_destination is None:
            return None
        host, port = _destination(routes.targets[0])
        now = call.started
        group = next((g for g in self.groups if g.contains(host, port)), None)
        if group is not None:
            slot = self._groups[group.name]
            if not slot.admits(group.limit, now):
                return self._refuse(group.limit, call)
            self._hold(call, [(None, group.name, slot)])
            return None
        limit = self.per_destination
        if limit is None:
            return None
        key = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        slot = self._destinations.slot(key, limit, now)
        if not slot.admits(limit, now):
            return self._refuse(limit, call)
        self._hold(call, [(self._destinations, key, slot)])
        return None

    def call_ended(self, call: CallInfo, reason: str) -> None:
        """Release what the call held (once: the record is taken out of the call)."""
        held = cast("_Held | None", call.data.pop(self.key, None))
        if not held:
            return
        for table, key, slot in held:
            slot.calls -= 1
            idle = slot.calls == 0 and slot.bucket is None
            if idle and table is not None and table.slots.get(key) is slot:
                del table.slots[key]

    # -- helpers -------------------------------------------------------------------
    def _hold(self, call: CallInfo, wanted: _Held) -> None:
        for _table, _key, slot in wanted:
            slot.take()
        held = cast("_Held | None", call.data.get(self.key))
        if held is None:
            call.data[self.key] = wanted
        else:
            held.extend(wanted)

    def _refuse(self, limit: Limit, call: CallInfo) -> Reject:
        self.refused[limit.name] = self.refused.get(limit.name, 0) + 1
        _log.debug(
            "Call {call_id} from {source} over the {limit} limit: {status}",
            call_id=call.call_id,
            source=str(call.context.source),
            limit=limit.name,
            status=limit.reject.status,
        )
        return limit.reject

    def __repr__(self) -> str:
        scopes = [n for n, v in zip(SCOPES, self._scopes(), strict=True) if v is not None]
        return f"<Admission {'/'.join(scopes) or 'no scope'}, {len(self.groups)} groups>"

    def _scopes(self) -> tuple[Limit | None, ...]:
        return (self.everything, self.per_source, self.per_destination)


# -- options -----------------------------------------------------------------------


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> Admission:
    """The plugin entry point: validate the options and build the feature."""
    return parse_admission(options, context)


def parse_admission(options: Mapping[str, Any], context: PluginContext) -> Admission:
    """Validate the plugin's options; ConfigError (via context) on any mistake."""
    check_known_keys(options, "", PLUGIN_KEYS, context)
    default = _refusal(options, "", _Refusal(), context)
    scopes: dict[str, Limit | None] = {}
    for scope in SCOPES:
        table = options.get(scope)
        if table is None:
            scopes[scope] = None
            continue
        if not isinstance(table, dict):
            raise context.error(scope, f"must be a table ([plugin.{scope}])")
        check_known_keys(table, scope, LIMIT_KEYS, context)
        scopes[scope] = _limit(table, scope, scope, default, context)
    groups: list[Group] = []
    entries = table_array(options, "", "group", context)
    if entries is not None:
        names: set[str] = set()
        for i, entry in enumerate(entries):
            group = _group(entry, f"group[{i}]", default, context)
            if group.name in names:
                raise context.error(f"group[{i}].name", f"a second group named {group.name!r}")
            names.add(group.name)
            groups.append(group)
    if all(v is None for v in scopes.values()) and not groups:
        raise context.error(
            "",
            "sets no limit: add [plugin.global], [plugin.per_source],"
            " [plugin.per_destination] or [[plugin.group]] with max_calls or max_cps",
        )
    return Admission(
        scopes["global"],
        scopes["per_source"],
        scopes["per_destination"],
        groups,
        key=f"admission:{context.key}",
    )


def _group(entry: object, key: str, default: _Refusal, context: PluginContext) -> Group:
    if not isinstance(entry, dict):
        raise context.error(key, "must be a table ([[plugin.group]])")
    check_known_keys(entry, key, GROUP_KEYS, context)
    name = option(entry, key, "name", str, context)
    if not name:
        raise context.error(f"{key}.name" if name == "" else key, "needs a non-empty 'name'")
    targets = entry.get("targets")
    if not isinstance(targets, list) or not targets:
        raise context.error(
            f"{key}.targets" if "targets" in entry else key,
            "needs 'targets': a non-empty list of hosts, host:port or SIP URIs",
        )
    hosts = tuple(_host_port(t, f"{key}.targets[{i}]", context) for i, t in enumerate(targets))
    return Group(name, hosts, _limit(entry, key, name, default, context))


def _limit(
    table: Mapping[str, Any], key: str, name: str, default: _Refusal, context: PluginContext
) -> Limit:
    max_calls = option(table, key, "max_calls", int, context)
    if max_calls is not None and max_calls < 0:
        raise context.error(f"{key}.max_calls", "must not be negative (0 refuses every call)")
    max_cps = option(table, key, "max_cps", float, context)
    if max_cps is not None and not (max_cps > 0 and math.isfinite(max_cps)):
        raise context.error(f"{key}.max_cps", "must be a positive number of calls a second")
    if max_calls is None and max_cps is None:
        raise context.error(key, "needs 'max_calls' or 'max_cps' (or both)")
    burst = option(table, key, "burst", float, context)
    if burst is not None:
        if max_cps is None:
            raise context.error(f"{key}.burst", "only a limit with 'max_cps' takes it")
        if not (burst >= 1 and math.isfinite(burst)):
            raise context.error(f"{key}.burst", "must be a number of calls, at least 1")
    else:
        burst = float(max(1, math.ceil(max_cps))) if max_cps is not None else 0.0
    return Limit(max_calls, max_cps, burst, _refusal(table, key, default, context).reject, name)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """``status``, ``reason`` and ``retry_after`` as configured (0: no Retry-After)."""

    status: int = 503
    reason: str | None = None
    retry_after: int = DEFAULT_RETRY_AFTER

    @property
    def reject(self) -> Reject:
        after = self.retry_after
        return Reject(self.status, self.reason, (("Retry-After", str(after)),) if after else ())


def _refusal(
    table: Mapping[str, Any], key: str, inherited: _Refusal, context: PluginContext
) -> _Refusal:
    """The refusal of a table: its own keys, the others inherited one by one."""

    status = option(table, key, "status", int, context)
    if status is not None and not 400 <= status <= 699:
        raise context.error(subkey(key, "status"), "must be a final error status (400 to 699)")
    reason = option(table, key, "reason", str, context)
    if reason is not None and (not reason or not reason.isprintable()):
        raise context.error(subkey(key, "reason"), "must be a non-empty line of text")
    after = option(table, key, "retry_after", int, context)
    if after is not None and not 0 <= after <= 2**31 - 1:
        raise context.error(
            subkey(key, "retry_after"), "must be a whole number of seconds, 0 or more"
        )
    return _Refusal(
        inherited.status if status is None else status,
        inherited.reason if reason is None else reason,
        inherited.retry_after if after is None else after,
    )


def _host_port(value: object, key: str, context: PluginContext) -> tuple[str, int | None]:
    """A group entry: ``host``, ``host:port``, ``[v6]:port`` or a SIP URI."""
    if not isinstance(value, str) or not value:
        raise context.error(key, f"must be a host, host:port or SIP URI, not {value!r}")
    text = value if value.startswith(("sip:", "sips:")) else f"sip:{_bracketed(value)}"
    try:
        uri = parse_uri(text)
    except SIPParseError as e:
        raise context.error(
            key, f"{value!r} is not a host, host:port or SIP URI: {e.reason}"
        ) from None
    if uri.user is not None or uri.headers or (uri.params and not value.startswith("sip")):
        raise context.error(key, f"{value!r} is not a host, host:port or SIP URI")
    if value.startswith(("sip:", "sips:")):
        return _destination(Target(uri))
    return normalize_host(uri.host), uri.port


def _bracketed(value: str) -> str:
    """A bare IPv6 address in brackets, so the port is not read from it."""
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return value
    return f"[{value}]"


def _destination(target: Target) -> tuple[str, int]:
    """The (host, port) a target is counted under: its URI's host and port, the
    default port (5060, 5061 for sips: or TLS) when it has none."""
    uri: URI = target.uri
    port = uri.port
    if port is None:
        tls = uri.scheme == "sips" or (target.transport or uri.transport or "").lower() == "tls"
        port = 5061 if tls else 5060
    return normalize_host(uri.host), port
