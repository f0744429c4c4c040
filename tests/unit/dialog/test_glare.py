"""Crossing re-INVITEs (RFC 3261 14) and UPDATEs (RFC 3311 5.2)."""

from __future__ import annotations

import random

from b2bua.dialog import Dialog, conflict_response, glare_retry_delay
from b2bua.sip import Request, response_for
from tests.unit.dialog.flows import SDP, alice_invite, alice_response, bob_invite, bob_response, req


def from_alice(method: str, cseq: int) -> Request:
    return req(
        f"""
        {method} sip:bob@client.biloxi.example.com SIP/2.0
        Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bKg{cseq}
        Max-Forwards: 69
        From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        To: Bob <sip:bob@biloxi.example.com>;tag=314159
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: {cseq} {method}
        Contact: <sip:alice@client.atlanta.example.com>
        """
    )


def bob_dialog() -> Dialog:
    return Dialog.from_uas(bob_invite(), bob_response(200, "OK", body=SDP))


def test_no_conflict_normally() -> None:
    dialog = bob_dialog()
    assert conflict_response(dialog, from_alice("INVITE", 3)) is None
    assert conflict_response(dialog, from_alice("UPDATE", 3)) is None
    assert conflict_response(dialog, from_alice("INFO", 3)) is None


def test_491_when_our_reinvite_is_in_progress() -> None:
    dialog = bob_dialog()
    dialog.create_request("INVITE", body=SDP, content_type="application/sdp")
    response = conflict_response(dialog, from_alice("INVITE", 3))
    assert response is not None and response.status == 491
    assert response.to_tag == "314159"


def test_500_with_retry_after_for_a_second_incoming_reinvite() -> None:
    dialog = bob_dialog()
    first = from_alice("INVITE", 3)
    dialog.receive_request(first)
    response = conflict_response(dialog, from_alice("INVITE", 4), rng=random.Random(1))
    assert response is not None and response.status == 500
    retry = response.headers.get("Retry-After")
    assert retry is not None and 0 <= int(retry) <= 10
    dialog.response_sent(response_for(first, 200))
    assert conflict_response(dialog, from_alice("INVITE", 5)) is None


def test_500_for_a_second_update_before_the_first_is_answered() -> None:
    dialog = bob_dialog()
    first = from_alice("UPDATE", 3)
    dialog.receive_request(first)
    response = conflict_response(dialog, from_alice("UPDATE", 4))
    assert response is not None and response.status == 500
    assert "Retry-After" in response.headers
    dialog.response_sent(response_for(first, 200))
    assert conflict_response(dialog, from_alice("UPDATE", 5)) is None


def test_uac_early_dialog_rejects_reinvite_while_initial_invite_pending() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    reinvite = req(
        """
        INVITE sip:alice@client.atlanta.example.com SIP/2.0
        Via: SIP/2.0/TCP client.biloxi.example.com;branch=z9hG4bKre
        Max-Forwards: 70
        From: Bob <sip:bob@biloxi.example.com>;tag=314159
        To: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: 1 INVITE
        Contact: <sip:bob@client.biloxi.example.com>
        """
    )
    response = conflict_response(dialog, reinvite)
    assert response is not None and response.status == 491


def test_glare_retry_delay_favours_the_call_id_owner() -> None:
    owner = Dialog.from_uac(alice_invite(), alice_response(200, "OK"))
    other = Dialog.from_uas(bob_invite(), bob_response(200, "OK"))
    rng = random.Random(3)
    owner_delays = [glare_retry_delay(owner, rng=rng) for _ in range(200)]
    other_delays = [glare_retry_delay(other, rng=rng) for _ in range(200)]
    assert all(2.1 <= d <= 4.0 for d in owner_delays)
    assert all(0.0 <= d <= 2.0 for d in other_delays)
    # In units of 10 ms.
    assert all(abs(d * 100 - round(d * 100)) < 1e-9 for d in owner_delays + other_delays)
    assert 0.0 <= glare_retry_delay(other) <= 2.0
