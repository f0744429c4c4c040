"""Logging through twisted.logger: level filtering, text or JSON lines, SIP trace.

Every module logs with this module's :class:`Logger` (``Logger(namespace=...)``); the
observer built here decides what is shown.  ``b2bua.trace`` is the namespace of the
full SIP message trace, shown only when ``[logging] sip_trace = true``.

The observer filters by level, but an event below the level is still built and
passed to every observer first (about 7 us each, on the path of every call for a
debug line).  So the service also sets the level as a floor for :class:`Logger`
(:func:`set_floor`): an event below it is dropped where it is emitted.
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
from twisted.logger import Logger as _TwistedLogger
from zope.interface import implementer

from .config import LoggingConfig

TRACE_NAMESPACE = "b2bua.trace"
#: The SIP message trace (shown when ``sip_trace`` is configured): a plain twisted
#: Logger, so the floor never drops it.
trace = _TwistedLogger(namespace=TRACE_NAMESPACE)

#: Each level's rank, lowest (debug) first.
_RANK = {level: rank for rank, level in enumerate(LogLevel.iterconstants())}
#: Events ranked below this are dropped by Logger.emit (0: none; see set_floor).
_floor = 0


def set_floor(level: str | None) -> None:
    """Drop :class:`Logger` events below ``level`` (a ``[logging] level`` name) at once;
    None lets every event through to the observers again.

    The service sets it when it hands twistd its observer, which filters at the same
    level, so nothing that would be shown is dropped; it clears it when it stops.
    """
    global _floor
    _floor = 0 if level is None else _RANK[LogLevel.levelWithName(level)]


def floor() -> str:
    """The name of the level below which :class:`Logger` drops events (``debug``: none)."""
    return next(str(level.name) for level, rank in _RANK.items() if rank == _floor)


class Logger(_TwistedLogger):
    """twisted.logger's Logger, dropping events below the floor (:func:`set_floor`)
    before they are built.  The SIP trace has its own plain Logger: its debug events
    are shown whenever ``sip_trace`` is on, whatever the level."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: object) -> None:
        """Emit ``level`` events at or above the floor (see twisted.logger.Logger.emit)."""
        if _RANK.get(level, len(_RANK)) < _floor:
            return
        super().emit(level, format, **kwargs)


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
