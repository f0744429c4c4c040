"""Logging through twisted.logger: level filtering, text or JSON lines, SIP trace.

Every module logs with ``Logger(namespace=...)``; the observer built here decides
what is shown.  ``b2bua.trace`` is the namespace of the full SIP message trace,
shown only when ``[logging] sip_trace = true``.
"""

from __future__ import annotations

import sys
from typing import IO

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    jsonFileLogObserver,
    textFileLogObserver,
)
from zope.interface import implementer

from .config import LoggingConfig

TRACE_NAMESPACE = "b2bua.trace"


@implementer(ILogFilterPredicate)
class _DropTrace:
    """Hide the SIP trace unless it was asked for."""

    def __init__(self, show: bool) -> None:
        self.show = show

    def __call__(self, event: LogEvent) -> PredicateResult:
        if event.get("log_namespace") == TRACE_NAMESPACE and not self.show:
            return PredicateResult.no  # type: ignore[no-any-return]
        return PredicateResult.maybe  # type: ignore[no-any-return]


def make_observer(config: LoggingConfig, stream: IO[str] | None = None) -> ILogObserver:
    """The log observer for this configuration: level filter, trace filter, format."""
    out = sys.stdout if stream is None else stream
    inner = (
        jsonFileLogObserver(out, recordSeparator="")
        if config.format == "json"
        else textFileLogObserver(out)
    )
    levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(config.level))
    if config.sip_trace:
        levels.setLogLevelForNamespace(TRACE_NAMESPACE, LogLevel.debug)
    return FilteringLogObserver(inner, [_DropTrace(config.sip_trace), levels])


def json_observer() -> ILogObserver:
    """JSON lines on stdout, for ``twistd --logger=b2bua.logs.json_observer``."""
    return jsonFileLogObserver(sys.stdout, recordSeparator="")
