"""The non-INVITE server transaction: RFC 3261 figure 8 (17.2.2)."""

from __future__ import annotations

import pytest

from b2bua.sip import Request
from b2bua.transaction import (
    NonInviteServerTransaction,
    TransactionFailure,
    TransactionState,
    TransactionStateError,
)
from tests.unit.transaction.helpers import (
    FROM_ALICE_TCP,
    FROM_ALICE_UDP,
    Harness,
    answer,
    make_request,
)

S = TransactionState


def bye(transport: str = "UDP") -> Request:
    return make_request("BYE", transport=transport, branch="z9hG4bKbye1", cseq=2, to_tag="b0b5ta9")


def receive(h: Harness, transport: str = "UDP") -> tuple[NonInviteServerTransaction, Request]:
    request = bye(transport)
    h.feed(request, FROM_ALICE_TCP if transport == "TCP" else FROM_ALICE_UDP)
    [(kind, tx, got)] = h.tu.events
    assert kind == "request" and got is request
    assert isinstance(tx, NonInviteServerTransaction)
    return tx, request


@pytest.mark.parametrize("method", ["BYE", "OPTIONS", "REGISTER", "INFO", "MESSAGE", "UPDATE"])
def test_request_creates_transaction_in_trying(h: Harness, method: str) -> None:
    request = make_request(method)
    h.feed(request, FROM_ALICE_UDP)
    [(kind, tx, got)] = h.tu.events
    assert kind == "request" and got is request
    assert isinstance(tx, NonInviteServerTransaction)
    assert tx.state is S.TRYING
    assert h.transport.sent == []  # no automatic 100 for non-INVITE


def test_trying_absorbs_retransmissions(h: Harness) -> None:
    tx, _ = receive(h)
    h.feed(bye(), FROM_ALICE_UDP)
    h.feed(bye(), FROM_ALICE_UDP)
    assert h.transport.sent == []
    assert h.tu.kinds() == ["request"]
    assert tx.state is S.TRYING


def test_trying_to_proceeding_on_1xx(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 100))
    assert tx.state is S.PROCEEDING
    h.feed(bye(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 100]
    tx.respond(answer(request, 182))
    h.feed(bye(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [100, 100, 182, 182]
    assert tx.state is S.PROCEEDING


@pytest.mark.parametrize("provisional", [False, True])
@pytest.mark.parametrize("status", [200, 202, 301, 404, 481, 500, 603])
def test_final_moves_to_completed(h: Harness, provisional: bool, status: int) -> None:
    tx, request = receive(h)
    if provisional:
        tx.respond(answer(request, 100))
    final = answer(request, status)
    tx.respond(final)
    assert tx.state is S.COMPLETED
    assert h.transport.sent[-1] == (final, FROM_ALICE_UDP)


def test_completed_answers_retransmissions_with_final(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    h.feed(bye(), FROM_ALICE_UDP)
    h.feed(bye(), FROM_ALICE_UDP)
    assert h.transport.statuses() == [200, 200, 200]
    assert h.tu.kinds() == ["request"]


def test_no_timer_driven_retransmission_of_responses(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    h.clock.advance(10)
    assert h.transport.statuses() == [200]


def test_timer_j_is_64_t1_over_udp(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    h.clock.advance(31.9)
    assert tx.state is S.COMPLETED
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    h.assert_idle()
    # A retransmission after Timer J is a new request for the TU.
    h.feed(bye(), FROM_ALICE_UDP)
    assert h.tu.kinds() == ["request", "request"]


def test_timer_j_is_zero_over_tcp(h: Harness) -> None:
    tx, request = receive(h, "TCP")
    tx.respond(answer(request, 200))
    assert tx.state is S.TERMINATED
    assert h.transport.sent[-1][1] == FROM_ALICE_TCP
    h.assert_idle()


def test_completed_refuses_responses(h: Harness) -> None:
    tx, request = receive(h)
    tx.respond(answer(request, 200))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 500))
    with pytest.raises(TransactionStateError):
        tx.respond(answer(request, 100))


def test_respond_after_termination_is_ignored(h: Harness) -> None:
    tx, request = receive(h, "TCP")
    tx.respond(answer(request, 200))
    tx.respond(answer(request, 200))
    assert h.transport.statuses() == [200]


@pytest.mark.parametrize("provisional", [False, True])
def test_transport_error_terminates_and_informs_tu(h: Harness, provisional: bool) -> None:
    tx, request = receive(h)
    if provisional:
        tx.respond(answer(request, 100))
    else:
        tx.respond(answer(request, 200))
    h.layer.transport_error(h.transport.responses()[-1], FROM_ALICE_UDP.peer, "unreachable")
    h.clock.advance(0)
    assert tx.state is S.TERMINATED
    [_, (kind, failed, failure)] = h.tu.events
    assert (kind, failed) == ("failed", tx)
    assert isinstance(failure, TransactionFailure) and failure.is_transport_error
    h.assert_idle()


def test_transport_error_unmatched_is_ignored(h: Harness) -> None:
    tx, _request = receive(h)
    stray = answer(make_request("BYE", branch="z9hG4bKelse"), 200)
    h.layer.transport_error(stray, FROM_ALICE_UDP.peer, "unreachable")
    h.clock.advance(0)
    assert tx.state is S.TRYING
    assert h.tu.kinds() == ["request"]
