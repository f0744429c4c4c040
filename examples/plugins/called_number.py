"""Route calls by a regular expression on the called number, and tag them with headers.

The example of README.md, "Writing a plugin": calls whose called number (the
Request-URI user) matches ``pattern`` go to ``targets`` with the extension
headers of ``headers`` added; other calls get ``reject`` (or, without it, the
next router decides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from b2bua.interfaces import HeaderChanges, IRouter, Reject, RequestContext, Routes, Target
from b2bua.sip import Request, SIPParseError, parse_uri

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext

KEYS = ("pattern", "targets", "headers", "reject", "reason")


@implementer(IRouter)
class CalledNumberRouter:
    """Matching numbers go to the targets (with the headers); others get ``otherwise``."""

    def __init__(
        self, pattern: re.Pattern[str], targets: tuple[Target, ...], otherwise: Reject | None
    ) -> None:
        self.pattern = pattern
        self.targets = targets
        self.otherwise = otherwise

    def route(self, request: Request, context: RequestContext) -> Routes | Reject | None:
        """Called for every new call, on the reactor thread: decide quickly, never block."""
        number = request.request_uri.user or ""
        if self.pattern.fullmatch(number) is None:
            return self.otherwise  # a Reject, or None: "no opinion", ask the next router
        # a target without a user part gets the called number: sip:10.0.0.5 -> sip:NUMBER@10.0.0.5
        return Routes(
            tuple(
                t if t.uri.user else replace(t, uri=t.uri.replace(user=number))
                for t in self.targets
            )
        )


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> CalledNumberRouter:
    """Check every option (a mistake is a ConfigError naming file, line and key)."""
    for key in options:
        if key not in KEYS:
            raise context.error(key, f"unknown key (known keys: {', '.join(KEYS)})")
    pattern = options.get("pattern")
    if not isinstance(pattern, str):
        raise context.error("pattern", "must be a regular expression (a string)")
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise context.error("pattern", f"not a regular expression: {e}") from None
    headers = options.get("headers", {})
    if not isinstance(headers, dict) or not all(
        re.fullmatch(r"X-[A-Za-z0-9-]+", name) and isinstance(value, str)
        for name, value in headers.items()
    ):
        raise context.error("headers", 'must be a table of X- headers ({ "X-Route" = "..." })')
    changes = HeaderChanges(set=tuple(headers.items()))
    uris = options.get("targets")
    if not isinstance(uris, list) or not uris:
        raise context.error("targets", "must be a non-empty list of SIP URIs")
    targets = []
    for i, text in enumerate(uris):
        try:
            uri = parse_uri(text) if isinstance(text, str) else None
        except SIPParseError:
            uri = None
        if uri is None or not uri.is_sip:
            raise context.error(f"targets[{i}]", f"{text!r} is not a sip: or sips: URI")
        targets.append(Target(uri, headers=changes))
    otherwise = None
    if "reject" in options:
        status, reason = options["reject"], options.get("reason")
        if not isinstance(status, int) or not 400 <= status <= 699:
            raise context.error("reject", "must be a final error status (400 to 699)")
        if reason is not None and not isinstance(reason, str):
            raise context.error("reason", "must be a string")
        otherwise = Reject(status, reason)
    elif "reason" in options:
        raise context.error("reason", "goes with 'reject'")
    return CalledNumberRouter(compiled, tuple(targets), otherwise)
