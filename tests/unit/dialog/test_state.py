"""Dialog state over time: CSeq ordering, target refresh, early -> confirmed, termination."""

from __future__ import annotations

import pytest

from b2bua.dialog import Dialog, DialogState
from b2bua.sip import Request, Response, parse_uri, response_for
from tests.unit.dialog.flows import (
    SDP,
    alice_invite,
    alice_response,
    bob_invite,
    bob_response,
    req,
    resp,
)


def bob_dialog() -> Dialog:
    """Bob's confirmed dialog (UAS) of RFC 3665 3.2."""
    return Dialog.from_uas(bob_invite(), bob_response(200, "OK", body=SDP))


def alice_dialog() -> Dialog:
    """Alice's confirmed dialog (UAC) of RFC 3665 3.2."""
    return Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))


def from_alice(method: str, cseq: int, *extra: str) -> Request:
    """A request from Alice in the dialog, as Bob receives it."""
    lines = "\n".join(extra)
    return req(
        f"""
        {method} sip:bob@client.biloxi.example.com;transport=tcp SIP/2.0
        Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK{method}{cseq}
        Max-Forwards: 69
        From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        To: Bob <sip:bob@biloxi.example.com>;tag=314159
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: {cseq} {method}
        {lines}
        """
    )


def to_alice(status: int, request: Request, *extra: str) -> Response:
    """Bob's response to a request Alice sent in the dialog, as she receives it."""
    response = response_for(request, status)
    for line in extra:
        name, _, value = line.partition(":")
        response.headers.add(name, value.strip())
    return response


# -- remote CSeq (12.2.2) --------------------------------------------------------


def test_lower_cseq_is_out_of_order_equal_and_higher_are_accepted() -> None:
    dialog = bob_dialog()
    assert dialog.remote_cseq == 2
    assert dialog.check_remote_cseq(from_alice("INFO", 1)) is False
    assert dialog.check_remote_cseq(from_alice("INFO", 2)) is True  # retransmission
    higher = from_alice("INFO", 7)  # gaps are allowed
    assert dialog.check_remote_cseq(higher) is True
    dialog.receive_request(higher)
    assert dialog.remote_cseq == 7
    assert dialog.check_remote_cseq(from_alice("BYE", 6)) is False


def test_ack_and_cancel_never_fail_the_cseq_check_nor_move_it() -> None:
    dialog = bob_dialog()
    dialog.receive_request(from_alice("INFO", 3))
    ack = from_alice("ACK", 2)
    assert dialog.check_remote_cseq(ack) is True
    dialog.receive_request(ack)
    assert dialog.remote_cseq == 3


def test_uac_remote_cseq_is_set_by_the_first_request_received() -> None:
    dialog = alice_dialog()
    assert dialog.remote_cseq is None
    bye = req(
        """
        BYE sip:alice@client.atlanta.example.com SIP/2.0
        Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1
        Max-Forwards: 69
        From: Bob <sip:bob@biloxi.example.com>;tag=314159
        To: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: 1 BYE
        """
    )
    assert dialog.check_remote_cseq(bye)  # any number is in order at first
    dialog.receive_request(bye)
    assert dialog.remote_cseq == 1


def test_lower_cseq_is_not_recorded() -> None:
    dialog = bob_dialog()
    dialog.receive_request(from_alice("INFO", 1))
    assert dialog.remote_cseq == 2


# -- target refresh ------------------------------------------------------------------


def test_response_sent_takes_the_contact_given_instead_of_reading_it() -> None:
    """A UAS that has the Contact it put in its 2xx at hand passes it along."""
    dialog = bob_dialog()
    reinvite = from_alice("INVITE", 3, "Contact: <sip:alice@192.0.2.55:5080>")
    dialog.receive_request(reinvite)
    ok = response_for(reinvite, 200)
    ok.headers.add("Contact", "<sip:bob@198.51.100.9>")
    dialog.response_sent(ok, local_target="<sip:bob@198.51.100.9>")
    assert dialog.incoming_invite is None
    assert str(dialog.local_target) == "<sip:bob@198.51.100.9>"
    assert dialog.create_request("UPDATE").headers.get("Contact") == "<sip:bob@198.51.100.9>"


def test_reinvite_received_refreshes_remote_target() -> None:
    dialog = bob_dialog()
    reinvite = from_alice("INVITE", 3, "Contact: <sip:alice@192.0.2.55:5080;transport=tcp>")
    dialog.receive_request(reinvite)
    assert dialog.remote_target == parse_uri("sip:alice@192.0.2.55:5080;transport=tcp")
    assert dialog.incoming_invite == 3
    ok = response_for(reinvite, 200)
    ok.headers.add("Contact", "<sip:bob@198.51.100.2;transport=tcp>")
    dialog.response_sent(ok)
    assert dialog.incoming_invite is None
    assert str(dialog.local_target) == "<sip:bob@198.51.100.2;transport=tcp>"
    bye = dialog.create_request("BYE")
    assert bye.request_uri == parse_uri("sip:alice@192.0.2.55:5080;transport=tcp")


def test_update_received_refreshes_remote_target() -> None:
    """RFC 3311 5.2: UPDATE is a target refresh request."""
    dialog = bob_dialog()
    update = from_alice("UPDATE", 3, "Contact: <sip:alice@203.0.113.4>")
    dialog.receive_request(update)
    assert dialog.remote_target == parse_uri("sip:alice@203.0.113.4")
    assert dialog.incoming_update == 3
    dialog.response_sent(response_for(update, 200))
    assert dialog.incoming_update is None


def test_non_refresh_request_does_not_touch_remote_target() -> None:
    dialog = bob_dialog()
    before = dialog.remote_target
    dialog.receive_request(from_alice("INFO", 3, "Contact: <sip:elsewhere@203.0.113.9>"))
    assert dialog.remote_target == before


def test_refresh_without_contact_keeps_remote_target() -> None:
    dialog = bob_dialog()
    before = dialog.remote_target
    dialog.receive_request(from_alice("UPDATE", 3))
    assert dialog.remote_target == before


def test_2xx_to_our_reinvite_and_update_refresh_remote_target() -> None:
    dialog = alice_dialog()
    reinvite = dialog.create_request("INVITE", body=SDP, content_type="application/sdp")
    dialog.response_received(to_alice(200, reinvite, "Contact: <sip:bob@198.51.100.7>"))
    assert dialog.remote_target == parse_uri("sip:bob@198.51.100.7")
    assert dialog.outgoing_invite is None
    update = dialog.create_request("UPDATE")
    dialog.response_received(to_alice(200, update, "Contact: <sip:bob@198.51.100.8>"))
    assert dialog.remote_target == parse_uri("sip:bob@198.51.100.8")


def test_error_response_and_non_refresh_2xx_do_not_refresh_target() -> None:
    dialog = alice_dialog()
    before = dialog.remote_target
    update = dialog.create_request("UPDATE")
    dialog.response_received(to_alice(488, update, "Contact: <sip:bob@198.51.100.7>"))
    info = dialog.create_request("INFO")
    dialog.response_received(to_alice(200, info, "Contact: <sip:bob@198.51.100.8>"))
    assert dialog.remote_target == before
    assert dialog.is_confirmed


# -- early -> confirmed --------------------------------------------------------------


def test_uac_early_to_confirmed_recomputes_route_set_from_2xx() -> None:
    """13.2.2.4: a 2xx recomputes the route set (RFC 2543 proxies may only
    record-route the 2xx); nothing else is recomputed."""
    invite = alice_invite()
    ringing = resp(
        """
        SIP/2.0 180 Ringing
        Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
        From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        To: Bob <sip:bob@biloxi.example.com>;tag=314159
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: 2 INVITE
        Contact: <sip:bob@client.biloxi.example.com;transport=tcp>
        """
    )
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.route_set == ()
    dialog.create_request("PRACK")  # local CSeq moves on in the early dialog
    dialog.response_received(alice_response(200, "OK", SDP))
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:ss1.atlanta.example.com;lr",
        "sip:ss2.biloxi.example.com;lr",
    ]
    assert dialog.local_cseq == 3  # not recomputed
    assert dialog.outgoing_invite is None


def test_route_set_not_recomputed_on_2xx_once_confirmed() -> None:
    dialog = alice_dialog()
    routes = dialog.route_set
    reinvite = dialog.create_request("INVITE")
    dialog.response_received(to_alice(200, reinvite, "Record-Route: <sip:other.example;lr>"))
    assert dialog.route_set == routes


def test_2xx_to_prack_does_not_confirm_an_early_dialog() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(183, "Session Progress"))
    prack = dialog.create_request("PRACK")
    dialog.response_received(to_alice(200, prack))
    assert dialog.is_early
    update = dialog.create_request("UPDATE")
    dialog.response_received(to_alice(200, update, "Contact: <sip:bob@198.51.100.7>"))
    assert dialog.is_early
    assert dialog.remote_target == parse_uri("sip:bob@198.51.100.7")


def test_later_provisional_updates_the_early_remote_target() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    progress = alice_response(183, "Session Progress")
    progress.headers.set("Contact", "<sip:bob@198.51.100.3>")
    dialog.response_received(progress)
    assert dialog.remote_target == parse_uri("sip:bob@198.51.100.3")


def test_final_error_to_invite_terminates_the_early_dialog() -> None:
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, alice_response(180, "Ringing"))
    busy = response_for(invite, 486, to_tag="314159")
    dialog.response_received(busy)
    assert dialog.is_terminated
    assert not dialog.invite_in_progress


def test_uas_early_to_confirmed_and_to_terminated() -> None:
    invite = bob_invite()
    dialog = Dialog.from_uas(invite, bob_response(180, "Ringing"))
    dialog.response_sent(bob_response(183, "Session Progress"))
    assert dialog.is_early
    dialog.response_sent(bob_response(200, "OK", body=SDP))
    assert dialog.is_confirmed and dialog.incoming_invite is None
    other = Dialog.from_uas(invite, bob_response(180, "Ringing"))
    other.response_sent(response_for(invite, 603, to_tag="314159"))
    assert other.is_terminated


def test_error_to_reinvite_keeps_the_confirmed_dialog() -> None:
    dialog = bob_dialog()
    reinvite = from_alice("INVITE", 3)
    dialog.receive_request(reinvite)
    dialog.response_sent(response_for(reinvite, 488))
    assert dialog.is_confirmed and dialog.incoming_invite is None


@pytest.mark.parametrize("status", [481, 408])
def test_481_or_408_to_an_in_dialog_request_terminates(status: int) -> None:
    dialog = alice_dialog()
    info = dialog.create_request("INFO")
    dialog.response_received(to_alice(status, info))
    assert dialog.is_terminated


def test_other_errors_to_in_dialog_requests_keep_the_dialog() -> None:
    dialog = alice_dialog()
    for status in (403, 404, 500, 503):
        info = dialog.create_request("INFO")
        dialog.response_received(to_alice(status, info))
    assert dialog.is_confirmed


def test_provisional_responses_sent_change_nothing() -> None:
    dialog = bob_dialog()
    reinvite = from_alice("INVITE", 3)
    dialog.receive_request(reinvite)
    dialog.response_sent(response_for(reinvite, 100))
    assert dialog.incoming_invite == 3


def test_terminate_clears_pending_transactions() -> None:
    dialog = bob_dialog()
    dialog.receive_request(from_alice("INVITE", 3))
    dialog.receive_request(from_alice("UPDATE", 4))
    dialog.terminate()
    assert dialog.is_terminated and not dialog.invite_in_progress
    assert dialog.incoming_update is None
