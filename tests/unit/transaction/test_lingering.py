"""Transactions that only absorb retransmissions keep only what that needs.

T1 after a transaction enters such a state (INVITE server Accepted/Confirmed,
non-INVITE server Completed, INVITE client Accepted/Completed, non-INVITE client
Completed) it drops the decoded header views of the messages it keeps, and a client
transaction in Completed forgets a user that has no ``transaction_terminated``.
Retransmissions are answered and absorbed exactly as before, after that point too.
"""

from __future__ import annotations

import gc
import types
from collections import Counter

import pytest

from b2bua.sip import Message, Request
from b2bua.transaction import NULL_USER, ClientTransaction, TransactionState
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    FROM_ALICE_TCP,
    FROM_ALICE_UDP,
    FROM_BOB_TCP,
    Harness,
    RecordingUser,
    answer,
    make_harness,
    make_request,
    outgoing,
    outgoing_invite,
    reply,
)
from tests.unit.transaction.test_layer import run_call

S = TransactionState
T1 = 0.5


def has_views(message: Message) -> bool:
    if isinstance(message, Request) and message._ruri is not None:
        return True
    return bool(message.headers.cache)


class PlainUser:
    """A client TU without ``transaction_terminated`` (like the bridge's Attempt)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    def response_received(self, tx: ClientTransaction, response: object, /) -> None:
        self.statuses.append(response.status)  # type: ignore[attr-defined]


# -- server side ------------------------------------------------------------------------


def test_nist_completed_answers_retransmissions_after_shedding(h: Harness) -> None:
    bye = make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t")
    h.feed(bye, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(bye, 200)
    ok.top_via  # noqa: B018 - a view the transport would decode
    tx.respond(ok)
    assert has_views(bye) and has_views(ok)  # the TU may still use them
    h.clock.advance(T1)
    assert not has_views(bye) and not has_views(ok)
    for _ in range(3):
        h.feed(make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t"), FROM_ALICE_UDP)
    assert [m for m, _ in h.transport.sent] == [ok] * 4
    assert {m.to_bytes() for m, _ in h.transport.sent} == {ok.to_bytes()}
    assert not has_views(ok)  # shed again after each resend
    assert tx.state is S.COMPLETED and tx.last_response is ok and tx.request is bye
    h.clock.advance(32)
    assert tx.terminated
    h.assert_idle()


def test_ist_accepted_absorbs_invite_and_passes_ack_after_shedding(h: Harness) -> None:
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(invite, 200)
    tx.respond(ok)
    h.clock.advance(T1)
    assert not has_views(invite) and not has_views(ok)
    h.transport.clear()
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)  # absorbed
    assert h.transport.sent == []
    ack = make_request("ACK", to_tag="b0b5ta9")
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)
    tx.respond(ok)  # the TU's own 2xx retransmission
    assert h.transport.sent == [(ok, FROM_ALICE_UDP)] and not has_views(ok)
    assert tx.to_tag == "b0b5ta9" and tx.final_sent


def test_ist_accepted_cancel_gets_200_with_the_to_tag_after_shedding(h: Harness) -> None:
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(invite, 200))
    h.clock.advance(T1)
    h.transport.clear()
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    [cancel_ok] = h.transport.responses()
    assert cancel_ok.status == 200 and cancel_ok.to_tag == "b0b5ta9"
    assert "cancel" not in h.tu.kinds()


def test_ist_completed_keeps_retransmitting_then_confirmed_sheds(h: Harness) -> None:
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    busy = answer(invite, 486)
    tx.respond(busy)
    h.clock.advance(0.5)
    h.clock.advance(1.0)  # Timer G twice: views in use, not shed
    assert h.transport.statuses() == [100, 486, 486, 486]
    h.feed(make_request("ACK", to_tag="b0b5ta9"), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED
    h.clock.advance(T1)
    assert not has_views(invite) and not has_views(busy)
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)  # absorbed in Confirmed
    assert h.transport.statuses() == [100, 486, 486, 486]
    h.clock.advance(5)
    assert tx.terminated
    h.assert_idle()


def test_ist_completed_over_tcp_answers_retransmissions_after_shedding(h: Harness) -> None:
    invite = make_request("INVITE", transport="TCP")
    h.feed(invite, FROM_ALICE_TCP)
    [tx] = h.tu.server_txs()
    busy = answer(invite, 486)
    tx.respond(busy)
    h.clock.advance(T1)
    assert not has_views(busy)
    h.feed(make_request("INVITE", transport="TCP"), FROM_ALICE_TCP)
    assert h.transport.statuses() == [100, 486, 486]
    h.feed(make_request("ACK", transport="TCP", to_tag="b0b5ta9"), FROM_ALICE_TCP)
    assert tx.terminated  # Timer I is zero over TCP
    h.clock.advance(64)
    h.assert_idle()


# -- client side ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [486, 603])
def test_ict_completed_resends_the_ack_after_shedding(h: Harness, status: int) -> None:
    user = PlainUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    final = reply(tx.request, status)
    h.feed(final)
    [ack] = h.transport.requests("ACK")
    assert tx._user is NULL_USER  # no transaction_terminated: nothing more to tell it
    h.clock.advance(T1)
    assert not has_views(tx.request) and not has_views(ack)
    h.feed(reply(tx.request, status))
    h.feed(reply(tx.request, status))
    acks = h.transport.requests("ACK")
    assert acks == [ack, ack, ack] and not has_views(ack)
    assert user.statuses == [status]  # retransmissions absorbed
    h.clock.advance(32)
    assert tx.terminated
    h.assert_idle()


def test_ict_completed_keeps_a_user_that_wants_to_hear_the_end(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    h.feed(reply(tx.request, 486))
    assert tx._user is user
    h.clock.advance(32)
    assert user.terminated == [tx]


def test_ict_accepted_passes_every_2xx_after_shedding(h: Harness) -> None:
    user = PlainUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    assert tx._user is user  # Accepted: further 2xx go to the user (RFC 6026)
    h.clock.advance(T1)
    assert not has_views(tx.request)
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 200, to_tag="fork2"))
    assert user.statuses == [200, 200, 200]
    assert h.transport.methods() == ["INVITE"]  # the TU ACKs 2xx, not the layer


def test_nict_completed_absorbs_and_forgets_a_plain_user(h: Harness) -> None:
    user = PlainUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    assert tx._user is NULL_USER
    h.clock.advance(T1)
    assert not has_views(tx.request)
    h.feed(reply(tx.request, 200))
    assert user.statuses == [200] and h.transport.methods() == ["BYE"]
    h.clock.advance(5)
    assert tx.terminated
    h.assert_idle()


def test_nict_completed_keeps_a_user_that_wants_to_hear_the_end(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    assert tx._user is user
    h.clock.advance(5)
    assert user.terminated == [tx] and tx._user is NULL_USER


def test_views_are_kept_until_t1_for_the_tu(h: Harness) -> None:
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, PlainUser())
    h.feed(reply(tx.request, 200))
    assert has_views(tx.request)
    h.clock.advance(T1 - 0.01)
    assert has_views(tx.request)
    h.clock.advance(0.01)
    assert not has_views(tx.request)


def test_terminated_over_tcp_sheds_at_once(h: Harness) -> None:
    """Cancelled timers' entries may keep a terminated transaction a while: without views."""
    user = RecordingUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x", transport="TCP"), BOB_TCP, user)
    h.feed(reply(tx.request, 200), FROM_BOB_TCP)
    assert tx.terminated and user.statuses() == [200]
    assert not has_views(tx.request)


# -- what a finished call leaves ----------------------------------------------------------


def kept_by_layer(h: Harness) -> Counter[str]:
    """The GC-tracked objects the layer keeps alive, by type, not counting the harness's
    clock, transport and TU, nor what a test user (RecordingUser) recorded."""
    gc.collect()  # untracks the tuples and dicts that hold only atoms
    stop = {id(h.clock), id(h.transport), id(h.tu)}
    seen: dict[int, object] = {}
    stack: list[object] = [h.layer]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or id(obj) in stop:
            continue
        if isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen[id(obj)] = obj
        if not isinstance(obj, RecordingUser):
            stack.extend(r for r in gc.get_referents(obj) if gc.is_tracked(r))
    return Counter(type(obj).__name__ for obj in seen.values())


def test_a_lingering_call_keeps_few_objects(h: Harness) -> None:
    """One bridged call lingering after T1 (INVITE server Accepted, INVITE client Accepted,
    BYE server Completed, BYE client Completed): the 4 transactions, one tuple per timer,
    4 requests and 2 responses without their decoded views, and the client users."""
    run_call(make_harness(), reliable=False)  # warm up
    idle = kept_by_layer(h)
    run_call(h, reliable=False)
    h.clock.advance(T1)
    kept = kept_by_layer(h) - idle
    assert kept["Request"] == 4 and kept["Response"] == 2 and kept["Headers"] == 6
    for view in ("Via", "CSeq", "URI", "NameAddr"):
        assert kept[view] == 0, view
    assert kept["DelayedCall"] == 1  # the scheduler's, whatever the number of timers
    assert kept["tuple"] <= 6  # timers L, M, J, K and the cancelled B and F
    # with what any live call shares (maps, queues, the clock call, Origin, Addresses):
    # 46 objects; 60 before the scheduler and the shedding.
    assert sum(kept.values()) <= 46, kept
