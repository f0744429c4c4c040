"""Static routes: fixed targets for calls matched by called user, domain and source.

Configured as::

    [[plugin]]
    module = "static_routes"

    [[plugin.route]]            # one table per route; the first that matches wins
    user_prefix = "9"           # match keys: every key given must match
    strip_prefix = true
    targets = ["sip:127.0.0.1:5080"]

A route matches when every match key it has matches (a route with none matches
every call):

- ``user_prefix``: the Request-URI user starts with it ("" matches any call, even
  one whose Request-URI has no user);
- ``domain``: the Request-URI host, case-insensitively (IP addresses compared as
  addresses);
- ``source``: the address the request came from is in this network (CIDR, IPv4 or
  IPv6; a bare address means just that address);
- ``source_port``: the port it came from.

A matching route either sends the call to ``targets`` (SIP URIs, tried in order,
with optional ``timeout``, ``ring_timeout`` and ``transport``) or refuses it with
``reject`` (a status code) and optional ``reason``.  A target URI without a user
part gets the called user: ``sip:127.0.0.1:5070`` for a call to 1001 becomes
``sip:1001@127.0.0.1:5070``; with ``strip_prefix = true`` the matched
``user_prefix`` is removed from it first.  When no route matches the router has
no opinion (None): the next router is asked, and after the last one the call gets
404.  plugins/README.md is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from b2bua.interfaces import IRouter, Reject, RequestContext, Routes, Target
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
    table_array,
)
from b2bua.sip import URI, Request, SIPParseError, parse_uri
from b2bua.sip.bounded import remember

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext

__all__ = ["Route", "StaticRoutes", "make_plugin", "parse_routes"]


PLUGIN_KEYS = ("route",)
#: How many decisions a route keeps (see Route._decisions).
_DECISIONS_MAX = 256
MATCH_KEYS = ("user_prefix", "domain", "source", "source_port")
TARGET_KEYS = (
    "targets",
    "timeout",
    "ring_timeout",
    "transport",
    "strip_prefix",
    "username",
    "password",
)
REJECT_KEYS = ("reject", "reason")
ROUTE_KEYS = MATCH_KEYS + TARGET_KEYS + REJECT_KEYS
TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[plugin.route]]``: what it matches and what it decides.

    Exactly one of ``targets`` (non-empty) and ``reject`` is set.  Targets whose
    URI has no user get the called user (less ``user_prefix`` when
    ``strip_prefix``) when the route is taken.
    """

    user_prefix: str | None = None
    domain: str | None = None
    source: IPNetwork | None = None
    source_port: int | None = None
    targets: tuple[Target, ...] = ()
    strip_prefix: bool = False
    reject: Reject | None = None
    #: the decisions made so far, by called user: a call to a user seen before builds
    #: no targets again (they are immutable, so calls can share them); bounded
    _decisions: dict[str | None, Routes] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def matches(
        self, user: str | None, host: str | None, address: IPAddress | None, port: int
    ) -> bool:
        """True when every match key of this route matches.

        ``host`` is normalised with :func:`normalize_host`; ``address`` is the
        source IP (None when the source is not an IP address).
        """
        prefix = self.user_prefix
        if prefix and (user is None or not user.startswith(prefix)):
            return False
        if self.domain is not None and host != self.domain:
            return False
        if self.source is not None and not in_network(address, self.source):
            return False
        return self.source_port is None or port == self.source_port

    def decide(self, user: str | None) -> Routes | Reject:
        """The decision for a call to ``user`` that this route matched."""
        if self.reject is not None:
            return self.reject
        decisions = self._decisions
        routes = decisions.get(user)
        if routes is None:
            routes = remember(decisions, user, self._targets_for(user), _DECISIONS_MAX)
        return routes

    def _targets_for(self, user: str | None) -> Routes:
        """The targets for a call to ``user``: the called user put in those without one."""
        if user is not None and self.strip_prefix and self.user_prefix:
            user = user[len(self.user_prefix) :] or None
        return Routes(tuple(_for_user(target, user) for target in self.targets))


@implementer(IRouter)
class StaticRoutes:
    """IRouter over a fixed list of routes; the first that matches decides."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._need_host = any(r.domain is not None for r in self.routes)
        self._need_address = any(r.source is not None for r in self.routes)

    def route(self, request: Request, context: RequestContext) -> Routes | Reject | None:
        """The first matching route's decision, or None when no route matches."""
        ruri = request.request_uri
        user = ruri.user
        host = normalize_host(ruri.host) if self._need_host and ruri.host else None
        address = ip_address(context.source.host) if self._need_address else None
        port = context.source.port
        for route in self.routes:
            if route.matches(user, host, address, port):
                return route.decide(user)
        return None

    def __repr__(self) -> str:
        return f"<StaticRoutes with {len(self.routes)} routes>"


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> StaticRoutes:
    """The plugin entry point: validate the options and build the router."""
    return StaticRoutes(parse_routes(options, context))


def parse_routes(options: Mapping[str, Any], context: PluginContext) -> tuple[Route, ...]:
    """Validate the plugin's options into routes; ConfigError (via context) on any mistake."""
    check_known_keys(options, "", PLUGIN_KEYS, context)
    routes = table_array(options, "", "route", context, required=True)
    return tuple(_route(entry, f"route[{i}]", context) for i, entry in enumerate(routes))


def _route(entry: object, key: str, context: PluginContext) -> Route:
    if not isinstance(entry, dict):
        raise context.error(key, "must be a table ([[plugin.route]])")
    check_known_keys(entry, key, ROUTE_KEYS, context)
    prefix, domain, network, port = match_keys(entry, key, context)

    has_targets, has_reject = "targets" in entry, "reject" in entry
    if has_targets == has_reject:
        raise context.error(
            key,
            "needs either 'targets' (where to send the call) or 'reject' (a status code)"
            if not has_targets
            else "takes 'targets' or 'reject', not both",
        )
    if has_reject:
        for name in TARGET_KEYS:
            if name in entry:
                raise context.error(f"{key}.{name}", "only a route with 'targets' takes it")
        status = option(entry, key, "reject", int, context)
        assert status is not None
        if not 400 <= status <= 699:
            raise context.error(f"{key}.reject", "must be a final error status (400 to 699)")
        reason = option(entry, key, "reason", str, context)
        if reason is not None and (not reason or not reason.isprintable()):
            raise context.error(f"{key}.reason", "must be a non-empty line of text")
        return Route(prefix, domain, network, port, reject=Reject(status, reason))

    if "reason" in entry:
        raise context.error(f"{key}.reason", "only a route with 'reject' takes it")
    timeout = seconds(entry, key, "timeout", context)
    ring_timeout = seconds(entry, key, "ring_timeout", context, zero_disables=True)
    transport = option(entry, key, "transport", str, context)
    if transport is not None:
        if transport.lower() not in TRANSPORTS:
            raise context.error(f"{key}.transport", f"must be one of {', '.join(TRANSPORTS)}")
        transport = transport.upper()
    strip = option(entry, key, "strip_prefix", bool, context) or False
    if strip and not prefix:
        raise context.error(f"{key}.strip_prefix", "needs a non-empty 'user_prefix' to strip")
    username = option(entry, key, "username", str, context)
    password = option(entry, key, "password", str, context)
    if (username is None) != (password is None):
        raise context.error(key, "'username' and 'password' go together")
    credentials = (username, password) if username is not None and password is not None else None
    uris = _targets(entry["targets"], f"{key}.targets", context)
    targets = tuple(
        Target(
            uri,
            transport=transport,
            timeout=timeout,
            ring_timeout=ring_timeout,
            credentials=credentials,
        )
        for uri in uris
    )
    return Route(prefix, domain, network, port, targets, strip)


def _targets(value: object, key: str, context: PluginContext) -> list[URI]:
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a non-empty list of SIP URIs")
    out: list[URI] = []
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise context.error(f"{key}[{i}]", f"must be a SIP URI string, not {text!r}")
        try:
            uri = parse_uri(text)
        except SIPParseError as e:
            raise context.error(f"{key}[{i}]", f"{text!r} is not a valid URI: {e.reason}") from None
        if not uri.is_sip:
            raise context.error(f"{key}[{i}]", f"{text!r} is not a sip: or sips: URI")
        out.append(uri)
    return out


def _for_user(target: Target, user: str | None) -> Target:
    if target.uri.user is not None or user is None:
        return target
    return replace(target, uri=target.uri.replace(user=user))
