"""One clock call for every timer of the transaction layer: a FIFO queue per distinct delay.

The layer's timers take few distinct durations (B, D, F, H, J, L, M are 64*T1 or 32 s,
I and K are T4, A, E and G double from T1 up to T2 or B), so the timers of one
duration expire in the order they were started: a :class:`collections.deque` per
delay, appended on the right and expired from the left, keeps them sorted for
free.  A single ``clock.callLater`` is armed for the earliest deadline across the
queues and re-armed only when that changes.  Starting and cancelling a timer are
O(1) and cost one small tuple, against a Twisted ``DelayedCall``, its bound
methods and a Python-level heap insertion per timer (the reactor's heap compares
``DelayedCall`` objects in Python).

A timer lives in an attribute ("slot") of its owner, e.g. a transaction's
``_timer_t``: :meth:`Scheduler.start` stores the entry there and cancellation
just clears it.  A cancelled entry stays in its queue (lazy cancellation) and is
skipped when it comes due because it is no longer its owner's current timer; it
keeps its owner alive until then, at most the longest delay.  When no timer is
live any more the queues are dropped and the clock call cancelled, so an idle
layer holds nothing.

Order: due entries fire by deadline, then in the order they were started (equal
deadlines keep insertion order, across queues too), also when the clock jumps far
ahead.  A timer started from inside a handler with a deadline already reached
fires in the next clock call, not in the running one, as Twisted's reactor does.
Deadlines come from ``clock.seconds()``; a clock that steps backwards may delay a
timer behind an earlier-started one of the same duration by the size of the step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heapreplace
from typing import Any

from .clock import Clock, DelayedCall

__all__ = ["Entry", "Handler", "Scheduler"]

#: What runs when a timer fires: a plain function of the owner (an unbound method),
#: so scheduling a timer creates no bound method.
Handler = Callable[[Any], object]

#: One scheduled timer: (deadline, sequence number, owner, slot name, handler).
Entry = tuple[float, int, Any, str, Handler]

_NEVER = float("inf")


class Scheduler:
    """Timers for many owners, driven by one ``clock.callLater`` (see the module docstring).

    ``start(delay, owner, slot, handler)`` sets ``owner.<slot>`` to the new entry
    and calls ``handler(owner)`` after ``delay`` seconds, with the slot reset to
    None first, unless ``cancel(owner, slot)`` (or another ``start`` on the same
    slot) came before.  Owners must initialise their slots to None.
    """

    __slots__ = ("_armed_at", "_call", "_clock", "_live", "_queues", "_running", "_seq")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._queues: dict[float, deque[Entry]] = {}
        self._call: DelayedCall | None = None
        self._armed_at = _NEVER
        self._live = 0
        self._seq = 0
        self._running = False

    @property
    def live(self) -> int:
        """How many timers are scheduled and neither fired nor cancelled."""
        return self._live

    @property
    def armed_at(self) -> float | None:
        """When the clock call is due (the earliest queued deadline), or None when idle."""
        return None if self._call is None else self._armed_at

    def start(self, delay: float, owner: Any, slot: str, handler: Handler) -> None:
        """Call ``handler(owner)`` in ``delay`` seconds, replacing any timer in ``owner.<slot>``."""
        if getattr(owner, slot) is not None:
            self._live -= 1  # replaced: the old entry is skipped when it comes due
        deadline = self._clock.seconds() + delay
        seq = self._seq
        self._seq = seq + 1
        entry: Entry = (deadline, seq, owner, slot, handler)
        setattr(owner, slot, entry)
        self._live += 1
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        queue.append(entry)
        if deadline < self._armed_at and not self._running:
            self._arm(deadline)

    def cancel(self, owner: Any, slot: str) -> None:
        """Cancel the timer in ``owner.<slot>``, if any (O(1): the entry is skipped later)."""
        if getattr(owner, slot) is None:
            return
        setattr(owner, slot, None)
        self._live -= 1
        if not self._live and not self._running:
            self._idle()

    # -- internals ---------------------------------------------------------------------
    def _idle(self) -> None:
        """No live timer: drop the stale entries (and the owners they keep) and the clock call."""
        self._queues.clear()
        call = self._call
        if call is not None:
            self._call = None
            self._armed_at = _NEVER
            call.cancel()

    def _arm(self, deadline: float) -> None:
        call = self._call
        if call is not None:
            call.cancel()
        self._armed_at = deadline
        self._call = self._clock.callLater(max(0.0, deadline - self._clock.seconds()), self._run)

    def _run(self) -> None:
        """The clock call: fire every live entry that is due, earliest first, then re-arm."""
        self._call = None
        self._armed_at = _NEVER
        self._running = True
        now = self._clock.seconds()
        limit = self._seq  # entries started from a handler wait for the next call
        # A heap of the due queues' heads, (deadline, seq, queue): (deadline, seq) is
        # unique, so the queues themselves are never compared.
        due: list[tuple[float, int, deque[Entry]]] = []
        for queue in self._queues.values():
            if queue:
                head = queue[0]
                if head[0] <= now and head[1] < limit:
                    due.append((head[0], head[1], queue))
        heapify(due)
        try:
            while due:
                queue = due[0][2]
                entry = queue.popleft()
                if queue and queue[0][0] <= now and queue[0][1] < limit:
                    heapreplace(due, (queue[0][0], queue[0][1], queue))
                else:
                    heappop(due)
                owner = entry[2]
                slot = entry[3]
                if getattr(owner, slot) is entry:
                    setattr(owner, slot, None)
                    self._live -= 1
                    entry[4](owner)
        finally:
            self._running = False
            self._after_run()

    def _after_run(self) -> None:
        if not self._live:
            self._idle()
            return
        earliest = _NEVER
        empty: list[float] = []
        for delay, queue in self._queues.items():
            if queue:
                if queue[0][0] < earliest:
                    earliest = queue[0][0]
            else:
                empty.append(delay)
        for delay in empty:
            del self._queues[delay]
        if earliest < _NEVER:
            self._arm(earliest)
