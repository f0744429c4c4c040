"""A dialog given its From and To as the text written keeps what it keeps when given
the decoded addresses (the bridge hands over the lines it wrote)."""

from __future__ import annotations

import pytest

from b2bua.dialog import Dialog, DialogId, DialogState
from b2bua.dialog.dialog import _tagged, _tagged_text, _untagged_text
from b2bua.sip import URI, NameAddr, parse_name_addr

ADDRESSES = [
    NameAddr(URI("sip", user="alice", host="192.0.2.1")),
    NameAddr(URI("sip", user="alice", host="192.0.2.1"), "Alice", {"tag": "t1"}),
    NameAddr(URI("sip", user="alice", host="192.0.2.1"), "Alice", {"tag": "other"}),
    NameAddr(URI("sip", user="a", host="h", params={"tag": "x"}), None, {"x": "1"}),
    NameAddr(URI("sips", user="a", host="h"), 'A "q" <>;tag=t1', {"tag": "t1", "y": None}),
    NameAddr(URI("sip", user="a", host="h"), None, {"y": "2", "tag": "t1"}),
    NameAddr(URI("sip", user="a", host="h"), None, {"tag": None}),
    NameAddr(URI("sip", user="a", host="h"), None, {"tagx": "1"}),
    NameAddr(URI("sip", user="a", host="h"), None, {"q": '";tag=t1"'}),
    parse_name_addr("Bob <sip:bob@h;tag=u>;TAG=t1"),
]


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("tag", ["t1", "1"])
def test_the_text_gives_what_the_address_gives(address: NameAddr, tag: str) -> None:
    text = str(address)
    assert _tagged_text(text, tag) == _tagged(address, tag)
    assert _untagged_text(text) == _untagged_text(address)


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("remote_tag", ["", "t1"])
def test_a_dialog_built_from_texts_is_the_one_built_from_addresses(
    address: NameAddr, remote_tag: str
) -> None:
    def build(local: NameAddr | str, remote: NameAddr | str) -> Dialog:
        return Dialog(
            DialogId("c", "t1", remote_tag),
            uac=True,
            state=DialogState.EARLY,
            local_uri=local,
            remote_uri=remote,
            remote_target="sip:x@192.0.2.3",
        )

    by_value = build(address, address)
    by_text = build(str(address), str(address))
    assert (by_text._from, by_text._to) == (by_value._from, by_value._to)
    assert by_text.local_uri == by_value.local_uri
    assert by_text.remote_uri == by_value.remote_uri
