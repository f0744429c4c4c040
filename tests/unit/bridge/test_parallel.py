"""Parallel forking (Routes(parallel=True)): every target at once, first 2xx wins (16.7)."""

from __future__ import annotations

from b2bua.routing import Routes
from tests.unit.bridge.harness import CALLEE, CALLEE2, Callee, Caller, Harness, routes


def parallel(h: Harness) -> tuple[Caller, Callee, Callee]:
    h.decision = Routes(routes(CALLEE, CALLEE2).targets, parallel=True)
    caller, first, second = Caller(h), Callee(h, CALLEE), Callee(h, CALLEE2, tag="carol7f2b99")
    caller.send_invite()
    return caller, first, second


def test_every_target_is_called_at_once() -> None:
    h = Harness()
    _caller, first, second = parallel(h)
    assert len(first.unique_requests("INVITE")) == 1
    assert len(second.unique_requests("INVITE")) == 1


def test_first_2xx_is_bridged_and_the_other_branch_cancelled() -> None:
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(180)
    second.answer(180)
    second.answer(200)
    assert caller.statuses("INVITE")[-1] == 200
    [cancel] = first.requests("CANCEL")
    assert cancel.branch == first.invite.branch
    first.reply(cancel, 200)
    first.answer(487)
    assert caller.statuses("INVITE").count(200) == 1
    assert 487 not in caller.statuses("INVITE")


def test_a_late_2xx_from_the_cancelled_branch_is_acked_and_hung_up() -> None:
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(180)
    second.answer(200)
    first.answer(200)  # crossed our CANCEL
    assert first.requests("ACK") and first.requests("BYE")
    assert caller.statuses("INVITE").count(200) == 1


def test_a_late_2xx_from_the_cancelled_branch_after_the_call_settled() -> None:
    """Once the caller ACKed, the call lets go of its attempts: a 2xx from the branch it
    cancelled (its early dialog still known) is still ACKed and hung up on, and the
    bridged call goes on."""
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(180)
    second.answer(200)
    caller.learn()
    caller.ack(caller.responses(200, "INVITE")[-1])
    [call] = h.manager.calls
    assert call.attempts == ()
    first.answer(200)  # crossed our CANCEL
    [ack] = first.requests("ACK")
    [bye] = first.requests("BYE")
    assert ack.to_tag == bye.to_tag == first.tag
    first.reply(bye, 200)
    assert len(second.requests("ACK")) == 1 and second.requests("BYE") == []
    assert h.manager.calls == {call}
    caller.request("BYE")
    [b_bye] = second.unique_requests("BYE")
    second.reply(b_bye, 200)
    assert h.manager.calls == set()


def test_one_busy_branch_does_not_end_the_call() -> None:
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(486)
    assert 486 not in caller.statuses("INVITE")
    second.answer(200)
    assert caller.statuses("INVITE")[-1] == 200


def test_all_branches_fail_best_response_wins() -> None:
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(486)
    second.answer(404)
    assert caller.statuses("INVITE")[-1] in (404, 486)  # same class: first come first served
    h.advance(40)
    h.assert_idle()


def test_a_6xx_ends_every_branch() -> None:
    h = Harness()
    caller, first, second = parallel(h)
    first.answer(180)
    second.answer(603)
    assert caller.statuses("INVITE")[-1] == 603
    assert first.requests("CANCEL")
