"""ICallFeature hooks: when each runs, what it may change, and how a Reject ends the call."""

from __future__ import annotations

from typing import Any

from zope.interface.verify import verifyObject

from b2bua.features import CallFeature
from b2bua.interfaces import ICallFeature
from b2bua.routing import CallInfo, Reject, Routes, Target
from b2bua.sip import Request, Response
from tests.unit.bridge.harness import CALLEE, CALLEE2, Callee, Caller, Harness, establish, routes


class Recorder(CallFeature):
    """Records every hook; optional rejections per hook."""

    def __init__(self, reject: dict[str, Reject] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reject = reject or {}

    def _seen(self, hook: str, value: Any = None) -> Reject | None:
        self.calls.append((hook, value))
        return self.reject.get(hook)

    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        return self._seen("call_started", request.method)

    def call_routed(self, call: CallInfo, routes: Routes) -> Reject | None:
        return self._seen("call_routed", len(routes.targets))

    def request_out(self, call: CallInfo, request: Request, target: Target) -> Reject | None:
        request.headers.add("X-Feature", "yes")
        return self._seen("request_out", str(target.uri))

    def target_failed(self, call: CallInfo, target: Target, response: Response) -> None:
        self._seen("target_failed", response.status)

    def provisional(self, call: CallInfo, response: Response) -> None:
        response.headers.add("X-Ringing", "1")
        self._seen("provisional", response.status)

    def answered(self, call: CallInfo, response: Response) -> Reject | None:
        return self._seen("answered", response.status)

    def in_dialog_request(self, call: CallInfo, request: Request, leg: str) -> Reject | None:
        return self._seen("in_dialog_request", (request.method, leg))

    def call_failed(self, call: CallInfo, response: Response) -> Reject | None:
        return self._seen("call_failed", response.status)

    def call_ended(self, call: CallInfo, reason: str) -> None:
        self._seen("call_ended", call.answered)


def hooks(feature: Recorder) -> list[str]:
    return [name for name, _ in feature.calls]


def test_the_base_class_provides_the_interface() -> None:
    assert verifyObject(ICallFeature, CallFeature())


def test_hooks_of_an_answered_call_in_order() -> None:
    feature = Recorder()
    h = Harness(features=[feature])
    caller, callee = Caller(h), Callee(h, CALLEE)
    establish(h, caller, callee)
    assert callee.invite.headers.get("X-Feature") == "yes"
    assert caller.responses(180)[-1].headers.get("X-Ringing") == "1"
    caller.request("BYE")
    assert hooks(feature) == [
        "call_started", "call_routed", "request_out", "provisional", "answered", "call_ended",
    ]  # fmt: skip
    assert feature.calls[-1] == ("call_ended", True)


def test_call_started_reject_refuses_before_routing() -> None:
    feature = Recorder({"call_started": Reject(503, "Busy", (("Retry-After", "5"),))})
    h = Harness(features=[feature])
    caller = Caller(h)
    caller.send_invite()
    final = caller.responses(503)[-1]
    assert final.headers.get("Retry-After") == "5"
    assert h.route_calls == []
    assert hooks(feature) == ["call_started", "call_ended"]
    h.advance(40)
    h.assert_idle()


def test_failed_targets_and_call_failed_translation() -> None:
    feature = Recorder({"call_failed": Reject(480, "Gone Fishing")})
    h = Harness(features=[feature])
    h.decision = routes(CALLEE, CALLEE2)
    caller, first, second = Caller(h), Callee(h, CALLEE), Callee(h, CALLEE2, tag="c2")
    caller.send_invite()
    first.answer(503)
    second.answer(486)
    assert caller.statuses("INVITE")[-1] == 480
    assert ("target_failed", 503) in feature.calls and ("target_failed", 486) in feature.calls
    assert ("call_failed", 486) in feature.calls


def test_answered_reject_hangs_up_the_callee() -> None:
    feature = Recorder({"answered": Reject(403, "Not Now")})
    h = Harness(features=[feature])
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(200)
    assert caller.statuses("INVITE")[-1] == 403
    assert callee.requests("ACK") and callee.requests("BYE")


def test_in_dialog_reject_answers_instead_of_relaying() -> None:
    feature = Recorder({"in_dialog_request": Reject(488, "No Thanks")})
    h = Harness(features=[feature])
    caller, callee = Caller(h), Callee(h, CALLEE)
    establish(h, caller, callee)
    info = caller.request("INFO", b"x")
    assert [r.status for r in caller.responses() if r.cseq == info.cseq] == [488]
    assert callee.requests("INFO") == []


def test_a_broken_feature_does_not_break_the_call() -> None:
    class Broken(CallFeature):
        def request_out(self, call: CallInfo, request: Request, target: Target) -> Reject | None:
            raise RuntimeError("boom")

    h = Harness(features=[Broken()])
    caller, callee = Caller(h), Callee(h, CALLEE)
    establish(h, caller, callee)
    assert caller.statuses("INVITE")[-1] == 200
