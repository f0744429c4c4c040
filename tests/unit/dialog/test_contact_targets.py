"""The remote targets kept by Contact value are the ones decoding each Contact gives."""

from __future__ import annotations

import pytest

from b2bua.dialog import dialog as dialog_module
from b2bua.dialog.dialog import _contact_target, _contact_uri
from b2bua.sip import Request, Response, SIPParseError, parse_message

HEAD = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
)

CONTACTS = [
    [],
    [b"Contact: <sip:bob@192.0.2.1:5070;transport=udp>"],
    [b"m: Bob <SIP:Bob@Example.COM;lr>;expires=60"],
    [b"Contact: sip:bob@192.0.2.1"],
    [b"Contact: *"],
    [b"Contact: *", b"Contact: <sip:late@192.0.2.2>"],
    [b"Contact: <sip:one@192.0.2.1>, <sip:two@192.0.2.2>"],
    [b"Contact: <sip:one@192.0.2.1>", b"Contact: <sip:two@192.0.2.2>"],
    [b'Contact: "Bob \\"B\\"" <sips:bob@[2001:db8::1]:5061;maddr=192.0.2.9?X=1>'],
]


def _message(lines: list[bytes]) -> Request | Response:
    return parse_message(HEAD + b"".join(line + b"\r\n" for line in lines) + b"\r\n")


@pytest.mark.parametrize("lines", CONTACTS)
def test_a_kept_target_is_the_decoded_one(lines: list[bytes]) -> None:
    dialog_module._TARGETS.clear()
    for _ in range(3):  # decoded, then kept (when one line decides)
        message = _message(lines)
        uri = _contact_uri(_message(lines))
        assert _contact_target(message) == (None if uri is None else str(uri))


def test_the_first_line_alone_is_not_taken_for_several() -> None:
    dialog_module._TARGETS.clear()
    _contact_target(_message([b"Contact: *"]))
    both = _message([b"Contact: *", b"Contact: <sip:late@192.0.2.2>"])
    assert _contact_target(both) == "sip:late@192.0.2.2"


def test_a_malformed_contact_raises_every_time() -> None:
    dialog_module._TARGETS.clear()
    for _ in range(2):
        with pytest.raises(SIPParseError):
            _contact_target(_message([b"Contact: <sip:bob@"]))
    assert not dialog_module._TARGETS


def test_the_kept_targets_are_bounded() -> None:
    dialog_module._TARGETS.clear()
    for n in range(dialog_module._TARGETS_MAX + 5):
        _contact_target(_message([b"Contact: <sip:u%d@192.0.2.1>" % n]))
    assert len(dialog_module._TARGETS) <= dialog_module._TARGETS_MAX
