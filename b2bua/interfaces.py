"""Every interface the server offers to plugins, in one place.

A plugin module provides ``make_plugin(options, context)`` returning an object
that provides one or more of these interfaces (checked with ``verifyObject``).
Plugins see only this module, :mod:`b2bua.routing` and the public message API
:mod:`b2bua.sip`.

Implemented today: :class:`IRouter` (where a call goes), :class:`ICallFeature`
(hooks along a call's life) and :class:`IPluginService` (plugins that run
something: timers, probes) by plugins; :class:`ILocationService` by the server's
registrar (plugins read it; :class:`Binding` and :func:`address_of_record` are
its values, from :mod:`b2bua.location`); :class:`IAuthenticator` (users'
digest secrets) by the server's ``[auth]`` users (``b2bua.auth.stores``).
Declared for the features that come next, so plugins have one place to look:
:class:`ICDRSink`, :class:`IMediaRelay`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

from .location import Binding, address_of_record, canonical_host
from .routing import (
    CallInfo,
    Decision,
    HeaderChanges,
    Reject,
    RequestContext,
    Routes,
    Target,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twisted.internet.defer import Deferred

    from .sip import Request, Response

__all__ = [
    "Binding",
    "CallInfo",
    "Decision",
    "HeaderChanges",
    "IAuthenticator",
    "ICDRSink",
    "ICallFeature",
    "ILocationService",
    "IMediaRelay",
    "IPluginService",
    "IRouter",
    "Reject",
    "RequestContext",
    "Routes",
    "Target",
    "address_of_record",
    "canonical_host",
]


class IRouter(Interface):
    """Decides where a new call goes.

    Routers are asked in configuration order; the first that returns a decision
    (not None) wins.  When every router returns None the call gets 404.
    """

    def route(request: Request, context: RequestContext) -> Decision | Deferred[Decision]:
        """Return Routes (targets to try in order), Reject, or None for "no opinion".

        May return a Deferred firing with one of those.  Must not change
        ``request``; header edits for the outgoing call go in Target.headers.
        """


class ICallFeature(Interface):
    """Hooks along a call's life, called in configuration order.

    Every hook gets the :class:`CallInfo` of the call.  Hooks that receive a
    message may change its headers and body in place (the message is the one
    about to be sent on the other leg).  Hooks that may refuse return a
    :class:`Reject` to end the call with that response (the caller gets it when
    the call is not answered yet), or None to let it go on.  Hooks run on the
    reactor thread and must not block; subclass ``b2bua.features.CallFeature``
    to implement only the hooks you need.
    """

    def call_started(call: CallInfo, request: Request) -> Reject | None:
        """A new call arrived (before routing).  Reject to refuse it (e.g. 503)."""

    def call_routed(call: CallInfo, routes: Routes) -> Reject | None:
        """The routers chose these targets.  Reject to refuse the call."""

    def request_out(call: CallInfo, request: Request, target: Target) -> Reject | None:
        """The INVITE for ``target`` is about to be sent: edit it, or Reject the call."""

    def target_failed(call: CallInfo, target: Target, response: Response) -> None:
        """``target`` did not take the call: its final response, or a synthesized
        408 (no answer, timeout) or 503 (unreachable, transport error)."""

    def provisional(call: CallInfo, response: Response) -> None:
        """A provisional response is about to be relayed to the caller: edit it."""

    def answered(call: CallInfo, response: Response) -> Reject | None:
        """The 2xx is about to be relayed to the caller: edit it, or Reject
        (the callee is then sent ACK and BYE, and the caller gets the rejection)."""

    def in_dialog_request(call: CallInfo, request: Request, leg: str) -> Reject | None:
        """A request within the call from leg "A" (caller) or "B" (callee) is about
        to be relayed: edit it, or Reject to answer it with that response instead."""

    def call_failed(call: CallInfo, response: Response) -> Reject | None:
        """No target took the call; the caller is about to get ``response`` (the best
        final response of RFC 3261 16.7).  Edit it, or return a Reject to send that
        instead (e.g. translate 486 into 480)."""

    def call_ended(call: CallInfo, reason: str) -> None:
        """The call is over (answered or not); ``call.answered`` tells which."""


class IPluginService(Interface):
    """A plugin that runs something while the server runs (timers, probes)."""

    def start_plugin(runtime: Any) -> None:
        """Start; ``runtime`` is a :class:`b2bua.plugin.PluginRuntime` (clock, sender)."""

    def stop_plugin() -> Deferred[None] | None:
        """Stop (on shutdown or before a reload replaces the plugin)."""


class IAuthenticator(Interface):
    """Where digest authentication (``[auth]``, RFC 7616/8760) finds users' secrets.

    The server challenges, checks nonces, counts failures and bans; a provider
    only looks users up, so a store in SQL, LDAP or behind HTTP has this shape.
    ``b2bua.auth.stores.StaticUsers`` (the ``[auth]`` users and users file)
    implements it.  An authenticated request's user name reaches the handlers as
    ``identity`` and routers as ``RequestContext.identity``.
    """

    realm = Attribute("The realm challenges name.")
    algorithms = Attribute(
        'The digest algorithms it has hashes for, strongest first: ("SHA-256", "MD5").'
    )

    def ha1(username: str, realm: str, algorithm: str) -> Deferred[str | None]:
        """The stored HA1 (``H(username:realm:password)``, lowercase hex) of
        ``username`` in ``realm`` for ``algorithm`` ("MD5" or "SHA-256"), or None
        for an unknown user.  Must not fail for an unknown user: the server treats
        it exactly like a wrong password, so nobody can tell users apart."""


class ILocationService(Interface):
    """Registered contacts per address of record (RFC 3261 10).

    The registrar (``[registrar]``) writes it; routers read it (a plugin gets it as
    ``runtime.location`` in ``IPluginService.start_plugin``, None when the
    registrar is off).  Addresses of record are canonical strings made by
    :func:`address_of_record` (``sip:alice@example.com``); values are
    :class:`Binding`.  Reads come from memory, so a router may call them on every
    call; expired bindings are never returned and are removed on time.
    """

    domains = Attribute(
        "The domains whose addresses of record it holds: a frozenset of hosts in"
        " canonical form (b2bua.location.canonical_host)."
    )

    def lookup(aor: str) -> list[Binding]:
        """The live bindings of ``aor``: highest q first, equal q in registration order."""

    def known(aor: str) -> bool:
        """True when ``aor`` has ever had a binding (even if none is live now)."""

    def update(aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        """Replace every binding of ``aor`` with ``bindings`` (expired ones are dropped).

        Lookups see the change at once; the Deferred fires when it is stored.  If
        storing fails, the Deferred fails and the change is undone (unless a later
        update replaced it meanwhile).
        """


class ICDRSink(Interface):
    """Receives one call detail record per call."""

    def record(cdr: dict[str, Any]) -> Deferred[None] | None:
        """Store or forward a finished call's record."""


class IMediaRelay(Interface):
    """Anchors media (rtpengine and the like) by rewriting SDP."""

    def offer(call: CallInfo, sdp: bytes) -> Deferred[bytes]:
        """The SDP offer to send on, with the relay's addresses."""

    def answer(call: CallInfo, sdp: bytes) -> Deferred[bytes]:
        """The SDP answer to send back, with the relay's addresses."""

    def delete(call: CallInfo) -> None:
        """Release the call's media resources."""
