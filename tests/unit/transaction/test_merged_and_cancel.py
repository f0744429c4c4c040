"""Merged requests (RFC 3261 8.2.2.2) and CANCEL, server side (9.2) and client side (9.1)."""

from __future__ import annotations

import pytest

from b2bua.sip import Request
from b2bua.transaction import (
    FailureKind,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    SynthesizedResponse,
    TransactionState,
    build_cancel,
)
from b2bua.transaction.matching import client_key
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    FROM_ALICE_UDP,
    SDP,
    Harness,
    RecordingUser,
    answer,
    make_request,
    outgoing,
    outgoing_invite,
    reply,
)

S = TransactionState


def invite(**kw: object) -> Request:
    return make_request("INVITE", body=SDP, **kw)  # type: ignore[arg-type]


# -- merged requests -------------------------------------------------------------------


def test_merged_invite_gets_482_from_the_layer(h: Harness) -> None:
    h.feed(invite(), FROM_ALICE_UDP)
    # The same INVITE forked upstream and arriving by another path: new branch.
    merged = invite(branch="z9hG4bKforked", via_host="proxy2.example.com")
    h.feed(merged, FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request"]  # the TU never sees the merged request
    [loop] = h.transport.responses(482)
    assert loop.reason == "Loop Detected"
    assert loop.to_tag is not None
    assert loop.branch == "z9hG4bKforked"
    assert h.transport.sent[-1] == (loop, FROM_ALICE_UDP)
    assert h.layer.server_count == 2


def test_merged_request_retransmission_and_ack_handled_by_its_transaction(h: Harness) -> None:
    h.feed(invite(), FROM_ALICE_UDP)
    merged = dict(branch="z9hG4bKforked", via_host="proxy2.example.com")
    h.feed(invite(**merged), FROM_ALICE_UDP)
    h.feed(invite(**merged), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 482, 482]
    tag = h.transport.responses(482)[0].to_tag
    h.feed(make_request("ACK", to_tag=tag, **merged), FROM_ALICE_UDP)  # type: ignore[arg-type]
    assert h.tu.kinds() == ["request"]
    h.clock.advance(5)  # Timer I of the 482 transaction
    assert h.layer.server_count == 1


@pytest.mark.parametrize("method", ["OPTIONS", "MESSAGE", "REGISTER"])
def test_merged_non_invite_gets_482(h: Harness, method: str) -> None:
    h.feed(make_request(method), FROM_ALICE_UDP)
    h.feed(make_request(method, branch="z9hG4bKfork2"), FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request"]
    assert h.transport.statuses() == [482]


def test_requests_with_to_tag_are_never_merged(h: Harness) -> None:
    h.feed(make_request("INFO", to_tag="d1"), FROM_ALICE_UDP)
    h.feed(make_request("INFO", to_tag="d1", branch="z9hG4bKother"), FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request", "request"]


@pytest.mark.parametrize(
    ("method", "change"),
    [
        ("OPTIONS", {"cseq": 2}),
        ("OPTIONS", {"from_tag": "x"}),
        ("OPTIONS", {"call_id": "x@y"}),
        ("INFO", {}),  # same CSeq number, other CSeq method
    ],
)
def test_different_identity_is_not_merged(
    h: Harness, method: str, change: dict[str, object]
) -> None:
    h.feed(make_request("OPTIONS"), FROM_ALICE_UDP)
    h.feed(make_request(method, branch="z9hG4bKother", **change), FROM_ALICE_UDP)  # type: ignore[arg-type]
    assert h.tu.kinds() == ["request", "request"]


def test_merge_detection_ends_with_the_transaction(h: Harness) -> None:
    h.feed(make_request("OPTIONS"), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 200))
    h.clock.advance(32)  # Timer J
    assert h.layer._merged == {}
    h.feed(make_request("OPTIONS", branch="z9hG4bKlater"), FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request", "request"]


# -- CANCEL, server side --------------------------------------------------------------------


def pending_invite(h: Harness) -> tuple[InviteServerTransaction, Request]:
    h.feed(invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    assert isinstance(tx, InviteServerTransaction)
    return tx, tx.request


def test_cancel_of_pending_invite(h: Harness) -> None:
    tx, request = pending_invite(h)
    tx.respond(answer(request, 180, to_tag="callee1"))
    cancel = make_request("CANCEL")
    h.feed(cancel, FROM_ALICE_UDP)
    # The layer answers the CANCEL itself, with the To tag of the INVITE's responses.
    ok = h.transport.sent[-1][0]
    assert (ok.status, ok.cseq.method, ok.to_tag) == (200, "CANCEL", "callee1")  # type: ignore[union-attr]
    assert h.tu.events[-1] == ("cancel", tx, cancel)
    # The TU answers the INVITE with 487; Alice ACKs it.
    tx.respond(answer(request, 487, to_tag="callee1"))
    h.feed(make_request("ACK", to_tag="callee1"), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED
    assert h.transport.statuses() == [100, 180, 200, 487]


def test_cancel_before_any_tagged_response_gets_a_fresh_tag(h: Harness) -> None:
    _tx, _ = pending_invite(h)
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    ok = h.transport.responses(200)[0]
    assert ok.to_tag is not None
    assert h.tu.kinds() == ["request", "cancel"]


def test_cancel_retransmission_is_absorbed(h: Harness) -> None:
    pending_invite(h)
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 200, 200]
    assert h.tu.kinds() == ["request", "cancel"]


def test_cancel_after_final_gets_200_without_tu(h: Harness) -> None:
    tx, request = pending_invite(h)
    tx.respond(answer(request, 200))
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 200, 200]
    assert h.tu.kinds() == ["request"]


def test_cancel_matching_nothing_gets_481(h: Harness) -> None:
    cancel = make_request("CANCEL", branch="z9hG4bKunknown")
    h.feed(cancel, FROM_ALICE_UDP)
    [(response, origin)] = h.transport.sent
    assert (response.status, origin) == (481, FROM_ALICE_UDP)  # type: ignore[union-attr]
    assert h.tu.events == []
    h.clock.advance(32)
    h.assert_idle()


def test_cancel_for_other_sent_by_gets_481(h: Harness) -> None:
    pending_invite(h)
    h.feed(make_request("CANCEL", via_host="evil.example.com"), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 481]
    assert h.tu.kinds() == ["request"]


def test_cancel_transactions_are_cleaned_up(h: Harness) -> None:
    tx, request = pending_invite(h)
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    tx.respond(answer(request, 487))
    h.feed(make_request("ACK", to_tag="b0b5ta9"), FROM_ALICE_UDP)
    h.clock.advance(32)
    h.assert_idle()


# -- CANCEL, client side ---------------------------------------------------------------------


def calling(h: Harness) -> tuple[InviteClientTransaction, RecordingUser]:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    assert isinstance(tx, InviteClientTransaction)
    return tx, user


def test_cancel_waits_for_a_provisional(h: Harness) -> None:
    tx, user = calling(h)
    assert tx.cancel() is True
    assert tx.cancel_requested
    assert h.transport.methods() == ["INVITE"]  # RFC 3261 9.1: not before a 1xx
    h.feed(reply(tx.request, 180))
    assert h.transport.methods() == ["INVITE", "CANCEL"]
    assert user.statuses() == [180]
    assert h.layer.client_count == 2


def test_cancel_in_calling_stops_the_invite_retransmissions(h: Harness) -> None:
    tx, user = calling(h)
    h.clock.advance(0.5)  # Timer A: one retransmission
    assert h.transport.methods() == ["INVITE", "INVITE"]
    tx.cancel()
    h.clock.advance(10)
    assert h.transport.methods() == ["INVITE", "INVITE"]  # given up: no more
    h.feed(reply(tx.request, 180))  # a late provisional still gets the held CANCEL
    assert h.transport.methods() == ["INVITE", "INVITE", "CANCEL"]
    assert user.statuses() == [180]


def test_cancel_in_proceeding_is_sent_at_once(h: Harness) -> None:
    tx, _user = calling(h)
    h.feed(reply(tx.request, 100))
    assert tx.cancel() is True
    assert h.transport.methods() == ["INVITE", "CANCEL"]
    assert tx.cancel() is True  # idempotent
    assert h.transport.methods() == ["INVITE", "CANCEL"]


def test_cancel_request_follows_9_1(h: Harness) -> None:
    tx, _ = calling(h)
    h.feed(reply(tx.request, 180))
    tx.cancel(reason='SIP;cause=200;text="Call completed elsewhere"')
    [cancel] = h.transport.requests("CANCEL")
    assert h.transport.sent[-1] == (cancel, BOB_UDP)  # same destination as the INVITE
    invite = tx.request
    assert cancel.uri == invite.uri
    assert cancel.call_id == invite.call_id
    for name in ("From", "To"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert cancel.branch == tx.branch
    assert (cancel.cseq.number, cancel.cseq.method) == (invite.cseq.number, "CANCEL")
    assert cancel.headers.get_all("Route") == invite.headers.get_all("Route")
    assert cancel.headers.get("Reason") == 'SIP;cause=200;text="Call completed elsewhere"'
    assert cancel.body == b""
    cancel.validate()
    assert build_cancel(invite).headers.get("Reason") is None


def test_cancel_runs_in_its_own_non_invite_transaction(h: Harness) -> None:
    tx, user = calling(h)
    h.feed(reply(tx.request, 180))
    tx.cancel()
    [cancel] = h.transport.requests("CANCEL")
    ctx = h.layer._clients[client_key(tx.branch, "CANCEL")]
    assert isinstance(ctx, NonInviteClientTransaction)
    h.clock.advance(0.5)  # Timer E retransmits the CANCEL, not the INVITE
    assert h.transport.methods() == ["INVITE", "CANCEL", "CANCEL"]
    h.feed(reply(cancel, 200))  # 200 to the CANCEL: not for the INVITE's user
    assert user.statuses() == [180]
    assert ctx.state is S.COMPLETED
    h.feed(reply(tx.request, 487))
    assert user.statuses() == [180, 487]
    assert h.transport.methods()[-1] == "ACK"
    h.clock.advance(32)
    h.assert_idle()


def test_cancel_never_sent_if_final_comes_first(h: Harness) -> None:
    tx, user = calling(h)
    tx.cancel()
    h.feed(reply(tx.request, 486))
    assert h.transport.methods() == ["INVITE", "ACK"]
    assert user.statuses() == [486]
    assert tx.cancel() is False


def test_cancel_pending_then_2xx_leaves_the_call_to_the_tu(h: Harness) -> None:
    tx, _user = calling(h)
    tx.cancel()
    h.feed(reply(tx.request, 200))
    assert h.transport.methods() == ["INVITE"]  # the TU must ACK and BYE
    assert tx.state is S.ACCEPTED


def test_cancel_after_final_returns_false(h: Harness) -> None:
    tx, _ = calling(h)
    h.feed(reply(tx.request, 200))
    assert tx.cancel() is False
    assert not tx.cancel_requested
    assert h.transport.methods() == ["INVITE"]


def test_invite_given_up_64_t1_after_cancel(h: Harness) -> None:
    tx, user = calling(h)
    h.feed(reply(tx.request, 180))
    h.clock.advance(10)
    tx.cancel()
    h.feed(reply(h.transport.requests("CANCEL")[0], 200))
    h.clock.advance(31.9)
    assert tx.state is S.PROCEEDING
    h.clock.advance(0.1)
    [_, (_, response)] = user.responses
    assert isinstance(response, SynthesizedResponse)
    assert response.status == 408
    assert response.failure.kind is FailureKind.TIMEOUT
    assert tx.terminated
    h.assert_idle()


def test_cancel_over_tcp(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_TCP, user)
    h.feed(reply(tx.request, 180))
    tx.cancel()
    [cancel] = h.transport.requests("CANCEL")
    h.feed(reply(cancel, 200))  # Timer K = 0 over TCP
    h.feed(reply(tx.request, 487))  # Timer D = 0 over TCP
    assert user.statuses() == [180, 487]
    h.assert_idle()


def test_non_invite_cannot_be_cancelled(h: Harness) -> None:
    tx = h.layer.send_request(outgoing("OPTIONS"), BOB_UDP, RecordingUser())
    assert tx.cancel() is False
    assert h.transport.methods() == ["OPTIONS"]


def test_cancel_sent_by_the_tu_is_not_duplicated(h: Harness) -> None:
    tx, _ = calling(h)
    h.feed(reply(tx.request, 180))
    h.layer.send_request(build_cancel(tx.request), BOB_UDP, RecordingUser())
    tx.cancel()
    assert h.transport.methods() == ["INVITE", "CANCEL"]
    assert h.layer.client_count == 2
