"""Local users: calls to our own domains go to the contacts their users registered.

Configured as::

    [[plugin]]
    module = "local_users"
    # domains = ["127.0.0.1"]     # default: the [registrar] domains
    # users = ["alice", "bob"]    # known users: 480 rather than 404 while unregistered
    # timeout = 5.0               # per contact: no response at all this long -> next contact
    # ring_timeout = 20.0         # per contact: not ringing this long -> next contact
    # fork = "serial"             # or "parallel": ring every contact at once

A call whose Request-URI is a sip/sips URI with a user in one of ``domains`` is
looked up in the registrar's location service (its address of record is the
Request-URI in canonical form: ``sip:user@host``, port and parameters ignored):

- registered, ``fork = "serial"`` (the default): the call goes to every live
  contact, one after the other: highest q first, equal q in registration order.
  The bridge tries the next contact when one fails (408, 5xx, unreachable,
  ``timeout``, ``ring_timeout``); any other final answer (486, 603, ...) ends the
  hunt.
- registered, ``fork = "parallel"``: every contact rings at once; the first to
  answer gets the call and the others are cancelled (a late 2xx is ACKed and
  hung up); a busy contact does not end the call, a 6xx does; when none answers
  the caller gets the best final response (RFC 3261 16.7).
- not registered now but known (listed in ``users``, or registered at some time,
  even before a restart): 480 Temporarily Unavailable;
- otherwise: 404 Not Found.

Calls to other domains, and Request-URIs without a user, are not ours: the router
has no opinion (None) and the next router is asked.

Contacts registered through proxies that added a Path (RFC 3327) are called
directly at their contact address: the bridge cannot send a request through a
preloaded route set yet, so the Path is stored by the registrar but not used for
routing.  Contacts that are not sip/sips URIs are skipped.

The plugin needs ``[registrar] enabled = true``: it reads the location service
from the runtime (``IPluginService.start_plugin``).  Without it, calls to its
domains get 480 (known users) or 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from zope.interface import implementer

from b2bua.interfaces import (
    ILocationService,
    IPluginService,
    IRouter,
    Reject,
    RequestContext,
    Routes,
    Target,
    address_of_record,
    canonical_host,
)
from b2bua.sip import Request, SIPParseError, parse_uri

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext, PluginRuntime

__all__ = ["LocalUsers", "make_plugin"]

PLUGIN_KEYS = ("domains", "users", "timeout", "ring_timeout", "fork")
FORK_MODES = ("serial", "parallel")

UNAVAILABLE = Reject(480)
NOT_FOUND = Reject(404)

_log = Logger(namespace="b2bua.plugins.local_users")


@implementer(IRouter, IPluginService)
class LocalUsers:
    """IRouter over the location service: registered contacts of our domains' users.

    ``domains`` None means the location service's domains (the ``[registrar]``
    ones), known when the plugin starts.
    """

    def __init__(
        self,
        domains: Sequence[str] | None = None,
        users: Sequence[str] = (),
        timeout: float | None = None,
        ring_timeout: float | None = None,
        parallel: bool = False,
    ) -> None:
        self.parallel = parallel
        self._configured = frozenset(canonical_host(d) for d in domains) if domains else None
        self.domains: frozenset[str] = self._configured or frozenset()
        self.users = frozenset(users)
        self.timeout = timeout
        self.ring_timeout = ring_timeout
        self.location: ILocationService | None = None

    # -- IPluginService ----------------------------------------------------------------
    def start_plugin(self, runtime: PluginRuntime) -> None:
        """Take the location service (and its domains, unless configured)."""
        self.location = getattr(runtime, "location", None)
        if self.location is None:
            _log.warn(
                "local_users: no location service ([registrar] enabled = false):"
                " calls to {domains} get 480 or 404",
                domains=", ".join(sorted(self.domains)) or "no domain",
            )
        elif self._configured is None:
            self.domains = frozenset(self.location.domains)

    def stop_plugin(self) -> None:
        """Let go of the location service."""
        self.location = None

    # -- IRouter ------------------------------------------------------------------------
    def route(self, request: Request, context: RequestContext) -> Routes | Reject | None:
        """Routes to the registered contacts, 480, 404, or None for other domains."""
        ruri = request.request_uri
        if not ruri.is_sip or not ruri.user or canonical_host(ruri.host) not in self.domains:
            return None
        aor = address_of_record(ruri)
        location = self.location
        bindings = location.lookup(aor) if location is not None else []
        targets = tuple(
            Target(b.uri, timeout=self.timeout, ring_timeout=self.ring_timeout)
            for b in bindings
            if b.uri.is_sip
        )
        if targets:
            return Routes(targets, parallel=self.parallel)
        known = (location is not None and location.known(aor)) or _user(aor) in self.users
        return UNAVAILABLE if known else NOT_FOUND

    def __repr__(self) -> str:
        return f"<LocalUsers for {', '.join(sorted(self.domains)) or 'the registrar domains'}>"


def _user(aor: str) -> str:
    return aor[len("sip:") :].rpartition("@")[0]


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> LocalUsers:
    """The plugin entry point: validate the options and build the router."""
    for name in options:
        if name not in PLUGIN_KEYS:
            raise context.error(name, f"unknown key (known keys: {', '.join(sorted(PLUGIN_KEYS))})")
    domains = _strings(options, "domains", context)
    for i, domain in enumerate(domains or ()):
        if not _is_host(domain):
            raise context.error(f"domains[{i}]", f"{domain!r} is not a host name or IP address")
    if domains is not None and not domains:
        raise context.error("domains", "must not be empty (leave it out for the registrar's)")
    users = _strings(options, "users", context) or []
    for i, user in enumerate(users):
        if not _is_user(user):
            raise context.error(f"users[{i}]", f"{user!r} is not a SIP URI user part")
    fork = options.get("fork", "serial")
    if fork not in FORK_MODES:
        raise context.error("fork", f"must be one of {', '.join(FORK_MODES)}")
    return LocalUsers(
        domains,
        users,
        _seconds(options, "timeout", context, zero_disables=False),
        _seconds(options, "ring_timeout", context, zero_disables=True),
        parallel=fork == "parallel",
    )


def _strings(options: Mapping[str, Any], name: str, context: PluginContext) -> list[str] | None:
    if name not in options:
        return None
    value = options[name]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise context.error(name, f"must be a list of non-empty strings, not {value!r}")
    return list(value)


def _seconds(
    options: Mapping[str, Any], name: str, context: PluginContext, *, zero_disables: bool
) -> float | None:
    if name not in options:
        return None
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise context.error(name, f"must be a number of seconds, not {value!r}")
    if value > 0 or (zero_disables and value == 0):
        return float(value)
    reason = "must not be negative (0 disables it)" if zero_disables else "must be positive"
    raise context.error(name, reason)


def _is_host(text: str) -> bool:
    try:
        uri = parse_uri(f"sip:{text}")
    except SIPParseError:
        return False
    return not (uri.user or uri.port is not None or uri.params or uri.headers)


def _is_user(text: str) -> bool:
    try:
        uri = parse_uri(f"sip:{text}@invalid")
    except SIPParseError:
        return False
    return uri.user == text and uri.password is None
