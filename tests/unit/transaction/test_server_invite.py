"""The INVITE server transaction: RFC 3261 figure 7 as amended by RFC 6026 (Accepted, Timer L)."""

from __future__ import annotations

import pytest

from b2bua.sip import Origin, Request
from b2bua.transaction import (
    FailureKind,
    InviteServerTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionFailure,
    TransactionState,
    TransactionStateError,
)
from tests.unit.transaction.helpers import (
    FROM_ALICE_TCP,
    FROM_ALICE_UDP,
    SDP,
    Harness,
    answer,
    make_harness,
    make_request,
    response_times,
)

S = TransactionState


def invite(transport: str = "UDP", **kw: object) -> Request:
    return make_request("INVITE", transport=transport, body=SDP, **kw)  # type: ignore[arg-type]


def ack_for(request: Request, to_tag: str | None = "b0b5ta9", branch: str | None = None) -> Request:
    """The ACK Alice sends for a non-2xx final (same branch as the INVITE)."""
    via = request.top_via
    return make_request(
        "ACK",
        transport=via.transport,
        branch=branch or request.branch,
        cseq=request.cseq.number,
        to_tag=to_tag,
    )


def receive(h: Harness, transport: str = "UDP") -> tuple[InviteServerTransaction, Request]:
    request = invite(transport)
    h.feed(request, FROM_ALICE_TCP if transport == "TCP" else FROM_ALICE_UDP)
    [(kind, tx, got)] = h.tu.events
    assert kind == "request" and got is request
    assert isinstance(tx, InviteServerTransaction)
    return tx, request


# -- Proceeding ------------------------------------------------------------------


def test_invite_creates_transaction_and_sends_100_at_once(h: Harness) -> None:
    seen: list[list[int]] = []
    h.tu.on_request = lambda tx, request: seen.append(h.transport.statuses())
    tx, request = receive(h)
    assert seen == [[100]]  # 100 Trying went out before the TU saw the INVITE
    assert tx.state is S.PROCEEDING
    assert tx.request is request and tx.method == "INVITE"
    assert tx.branch == "z9hG4bK776asdhds"
    assert tx.origin == FROM_ALICE_UDP
    [(trying, origin)] = h.transport.sent
    assert origin == FROM_ALICE_UDP
    assert trying.status == 100 and trying.to_tag is None
    assert trying.headers.get_all("Via") == request.headers.get_all("Via")
    assert h.layer.server_count == 1


def test_100_trying_copies_timestamp(h: Harness) -> None:
    request = make_request("INVITE", extra=("Timestamp: 54.3 0.1",))
    h.feed(request, FROM_ALICE_UDP)
    [trying] = h.transport.responses(100)
    assert trying.headers.get("Timestamp") == "54.3 0.1"


def test_trying_delay_sends_100_if_tu_is_silent() -> None:
    h = make_harness(TimerConfig(trying_delay=0.2))
    receive(h)
    assert h.transport.sent == []
    h.clock.advance(0.2)
    assert h.transport.statuses() == [100]


def test_trying_delay_no_100_when_tu_answers_first() -> None:
    h = make_harness(TimerConfig(trying_delay=0.2))
    tx, request = receive(h)
    h.clock.advance(0.1)
    tx.respond(answer(request, 180))
    h.clock.advance(1)
    assert h.transport.statuses() == [180]


def test_trying_delay_retransmission_gets_100_at_once() -> None:
    h = make_harness(TimerConfig(trying_delay=0.2))
    _tx, _request = receive(h)
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100]
    h.clock.advance(1)
    assert h.transport.statuses() == [100]  # the delayed one was cancelled
    assert h.clock.getDelayedCalls() == []


def test_proceeding_retransmission_gets_last_provisional(h: Harness) -> None:
    tx, request = receive(h)
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 100]
    tx.respond(answer(request, 180))
    h.feed(invite(), FROM_ALICE_UDP)
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 100, 180, 180, 180]
    assert h.tu.kinds() == ["request"]  # retransmissions never reach the TU


def test_proceeding_tu_provisionals_are_sent(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 180))
    tx.respond(answer(request, 183))
    assert h.transport.statuses() == [100, 180, 183]
    assert tx.state is S.PROCEEDING
    assert tx.last_response is not None and tx.last_response.status == 183
    assert tx.to_tag == "b0b5ta9"


def test_retransmission_updates_origin(h: Harness) -> None:
    tx, _request = receive(h)
    other = Origin(FROM_ALICE_UDP.peer, FROM_ALICE_UDP.local, None)
    moved = Origin(type(FROM_ALICE_UDP.peer)("UDP", "192.0.2.11", 5062), other.local)
    h.feed(invite(), moved)
    assert tx.origin == moved
    assert h.transport.sent[-1][1] == moved


# -- Completed / Confirmed ------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 404, 486, 500, 603])
def test_non_2xx_final_moves_to_completed(h: Harness, status: int) -> None:
    tx, request = receive(h)
    final = answer(request, status)
    tx.respond(final)
    assert tx.state is S.COMPLETED
    assert h.transport.sent[-1] == (final, FROM_ALICE_UDP)
    assert tx.final_sent


def test_timer_g_doubles_up_to_t2_until_timer_h(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    assert response_times(h, 486, 31.75) == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip
    assert tx.state is S.COMPLETED
    h.clock.advance(0.25)
    assert tx.state is S.TERMINATED
    [(kind, failed, failure)] = h.tu.events[1:]
    assert kind == "failed" and failed is tx
    assert isinstance(failure, TransactionFailure)
    assert failure.kind is FailureKind.TIMEOUT
    h.assert_idle()


def test_completed_retransmission_gets_final_again(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 404))
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 404, 404]


def test_completed_to_confirmed_on_ack_stops_g_and_h(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    h.clock.advance(0.5)  # one retransmission
    h.feed(ack_for(request), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED
    assert h.tu.kinds() == ["request"]  # the ACK for a non-2xx is the transaction's
    assert response_times(h, 486, 4.75) == []
    assert h.transport.statuses() == [100, 486, 486]


def test_confirmed_absorbs_ack_and_invite_then_timer_i(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    h.feed(ack_for(request), FROM_ALICE_UDP)
    h.feed(ack_for(request), FROM_ALICE_UDP)
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 486]
    assert h.tu.kinds() == ["request"]
    h.clock.advance(4.9)
    assert tx.state is S.CONFIRMED
    h.clock.advance(0.1)  # Timer I = T4
    assert tx.state is S.TERMINATED
    h.assert_idle()


def test_tcp_no_retransmission_and_timer_i_zero(h: Harness) -> None:
    tx, request = receive(h, "TCP")
    tx.respond(answer(request, 486))
    assert response_times(h, 486, 10) == []
    h.feed(ack_for(request), FROM_ALICE_TCP)
    assert tx.state is S.TERMINATED
    h.assert_idle()


def test_tcp_timer_h_still_runs(h: Harness) -> None:
    tx, request = receive(h, "TCP")
    tx.respond(answer(request, 486))
    h.clock.advance(32)
    assert tx.state is S.TERMINATED
    assert h.tu.kinds() == ["request", "failed"]
    h.assert_idle()


def test_ack_with_wrong_branch_does_not_confirm(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    stray = ack_for(request, branch="z9hG4bKother")
    h.feed(stray, FROM_ALICE_UDP)
    assert tx.state is S.COMPLETED
    assert h.tu.events[-1] == ("ack", stray, FROM_ALICE_UDP)


# -- Accepted (RFC 6026) ------------------------------------------------------------


def test_2xx_moves_to_accepted(h: Harness) -> None:
    tx, request = receive(h)
    ok = answer(request, 200)
    tx.respond(ok)
    assert tx.state is S.ACCEPTED
    assert h.transport.sent[-1] == (ok, FROM_ALICE_UDP)
    # The transaction does not retransmit the 2xx: the TU does (RFC 6026).
    assert response_times(h, 200, 10) == []


def test_accepted_absorbs_invite_retransmissions(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    h.feed(invite(), FROM_ALICE_UDP)
    h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 200]
    assert h.tu.kinds() == ["request"]


def test_accepted_sends_tu_2xx_retransmissions(h: Harness) -> None:
    tx, request = receive(h)
    ok = answer(request, 200)
    tx.respond(ok)
    tx.respond(ok)
    tx.respond(ok)
    assert h.transport.statuses() == [100, 200, 200, 200]


def test_accepted_passes_matching_ack_to_tu(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    ack = ack_for(request)  # same branch as the INVITE: matches the transaction
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)
    assert tx.state is S.ACCEPTED


def test_ack_for_2xx_with_new_branch_goes_to_tu(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    ack = ack_for(request, branch="z9hG4bKnewack")
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_timer_l_ends_accepted(h: Harness, transport: str) -> None:
    tx, request = receive(h, transport)
    tx.respond(answer(request, 200))
    h.clock.advance(31.9)
    assert tx.state is S.ACCEPTED
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    assert h.tu.kinds() == ["request"]
    h.assert_idle()


# -- what the TU may not do ---------------------------------------------------------------


def test_second_final_is_refused(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 200))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 180))


def test_accepted_refuses_non_2xx(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 180))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 500))


def test_confirmed_refuses_responses(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 486))
    h.feed(ack_for(request), FROM_ALICE_UDP)
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 486))


@pytest.mark.parametrize("status", [0, 99, 700])
def test_bad_status_is_refused(h: Harness, status: int) -> None:
    tx, request = receive(h)
    response = answer(request, 200)
    response.status = status
    with pytest.raises(ValueError):
        tx.respond(response)
    assert tx.state is S.PROCEEDING


def test_respond_after_termination_is_ignored(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    h.clock.advance(32)
    sent = len(h.transport.sent)
    tx.respond(answer(request, 200))  # the TU's 2xx retransmission racing Timer L
    assert len(h.transport.sent) == sent
    assert tx.terminated


def test_tu_exception_gets_500_and_propagates(h: Harness) -> None:
    def boom(tx: ServerTransaction, request: Request) -> None:
        raise RuntimeError("bug in the TU")

    h.tu.on_request = boom
    with pytest.raises(RuntimeError):
        h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 500]
    assert h.transport.responses(500)[0].to_tag is not None


def test_tu_exception_after_final_sends_nothing_more(h: Harness) -> None:
    def answer_then_fail(tx: ServerTransaction, request: Request) -> None:
        tx.respond(answer(request, 486))
        raise RuntimeError("bug after answering")

    h.tu.on_request = answer_then_fail
    with pytest.raises(RuntimeError):
        h.feed(invite(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 486]


# -- transport errors -----------------------------------------------------------------------


def test_transport_error_in_proceeding_terminates(h: Harness) -> None:
    tx, request = receive(h)
    trying = h.transport.responses(100)[0]
    h.layer.transport_error(trying, FROM_ALICE_UDP.peer, "ICMP unreachable")
    h.clock.advance(0)
    assert tx.state is S.TERMINATED
    [(kind, failed, failure)] = h.tu.events[1:]
    assert (kind, failed) == ("failed", tx)
    assert isinstance(failure, TransactionFailure) and failure.is_transport_error
    h.assert_idle()
    tx.respond(answer(request, 486))  # the TU's late answer: nothing happens
    assert h.transport.statuses() == [100]


def test_transport_error_in_completed_terminates(h: Harness) -> None:
    tx, request = receive(h)
    final = answer(request, 486)
    tx.respond(final)
    h.layer.transport_error(final, FROM_ALICE_UDP.peer, "unreachable")
    h.clock.advance(0)
    assert tx.state is S.TERMINATED
    assert h.tu.kinds() == ["request", "failed"]
    h.assert_idle()


def test_transport_error_in_accepted_is_reported_and_stays(h: Harness) -> None:
    tx, request = receive(h)
    ok = answer(request, 200)
    tx.respond(ok)
    h.layer.transport_error(ok, FROM_ALICE_UDP.peer, "connection refused")
    h.clock.advance(0)
    assert tx.state is S.ACCEPTED
    assert h.tu.kinds() == ["request", "failed"]
    h.feed(invite(), FROM_ALICE_UDP)  # still absorbs retransmissions
    assert h.tu.kinds() == ["request", "failed"]


def test_transport_error_in_confirmed_is_ignored(h: Harness) -> None:
    tx, request = receive(h)
    final = answer(request, 486)
    tx.respond(final)
    h.feed(ack_for(request), FROM_ALICE_UDP)
    h.layer.transport_error(final, FROM_ALICE_UDP.peer, "late")
    h.clock.advance(0)
    assert tx.state is S.CONFIRMED
    assert h.tu.kinds() == ["request"]
