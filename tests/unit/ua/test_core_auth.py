"""The core's authentication step: after the 8.2 checks, before dispatch, maybe asynchronous."""

from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet import defer, task

from b2bua.auth.policy import Accept, AuthOutcome, AuthSettings, Refuse
from b2bua.auth.service import DigestAuth
from b2bua.auth.stores import StaticUsers
from b2bua.sip import Origin, Request, Response
from b2bua.sip.digest import Challenge
from b2bua.ua.core import CoreSettings, UACore
from tests.unit.auth.helpers import PASSWORDS, REALM, answer, origin, request, response_challenges


class FakeTx:
    """A server transaction as the core sees it: answers are recorded, in order."""

    def __init__(self, source: Origin | None = None) -> None:
        self.origin = source or origin()
        self.responses: list[Response] = []
        self.terminated = False

    @property
    def final_sent(self) -> bool:
        return any(r.status >= 200 for r in self.responses)

    def respond(self, response: Response) -> None:
        assert not self.final_sent, f"a second final response: {response.status}"
        self.responses.append(response)


class Handler:
    def __init__(self) -> None:
        self.calls: list[tuple[Request, str | None]] = []

    def __call__(self, tx: FakeTx, req: Request, identity: str | None) -> None:
        self.calls.append((req, identity))


SETTINGS = AuthSettings(REALM, trusted_networks=("127.0.0.3/32",), max_failures=3, ban_time=300)


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


def make_core(
    clock: task.Clock, settings: AuthSettings = SETTINGS, store: StaticUsers | None = None
) -> UACore:
    users = store or StaticUsers.from_config(REALM, PASSWORDS)
    return UACore(
        CoreSettings(user_agent="test-ua"),
        lambda resp, origin: None,
        tag_factory=lambda: "tag1",
        authenticator=DigestAuth(settings, users, clock),
    )


def send(core: UACore, req: Request, source: Origin | None = None) -> FakeTx:
    tx = FakeTx(source)
    core.request_received(tx, req)  # type: ignore[arg-type]
    return tx


def test_register_is_challenged_with_401_and_a_well_formed_response(clock: task.Clock) -> None:
    core = make_core(clock)
    handler = Handler()
    core.register("REGISTER", handler)
    [resp] = send(core, request("REGISTER")).responses
    assert resp.status == 401 and resp.reason == "Unauthorized"
    assert resp.to_tag == "tag1" and resp.headers.get("Server") == "test-ua"
    assert [c.algorithm for c in response_challenges(resp)] == ["SHA-256", "MD5"]
    assert handler.calls == [] and core.stats.challenged == 1


def test_invite_is_challenged_with_407(clock: task.Clock) -> None:
    core = make_core(clock)
    core.register("INVITE", Handler())
    [resp] = send(core, request("INVITE", "sip:bob@example.com")).responses
    assert resp.status == 407 and len(response_challenges(resp)) == 2


@pytest.mark.parametrize(
    ("method", "uri"), [("REGISTER", f"sip:{REALM}"), ("INVITE", "sip:bob@example.com")]
)
def test_the_handler_gets_the_authenticated_identity(
    clock: task.Clock, method: str, uri: str
) -> None:
    core = make_core(clock)
    handler = Handler()
    core.register(method, handler)
    [challenge] = send(core, request(method, uri)).responses
    tx = send(core, answer(response_challenges(challenge)[0], method, uri))
    assert tx.responses == []  # the handler answers, not the core
    assert [identity for _, identity in handler.calls] == ["alice"]
    assert core.stats.authenticated == 1


def test_trusted_sources_skip_authentication_without_identity(clock: task.Clock) -> None:
    core = make_core(clock)
    handler = Handler()
    core.register("INVITE", handler)
    assert send(core, request("INVITE"), origin("127.0.0.3")).responses == []
    assert [identity for _, identity in handler.calls] == [None]


def test_in_dialog_requests_and_options_are_not_challenged(clock: task.Clock) -> None:
    core = make_core(clock)
    handler = Handler()
    core.register("INVITE", handler)  # no dialog handler: a re-INVITE goes to the INVITE handler
    assert send(core, request("INVITE", to_tag="b1")).responses == []
    assert handler.calls[0][1] is None
    [resp] = send(core, request("OPTIONS")).responses
    assert resp.status == 200


def test_the_checks_come_first(clock: task.Clock) -> None:
    core = make_core(clock)
    [resp] = send(core, request("REGISTER", extra="Require: foo\r\n")).responses
    assert resp.status == 420  # not 401: the 8.2 checks run before authentication


def test_an_authenticated_method_without_handler_gets_405(clock: task.Clock) -> None:
    core = make_core(clock)
    [challenge] = send(core, request("REGISTER")).responses
    [resp] = send(core, answer(response_challenges(challenge)[0])).responses
    assert resp.status == 405  # no registrar here, but alice was let through


def test_banned_sources_get_403_for_everything(clock: task.Clock) -> None:
    core = make_core(clock)
    core.register("REGISTER", Handler())
    for i in range(3):
        [challenge] = send(core, request("REGISTER")).responses
        [again] = send(
            core, answer(response_challenges(challenge)[0], user=f"u{i}", password="x")
        ).responses
        assert again.status == 401
    for req in (request("REGISTER"), request("OPTIONS"), request("INVITE")):
        [resp] = send(core, req).responses
        assert resp.status == 403
    clock.advance(300)
    assert send(core, request("OPTIONS")).responses[0].status == 200


class SlowStore(StaticUsers):
    def __init__(self) -> None:
        super().__init__(StaticUsers.from_config(REALM, PASSWORDS).table)
        self.pending: list[tuple[defer.Deferred[str | None], str | None]] = []

    def ha1(self, username: str, realm: str, algorithm: str) -> defer.Deferred[str | None]:
        d: defer.Deferred[str | None] = defer.Deferred()
        self.pending.append((d, self.table.ha1(username, realm, algorithm)))
        return d

    def release(self) -> None:
        for d, value in self.pending:
            d.callback(value)


def first_challenge(core: UACore, method: str = "REGISTER") -> Challenge:
    [resp] = send(core, request(method)).responses
    return response_challenges(resp)[0]


def test_an_asynchronous_lookup_dispatches_when_it_fires(clock: task.Clock) -> None:
    store = SlowStore()
    core = make_core(clock, store=store)
    handler = Handler()
    core.register("INVITE", handler)
    challenge = first_challenge(core, "INVITE")
    tx = send(core, answer(challenge, "INVITE", "sip:bob@example.com"))
    assert handler.calls == [] and tx.responses == []
    store.release()
    assert [identity for _, identity in handler.calls] == ["alice"]


def test_a_request_answered_while_the_lookup_runs_is_not_answered_again(clock: task.Clock) -> None:
    store = SlowStore()
    core = make_core(clock, store=store)
    handler = Handler()
    core.register("INVITE", handler)
    challenge = first_challenge(core, "INVITE")
    good = send(core, answer(challenge, "INVITE", "sip:bob@example.com"))
    bad = send(core, answer(challenge, "INVITE", "sip:bob@example.com", password="x", nc=2))
    # both callers CANCEL before the store answers: the transaction layer sent 487
    good.responses.append(core.cancelled_response(request("INVITE")))
    bad.terminated = True
    store.release()
    assert handler.calls == []
    assert [r.status for r in good.responses] == [487] and bad.responses == []


def test_a_handler_failing_after_an_asynchronous_lookup_gives_500(clock: task.Clock) -> None:
    store = SlowStore()
    core = make_core(clock, store=store)

    def broken(tx: object, req: Request, identity: str | None) -> None:
        raise RuntimeError("boom")

    core.register("INVITE", broken)
    challenge = first_challenge(core, "INVITE")
    tx = send(core, answer(challenge, "INVITE", "sip:bob@example.com"))
    store.release()
    assert [r.status for r in tx.responses] == [500]


def test_an_authenticator_may_answer_synchronously_or_not() -> None:
    class Fixed:
        def __init__(self, result: AuthOutcome | defer.Deferred[AuthOutcome]) -> None:
            self.result = result

        def authenticate(
            self, request: Request, origin: Origin
        ) -> AuthOutcome | defer.Deferred[AuthOutcome]:
            return self.result

    handler = Handler()
    for result in (Accept("carol"), defer.succeed(Accept("carol"))):
        core = UACore(CoreSettings(), lambda r, o: None, authenticator=Fixed(result))
        core.register("INVITE", handler)
        send(core, request("INVITE"))
    assert [identity for _, identity in handler.calls] == ["carol", "carol"]
    core = UACore(CoreSettings(), lambda r, o: None, authenticator=Fixed(Refuse(403)))
    assert send(core, request("INVITE")).responses[0].status == 403


def test_without_authenticator_nothing_changes(clock: task.Clock) -> None:
    core = UACore(CoreSettings(), lambda r, o: None)
    handler = Handler()
    core.register("REGISTER", handler)
    send(core, request("REGISTER"))
    assert handler.calls[0][1] is None


def test_drop_mode_still_answers_403_in_the_core(clock: task.Clock) -> None:
    """The edge drops banned sources before a transaction exists; a request that got
    past it (it was in flight when the ban began) is refused, never left unanswered."""
    core = make_core(clock, replace(SETTINGS, ban_answer="drop"))
    for i in range(3):
        challenge = first_challenge(core)
        send(core, answer(challenge, user=f"u{i}", password="x"))
    assert send(core, request("REGISTER")).responses[0].status == 403
