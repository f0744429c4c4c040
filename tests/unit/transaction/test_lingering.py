"""Lingering transactions become ghosts: tuples of atoms that the garbage collector skips.

T1 after a transaction enters a state that only absorbs or re-answers
retransmissions (INVITE server Accepted/Confirmed, non-INVITE server Completed,
INVITE client Accepted/Completed, non-INVITE client Completed) the layer replaces
it in its maps by a ghost (b2bua.transaction.ghosts) and forgets the object.
Retransmissions are answered and absorbed on the wire exactly as before; the ghost
expires at the transaction's deadline.  A client transaction in Completed forgets
a user that has no ``transaction_terminated`` at once; one that has it is told
when the ghost is made.
"""

from __future__ import annotations

import gc
import types
from collections import Counter

import pytest

from b2bua.sip import Address, Message, Request, Response
from b2bua.transaction import NULL_USER, ClientTransaction, TransactionState
from b2bua.transaction.ghosts import (
    ICT_ACCEPTED,
    ICT_COMPLETED,
    IST_ACCEPTED,
    IST_CONFIRMED,
    NICT_COMPLETED,
    NIST_COMPLETED,
)
from b2bua.transaction.matching import client_key
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    FROM_ALICE_TCP,
    FROM_ALICE_UDP,
    FROM_BOB_TCP,
    SDP,
    Harness,
    RecordingUser,
    answer,
    make_harness,
    make_request,
    outgoing,
    outgoing_invite,
    reply,
    run_call,
)

S = TransactionState
T1 = 0.5


def has_views(message: Message) -> bool:
    if isinstance(message, Request) and message._ruri is not None:
        return True
    return bool(message.headers.cache)


def ghost_kinds(h: Harness) -> list[int]:
    """The kinds of the ghosts in the layer's maps."""
    values = [*h.layer._servers.values(), *h.layer._clients.values()]
    return sorted(v["kind"] for v in values if isinstance(v, dict))


def assert_atoms(value: object) -> None:
    """``value`` is made only of atoms (a dict of atoms is never tracked by CPython)."""
    if isinstance(value, dict):
        assert type(value) is dict
        for key, item in value.items():
            assert_atoms(key)
            assert_atoms(item)
    else:
        assert value is None or type(value) in (str, bytes, int, float, bool), value


class PlainUser:
    """A client TU without ``transaction_terminated`` (like the bridge's Attempt)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    def response_received(self, tx: ClientTransaction, response: object, /) -> None:
        self.statuses.append(response.status)  # type: ignore[attr-defined]


# -- server side ------------------------------------------------------------------------


def test_nist_completed_ghost_answers_retransmissions_with_the_same_bytes(h: Harness) -> None:
    bye = make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t")
    h.feed(bye, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(bye, 200)
    tx.respond(ok)
    assert tx in h.layer._servers.values()  # itself for T1
    h.clock.advance(T1)
    assert ghost_kinds(h) == [NIST_COMPLETED]
    assert tx not in h.layer._servers.values()
    other = FROM_ALICE_UDP.__class__(FROM_ALICE_UDP.peer, FROM_ALICE_UDP.local, None)
    for origin in (FROM_ALICE_UDP, other):
        h.feed(make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t"), origin)
    sent = h.transport.sent
    assert len(sent) == 3
    assert {m.to_bytes() for m, _ in sent} == {ok.to_bytes()}
    assert all(isinstance(m, Response) for m, _ in sent)
    assert [o for _, o in sent[1:]] == [FROM_ALICE_UDP, other]  # to where it came from
    assert tx.state is S.COMPLETED and tx.last_response is ok and tx.request is bye
    assert tx.final_sent and tx.to_tag == "t"
    assert h.tu.kinds() == ["request"]
    h.clock.advance(32 - T1 - 0.01)
    assert tx.state is S.COMPLETED and h.layer.server_count == 1
    h.clock.advance(0.01)
    assert tx.terminated and tx.state is S.TERMINATED
    h.assert_idle()
    h.feed(make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t"), FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request", "request"]  # a new transaction now


def test_ist_accepted_ghost_absorbs_invite_and_passes_ack(h: Harness) -> None:
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(invite, 200)
    tx.respond(ok)
    h.clock.advance(T1)
    assert ghost_kinds(h) == [IST_ACCEPTED]
    h.transport.clear()
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)  # absorbed
    assert h.transport.sent == []
    ack = make_request("ACK", to_tag="b0b5ta9")
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)
    tx.respond(ok)  # the TU's own 2xx retransmission, through the detached transaction
    assert h.transport.sent == [(ok, FROM_ALICE_UDP)]
    assert tx.to_tag == "b0b5ta9" and tx.final_sent and tx.state is S.ACCEPTED and tx.detached
    assert tx.last_response is ok and tx.request is invite
    h.clock.advance(32 - T1)
    assert tx.terminated
    tx.respond(ok)  # too late: nothing happens
    assert len(h.transport.sent) == 1
    h.assert_idle()


def test_ist_accepted_ghost_answers_cancel_200_with_the_to_tag(h: Harness) -> None:
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


def test_ist_confirmed_ghost_absorbs_acks_and_invites(h: Harness) -> None:
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    busy = answer(invite, 486)
    tx.respond(busy)
    h.clock.advance(0.5)
    h.clock.advance(1.0)  # Timer G twice
    assert h.transport.statuses() == [100, 486, 486, 486]
    h.feed(make_request("ACK", to_tag="b0b5ta9"), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED
    h.clock.advance(T1)
    assert ghost_kinds(h) == [IST_CONFIRMED]
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    h.feed(make_request("ACK", to_tag="b0b5ta9"), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 486, 486, 486]
    assert h.tu.kinds() == ["request"]
    h.feed(make_request("CANCEL"), FROM_ALICE_UDP)
    assert h.transport.statuses()[-1] == 200 and h.transport.responses()[-1].to_tag == "b0b5ta9"
    h.clock.advance(5 - T1)  # Timer I
    assert tx.terminated
    h.clock.advance(32)  # the CANCEL's Timer J
    h.assert_idle()


def test_ist_completed_over_tcp_answers_retransmissions_after_shedding(h: Harness) -> None:
    """Completed waits for the ACK (no ghost): T1 in, it only drops its decoded views."""
    invite = make_request("INVITE", transport="TCP")
    h.feed(invite, FROM_ALICE_TCP)
    [tx] = h.tu.server_txs()
    busy = answer(invite, 486)
    tx.respond(busy)
    h.clock.advance(T1)
    assert not has_views(busy) and ghost_kinds(h) == []
    h.feed(make_request("INVITE", transport="TCP"), FROM_ALICE_TCP)
    assert h.transport.statuses() == [100, 486, 486]
    h.feed(make_request("ACK", transport="TCP", to_tag="b0b5ta9"), FROM_ALICE_TCP)
    assert tx.terminated  # Timer I is zero over TCP
    h.clock.advance(64)
    h.assert_idle()


def test_transport_errors_for_ghosts_are_dropped(h: Harness) -> None:
    """Nothing waits for a lingering transaction's messages: logged at debug, dropped."""
    invite = make_request("INVITE")
    h.feed(invite, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(invite, 200)
    tx.respond(ok)
    bye = make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t")
    h.feed(bye, FROM_ALICE_UDP)
    bye_ok = answer(bye, 200)
    h.tu.server_txs()[-1].respond(bye_ok)
    h.clock.advance(T1)
    h.feed(make_request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="t"), FROM_ALICE_UDP)
    resent = h.transport.responses()[-1]
    tx.respond(ok)  # the TU's 2xx retransmission
    for message in (ok, bye_ok, resent):
        h.layer.transport_error(message, FROM_ALICE_UDP.peer, "unreachable")
    h.clock.advance(0)
    assert h.tu.kinds() == ["request", "request"]
    assert ghost_kinds(h) == [IST_ACCEPTED, NIST_COMPLETED]
    assert tx.state is S.ACCEPTED


# -- client side ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [486, 603])
@pytest.mark.parametrize("where", [BOB_UDP, Address("UDP", "2001:db8::5", 5070)])
def test_ict_completed_ghost_resends_the_ack(h: Harness, status: int, where: Address) -> None:
    """The ghost keeps the ACK's destination as text: an IPv6 host comes back whole."""
    user = PlainUser()
    tx = h.layer.send_request(outgoing_invite(), where, user)
    h.feed(reply(tx.request, status))
    [ack] = h.transport.requests("ACK")
    assert tx._user is NULL_USER  # no transaction_terminated: nothing more to tell it
    h.clock.advance(T1)
    assert ghost_kinds(h) == [ICT_COMPLETED]
    h.feed(reply(tx.request, status))
    h.feed(reply(tx.request, 180))  # absorbed
    h.feed(reply(tx.request, status))
    acks = h.transport.sent[-2:]
    assert [m.to_bytes() for m, _ in acks] == [ack.to_bytes()] * 2
    assert [d for _, d in acks] == [where] * 2
    assert user.statuses == [status]  # retransmissions absorbed
    assert h.tu.events == []
    h.clock.advance(32 - T1 - 0.01)
    assert tx.state is S.COMPLETED
    h.clock.advance(0.01)
    assert tx.terminated
    h.assert_idle()


def test_ict_completed_ghost_hands_a_2xx_to_the_core(h: Harness) -> None:
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, PlainUser())
    h.feed(reply(tx.request, 404))
    h.clock.advance(T1)
    ok = reply(tx.request, 200, to_tag="otherfork")
    h.feed(ok)
    assert h.tu.events == [("stray", ok)]
    assert len(h.transport.requests("ACK")) == 1


def test_a_user_that_wants_to_hear_the_end_is_told_when_the_ghost_is_made(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    h.feed(reply(tx.request, 486))
    assert tx._user is user and user.terminated == []
    h.clock.advance(T1)
    assert user.terminated == [tx] and tx._user is NULL_USER
    assert tx.state is S.COMPLETED and not tx.terminated  # until Timer D
    h.clock.advance(32)
    assert user.terminated == [tx] and tx.terminated


def test_ict_accepted_gives_2xx_to_the_user_for_t1_then_to_the_core(h: Harness) -> None:
    """The change ghosts make: after T1 a 2xx retransmission in Accepted goes to the layer
    TU's stray_response_received (which ACKs it for a live dialog), not to the user."""
    user = PlainUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 200))
    assert user.statuses == [200, 200] and h.tu.events == []
    h.clock.advance(T1)
    assert ghost_kinds(h) == [ICT_ACCEPTED] and tx._user is NULL_USER
    again = reply(tx.request, 200)
    fork = reply(tx.request, 200, to_tag="fork2")
    h.feed(again)
    h.feed(fork)
    h.feed(reply(tx.request, 180))
    h.feed(reply(tx.request, 486))
    assert user.statuses == [200, 200]
    assert h.tu.events == [("stray", again), ("stray", fork)]
    assert h.transport.methods() == ["INVITE"]  # the TU ACKs 2xx, not the layer
    assert tx.state is S.ACCEPTED and tx.cancel() is False
    h.clock.advance(32 - T1)
    assert tx.terminated
    h.assert_idle()


def test_nict_completed_ghost_absorbs(h: Harness) -> None:
    user = PlainUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    assert tx._user is NULL_USER
    h.clock.advance(T1)
    assert ghost_kinds(h) == [NICT_COMPLETED]
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 500))
    assert user.statuses == [200] and h.transport.methods() == ["BYE"]
    assert h.tu.events == []
    h.clock.advance(5 - T1 - 0.01)
    assert tx.state is S.COMPLETED and h.layer.client_count == 1
    h.clock.advance(0.01)
    assert tx.terminated and h.layer.client_count == 0
    h.assert_idle()


def test_nict_completed_tells_a_user_that_wants_to_hear_the_end(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    assert tx._user is user
    h.clock.advance(5)
    assert user.terminated == [tx] and tx._user is NULL_USER


def test_the_transaction_stays_itself_for_t1(h: Harness) -> None:
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, PlainUser())
    h.feed(reply(tx.request, 200))
    h.clock.advance(T1 - 0.01)
    assert h.layer._clients[client_key(tx.branch, "INVITE")] is tx
    h.clock.advance(0.01)
    assert isinstance(h.layer._clients[client_key(tx.branch, "INVITE")], dict)


def test_lingering_shorter_than_t1_needs_no_ghost() -> None:
    """Timer K = T4 below T1: the transaction just ends on its timer."""
    from b2bua.transaction import TimerConfig

    h = make_harness(TimerConfig(t1=0.5, t2=4, t4=0.25))
    user = RecordingUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_UDP, user)
    h.feed(reply(tx.request, 200))
    h.clock.advance(0.25)
    assert tx.terminated and user.terminated == [tx]
    h.assert_idle()


# -- reliable transports ------------------------------------------------------------------


def test_over_tcp_zero_timers_end_at_once_and_l_m_become_ghosts(h: Harness) -> None:
    """Over TCP, D, I, J, K are zero (no ghost); L and M are 64*T1 (ghosts)."""
    bye = make_request("BYE", transport="TCP", branch="z9hG4bKbye", cseq=2, to_tag="t")
    h.feed(bye, FROM_ALICE_TCP)
    h.tu.server_txs()[-1].respond(answer(bye, 200))
    btx = h.layer.send_request(outgoing("BYE", to_tag="x"), BOB_TCP, RecordingUser())
    h.feed(reply(btx.request, 200), FROM_BOB_TCP)
    busy = h.layer.send_request(outgoing_invite(call_id="busy"), BOB_TCP, RecordingUser())
    h.feed(reply(busy.request, 486), FROM_BOB_TCP)
    assert btx.terminated and busy.terminated
    assert (h.layer.server_count, h.layer.client_count) == (0, 0)
    invite = make_request("INVITE", transport="TCP")
    h.feed(invite, FROM_ALICE_TCP)
    h.tu.server_txs()[-1].respond(answer(invite, 200))
    itx = h.layer.send_request(outgoing_invite(), BOB_TCP, RecordingUser())
    h.feed(reply(itx.request, 200), FROM_BOB_TCP)
    h.clock.advance(T1)
    assert ghost_kinds(h) == [IST_ACCEPTED, ICT_ACCEPTED]
    h.clock.advance(32 - T1)
    h.assert_idle()


# -- RFC 2543 peers and merged requests ---------------------------------------------------


def old_invite(**kw: object) -> Request:
    defaults: dict[str, object] = {"branch": None, "body": SDP}
    defaults.update(kw)
    return make_request("INVITE", **defaults)  # type: ignore[arg-type]


def test_2543_ack_and_cancel_match_an_accepted_ghost(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 200, to_tag="ok1"))
    h.clock.advance(T1)
    assert ghost_kinds(h) == [IST_ACCEPTED]
    h.transport.clear()
    h.feed(old_invite(), FROM_ALICE_UDP)  # a retransmission: absorbed
    assert h.transport.sent == [] and h.tu.kinds() == ["request"]
    ack = make_request("ACK", branch=None, to_tag="ok1")
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)
    other = make_request("ACK", branch=None, to_tag="other")
    h.feed(other, FROM_ALICE_UDP)  # an ACK for another 2xx: the TU's as well
    assert h.tu.events[-1] == ("ack", other, FROM_ALICE_UDP)
    h.feed(make_request("CANCEL", branch=None), FROM_ALICE_UDP)
    [cancel_ok] = h.transport.responses()
    assert cancel_ok.status == 200 and cancel_ok.to_tag == "ok1"
    clash = old_invite(to_tag="someone")  # same key, another To tag: dropped
    h.feed(clash, FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request", "ack", "ack"]
    assert len(h.transport.sent) == 1


def test_2543_ack_matches_a_confirmed_ghost_by_the_response_to_tag(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 486, to_tag="busy1"))
    h.feed(make_request("ACK", branch=None, to_tag="busy1"), FROM_ALICE_UDP)
    h.clock.advance(T1)
    assert ghost_kinds(h) == [IST_CONFIRMED]
    h.feed(make_request("ACK", branch=None, to_tag="busy1"), FROM_ALICE_UDP)  # absorbed
    assert h.tu.kinds() == ["request"]
    other = make_request("ACK", branch=None, to_tag="nottheone")
    h.feed(other, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", other, FROM_ALICE_UDP)


def test_2543_non_invite_retransmission_matches_a_completed_ghost(h: Harness) -> None:
    info = make_request("INFO", branch=None, to_tag="t1")
    h.feed(info, FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    ok = answer(info, 200)
    tx.respond(ok)
    h.clock.advance(T1)
    assert ghost_kinds(h) == [NIST_COMPLETED]
    h.feed(make_request("INFO", branch=None, to_tag="t1"), FROM_ALICE_UDP)
    assert [m.to_bytes() for m, _ in h.transport.sent] == [ok.to_bytes()] * 2
    h.feed(make_request("INFO", branch=None, to_tag="t2"), FROM_ALICE_UDP)  # clash: dropped
    assert len(h.transport.sent) == 2 and h.tu.kinds() == ["request"]


def test_merged_requests_are_detected_against_a_ghost(h: Harness) -> None:
    h.feed(make_request("INVITE", body=SDP), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 200))
    h.clock.advance(T1)
    mkeys = list(h.layer._merged)
    assert len(mkeys) == 1 and isinstance(h.layer._merged[mkeys[0]], dict)
    h.feed(make_request("INVITE", branch="z9hG4bKfork2", body=SDP), FROM_ALICE_UDP)
    assert h.transport.statuses()[-1] == 482 and h.tu.kinds() == ["request"]
    h.clock.advance(32)
    h.assert_idle()


# -- what a finished call leaves ----------------------------------------------------------


def kept_by_layer(h: Harness) -> Counter[str]:
    """The GC-tracked objects the layer keeps alive, by type, not counting the harness's
    clock, transport and TU, nor what a test user (RecordingUser) recorded."""
    gc.collect()  # untracks the tuples and dicts that hold only atoms
    gc.collect()  # and those whose items the first one untracked
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


def test_a_lingering_call_is_made_of_atoms(h: Harness) -> None:
    """One bridged call lingering after T1 (INVITE server Accepted, INVITE client Accepted,
    BYE server Completed, BYE client Completed): four ghosts, none of them tracked,
    nor their keys, from the moment they are made: no collection ever scans them."""
    run_call(make_harness(), reliable=False)  # warm up
    run_call(h, reliable=False)
    gc.disable()  # no collection may run (and untrack anything) before the checks
    try:
        h.clock.advance(T1)
        ghosts = [*h.layer._servers.values(), *h.layer._clients.values()]
        keys = [*h.layer._servers, *h.layer._clients, *h.layer._merged]
        tracked = [x for x in (*ghosts, *keys, *h.layer._merged.values()) if gc.is_tracked(x)]
    finally:
        gc.enable()
    assert tracked == []
    assert sorted(g["kind"] for g in ghosts) == [  # type: ignore[index]
        IST_ACCEPTED,
        NIST_COMPLETED,
        ICT_ACCEPTED,
        NICT_COMPLETED,
    ]
    for ghost in ghosts:
        assert_atoms(ghost)
        assert not gc.is_tracked(ghost)
    for mkey, ghost in h.layer._merged.items():
        assert not gc.is_tracked(mkey) and not gc.is_tracked(ghost)


def test_finished_calls_keep_at_most_two_tracked_objects_each(h: Harness) -> None:
    """What the layer keeps for lingering calls, past the shared structures (maps, FIFOs,
    the clock call), is untracked: 0 per call, whatever the number of calls."""
    run_call(make_harness(), reliable=False)  # warm up
    one = make_harness()
    run_call(one, reliable=False)
    one.clock.advance(T1)
    base = sum(kept_by_layer(one).values())
    calls = 20
    for n in range(calls):
        h.tu.events.clear()
        _call(h, n)
    h.clock.advance(T1)
    assert h.layer.server_count == 2 * calls and h.layer.client_count == 2 * calls
    kept = kept_by_layer(h)
    assert (sum(kept.values()) - base) / (calls - 1) <= 2, kept
    for name in ("Request", "Response", "Headers", "InviteServerTransaction", "Origin"):
        assert kept[name] == 0, name
    h.clock.advance(64)
    h.assert_idle()


def _call(h: Harness, n: int) -> None:
    """A bridged call like run_call, with its own branches and tags."""
    a_invite = make_request("INVITE", branch=f"z9hG4bKa{n}", from_tag=f"f{n}", body=SDP)
    h.feed(a_invite, FROM_ALICE_UDP)
    a_tx = h.tu.server_txs()[-1]
    b_tx = h.layer.send_request(outgoing_invite(from_tag=f"g{n}"), BOB_UDP, PlainUser())
    ok = reply(b_tx.request, 200)
    h.feed(ok)
    a_tx.respond(answer(a_invite, 200))
    h.feed(make_request("ACK", branch=f"z9hG4bKk{n}", from_tag=f"f{n}", to_tag="b0b5ta9"))
    a_bye = make_request(
        "BYE", branch=f"z9hG4bKe{n}", from_tag=f"f{n}", cseq=314160, to_tag="b0b5ta9"
    )
    h.feed(a_bye, FROM_ALICE_UDP)
    bye_tx = h.tu.server_txs()[-1]
    b_bye = h.layer.send_request(
        outgoing("BYE", cseq=2, to_tag=ok.to_tag, from_tag=f"g{n}"), BOB_UDP, RecordingUser()
    )
    h.feed(reply(b_bye.request, 200))
    bye_tx.respond(answer(a_bye, 200))
