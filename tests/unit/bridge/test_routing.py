"""What the router decides, and INVITEs that must not become calls (loops)."""

from __future__ import annotations

from twisted.internet import defer

from b2bua.routing import Reject, RequestContext, Routes
from b2bua.sip import Request, Response, parse_message
from tests.unit.bridge.harness import (
    CALLEE,
    CALLER,
    LONG,
    US,
    Callee,
    Caller,
    Harness,
)


def _final(caller: Caller) -> Response:
    finals = [r for r in caller.responses(method="INVITE") if r.status >= 200]
    assert len(finals) == 1, [r.status for r in finals]
    return finals[0]


def _done(h: Harness, caller: Caller) -> None:
    caller.ack_failure(_final(caller))
    h.advance(LONG)
    h.assert_idle()


def test_router_sees_request_and_context(h: Harness, caller: Caller) -> None:
    invite = caller.send_invite()
    [(request, context)] = h.route_calls
    assert request.call_id == invite.call_id
    assert context == RequestContext(CALLER, US)


def test_reject(h: Harness, caller: Caller, callee: Callee) -> None:
    h.decision = Reject(403, "Not Allowed Here", (("Warning", '399 b2bua "blocked"'),))
    caller.send_invite()
    final = _final(caller)
    assert (final.status, final.reason) == (403, "Not Allowed Here")
    assert final.headers.get("Warning") == '399 b2bua "blocked"'
    assert final.to_tag is not None
    assert callee.received() == []
    _done(h, caller)


def test_router_failure_gives_500(h: Harness, caller: Caller, callee: Callee) -> None:
    h.decision = RuntimeError("database down")
    caller.send_invite()
    assert _final(caller).status == 500
    assert callee.received() == []
    _done(h, caller)


def test_router_raising_gives_500(h: Harness, caller: Caller, callee: Callee) -> None:
    """A router that raises instead of returning a failed Deferred: still a clean 500,
    no exception out of the transaction layer, no call left behind."""

    def broken(request: Request, context: RequestContext) -> defer.Deferred[object]:
        raise RuntimeError("bug in a routing plugin")

    h.decision = broken
    caller.send_invite()  # must not raise
    assert _final(caller).status == 500
    assert h.manager.calls == set()
    _done(h, caller)


def test_router_late_answer(h: Harness, caller: Caller, callee: Callee) -> None:
    pending: defer.Deferred[object] = defer.Deferred()
    h.decision = pending
    caller.send_invite()
    assert caller.statuses("INVITE") == [100] and callee.received() == []
    pending.callback(Routes(()))
    assert _final(caller).status == 404


def test_no_decision_gives_404(h: Harness, caller: Caller, callee: Callee) -> None:
    h.decision = None
    caller.send_invite()
    assert _final(caller).status == 404
    assert callee.received() == []
    _done(h, caller)


def test_empty_routes_give_404(h: Harness, caller: Caller) -> None:
    h.decision = Routes(())
    caller.send_invite()
    assert _final(caller).status == 404
    _done(h, caller)


def test_loop_gets_482(h: Harness, caller: Caller, callee: Callee) -> None:
    """Our own B-leg INVITE coming back to us (the target routed it back): 482."""
    caller.send_invite()
    b_invite = callee.invite
    # The target is a proxy that sends our INVITE straight back, with its Via on top.
    looped = parse_message(b_invite.to_bytes())
    assert isinstance(looped, Request)
    looped.headers.add("Via", "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKproxyloop1", first=True)
    looped.headers.set("Max-Forwards", "68")
    callee.send(looped.to_bytes())
    back = [r for r in callee.responses(method="INVITE") if r.call_id == b_invite.call_id]
    assert [r.status for r in back] == [100, 482]
    assert back[-1].branch == "z9hG4bKproxyloop1"
    assert len(h.manager.calls) == 1  # no second call
    assert len(callee.unique_requests("INVITE")) == 1
    assert caller.statuses("INVITE") == [100]


def test_second_call_reuses_nothing(h: Harness, callee: Callee) -> None:
    """Two calls from different callers: distinct B Call-IDs and tags."""
    one = Caller(h, call_id="one@alice.example", tag="t1")
    two = Caller(h, call_id="two@alice.example", tag="t2")
    one.send_invite()
    two.send_invite()
    invites = callee.unique_requests("INVITE")
    assert len(invites) == 2
    assert invites[0].call_id != invites[1].call_id
    assert invites[0].from_tag != invites[1].from_tag
    assert len(h.manager.calls) == 2
    assert CALLEE in {s.peer for s in h.transport.sent}
