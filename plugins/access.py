"""Access control: only trusted networks (or authenticated callers) may place calls.

Configured as::

    [[plugin]]
    module = "access"                       # list it before every other call feature
    trusted = ["192.168.10.0/24", "203.0.113.10"]

    [[plugin.listener]]                     # optional: other networks on one listener
    transport = "udp"
    port = 5080
    trusted = ["198.51.100.0/24"]

Without this plugin (or ``[auth]`` challenging INVITE) **any source that can
reach a listener can use every route**: the server is an open relay.

A call is let through when its source address is in the trusted networks of the
listener that received it, or when the caller is authenticated
(``context.identity`` is set by ``[auth]`` and ``allow_authenticated`` is true).
Sources in ``[auth] trusted_networks`` are not challenged and have no identity:
list them here too.  Every other
call is refused with 403 Forbidden (``status``/``reason``) *before routing*: the
check runs in :meth:`ICallFeature.call_started`, which the bridge calls before
it asks any router, so no router order can bypass it.

The trusted networks of a listener are those of the first ``[[plugin.listener]]``
whose keys (``transport``, ``host``, ``port``) all match it, else the top-level
``trusted`` list; a listener with neither trusts nobody.  The listener address is
the one the server advertises for it (the bound address, unless
``advertised_host``/``advertised_port`` are set in its ``[[listen]]`` table).
plugins/README.md is the reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from b2bua.features import CallFeature
from b2bua.interfaces import CallInfo, Reject, RequestContext
from b2bua.plugin_options import (
    IPNetwork,
    check_known_keys,
    in_network,
    ip_address,
    network,
    normalize_host,
    option,
    table_array,
)
from b2bua.sip import Address, Request

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext

__all__ = ["Access", "ListenerRule", "make_plugin", "parse_access"]


PLUGIN_KEYS = ("trusted", "listener", "allow_authenticated", "status", "reason", "log")
LISTENER_KEYS = ("transport", "host", "port", "trusted", "allow_authenticated")
TRANSPORTS = ("udp", "tcp", "tls")

_log = Logger(namespace="b2bua.plugins.access")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.?")


@dataclass(frozen=True, slots=True)
class ListenerRule:
    """One ``[[plugin.listener]]``: which listeners it is for and whom they trust.

    ``transport`` is upper case, ``host`` normalised (see :func:`normalize_host`);
    None means "any".
    """

    trusted: tuple[IPNetwork, ...]
    allow_authenticated: bool = True
    transport: str | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, listener: Address) -> bool:
        """True when every key this rule has matches ``listener``."""
        if self.transport is not None and listener.transport.upper() != self.transport:
            return False
        if self.port is not None and listener.port != self.port:
            return False
        return self.host is None or normalize_host(listener.host) == self.host


class Access(CallFeature):
    """ICallFeature refusing, in call_started, calls from untrusted sources.

    ``default`` is the rule for listeners no ``listeners`` rule matches (None:
    such listeners trust nobody and take only authenticated callers, when
    ``allow_authenticated``).
    """

    def __init__(
        self,
        default: ListenerRule | None,
        listeners: Sequence[ListenerRule] = (),
        reject: Reject | None = None,
        log: bool = False,
    ) -> None:
        self.default = default
        self.listeners = tuple(listeners)
        self.reject = reject or Reject(403)
        self.log = log
        #: calls refused so far
        self.refused = 0
        self._nobody = ListenerRule((), default.allow_authenticated if default else True)
        self._by_listener: dict[Address, ListenerRule] = {}

    def rule_for(self, listener: Address) -> ListenerRule:
        """The rule that applies to calls received on ``listener``."""
        rule = self._by_listener.get(listener)
        if rule is None:
            rule = next((r for r in self.listeners if r.matches(listener)), None)
            if rule is None:
                rule = self.default or self._nobody
            if len(self._by_listener) < 1024:  # listeners are few; never grow without bound
                self._by_listener[listener] = rule
        return rule

    def allowed(self, context: RequestContext) -> bool:
        """True when a request with this context may place a call."""
        rule = self.rule_for(context.listener)
        if context.identity is not None and rule.allow_authenticated:
            return True
        if not rule.trusted:
            return False
        address = ip_address(context.source.host)
        return address is not None and any(in_network(address, n) for n in rule.trusted)

    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        """Refuse the call (before routing) unless its source may call."""
        if self.allowed(call.context):
            return None
        self.refused += 1
        if self.log:
            _log.info(
                "Refused {method} from untrusted {source} on {listener} ({status})",
                method=request.method,
                source=str(call.context.source),
                listener=str(call.context.listener),
                status=self.reject.status,
            )
        return self.reject

    def __repr__(self) -> str:
        return f"<Access with {len(self.listeners)} listener rules>"


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> Access:
    """The plugin entry point: validate the options and build the feature."""
    return parse_access(options, context)


def parse_access(options: Mapping[str, Any], context: PluginContext) -> Access:
    """Validate the plugin's options; ConfigError (via context) on any mistake."""
    check_known_keys(options, "", PLUGIN_KEYS, context)
    if "trusted" not in options and "listener" not in options:
        raise context.error(
            "",
            "needs 'trusted' (the networks that may call, e.g. [\"192.168.0.0/16\"]) or"
            " [[plugin.listener]] tables",
        )
    allow_auth = option(options, "", "allow_authenticated", bool, context)
    allow_auth = True if allow_auth is None else allow_auth
    default = None
    if "trusted" in options:
        default = ListenerRule(_networks(options["trusted"], "trusted", context), allow_auth)
    listeners: list[ListenerRule] = []
    entries = table_array(options, "", "listener", context)
    if entries is not None:
        for i, entry in enumerate(entries):
            listeners.append(_listener(entry, f"listener[{i}]", allow_auth, context))
    status = option(options, "", "status", int, context)
    if status is None:
        status = 403
    elif not 400 <= status <= 699:
        raise context.error("status", "must be a final error status (400 to 699)")
    reason = option(options, "", "reason", str, context)
    if reason is not None and (not reason or not reason.isprintable()):
        raise context.error("reason", "must be a non-empty line of text")
    log = option(options, "", "log", bool, context) or False
    return Access(default, listeners, Reject(status, reason), log)


def _listener(entry: object, key: str, allow_auth: bool, context: PluginContext) -> ListenerRule:
    if not isinstance(entry, dict):
        raise context.error(key, "must be a table ([[plugin.listener]])")
    check_known_keys(entry, key, LISTENER_KEYS, context)
    if "trusted" not in entry:
        raise context.error(key, "needs 'trusted' (a list of networks; [] trusts nobody)")
    trusted = _networks(entry["trusted"], f"{key}.trusted", context)
    transport = option(entry, key, "transport", str, context)
    if transport is not None:
        if transport.lower() not in TRANSPORTS:
            raise context.error(f"{key}.transport", f"must be one of {', '.join(TRANSPORTS)}")
        transport = transport.upper()
    host = option(entry, key, "host", str, context)
    if host is not None:
        if ip_address(host.strip("[]")) is None and _HOSTNAME.fullmatch(host) is None:
            raise context.error(f"{key}.host", f"{host!r} is not an IP address or host name")
        host = normalize_host(host)
    port = option(entry, key, "port", int, context)
    if port is not None and not 1 <= port <= 65535:
        raise context.error(f"{key}.port", "must be between 1 and 65535")
    own_auth = option(entry, key, "allow_authenticated", bool, context)
    return ListenerRule(
        trusted, allow_auth if own_auth is None else own_auth, transport, host, port
    )


def _networks(value: object, key: str, context: PluginContext) -> tuple[IPNetwork, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise context.error(key, "must be a list of networks (CIDR) or addresses")
    out: list[IPNetwork] = []
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise context.error(f"{key}[{i}]", f"must be a string, not {text!r}")
        out.append(network(text, f"{key}[{i}]", context))
    return tuple(out)
