"""A bridged call end to end, on the wire: set-up, relay, ACK, BYE, topology hiding, SDP."""

from __future__ import annotations

import gc

from b2bua.sip import Request
from b2bua.transaction import InviteClientTransaction, InviteServerTransaction
from tests.unit.bridge.harness import (
    CALLEE,
    CALLER,
    LONG,
    SDP_A,
    SDP_B,
    US,
    Callee,
    Caller,
    Harness,
    establish,
)


def _ours(request: Request) -> None:
    """The top Via and Contact are the B2BUA's (and the only Via is ours)."""
    assert len(request.vias) == 1
    via = request.top_via
    assert (via.transport, via.host, via.port) == ("UDP", US.host, US.port)
    assert via.branch is not None and via.branch.startswith("z9hG4bK")


def test_basic_call(h: Harness, caller: Caller, callee: Callee) -> None:
    invite = caller.send_invite()
    # 100 Trying to the caller at once, the INVITE re-originated towards the target.
    assert caller.statuses() == [100]
    b = callee.invite
    assert b.request_uri.user == "bob"
    assert (b.request_uri.host, b.request_uri.port) == (CALLEE.host, CALLEE.port)
    assert b.call_id != invite.call_id
    assert b.from_tag is not None and b.from_tag != invite.from_tag
    assert b.to_tag is None
    # identities keep their user part and display name (hosts may be rewritten)
    assert (b.from_.uri.user, b.from_.display_name) == ("alice", "Alice")
    assert (b.to.uri.user, b.to.display_name) == ("bob", "Bob")
    _ours(b)
    assert b.branch != invite.branch
    [contact] = b.contacts
    assert (contact.uri.host, contact.uri.port) == (US.host, US.port)
    assert b.cseq.method == "INVITE"
    assert b.max_forwards == 69  # decremented (the caller sent 70)
    assert b.body == SDP_A and b.content_type == "application/sdp"
    assert b.headers.get("User-Agent") == "alice-phone/1.0"  # end-to-end headers copied

    # 180: relayed with our To tag and our Contact.
    callee.answer(180)
    ringing = caller.responses(180)[-1]
    assert ringing.to_tag is not None and ringing.to_tag != callee.tag
    assert ringing.call_id == invite.call_id and ringing.cseq == invite.cseq
    assert ringing.branch == invite.branch
    assert [str(c.uri) for c in ringing.contacts] == ["sip:b2bua@127.0.0.1:5060"]

    # 200 with the answer: relayed with the SDP, same To tag as the 180.
    callee.answer(200, body=SDP_B)
    ok = caller.responses(200, "INVITE")[-1]
    assert ok.to_tag == ringing.to_tag
    assert ok.body == SDP_B and ok.content_type == "application/sdp"
    assert [str(c.uri) for c in ok.contacts] == ["sip:b2bua@127.0.0.1:5060"]
    assert callee.requests("ACK") == []  # the B ACK waits for the caller's

    # The caller's ACK: the callee gets the ACK for its 2xx (the B INVITE's CSeq).
    caller.learn()
    caller.ack(ok)
    [ack] = callee.requests("ACK")
    assert ack.cseq.number == b.cseq.number and ack.cseq.method == "ACK"
    assert str(ack.request_uri) == "sip:bob@127.0.0.2:5070"  # the callee's Contact
    assert "Route" not in ack.headers
    assert ack.call_id == b.call_id and ack.from_tag == b.from_tag
    assert ack.to_tag == callee.tag
    _ours(ack)
    assert ack.branch != b.branch  # the ACK for 2xx is a transaction of its own

    # BYE from the caller: 200 to it, BYE to the callee.
    bye = caller.request("BYE")
    assert caller.responses(200, "BYE")[-1].cseq == bye.cseq
    [b_bye] = callee.requests("BYE")
    assert b_bye.call_id == b.call_id and b_bye.to_tag == callee.tag
    assert b_bye.from_tag == b.from_tag
    assert b_bye.cseq.number == b.cseq.number + 1
    assert str(b_bye.request_uri) == "sip:bob@127.0.0.2:5070"
    _ours(b_bye)
    callee.reply(b_bye, 200)

    assert h.manager.calls == set()
    assert h.manager.dialogs == {}
    h.advance(LONG)
    h.assert_idle()


def test_no_retransmission_of_200_once_acked(h: Harness, caller: Caller, callee: Callee) -> None:
    establish(h, caller, callee)
    before = len(caller.responses(200, "INVITE"))
    h.advance(10)
    assert len(caller.responses(200, "INVITE")) == before


def test_200_retransmitted_to_caller_until_ack(h: Harness, caller: Caller, callee: Callee) -> None:
    """RFC 3261 13.3.1.4: the UAS core retransmits the 2xx at T1, 2*T1... until the ACK."""
    caller.send_invite()
    callee.answer(200, body=SDP_B)
    h.advance(0.5)
    h.advance(1.0)
    assert len(caller.responses(200, "INVITE")) == 3
    caller.learn()
    caller.ack()
    h.advance(10)
    assert len(caller.responses(200, "INVITE")) == 3
    assert len(callee.requests("ACK")) == 1


def test_topology_hiding(h: Harness, caller: Caller, callee: Callee) -> None:
    """Nothing identifying one side's signalling reaches the other side."""
    invite = caller.send_invite()
    callee.answer(180)
    callee.answer(200, body=SDP_B)
    caller.learn()
    caller.ack()
    b_invite = callee.invite
    # Requests both ways inside the call, then a BYE from the callee.
    info = caller.request("INFO", b"Signal=1\r\n", [("Content-Type", "application/dtmf-relay")])
    [b_info] = callee.requests("INFO")
    callee.reply(b_info, 200)
    reinvite = callee.request("INVITE", SDP_B)
    [a_reinvite] = caller.requests("INVITE")
    caller.answer(a_reinvite, 200, SDP_A)
    callee.ack(callee.responses(200, "INVITE")[-1])
    bye = callee.request("BYE")
    for request in caller.requests("BYE"):
        caller.answer(request, 200)

    to_callee = h.transport.bytes_to([CALLEE])
    to_caller = h.transport.bytes_to([CALLER])
    caller_secrets = [
        invite.call_id,
        caller.tag,
        "127.0.0.1:5080",  # the caller's Via sent-by and Contact
        "sip:alice@127.0.0.1:5080",
        *(r.branch for r in (invite, info)),
    ]
    for secret in caller_secrets:
        assert secret and secret.encode() not in to_callee, secret
    callee_secrets = [
        b_invite.call_id,  # the B leg's Call-ID
        b_invite.from_tag,  # our tag on the B leg
        callee.tag,
        "127.0.0.2",  # the callee's Via sent-by and Contact
        *(r.branch for r in (reinvite, bye)),
    ]
    for secret in callee_secrets:
        assert secret and secret.encode() not in to_caller, secret
    # and the caller saw its own identifiers only
    assert invite.call_id.encode() in to_caller
    assert info.call_id == invite.call_id


def test_bye_from_callee(h: Harness, caller: Caller, callee: Callee) -> None:
    establish(h, caller, callee)
    assert caller.invite is not None
    bye = callee.request("BYE")
    assert [r.cseq for r in callee.responses(200, "BYE")] == [bye.cseq]
    [a_bye] = caller.requests("BYE")
    # to the caller's Contact, in the caller's dialog (its Call-ID, tags swapped)
    assert str(a_bye.request_uri) == "sip:alice@127.0.0.1:5080"
    assert a_bye.call_id == caller.call_id
    assert a_bye.to_tag == caller.tag
    assert a_bye.from_tag == caller.remote_tag
    assert a_bye.from_.uri == caller.invite.to.uri
    assert a_bye.to.uri == caller.invite.from_.uri
    assert a_bye.cseq.method == "BYE"
    _ours(a_bye)
    caller.answer(a_bye, 200)
    assert h.manager.calls == set()
    h.advance(LONG)
    h.assert_idle()


def test_late_offer(h: Harness, caller: Caller, callee: Callee) -> None:
    """INVITE without SDP: the offer comes in the 200, the answer in the ACK (13.2.1)."""
    caller.send_invite(body=b"")
    b = callee.invite
    assert b.body == b"" and "Content-Type" not in b.headers
    callee.answer(200, body=SDP_B)
    ok = caller.responses(200, "INVITE")[-1]
    assert ok.body == SDP_B
    caller.learn()
    caller.ack(ok, body=SDP_A)
    [ack] = callee.requests("ACK")
    assert ack.body == SDP_A
    assert ack.content_type == "application/sdp"
    assert ack.cseq.number == b.cseq.number


def test_early_media(h: Harness, caller: Caller, callee: Callee) -> None:
    caller.send_invite()
    callee.answer(183, body=SDP_B)
    [progress] = caller.responses(183)
    assert progress.body == SDP_B and progress.content_type == "application/sdp"
    assert progress.to_tag is not None and progress.contacts
    callee.answer(200, body=SDP_B)
    ok = caller.responses(200, "INVITE")[-1]
    assert ok.to_tag == progress.to_tag


def test_ack_and_bye_follow_the_callee_contact_and_record_route(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """RFC 3261 12.1.2, 12.2.1.1, 13.2.2.4: B-leg in-dialog requests use the B dialog's
    route set (the 2xx's Record-Route, reversed) and remote target (its Contact),
    and go to the first route (8.1.2), not to the address the INVITE went to."""
    caller.send_invite()
    callee.answer(
        200,
        body=SDP_B,
        contact="<sip:bob@127.0.0.4:5072>",
        extra=[("Record-Route", "<sip:127.0.0.9:5090;lr>")],
    )
    caller.learn()
    caller.ack()
    [(ack, where)] = h.transport.requests("ACK")
    assert str(ack.request_uri) == "sip:bob@127.0.0.4:5072"
    assert ack.headers.get_all("Route") == ["<sip:127.0.0.9:5090;lr>"]
    assert (where.host, where.port) == ("127.0.0.9", 5090)
    caller.request("BYE")
    [(bye, where)] = h.transport.requests("BYE")
    assert bye.headers.get_all("Route") == ["<sip:127.0.0.9:5090;lr>"]
    assert (where.host, where.port) == ("127.0.0.9", 5090)


def test_callee_contact_change_is_followed(h: Harness, caller: Caller, callee: Callee) -> None:
    """A Contact in the 2xx other than the target's address: the BYE goes to the Contact."""
    caller.send_invite()
    callee.answer(200, body=SDP_B, contact="<sip:bob@127.0.0.4:5072>")
    caller.learn()
    caller.ack()
    caller.request("BYE")
    [(bye, where)] = h.transport.requests("BYE")
    assert str(bye.request_uri) == "sip:bob@127.0.0.4:5072"
    assert (where.host, where.port) == ("127.0.0.4", 5072)


def test_record_route_of_caller_copied_into_responses(h: Harness, caller: Caller) -> None:
    """RFC 3261 12.1.1: the UAS copies every Record-Route of the request into its 1xx/2xx
    (so the caller routes its in-dialog requests through its proxy)."""
    callee = Callee(h)
    caller.send_invite(extra=[("Record-Route", "<sip:127.0.0.1:5099;lr>")])
    callee.answer(180)
    callee.answer(200, body=SDP_B)
    for response in (caller.responses(180)[-1], caller.responses(200, "INVITE")[-1]):
        assert response.headers.get_all("Record-Route") == ["<sip:127.0.0.1:5099;lr>"]


def test_bye_to_caller_uses_its_record_route(h: Harness, caller: Caller) -> None:
    """The A dialog's route set is the INVITE's Record-Route: BYE to the caller goes there."""
    callee = Callee(h)
    caller.send_invite(extra=[("Record-Route", "<sip:127.0.0.1:5099;lr>")])
    callee.answer(200, body=SDP_B)
    caller.learn()
    caller.ack()
    callee.request("BYE")
    [(bye, where)] = [(r, a) for r, a in h.transport.requests("BYE") if a != CALLEE]
    assert bye.headers.get_all("Route") == ["<sip:127.0.0.1:5099;lr>"]
    assert str(bye.request_uri) == "sip:alice@127.0.0.1:5080"
    assert (where.host, where.port) == ("127.0.0.1", 5099)


def test_caller_bye_before_ack(h: Harness, caller: Caller, callee: Callee) -> None:
    """The caller hangs up before ACKing the 200: the callee's 2xx still gets an ACK
    (13.2.2.4, the UAC core MUST ACK every 2xx) before the BYE."""
    caller.send_invite()
    callee.answer(200, body=SDP_B)
    caller.learn()
    caller.request("BYE")
    assert caller.statuses("BYE") == [200]
    order = [m.method for m in callee.unique_requests() if m.method in ("ACK", "BYE")]
    assert order == ["ACK", "BYE"]


def test_redirect_keeps_its_contact(h: Harness, caller: Caller, callee: Callee) -> None:
    """A 3xx relayed to the caller must still say where to go (RFC 3261 21.3: the new
    address is in Contact); a 3xx without Contact is useless."""
    caller.send_invite()
    callee.answer(302, contact="<sip:carol@192.0.2.77:5060>")
    [moved] = caller.responses(302)
    assert [str(c.uri) for c in moved.contacts] == ["sip:carol@192.0.2.77:5060"]


def test_a_settled_call_lets_go_of_its_setup_state(
    h: Harness, caller: Caller, callee: Callee
) -> None:
    """Once the caller ACKed the 2xx the call holds no INVITE, transaction, attempt or
    routing state (memory per concurrent call: the transactions turn into ghosts and
    nothing keeps their objects), only its dialogs and the ACK sent to B as bytes; it
    still relays in both directions, ACKs a retransmitted 2xx again (before and
    after the client transaction goes) and hangs up."""
    caller.send_invite()
    callee.answer(180)
    ok_b = callee.answer(200, body=SDP_B)
    [call] = h.manager.calls
    assert call.a_tx is not None and call.attempts[0].tx is not None
    held = {id(call.a_tx), id(call.attempts[0].tx)}
    caller.learn()
    caller.ack(caller.responses(200, "INVITE")[-1])
    assert call.a_tx is None and call.a_invite is None
    assert call.attempts == () and call.answered_by is None and call.ringing is None
    assert call.targets == () and call.relays is None and call.pending_acks is None
    assert all(isinstance(sent, bytes) for sent in call.acks.values())
    assert h.leftovers().get("by_invite") is None
    [ack] = callee.requests("ACK")
    # B's 2xx again while its transaction still passes 2xx up: the same ACK
    h.feed(ok_b.to_bytes(), CALLEE)
    h.advance(2.0)  # T1 later both transactions are ghosts: nothing holds their objects
    gc.collect()
    kinds = (InviteServerTransaction, InviteClientTransaction)
    assert not [o for o in gc.get_objects() if isinstance(o, kinds) and id(o) in held]
    h.feed(ok_b.to_bytes(), CALLEE)  # and once the transaction is a ghost
    acks = callee.requests("ACK")
    assert [a.to_bytes() for a in acks] == [ack.to_bytes()] * 3
    # re-INVITE from the caller, relayed and ACKed
    re = caller.request("INVITE", SDP_A)
    [b_re] = [r for r in callee.unique_requests("INVITE") if r.to_tag is not None]
    callee.reply(b_re, 200, body=SDP_B, contact=callee.contact)
    [re_ok] = [r for r in caller.responses(200, "INVITE") if r.cseq == re.cseq]
    caller.ack_reinvite(re_ok)
    assert callee.requests("ACK")[-1].cseq.number == b_re.cseq.number
    # BYE from the callee: 200, and a BYE to the caller
    bye = callee.request("BYE")
    assert callee.responses(200, "BYE")[-1].cseq == bye.cseq
    [a_bye] = caller.requests("BYE")
    caller.answer(a_bye, 200)
    assert h.manager.calls == set()
    h.advance(LONG)
    h.assert_idle()
