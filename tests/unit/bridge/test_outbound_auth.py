"""A target that challenges (401/407) gets the route's credentials; the caller never sees it."""

from __future__ import annotations

from b2bua.sip.digest import digest_response, ha1, parse_auth_params
from tests.unit.bridge.harness import CALLEE, Callee, Caller, Harness, routes

CHALLENGE = 'Digest realm="pbx", nonce="n0nce", qop="auth", algorithm=MD5'


def test_401_answered_with_authorization() -> None:
    h = Harness()
    h.decision = routes(CALLEE, credentials=("alice", "s3cret"))
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    first = callee.invite
    callee.answer(401, extra=[("WWW-Authenticate", CHALLENGE)])
    invites = callee.unique_requests("INVITE")
    assert len(invites) == 2
    retry = invites[-1]
    assert retry.call_id == first.call_id and retry.from_tag == first.from_tag
    assert retry.cseq.number == first.cseq.number + 1
    assert retry.branch != first.branch
    _, p = parse_auth_params(retry.headers.get("Authorization") or "")
    expected = digest_response(
        ha1("alice", "pbx", "s3cret"), "INVITE", retry.uri, "n0nce",
        qop="auth", nc=p["nc"], cnonce=p["cnonce"],
    )  # fmt: skip
    assert p["response"] == expected and p["uri"] == retry.uri
    callee.answer(200, request=retry)
    assert 401 not in caller.statuses("INVITE")
    assert caller.statuses("INVITE")[-1] == 200


def test_407_uses_proxy_authorization_and_a_second_challenge_fails() -> None:
    h = Harness()
    h.decision = routes(CALLEE, credentials=("alice", "wrong"))
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(407, extra=[("Proxy-Authenticate", CHALLENGE)])
    retry = callee.unique_requests("INVITE")[-1]
    assert retry.headers.get("Proxy-Authorization")
    callee.answer(407, request=retry, extra=[("Proxy-Authenticate", CHALLENGE)])
    assert len(callee.unique_requests("INVITE")) == 2
    assert caller.statuses("INVITE")[-1] == 407


def test_no_credentials_passes_the_challenge_on() -> None:
    h = Harness()
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(401, extra=[("WWW-Authenticate", CHALLENGE)])
    assert caller.statuses("INVITE")[-1] == 401
