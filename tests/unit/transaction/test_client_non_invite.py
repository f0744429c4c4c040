"""The non-INVITE client transaction: RFC 3261 figure 6 (17.1.2)."""

from __future__ import annotations

import pytest

from b2bua.sip import Address
from b2bua.transaction import (
    FailureKind,
    NonInviteClientTransaction,
    SynthesizedResponse,
    TimerConfig,
    TransactionState,
)
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    Harness,
    RecordingUser,
    make_harness,
    outgoing,
    reply,
    send_times,
)

S = TransactionState


def start(
    h: Harness, method: str = "OPTIONS", destination: Address = BOB_UDP
) -> tuple[NonInviteClientTransaction, RecordingUser]:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing(method), destination, user)
    assert isinstance(tx, NonInviteClientTransaction)
    return tx, user


@pytest.mark.parametrize("method", ["OPTIONS", "BYE", "REGISTER", "MESSAGE", "INFO"])
def test_request_sent_in_trying(h: Harness, method: str) -> None:
    tx, _ = start(h, method)
    assert tx.state is S.TRYING
    assert h.transport.sent == [(tx.request, BOB_UDP)]
    assert not tx.cancel()  # only INVITEs can be cancelled
    assert h.transport.methods() == [method]


def test_timer_e_doubles_up_to_t2_in_trying(h: Harness) -> None:
    start(h)
    # Intervals 0.5, 1, 2, 4, 4, 4...: capped at T2 = 4 (RFC 3261 17.1.2.2).
    assert send_times(h, "OPTIONS", 31.75) == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip


def test_timer_e_cap_follows_t2() -> None:
    h = make_harness(TimerConfig(t1=0.5, t2=2.0))
    start(h)
    assert send_times(h, "OPTIONS", 8) == [0.5, 1.5, 3.5, 5.5, 7.5]


def test_timer_f_times_out_trying_with_408(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(31.9)
    assert user.responses == []
    h.clock.advance(0.1)
    [(got, response)] = user.responses
    assert got is tx
    assert isinstance(response, SynthesizedResponse)
    assert response.status == 408
    assert response.failure.kind is FailureKind.TIMEOUT
    assert response.cseq.method == "OPTIONS"
    assert tx.state is S.TERMINATED
    assert user.terminated == [tx]
    h.assert_idle()


def test_trying_to_proceeding_on_1xx_then_e_is_t2(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(0.5)  # first retransmission at 0.5; next due at 1.5
    h.feed(reply(tx.request, 100))
    assert tx.state is S.PROCEEDING
    assert user.statuses() == [100]
    # The pending Timer E still fires at 1.5; from then on it is T2 (4 s).
    assert send_times(h, "OPTIONS", 14) == [1.5, 5.5, 9.5, 13.5]


def test_proceeding_passes_further_1xx_up(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 100))
    h.feed(reply(tx.request, 180))
    assert user.statuses() == [100, 180]
    assert tx.state is S.PROCEEDING


def test_timer_f_times_out_proceeding_with_408(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 100))
    h.clock.advance(32)
    assert user.statuses() == [100, 408]
    h.assert_idle()


@pytest.mark.parametrize("first", [None, 100])
@pytest.mark.parametrize("status", [200, 202, 302, 404, 500, 603])
def test_final_moves_to_completed(h: Harness, first: int | None, status: int) -> None:
    tx, user = start(h)
    if first is not None:
        h.feed(reply(tx.request, first))
    final = reply(tx.request, status)
    h.feed(final)
    assert tx.state is S.COMPLETED
    assert user.responses[-1] == (tx, final)
    assert send_times(h, "OPTIONS", 4.75) == []  # no more retransmissions
    assert h.transport.requests("ACK") == []


def test_completed_absorbs_retransmitted_and_late_responses(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 100))
    h.feed(reply(tx.request, 500))
    assert user.statuses() == [200]
    assert h.tu.events == []


def test_timer_k_is_t4_over_udp(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200))
    h.clock.advance(4.9)
    assert tx.state is S.COMPLETED
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    assert user.terminated == [tx]
    h.assert_idle()


def test_timer_k_follows_t4() -> None:
    h = make_harness(TimerConfig(t4=2.5))
    tx, _ = start(h)
    h.feed(reply(tx.request, 200))
    h.clock.advance(2.5)
    assert tx.state is S.TERMINATED


def test_tcp_no_retransmission_and_timer_k_zero(h: Harness) -> None:
    tx, user = start(h, destination=BOB_TCP)
    assert send_times(h, "OPTIONS", 20) == []
    h.feed(reply(tx.request, 200))
    assert tx.state is S.TERMINATED
    assert user.statuses() == [200]
    assert user.terminated == [tx]
    h.assert_idle()


def test_tcp_timer_f_still_runs(h: Harness) -> None:
    _tx, user = start(h, destination=BOB_TCP)
    h.clock.advance(32)
    assert user.statuses() == [408]
    h.assert_idle()


@pytest.mark.parametrize("provisional", [False, True])
def test_transport_error_gives_503(h: Harness, provisional: bool) -> None:
    tx, user = start(h)
    if provisional:
        h.feed(reply(tx.request, 100))
    h.layer.transport_error(tx.request, BOB_UDP, "DNS: no such domain")
    h.clock.advance(0)
    response = user.responses[-1][1]
    assert isinstance(response, SynthesizedResponse)
    assert response.status == 503
    assert response.failure.kind is FailureKind.TRANSPORT
    assert tx.failure == response.failure
    h.assert_idle()


def test_transport_error_in_completed_is_ignored(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200))
    h.layer.transport_error(tx.request, BOB_UDP, "late")
    h.clock.advance(0)
    assert tx.state is S.COMPLETED
    assert tx.failure is None
    assert user.statuses() == [200]


def test_response_to_another_method_with_same_branch_does_not_match(h: Harness) -> None:
    tx, user = start(h, "BYE")
    response = reply(tx.request, 200)
    response.headers.set("CSeq", f"{tx.request.cseq.number} INFO")
    h.feed(response)
    assert user.responses == []
    assert tx.state is S.TRYING
