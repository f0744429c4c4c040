"""Dispatcher: load balancing over groups of destinations (PBXs), with OPTIONS probing.

Configured as::

    [[plugin]]
    module = "dispatcher"
    default_group = "pbx"       # calls no [[plugin.rule]] matches go here (optional)
    probe_interval = 2.0        # OPTIONS every 2 s to every destination

    [[plugin.group]]            # one table per group of destinations
    name = "pbx"
    algorithm = "round-robin"   # weighted, hash-call-id, hash-caller, priority

    [[plugin.group.destination]]
    uri = "sip:127.0.0.1:5070"

    [[plugin.group.destination]]
    uri = "sip:127.0.0.1:5071"

    [[plugin.rule]]             # optional: which calls use which group
    user_prefix = "9"           # match keys as in static_routes
    group = "pbx"

One object is the router (:class:`IRouter`: it picks the group, then the
destinations), a call feature (:class:`ICallFeature`: a target that times out or
cannot be reached during a call counts as a failed probe) and a plugin service
(:class:`IPluginService`: the OPTIONS probes).

The decision for a call is ``Routes`` with the chosen destination first and the
group's other live destinations after it, in the algorithm's order, as failover.
Destinations marked down are left out; when every destination of the group is
down the call gets 503 (configurable: or the next router is asked, or the down
destinations are tried anyway).

A destination is marked down after ``failure_threshold`` consecutive failures
(probes not answered with an accepted code within ``probe_timeout``, and calls to
it that time out or hit a transport error) and up again after
``recovery_threshold`` consecutive successful probes, so one lost or one
answered probe never flips it.  Transitions are logged (namespace
``b2bua.dispatcher``); :meth:`Dispatcher.state` gives every destination's state.
plugins/README.md is the reference.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from b2bua.features import CallFeature
from b2bua.interfaces import (
    CallInfo,
    IPluginService,
    IRouter,
    Reject,
    RequestContext,
    Routes,
    Target,
)
from b2bua.plugin_options import (
    IPAddress,
    IPNetwork,
    check_known_keys,
    in_network,
    ip_address,
    match_keys,
    normalize_host,
    option,
    seconds,
    subkey,
    table_array,
)
from b2bua.sip import URI, Request, Response, SIPParseError, parse_uri

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from b2bua.plugin import PluginContext

__all__ = [
    "ALGORITHMS",
    "Codes",
    "Destination",
    "Dispatcher",
    "Group",
    "Rule",
    "Settings",
    "make_plugin",
    "parse_dispatcher",
]


ALGORITHMS = ("round-robin", "weighted", "hash-call-id", "hash-caller", "priority")
#: Algorithms that use a destination's ``weight`` (the others reject the key).
WEIGHTED = ("weighted", "hash-call-id", "hash-caller")
WHEN_ALL_DOWN = ("reject", "pass", "try")
TRANSPORTS = ("udp", "tcp", "tls")

#: Keys valid at the plugin level (defaults for every group) and in a group.
SETTING_KEYS = (
    "probe_interval",
    "probe_timeout",
    "failure_threshold",
    "recovery_threshold",
    "accept_codes",
    "call_failure_codes",
    "when_all_down",
    "reject_status",
    "retry_after",
    "max_targets",
    "timeout",
    "ring_timeout",
    "transport",
)
PLUGIN_KEYS = ("group", "rule", "default_group", *SETTING_KEYS)
GROUP_KEYS = ("name", "algorithm", "destination", *SETTING_KEYS)
DESTINATION_KEYS = ("uri", "weight", "priority")
MATCH_KEYS = ("user_prefix", "domain", "source", "source_port")
RULE_KEYS = (*MATCH_KEYS, "group")

_log = Logger(namespace="b2bua.dispatcher")


# -- configuration values --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Codes:
    """A set of SIP status codes: single codes, classes ("2xx") or any final response."""

    codes: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()
    any: bool = False

    def __contains__(self, status: object) -> bool:
        if not isinstance(status, int):
            return False
        return self.any or status in self.codes or status // 100 in self.classes

    def __str__(self) -> str:
        if self.any:
            return "any"
        parts = [f"{c}xx" for c in sorted(self.classes)] + [str(c) for c in sorted(self.codes)]
        return ", ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Settings:
    """A group's probing, failure and target settings (plugin-level defaults, group overrides).

    ``probe_interval`` 0 turns probing off: destinations are then always up.
    ``probe_timeout`` None means "the interval".
    """

    probe_interval: float = 5.0
    probe_timeout: float | None = None
    failure_threshold: int = 2
    recovery_threshold: int = 2
    accept_codes: Codes = Codes(classes=frozenset({2}))
    call_failure_codes: Codes = Codes(codes=frozenset({408}))
    when_all_down: str = "reject"
    reject_status: int = 503
    retry_after: int = 0
    max_targets: int | None = None
    timeout: float | None = None
    ring_timeout: float | None = None
    transport: str | None = None

    @property
    def probing(self) -> bool:
        """True when destinations are probed (and can be marked down)."""
        return self.probe_interval > 0

    @property
    def deadline(self) -> float:
        """Seconds a probe may take before it counts as failed."""
        return self.probe_timeout if self.probe_timeout is not None else self.probe_interval


@dataclass(eq=False, slots=True)
class _Probe:
    """One OPTIONS probe in flight."""

    deadline: IDelayedCall | None = None
    deferred: Deferred[Response] | None = None


@dataclass(eq=False, slots=True)
class Destination:
    """One destination of a group, with its health state.

    ``failures`` and ``successes`` count consecutive results (one resets the
    other); ``up`` changes only when one of them reaches its threshold.
    """

    group: Group
    uri: URI
    weight: int = 1
    priority: int = 0
    target: Target = field(init=False)
    probe_uri: URI = field(init=False)
    up: bool = True
    failures: int = 0
    successes: int = 0
    probes: int = 0
    probe_failures: int = 0
    call_failures: int = 0
    last_result: str = "not probed yet"
    last_checked: float | None = None
    since: float | None = None
    current: int = 0  # smooth weighted round-robin state
    salt: bytes = b""
    pending: _Probe | None = None

    def __post_init__(self) -> None:
        settings = self.group.settings
        self.target = Target(
            self.uri,
            transport=settings.transport,
            timeout=settings.timeout,
            ring_timeout=settings.ring_timeout,
        )
        transport = settings.transport
        self.probe_uri = (
            self.uri.with_params(transport=transport.lower()) if transport else self.uri
        )
        self.salt = str(self.uri).encode("utf-8")

    def snapshot(self) -> dict[str, Any]:
        """The destination's state as plain data (for tests, logs and a management API)."""
        return {
            "uri": str(self.uri),
            "up": self.up,
            "failures": self.failures,
            "successes": self.successes,
            "probes": self.probes,
            "probe_failures": self.probe_failures,
            "call_failures": self.call_failures,
            "last_result": self.last_result,
            "last_checked": self.last_checked,
            "since": self.since,
            "weight": self.weight,
            "priority": self.priority,
        }

    def __repr__(self) -> str:
        return f"<Destination {self.uri} in {self.group.name} {'up' if self.up else 'DOWN'}>"


@dataclass(eq=False, slots=True)
class Group:
    """A named group of destinations and the algorithm that orders them for a call."""

    name: str
    algorithm: str
    settings: Settings
    destinations: tuple[Destination, ...] = ()
    counter: int = 0
    loop: LoopingCall | None = None

    @property
    def reject(self) -> Reject:
        """The answer when every destination is down (``when_all_down = "reject"``)."""
        s = self.settings
        headers = (("Retry-After", str(s.retry_after)),) if s.retry_after > 0 else ()
        return Reject(s.reject_status, None, headers)

    def live(self) -> list[Destination]:
        """The destinations that are up, in configuration order."""
        return [d for d in self.destinations if d.up]

    def order(self, candidates: list[Destination], request: Request) -> list[Destination]:
        """``candidates`` in the order to try them: the algorithm's choice first."""
        if len(candidates) <= 1:
            return candidates
        algorithm = self.algorithm
        if algorithm == "round-robin":
            k = self.counter % len(candidates)
            self.counter += 1
            return candidates[k:] + candidates[:k]
        if algorithm == "weighted":
            return _smooth_weighted(candidates)
        if algorithm == "priority":
            best = min(d.priority for d in candidates)
            tier = [d for d in candidates if d.priority == best]
            k = self.counter % len(tier)
            self.counter += 1
            rest = sorted((d for d in candidates if d.priority != best), key=_priority)
            return tier[k:] + tier[:k] + rest
        return _rendezvous(candidates, _hash_key(algorithm, request))


def _priority(d: Destination) -> int:
    return d.priority


def _weight_desc(d: Destination) -> int:
    return -d.weight


def _smooth_weighted(candidates: list[Destination]) -> list[Destination]:
    """Smooth weighted round-robin (as nginx): exact ratios, picks spread evenly.

    The chosen destination comes first, the others follow by weight, heaviest first.
    """
    total = 0
    best: Destination | None = None
    for d in candidates:
        if d.weight > 0:  # weight 0: a backup, never chosen while another is live
            d.current += d.weight
            total += d.weight
            if best is None or d.current > best.current:
                best = d
    if best is None:  # only weight-0 (backup) destinations are left
        return sorted(candidates, key=_weight_desc)
    best.current -= total
    return [best, *sorted((d for d in candidates if d is not best), key=_weight_desc)]


def _hash_key(algorithm: str, request: Request) -> bytes:
    try:
        if algorithm == "hash-caller":
            uri = request.from_.uri
            host = uri.host.lower()
            key = f"{uri.user}@{host}" if uri.user is not None else host
        else:
            key = request.call_id
    except SIPParseError:
        key = ""
    return key.encode("utf-8", "surrogateescape")


def _rendezvous(candidates: list[Destination], key: bytes) -> list[Destination]:
    """Weighted rendezvous (highest random weight) hashing.

    Every destination gets a score from a hash of (key, destination); the order is
    by score.  The same key gives the same order, and a destination going down
    moves only its own keys (spread over the others) instead of reshuffling all.
    """

    def score(d: Destination) -> float:
        if d.weight <= 0:
            return 0.0
        digest = hashlib.blake2b(key + b"\0" + d.salt, digest_size=8).digest()
        u = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)  # in (0, 1)
        return d.weight / -math.log(u)

    return sorted(candidates, key=score, reverse=True)


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[plugin.rule]]``: which calls go to ``group`` (every given key must match)."""

    group: str
    user_prefix: str | None = None
    domain: str | None = None
    source: IPNetwork | None = None
    source_port: int | None = None

    def matches(
        self, user: str | None, host: str | None, address: IPAddress | None, port: int
    ) -> bool:
        """True when every match key of this rule matches."""
        prefix = self.user_prefix
        if prefix and (user is None or not user.startswith(prefix)):
            return False
        if self.domain is not None and host != self.domain:
            return False
        if self.source is not None and not in_network(address, self.source):
            return False
        return self.source_port is None or port == self.source_port


# -- the plugin ----------------------------------------------------------------------------


@implementer(IRouter, IPluginService)
class Dispatcher(CallFeature):
    """Router, call feature and probing service over groups of destinations."""

    def __init__(
        self,
        groups: Sequence[Group],
        rules: Sequence[Rule] = (),
        default_group: str | None = None,
    ) -> None:
        self.groups: dict[str, Group] = {g.name: g for g in groups}
        self.rules = tuple(rules)
        self.default_group = default_group
        self._need_host = any(r.domain is not None for r in self.rules)
        self._need_address = any(r.source is not None for r in self.rules)
        self._by_uri: dict[URI, list[Destination]] = {}
        for group in groups:
            for d in group.destinations:
                self._by_uri.setdefault(d.uri, []).append(d)
        self._runtime: Any = None

    # -- IRouter ---------------------------------------------------------------------------
    def route(self, request: Request, context: RequestContext) -> Routes | Reject | None:
        """The chosen group's live destinations in the algorithm's order (see module doc)."""
        group = self.group_for(request, context)
        if group is None:
            return None
        candidates = group.live()
        if not candidates:
            mode = group.settings.when_all_down
            _log.debug("Every destination of {group} is down: {mode}", group=group.name, mode=mode)
            if mode == "pass":
                return None
            if mode == "reject":
                return group.reject
            candidates = list(group.destinations)  # "try": the down ones, in order
        ordered = group.order(candidates, request)
        limit = group.settings.max_targets
        if limit is not None:
            ordered = ordered[:limit]
        return Routes(tuple(d.target for d in ordered))

    def group_for(self, request: Request, context: RequestContext) -> Group | None:
        """The group of the first rule that matches, else the default group, else None."""
        if self.rules:
            ruri = request.request_uri
            host = normalize_host(ruri.host) if self._need_host and ruri.host else None
            address = ip_address(context.source.host) if self._need_address else None
            for rule in self.rules:
                if rule.matches(ruri.user, host, address, context.source.port):
                    return self.groups[rule.group]
        return self.groups[self.default_group] if self.default_group is not None else None

    # -- ICallFeature ----------------------------------------------------------------------
    def target_failed(self, call: CallInfo, target: Target, response: Response) -> None:
        """A call to a destination timed out or could not be sent: count a failure.

        Counted: responses synthesized for a transport error or a timeout (they have
        a ``failure`` attribute), and the statuses in ``call_failure_codes``
        (default 408: the bridge's own "no answer" timeout).  Any other final
        response (486, a PBX's own 503...) shows the destination is alive.
        """
        destinations = self._by_uri.get(target.uri)
        if not destinations:
            return
        synthesized = getattr(response, "failure", None)
        for d in destinations:
            settings = d.group.settings
            if not settings.probing:
                continue
            if synthesized is None and response.status not in settings.call_failure_codes:
                continue
            why = getattr(synthesized, "reason", None) or f"{response.status} {response.reason}"
            d.call_failures += 1
            self._result(d, False, f"call failed: {why}")

    def answered(self, call: CallInfo, response: Response) -> Reject | None:
        """An answered call clears the consecutive failures of its (live) destination."""
        target = call.target
        if target is not None:
            for d in self._by_uri.get(target.uri, ()):
                if d.up:
                    d.failures = 0
        return None

    # -- IPluginService --------------------------------------------------------------------
    def start_plugin(self, runtime: Any) -> None:
        """Probe every group that has probing on, at once and then every interval."""
        self._runtime = runtime
        for group in self.groups.values():
            if not group.settings.probing or group.loop is not None:
                continue
            loop = LoopingCall(self._probe_group, group)
            loop.clock = runtime.clock
            group.loop = loop
            loop.start(group.settings.probe_interval, now=True).addErrback(self._loop_failed, group)
            _log.info(
                "Probing {count} destinations of {group} with OPTIONS every {interval} s",
                count=len(group.destinations),
                group=group.name,
                interval=group.settings.probe_interval,
            )

    def stop_plugin(self) -> None:
        """Stop probing; probes in flight are abandoned."""
        for group in self.groups.values():
            loop, group.loop = group.loop, None
            if loop is not None and loop.running:
                loop.stop()
            for d in group.destinations:
                probe, d.pending = d.pending, None
                if probe is not None:
                    _abandon(probe)
        self._runtime = None

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, list[dict[str, Any]]]:
        """Every destination's state, by group, in configuration order."""
        return {
            name: [d.snapshot() for d in group.destinations] for name, group in self.groups.items()
        }

    def destination(self, uri: str, group: str | None = None) -> Destination:
        """The destination with this URI (in ``group``, else the first group that has it)."""
        wanted = parse_uri(uri)
        for d in self._by_uri.get(wanted, ()):
            if group is None or d.group.name == group:
                return d
        raise KeyError(uri)

    def __repr__(self) -> str:
        return f"<Dispatcher with {len(self.groups)} groups, {len(self.rules)} rules>"

    # -- probing ---------------------------------------------------------------------------
    def _probe_group(self, group: Group) -> None:
        for d in group.destinations:
            try:
                self._probe(d)
            except Exception:
                _log.failure("Probing {uri} failed", uri=str(d.uri))

    def _probe(self, d: Destination) -> None:
        runtime = self._runtime
        if runtime is None:
            return
        if d.pending is not None:  # the previous probe's deadline is due now
            self._timed_out(d, d.pending)
        probe = _Probe()
        d.pending = probe
        d.probes += 1
        probe.deadline = runtime.clock.callLater(
            d.group.settings.deadline, self._timed_out, d, probe
        )
        try:
            deferred: Deferred[Response] = runtime.request("OPTIONS", d.probe_uri)
        except Exception as e:
            self._settle(d, probe, False, f"not sent: {type(e).__name__}: {e}")
            return
        probe.deferred = deferred
        deferred.addCallbacks(
            self._probe_answered,
            self._probe_error,
            callbackArgs=(d, probe),
            errbackArgs=(d, probe),
        )

    def _probe_answered(self, response: Response, d: Destination, probe: _Probe) -> None:
        synthesized = getattr(response, "failure", None)
        status = response.status
        if synthesized is not None:
            ok, text = False, f"{status} {getattr(synthesized, 'reason', '') or response.reason}"
        else:
            ok, text = status in d.group.settings.accept_codes, f"{status} {response.reason}"
        if d.pending is probe:
            self._settle(d, probe, ok, text)

    def _probe_error(self, failure: Failure, d: Destination, probe: _Probe) -> None:
        if d.pending is probe:  # not one we cancelled ourselves
            self._settle(d, probe, False, f"error: {failure.getErrorMessage()}")

    def _timed_out(self, d: Destination, probe: _Probe) -> None:
        if d.pending is probe:
            self._settle(d, probe, False, f"no final response within {d.group.settings.deadline} s")
            _abandon(probe)

    def _settle(self, d: Destination, probe: _Probe, ok: bool, text: str) -> None:
        d.pending = None
        _cancel(probe.deadline)
        d.probe_failures += not ok
        self._result(d, ok, f"OPTIONS: {text}")

    def _loop_failed(self, failure: Failure, group: Group) -> None:
        _log.failure("Probing group {group} stopped", failure, group=group.name)

    # -- health ----------------------------------------------------------------------------
    def _result(self, d: Destination, ok: bool, text: str) -> None:
        """Count one probe or call result; change ``up`` when a threshold is reached."""
        settings = d.group.settings
        d.last_result = text
        d.last_checked = self._now()
        if ok:
            d.failures = 0
            d.successes += 1
            if not d.up and d.successes >= settings.recovery_threshold:
                self._mark(d, True, f"{d.successes} successful probes in a row ({text})")
        else:
            d.successes = 0
            d.failures += 1
            if d.up and d.failures >= settings.failure_threshold:
                self._mark(d, False, f"{d.failures} failures in a row (last: {text})")

    def _mark(self, d: Destination, up: bool, why: str) -> None:
        d.up = up
        d.since = self._now()
        d.current = 0
        group = d.group
        if up:
            _log.info(
                "Dispatcher group {group}: {uri} is UP again: {why}",
                group=group.name,
                uri=str(d.uri),
                why=why,
                destination=str(d.uri),
                up=True,
            )
            return
        _log.warn(
            "Dispatcher group {group}: {uri} is DOWN: {why}",
            group=group.name,
            uri=str(d.uri),
            why=why,
            destination=str(d.uri),
            up=False,
        )
        if not any(other.up for other in group.destinations):
            _log.warn(
                "Dispatcher group {group}: every destination is down ({mode})",
                group=group.name,
                mode=group.settings.when_all_down,
            )

    def _now(self) -> float | None:
        runtime = self._runtime
        return float(runtime.clock.seconds()) if runtime is not None else None


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()


def _abandon(probe: _Probe) -> None:
    _cancel(probe.deadline)
    if probe.deferred is not None:
        # Also when it has fired but waits on an inner Deferred (the transaction's):
        # cancel() cancels that one.  A response arriving later finds it fired.
        probe.deferred.cancel()


# -- options -------------------------------------------------------------------------------


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> Dispatcher:
    """The plugin entry point: validate the options and build the dispatcher."""
    return parse_dispatcher(options, context)


def parse_dispatcher(options: Mapping[str, Any], context: PluginContext) -> Dispatcher:
    """Validate the plugin's options into a Dispatcher; ConfigError (via context) on mistakes."""
    check_known_keys(options, "", PLUGIN_KEYS, context)
    defaults = _settings(options, "", context)
    entries = table_array(options, "", "group", context, required=True)
    groups: list[Group] = []
    for i, entry in enumerate(entries):
        group = _group(entry, f"group[{i}]", defaults, context)
        if any(g.name == group.name for g in groups):
            raise context.error(f"group[{i}].name", f"a group named {group.name!r} exists already")
        groups.append(group)
    names = [g.name for g in groups]

    def known_group(value: object, key: str) -> str:
        if not isinstance(value, str):
            raise context.error(key, f"must be a group name (a string), not {value!r}")
        if value not in names:
            raise context.error(key, f"no group named {value!r} (groups: {', '.join(names)})")
        return value

    default = options.get("default_group")
    if default is not None:
        default = known_group(default, "default_group")
    rules: list[Rule] = []
    rule_entries = table_array(options, "", "rule", context)
    if rule_entries is not None:
        for i, entry in enumerate(rule_entries):
            key = f"rule[{i}]"
            if not isinstance(entry, dict):
                raise context.error(key, "must be a table ([[plugin.rule]])")
            check_known_keys(entry, key, RULE_KEYS, context)
            if "group" not in entry:
                raise context.error(key, "needs 'group': the group its calls go to")
            group_name = known_group(entry["group"], f"{key}.group")
            rules.append(_rule(entry, key, group_name, context))
    elif default is None:
        raise context.error(
            "",
            "needs 'default_group' or [[plugin.rule]] tables: which calls go to which group",
        )
    return Dispatcher(groups, rules, default)


def _group(entry: object, key: str, defaults: dict[str, Any], context: PluginContext) -> Group:
    if not isinstance(entry, dict):
        raise context.error(key, "must be a table ([[plugin.group]])")
    check_known_keys(entry, key, GROUP_KEYS, context)
    name = option(entry, key, "name", str, context)
    if name is None:
        raise context.error(key, "needs 'name'")
    if not name or not name.isprintable():
        raise context.error(f"{key}.name", "must be a non-empty line of text")
    algorithm = option(entry, key, "algorithm", str, context) or "round-robin"
    if algorithm not in ALGORITHMS:
        raise context.error(f"{key}.algorithm", f"must be one of {', '.join(ALGORITHMS)}")
    given = _settings(entry, key, context)
    settings = Settings(**{**defaults, **given})
    if settings.probing and settings.deadline > settings.probe_interval:
        where = f"{key}.probe_timeout" if "probe_timeout" in given else "probe_timeout"
        if "probe_interval" in given and "probe_timeout" not in given:
            where = f"{key}.probe_interval"
        raise context.error(
            where,
            f"probe_timeout ({settings.deadline} s) must not exceed probe_interval"
            f" ({settings.probe_interval} s)",
        )
    group = Group(name, algorithm, settings)
    entries = entry.get("destination")
    if entries is None:
        raise context.error(key, "needs at least one destination ([[plugin.group.destination]])")
    if not isinstance(entries, list) or not entries:
        raise context.error(
            f"{key}.destination",
            "must be a non-empty array of tables ([[plugin.group.destination]])",
        )
    destinations: list[Destination] = []
    for i, item in enumerate(entries):
        d = _destination(item, f"{key}.destination[{i}]", group, context)
        if any(other.uri == d.uri for other in destinations):
            raise context.error(f"{key}.destination[{i}].uri", f"{d.uri} is in this group already")
        destinations.append(d)
    if algorithm in WEIGHTED and not any(d.weight > 0 for d in destinations):
        raise context.error(key, "needs a destination with a weight above 0")
    group.destinations = tuple(destinations)
    return group


def _destination(item: object, key: str, group: Group, context: PluginContext) -> Destination:
    if not isinstance(item, dict):
        raise context.error(key, "must be a table ([[plugin.group.destination]])")
    check_known_keys(item, key, DESTINATION_KEYS, context)
    text = option(item, key, "uri", str, context)
    if text is None:
        raise context.error(key, "needs 'uri' (a SIP URI)")
    uri = _sip_uri(text, f"{key}.uri", context)
    weight = option(item, key, "weight", int, context)
    if weight is not None:
        if group.algorithm not in WEIGHTED:
            raise context.error(
                f"{key}.weight",
                f"only algorithms {', '.join(WEIGHTED)} use weights"
                f" (this group: {group.algorithm})",
            )
        if weight < 0:
            raise context.error(f"{key}.weight", "must not be negative (0: only for failover)")
    priority = option(item, key, "priority", int, context)
    if priority is not None and group.algorithm != "priority":
        raise context.error(
            f"{key}.priority",
            f'only algorithm "priority" uses priorities (this group: {group.algorithm})',
        )
    return Destination(group, uri, 1 if weight is None else weight, priority or 0)


def _settings(table: Mapping[str, Any], key: str, context: PluginContext) -> dict[str, Any]:
    """The setting keys present in ``table``, validated (Settings field names)."""
    out: dict[str, Any] = {}
    interval = option(table, key, "probe_interval", float, context)
    if interval is not None:
        if interval < 0:
            raise context.error(
                subkey(key, "probe_interval"), "must not be negative (0: no probing)"
            )
        out["probe_interval"] = interval
    for name in ("probe_timeout", "timeout"):
        value = seconds(table, key, name, context)
        if value is not None:
            out[name] = value
    ring = seconds(table, key, "ring_timeout", context, zero_disables=True)
    if ring is not None:
        out["ring_timeout"] = ring
    for name in ("failure_threshold", "recovery_threshold", "max_targets"):
        count = option(table, key, name, int, context)
        if count is not None:
            if count < 1:
                raise context.error(subkey(key, name), "must be at least 1")
            out[name] = count
    for name, empty_ok in (("accept_codes", False), ("call_failure_codes", True)):
        if name in table:
            out[name] = _codes(table[name], subkey(key, name), empty_ok, context)
    mode = option(table, key, "when_all_down", str, context)
    if mode is not None:
        if mode not in WHEN_ALL_DOWN:
            raise context.error(
                subkey(key, "when_all_down"), f"must be one of {', '.join(WHEN_ALL_DOWN)}"
            )
        out["when_all_down"] = mode
    status = option(table, key, "reject_status", int, context)
    if status is not None:
        if not 400 <= status <= 699:
            raise context.error(
                subkey(key, "reject_status"), "must be a final error status (400 to 699)"
            )
        out["reject_status"] = status
    retry = option(table, key, "retry_after", int, context)
    if retry is not None:
        if retry < 0:
            raise context.error(subkey(key, "retry_after"), "must not be negative (0: no header)")
        out["retry_after"] = retry
    transport = option(table, key, "transport", str, context)
    if transport is not None:
        if transport.lower() not in TRANSPORTS:
            raise context.error(subkey(key, "transport"), f"must be one of {', '.join(TRANSPORTS)}")
        out["transport"] = transport.upper()
    return out


def _codes(value: object, key: str, empty_ok: bool, context: PluginContext) -> Codes:
    if not isinstance(value, list) or (not value and not empty_ok):
        raise context.error(
            key,
            "must be a " + ("" if empty_ok else "non-empty ")
            + 'list of status codes (200 to 699), classes ("2xx") or "any"',
        )  # fmt: skip
    codes: set[int] = set()
    classes: set[int] = set()
    for i, item in enumerate(value):
        if isinstance(item, int) and not isinstance(item, bool) and 200 <= item <= 699:
            codes.add(item)
        elif isinstance(item, str) and item.lower() == "any":
            return Codes(any=True)
        elif (
            isinstance(item, str)
            and len(item) == 3
            and item[0] in "23456"
            and item[1:].lower() == "xx"
        ):
            classes.add(int(item[0]))
        elif isinstance(item, str) and item.isdigit() and 200 <= int(item) <= 699:
            codes.add(int(item))
        else:
            raise context.error(
                f"{key}[{i}]",
                f'must be a status code (200 to 699), a class ("2xx") or "any", not {item!r}',
            )
    return Codes(frozenset(codes), frozenset(classes))


def _rule(entry: Mapping[str, Any], key: str, group: str, context: PluginContext) -> Rule:
    return Rule(group, *match_keys(entry, key, context))


def _sip_uri(text: str, key: str, context: PluginContext) -> URI:
    try:
        uri = parse_uri(text)
    except SIPParseError as e:
        raise context.error(key, f"{text!r} is not a valid URI: {e.reason}") from None
    if not uri.is_sip:
        raise context.error(key, f"{text!r} is not a sip: or sips: URI")
    return uri
