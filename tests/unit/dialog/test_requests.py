"""Requests within a dialog (RFC 3261 12.2.1.1) and the ACK for 2xx (13.2.2.4)."""

from __future__ import annotations

import pytest

from b2bua.dialog import (
    MAX_CSEQ,
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    credentials,
    next_hop,
)
from b2bua.sip import (
    NameAddr,
    Request,
    Response,
    parse_message,
    parse_name_addr,
    parse_uri,
    response_for,
)
from tests.unit.dialog.flows import (
    SDP,
    alice_invite,
    alice_response,
    bob_invite,
    bob_response,
    route_values,
    strict_invite_at_u1,
    strict_invite_at_u2,
    strict_ok_at_u1,
)


def make_dialog(routes: list[str], target: str = "sip:user@remoteua") -> Dialog:
    return Dialog(
        DialogId("c@x", "lt", "rt"),
        uac=True,
        state=DialogState.CONFIRMED,
        local_uri=parse_name_addr("<sip:me@here.example>"),
        remote_uri=parse_name_addr("<sip:you@there.example>"),
        remote_target=parse_uri(target),
        local_target=parse_name_addr("<sip:me@192.0.2.1:5060>"),
        route_set=[parse_name_addr(r) for r in routes],
        local_cseq=10,
    )


def roundtrip(request: Request) -> Request:
    """Serialize and parse again, as the peer would see it (without Via, added here)."""
    request.headers.add("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKtest", first=True)
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    parsed.validate()
    return parsed


def test_rfc3261_12_2_1_1_strict_routing_example() -> None:
    """The example of 12.2.1.1, word for word."""
    dialog = make_dialog(["<sip:proxy1>", "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>"])
    request = roundtrip(dialog.create_request("INFO"))
    assert request.uri == "sip:proxy1"
    assert route_values(request) == [
        "<sip:proxy2>",
        "<sip:proxy3;lr>",
        "<sip:proxy4>",
        "<sip:user@remoteua>",
    ]
    assert next_hop(dialog) == parse_uri("sip:proxy1")


def test_loose_routing_keeps_remote_target_in_request_uri() -> None:
    dialog = make_dialog(["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr;ftag=abc>"])
    request = roundtrip(dialog.create_request("INFO"))
    assert request.uri == "sip:user@remoteua"
    assert route_values(request) == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr;ftag=abc>"]
    assert next_hop(dialog) == parse_uri("sip:p1.example.com;lr")


def test_empty_route_set_sends_to_remote_target_without_route() -> None:
    dialog = make_dialog([])
    request = roundtrip(dialog.create_request("OPTIONS"))
    assert request.uri == "sip:user@remoteua"
    assert "Route" not in request.headers
    assert next_hop(dialog) == parse_uri("sip:user@remoteua")


def test_strict_router_uri_loses_method_and_headers_in_request_uri() -> None:
    dialog = make_dialog(["<sip:proxy1;method=INVITE;maddr=192.0.2.7?X-A=1>", "<sip:proxy2;lr>"])
    request = dialog.create_request("INFO")
    assert request.request_uri == parse_uri("sip:proxy1;maddr=192.0.2.7")
    assert "method" not in request.request_uri.params and not request.request_uri.headers
    # The rest of the route set keeps all its parameters; the target goes last.
    assert route_values(request) == ["<sip:proxy2;lr>", "<sip:user@remoteua>"]


def test_rfc3261_16_12_1_2_strict_proxy_in_the_middle() -> None:
    """U2 (UAS) and U1 (UAC) requests through four proxies, the third strict."""
    invite = strict_invite_at_u2()
    ok = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p4.domain.com;branch=z9hG4bKp4\r\n"
        b"From: <sip:caller@u1.example.com>;tag=u1tag\r\nTo: <sip:callee@domain.com>;tag=u2tag\r\n"
        b"Call-ID: strict-routing@u1.example.com\r\nCSeq: 1 INVITE\r\n"
        b"Contact: sip:callee@u2.domain.com\r\nContent-Length: 0\r\n\r\n"
    )
    assert not isinstance(ok, Request)
    u2 = Dialog.from_uas(invite, ok)
    bye = roundtrip(u2.create_request("BYE"))
    # "U2->P4: BYE sip:caller@u1.example.com SIP/2.0" with the four Route values.
    assert bye.uri == "sip:caller@u1.example.com"
    assert route_values(bye) == [
        "<sip:p4.domain.com;lr>",
        "<sip:p3.middle.com>",
        "<sip:p2.example.com;lr>",
        "<sip:p1.example.com;lr>",
    ]
    u1 = Dialog.from_uac(strict_invite_at_u1(), strict_ok_at_u1())
    bye = roundtrip(u1.create_request("BYE"))
    assert bye.uri == "sip:callee@u2.domain.com"
    assert route_values(bye) == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
        "<sip:p3.middle.com>",
        "<sip:p4.domain.com;lr>",
    ]


def test_rfc3665_bye_from_bob_matches_f22() -> None:
    """Bob's BYE of RFC 3665 3.2 (F22), apart from the Via the caller adds."""
    dialog = Dialog.from_uas(bob_invite(), bob_response(200, "OK", body=SDP))
    bye = roundtrip(dialog.create_request("BYE"))
    assert bye.method == "BYE"
    assert bye.request_uri == parse_uri("sip:alice@client.atlanta.example.com;transport=tcp")
    assert route_values(bye) == [
        "<sip:ss2.biloxi.example.com;lr>",
        "<sip:ss1.atlanta.example.com;lr>",
    ]
    assert bye.max_forwards == 70
    assert bye.from_.uri == parse_uri("sip:bob@biloxi.example.com") and bye.from_tag == "314159"
    assert bye.to.uri == parse_uri("sip:alice@atlanta.example.com") and bye.to_tag == "9fxced76sl"
    assert bye.to.display_name == "Alice"
    assert bye.call_id == "3848276298220188511@atlanta.example.com"
    assert (bye.cseq.number, bye.cseq.method) == (1, "BYE")  # the UAS's first local CSeq
    assert "Contact" not in bye.headers  # BYE is not a target refresh request
    assert bye.body == b""


def test_local_cseq_increments_by_one_per_request() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))
    numbers = [dialog.create_request(m).cseq.number for m in ("INFO", "UPDATE", "OPTIONS", "BYE")]
    assert numbers == [3, 4, 5, 6]
    assert dialog.local_cseq == 6


def test_uas_local_cseq_can_be_chosen() -> None:
    dialog = Dialog.from_uas(bob_invite(), bob_response(200, "OK"), local_cseq=100)
    assert dialog.create_request("INFO").cseq.number == 101


def test_cseq_exhaustion_is_refused() -> None:
    dialog = make_dialog([])
    dialog.local_cseq = MAX_CSEQ
    with pytest.raises(DialogError):
        dialog.create_request("INFO")
    assert dialog.local_cseq == MAX_CSEQ


def test_target_refresh_requests_carry_contact() -> None:
    dialog = make_dialog([])
    for method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
        request = dialog.create_request(method)
        assert request.headers.get("Contact") == "<sip:me@192.0.2.1:5060>", method
        if method == "INVITE":
            dialog.response_received(_final(request, 200))
    for method in ("INFO", "OPTIONS", "MESSAGE", "PRACK", "BYE"):
        assert "Contact" not in dialog.create_request(method).headers, method


def test_contact_argument_changes_the_local_target() -> None:
    dialog = make_dialog([])
    moved = parse_name_addr("<sip:me@198.51.100.9:5070;transport=tcp>")
    request = dialog.create_request("UPDATE", contact=moved)
    assert request.contacts == [moved]
    assert dialog.local_target == moved


def test_body_needs_content_type_and_extra_headers_are_added() -> None:
    dialog = make_dialog([])
    with pytest.raises(ValueError):
        dialog.create_request("INFO", body=b"x")
    request = roundtrip(
        dialog.create_request(
            "INFO",
            body=b"Signal=5\r\nDuration=160\r\n",
            content_type="application/dtmf-relay",
            headers=[("Subject", "dtmf"), ("X-Leg", "b")],
        )
    )
    assert request.body == b"Signal=5\r\nDuration=160\r\n"
    assert request.content_type == "application/dtmf-relay"
    assert request.headers.get("Content-Length") == str(len(request.body))
    assert request.headers.get("X-Leg") == "b"


def test_no_via_is_added() -> None:
    assert "Via" not in make_dialog([]).create_request("INFO").headers


def test_ack_and_cancel_are_not_built_by_create_request() -> None:
    dialog = make_dialog([])
    for method in ("ACK", "CANCEL"):
        with pytest.raises(ValueError):
            dialog.create_request(method)
    assert dialog.local_cseq == 10


def test_terminated_dialog_builds_no_request_but_still_acks() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))
    dialog.terminate()
    with pytest.raises(DialogError):
        dialog.create_request("BYE")
    assert dialog.create_ack().method == "ACK"


def test_callee_must_not_bye_an_early_dialog_caller_may() -> None:
    callee = Dialog.from_uas(bob_invite(), bob_response(180, "Ringing"))
    with pytest.raises(DialogError):
        callee.create_request("BYE")
    caller = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    assert caller.create_request("BYE").cseq.number == 3


def test_ack_for_2xx_rfc3665_f19() -> None:
    """13.2.2.4: CSeq number of the INVITE with method ACK, Route per the route set."""
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, alice_response(180, "Ringing"))
    dialog.response_received(alice_response(200, "OK", SDP))
    ack = roundtrip(dialog.create_ack(headers=credentials(invite)))
    assert ack.method == "ACK"
    assert (ack.cseq.number, ack.cseq.method) == (2, "ACK")
    assert ack.request_uri == parse_uri("sip:bob@client.biloxi.example.com;transport=tcp")
    assert route_values(ack) == [
        "<sip:ss1.atlanta.example.com;lr>",
        "<sip:ss2.biloxi.example.com;lr>",
    ]
    assert ack.from_tag == "9fxced76sl" and ack.to_tag == "314159"
    assert ack.headers.get("Proxy-Authorization") == invite.headers.get("Proxy-Authorization")
    assert ack.body == b"" and "Content-Type" not in ack.headers
    assert "Contact" not in ack.headers
    assert dialog.local_cseq == 2  # the ACK takes no new CSeq number
    assert dialog.create_request("BYE").cseq.number == 3


def test_ack_carries_the_answer_for_a_late_offer() -> None:
    dialog = make_dialog(["<sip:p1;lr>"])
    reinvite = dialog.create_request("INVITE")  # offerless re-INVITE
    dialog.response_received(_final(reinvite, 200))
    ack = roundtrip(dialog.create_ack(body=SDP, content_type="application/sdp"))
    assert ack.cseq.number == reinvite.cseq.number == 11
    assert ack.body == SDP and ack.content_type == "application/sdp"
    assert dialog.create_ack(5).cseq.number == 5  # an explicit INVITE number wins


def test_ack_without_any_invite_needs_the_number() -> None:
    dialog = make_dialog([])
    with pytest.raises(ValueError):
        dialog.create_ack()


def test_reinvite_is_refused_while_an_invite_is_in_progress() -> None:
    dialog = make_dialog([])
    invite = dialog.create_request("INVITE")
    assert dialog.outgoing_invite == invite.cseq.number
    with pytest.raises(DialogError):
        dialog.create_request("INVITE")
    dialog.response_received(_final(invite, 488))
    assert dialog.outgoing_invite is None and dialog.is_confirmed
    dialog.create_request("INVITE")


def test_credentials_copies_authorization_headers() -> None:
    invite = alice_invite()
    invite.headers.add("Authorization", 'Digest username="a"')
    assert [name for name, _ in credentials(invite)] == ["Proxy-Authorization", "Authorization"]


def _final(request: Request, status: int) -> Response:
    response = response_for(request, status)
    response.headers.add("Contact", str(NameAddr(parse_uri("sip:user@remoteua"))))
    return response
