"""The clock the dialog layer is handed: what it needs from a timer service, nothing more.

Declared here as structural types so the pure core never imports Twisted; a
Twisted reactor and ``twisted.internet.task.Clock`` both satisfy them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


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


class Timers(Protocol):
    """Timers kept in an attribute ("slot") of their owner, as the transaction layer's
    ``Scheduler`` runs them: one such scheduler can serve every call of a server.

    ``start`` and ``start_at`` put a new timer in ``owner.<slot>`` (replacing the one
    there) that calls ``handler(owner)`` when due, with the slot reset to None first;
    ``cancel`` clears the slot.  Deadlines started in one ``lane`` never decrease.
    """

    def start(self, delay: float, owner: Any, slot: str, handler: Callable[[Any], object]) -> None:
        """Call ``handler(owner)`` in ``delay`` seconds."""

    def start_at(
        self, deadline: float, lane: object, owner: Any, slot: str, handler: Callable[[Any], object]
    ) -> None:
        """Call ``handler(owner)`` at ``deadline`` (clock time)."""

    def cancel(self, owner: Any, slot: str) -> None:
        """Cancel the timer in ``owner.<slot>``, if any."""


class ClockTimers:
    """:class:`Timers` on a plain :class:`Clock`: a clock call per timer, in its slot.

    For a dialog-layer object used on its own (tests, a single UA); a server hands
    in one shared scheduler instead.
    """

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def start(self, delay: float, owner: Any, slot: str, handler: Callable[[Any], object]) -> None:
        """Call ``handler(owner)`` in ``delay`` seconds (replacing the slot's timer)."""
        self.cancel(owner, slot)
        setattr(owner, slot, self._clock.callLater(delay, _fire, owner, slot, handler))

    def start_at(
        self, deadline: float, lane: object, owner: Any, slot: str, handler: Callable[[Any], object]
    ) -> None:
        """Call ``handler(owner)`` at ``deadline`` (at once if it has passed)."""
        self.start(max(0.0, deadline - self._clock.seconds()), owner, slot, handler)

    def cancel(self, owner: Any, slot: str) -> None:
        """Cancel the timer in ``owner.<slot>``, if any."""
        call: DelayedCall | None = getattr(owner, slot)
        if call is not None:
            setattr(owner, slot, None)
            call.cancel()


def _fire(owner: Any, slot: str, handler: Callable[[Any], object]) -> None:
    setattr(owner, slot, None)
    handler(owner)
