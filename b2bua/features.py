"""A base class for call features: subclass it and override the hooks you need.

>>> from b2bua.features import CallFeature
>>> class AddHeader(CallFeature):
...     def request_out(self, call, request, target):
...         request.headers.add("X-Origin", "b2bua")
...         return None
"""

from __future__ import annotations

from zope.interface import implementer

from .interfaces import ICallFeature
from .routing import CallInfo, Reject, Routes, Target
from .sip import Request, Response


@implementer(ICallFeature)
class CallFeature:
    """Every :class:`~b2bua.interfaces.ICallFeature` hook, doing nothing."""

    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        """A new call arrived (before routing)."""
        return None

    def call_routed(self, call: CallInfo, routes: Routes) -> Reject | None:
        """The routers chose these targets."""
        return None

    def request_out(self, call: CallInfo, request: Request, target: Target) -> Reject | None:
        """The INVITE for ``target`` is about to be sent."""
        return None

    def target_failed(self, call: CallInfo, target: Target, response: Response) -> None:
        """``target`` did not take the call."""

    def provisional(self, call: CallInfo, response: Response) -> None:
        """A provisional response is about to be relayed to the caller."""

    def answered(self, call: CallInfo, response: Response) -> Reject | None:
        """The 2xx is about to be relayed to the caller."""
        return None

    def in_dialog_request(self, call: CallInfo, request: Request, leg: str) -> Reject | None:
        """A request within the call is about to be relayed."""
        return None

    def call_failed(self, call: CallInfo, response: Response) -> Reject | None:
        """No target took the call; the caller is about to get ``response``."""
        return None

    def call_ended(self, call: CallInfo, reason: str) -> None:
        """The call is over."""
