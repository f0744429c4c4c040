"""Every interface the server offers to plugins, in one place.

A plugin module provides ``make_plugin(config, context)`` returning an object
that provides one or more of these interfaces (checked with ``verifyObject``).
Plugins see only this module, :mod:`b2bua.routing` and the public message API
:mod:`b2bua.sip`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Interface

from .routing import Decision, HeaderChanges, Reject, RequestContext, Routes, Target

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .sip import Request

__all__ = [
    "Decision",
    "HeaderChanges",
    "IRouter",
    "Reject",
    "RequestContext",
    "Routes",
    "Target",
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
