"""The UAC's ACK cache: a retransmitted 2xx gets the same ACK again (RFC 3261 13.2.2.4)."""

from __future__ import annotations

from twisted.internet.task import Clock

from b2bua.dialog import AckCache, Dialog, DialogId
from b2bua.sip import Request, Response, response_for
from tests.unit.dialog.flows import SDP, alice_invite, alice_response


def acked_dialog() -> tuple[Dialog, Response, Request]:
    ok = alice_response(200, "OK", SDP)
    dialog = Dialog.from_uac(alice_invite(), ok)
    ack = dialog.create_ack()
    ack.headers.add("Via", "SIP/2.0/TCP client.atlanta.example.com;branch=z9hG4bKack1", first=True)
    return dialog, ok, ack


def test_retransmitted_2xx_finds_the_same_ack() -> None:
    cache = AckCache()
    dialog, ok, ack = acked_dialog()
    assert cache.lookup(ok) is None  # first 2xx: build the ACK
    cache.store(dialog.id, ack)
    again = cache.lookup(alice_response(200, "OK", SDP))
    assert again is ack and again.branch == "z9hG4bKack1"
    assert dialog.id in cache and len(cache) == 1


def test_only_2xx_to_the_acked_invite_matches() -> None:
    cache = AckCache()
    dialog, _, ack = acked_dialog()
    cache.store(dialog.id, ack)
    assert cache.lookup(alice_response(180, "Ringing")) is None
    newer = alice_response(200, "OK")
    newer.headers.set("CSeq", "5 INVITE")  # 2xx to a later re-INVITE: a new ACK is due
    assert cache.lookup(newer) is None
    bye_ok = response_for(dialog.create_request("BYE"), 200)
    assert cache.lookup(bye_ok) is None
    other_fork = alice_response(200, "OK")
    other_fork.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=fork2")
    assert cache.lookup(other_fork) is None


def test_store_replaces_the_previous_ack_of_the_dialog() -> None:
    cache = AckCache()
    dialog, ok, ack = acked_dialog()
    cache.store(dialog.id, ack)
    reinvite = dialog.create_request("INVITE")
    second = dialog.create_ack()
    cache.store(dialog.id, second)
    assert len(cache) == 1
    assert cache.lookup(ok) is None
    assert cache.lookup(response_for(reinvite, 200)) is second


def test_forget() -> None:
    cache = AckCache()
    dialog, ok, ack = acked_dialog()
    cache.store(dialog.id, ack)
    cache.forget(dialog.id)
    cache.forget(dialog.id)
    assert cache.lookup(ok) is None and len(cache) == 0


def test_entries_expire_with_a_clock() -> None:
    clock = Clock()
    cache = AckCache(clock, lifetime=32.0)
    dialog, ok, ack = acked_dialog()
    cache.store(dialog.id, ack)
    clock.advance(31.9)
    assert cache.lookup(ok) is ack
    clock.advance(0.1)
    assert cache.lookup(ok) is None
    assert len(cache) == 0


def test_expired_entries_are_dropped_as_new_ones_arrive() -> None:
    clock = Clock()
    cache = AckCache(clock, lifetime=10.0)
    _, _, ack = acked_dialog()
    for i in range(100):
        cache.store(DialogId("c", "l", str(i)), ack)
        clock.advance(1.0)
    # Only the entries of the last 10 seconds are kept: memory stays bounded.
    assert len(cache) == 10
