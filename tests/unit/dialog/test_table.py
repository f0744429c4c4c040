"""Matching requests and responses to dialogs, forked early dialogs, 481, cleanup."""

from __future__ import annotations

import pytest

from b2bua.dialog import (
    Dialog,
    DialogId,
    DialogTable,
    EarlyDialogs,
    no_dialog_response,
    out_of_order_response,
)
from b2bua.sip import Request, Response, parse_message, parse_uri, response_for
from tests.unit.dialog.flows import (
    SDP,
    alice_invite,
    alice_response,
    bob_invite,
    bob_response,
    req,
)

CALL_ID = "3848276298220188511@atlanta.example.com"


def from_alice(method: str, to_tag: str | None = "314159", cseq: int = 3) -> Request:
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    return req(
        f"""
        {method} sip:bob@client.biloxi.example.com SIP/2.0
        Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bKx{cseq}
        Max-Forwards: 69
        From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
        To: {to}
        Call-ID: {CALL_ID}
        CSeq: {cseq} {method}
        """
    )


def fork_response(status: int, to_tag: str, contact: str, record_route: str = "") -> Response:
    """A response to Alice's INVITE from one of the UASs a proxy forked it to."""
    rr = f"Record-Route: {record_route}\r\n" if record_route else ""
    data = (
        f"SIP/2.0 {status} X\r\n"
        "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
        f"{rr}"
        "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        f"To: Bob <sip:bob@biloxi.example.com>;tag={to_tag}\r\n"
        f"Call-ID: {CALL_ID}\r\n"
        "CSeq: 2 INVITE\r\n"
        f"Contact: <{contact}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


# -- DialogTable -------------------------------------------------------------------


def test_match_incoming_request_uses_to_tag_as_local_tag() -> None:
    table = DialogTable()
    bob = Dialog.from_uas(bob_invite(), bob_response(200, "OK", body=SDP))
    table.add(bob)
    assert table.match(from_alice("BYE")) is bob
    assert table.match(from_alice("BYE", to_tag="nope")) is None
    assert table.match(from_alice("INVITE", to_tag=None)) is None  # not in a dialog
    assert bob in table and bob.id in table and len(table) == 1
    assert table.get(bob.id) is bob


def test_match_response_uses_from_tag_as_local_tag() -> None:
    table = DialogTable()
    alice = Dialog.from_uac(alice_invite(), alice_response(200, "OK", SDP))
    table.add(alice)
    info = alice.create_request("INFO")
    info.headers.add("Via", "SIP/2.0/TCP client.atlanta.example.com;branch=z9hG4bKi", first=True)
    assert table.match_response(response_for(info, 200)) is alice
    other = response_for(info, 200)
    other.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=someone-else")
    assert table.match_response(other) is None


def test_both_legs_of_a_b2bua_in_one_table() -> None:
    """A UAS dialog and a UAC dialog with the same Call-ID stay distinct."""
    table = DialogTable()
    bob = Dialog.from_uas(bob_invite(), bob_response(200, "OK"))
    alice = Dialog.from_uac(alice_invite(), alice_response(200, "OK"))
    table.add(bob)
    table.add(alice)
    assert len(table) == 2
    assert table.match(from_alice("BYE")) is bob
    assert set(table) == {alice, bob}


def test_duplicate_id_is_refused() -> None:
    table = DialogTable()
    first = Dialog.from_uas(bob_invite(), bob_response(200, "OK"))
    table.add(first)
    table.add(first)  # idempotent for the same object
    with pytest.raises(ValueError):
        table.add(Dialog.from_uas(bob_invite(), bob_response(200, "OK")))


def test_481_for_request_matching_no_dialog() -> None:
    request = from_alice("BYE", to_tag="gone")
    response = no_dialog_response(request)
    assert response.status == 481
    assert response.reason == "Call/Transaction Does Not Exist"
    assert response.to_tag == "gone"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.cseq == request.cseq and response.call_id == request.call_id


def test_500_for_out_of_order_request() -> None:
    response = out_of_order_response(from_alice("INFO", cseq=1))
    assert response.status == 500 and response.cseq.number == 1


def test_terminate_removes_and_match_drops_terminated_dialogs() -> None:
    table = DialogTable()
    bob = Dialog.from_uas(bob_invite(), bob_response(200, "OK"))
    table.add(bob)
    table.terminate(bob)
    assert bob.is_terminated and len(table) == 0
    # A dialog terminated behind the table's back is dropped on first match.
    again = Dialog.from_uas(bob_invite(), bob_response(200, "OK"))
    table.add(again)
    again.terminate()
    assert table.match(from_alice("BYE")) is None
    assert len(table) == 0


def test_remove_by_object_or_id_and_prune() -> None:
    table = DialogTable()
    dialogs = [
        Dialog.from_uas(bob_invite(), response_for(bob_invite(), 200, to_tag=f"t{i}"))
        for i in range(5)
    ]
    for dialog in dialogs:
        table.add(dialog)
    assert table.remove(dialogs[0]) is dialogs[0]
    assert table.remove(dialogs[1].id) is dialogs[1]
    assert table.remove(DialogId("x", "y", "z")) is None
    dialogs[2].terminate()
    dialogs[3].terminate()
    assert table.counts() == {"early": 0, "confirmed": 1, "terminated": 2}
    assert table.prune() == 2
    assert list(table) == [dialogs[4]]


def test_counts_by_state() -> None:
    table = DialogTable()
    table.add(Dialog.from_uas(bob_invite(), bob_response(180, "Ringing")))
    table.add(Dialog.from_uac(alice_invite(), alice_response(200, "OK")))
    assert table.counts() == {"early": 1, "confirmed": 1, "terminated": 0}


def test_no_leak_after_a_thousand_calls() -> None:
    table = DialogTable()
    for i in range(1000):
        invite = bob_invite()
        invite.headers.set("Call-ID", f"call-{i}@atlanta.example.com")
        dialog = Dialog.from_uas(invite, response_for(invite, 200, to_tag=f"b{i}"))
        table.add(dialog)
        bye = from_alice("BYE", to_tag=f"b{i}")
        bye.headers.set("Call-ID", f"call-{i}@atlanta.example.com")
        found = table.match(bye)
        assert found is dialog
        table.terminate(found)
    assert len(table) == 0


# -- EarlyDialogs (forking) ----------------------------------------------------------


def test_forked_provisionals_make_one_early_dialog_per_to_tag() -> None:
    table = DialogTable()
    forks = EarlyDialogs(alice_invite(), table)
    assert forks.key == (CALL_ID, "9fxced76sl")
    assert forks.on_response(fork_response(100, "x", "sip:x@x")) is None
    a = forks.on_response(fork_response(180, "aaa", "sip:bob@phone-a.example"))
    b = forks.on_response(fork_response(180, "bbb", "sip:bob@phone-b.example"))
    assert a is not None and b is not None and a is not b
    assert forks.on_response(fork_response(183, "aaa", "sip:bob@phone-a2.example")) is a
    assert a.remote_target == parse_uri("sip:bob@phone-a2.example")
    assert b.remote_target == parse_uri("sip:bob@phone-b.example")
    assert len(forks) == 2 and len(table) == 2
    assert {d.id.remote_tag for d in forks.early()} == {"aaa", "bbb"}
    assert table.match_response(fork_response(180, "bbb", "sip:bob@phone-b.example")) is b


def test_2xx_confirms_its_fork_and_the_others_end_with_the_transaction() -> None:
    table = DialogTable()
    forks = EarlyDialogs(alice_invite(), table)
    a = forks.on_response(fork_response(180, "aaa", "sip:bob@phone-a.example"))
    b = forks.on_response(fork_response(180, "bbb", "sip:bob@phone-b.example"))
    ok = fork_response(200, "bbb", "sip:bob@phone-b.example", "<sip:ss1.atlanta.example.com;lr>")
    assert forks.on_response(ok) is b
    assert b is not None and b.is_confirmed
    assert [str(r.uri) for r in b.route_set] == ["sip:ss1.atlanta.example.com;lr"]
    assert forks.confirmed() == [b]
    assert forks.terminate_early() == [a]
    assert a is not None and a.is_terminated
    assert list(forks.dialogs) == ["bbb"] and list(table) == [b]


def test_second_2xx_from_another_fork_creates_a_confirmed_dialog() -> None:
    forks = EarlyDialogs(alice_invite())
    first = forks.on_response(fork_response(200, "aaa", "sip:bob@phone-a.example"))
    second = forks.on_response(fork_response(200, "bbb", "sip:bob@phone-b.example"))
    assert first is not None and second is not None and first is not second
    assert first.is_confirmed and second.is_confirmed
    # Each must be ACKed; the caller then BYEs the one it does not want.
    assert first.create_ack().to_tag == "aaa" and second.create_ack().to_tag == "bbb"
    assert forks.on_response(fork_response(200, "aaa", "sip:bob@phone-a.example")) is first


def test_final_error_terminates_every_early_dialog() -> None:
    table = DialogTable()
    forks = EarlyDialogs(alice_invite(), table)
    dialogs = [
        forks.on_response(fork_response(180, tag, f"sip:bob@{tag}.example"))
        for tag in ("aaa", "bbb", "ccc")
    ]
    busy = fork_response(486, "ddd", "sip:bob@ddd.example")
    assert forks.on_response(busy) is None
    assert all(d is not None and d.is_terminated for d in dialogs)
    assert len(forks) == 0 and len(table) == 0


def test_responses_of_another_invite_are_refused() -> None:
    forks = EarlyDialogs(alice_invite())
    stranger = fork_response(180, "aaa", "sip:x@x")
    stranger.headers.set("Call-ID", "other@elsewhere")
    with pytest.raises(ValueError):
        forks.on_response(stranger)


def test_provisional_without_to_tag_is_no_dialog() -> None:
    forks = EarlyDialogs(alice_invite())
    invite = alice_invite()
    assert forks.on_response(response_for(invite, 180)) is None
    assert len(forks) == 0
