"""The layer's timer scheduler: one clock call, FIFO queues per delay, lazy cancellation."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock

from b2bua.transaction.scheduler import Entry, Scheduler


class Owner:
    """A timer owner with two slots; records (name, time) when a handler runs."""

    __slots__ = ("clock", "fired", "name", "on_fire", "slot_a", "slot_b")

    def __init__(self, clock: Clock, name: str, fired: list[tuple[str, float]]) -> None:
        self.clock = clock
        self.name = name
        self.fired = fired
        self.slot_a: Entry | None = None
        self.slot_b: Entry | None = None
        self.on_fire: object = None

    def ring(self) -> None:
        self.fired.append((self.name, self.clock.seconds()))
        if callable(self.on_fire):
            self.on_fire()


def ring(owner: Owner) -> None:
    owner.ring()


def ring_b(owner: Owner) -> None:
    owner.fired.append((owner.name + ".b", owner.clock.seconds()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fired() -> list[tuple[str, float]]:
    return []


def owners(clock: Clock, fired: list[tuple[str, float]], *names: str) -> list[Owner]:
    return [Owner(clock, name, fired) for name in names]


def test_timers_fire_at_their_deadlines_in_order(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b, c = owners(clock, fired, "a", "b", "c")
    s.start(32.0, a, "slot_a", ring)
    s.start(0.5, b, "slot_a", ring)
    s.start(5.0, c, "slot_a", ring)
    clock.advance(0.5)
    assert fired == [("b", 0.5)]
    clock.advance(4.5)
    assert fired == [("b", 0.5), ("c", 5.0)]
    clock.advance(27)
    assert fired == [("b", 0.5), ("c", 5.0), ("a", 32.0)]
    assert (a.slot_a, b.slot_a, c.slot_a) == (None, None, None)
    assert s.live == 0 and clock.getDelayedCalls() == []


def test_one_clock_call_whatever_the_number_of_timers(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    for i, owner in enumerate(owners(clock, fired, *"abcdefgh")):
        s.start(1.0 + i % 3, owner, "slot_a", ring)
        s.start(32.0, owner, "slot_b", ring_b)
    assert len(clock.getDelayedCalls()) == 1
    assert s.armed_at == 1.0 and s.live == 16


def test_rearmed_only_when_the_earliest_deadline_changes(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b, c = owners(clock, fired, "a", "b", "c")
    s.start(32.0, a, "slot_a", ring)
    [call] = clock.getDelayedCalls()
    s.start(40.0, b, "slot_a", ring)  # later: the same clock call
    assert clock.getDelayedCalls() == [call] and call.getTime() == 32.0
    s.start(0.5, c, "slot_a", ring)  # earlier: re-armed
    [call2] = clock.getDelayedCalls()
    assert call2 is not call and call2.getTime() == 0.5 and not call.active()
    clock.advance(0.5)
    [call3] = clock.getDelayedCalls()
    assert call3.getTime() == 32.0


def test_cancel_is_lazy_and_the_entry_skipped(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")
    s.start(1.0, a, "slot_a", ring)
    s.start(2.0, b, "slot_a", ring)
    s.cancel(a, "slot_a")
    assert a.slot_a is None and s.live == 1
    clock.advance(1.0)  # a's entry comes due and is skipped
    assert fired == []
    clock.advance(1.0)
    assert fired == [("b", 2.0)]


def test_cancel_without_a_timer_does_nothing(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    [a] = owners(clock, fired, "a")
    s.cancel(a, "slot_a")
    assert s.live == 0 and clock.getDelayedCalls() == []


def test_restarting_a_slot_replaces_its_timer(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    [a] = owners(clock, fired, "a")
    s.start(1.0, a, "slot_a", ring)
    s.start(3.0, a, "slot_a", ring)
    assert s.live == 1
    clock.advance(1)
    assert fired == []
    clock.advance(2)
    assert fired == [("a", 3.0)]


def test_cancelled_entry_of_a_reused_delay_is_not_mistaken(clock: Clock, fired: list) -> None:
    """Same owner, same slot, same delay: only the current entry fires."""
    s = Scheduler(clock)
    [a] = owners(clock, fired, "a")
    s.start(2.0, a, "slot_a", ring)
    clock.advance(1)
    s.cancel(a, "slot_a")
    s.start(2.0, a, "slot_a", ring)
    clock.advance(1)
    assert fired == []
    clock.advance(1)
    assert fired == [("a", 3.0)]


def test_slots_of_one_owner_are_independent(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    [a] = owners(clock, fired, "a")
    s.start(1.0, a, "slot_a", ring)
    s.start(2.0, a, "slot_b", ring_b)
    s.cancel(a, "slot_a")
    clock.advance(2)
    assert fired == [("a.b", 2.0)]


def test_idle_scheduler_drops_its_clock_call_and_stale_entries(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")
    s.start(1.0, a, "slot_a", ring)
    s.start(32.0, b, "slot_a", ring)
    s.cancel(a, "slot_a")
    assert len(clock.getDelayedCalls()) == 1  # b still live
    s.cancel(b, "slot_a")
    assert clock.getDelayedCalls() == [] and s.armed_at is None
    assert s._queues == {}  # nothing keeps a or b alive


def test_equal_deadlines_fire_in_insertion_order(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    names = "abcdef"
    for owner in owners(clock, fired, *names[:3]):
        s.start(1.0, owner, "slot_a", ring)
    clock.advance(0.5)
    for owner in owners(clock, fired, *names[3:]):  # other queue, same deadline (1.0)
        s.start(0.5, owner, "slot_a", ring)
    clock.advance(0.5)
    assert [name for name, _ in fired] == list(names)


def test_equal_deadlines_across_queues_keep_insertion_order(clock: Clock, fired: list) -> None:
    """The queue looked at first does not win a tie: the earlier start does."""
    s = Scheduler(clock)
    x, y, a, b = owners(clock, fired, "x", "y", "a", "b")
    s.start(0.5, x, "slot_a", ring)  # the 0.5 queue comes first in the scan
    s.start(1.0, a, "slot_a", ring)  # deadline 1.0, started first
    clock.advance(0.25)
    s.start(0.5, y, "slot_a", ring)  # keeps the 0.5 queue alive
    clock.advance(0.25)
    s.start(0.5, b, "slot_a", ring)  # deadline 1.0 too, started later, in the 0.5 queue
    clock.advance(0.5)
    assert [name for name, _ in fired] == ["x", "y", "a", "b"]


def test_a_clock_jumping_far_ahead_fires_everything_due_in_deadline_order(
    clock: Clock, fired: list
) -> None:
    s = Scheduler(clock)
    plan = {"l": 32.0, "a": 0.5, "k": 5.0, "g": 4.0, "e": 1.0, "h": 32.0, "late": 200.0}
    for name, delay in plan.items():
        [owner] = owners(clock, fired, name)
        s.start(delay, owner, "slot_a", ring)
    clock.advance(100)
    assert fired == [
        ("a", 100.0),
        ("e", 100.0),
        ("g", 100.0),
        ("k", 100.0),
        ("l", 100.0),
        ("h", 100.0),
    ]
    assert s.live == 1 and s.armed_at == 200.0


def test_timers_started_from_a_handler(clock: Clock, fired: list) -> None:
    """A handler may start timers (retransmissions double); they keep their own deadlines."""
    s = Scheduler(clock)
    [a] = owners(clock, fired, "a")
    interval = [0.5]

    def again() -> None:
        if len(fired) < 5:
            interval[0] *= 2
            s.start(interval[0], a, "slot_a", ring)

    a.on_fire = again
    s.start(0.5, a, "slot_a", ring)
    clock.pump([0.25] * 200)
    assert fired == [("a", t) for t in (0.5, 1.5, 3.5, 7.5, 15.5)]
    assert s.live == 0 and clock.getDelayedCalls() == []


class CountingClock(Clock):
    """A Clock that remembers the delay of every callLater."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> IDelayedCall:
        self.delays.append(delay)
        return super().callLater(delay, f, *args, **kw)


def test_handler_timer_due_at_once_fires_in_the_next_clock_call(fired: list) -> None:
    """Like the reactor: a timer due at once, started by a handler, waits for a new clock call."""
    clock = CountingClock()
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")

    def start_b() -> None:
        s.start(0.0, b, "slot_a", ring)
        assert fired == [("a", 1.0)]

    a.on_fire = start_b
    s.start(1.0, a, "slot_a", ring)
    clock.advance(1.0)
    assert fired == [("a", 1.0), ("b", 1.0)]
    assert clock.delays == [1.0, 0.0]


def test_handler_may_cancel_other_timers_due_in_the_same_call(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b, c = owners(clock, fired, "a", "b", "c")
    a.on_fire = lambda: s.cancel(b, "slot_a")
    s.start(1.0, a, "slot_a", ring)
    s.start(1.0, b, "slot_a", ring)
    s.start(2.0, c, "slot_a", ring)
    clock.advance(5)
    assert fired == [("a", 5.0), ("c", 5.0)]
    assert s.live == 0 and clock.getDelayedCalls() == []


def test_handler_cancelling_the_last_timer_leaves_nothing(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")
    a.on_fire = lambda: s.cancel(b, "slot_a")
    s.start(1.0, a, "slot_a", ring)
    s.start(30.0, b, "slot_a", ring)
    clock.advance(1)
    assert s.live == 0 and clock.getDelayedCalls() == [] and s._queues == {}


def test_a_failing_handler_leaves_the_others_scheduled(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")

    def boom() -> None:
        raise RuntimeError("handler bug")

    a.on_fire = boom
    s.start(1.0, a, "slot_a", ring)
    s.start(1.0, b, "slot_a", ring)
    with pytest.raises(RuntimeError):
        clock.advance(1)
    assert fired == [("a", 1.0)] and s.live == 1
    clock.advance(0)  # re-armed at once for what was due
    assert fired == [("a", 1.0), ("b", 1.0)]


def test_empty_queues_are_dropped(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b = owners(clock, fired, "a", "b")
    s.start(1.0, a, "slot_a", ring)
    s.start(7.0, b, "slot_a", ring)
    clock.advance(1)
    assert list(s._queues) == [7.0]


def test_an_entry_is_one_tuple_and_no_bound_method(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    owner_list = owners(clock, fired, *(str(i) for i in range(100)))
    s.start(1.0, owner_list[0], "slot_a", ring)  # creates the queue and the clock call
    gc.collect()
    before = len(gc.get_objects())
    for owner in owner_list[1:]:
        s.start(1.0, owner, "slot_a", ring)
    gc.collect()
    assert len(gc.get_objects()) - before == 99  # the entries, nothing else


def test_a_cancelled_timer_lets_go_of_its_owner_at_once(clock: Clock, fired: list) -> None:
    """Its queue entry stays until due, but holds only (deadline, seq): atoms."""
    import weakref

    class Weak(Owner):
        pass

    s = Scheduler(clock)
    [keep] = owners(clock, fired, "keep")
    s.start(32.0, keep, "slot_a", ring)  # keeps the queue and the clock call alive
    owner = Weak(clock, "gone", fired)
    ref = weakref.ref(owner)
    s.start(32.0, owner, "slot_a", ring)
    s.cancel(owner, "slot_a")
    del owner
    assert ref() is None
    gc.collect()
    [queue] = s._queues.values()
    assert len(queue.seqs) == len(queue.deadlines) == 2
    clock.advance(32)
    assert fired == [("keep", 32.0)]


def test_queued_entries_are_no_tracked_objects(clock: Clock, fired: list) -> None:
    """A queued timer is a float and an int: restarting one slot 1,000 times leaves
    1,000 stale entries and no object the garbage collector would have to scan."""
    s = Scheduler(clock)
    [owner] = owners(clock, fired, "a")
    s.start(32.0, owner, "slot_a", ring)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(1000):
            s.start(32.0, owner, "slot_a", ring)
        grown = len(gc.get_objects()) - before
    finally:
        gc.enable()
    [queue] = s._queues.values()
    assert len(queue.seqs) == len(queue.deadlines) == 1001
    assert grown < 10
    clock.advance(32)
    assert fired == [("a", 32.0)]


def test_start_at_queues_absolute_deadlines_in_a_lane(clock: Clock, fired: list) -> None:
    s = Scheduler(clock)
    a, b, c = owners(clock, fired, "a", "b", "c")
    s.start(2.0, a, "slot_a", ring)
    s.start_at(1.5, ("lane",), b, "slot_a", ring)
    s.start_at(3.0, ("lane",), c, "slot_a", ring)
    assert s.armed_at == 1.5 and s.live == 3
    clock.advance(5)
    assert fired == [("b", 5.0), ("a", 5.0), ("c", 5.0)]
    assert s.live == 0 and clock.getDelayedCalls() == []


# -- resolution: timers due within one tick share a clock call --------------------------


def test_with_a_resolution_timers_fire_on_ticks_never_early(clock: Clock, fired: list) -> None:
    s = Scheduler(clock, resolution=0.01)
    clock.advance(0.002)
    a, b, c = owners(clock, fired, "a", "b", "c")
    s.start(0.5, a, "slot_a", ring)  # due 0.502: fires on the 0.51 tick
    clock.advance(0.003)
    s.start(0.5, b, "slot_a", ring)  # due 0.505: the same tick, no new clock call
    assert len(clock.getDelayedCalls()) == 1
    s.start(0.6, c, "slot_a", ring)  # due 0.605: the 0.61 tick
    clock.advance(0.5 - 0.005)  # t = 0.5: nothing due yet
    assert fired == []
    clock.advance(0.0049)  # t = 0.5049: a is due, but not on a tick yet
    assert fired == []
    clock.advance(0.0051)  # t = 0.51
    assert [name for name, _ in fired] == ["a", "b"]
    assert all(t >= 0.505 for _, t in fired)
    clock.advance(0.1)
    assert [name for name, _ in fired] == ["a", "b", "c"]
    assert fired[-1][1] >= 0.605 and s.live == 0


def test_a_deadline_on_a_tick_fires_on_that_tick(clock: Clock, fired: list) -> None:
    s = Scheduler(clock, resolution=0.01)
    (a,) = owners(clock, fired, "a")
    s.start(0.3, a, "slot_a", ring)  # 0.3 / 0.01 is not exact in binary: still not early
    clock.advance(0.29999)
    assert fired == []
    clock.advance(0.01001)
    assert [name for name, _ in fired] == ["a"]
    assert fired[0][1] >= 0.3
