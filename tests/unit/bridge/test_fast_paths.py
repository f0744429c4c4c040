"""The bridge's synchronous shortcuts give what the general (Deferred) paths give."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed

from b2bua.bridge.call import _when_done
from b2bua.sip import Request, Response, parse_message
from tests.unit.bridge.harness import CALLEE, Callee, Caller, Harness, sip_bytes


def _run(d: Deferred[Any]) -> list[tuple[str, object, object]]:
    seen: list[tuple[str, object, object]] = []
    _when_done(
        d,
        lambda result, extra: seen.append(("ok", result, extra)),
        lambda failure, extra: seen.append(("failed", type(failure.value), extra)),
        "arg",
    )
    return seen


@pytest.mark.parametrize("value", [None, 0, "x", ("a", 1)])
def test_a_result_at_hand_is_what_the_callback_chain_gives(value: object) -> None:
    later: Deferred[object] = Deferred()
    general = _run(later)
    assert general == []
    later.callback(value)
    assert _run(succeed(value)) == general == [("ok", value, "arg")]


def test_a_failure_goes_to_the_errback_either_way() -> None:
    later: Deferred[object] = Deferred()
    general = _run(later)
    later.errback(KeyError("k"))
    assert _run(fail(KeyError("k"))) == general == [("failed", KeyError, "arg")]


def test_a_deferred_waiting_on_another_is_not_taken_as_done() -> None:
    inner: Deferred[object] = Deferred()
    outer: Deferred[object] = succeed(None)
    outer.addCallback(lambda _: inner)  # outer is now paused on inner
    seen = _run(outer)
    assert seen == []
    inner.callback("late")
    assert seen == [("ok", "late", "arg")]


def test_an_exception_in_the_callback_is_logged_not_raised() -> None:
    def boom(result: object) -> None:
        raise RuntimeError("bug")

    _when_done(succeed(1), boom, lambda failure: None)  # does not raise


def send_invite(caller: Caller, from_header: str, to_header: str) -> Request | Response:
    """An initial INVITE with these From and To values, without SDP; what the B2BUA
    parsed of it."""
    return caller.send(
        sip_bytes(
            "INVITE sip:bob@127.0.0.1:5060 SIP/2.0",
            [
                ("Via", caller.via),
                ("From", from_header),
                ("To", to_header),
                ("Call-ID", "c1@x"),
                ("CSeq", "1 INVITE"),
                ("Contact", caller.contact),
            ],
            b"",
        )
    )


@pytest.mark.parametrize(
    "from_header",
    [
        "Alice <sip:alice@atlanta.example.com>",
        '"A; tag=x \\"q\\"" <sip:al%20ice;tag=y@atlanta.example.com;user=phone>',
        "sip:alice@atlanta.example.com",
    ],
)
def test_the_views_the_b_invite_carries_are_what_its_lines_decode_to(from_header: str) -> None:
    h = Harness()
    invite = send_invite(Caller(h), f"{from_header};tag=t1", "Bob <sip:bob@biloxi.example.com>")
    assert isinstance(invite, Request)
    [call] = h.manager.calls
    [attempt] = call.attempts
    sent = attempt.invite
    assert sent is not None
    cache = dict(sent.headers.cache)
    assert {"call-id", "from-tag", "cseq"} <= cache.keys()
    decoded = parse_message(sent.to_bytes())
    assert cache["call-id"] == decoded.call_id
    assert cache["from-tag"] == decoded.from_tag
    assert cache["cseq"] == decoded.cseq
    assert cache["via"] == decoded.top_via


@pytest.mark.parametrize(
    "to_header",
    [
        "Bob <sip:bob@biloxi.example.com>",
        "<sip:bob@biloxi.example.com>;tag",
        '"B;tag=q" <sip:bob@biloxi.example.com;tag=u>;x=1',
        "sip:bob@biloxi.example.com",
    ],
)
def test_the_to_tag_view_of_our_responses_is_what_their_to_decodes_to(to_header: str) -> None:
    h = Harness()
    caller, callee = Caller(h), Callee(h, CALLEE)
    send_invite(caller, "<sip:alice@atlanta.example.com>;tag=t1", to_header)
    [call] = h.manager.calls
    for status in (180, 200):
        callee.answer(status)
        assert call.a_tx is not None
        out = call.a_tx.last_response
        assert out is not None and out.status == status
        assert "to-tag" in out.headers.cache
        assert out.headers.cache["to-tag"] == parse_message(out.to_bytes()).to_tag == call.a_tag
