"""Dialog construction (RFC 3261 12.1) and the state it keeps."""

from __future__ import annotations

import pytest

from b2bua.dialog import Dialog, DialogId, DialogState, dialog_response
from b2bua.sip import NameAddr, Request, Response, parse_name_addr, parse_uri, response_for
from tests.unit.dialog.flows import (
    SDP,
    alice_invite,
    alice_response,
    bob_invite,
    bob_response,
    req,
    resp,
    strict_invite_at_u1,
    strict_invite_at_u2,
    strict_ok_at_u1,
)

CALL_ID = "3848276298220188511@atlanta.example.com"


def _first_contact_of(message: Request) -> NameAddr:
    return message.contacts[0]


def test_dialog_id_is_frozen_and_hashable() -> None:
    a = DialogId("c", "l", "r")
    assert a == DialogId("c", "l", "r")
    assert {a: 1}[DialogId("c", "l", "r")] == 1
    assert a != DialogId("c", "r", "l")
    with pytest.raises(AttributeError):
        a.call_id = "x"  # type: ignore[misc]


def test_dialog_id_of_request_and_response_mirror_each_other() -> None:
    bye = req(
        """
        BYE sip:alice@client.atlanta.example.com SIP/2.0
        Via: SIP/2.0/TCP client.biloxi.example.com:5060;branch=z9hG4bKnashds7
        Max-Forwards: 70
        From: Bob <sip:bob@biloxi.example.com>;tag=314159
        To: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        Call-ID: 3848276298220188511@atlanta.example.com
        CSeq: 1 BYE
        """
    )
    # Alice receives Bob's BYE: her tag is in To.
    assert DialogId.of_request(bye) == DialogId(CALL_ID, "9fxced76sl", "314159")
    # Bob receives the 200 to his BYE: his tag is in From.
    assert DialogId.of_response(response_for(bye, 200)) == DialogId(CALL_ID, "314159", "9fxced76sl")
    assert DialogId.of_request(alice_invite()) is None


def test_uas_early_dialog_from_180() -> None:
    dialog = Dialog.from_uas(bob_invite(), bob_response(180, "Ringing"))
    assert dialog.state is DialogState.EARLY and dialog.is_early
    assert not dialog.uac
    assert dialog.id == DialogId(CALL_ID, "314159", "9fxced76sl")
    # 12.1.1: route set = Record-Route of the request, in order, parameters kept.
    assert [str(r) for r in dialog.route_set] == [
        "<sip:ss2.biloxi.example.com;lr>",
        "<sip:ss1.atlanta.example.com;lr>",
    ]
    assert dialog.remote_target == parse_uri("sip:alice@client.atlanta.example.com;transport=tcp")
    assert dialog.remote_cseq == 2
    assert dialog.local_cseq is None
    assert dialog.local_uri.uri == parse_uri("sip:bob@biloxi.example.com")
    assert dialog.remote_uri.uri == parse_uri("sip:alice@atlanta.example.com")
    assert "tag" not in dialog.remote_uri.params and "tag" not in dialog.local_uri.params
    assert str(dialog.local_target) == "<sip:bob@client.biloxi.example.com;transport=tcp>"
    assert dialog.secure is False
    assert dialog.incoming_invite == 2 and dialog.invite_in_progress


def test_uas_confirmed_dialog_from_200() -> None:
    dialog = Dialog.from_uas(bob_invite(), bob_response(200, "OK", body=SDP))
    assert dialog.state is DialogState.CONFIRMED and dialog.is_confirmed
    assert not dialog.invite_in_progress


def test_uac_early_dialog_from_180_reverses_record_route() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    assert dialog.state is DialogState.EARLY and dialog.uac
    assert dialog.id == DialogId(CALL_ID, "9fxced76sl", "314159")
    # 12.1.2: route set = Record-Route of the response, in reverse order.
    assert [str(r) for r in dialog.route_set] == [
        "<sip:ss1.atlanta.example.com;lr>",
        "<sip:ss2.biloxi.example.com;lr>",
    ]
    assert dialog.remote_target == parse_uri("sip:bob@client.biloxi.example.com;transport=tcp")
    assert dialog.local_cseq == 2
    assert dialog.remote_cseq is None
    assert dialog.local_uri.uri == parse_uri("sip:alice@atlanta.example.com")
    assert dialog.remote_uri.uri == parse_uri("sip:bob@biloxi.example.com")
    assert dialog.remote_uri.display_name == "Bob"
    assert dialog.last_invite_cseq == 2
    assert dialog.outgoing_invite == 2


def test_uac_confirmed_dialog_from_200() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))
    assert dialog.is_confirmed
    assert dialog.outgoing_invite is None


def test_route_set_orders_of_uas_and_uac_are_mirror_images() -> None:
    """RFC 3261 16.12.1.2: the same four Record-Route values seen from U2 and U1."""
    u2 = Dialog.from_uas(
        strict_invite_at_u2(), response_for(strict_invite_at_u2(), 200, to_tag="u2tag")
    )
    u1 = Dialog.from_uac(strict_invite_at_u1(), strict_ok_at_u1())
    assert [str(r.uri) for r in u2.route_set] == [
        "sip:p4.domain.com;lr",
        "sip:p3.middle.com",
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
    ]
    assert [r.uri for r in u1.route_set] == [r.uri for r in reversed(u2.route_set)]


def test_no_record_route_gives_empty_route_set() -> None:
    invite = strict_invite_at_u1()
    dialog = Dialog.from_uas(invite, response_for(invite, 200, to_tag="x"))
    assert dialog.route_set == ()


def test_secure_flag_needs_sips_request_uri() -> None:
    invite = req(
        """
        INVITE sips:bob@biloxi.example.com SIP/2.0
        Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9
        Max-Forwards: 70
        From: Alice <sips:alice@atlanta.example.com>;tag=9fxced76sl
        To: Bob <sips:bob@biloxi.example.com>
        Call-ID: sips-call@atlanta.example.com
        CSeq: 1 INVITE
        Contact: <sips:alice@client.atlanta.example.com>
        """
    )
    ok = response_for(invite, 200, to_tag="b")
    ok.headers.add("Contact", "<sips:bob@client.biloxi.example.com>")
    assert Dialog.from_uas(invite, ok).secure is True
    assert Dialog.from_uac(invite, ok).secure is True
    assert Dialog.from_uas(invite, ok, over_tls=False).secure is False
    plain = alice_invite()
    assert Dialog.from_uac(plain, alice_response(200, "OK")).secure is False


@pytest.mark.parametrize("status", [100, 300, 404, 603])
def test_responses_that_create_no_dialog(status: int) -> None:
    invite = alice_invite()
    response = response_for(invite, status, to_tag="t")
    with pytest.raises(ValueError):
        Dialog.from_uac(invite, response)
    with pytest.raises(ValueError):
        Dialog.from_uas(invite, response)


def test_provisional_without_to_tag_creates_no_dialog() -> None:
    invite = alice_invite()
    with pytest.raises(ValueError):
        Dialog.from_uac(invite, response_for(invite, 183))
    with pytest.raises(ValueError):
        Dialog.from_uas(invite, response_for(invite, 180))


def test_2xx_without_to_tag_from_rfc2543_peer_has_empty_remote_tag() -> None:
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, response_for(invite, 200))
    assert dialog.id.remote_tag == ""
    ack = dialog.create_ack()
    assert ack.to_tag is None


def test_missing_contact_falls_back_to_request_uri_or_from() -> None:
    invite = alice_invite()
    ringing = response_for(invite, 180, to_tag="t")  # no Contact
    uac = Dialog.from_uac(invite, ringing)
    assert uac.remote_target == parse_uri("sip:bob@biloxi.example.com")
    invite.headers.remove("Contact")
    uas = Dialog.from_uas(invite, ringing)
    assert uas.remote_target == parse_uri("sip:alice@atlanta.example.com")
    assert uas.local_target is None


def test_repr_names_role_state_and_tags() -> None:
    dialog = Dialog.from_uac(alice_invite(), alice_response(180, "Ringing"))
    assert repr(dialog) == f"<Dialog UAC early {CALL_ID} 9fxced76sl/314159>"


def test_subscribe_dialog_uas() -> None:
    """A non-INVITE dialog (RFC 6665 SUBSCRIBE) is built the same way."""
    subscribe = req(
        """
        SUBSCRIBE sip:bob@biloxi.example.com SIP/2.0
        Via: SIP/2.0/UDP client.atlanta.example.com;branch=z9hG4bKsub
        Max-Forwards: 70
        From: <sip:alice@atlanta.example.com>;tag=s1
        To: <sip:bob@biloxi.example.com>
        Call-ID: sub@atlanta.example.com
        CSeq: 17 SUBSCRIBE
        Event: presence
        Contact: <sip:alice@client.atlanta.example.com>
        """
    )
    ok: Response = resp(
        """
        SIP/2.0 200 OK
        Via: SIP/2.0/UDP client.atlanta.example.com;branch=z9hG4bKsub
        From: <sip:alice@atlanta.example.com>;tag=s1
        To: <sip:bob@biloxi.example.com>;tag=n1
        Call-ID: sub@atlanta.example.com
        CSeq: 17 SUBSCRIBE
        Contact: <sip:bob@client.biloxi.example.com>
        Expires: 3600
        """
    )
    dialog = Dialog.from_uas(subscribe, ok)
    assert dialog.is_confirmed and dialog.remote_cseq == 17
    assert not dialog.invite_in_progress
    notify = dialog.create_request("NOTIFY", headers=[("Event", "presence")])
    assert notify.cseq.number == 1
    assert notify.headers.get("Contact") == "<sip:bob@client.biloxi.example.com>"


def test_dialog_response_copies_record_route_and_adds_tag_and_contact() -> None:
    """12.1.1: the UAS copies every Record-Route value and adds Contact and To tag."""
    invite = strict_invite_at_u2()
    ok = dialog_response(invite, 200, to_tag="u2tag", contact="<sip:callee@u2.domain.com>")
    assert ok.status == 200 and ok.to_tag == "u2tag"
    assert ok.headers.get_all("Record-Route") == invite.headers.get_all("Record-Route")
    assert ok.headers.get("Contact") == "<sip:callee@u2.domain.com>"
    # As the UAC receives it, the same response gives the mirrored route set.
    uac = Dialog.from_uac(strict_invite_at_u1(), ok)
    uas = Dialog.from_uas(invite, ok)
    assert [r.uri for r in uac.route_set] == [r.uri for r in reversed(uas.route_set)]
    assert uas.local_target is not None
    assert uas.local_target.uri == parse_uri("sip:callee@u2.domain.com")


def test_bare_record_route_uri_keeps_lr_as_uri_parameter() -> None:
    """Record-Route must be <URI>, but a bare URI is read as its sender meant it."""
    invite = strict_invite_at_u1()
    invite.headers.add("Record-Route", "sip:p1.example.com;lr")
    dialog = Dialog.from_uas(invite, response_for(invite, 200, to_tag="t"))
    assert dialog.route_set[0].uri.params == {"lr": None}
    request = dialog.create_request("INFO")
    assert request.uri == "sip:caller@u1.example.com"  # loose routing
    assert request.headers.get("Route") == "<sip:p1.example.com;lr>"


def test_local_target_given_is_the_one_used_without_reading_the_message() -> None:
    """A caller that has its own Contact, From and To at hand passes them (no parse of
    the message's); requests carry them, as they carry those read otherwise."""
    invite = alice_invite()
    ok = alice_response(200, "OK", SDP)
    read = Dialog.from_uac(invite, ok)
    given = Dialog.from_uac(
        invite,
        ok,
        local_target="<sip:alice@192.0.2.99:5062>",
        local_uri=invite.from_,
        remote_uri=invite.to,
    )
    assert str(given.local_target) == "<sip:alice@192.0.2.99:5062>"
    assert read.local_target is not None and read.local_target == _first_contact_of(invite)
    reinvite = given.create_request("INVITE", body=SDP, content_type="application/sdp")
    assert reinvite.headers.get("Contact") == "<sip:alice@192.0.2.99:5062>"
    # the rest of the dialog is what the messages say, whichever way it was built
    for name in ("id", "local_uri", "remote_uri", "remote_target", "route_set"):
        assert getattr(given, name) == getattr(read, name), name
    bye, read_bye = given.create_request("BYE"), read.create_request("BYE")
    assert bye.headers.get("From") == read_bye.headers.get("From")
    assert bye.headers.get("To") == read_bye.headers.get("To")


def test_requests_carry_the_identities_as_read_once() -> None:
    """From and To are written once at creation, the same text for every request."""
    dialog = Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))
    first, second = dialog.create_request("INFO"), dialog.create_request("BYE")
    assert first.headers.get("From") == second.headers.get("From")
    assert first.headers.get("To") == second.headers.get("To")
    assert first.from_tag == dialog.id.local_tag and first.to_tag == dialog.id.remote_tag
    assert first.from_.without_params("tag") == dialog.local_uri
    assert first.to.without_params("tag") == dialog.remote_uri
    assert first.request_uri == dialog.remote_target


@pytest.mark.parametrize(
    "value",
    [
        "<sip:alice@atlanta.example.com>",
        '"Alice" <sip:alice@atlanta.example.com>;tag=t1',
        "<sip:alice@atlanta.example.com>;tag=old",
        "<sip:alice@atlanta.example.com>;tag=t1;x=y",
        "Alice <sip:alice@atlanta.example.com;transport=tcp>;x;tag=t1",
    ],
)
def test_from_and_to_text_is_the_address_with_the_dialog_tag_last(value: str) -> None:
    """Whatever tag and parameters the address came with, requests carry it without
    its tag and with the dialog's tag last."""
    address = parse_name_addr(value)
    dialog = Dialog(
        DialogId("c@x", "t1", "t2"),
        uac=True,
        state=DialogState.CONFIRMED,
        local_uri=address,
        remote_uri=address,
        remote_target=parse_uri("sip:bob@192.0.2.4"),
    )
    request = dialog.create_request("INFO")
    bare = address.without_params("tag")
    assert request.headers.get("From") == str(bare.with_params(tag="t1"))
    assert request.headers.get("To") == str(bare.with_params(tag="t2"))
