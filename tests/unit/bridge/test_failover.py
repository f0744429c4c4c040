"""Serial failover over the router's targets and the best final response (RFC 3261 16.7)."""

from __future__ import annotations

from b2bua.bridge import BridgeSettings
from b2bua.routing import Target
from b2bua.sip import Address
from tests.unit.bridge.harness import (
    CALLEE,
    CALLEE2,
    LONG,
    SDP_B,
    Callee,
    Caller,
    Harness,
    routes,
)


def _finish(h: Harness, caller: Caller, callee: Callee) -> None:
    """ACK the 200, hang up from the caller, let the callee answer the BYE."""
    caller.learn()
    caller.ack()
    caller.request("BYE")
    for bye in callee.unique_requests("BYE"):
        callee.reply(bye, 200)
    h.advance(LONG)
    h.assert_idle()


def test_486_stops_the_hunt(h: Harness, caller: Caller, callee: Callee, callee2: Callee) -> None:
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    callee.answer(486)
    assert len(callee.requests("ACK")) == 1  # the layer ACKs the non-2xx
    assert callee2.received() == []
    assert caller.statuses("INVITE") == [100, 486]
    busy = caller.responses(486)[-1]
    assert busy.to_tag is not None and busy.to_tag != callee.tag
    caller.ack_failure(busy)
    h.advance(LONG)
    assert callee2.received() == []
    h.assert_idle()


def test_503_fails_over_to_the_next_target(
    h: Harness, caller: Caller, callee: Callee, callee2: Callee
) -> None:
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    first = callee.invite
    callee.answer(503)
    assert len(callee.requests("ACK")) == 1
    second = callee2.invite
    assert second.branch != first.branch
    assert second.cseq.method == "INVITE"
    assert (second.request_uri.host, second.request_uri.port) == (CALLEE2.host, CALLEE2.port)
    assert second.body == first.body
    callee2.answer(180)
    callee2.answer(200, body=SDP_B)
    assert caller.statuses("INVITE") == [100, 180, 200]  # the 503 stays on the B side
    caller.learn()
    caller.ack()
    [ack] = callee2.requests("ACK")
    assert ack.cseq.number == second.cseq.number
    assert ack.to_tag == callee2.tag
    caller.request("BYE")
    assert len(callee2.requests("BYE")) == 1
    assert callee.requests("BYE") == []
    callee2.reply(callee2.requests("BYE")[0], 200)
    h.advance(LONG)
    h.assert_idle()


def test_failover_after_an_early_dialog(
    h: Harness, caller: Caller, callee: Callee, callee2: Callee
) -> None:
    """The first target rang, then failed: the caller's dialog carries on with the second."""
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    callee.answer(180)
    callee.answer(503)
    callee2.answer(180)
    callee2.answer(200, body=SDP_B)
    assert caller.statuses("INVITE") == [100, 180, 180, 200]
    tags = {r.to_tag for r in caller.responses(method="INVITE") if r.status > 100}
    assert len(tags) == 1
    _finish(h, caller, callee2)


def test_silent_target_answer_timeout(
    h: Harness, caller: Caller, callee: Callee, callee2: Callee
) -> None:
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    assert callee.requests("INVITE") and callee2.received() == []
    h.advance(4.9)
    assert callee2.received() == []
    h.advance(0.2)  # answer_timeout (5 s) passed
    assert len(callee2.requests("INVITE")) == 1
    # 9.1: no CANCEL to a target that sent no provisional response...
    assert callee.requests("CANCEL") == []
    callee2.answer(200, body=SDP_B)
    assert caller.statuses("INVITE") == [100, 200]
    # ... until it does; then its INVITE is cancelled.
    callee.answer(180)
    assert len(callee.requests("CANCEL")) == 1
    assert caller.statuses("INVITE") == [100, 200]
    callee.reply(callee.requests("CANCEL")[0], 200)
    callee.answer(487)
    _finish(h, caller, callee2)


def test_per_target_timeout(h: Harness, caller: Caller, callee: Callee, callee2: Callee) -> None:
    h.decision = routes(Target.of("sip:127.0.0.2:5070", timeout=1.0), CALLEE2)
    caller.send_invite()
    h.advance(1.01)
    assert len(callee2.requests("INVITE")) == 1


def test_ring_timeout() -> None:
    h = Harness(BridgeSettings(ring_timeout=3.0))
    caller = Caller(h)
    callee, callee2 = Callee(h, CALLEE), Callee(h, CALLEE2, tag="carol7f2b99")
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    callee.answer(100)  # Trying, but never ringing
    h.advance(2.9)
    assert callee2.received() == [] and callee.requests("CANCEL") == []
    h.advance(0.2)
    [cancel] = callee.requests("CANCEL")
    assert cancel.branch == callee.invite.branch
    assert len(callee2.requests("INVITE")) == 1
    callee.reply(cancel, 200)
    callee.answer(487)
    assert len(callee.requests("ACK")) == 1
    callee2.answer(180)
    callee2.answer(200, body=SDP_B)
    assert caller.statuses("INVITE") == [100, 180, 200]
    _finish(h, caller, callee2)


def test_unresolvable_target_is_skipped(h: Harness, caller: Caller, callee: Callee) -> None:
    h.decision = routes("sip:pbx.invalid", CALLEE)
    caller.send_invite()
    assert len(callee.requests("INVITE")) == 1


THIRD = Address("UDP", "127.0.0.5", 5075)


def _hunt(h: Harness, caller: Caller, statuses: list[int], targets: int = 0) -> int:
    """Route to ``targets`` (default: as many as statuses), answer each with its status."""
    parties = [Callee(h, CALLEE), Callee(h, CALLEE2, tag="carol7f2b99"), Callee(h, THIRD)]
    h.decision = routes(*(p.address for p in parties[: targets or len(statuses)]))
    caller.send_invite()
    for party, status in zip(parties, statuses, strict=False):
        party.answer(status)
    finals = [r for r in caller.responses(method="INVITE") if r.status >= 200]
    assert len(finals) == 1
    return finals[0].status


def test_503_and_500_give_500(h: Harness, caller: Caller) -> None:
    """16.7 step 6: a 503 is never forwarded; with only 5xx the caller gets 500."""
    assert _hunt(h, caller, [503, 500]) == 500
    assert caller.responses(500)[-1].reason != "Service Unavailable"


def test_all_503_give_500(h: Harness, caller: Caller) -> None:
    assert _hunt(h, caller, [503, 503]) == 500


def test_404_beats_503(h: Harness, caller: Caller) -> None:
    """16.7: the lowest class wins (4xx before 5xx)."""
    assert _hunt(h, caller, [503, 404]) == 404


def test_6xx_wins() -> None:
    """16.7 step 6: a 6xx is chosen over any other final response."""
    h = Harness(BridgeSettings(failover_statuses=frozenset({486, 503})))
    assert _hunt(h, Caller(h), [486, 603]) == 603


def test_6xx_stops_the_hunt(h: Harness, caller: Caller) -> None:
    """16.7 step 5: after a 6xx no new branch is tried."""
    assert _hunt(h, caller, [503, 603], targets=3) == 603
    assert h.transport.to(THIRD) == []


def test_every_target_silent(h: Harness, caller: Caller, callee: Callee, callee2: Callee) -> None:
    h.decision = routes(CALLEE, CALLEE2)
    caller.send_invite()
    h.advance(5.01)
    h.advance(5.01)
    finals = [r.status for r in caller.responses(method="INVITE") if r.status >= 200]
    assert finals == [408]
    caller.ack_failure(caller.responses(408)[-1])
    h.advance(LONG)
    assert callee.requests("CANCEL") == [] and callee2.requests("CANCEL") == []
    h.assert_idle()
