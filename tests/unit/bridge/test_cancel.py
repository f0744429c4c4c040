"""CANCEL from the caller (RFC 3261 9), alone and crossing the callee's 200."""

from __future__ import annotations

from twisted.internet import defer

from tests.unit.bridge.harness import LONG, SDP_B, Callee, Caller, Harness, routes


def _statuses_with_methods(caller: Caller) -> list[tuple[int, str]]:
    return [(r.status, r.cseq.method) for r in caller.responses()]


def test_cancel_before_answer(h: Harness, caller: Caller, callee: Callee) -> None:
    caller.send_invite()
    b_invite = callee.invite
    callee.answer(180)
    cancel = caller.cancel()
    # 9.2: 200 for the CANCEL, 487 for the INVITE.
    assert _statuses_with_methods(caller) == [
        (100, "INVITE"),
        (180, "INVITE"),
        (200, "CANCEL"),
        (487, "INVITE"),
    ]
    terminated = caller.responses(487)[-1]
    assert terminated.to_tag == caller.responses(180)[-1].to_tag
    assert caller.responses(200, "CANCEL")[-1].cseq == cancel.cseq
    # 9.1: the callee gets a CANCEL matching the B INVITE.
    [b_cancel] = callee.requests("CANCEL")
    assert b_cancel.branch == b_invite.branch
    assert b_cancel.uri == b_invite.uri
    assert b_cancel.call_id == b_invite.call_id
    assert b_cancel.from_tag == b_invite.from_tag
    assert b_cancel.to_tag is None
    assert b_cancel.cseq.number == b_invite.cseq.number and b_cancel.cseq.method == "CANCEL"
    # The callee answers: 200 to the CANCEL, 487 to the INVITE; the layer ACKs the 487.
    callee.reply(b_cancel, 200)
    callee.answer(487)
    [ack] = callee.requests("ACK")
    assert ack.branch == b_invite.branch  # 17.1.1.3: the ACK for a non-2xx
    assert ack.cseq.number == b_invite.cseq.number
    assert ack.to_tag == callee.tag
    caller.ack_failure(terminated)
    seen = len(caller.received())
    h.advance(LONG)
    assert caller.received()[seen:] == []  # nothing more reaches the caller
    assert callee.requests("BYE") == []
    h.assert_idle()


def test_cancel_before_any_provisional_waits_for_one(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """9.1: a CANCEL is not sent before a provisional response arrived."""
    caller.send_invite()
    caller.cancel()
    assert caller.statuses("INVITE") == [100, 487]
    assert callee.requests("CANCEL") == []
    callee.answer(180)
    assert len(callee.requests("CANCEL")) == 1
    assert caller.statuses("INVITE") == [100, 487]  # the late 180 is not relayed
    callee.reply(callee.requests("CANCEL")[0], 200)
    callee.answer(487)
    caller.ack_failure(caller.responses(487)[-1])
    h.advance(LONG)
    h.assert_idle()


def test_cancel_crossing_200(h: Harness, caller: Caller, callee: Callee) -> None:
    """The callee answers while our CANCEL is on its way: ACK and BYE its 2xx (RFC 3261
    9.1 and 15); the caller, already given 487, hears nothing of it."""
    caller.send_invite()
    b_invite = callee.invite
    callee.answer(180)
    caller.cancel()
    [b_cancel] = callee.requests("CANCEL")
    callee.answer(200, body=SDP_B)  # crossed the CANCEL
    callee.reply(b_cancel, 200)
    [ack] = callee.requests("ACK")
    assert ack.cseq.number == b_invite.cseq.number and ack.cseq.method == "ACK"
    assert ack.to_tag == callee.tag and ack.call_id == b_invite.call_id
    assert ack.from_tag == b_invite.from_tag
    assert str(ack.request_uri) == "sip:bob@127.0.0.2:5070"
    [bye] = callee.requests("BYE")
    assert bye.cseq.number > b_invite.cseq.number
    assert bye.to_tag == callee.tag and bye.call_id == b_invite.call_id
    assert [m.method for m in callee.unique_requests() if m.method in ("ACK", "BYE")] == [
        "ACK",
        "BYE",
    ]
    callee.reply(bye, 200)
    assert caller.statuses("INVITE") == [100, 180, 487]
    caller.ack_failure(caller.responses(487)[-1])
    h.advance(LONG)
    assert caller.statuses("INVITE") == [100, 180, 487]
    assert caller.requests() == []
    h.assert_idle()


def test_cancel_while_routing(h: Harness, caller: Caller, callee: Callee) -> None:
    """CANCEL before the router answered: 487, and no B leg is started afterwards."""
    pending: defer.Deferred[object] = defer.Deferred()
    h.decision = pending
    caller.send_invite()
    caller.cancel()
    assert caller.statuses("INVITE") == [100, 487]
    pending.callback(routes(callee.address))
    assert callee.requests() == []
    caller.ack_failure(caller.responses(487)[-1])
    h.advance(LONG)
    h.assert_idle()


def test_caller_bye_on_early_dialog(h: Harness, caller: Caller, callee: Callee) -> None:
    """RFC 3261 15: the caller may BYE an early dialog; 15.1.2: pending requests of that
    dialog get a final response, 487 recommended.  The B leg is cancelled."""
    caller.send_invite()
    callee.answer(180)
    caller.learn()
    caller.request("BYE")
    assert caller.statuses("BYE") == [200]
    assert len(callee.requests("CANCEL")) == 1
    assert caller.statuses("INVITE") == [100, 180, 487]


def test_cancel_crossing_200_with_record_route(h: Harness, caller: Caller, callee: Callee) -> None:
    """The unwanted 2xx's ACK and BYE follow its route set (12.2.1.1, 8.1.2): they go to
    the Record-Route hop, with a Route header."""
    caller.send_invite()
    callee.answer(180)
    caller.cancel()
    callee.answer(200, body=SDP_B, extra=[("Record-Route", "<sip:127.0.0.9:5090;lr>")])
    [(ack, ack_to)] = h.transport.requests("ACK")
    [(bye, bye_to)] = h.transport.requests("BYE")
    for request, where in ((ack, ack_to), (bye, bye_to)):
        assert request.headers.get_all("Route") == ["<sip:127.0.0.9:5090;lr>"]
        assert (where.host, where.port) == ("127.0.0.9", 5090)
