"""RFC 3262 bookkeeping: RSeq order on the UAC, RSeq numbering and PRACK matching on the UAS."""

from __future__ import annotations

import random

import pytest

from b2bua.dialog import (
    Dialog,
    RAck,
    ReliableProvisionals,
    create_prack,
    is_reliable,
    parse_rack,
    rseq_of,
)
from b2bua.sip import Request, Response, SIPParseError, parse_message, response_for
from tests.unit.dialog.flows import alice_invite, alice_response, bob_invite, bob_response


def reliable(status: int = 183, rseq: int | str = 1, cseq: str = "2 INVITE") -> Response:
    """A reliable provisional response to Alice's INVITE, as she receives it."""
    response = alice_response(status, "Session Progress")
    response.headers.add("Require", "100rel")
    response.headers.add("RSeq", str(rseq))
    response.headers.set("CSeq", cseq)
    return response


def roundtrip(message: Request) -> Request:
    message.headers.add("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp", first=True)
    parsed = parse_message(message.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


# -- recognising reliable provisional responses ------------------------------------


def test_rseq_of_needs_1xx_require_100rel_and_rseq() -> None:
    assert rseq_of(reliable(rseq=988789)) == 988789 and is_reliable(reliable())
    plain = alice_response(180, "Ringing")
    assert rseq_of(plain) is None and not is_reliable(plain)
    no_require = alice_response(180, "Ringing")
    no_require.headers.add("RSeq", "5")
    assert rseq_of(no_require) is None
    no_rseq = alice_response(180, "Ringing")
    no_rseq.headers.add("Require", "timer, 100REL")
    assert rseq_of(no_rseq) is None
    for bad in ("0", "x", "4294967296", "-1"):
        assert rseq_of(reliable(rseq=bad)) is None
    assert rseq_of(reliable(status=200)) is None


def test_parse_rack() -> None:
    assert parse_rack("776656 1 INVITE") == RAck(776656, 1, "INVITE")
    assert parse_rack(" 1\t 2   INVITE ") == RAck(1, 2, "INVITE")
    assert str(RAck(776656, 1, "INVITE")) == "776656 1 INVITE"
    for bad in ("", "1 INVITE", "0 1 INVITE", "a 1 INVITE", "1 1 INVITE extra", "1 99999999999 X"):
        with pytest.raises(SIPParseError):
            parse_rack(bad)


# -- UAC side ------------------------------------------------------------------------


def test_uac_accepts_in_order_and_ignores_duplicates() -> None:
    dialog = Dialog.from_uac(alice_invite(), reliable(rseq=988789))
    assert dialog.accept_rseq(reliable(rseq=988789)) is True  # the first one seen
    assert dialog.accept_rseq(reliable(rseq=988789)) is False  # retransmission
    assert dialog.accept_rseq(reliable(rseq=988791)) is False  # out of order: one is missing
    assert dialog.accept_rseq(reliable(rseq=988790)) is True
    assert dialog.accept_rseq(reliable(rseq=988791)) is True
    assert dialog.accept_rseq(reliable(rseq=988789)) is False  # an old one


def test_uac_unreliable_responses_are_not_for_prack() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    assert dialog.accept_rseq(alice_response(180, "Ringing")) is False


def test_uac_new_rseq_space_for_another_request() -> None:
    dialog = Dialog.from_uac(alice_invite(), reliable(rseq=50))
    assert dialog.accept_rseq(reliable(rseq=50))
    assert dialog.accept_rseq(reliable(rseq=7, cseq="4 INVITE"))  # a re-INVITE's first
    assert dialog.accept_rseq(reliable(rseq=8, cseq="4 INVITE"))


def test_rseq_is_tracked_per_forked_dialog() -> None:
    invite = alice_invite()
    first = reliable(rseq=10)
    second = reliable(rseq=900)
    second.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=fork2")
    a, b = Dialog.from_uac(invite, first), Dialog.from_uac(invite, second)
    assert a.accept_rseq(first) and b.accept_rseq(second)
    assert a.accept_rseq(reliable(rseq=11))
    nxt = reliable(rseq=901)
    nxt.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=fork2")
    assert b.accept_rseq(nxt)


def test_create_prack() -> None:
    response = reliable(rseq=988789)
    dialog = Dialog.from_uac(alice_invite(), response)
    prack = roundtrip(create_prack(dialog, response))
    assert prack.method == "PRACK"
    assert prack.headers.get("RAck") == "988789 2 INVITE"
    assert prack.cseq.number == 3 and prack.cseq.method == "PRACK"
    assert prack.to_tag == "314159"
    assert prack.request_uri == dialog.remote_target
    with_body = create_prack(dialog, response, body=b"v=0\r\n", content_type="application/sdp")
    assert with_body.body == b"v=0\r\n" and with_body.cseq.number == 4
    with pytest.raises(ValueError):
        create_prack(dialog, alice_response(180, "Ringing"))


# -- UAS side ------------------------------------------------------------------------


def test_uas_first_rseq_is_random_below_2_31() -> None:
    values = {ReliableProvisionals(bob_invite()).next_rseq for _ in range(50)}
    assert len(values) > 1
    assert all(1 <= v <= 2**31 - 1 for v in values)
    seeded = ReliableProvisionals(bob_invite(), rng=random.Random(7)).next_rseq
    assert seeded == ReliableProvisionals(bob_invite(), rng=random.Random(7)).next_rseq
    with pytest.raises(ValueError):
        ReliableProvisionals(bob_invite(), first_rseq=2**31)


def test_uas_numbers_reliable_responses_and_matches_pracks() -> None:
    invite = bob_invite()
    rel = ReliableProvisionals(invite, first_rseq=988789)
    ringing = bob_response(180, "Ringing")
    assert rel.prepare(ringing) == 988789
    assert ringing.headers.get("RSeq") == "988789"
    assert ringing.headers.get_all("Require") == ["100rel"]
    assert rseq_of(ringing) == 988789
    assert rel.unacknowledged == 988789 and rel.next_rseq == 988790
    # A second reliable 1xx must wait for the PRACK of the first.
    with pytest.raises(ValueError):
        rel.prepare(bob_response(183, "Session Progress"))

    dialog = Dialog.from_uac(alice_invite(), ringing)
    prack = create_prack(dialog, ringing)
    wrong = prack.copy()
    wrong.headers.set("RAck", "988790 2 INVITE")
    assert rel.prack_matches(wrong) is False
    assert rel.prack_matches(prack) is True
    assert rel.unacknowledged is None
    assert rel.prack_matches(prack) is False  # already acknowledged: 481

    progress = bob_response(183, "Session Progress")
    progress.headers.add("Require", "100rel")
    assert rel.prepare(progress) == 988790
    assert progress.headers.get_all("Require") == ["100rel"]  # not added twice


def test_uas_prack_must_name_cseq_and_method() -> None:
    rel = ReliableProvisionals(bob_invite(), first_rseq=5)
    rel.prepare(bob_response(180, "Ringing"))
    prack = Request("PRACK", "sip:bob@client.biloxi.example.com")
    assert rel.prack_matches(prack) is False  # no RAck
    for value in ("5 3 INVITE", "5 2 UPDATE", "garbage"):
        prack.headers.set("RAck", value)
        assert rel.prack_matches(prack) is False, value
    prack.headers.set("RAck", "5 2 INVITE")
    assert rel.prack_matches(prack) is True


def test_uas_only_1xx_can_be_reliable() -> None:
    rel = ReliableProvisionals(bob_invite())
    for status in (100, 200):
        with pytest.raises(ValueError):
            rel.prepare(response_for(bob_invite(), status, to_tag="t"))
