"""REGISTER through the registrar with the in-memory location service and a task.Clock:
RFC 3261 10.3 (add, refresh, remove, *, fetch, expiry bounds, 423, q, CSeq order,
domains, identity) and RFC 3327 Path."""

from __future__ import annotations

import pytest

from b2bua.registrar import RegistrarSettings
from tests.unit.registrar.helpers import (
    FakeTx,
    contacts_of,
    memory_registrar,
    register,
    send,
)

AOR = "sip:alice@127.0.0.1"
PHONE = "sip:alice@192.0.2.10:5062"
DESK = "sip:alice@192.0.2.11:5060"


def test_add_lists_the_binding_with_its_expires() -> None:
    registrar, location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>", expires="600"))
    assert resp.status == 200
    assert resp.headers.get("To") == "<sip:alice@127.0.0.1>;tag=t0"
    assert contacts_of(resp) == {PHONE: {"expires": "600"}}
    assert resp.headers.get("Date")
    [binding] = location.lookup(AOR)
    assert str(binding.uri) == PHONE
    assert binding.source == "udp:192.0.2.10:5062"
    assert location.known(AOR)


def test_contact_expires_parameter_beats_the_header_and_the_default_applies() -> None:
    registrar, _location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>;expires=120", f"<{DESK}>", expires="300"))
    assert contacts_of(resp) == {PHONE: {"expires": "120"}, DESK: {"expires": "300"}}
    resp = send(registrar, register(f"<{PHONE}>", call_id="other", cseq=1))
    assert contacts_of(resp)[PHONE] == {"expires": "3600"}  # default_expires


def test_refresh_keeps_one_binding_and_extends_it() -> None:
    registrar, location, clock = memory_registrar()
    send(registrar, register(f"<{PHONE}>", expires="600", cseq=1))
    clock.advance(500)
    resp = send(registrar, register(f"<{PHONE}>", expires="600", cseq=2))
    assert contacts_of(resp) == {PHONE: {"expires": "600"}}
    clock.advance(500)  # the first registration would have expired by now
    assert len(location.lookup(AOR)) == 1


def test_refresh_matches_contacts_by_uri_equality() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register("<sip:alice@Example.COM:5062;transport=tcp>", cseq=1))
    send(registrar, register("<sip:alice@example.com:5062;TRANSPORT=TCP>", cseq=2))
    assert len(location.lookup(AOR)) == 1


def test_remove_with_expires_zero_keeps_the_others() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{PHONE}>", f"<{DESK}>", cseq=1))
    resp = send(registrar, register(f"<{PHONE}>;expires=0", cseq=2))
    assert list(contacts_of(resp)) == [DESK]
    resp = send(registrar, register(f"<{DESK}>", expires="0", cseq=3))
    assert resp.status == 200 and not resp.headers.get_all("Contact")
    assert location.lookup(AOR) == []
    assert location.known(AOR)


def test_star_removes_every_binding() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{PHONE}>", f"<{DESK}>", cseq=1))
    send(registrar, register(f"<{PHONE}>;q=0.2", call_id="other-client", cseq=7))
    resp = send(registrar, register("*", expires="0", cseq=2))
    assert resp.status == 200 and not resp.headers.get_all("Contact")
    assert location.lookup(AOR) == []


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        (("*",), None),  # no Expires
        (("*",), "3600"),
        (("*", f"<{PHONE}>"), "0"),
        (("*",), "soon"),
    ],
)
def test_star_needs_expires_zero_and_no_other_contact(
    contacts: tuple[str, ...], expires: str | None
) -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{DESK}>", cseq=1))
    resp = send(registrar, register(*contacts, expires=expires, cseq=2))
    assert resp.status == 400
    assert len(location.lookup(AOR)) == 1


def test_fetch_without_contact_lists_the_current_bindings() -> None:
    registrar, location, clock = memory_registrar()
    send(registrar, register(f"<{PHONE}>;q=0.5", f"<{DESK}>;q=1", expires="900"))
    clock.advance(100)
    resp = send(registrar, register(cseq=2))
    assert resp.status == 200
    assert contacts_of(resp) == {
        DESK: {"q": "1", "expires": "800"},
        PHONE: {"q": "0.5", "expires": "800"},
    }
    empty = send(registrar, register(to="sip:bob@127.0.0.1"))
    assert empty.status == 200 and not empty.headers.get_all("Contact")
    assert len(location.lookup(AOR)) == 2


def test_too_brief_is_423_with_min_expires_and_changes_nothing() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{DESK}>", cseq=1))
    resp = send(registrar, register(f"<{PHONE}>", f"<{DESK}>;expires=59", cseq=2))
    assert resp.status == 423
    assert resp.reason == "Interval Too Brief"
    assert resp.headers.get("Min-Expires") == "60"
    assert [str(b.uri) for b in location.lookup(AOR)] == [DESK]


def test_minimum_itself_is_accepted_and_longer_than_maximum_is_cut() -> None:
    registrar, _location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>;expires=60", f"<{DESK}>;expires=86400"))
    assert contacts_of(resp) == {PHONE: {"expires": "60"}, DESK: {"expires": "7200"}}


def test_only_intervals_under_an_hour_are_too_brief() -> None:
    settings = RegistrarSettings(frozenset({"127.0.0.1"}), min_expires=3600, max_expires=7200)
    registrar, _location, _clock = memory_registrar(settings=settings)
    assert send(registrar, register(f"<{PHONE}>;expires=3599")).status == 423
    assert send(registrar, register(f"<{PHONE}>;expires=3600")).status == 200


def test_malformed_expires_means_the_default() -> None:
    registrar, _location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>;expires=soon"))
    assert contacts_of(resp) == {PHONE: {"expires": "3600"}}


def test_q_values_order_lookups_highest_first_then_registration_order() -> None:
    registrar, location, clock = memory_registrar()
    send(registrar, register("<sip:a@192.0.2.1>;q=0.5", cseq=1))
    clock.advance(1)
    send(registrar, register("<sip:b@192.0.2.2>", cseq=2))  # no q: counts as 1.0
    clock.advance(1)
    send(registrar, register("<sip:c@192.0.2.3>;q=0.5", "<sip:d@192.0.2.4>;q=0.9", cseq=3))
    clock.advance(1)
    send(registrar, register("<sip:a@192.0.2.1>;q=0.5", cseq=4))  # a refresh keeps a's place
    order = [b.uri.user for b in location.lookup(AOR)]
    assert order == ["b", "d", "a", "c"]
    assert [b.q for b in location.lookup(AOR)] == [None, 0.9, 0.5, 0.5]


@pytest.mark.parametrize("q", ["1.5", "0.1234", "x", "-0.1"])
def test_bad_q_value_is_400(q: str) -> None:
    registrar, location, _clock = memory_registrar()
    assert send(registrar, register(f"<{PHONE}>;q={q}")).status == 400
    assert location.lookup(AOR) == []


def test_several_contacts_and_several_addresses_of_record() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(*(f"<sip:alice@192.0.2.{i}>" for i in range(1, 6))))
    send(registrar, register("<sip:bob@192.0.2.9>", to="sip:bob@127.0.0.1", call_id="b"))
    assert len(location.lookup(AOR)) == 5
    assert [str(b.uri) for b in location.lookup("sip:bob@127.0.0.1")] == ["sip:bob@192.0.2.9"]


def test_contact_parameters_are_kept_and_listed() -> None:
    registrar, location, _clock = memory_registrar()
    resp = send(
        registrar,
        register(f'"Alice" <{PHONE};transport=tcp>;+sip.instance="<urn:uuid:1>";expires=300'),
    )
    assert contacts_of(resp) == {
        f"{PHONE};transport=tcp": {"+sip.instance": '"<urn:uuid:1>"', "expires": "300"}
    }
    [binding] = location.lookup(AOR)
    assert binding.uri.transport == "tcp"


def test_path_is_stored_and_echoed_when_supported() -> None:
    registrar, location, _clock = memory_registrar()
    path = ["<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr>"]
    resp = send(
        registrar,
        register(f"<{PHONE}>", extra=[f"Path: {path[0]}, {path[1]}", "Supported: path"]),
    )
    assert resp.status == 200
    assert resp.headers.get_all("Path") == path
    assert "path" in resp.headers.get_all("Supported")
    [binding] = location.lookup(AOR)
    assert binding.path == tuple(path)


def test_path_is_stored_but_not_echoed_without_supported_path() -> None:
    registrar, location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>", extra=["Path: <sip:edge.example.com;lr>"]))
    assert resp.status == 200 and not resp.headers.get_all("Path")
    assert location.lookup(AOR)[0].path == ("<sip:edge.example.com;lr>",)


def test_same_call_id_needs_a_higher_cseq() -> None:
    registrar, location, _clock = memory_registrar()
    assert send(registrar, register(f"<{PHONE}>", expires="600", cseq=5)).status == 200
    for cseq in (5, 4):
        resp = send(registrar, register(f"<{PHONE}>", expires="0", cseq=cseq))
        assert resp.status == 500
        assert len(location.lookup(AOR)) == 1
    # the whole request is refused: the new contact in it is not added either
    resp = send(registrar, register(f"<{DESK}>", f"<{PHONE}>", expires="0", cseq=3))
    assert resp.status == 500
    assert [str(b.uri) for b in location.lookup(AOR)] == [PHONE]
    # another Call-ID (another client, or a rebooted one) may update it with any CSeq
    assert send(registrar, register(f"<{PHONE}>", expires="0", call_id="new", cseq=1)).status == 200
    assert location.lookup(AOR) == []


def test_star_respects_the_cseq_order_too() -> None:
    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{PHONE}>", cseq=10))
    assert send(registrar, register("*", expires="0", cseq=10)).status == 500
    assert len(location.lookup(AOR)) == 1
    assert send(registrar, register("*", expires="0", cseq=11)).status == 200


def test_a_contact_given_twice_in_one_request_takes_the_last() -> None:
    registrar, _location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>;expires=100", f"<{PHONE}>;expires=200"))
    assert resp.status == 200
    assert contacts_of(resp) == {PHONE: {"expires": "200"}}


def test_other_domains_are_refused() -> None:
    registrar, location, _clock = memory_registrar()
    assert send(registrar, register(f"<{PHONE}>", ruri="sip:example.org")).status == 403
    assert send(registrar, register(f"<{PHONE}>", to="sip:alice@example.org")).status == 404
    assert send(registrar, register(f"<{PHONE}>", to="sip:127.0.0.1")).status == 404
    assert location.addresses() == []


def test_aor_is_canonical() -> None:
    registrar, location, _clock = memory_registrar()
    resp = send(registrar, register(f"<{PHONE}>", to="sips:%61lice@127.0.0.1:5061;transport=tls"))
    assert resp.status == 200
    assert len(location.lookup(AOR)) == 1


def test_authenticated_identity_must_be_the_aor_user() -> None:
    registrar, location, _clock = memory_registrar()
    assert send(registrar, register(f"<{PHONE}>"), identity="bob").status == 403
    assert location.lookup(AOR) == []
    assert send(registrar, register(f"<{PHONE}>", cseq=2), identity="alice").status == 200
    assert send(registrar, register(f"<{DESK}>", cseq=3), identity="alice@127.0.0.1").status == 200
    assert len(location.lookup(AOR)) == 2


def test_the_200_is_sent_once_the_bindings_are_stored() -> None:
    from twisted.internet.defer import Deferred

    registrar, location, _clock = memory_registrar()
    stored: list[Deferred[None]] = []

    class SlowStore:
        def replace(self, aor: str, bindings: object) -> Deferred[None]:
            d: Deferred[None] = Deferred()
            stored.append(d)
            return d

    location.store = SlowStore()  # type: ignore[assignment]
    tx = FakeTx()
    registrar.register_received(tx, register(f"<{PHONE}>"), None)  # type: ignore[arg-type]
    assert tx.responses == []
    assert len(location.lookup(AOR)) == 1  # lookups see it at once
    stored[0].callback(None)
    assert tx.response.status == 200


def test_a_store_failure_is_500_and_undoes_the_change() -> None:
    from twisted.internet.defer import fail

    registrar, location, _clock = memory_registrar()
    send(registrar, register(f"<{DESK}>", cseq=1))

    class BrokenStore:
        def replace(self, aor: str, bindings: object) -> object:
            return fail(OSError("disk full"))

    location.store = BrokenStore()  # type: ignore[assignment]
    resp = send(registrar, register(f"<{PHONE}>", cseq=2))
    assert resp.status == 500
    assert [str(b.uri) for b in location.lookup(AOR)] == [DESK]
