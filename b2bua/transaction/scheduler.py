"""One clock call for every timer of the transaction layer: a FIFO queue per distinct delay.

The layer's timers take few distinct durations (B, D, F, H, J, L, M are 64*T1 or 32 s,
I and K are T4, A, E and G double from T1 up to T2 or B), so the timers of one
duration expire in the order they were started: a :class:`collections.deque` per
delay, appended on the right and expired from the left, keeps them sorted for
free.  A single ``clock.callLater`` is armed for the earliest deadline across the
queues and re-armed only when that changes.  Starting and cancelling a timer are
O(1) and allocate no object the garbage collector tracks, against a Twisted
``DelayedCall``, its bound methods and a Python-level heap insertion per timer
(the reactor's heap compares ``DelayedCall`` objects in Python).

A timer lives in an attribute ("slot") of its owner, e.g. a transaction's
``_timer_t``: :meth:`Scheduler.start` stores the timer's sequence number there
and keeps ``(owner, slot, handler)`` in a dict of live timers under that number;
the queue gets only the deadline and the number, in two parallel deques (a float
and an int: no tuple).  Cancelling removes the dict entry and clears the slot,
O(1), and lets go of the owner at once.  The queue entry stays (lazy
cancellation) and is skipped when it comes due because its number is no longer
live.  Being two atoms, it is invisible to the garbage collector: a cancelled
32 s timer (most of them: B, F, H...) costs a collection nothing.  A tuple per
entry was tracked until the first collection after it, and at a few hundred
calls per second those tuples were a fifth of what each young collection
scanned, lengthening the pause.  (An entry that held its owner kept a whole
finished transaction alive, and tracked, until the cancelled timer's deadline.)
When no timer is live any more the queues are dropped and the clock call
cancelled, so an idle layer holds nothing.

Queues are keyed by the delay, or by a caller's *lane* (:meth:`Scheduler.start_at`)
for timers whose deadlines a caller knows to be non-decreasing, e.g. the expiry of
the head of a FIFO of lingering transactions (:mod:`.ghosts`).

Resolution: with ``resolution`` > 0 the clock call is due on the first multiple of it
at or after the earliest deadline, so timers due within one tick share one reactor
wake-up (at a few hundred calls per second the transactions of different calls
expire milliseconds apart).  A timer then fires up to one tick late, never early.
The layer's default is 0 (exact); the server uses ``[timers] resolution``.

Order: due entries fire by deadline, then in the order they were started (equal
deadlines keep insertion order, across queues too), also when the clock jumps far
ahead.  A timer started from inside a handler with a deadline already reached
fires in the next clock call, not in the running one, as Twisted's reactor does.
Deadlines come from ``clock.seconds()``; a clock that steps backwards may delay a
timer behind an earlier-started one of the same duration by the size of the step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heapreplace
from typing import Any

from .clock import Clock, DelayedCall

__all__ = ["Entry", "Handler", "Scheduler"]

#: What runs when a timer fires: a plain function of the owner (an unbound method),
#: so scheduling a timer creates no bound method.
Handler = Callable[[Any], object]

#: What a timer slot holds: the timer's sequence number (its key among the live timers).
Entry = int

_NEVER = float("inf")


class _Queue:
    """The timers of one delay or lane, in start order: deadlines and sequence numbers
    in two parallel deques, so an entry is two atoms and no tracked object."""

    __slots__ = ("deadlines", "seqs")

    def __init__(self) -> None:
        self.deadlines: deque[float] = deque()
        self.seqs: deque[int] = deque()


class Scheduler:
    """Timers for many owners, driven by one ``clock.callLater`` (see the module docstring).

    ``start(delay, owner, slot, handler)`` sets ``owner.<slot>`` to the new timer
    and calls ``handler(owner)`` after ``delay`` seconds, with the slot reset to
    None first, unless ``cancel(owner, slot)`` (or another ``start`` on the same
    slot) came before.  Owners must initialise their slots to None.
    """

    __slots__ = (
        "_armed_at",
        "_call",
        "_clock",
        "_live",
        "_queues",
        "_resolution",
        "_running",
        "_seq",
    )

    def __init__(self, clock: Clock, resolution: float = 0.0) -> None:
        self._clock = clock
        #: the clock call is due on multiples of this (0: at the earliest deadline)
        self._resolution = resolution
        self._queues: dict[object, _Queue] = {}
        self._call: DelayedCall | None = None
        self._armed_at = _NEVER
        #: the live timers: sequence number -> (owner, slot, handler)
        self._live: dict[int, tuple[Any, str, Handler]] = {}
        self._seq = 0
        self._running = False

    @property
    def live(self) -> int:
        """How many timers are scheduled and neither fired nor cancelled."""
        return len(self._live)

    @property
    def armed_at(self) -> float | None:
        """When the clock call is due (the earliest queued deadline, on its tick), or None."""
        return None if self._call is None else self._armed_at

    def start(self, delay: float, owner: Any, slot: str, handler: Handler) -> None:
        """Call ``handler(owner)`` in ``delay`` seconds, replacing any timer in ``owner.<slot>``.

        Timers of one delay are queued together: their deadlines never decrease.
        """
        self.start_at(self._clock.seconds() + delay, delay, owner, slot, handler)

    def _tick(self, deadline: float) -> float:
        """When the clock call for ``deadline`` is due: the deadline itself, or with a
        resolution the first multiple of it not before the deadline (never early)."""
        resolution = self._resolution
        if not resolution:
            return deadline
        tick = math.ceil(deadline / resolution) * resolution
        return tick if tick >= deadline else tick + resolution

    def start_at(
        self, deadline: float, lane: object, owner: Any, slot: str, handler: Handler
    ) -> None:
        """Like :meth:`start`, for an absolute ``deadline``, queued in ``lane``.

        The caller promises that the deadlines it starts in one lane never decrease
        (the queue must stay sorted); ``lane`` must differ from every delay used
        with :meth:`start` (e.g. a tuple).
        """
        live = self._live
        old = getattr(owner, slot)
        if old is not None:
            del live[old]  # replaced: its queue entry is skipped when it comes due
        seq = self._seq
        self._seq = seq + 1
        setattr(owner, slot, seq)
        live[seq] = (owner, slot, handler)
        queue = self._queues.get(lane)
        if queue is None:
            queue = self._queues[lane] = _Queue()
        queue.deadlines.append(deadline)
        queue.seqs.append(seq)
        if deadline < self._armed_at and not self._running:
            self._arm(deadline)

    def cancel(self, owner: Any, slot: str) -> None:
        """Cancel the timer in ``owner.<slot>``, if any (O(1): the entry is skipped later)."""
        seq = getattr(owner, slot)
        if seq is None:
            return
        setattr(owner, slot, None)
        live = self._live
        del live[seq]
        if not live and not self._running:
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
        tick = self._tick(deadline)
        if tick == self._armed_at and self._call is not None:
            return  # already due then: timers on the same tick share the clock call
        call = self._call
        if call is not None:
            call.cancel()
        self._armed_at = tick
        self._call = self._clock.callLater(max(0.0, tick - self._clock.seconds()), self._run)

    def _run(self) -> None:
        """The clock call: fire every live entry that is due, earliest first, then re-arm."""
        self._call = None
        self._armed_at = _NEVER
        self._running = True
        now = self._clock.seconds()
        limit = self._seq  # entries started from a handler wait for the next call
        # A heap of the due queues' heads, (deadline, seq, queue): (deadline, seq) is
        # unique, so the queues themselves are never compared.
        due: list[tuple[float, int, _Queue]] = []
        live = self._live
        for queue in self._queues.values():
            seqs = queue.seqs
            if seqs:
                deadline = queue.deadlines[0]
                if deadline <= now and seqs[0] < limit:
                    due.append((deadline, seqs[0], queue))
        heapify(due)
        try:
            while due:
                queue = due[0][2]
                # Drain this queue while its head comes before every other queue's
                # (the root's children hold the next smallest): no heap work per timer.
                if len(due) > 1:
                    other = due[1] if len(due) == 2 or due[1] < due[2] else due[2]
                    bound_deadline, bound_seq = other[0], other[1]
                else:
                    bound_deadline, bound_seq = now, limit
                deadlines = queue.deadlines
                seqs = queue.seqs
                while True:
                    deadlines.popleft()
                    timer = live.pop(seqs.popleft(), None)
                    if timer is not None:
                        owner, slot, handler = timer
                        setattr(owner, slot, None)
                        handler(owner)
                    if not seqs:
                        heappop(due)
                        break
                    deadline = deadlines[0]
                    seq = seqs[0]
                    if deadline > now or seq >= limit:
                        heappop(due)
                        break
                    if deadline > bound_deadline or (
                        deadline == bound_deadline and seq > bound_seq
                    ):
                        heapreplace(due, (deadline, seq, queue))
                        break
        finally:
            self._running = False
            self._after_run()

    def _after_run(self) -> None:
        if not self._live:
            self._idle()
            return
        earliest = _NEVER
        empty: list[object] = []
        for delay, queue in self._queues.items():
            if queue.seqs:
                if queue.deadlines[0] < earliest:
                    earliest = queue.deadlines[0]
            else:
                empty.append(delay)
        for delay in empty:
            del self._queues[delay]
        if earliest < _NEVER:
            self._arm(earliest)
