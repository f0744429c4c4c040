"""dialog_destination keeps the addresses of next hops by their text: the same as
decoding each next hop anew."""

from __future__ import annotations

import pytest

from b2bua.bridge import destinations
from b2bua.bridge.destinations import dialog_destination, literal_target
from b2bua.dialog import Dialog, DialogId, DialogState, next_hop
from b2bua.sip import Address, parse_name_addr

FALLBACKS = [None, Address("TCP", "192.0.2.9", 5070), Address("UDP", "192.0.2.8", 5060)]
HOPS = [
    ("sip:bob@192.0.2.1:5070;transport=udp", ()),
    ("sip:bob@192.0.2.1:5070", ()),
    ("sips:bob@[2001:db8::1]", ()),
    ("sip:bob@pbx.example.com", ()),
    ("sip:bob@192.0.2.1", ("<sip:192.0.2.2;lr>", "<sip:192.0.2.3;lr>")),
    ("sip:bob@192.0.2.1", ("<sip:proxy.example.com;lr;transport=tcp>",)),
    ("sip:bob@192.0.2.1", ("<sip:192.0.2.4;maddr=192.0.2.5>",)),
]


def _dialog(target: str, routes: tuple[str, ...]) -> Dialog:
    return Dialog(
        DialogId("c", "l", "r"),
        uac=True,
        state=DialogState.CONFIRMED,
        local_uri=parse_name_addr("<sip:a@h>"),
        remote_uri=parse_name_addr("<sip:b@h>"),
        remote_target=target,
        route_set=[parse_name_addr(r) for r in routes],
    )


@pytest.mark.parametrize("fallback", FALLBACKS)
@pytest.mark.parametrize(("target", "routes"), HOPS)
def test_a_kept_next_hop_is_the_one_decoded_anew(
    target: str, routes: tuple[str, ...], fallback: Address | None
) -> None:
    dialog = _dialog(target, routes)
    default = fallback.transport if fallback is not None else "UDP"
    expected = literal_target(next_hop(dialog), default) or fallback
    destinations._HOPS.clear()
    assert dialog_destination(dialog, fallback) == expected  # decoded
    assert dialog_destination(_dialog(target, routes), fallback) == expected  # kept


def test_a_new_remote_target_is_a_new_next_hop() -> None:
    dialog = _dialog("sip:bob@192.0.2.1:5070", ())
    assert dialog_destination(dialog, None) == Address("UDP", "192.0.2.1", 5070)
    dialog.remote_target = "sip:bob@192.0.2.7:5072;transport=tcp"
    assert dialog_destination(dialog, None) == Address("TCP", "192.0.2.7", 5072)


def test_the_kept_next_hops_are_bounded() -> None:
    destinations._HOPS.clear()
    for n in range(destinations._HOPS_MAX + 5):
        dialog_destination(_dialog(f"sip:u{n}@192.0.2.1:5070", ()), None)
    assert len(destinations._HOPS) <= destinations._HOPS_MAX
