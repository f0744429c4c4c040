"""The INVITE client transaction: RFC 3261 figure 5 as amended by RFC 6026 (Accepted, Timer M)."""

from __future__ import annotations

import pytest

from b2bua.sip import Address, Request
from b2bua.transaction import (
    FailureKind,
    InviteClientTransaction,
    SynthesizedResponse,
    TransactionState,
    build_ack,
)
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    Harness,
    RecordingUser,
    outgoing_invite,
    reply,
    send_times,
)

S = TransactionState


def start(
    h: Harness, destination: Address = BOB_UDP
) -> tuple[InviteClientTransaction, RecordingUser]:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), destination, user)
    assert isinstance(tx, InviteClientTransaction)
    return tx, user


# -- Calling -------------------------------------------------------------------


def test_invite_sent_at_once_in_calling(h: Harness) -> None:
    tx, user = start(h)
    assert tx.state is S.CALLING
    assert h.transport.sent == [(tx.request, BOB_UDP)]
    assert tx.branch.startswith("z9hG4bK")
    assert tx.request.branch == tx.branch
    assert h.layer.client_count == 1
    assert user.responses == []


def test_timer_a_doubles_without_cap_over_udp(h: Harness) -> None:
    start(h)
    # Intervals 0.5, 1, 2, 4, 8, 16: no T2 cap for INVITE (RFC 3261 17.1.1.2).
    assert send_times(h, "INVITE", 31.75) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


def test_timer_b_times_out_with_synthesized_408(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(31.9)
    assert user.responses == []
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    [(got_tx, response)] = user.responses
    assert got_tx is tx
    assert isinstance(response, SynthesizedResponse)
    assert response.status == 408
    assert response.failure.kind is FailureKind.TIMEOUT
    assert response.failure.is_timeout and not response.failure.is_transport_error
    assert tx.failure is response.failure
    assert response.call_id == tx.request.call_id
    assert response.cseq.method == "INVITE"
    assert user.terminated == [tx]
    sent = len(h.transport.sent)
    h.clock.advance(100)
    assert len(h.transport.sent) == sent
    h.assert_idle()


def test_no_retransmission_over_tcp_but_timer_b_runs(h: Harness) -> None:
    _tx, user = start(h, BOB_TCP)
    assert send_times(h, "INVITE", 31.75) == []
    assert len(h.transport.requests("INVITE")) == 1
    h.clock.advance(0.25)
    assert user.statuses() == [408]
    h.assert_idle()


def test_calling_to_proceeding_on_1xx(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(0.5)  # one retransmission
    trying = reply(tx.request, 100)
    h.feed(trying)
    assert tx.state is S.PROCEEDING
    assert user.responses == [(tx, trying)]
    # No more retransmissions, and Timer B no longer applies.
    assert send_times(h, "INVITE", 200) == []
    assert tx.state is S.PROCEEDING
    assert len(h.transport.requests("INVITE")) == 2


def test_proceeding_passes_further_1xx_up(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 100))
    h.feed(reply(tx.request, 180))
    h.feed(reply(tx.request, 183))
    assert user.statuses() == [100, 180, 183]
    assert tx.state is S.PROCEEDING


# -- Completed (non-2xx final) ---------------------------------------------------


@pytest.mark.parametrize("first", [None, 180])
@pytest.mark.parametrize("status", [300, 404, 486, 503, 603])
def test_non_2xx_final_moves_to_completed_and_sends_ack(
    h: Harness, first: int | None, status: int
) -> None:
    tx, user = start(h)
    if first is not None:
        h.feed(reply(tx.request, first))
    final = reply(tx.request, status)
    h.feed(final)
    assert tx.state is S.COMPLETED
    assert user.responses[-1] == (tx, final)
    [ack] = h.transport.requests("ACK")
    assert h.transport.sent[-1] == (ack, BOB_UDP)
    assert ack.branch == tx.branch


def test_ack_for_non_2xx_follows_17_1_1_3(h: Harness) -> None:
    tx, _ = start(h)
    invite = tx.request
    final = reply(invite, 486, to_tag="busy42")
    h.feed(final)
    [ack] = h.transport.requests("ACK")
    assert ack.uri == invite.uri
    assert ack.call_id == invite.call_id
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert ack.to_tag == "busy42"
    assert ack.to.uri == invite.to.uri
    assert (ack.cseq.number, ack.cseq.method) == (invite.cseq.number, "ACK")
    assert ack.headers.get_all("Route") == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
    ]
    assert ack.body == b""
    assert ack.max_forwards == 70
    ack.validate()
    assert build_ack(invite, final).to_bytes() == ack.to_bytes()


def test_completed_resends_ack_for_retransmitted_final_and_absorbs_it(h: Harness) -> None:
    tx, user = start(h)
    final = reply(tx.request, 486)
    h.feed(final)
    h.feed(reply(tx.request, 486))
    h.feed(reply(tx.request, 486))
    assert len(h.transport.requests("ACK")) == 3
    assert user.statuses() == [486]  # the retransmissions are not passed up


def test_completed_ignores_1xx_and_hands_2xx_to_the_core(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 404))
    h.feed(reply(tx.request, 180))
    ok = reply(tx.request, 200, to_tag="otherfork")
    h.feed(ok)
    assert user.statuses() == [404]
    assert len(h.transport.requests("ACK")) == 1
    # A 2xx after a non-2xx final is not the transaction's: the core may ACK and BYE it.
    assert h.tu.events == [("stray", ok)]


def test_timer_d_ends_completed_after_32s_over_udp(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(1)
    h.feed(reply(tx.request, 404))
    h.clock.advance(31.9)
    assert tx.state is S.COMPLETED
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    assert user.terminated == [tx]
    h.assert_idle()


def test_timer_d_is_zero_over_tcp(h: Harness) -> None:
    tx, user = start(h, BOB_TCP)
    h.feed(reply(tx.request, 404))
    assert tx.state is S.TERMINATED
    assert h.transport.methods() == ["INVITE", "ACK"]
    # The final is passed up before the transaction reports its end.
    assert user.statuses() == [404]
    assert user.terminated == [tx]
    h.assert_idle()


# -- Accepted (RFC 6026) ------------------------------------------------------------


@pytest.mark.parametrize("first", [None, 183])
def test_2xx_moves_to_accepted_without_ack(h: Harness, first: int | None) -> None:
    tx, user = start(h)
    if first is not None:
        h.feed(reply(tx.request, first))
    ok = reply(tx.request, 200)
    h.feed(ok)
    assert tx.state is S.ACCEPTED
    assert user.responses[-1] == (tx, ok)
    assert h.transport.requests("ACK") == []  # the ACK for 2xx is the TU's
    assert send_times(h, "INVITE", 10) == []  # no more retransmissions


def test_accepted_passes_every_2xx_up(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200, to_tag="fork1"))
    h.feed(reply(tx.request, 200, to_tag="fork1"))
    h.feed(reply(tx.request, 200, to_tag="fork2"))
    assert [r.to_tag for _, r in user.responses] == ["fork1", "fork1", "fork2"]
    assert h.tu.events == []


def test_accepted_absorbs_1xx_and_non_2xx(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200))
    h.feed(reply(tx.request, 180))
    h.feed(reply(tx.request, 486))
    assert user.statuses() == [200]
    assert h.transport.requests("ACK") == []


@pytest.mark.parametrize("destination", [BOB_UDP, BOB_TCP])
def test_timer_m_ends_accepted_after_64_t1(h: Harness, destination: Address) -> None:
    tx, user = start(h, destination)
    h.feed(reply(tx.request, 200))
    h.clock.advance(31.9)
    assert tx.state is S.ACCEPTED
    h.clock.advance(0.1)
    assert tx.state is S.TERMINATED
    assert user.terminated == [tx]
    h.assert_idle()
    # A 2xx after Timer M is a stray for the TU core (RFC 6026 7.2).
    late = reply(tx.request, 200)
    h.feed(late)
    assert h.tu.events == [("stray", late)]
    assert user.statuses() == [200]


# -- transport errors ---------------------------------------------------------------


def test_transport_error_in_calling_gives_503(h: Harness) -> None:
    tx, user = start(h)
    h.layer.transport_error(tx.request, BOB_UDP, "ICMP port unreachable")
    assert user.responses == []  # reported from a callLater(0), never re-entrantly
    h.clock.advance(0)
    [(_, response)] = user.responses
    assert isinstance(response, SynthesizedResponse)
    assert response.status == 503
    assert response.failure.kind is FailureKind.TRANSPORT
    assert response.failure.reason == "ICMP port unreachable"
    assert response.failure.is_transport_error
    assert tx.failure == response.failure
    assert tx.state is S.TERMINATED
    h.assert_idle()


def test_transport_error_in_proceeding_gives_503(h: Harness) -> None:
    tx, user = start(h, BOB_TCP)
    h.feed(reply(tx.request, 180))
    h.layer.transport_error(tx.request, BOB_TCP, "connection lost")
    h.clock.advance(0)
    assert user.statuses() == [180, 503]
    h.assert_idle()


def test_transport_error_from_inside_send_is_deferred(h: Harness) -> None:
    def fail(message: object, destination: object) -> None:
        assert isinstance(message, Request)
        h.layer.transport_error(message, BOB_UDP, "no route to host")

    h.transport.on_send = fail
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    assert user.responses == []  # send_request returned before any callback
    h.transport.on_send = None
    h.clock.advance(0)
    assert user.statuses() == [503]
    assert tx.terminated
    h.assert_idle()


def test_transport_error_for_ack_in_completed_terminates_quietly(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 486))
    [ack] = h.transport.requests("ACK")
    h.layer.transport_error(ack, BOB_UDP, "host unreachable")
    h.clock.advance(0)
    assert tx.state is S.TERMINATED
    assert tx.failure is not None and tx.failure.is_transport_error
    assert user.statuses() == [486]  # the TU already has its final response
    assert user.terminated == [tx]
    h.assert_idle()


def test_transport_error_in_accepted_is_ignored(h: Harness) -> None:
    tx, user = start(h)
    h.feed(reply(tx.request, 200))
    h.layer.transport_error(tx.request, BOB_UDP, "late")
    h.clock.advance(0)
    assert tx.state is S.ACCEPTED
    assert user.statuses() == [200]


def test_late_responses_after_termination(h: Harness) -> None:
    tx, user = start(h)
    h.clock.advance(32)  # Timer B
    h.feed(reply(tx.request, 180))
    h.feed(reply(tx.request, 486))
    assert user.statuses() == [408]
    assert h.tu.events == []  # stray non-2xx responses are dropped
    assert h.transport.requests("ACK") == []
