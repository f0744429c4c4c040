"""How calls end without a BYE: maximum duration, a 2xx the caller never ACKs."""

from __future__ import annotations

from b2bua.bridge import BridgeSettings
from tests.unit.bridge.harness import (
    CALLEE,
    LONG,
    SDP_B,
    T1,
    Callee,
    Caller,
    Harness,
    establish,
)


def test_max_duration_ends_an_established_call() -> None:
    h = Harness(BridgeSettings(max_duration=10))
    caller, callee = Caller(h), Callee(h, CALLEE)
    establish(h, caller, callee)
    h.advance(9.9)
    assert caller.requests("BYE") == [] and callee.requests("BYE") == []
    h.advance(0.1)
    [a_bye] = caller.requests("BYE")
    [b_bye] = callee.requests("BYE")
    assert a_bye.call_id == caller.call_id and a_bye.to_tag == caller.tag
    assert b_bye.call_id == callee.invite.call_id and b_bye.to_tag == callee.tag
    assert h.manager.calls == set()
    caller.answer(a_bye, 200)
    callee.reply(b_bye, 200)
    h.advance(LONG)
    h.assert_idle()


def test_max_duration_while_ringing() -> None:
    """A call still ringing at the limit: the B INVITE is cancelled, the caller gets a final."""
    h = Harness(BridgeSettings(max_duration=10))
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(180)
    h.advance(10)
    [cancel] = callee.requests("CANCEL")
    finals = [r.status for r in caller.responses(method="INVITE") if r.status >= 200]
    assert len(finals) == 1 and finals[0] >= 400
    callee.reply(cancel, 200)
    callee.answer(487)
    caller.ack_failure(caller.responses(finals[0])[-1])
    h.advance(LONG)
    h.assert_idle()


def test_2xx_never_acked_by_the_caller(h: Harness, caller: Caller, callee: Callee) -> None:
    """13.3.1.4: after 64*T1 without ACK the session is ended with a BYE; the B leg's
    2xx still gets its ACK (13.2.2.4: the UAC core MUST ACK every 2xx) before its BYE."""
    caller.send_invite()
    callee.answer(180)
    callee.answer(200, body=SDP_B)
    h.advance(64 * T1 - 0.01)
    assert caller.requests("BYE") == [] and callee.requests("BYE") == []
    assert len(caller.responses(200, "INVITE")) > 5  # retransmitted all along
    h.advance(0.02)
    [a_bye] = caller.requests("BYE")
    assert a_bye.call_id == caller.call_id
    [b_bye] = callee.requests("BYE")
    order = [m.method for m in callee.unique_requests() if m.method in ("ACK", "BYE")]
    caller.answer(a_bye, 200)
    callee.reply(b_bye, 200)
    assert h.manager.calls == set() and h.manager.dialogs == {}
    h.advance(LONG)
    h.assert_idle()
    # checked last, so the rest of the scenario is verified whatever happens here
    assert order == ["ACK", "BYE"]
    acks = callee.requests("ACK")
    assert [a.cseq.number for a in acks] == [callee.invite.cseq.number]


def test_late_ack_after_the_call_ended_is_ignored(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    caller.send_invite()
    callee.answer(200, body=SDP_B)
    h.advance(64 * T1 + 0.1)
    seen = len(h.transport.sent)
    caller.learn()
    caller.ack()
    assert h.transport.sent[seen:] == []


def test_ended_calls_leave_nothing_behind(h: Harness, caller: Caller, callee: Callee) -> None:
    """Several calls one after the other: no call, dialog, transaction or timer remains."""
    for n in range(3):
        c = Caller(h, call_id=f"call-{n}@alice.example", tag=f"tag{n}")
        b = Callee(h, CALLEE, tag=f"bob{n}")
        h.transport.sent.clear()
        establish(h, c, b)
        c.request("BYE")
        b.reply(b.requests("BYE")[-1], 200)
    assert h.manager.calls_total == 3
    h.advance(LONG)
    h.assert_idle()


def test_a_2xx_after_everything_is_gone_gets_ack_and_bye(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """RFC 6026 7.2: a 2xx that no transaction takes any more (a late fork, long after
    the call) is still ACKed and hung up, through the same path as a second fork."""
    establish(h, caller, callee)
    caller.request("BYE")
    h.advance(64 * T1 + 1)  # every transaction of the call is gone
    acks, byes = len(callee.requests("ACK")), len(callee.requests("BYE"))
    callee.answer(200, body=SDP_B, tag="latefork99")
    late_acks, late_byes = callee.requests("ACK")[acks:], callee.requests("BYE")[byes:]
    assert len(late_acks) == 1 and len(late_byes) == 1
    assert late_acks[0].to_tag == "latefork99" == late_byes[0].to_tag
    assert late_acks[0].cseq.number == callee.invite.cseq.number


def test_each_call_ends_at_its_own_maximum_duration() -> None:
    """One timer serves every call's limit (calls end in the order they started): each
    call still ends exactly at its own limit, also when the oldest ended before."""
    h = Harness(BridgeSettings(max_duration=10))
    caller = Caller(h)  # the parties share their addresses: BYEs are told by Call-ID
    callee = Callee(h, CALLEE)
    calls = []
    for n in range(3):
        a = Caller(h, call_id=f"aged-{n}@alice.example", tag=f"atag{n}")
        b = Callee(h, CALLEE, tag=f"btag{n}")
        establish(h, a, b)
        calls.append((a, b, b.invite.call_id))
        h.advance(2)

    def byes() -> list[str]:
        """The Call-IDs of the BYEs the caller side got."""
        return [r.call_id for r in caller.unique_requests("BYE")]

    # the first call ends early: the others keep their limits (12 and 14 s after 0)
    first, first_b, _ = calls[0]
    first.request("BYE")
    first_b.reply(callee.requests("BYE")[-1], 200)
    h.advance(3.9)  # t = 9.9
    assert byes() == []
    h.advance(2.1)  # t = 12: the second call's limit
    assert byes() == [calls[1][0].call_id]
    h.advance(1.9)  # t = 13.9
    assert byes() == [calls[1][0].call_id]
    h.advance(0.1)  # t = 14
    assert byes() == [calls[1][0].call_id, calls[2][0].call_id]
    assert h.manager.calls == set()
    for bye in caller.unique_requests("BYE"):
        caller.answer(bye, 200)
    for bye in callee.unique_requests("BYE"):
        if bye.call_id != calls[0][2]:
            callee.reply(bye, 200)
    h.advance(LONG)
    h.assert_idle()
