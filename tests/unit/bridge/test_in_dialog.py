"""In-dialog traffic: forked 2xx, re-INVITE both ways, glare, UPDATE, PRACK, INFO, 481."""

from __future__ import annotations

from b2bua.sip import Request
from tests.unit.bridge.harness import (
    LONG,
    SDP_A,
    SDP_A_HOLD,
    SDP_B,
    SDP_B_HOLD,
    US,
    Callee,
    Caller,
    Harness,
    establish,
)


def _reinvites(callee: Callee) -> list[Request]:
    return [r for r in callee.unique_requests("INVITE") if r.to_tag is not None]


def _ours(request: Request) -> None:
    assert len(request.vias) == 1
    via = request.top_via
    assert (via.host, via.port) == (US.host, US.port)


def _hang_up(h: Harness, caller: Caller, callee: Callee) -> None:
    caller.request("BYE")
    for bye in callee.unique_requests("BYE"):
        callee.reply(bye, 200)
    h.advance(LONG)
    h.assert_idle()


# -- forks ------------------------------------------------------------------------------
def test_forked_2xx(h: Harness, caller: Caller, callee: Callee) -> None:
    """Two UASs answer one INVITE: bridge the first, ACK and BYE the second (13.2.2.4);
    a retransmission of the first 2xx gets the same ACK again."""
    caller.send_invite()
    b_invite = callee.invite
    callee.answer(180, tag="forkx1")
    callee.answer(183, tag="forky2", body=SDP_B)
    callee.answer(200, tag="forkx1", body=SDP_B)
    callee.answer(200, tag="forky2", body=SDP_B)
    assert caller.statuses("INVITE") == [100, 180, 183, 200]
    [y_ack] = callee.requests("ACK")
    assert y_ack.to_tag == "forky2" and y_ack.cseq.number == b_invite.cseq.number
    [y_bye] = callee.requests("BYE")
    assert y_bye.to_tag == "forky2" and y_bye.cseq.number > b_invite.cseq.number
    callee.reply(y_bye, 200)
    # The caller ACKs: the bridged fork gets its ACK.
    caller.learn()
    caller.ack()
    x_acks = [a for a in callee.requests("ACK") if a.to_tag == "forkx1"]
    assert len(x_acks) == 1
    # X retransmits its 2xx (our ACK was lost): the same ACK again, same branch.
    callee.answer(200, tag="forkx1", body=SDP_B)
    x_acks = [a for a in callee.requests("ACK") if a.to_tag == "forkx1"]
    assert len(x_acks) == 2
    assert x_acks[0].to_bytes() == x_acks[1].to_bytes()
    assert caller.statuses("INVITE") == [100, 180, 183, 200]  # nothing more to the caller
    assert [b.to_tag for b in callee.requests("BYE")] == ["forky2"]
    # The call is with X.
    caller.request("BYE")
    assert [b.to_tag for b in callee.unique_requests("BYE")] == ["forky2", "forkx1"]
    callee.reply(callee.unique_requests("BYE")[-1], 200)
    h.advance(LONG)
    h.assert_idle()


def test_2xx_of_a_live_call_without_its_transaction_is_acked_again_not_hung_up(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """RFC 6026: a 2xx retransmission the INVITE client transaction no longer passes to
    its user reaches the TU directly; for a live call it gets that call's ACK again,
    where a 2xx of no known dialog would be ACKed and hung up on."""
    establish(h, caller, callee)
    [ack] = callee.requests("ACK")
    retransmitted = callee.answer(200, body=SDP_B)
    before = len(callee.requests("ACK"))
    h.tu.stray_response_received(retransmitted)
    acks = callee.requests("ACK")
    assert len(acks) == before + 1
    assert acks[-1].to_bytes() == ack.to_bytes()
    assert callee.requests("BYE") == []
    _hang_up(h, caller, callee)


# -- re-INVITE --------------------------------------------------------------------------
def test_reinvite_from_caller(h: Harness, caller: Caller, callee: Callee) -> None:
    establish(h, caller, callee)
    b_invite = callee.invite
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    assert b_re.cseq.number == b_invite.cseq.number + 1 and b_re.cseq.method == "INVITE"
    assert b_re.call_id == b_invite.call_id
    assert b_re.from_tag == b_invite.from_tag and b_re.to_tag == callee.tag
    assert str(b_re.request_uri) == "sip:bob@127.0.0.2:5070"
    assert b_re.body == SDP_A_HOLD and b_re.content_type == "application/sdp"
    assert [str(c.uri) for c in b_re.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    _ours(b_re)
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)
    [ok] = [r for r in caller.responses(200, "INVITE") if r.cseq == re.cseq]
    assert ok.body == SDP_B_HOLD
    assert ok.to_tag == caller.remote_tag
    assert [str(c.uri) for c in ok.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    assert len(callee.requests("ACK")) == 1  # the B ACK waits for the caller's
    caller.ack_reinvite(ok)
    acks = callee.requests("ACK")
    assert len(acks) == 2
    assert acks[-1].cseq.number == b_re.cseq.number and acks[-1].cseq.method == "ACK"
    assert acks[-1].to_tag == callee.tag
    _hang_up(h, caller, callee)


def test_reinvite_from_callee(h: Harness, caller: Caller, callee: Callee) -> None:
    establish(h, caller, callee)
    re = callee.request("INVITE", SDP_B_HOLD)
    [a_re] = caller.requests("INVITE")
    assert a_re.call_id == caller.call_id
    assert a_re.to_tag == caller.tag and a_re.from_tag == caller.remote_tag
    assert str(a_re.request_uri) == "sip:alice@127.0.0.1:5080"
    assert a_re.body == SDP_B_HOLD
    assert [str(c.uri) for c in a_re.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    _ours(a_re)
    caller.answer(a_re, 200, SDP_A_HOLD)
    [ok] = [r for r in callee.responses(200, "INVITE") if r.cseq == re.cseq]
    assert ok.body == SDP_A_HOLD
    assert [str(c.uri) for c in ok.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    assert caller.requests("ACK") == []
    callee.ack(ok)
    [ack] = caller.requests("ACK")
    assert ack.cseq.number == a_re.cseq.number and ack.to_tag == caller.tag
    _ours(ack)
    _hang_up(h, caller, callee)


def test_reinvite_rejected_then_retried(h: Harness, caller: Caller, callee: Callee) -> None:
    """A 488 to a re-INVITE is relayed; the call stays up and the next re-INVITE works."""
    establish(h, caller, callee)
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    callee.reply(b_re, 488)
    assert [a.branch for a in callee.requests("ACK")][-1] == b_re.branch  # layer's ACK
    [rejected] = caller.responses(488)
    assert rejected.cseq == re.cseq
    caller.ack_failure(rejected, re)
    re2 = caller.request("INVITE", SDP_A_HOLD)
    assert len(_reinvites(callee)) == 2
    callee.reply(_reinvites(callee)[-1], 200, body=SDP_B_HOLD, contact=callee.contact)
    [ok] = [r for r in caller.responses(200, "INVITE") if r.cseq == re2.cseq]
    caller.ack_reinvite(ok)
    _hang_up(h, caller, callee)


def test_glare_callee_reinvite_while_caller_reinvite_pending(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """14.2: an INVITE on a dialog while our INVITE on it is in progress gets 491."""
    establish(h, caller, callee)
    caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    theirs = callee.request("INVITE", SDP_B_HOLD)
    assert [r.status for r in callee.responses() if r.cseq == theirs.cseq] == [100, 491]
    assert caller.requests("INVITE") == []
    # The first re-INVITE completes normally.
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)
    caller.ack_reinvite(caller.responses(200, "INVITE")[-1])
    assert callee.requests("ACK")[-1].cseq.number == b_re.cseq.number
    _hang_up(h, caller, callee)


def test_glare_caller_reinvite_while_callee_reinvite_pending(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    establish(h, caller, callee)
    callee.request("INVITE", SDP_B_HOLD)
    [a_re] = caller.requests("INVITE")
    mine = caller.request("INVITE", SDP_A_HOLD)
    assert [r.status for r in caller.responses() if r.cseq == mine.cseq] == [100, 491]
    assert _reinvites(callee) == []
    caller.answer(a_re, 200, SDP_A_HOLD)
    callee.ack(callee.responses(200, "INVITE")[-1])
    _hang_up(h, caller, callee)


def test_cancel_of_a_reinvite_is_relayed(h: Harness, caller: Caller, callee: Callee) -> None:
    """The caller cancels its re-INVITE: 200 to the CANCEL, 487 to the re-INVITE (9.2),
    and the relayed re-INVITE on the B leg is cancelled too (9.1)."""
    establish(h, caller, callee)
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    callee.reply(b_re, 100)
    caller.cancel(re)
    assert [r.status for r in caller.responses(method="CANCEL")] == [200]
    assert [r.status for r in caller.responses() if r.cseq == re.cseq] == [100, 487]
    [b_cancel] = callee.requests("CANCEL")
    assert b_cancel.branch == b_re.branch and b_cancel.cseq.number == b_re.cseq.number
    callee.reply(b_cancel, 200)
    callee.reply(b_re, 487)
    caller.ack_failure(caller.responses(487)[-1], re)
    # The call goes on: the next re-INVITE is relayed.
    caller.request("INVITE", SDP_A_HOLD)
    assert len(_reinvites(callee)) == 2


def test_reinvite_answered_after_the_caller_cancelled_it(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """The callee's 200 to a re-INVITE the caller has cancelled (and got 487 for): it must
    be ACKed (13.2.2.4), nothing may blow up, and the call must stay usable."""
    establish(h, caller, callee)
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    caller.cancel(re)
    caller.ack_failure(caller.responses(487)[-1], re)
    acks_before = len(callee.requests("ACK"))
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)  # must not raise
    acks = callee.requests("ACK")
    assert len(acks) == acks_before + 1 and acks[-1].cseq.number == b_re.cseq.number
    assert [r.status for r in caller.responses() if r.cseq == re.cseq] == [100, 487]
    re2 = caller.request("INVITE", SDP_A)
    assert [r.status for r in caller.responses() if r.cseq == re2.cseq] == [100]
    assert len(_reinvites(callee)) == 2


# -- UPDATE, PRACK, INFO ------------------------------------------------------------------
def test_update_in_early_dialog_both_ways(h: Harness, caller: Caller, callee: Callee) -> None:
    """RFC 3311: UPDATE in the early dialog, relayed each way with its answer."""
    caller.send_invite()
    b_invite = callee.invite
    callee.answer(183, body=SDP_B)
    caller.learn()
    up = caller.request("UPDATE", SDP_A_HOLD)
    [b_up] = callee.requests("UPDATE")
    assert b_up.to_tag == callee.tag and b_up.call_id == b_invite.call_id
    assert b_up.cseq.number > b_invite.cseq.number
    assert b_up.body == SDP_A_HOLD
    assert [str(c.uri) for c in b_up.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    _ours(b_up)
    callee.reply(b_up, 200, body=SDP_B_HOLD, contact=callee.contact)
    [ok] = caller.responses(200, "UPDATE")
    assert ok.cseq == up.cseq and ok.body == SDP_B_HOLD
    assert [str(c.uri) for c in ok.contacts] == ["sip:b2bua@127.0.0.1:5060"]

    theirs = callee.request("UPDATE", SDP_B)
    [a_up] = caller.requests("UPDATE")
    assert a_up.call_id == caller.call_id and a_up.to_tag == caller.tag
    assert a_up.from_tag == caller.remote_tag
    assert a_up.body == SDP_B
    _ours(a_up)
    caller.answer(a_up, 200, SDP_A)
    [ok2] = callee.responses(200, "UPDATE")
    assert ok2.cseq == theirs.cseq and ok2.body == SDP_A

    callee.answer(200, body=SDP_B)
    caller.ack()
    assert callee.requests("ACK")[-1].cseq.number == b_invite.cseq.number
    _hang_up(h, caller, callee)


def test_prack_relayed_with_rack_translated(h: Harness, caller: Caller, callee: Callee) -> None:
    """RFC 3262: a reliable 183 is relayed; the caller's PRACK goes to the callee with the
    RAck's CSeq number translated to the B INVITE's."""
    caller.send_invite(extra=[("Supported", "100rel")])
    b_invite = callee.invite
    callee.answer(183, body=SDP_B, extra=[("Require", "100rel"), ("RSeq", "1")])
    [progress] = caller.responses(183)
    assert progress.headers.get("RSeq") == "1"
    caller.learn()
    prack = caller.request("PRACK", extra=[("RAck", f"1 {caller.cseq_of_invite} INVITE")])
    [b_prack] = callee.requests("PRACK")
    assert b_prack.headers.get("RAck") == f"1 {b_invite.cseq.number} INVITE"
    assert b_prack.to_tag == callee.tag
    callee.reply(b_prack, 200)
    assert [r.cseq for r in caller.responses(200, "PRACK")] == [prack.cseq]


def test_info_relayed_both_ways(h: Harness, caller: Caller, callee: Callee) -> None:
    establish(h, caller, callee)
    dtmf = [("Content-Type", "application/dtmf-relay")]
    caller.request("INFO", b"Signal=5\r\nDuration=160\r\n", dtmf)
    [b_info] = callee.requests("INFO")
    assert b_info.body == b"Signal=5\r\nDuration=160\r\n"
    assert b_info.content_type == "application/dtmf-relay"
    callee.reply(b_info, 200)
    assert caller.statuses("INFO") == [200]
    callee.request("INFO", b"Signal=6\r\n", dtmf)
    [a_info] = caller.requests("INFO")
    caller.answer(a_info, 200)
    assert callee.statuses("INFO") == [200]
    _hang_up(h, caller, callee)


def test_in_dialog_request_for_unknown_dialog_gets_481(h: Harness, caller: Caller) -> None:
    """12.2.2: a request with a To tag that matches no dialog gets 481."""
    caller.remote_tag = "nosuchdialog"
    caller.remote_target = "sip:b2bua@127.0.0.1:5060"
    caller.request("BYE")
    caller.request("INVITE", SDP_A)
    assert caller.statuses("BYE") == [481]
    assert caller.statuses("INVITE") == [100, 481]
    seen = len(caller.received())
    caller.ack_reinvite(caller.responses(481, "INVITE")[-1])
    assert caller.received()[seen:] == []  # an ACK is never answered


def test_in_dialog_request_after_the_call_ended_gets_481(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    establish(h, caller, callee)
    caller.request("BYE")
    caller.request("INFO", b"x", [("Content-Type", "text/plain")])
    assert caller.statuses("INFO") == [481]


def test_out_of_order_cseq_gets_500(h: Harness, caller: Caller, callee: Callee) -> None:
    """12.2.2: a CSeq lower than the remote CSeq gets 500."""
    establish(h, caller, callee)
    caller.request("INFO", b"x", [("Content-Type", "text/plain")])
    callee.reply(callee.requests("INFO")[0], 200)
    caller.request("INFO", b"y", [("Content-Type", "text/plain")], cseq=50)
    assert caller.statuses("INFO") == [200, 500]
    assert len(callee.requests("INFO")) == 1


def test_late_offer_reinvite(h: Harness, caller: Caller, callee: Callee) -> None:
    """A re-INVITE without SDP: the offer comes in the 200, the answer in the ACK."""
    establish(h, caller, callee)
    re = caller.request("INVITE")
    [b_re] = _reinvites(callee)
    assert b_re.body == b""
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)
    [ok] = [r for r in caller.responses(200, "INVITE") if r.cseq == re.cseq]
    assert ok.body == SDP_B_HOLD
    caller.ack_reinvite(ok, body=SDP_A_HOLD)
    ack = callee.requests("ACK")[-1]
    assert ack.cseq.number == b_re.cseq.number
    assert ack.body == SDP_A_HOLD and ack.content_type == "application/sdp"


def test_retransmitted_2xx_to_relayed_reinvite_is_acked_again(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """13.2.2.4: the UAC core ACKs every 2xx, retransmissions included.  Our ACK for the
    callee's 200 to a relayed re-INVITE was lost: the retransmitted 200 gets it again."""
    establish(h, caller, callee)
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)
    caller.ack_reinvite(next(r for r in caller.responses(200, "INVITE") if r.cseq == re.cseq))
    first = [a for a in callee.requests("ACK") if a.cseq.number == b_re.cseq.number]
    assert len(first) == 1
    callee.reply(b_re, 200, body=SDP_B_HOLD, contact=callee.contact)  # retransmission
    again = [a for a in callee.requests("ACK") if a.cseq.number == b_re.cseq.number]
    assert len(again) == 2
    assert again[1].to_bytes() == again[0].to_bytes()


def test_retransmitted_2xx_from_caller_to_relayed_reinvite_is_acked_again(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """The same on the A leg: the callee's re-INVITE relayed to the caller, whose 200 is
    retransmitted after our ACK got lost."""
    establish(h, caller, callee)
    callee.request("INVITE", SDP_B_HOLD)
    [a_re] = caller.requests("INVITE")
    caller.answer(a_re, 200, SDP_A_HOLD)
    callee.ack(callee.responses(200, "INVITE")[-1])
    assert len(caller.requests("ACK")) == 1
    caller.answer(a_re, 200, SDP_A_HOLD)  # retransmission
    acks = caller.requests("ACK")
    assert len(acks) == 2 and acks[1].to_bytes() == acks[0].to_bytes()


def test_bye_while_a_relayed_reinvite_is_pending(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """15.1.2: after a BYE, pending requests of the dialog still get a final response
    (487 recommended); nothing is left waiting for ever."""
    establish(h, caller, callee)
    re = caller.request("INVITE", SDP_A_HOLD)
    [b_re] = _reinvites(callee)
    callee.reply(b_re, 100)
    caller.request("BYE")
    assert caller.statuses("BYE") == [200]
    assert [r.status for r in caller.responses() if r.cseq == re.cseq] == [100, 487]
    [bye] = callee.requests("BYE")
    callee.reply(bye, 200)
    callee.reply(b_re, 487)
    caller.ack_failure(caller.responses(487)[-1], re)
    h.advance(LONG)
    h.assert_idle()
