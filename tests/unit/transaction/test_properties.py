"""Random event orders (hypothesis): the RFC's promises hold and nothing leaks, whatever happens."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    SynthesizedResponse,
    TransactionState,
    TransactionStateError,
)
from b2bua.transaction.matching import client_key
from tests.unit.transaction.helpers import (
    BOB_TCP,
    BOB_UDP,
    FROM_ALICE_TCP,
    FROM_ALICE_UDP,
    FROM_BOB_TCP,
    FROM_BOB_UDP,
    SDP,
    RecordingUser,
    answer,
    make_harness,
    make_request,
    outgoing,
    outgoing_invite,
    reply,
)

S = TransactionState

client_events = st.lists(
    st.one_of(
        st.tuples(st.just("response"), st.sampled_from([100, 180, 183, 200, 404, 486, 487])),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 4.0, 16.0, 40.0])),
        st.tuples(st.just("cancel"), st.none()),
        st.tuples(st.just("cancel_response"), st.sampled_from([200, 481])),
        st.tuples(st.just("transport_error"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(events=client_events, reliable=st.booleans())
def test_invite_client_transaction_promises(
    events: list[tuple[str, object]], reliable: bool
) -> None:
    h = make_harness()
    destination, origin = (BOB_TCP, FROM_BOB_TCP) if reliable else (BOB_UDP, FROM_BOB_UDP)
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), destination, user)
    assert isinstance(tx, InviteClientTransaction)
    provisional_seen = False
    for kind, arg in events:
        h.check_pending()
        if kind == "response":
            h.feed(reply(tx.request, arg), origin)  # type: ignore[arg-type]
        elif kind == "advance":
            h.clock.advance(arg)  # type: ignore[arg-type]
        elif kind == "cancel":
            tx.cancel()
        elif kind == "cancel_response":
            for cancel in h.transport.requests("CANCEL")[:1]:
                h.feed(reply(cancel, arg), origin)  # type: ignore[arg-type]
        else:
            h.layer.transport_error(tx.request, destination, "boom")
        statuses = user.statuses()
        provisional_seen = provisional_seen or any(s < 200 for s in statuses)
        # A CANCEL only ever follows a provisional response (RFC 3261 9.1).
        if h.transport.requests("CANCEL"):
            assert provisional_seen
        # At most one final response, except further 2xx after a 2xx (RFC 6026).
        finals = [s for s in statuses if s >= 200]
        if finals:
            first = finals[0]
            assert all(s < 300 for s in finals) if first < 300 else len(finals) == 1
            assert statuses.index(first) == len(statuses) - len(finals)
        # Each non-2xx final that was received (not synthesized) is ACKed.
        received = [r for _, r in user.responses if not isinstance(r, SynthesizedResponse)]
        if any(r.status >= 300 for r in received):
            assert h.transport.requests("ACK")
        # A terminated transaction is gone from the layer.
        assert tx.terminated == (client_key(tx.branch, "INVITE") not in h.layer._clients)
        assert len(h.transport.requests("INVITE")) <= (1 if reliable else 7)
    # Whatever happened, a final response and enough time end everything.
    h.feed(reply(tx.request, 487), origin)
    h.clock.advance(1000)
    h.assert_idle()
    assert tx.terminated
    assert user.terminated == [tx]


server_events = st.lists(
    st.one_of(
        st.tuples(st.just("retransmit"), st.none()),
        st.tuples(st.just("respond"), st.sampled_from([180, 183, 200, 486, 487])),
        st.tuples(st.just("ack"), st.none()),
        st.tuples(st.just("cancel"), st.none()),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 2.0, 5.0, 16.0, 40.0])),
        st.tuples(st.just("transport_error"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(events=server_events, reliable=st.booleans())
def test_invite_server_transaction_promises(
    events: list[tuple[str, object]], reliable: bool
) -> None:
    h = make_harness()
    origin = FROM_ALICE_TCP if reliable else FROM_ALICE_UDP
    transport = "TCP" if reliable else "UDP"

    def invite() -> object:
        return make_request("INVITE", transport=transport, body=SDP)

    h.feed(invite(), origin)  # type: ignore[arg-type]
    [tx] = h.tu.server_txs()
    assert isinstance(tx, InviteServerTransaction)
    request = tx.request
    for kind, arg in events:
        h.check_pending()
        if kind == "retransmit":
            h.feed(invite(), origin)  # type: ignore[arg-type]
        elif kind == "respond":
            before = tx.state
            try:
                tx.respond(answer(request, arg))  # type: ignore[arg-type]
            except TransactionStateError:
                assert before in (S.COMPLETED, S.CONFIRMED, S.ACCEPTED)
        elif kind == "ack":
            h.feed(make_request("ACK", transport=transport, to_tag="b0b5ta9"), origin)
        elif kind == "cancel":
            h.feed(make_request("CANCEL", transport=transport), origin)
        elif kind == "advance":
            h.clock.advance(arg)  # type: ignore[arg-type]
        elif h.transport.responses():
            h.layer.transport_error(h.transport.responses()[-1], origin.peer, "boom")
        if tx.terminated:
            # A later retransmission would be a new transaction (RFC 3261 17.2.3).
            assert tx._key not in h.layer._servers
            break
        # The TU sees the INVITE once, whatever is retransmitted.
        assert h.tu.kinds().count("request") == 1
        # Responses to the INVITE: provisionals, then one final status only.
        invite_statuses = [r.status for r in h.transport.responses() if r.cseq.method == "INVITE"]
        finals = [s for s in invite_statuses if s >= 200]
        assert len(set(finals)) <= 1
        if finals:
            last_provisional = max(
                (i for i, s in enumerate(invite_statuses) if s < 200), default=-1
            )
            assert last_provisional < invite_statuses.index(finals[0])
        # Nothing retransmitted over TCP but what a retransmitted INVITE asked for.
        if reliable and finals and finals[0] >= 300:
            retransmits = sum(1 for k, _ in events if k == "retransmit")
            assert len(finals) <= 1 + retransmits
        assert tx._key in h.layer._servers
    if not tx.final_sent and not tx.terminated:
        tx.respond(answer(request, 486))
    h.clock.advance(1000)
    h.assert_idle()


non_invite_events = st.lists(
    st.one_of(
        st.tuples(st.just("response"), st.sampled_from([100, 180, 200, 404])),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 4.0, 16.0, 40.0])),
        st.tuples(st.just("transport_error"), st.none()),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(events=non_invite_events, reliable=st.booleans())
def test_non_invite_client_transaction_promises(
    events: list[tuple[str, object]], reliable: bool
) -> None:
    h = make_harness()
    destination, origin = (BOB_TCP, FROM_BOB_TCP) if reliable else (BOB_UDP, FROM_BOB_UDP)
    user = RecordingUser()
    tx = h.layer.send_request(outgoing("BYE", to_tag="x"), destination, user)
    for kind, arg in events:
        h.check_pending()
        if kind == "response":
            h.feed(reply(tx.request, arg), origin)  # type: ignore[arg-type]
        elif kind == "advance":
            h.clock.advance(arg)  # type: ignore[arg-type]
        else:
            h.layer.transport_error(tx.request, destination, "boom")
        finals = [s for s in user.statuses() if s >= 200]
        assert len(finals) <= 1
        if reliable:
            assert len(h.transport.requests("BYE")) == 1
        # Timer E never exceeds T2 once it is there, and never outlives Timer F.
        assert len(h.transport.requests("BYE")) <= 11
    h.clock.advance(1000)
    h.assert_idle()
    assert user.terminated == [tx]
    assert len([s for s in user.statuses() if s >= 200]) == 1
