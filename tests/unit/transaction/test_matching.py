"""Matching: RFC 3261 17.1.3 (client), 17.2.3 (server, with the RFC 2543 fallback)."""

from __future__ import annotations

import gc

import pytest

from b2bua.sip import Origin, Request, Response, parse_message
from b2bua.transaction import (
    MAGIC_COOKIE,
    InviteServerTransaction,
    NonInviteServerTransaction,
    TransactionState,
    new_branch,
    new_tag,
)
from b2bua.transaction.matching import client_key, merge_key, server_key, sibling_key, via_key
from tests.unit.transaction.helpers import (
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


def requests_seen(h: Harness) -> list[Request]:
    return [e[2] for e in h.tu.events if e[0] == "request"]  # type: ignore[misc]


# -- server side, RFC 3261 branches ---------------------------------------------------


def test_retransmission_matches_by_branch_and_sent_by(h: Harness) -> None:
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    # Retransmissions may differ anywhere but in branch, sent-by and method.
    h.feed(make_request("INVITE", uri="sip:other@example.com"), FROM_ALICE_UDP)
    h.feed(make_request("INVITE", via_host="PC33.Atlanta.Example.COM"), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 1
    assert h.layer.server_count == 1


def test_same_branch_other_sent_by_is_another_transaction(h: Harness) -> None:
    # (In a dialog, so not merged requests: see test_merged.py for those.)
    h.feed(make_request("OPTIONS", to_tag="x"), FROM_ALICE_UDP)
    h.feed(make_request("OPTIONS", to_tag="x", via_host="pc34.atlanta.example.com"), FROM_ALICE_UDP)
    h.feed(
        make_request("OPTIONS", to_tag="x", via_host="pc33.atlanta.example.com:5070"),
        FROM_ALICE_UDP,
    )
    assert len(requests_seen(h)) == 3


def test_same_branch_other_method_is_another_transaction(h: Harness) -> None:
    h.feed(make_request("INVITE", to_tag="x"), FROM_ALICE_UDP)
    h.feed(make_request("INFO", to_tag="x"), FROM_ALICE_UDP)
    txs = h.tu.server_txs()
    assert [type(t) for t in txs] == [InviteServerTransaction, NonInviteServerTransaction]


def test_branch_comparison_is_case_sensitive(h: Harness) -> None:
    h.feed(make_request("OPTIONS", branch="z9hG4bKabc", to_tag="x"), FROM_ALICE_UDP)
    h.feed(make_request("OPTIONS", branch="z9hG4bKABC", to_tag="x"), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 2


def test_ack_matches_invite_transaction_not_a_new_one(h: Harness) -> None:
    h.feed(make_request("INVITE"), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 404))
    h.feed(make_request("ACK", to_tag="b0b5ta9", cseq=314159), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED
    assert h.tu.kinds() == ["request"]


def test_ack_without_transaction_goes_to_tu(h: Harness) -> None:
    ack = make_request("ACK", to_tag="b0b5ta9")
    h.feed(ack, FROM_ALICE_UDP)
    assert h.tu.events == [("ack", ack, FROM_ALICE_UDP)]
    assert h.layer.server_count == 0


def test_server_key_shapes() -> None:
    invite = make_request("INVITE")
    key, legacy = server_key(invite, "INVITE")
    assert not legacy
    assert key == "z9hG4bK776asdhds pc33.atlanta.example.com None INVITE"
    assert sibling_key(key, "CANCEL") == "z9hG4bK776asdhds pc33.atlanta.example.com None CANCEL"
    old = make_request("INVITE", branch=None)
    key, legacy = server_key(old, "INVITE")
    assert legacy
    assert isinstance(key, tuple) and key[-1] == "INVITE"
    assert sibling_key(key, "CANCEL") == (*key[:-1], "CANCEL")


def test_common_keys_are_untracked_atoms() -> None:
    """Keys that linger with finished transactions are strings: the garbage collector
    never scans them (tuples it would, once each)."""
    invite = make_request("INVITE")
    key, _ = server_key(invite, "INVITE")
    assert not gc.is_tracked(key)
    assert not gc.is_tracked(merge_key(invite))
    assert not gc.is_tracked(client_key("z9hG4bK776asdhds", "INVITE"))


def test_keys_tell_their_parts_apart() -> None:
    """Keys that differ in any part differ: a port against none, a tag against none,
    and a missing branch is never a branch of ours."""
    a = make_request("INVITE")
    b = make_request("INVITE")
    b.headers.set("Via", "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds")
    assert server_key(a, "INVITE")[0] != server_key(b, "INVITE")[0]
    assert client_key(None, "INVITE") != client_key("z9hG4bK776asdhds", "INVITE")
    assert client_key("z9hG4bKa", "INVITE") != client_key("z9hG4bKa", "CANCEL")


def test_via_key_is_rfc3261_20_42_equality() -> None:
    a = make_request("INVITE", branch="1").top_via
    b = make_request("INVITE", branch="1", via_host="PC33.ATLANTA.example.com").top_via
    c = make_request("INVITE", branch="2").top_via
    assert via_key(a) == via_key(b)
    assert via_key(a) != via_key(c)


# -- server side, RFC 2543 fallback ----------------------------------------------------------


def old_invite(**kw: object) -> Request:
    defaults: dict[str, object] = {"branch": None, "body": SDP}
    defaults.update(kw)
    return make_request("INVITE", **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("branch", [None, "1", "abc.0"])
def test_2543_retransmission_matches_on_the_old_rule(h: Harness, branch: str | None) -> None:
    h.feed(old_invite(branch=branch), FROM_ALICE_UDP)
    h.feed(old_invite(branch=branch), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 1
    assert h.transport.statuses() == [100, 100]
    [tx] = h.tu.server_txs()
    assert tx.branch == (branch or "")


def test_2543_request_uri_compared_per_19_1_4(h: Harness) -> None:
    h.feed(old_invite(uri="sip:bob@biloxi.example.com"), FROM_ALICE_UDP)
    h.feed(old_invite(uri="sip:bob@BILOXI.EXAMPLE.COM"), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"cseq": 314160},
        {"call_id": "other@pc33.atlanta.example.com"},
        {"from_tag": "other"},
    ],
)
def test_2543_differences_make_new_transactions(h: Harness, change: dict[str, object]) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    h.feed(old_invite(**change), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 2


def test_2543_other_top_via_is_not_a_retransmission(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    h.feed(old_invite(via_host="pc33.atlanta.example.com;received=192.0.2.99"), FROM_ALICE_UDP)
    # Not the same transaction; same From tag, Call-ID, CSeq: a merged request.
    assert len(requests_seen(h)) == 1
    assert h.transport.statuses() == [100, 482]


def test_2543_ack_matches_with_the_response_to_tag(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 486, to_tag="busy1"))
    other = make_request("ACK", branch=None, to_tag="nottheone")
    h.feed(other, FROM_ALICE_UDP)
    assert tx.state is S.COMPLETED
    assert h.tu.events[-1] == ("ack", other, FROM_ALICE_UDP)
    h.feed(make_request("ACK", branch=None, to_tag="busy1"), FROM_ALICE_UDP)
    assert tx.state is S.CONFIRMED


def test_2543_ack_for_2xx_in_accepted_goes_to_tu(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    tx.respond(answer(tx.request, 200, to_tag="ok1"))
    ack = make_request("ACK", branch=None, to_tag="ok1")
    h.feed(ack, FROM_ALICE_UDP)
    assert tx.state is S.ACCEPTED
    assert h.tu.events[-1] == ("ack", ack, FROM_ALICE_UDP)


def test_2543_request_with_other_to_tag_is_dropped(h: Harness) -> None:
    h.feed(make_request("INFO", branch=None, to_tag="t1"), FROM_ALICE_UDP)
    h.feed(make_request("INFO", branch=None, to_tag="t2"), FROM_ALICE_UDP)
    assert len(requests_seen(h)) == 1
    assert h.transport.sent == []


def test_2543_cancel_matches_invite(h: Harness) -> None:
    h.feed(old_invite(), FROM_ALICE_UDP)
    [tx] = h.tu.server_txs()
    cancel = make_request("CANCEL", branch=None)
    h.feed(cancel, FROM_ALICE_UDP)
    assert h.tu.events[-1] == ("cancel", tx, cancel)
    assert h.transport.statuses() == [100, 200]


# -- client side ------------------------------------------------------------------------------


def test_layer_sets_a_branch_when_missing_or_without_cookie(h: Harness) -> None:
    user = RecordingUser()
    for branch in (None, "1234", "z9hG4bk-wrong-case"):
        request = outgoing("OPTIONS", branch=branch, call_id=f"{branch}@x")
        tx = h.layer.send_request(request, BOB_UDP, user)
        assert tx.branch.startswith(MAGIC_COOKIE) and tx.branch != branch
        assert request.branch == tx.branch
        assert len(request.headers.get_all("Via")) == 1
        assert request.top_via.host == "198.51.100.1"
        assert request.top_via.port == 5060


def test_layer_keeps_a_cookie_branch(h: Harness) -> None:
    request = outgoing("OPTIONS", branch="z9hG4bKmine")
    tx = h.layer.send_request(request, BOB_UDP, RecordingUser())
    assert tx.branch == "z9hG4bKmine"


def test_branch_rewrite_keeps_lower_vias_and_params() -> None:
    data = (
        b"MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 198.51.100.1:5060;rport;branch=old, SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKlow\r\n"
        b"To: <sip:bob@biloxi.example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n"
        b"Call-ID: m1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    from tests.unit.transaction.helpers import make_harness

    h = make_harness()
    tx = h.layer.send_request(request, BOB_UDP, RecordingUser())
    vias = request.vias
    assert [v.branch for v in vias] == [tx.branch, "z9hG4bKlow"]
    assert "rport" in vias[0].params
    assert vias[0].host == "198.51.100.1"


def test_new_branch_and_tag_are_random() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith("z9hG4bK") and len(b) == 23 for b in branches)
    tags = {new_tag() for _ in range(1000)}
    assert len(tags) == 1000


def test_send_request_rejects_misuse(h: Harness) -> None:
    user = RecordingUser()
    with pytest.raises(ValueError, match="ACK"):
        h.layer.send_request(outgoing("ACK", cseq=1), BOB_UDP, user)
    no_via = outgoing("OPTIONS")
    no_via.headers.remove("Via")
    with pytest.raises(ValueError, match="Via"):
        h.layer.send_request(no_via, BOB_UDP, user)
    h.layer.send_request(outgoing("OPTIONS", branch="z9hG4bKsame"), BOB_UDP, user)
    with pytest.raises(ValueError, match="exists"):
        h.layer.send_request(outgoing("OPTIONS", branch="z9hG4bKsame"), BOB_UDP, user)
    assert h.layer.client_count == 1


def test_response_matches_by_branch_and_cseq_method(h: Harness) -> None:
    user = RecordingUser()
    tx = h.layer.send_request(outgoing_invite(), BOB_UDP, user)
    wrong_branch = reply(tx.request, 180)
    wrong_branch.headers.set("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKnope")
    h.feed(wrong_branch)
    assert user.responses == []
    # Same branch, method CANCEL: belongs to the CANCEL transaction, not the INVITE.
    cancel_response = reply(tx.request, 200)
    cancel_response.headers.set("CSeq", f"{tx.request.cseq.number} CANCEL")
    h.feed(cancel_response)
    assert user.responses == []
    assert h.tu.events == []  # a stray 2xx to CANCEL is not reported


def test_stray_2xx_to_invite_goes_to_tu(h: Harness) -> None:
    request = outgoing_invite(branch="z9hG4bKgone")
    stray = reply(request, 200)
    h.feed(stray)
    assert h.tu.events == [("stray", stray)]


@pytest.mark.parametrize("status", [100, 180, 404, 500])
def test_stray_non_2xx_is_dropped(h: Harness, status: int) -> None:
    h.feed(reply(outgoing_invite(branch="z9hG4bKgone"), status))
    assert h.tu.events == []
    assert h.transport.sent == []


def test_stray_2xx_to_non_invite_is_dropped(h: Harness) -> None:
    h.feed(reply(outgoing("OPTIONS", branch="z9hG4bKgone"), 200))
    assert h.tu.events == []


# -- robustness --------------------------------------------------------------------------------


def _with_bad_via(message: Request | Response) -> None:
    message.headers.set("Via", "garbage")


def test_messages_with_malformed_via_are_dropped(h: Harness) -> None:
    request = make_request("INVITE")
    _with_bad_via(request)
    h.feed(request, FROM_ALICE_UDP)
    response = reply(outgoing_invite(branch="z9hG4bKx"), 200)
    _with_bad_via(response)
    h.feed(response)
    assert h.tu.events == []
    assert h.transport.sent == []


def test_2543_request_with_bad_request_uri_is_dropped(h: Harness) -> None:
    request = make_request("OPTIONS", branch=None)
    request.set_uri("not a uri")
    h.feed(request, FROM_ALICE_UDP)
    assert h.tu.events == []


def test_transport_error_for_unparsable_message_is_ignored(h: Harness) -> None:
    request = make_request("OPTIONS")
    _with_bad_via(request)
    h.layer.transport_error(request, BOB_UDP, "x")
    h.clock.advance(0)
    assert h.tu.events == []


def test_origin_reliability_picks_timers(h: Harness) -> None:
    tcp = Origin(type(BOB_UDP)("TLS", "192.0.2.10", 5061), type(BOB_UDP)("TLS", "1.2.3.4", 5061))
    h.feed(make_request("OPTIONS", transport="TLS"), tcp)
    [tx] = h.tu.server_txs()
    assert tx.reliable
    tx.respond(answer(tx.request, 200))
    assert tx.terminated  # Timer J = 0 over TLS
