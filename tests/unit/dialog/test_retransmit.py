"""2xx retransmission until ACK (RFC 3261 13.3.1.4) and reliable 1xx until PRACK (RFC 3262 3)."""

from __future__ import annotations

import gc
import weakref

import pytest
from twisted.internet.task import Clock

from b2bua.dialog import (
    T1,
    T2,
    Dialog,
    ReliableProvisionalRetransmitter,
    TwoXXRetransmitter,
    ack_matches,
)
from b2bua.sip import Response
from b2bua.transaction.scheduler import Scheduler
from tests.unit.dialog.flows import SDP, alice_invite, alice_response, bob_response


class Recorder:
    """Records when each response was sent and whether the timeout fired."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.timeouts: list[float] = []

    def send(self, response: Response) -> None:
        self.times.append(self.clock.seconds())

    def timeout(self) -> None:
        self.timeouts.append(self.clock.seconds())


def run(clock: Clock, until: float, step: float = 0.25) -> None:
    """Advance the clock in small steps (as time passes, not in one jump)."""
    while clock.seconds() < until - 1e-9:
        clock.advance(step)


def test_2xx_intervals_double_from_t1_up_to_t2_and_time_out_at_64_t1() -> None:
    clock = Clock()
    rec = Recorder(clock)
    ok = bob_response(200, "OK", body=SDP)
    retransmitter = TwoXXRetransmitter(clock, rec.send, ok, on_timeout=rec.timeout)
    assert retransmitter.active and retransmitter.response is ok
    run(clock, 40)
    # Sent again at T1, then intervals T1, 2T1, 4T1 ... capped at T2 = 4 s.
    assert rec.times == pytest.approx([0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    intervals = [b - a for a, b in zip([0.0, *rec.times], rec.times, strict=False)]
    assert intervals == pytest.approx([0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    assert rec.timeouts == pytest.approx([64 * T1])
    assert retransmitter.retransmissions == 10
    assert not retransmitter.active
    assert clock.getDelayedCalls() == []


def test_ack_stops_retransmission_and_cancels_the_timeout() -> None:
    clock = Clock()
    rec = Recorder(clock)
    retransmitter = TwoXXRetransmitter(
        clock, rec.send, bob_response(200, "OK"), T1, T2, rec.timeout
    )
    run(clock, 2.0)
    assert rec.times == pytest.approx([0.5, 1.5])
    retransmitter.ack_received()
    assert not retransmitter.active
    assert clock.getDelayedCalls() == []
    run(clock, 100)
    assert len(rec.times) == 2 and rec.timeouts == []
    retransmitter.ack_received()  # a retransmitted ACK is harmless


def test_other_timer_values() -> None:
    clock = Clock()
    rec = Recorder(clock)
    TwoXXRetransmitter(
        clock, rec.send, bob_response(200, "OK"), t1=0.1, t2=0.3, on_timeout=rec.timeout
    )
    clock.pump([0.01] * 700)  # late by up to a step, but lateness does not accumulate
    assert rec.times[:5] == pytest.approx([0.1, 0.3, 0.6, 0.9, 1.2], abs=0.011)
    assert rec.times[-1] == pytest.approx(6.3, abs=0.011)
    assert rec.timeouts == pytest.approx([6.4], abs=0.011)
    assert rec.times[-1] < 6.4


def test_no_retransmission_at_the_timeout_instant() -> None:
    """With T2 = T1 a retransmission would fall exactly on 64*T1: only the timeout runs."""
    clock = Clock()
    rec = Recorder(clock)
    TwoXXRetransmitter(
        clock, rec.send, bob_response(200, "OK"), t1=1.0, t2=1.0, on_timeout=rec.timeout
    )
    for _ in range(70):
        clock.advance(1.0)
    assert rec.times == pytest.approx([float(i) for i in range(1, 64)])
    assert rec.timeouts == [64.0]


def test_send_first_sends_at_once() -> None:
    clock = Clock()
    rec = Recorder(clock)
    TwoXXRetransmitter(clock, rec.send, bob_response(200, "OK"), send_first=True)
    assert rec.times == [0.0]


def test_timeout_without_callback_just_stops() -> None:
    clock = Clock()
    retransmitter = TwoXXRetransmitter(clock, lambda r: None, bob_response(200, "OK"))
    run(clock, 33)
    assert not retransmitter.active and clock.getDelayedCalls() == []


def test_stop_from_inside_send_is_safe() -> None:
    clock = Clock()
    holder: list[TwoXXRetransmitter] = []

    def send(response: Response) -> None:
        holder[0].stop()

    holder.append(TwoXXRetransmitter(clock, send, bob_response(200, "OK")))
    clock.advance(0.5)
    assert not holder[0].active and clock.getDelayedCalls() == []


def test_stopped_retransmitter_releases_what_it_held() -> None:
    """No reference cycle survives: the TU's callbacks are dropped on stop."""

    class Leg:
        def send(self, response: Response) -> None:
            pass

    clock = Clock()
    leg = Leg()
    ref = weakref.ref(leg)
    retransmitter = TwoXXRetransmitter(
        clock, leg.send, bob_response(200, "OK"), on_timeout=lambda: None
    )
    retransmitter.ack_received()
    del leg
    gc.collect()
    assert ref() is None
    assert retransmitter.response is None


def test_t1_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TwoXXRetransmitter(Clock(), lambda r: None, bob_response(200, "OK"), t1=0)


def test_reliable_provisional_intervals_double_without_cap() -> None:
    clock = Clock()
    rec = Recorder(clock)
    ringing = bob_response(180, "Ringing")
    retransmitter = ReliableProvisionalRetransmitter(
        clock, rec.send, ringing, on_timeout=rec.timeout
    )
    run(clock, 40)
    # T1, then 1, 2, 4, 8, 16 s intervals: not capped at T2 (RFC 3262 3).
    assert rec.times == pytest.approx([0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
    assert rec.timeouts == pytest.approx([32.0])
    assert not retransmitter.active


def test_prack_stops_reliable_provisional() -> None:
    clock = Clock()
    rec = Recorder(clock)
    retransmitter = ReliableProvisionalRetransmitter(
        clock, rec.send, bob_response(183, "Session Progress"), 0.5, rec.timeout
    )
    clock.advance(0.5)
    retransmitter.prack_received()
    run(clock, 40)
    assert rec.times == [0.5] and rec.timeouts == []
    assert clock.getDelayedCalls() == []


def test_ack_matches_the_2xx_it_acknowledges() -> None:
    invite = alice_invite()
    ok = alice_response(200, "OK", SDP)
    dialog = Dialog.from_uac(invite, ok)
    ack = dialog.create_ack()
    assert ack_matches(ok, ack)
    assert not ack_matches(ok, dialog.create_request("INFO"))
    later = dialog.create_ack(7)
    assert not ack_matches(ok, later)
    ok_other_fork = alice_response(200, "OK")
    ok_other_fork.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=other")
    assert not ack_matches(ok_other_fork, ack)


def test_retransmitters_sharing_a_scheduler_keep_their_schedules() -> None:
    """On one shared scheduler (as the bridge runs them: no clock call per timer) each
    retransmitter keeps the T1, 2*T1 ... T2 schedule from its own start, whatever the
    others do, and the scheduler holds nothing once they stopped."""
    clock = Clock()
    scheduler = Scheduler(clock)
    first, second = Recorder(clock), Recorder(clock)
    TwoXXRetransmitter(
        clock, first.send, bob_response(200, "OK"), on_timeout=first.timeout, scheduler=scheduler
    )
    run(clock, 0.25)
    acked = TwoXXRetransmitter(
        clock, second.send, bob_response(200, "OK"), on_timeout=second.timeout, scheduler=scheduler
    )
    assert len(clock.getDelayedCalls()) == 1  # one clock call for four timers
    run(clock, 2.0)
    acked.ack_received()
    run(clock, 40)
    assert first.times == pytest.approx([0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    assert first.timeouts == pytest.approx([64 * T1])
    assert second.times == pytest.approx([0.75, 1.75]) and second.timeouts == []
    assert scheduler.live == 0 and clock.getDelayedCalls() == []
