"""The clock the transaction layer is driven by, declared structurally (no Twisted import).

Twisted's reactor and ``twisted.internet.task.Clock`` both satisfy :class:`Clock`;
so does any object with the same two methods, which keeps the layer testable and
free of I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "DelayedCall"]


class DelayedCall(Protocol):
    """A scheduled call, as returned by :meth:`Clock.callLater` (Twisted's IDelayedCall)."""

    def cancel(self) -> None:
        """Unschedule the call; it must not have run or been cancelled already."""

    def active(self) -> bool:
        """True while the call is still scheduled (neither run nor cancelled)."""


class Clock(Protocol):
    """The time source and timer scheduler the layer is given (Twisted's IReactorTime).

    The layer only ever calls ``callLater`` with positional arguments, and never
    calls ``cancel`` on a handle that has run or was cancelled.
    """

    def callLater(  # Twisted's spelling, so the reactor fits as is
        self, delay: float, f: Callable[..., object], /, *args: object
    ) -> DelayedCall:
        """Call ``f(*args)`` in ``delay`` seconds; return a handle to cancel it."""
        ...

    def seconds(self) -> float:
        """The current time in seconds (monotonic for the reactor)."""
        ...
