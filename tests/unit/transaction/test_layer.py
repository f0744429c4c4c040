"""The layer as a whole: B2BUA-shaped call flows, cleanup, re-entrancy, no leaks."""

from __future__ import annotations

import gc

import pytest

from b2bua.sip import Address, Origin, Request, Response
from b2bua.transaction import (
    NULL_USER,
    ClientTransaction,
    ServerTransaction,
    TransactionState,
)
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    FROM_ALICE_UDP,
    FROM_BOB_TCP,
    FROM_BOB_UDP,
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


@pytest.mark.parametrize("reliable", [False, True])
def test_bridged_call_leaves_nothing_behind(h: Harness, reliable: bool) -> None:
    run_call(h, reliable)
    h.clock.advance(64)
    h.assert_idle()


def test_counts_track_live_transactions(h: Harness) -> None:
    assert (h.layer.client_count, h.layer.server_count) == (0, 0)
    h.layer.send_request(outgoing("OPTIONS"), BOB_UDP, RecordingUser())
    h.layer.send_request(outgoing_invite(), BOB_UDP, RecordingUser())
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    h.feed(make_request("OPTIONS", branch="z9hG4bKopt", cseq=7), FROM_ALICE_UDP)
    assert (h.layer.client_count, h.layer.server_count) == (2, 2)
    h.clock.advance(32)  # Timers B and F end the client transactions
    assert (h.layer.client_count, h.layer.server_count) == (0, 2)


def test_terminated_transactions_release_user_and_timers(h: Harness) -> None:
    user = RecordingUser()
    ctx = h.layer.send_request(outgoing("OPTIONS"), BOB_UDP, user)
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    [stx] = h.tu.server_txs()
    stx.respond(answer(stx.request, 200))
    h.clock.advance(32)
    for tx in (ctx, stx):
        assert tx.terminated
        assert tx._timer_r is None and tx._timer_t is None
    assert ctx._user is NULL_USER
    assert stx._tu is NULL_USER
    h.assert_idle()


def test_no_reference_cycles_outlive_transactions() -> None:
    """Everything a finished transaction leaves is freed by reference counting alone."""
    h = make_harness()
    run_call(make_harness(), reliable=False)  # warm caches and lazy imports
    gc.collect()
    gc.disable()
    try:
        run_call(h, reliable=False)
        user = RecordingUser()
        tx = h.layer.send_request(outgoing_invite(call_id="t1"), BOB_UDP, user)
        h.feed(reply(tx.request, 180))
        tx.cancel()
        h.feed(reply(tx.request, 487))
        h.layer.send_request(outgoing("OPTIONS", call_id="t2"), BOB_UDP, user)
        h.feed(make_request("INVITE", branch="z9hG4bKx", cseq=9), FROM_ALICE_UDP)
        h.feed(make_request("INVITE", branch="z9hG4bKy", cseq=9, via_host="p2"), FROM_ALICE_UDP)
        h.feed(make_request("CANCEL", branch="z9hG4bKx", cseq=9), FROM_ALICE_UDP)
        cancelled = h.tu.server_txs()[-1]
        cancelled.respond(answer(cancelled.request, 487))  # no ACK: Timer H ends it
        del cancelled
        h.clock.advance(100)
        h.assert_idle()
        del tx, user
        h.tu.events.clear()
        h.transport.clear()
        assert gc.collect() == 0
    finally:
        gc.enable()


# -- send_ack ------------------------------------------------------------------------------------


def test_send_ack_gives_a_branch_and_sends_statelessly(h: Harness) -> None:
    ack = outgoing("ACK", to_tag="x")
    h.layer.send_ack(ack, BOB_UDP)
    assert h.transport.sent == [(ack, BOB_UDP)]
    assert ack.branch is not None and ack.branch.startswith("z9hG4bK")
    assert h.layer.client_count == 0


def test_send_ack_refuses_other_methods(h: Harness) -> None:
    with pytest.raises(ValueError):
        h.layer.send_ack(outgoing("BYE"), BOB_UDP)


# -- re-entrancy -----------------------------------------------------------------------------------


def test_tu_may_answer_inside_request_received(h: Harness) -> None:
    h.tu.on_request = lambda tx, request: tx.respond(answer(request, 486))
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 486]
    [tx] = h.tu.server_txs()
    assert tx.state is S.COMPLETED


def test_user_may_start_a_new_transaction_from_a_timeout() -> None:
    """Failover: on a 408/503 the TU sends the request to the next destination."""
    h = make_harness()
    second = Address("UDP", "203.0.113.21", 5060)
    attempts: list[ClientTransaction] = []

    def failover(tx: ClientTransaction, response: Response) -> None:
        if response.status >= 300 and len(attempts) < 2:
            retry = outgoing_invite(call_id="failover@x")
            attempts.append(h.layer.send_request(retry, second, user))

    user = RecordingUser(on_response=failover)
    attempts.append(h.layer.send_request(outgoing_invite(call_id="failover@x"), BOB_UDP, user))
    h.layer.transport_error(attempts[0].request, BOB_UDP, "unreachable")
    h.clock.advance(0)
    assert len(attempts) == 2 and attempts[1].destination == second
    assert attempts[1].state is S.CALLING
    assert h.layer.client_count == 1


def test_tu_may_cancel_from_a_provisional(h: Harness) -> None:
    user = RecordingUser(on_response=lambda tx, response: tx.cancel())
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    h.feed(reply(tx.request, 180))
    assert h.transport.methods() == ["INVITE", "CANCEL"]


def test_layer_works_with_a_plain_clock_object() -> None:
    """Any object with callLater/seconds will do: the layer needs nothing from Twisted."""

    class Handle:
        def __init__(self) -> None:
            self.live = True

        def cancel(self) -> None:
            self.live = False

        def active(self) -> bool:
            return self.live

    class TinyClock:
        def __init__(self) -> None:
            self.scheduled: list[tuple[float, Handle]] = []

        def callLater(self, delay: float, f: object, /, *args: object) -> Handle:
            handle = Handle()
            self.scheduled.append((delay, handle))
            return handle

        def seconds(self) -> float:
            return 0.0

    from b2bua.transaction import TransactionLayer
    from tests.unit.transaction.helpers import RecordingTransport, RecordingTU

    clock = TinyClock()
    layer = TransactionLayer(clock, RecordingTransport(), RecordingTU())
    tx = layer.send_request(outgoing("OPTIONS"), BOB_UDP, RecordingUser())
    # Timers E (0.5) and F (32) share one clock call, armed for the earliest.
    assert [d for d, _ in clock.scheduled] == [0.5]
    layer.message_received(reply(tx.request, 200), FROM_BOB_UDP)
    # E and F cancelled: nothing left, the call goes; the new one is for T1 (when the
    # Completed transaction becomes a ghost), Timer K waits behind it.
    assert [(d, h.live) for d, h in clock.scheduled] == [(0.5, False), (0.5, True)]


# -- origin and destination ------------------------------------------------------------------------


def test_responses_go_to_the_request_origin(h: Harness) -> None:
    origin = Origin(Address("TCP", "192.0.2.10", 50000), Address("TCP", "198.51.100.1", 5060), 42)
    h.feed(make_request("MESSAGE", transport="TCP"), origin)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 202))
    assert h.transport.sent[-1][1] == origin


def test_server_transactions_are_typed(h: Harness) -> None:
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    assert isinstance(tx, ServerTransaction)
    assert repr(tx).startswith("<InviteServerTransaction INVITE z9hG4bK776asdhds Proceeding")


def test_request_objects_are_not_copied(h: Harness) -> None:
    request: Request = outgoing("OPTIONS")
    tx = h.layer.send_request(request, BOB_UDP, RecordingUser())
    assert tx.request is request and h.transport.sent[0][0] is request


def test_tu_errors_are_not_mistaken_for_bad_messages(h: Harness) -> None:
    """A SIPParseError raised by the TU propagates; only the layer's own decoding is caught."""
    from b2bua.sip import SIPParseError

    def bad(request: Request, origin: Origin) -> None:
        raise SIPParseError(400, "the TU's own bug")

    h.tu.ack_received = bad  # type: ignore[method-assign]
    with pytest.raises(SIPParseError):
        h.feed(make_request("ACK", to_tag="x"), FROM_ALICE_UDP)


def test_client_user_without_termination_callback(h: Harness) -> None:
    """transaction_terminated is optional: a user with response_received alone will do."""

    class Plain:
        def __init__(self) -> None:
            self.statuses: list[int] = []

        def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
            self.statuses.append(response.status)

    user = Plain()
    tx = h.layer.send_request(outgoing("OPTIONS"), BOB_TCP, user)
    h.feed(reply(tx.request, 200), FROM_BOB_TCP)
    assert user.statuses == [200]
    h.assert_idle()


def test_pending_count_counts_transactions_awaiting_a_final(h: Harness) -> None:
    """For graceful shutdown: transactions still waiting for a final response."""
    assert h.layer.pending_count == 0
    ctx = h.layer.send_request(outgoing("OPTIONS"), BOB_UDP, RecordingUser())
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    [stx] = h.tu.server_txs()
    assert h.layer.pending_count == 2
    h.feed(reply(ctx.request, 200))  # Completed: only absorbing retransmissions now
    stx.respond(answer(stx.request, 200))  # Accepted
    assert h.layer.pending_count == 0
    assert (h.layer.client_count, h.layer.server_count) == (1, 1)
