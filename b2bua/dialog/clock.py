"""The clock the dialog layer is handed: what it needs from a timer service, nothing more.

Declared here as structural types so the pure core never imports Twisted; a
Twisted reactor and ``twisted.internet.task.Clock`` both satisfy them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class DelayedCall(Protocol):
    """A scheduled call, as ``callLater`` returns it (Twisted's ``IDelayedCall``)."""

    def cancel(self) -> None:
        """Unschedule the call; an error if it already ran or was cancelled."""

    def active(self) -> bool:
        """True until the call has run or been cancelled."""


class Clock(Protocol):
    """A source of time and delayed calls (Twisted's ``IReactorTime``)."""

    def callLater(
        self, delay: float, function: Callable[..., object], /, *args: object
    ) -> DelayedCall:
        """Call ``function(*args)`` after ``delay`` seconds."""

    def seconds(self) -> float:
        """The current time in seconds."""
