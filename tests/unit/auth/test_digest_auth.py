"""Server-side digest (DigestAuth on a task.Clock): challenges, nonces, replays, bans."""

from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure

from b2bua.auth.policy import Accept, AuthOutcome, AuthSettings, Refuse
from b2bua.auth.service import DigestAuth
from b2bua.auth.stores import StaticUsers
from b2bua.sip import Origin, Request
from b2bua.sip.digest import Challenge, authorization
from tests.unit.auth.helpers import PASSWORDS, REALM, answer, challenges, origin, request

SETTINGS = AuthSettings(REALM, max_failures=3, failure_window=60, ban_time=300)


class CountingStore(StaticUsers):
    """StaticUsers that counts lookups and can hold them (an asynchronous store)."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__(StaticUsers.from_config(REALM, PASSWORDS).table)
        self.lookups: list[tuple[str, str]] = []
        self.hold = hold
        self.pending: list[tuple[defer.Deferred[str | None], str | None]] = []

    def ha1(self, username: str, realm: str, algorithm: str) -> defer.Deferred[str | None]:
        self.lookups.append((username, algorithm))
        value = self.table.ha1(username, realm, algorithm)
        if not self.hold:
            return defer.succeed(value)
        d: defer.Deferred[str | None] = defer.Deferred()
        self.pending.append((d, value))
        return d

    def release(self) -> None:
        pending, self.pending = self.pending, []
        for d, value in pending:
            d.callback(value)


@pytest.fixture
def clock() -> task.Clock:
    clock = task.Clock()
    clock.advance(1_000_000)
    return clock


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def auth(clock: task.Clock, store: CountingStore) -> DigestAuth:
    return DigestAuth(SETTINGS, store, clock)


def outcome(auth: DigestAuth, req: Request, source: Origin | None = None) -> AuthOutcome:
    result = auth.authenticate(req, source or origin())
    if isinstance(result, defer.Deferred):
        results: list[AuthOutcome] = []
        result.addCallback(results.append)
        assert results, "the lookup did not fire"
        return results[0]
    return result


def challenge_of(
    auth: DigestAuth,
    method: str = "REGISTER",
    algorithm: str = "SHA-256",
    source: Origin | None = None,
) -> Challenge:
    refused = outcome(auth, request(method), source)
    assert isinstance(refused, Refuse)
    return next(c for c in challenges(refused.headers) if c.algorithm == algorithm)


def test_register_gets_401_with_sha256_then_md5_challenges(auth: DigestAuth) -> None:
    refused = outcome(auth, request("REGISTER"))
    assert isinstance(refused, Refuse) and refused.status == 401
    assert [n for n, _ in refused.headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    sha, md5 = challenges(refused.headers)
    assert (sha.algorithm, md5.algorithm) == ("SHA-256", "MD5")
    assert sha.realm == md5.realm == REALM
    assert sha.qop == md5.qop == ("auth",)
    assert not sha.stale and not md5.stale


def test_invite_gets_407_with_proxy_authenticate(auth: DigestAuth) -> None:
    refused = outcome(auth, request("INVITE", "sip:bob@example.com"))
    assert isinstance(refused, Refuse) and refused.status == 407
    assert {n for n, _ in refused.headers} == {"Proxy-Authenticate"}


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
@pytest.mark.parametrize(
    ("method", "uri"), [("REGISTER", "sip:example.com"), ("INVITE", "sip:bob@example.com")]
)
def test_the_right_password_gives_the_identity(
    auth: DigestAuth, algorithm: str, method: str, uri: str
) -> None:
    ch = challenge_of(auth, method, algorithm)
    assert outcome(auth, answer(ch, method, uri)) == Accept("alice")


def test_without_qop_rfc2069_style_is_accepted_once(auth: DigestAuth) -> None:
    ch = replace(challenge_of(auth), qop=())
    req = answer(ch)
    assert "qop=" not in (req.headers.get("Authorization") or "")
    assert outcome(auth, req) == Accept("alice")
    assert isinstance(outcome(auth, answer(ch)), Refuse)  # no nc: one request per nonce


def test_the_nonce_may_be_reused_with_a_growing_nonce_count(auth: DigestAuth) -> None:
    ch = challenge_of(auth)
    assert outcome(auth, answer(ch, nc=1)) == Accept("alice")
    assert outcome(auth, answer(ch, nc=2)) == Accept("alice")
    assert outcome(auth, answer(ch, nc=7)) == Accept("alice")


def test_a_replayed_nonce_count_gets_a_stale_challenge(auth: DigestAuth, clock: task.Clock) -> None:
    ch = challenge_of(auth)
    first = answer(ch, nc=1)
    assert outcome(auth, first) == Accept("alice")
    replayed = outcome(auth, first)  # the very same request again
    assert isinstance(replayed, Refuse) and replayed.status == 401
    assert all(c.stale for c in challenges(replayed.headers))
    assert isinstance(outcome(auth, answer(ch, nc=1)), Refuse)  # nc not growing
    assert not auth.policy.bans.source_banned(origin().peer.host, clock.seconds())


def test_an_expired_nonce_with_the_right_password_gets_stale_true(
    auth: DigestAuth, clock: task.Clock
) -> None:
    ch = challenge_of(auth)
    clock.advance(SETTINGS.nonce_lifetime)
    refused = outcome(auth, answer(ch))
    assert isinstance(refused, Refuse) and refused.status == 401
    fresh = challenges(refused.headers)
    assert all(c.stale for c in fresh) and fresh[0].nonce != ch.nonce
    assert outcome(auth, answer(fresh[0])) == Accept("alice")  # the client retries


def test_an_expired_nonce_with_a_wrong_password_is_a_failure_not_stale(
    auth: DigestAuth, clock: task.Clock
) -> None:
    ch = challenge_of(auth)
    clock.advance(SETTINGS.nonce_lifetime + 1)
    refused = outcome(auth, answer(ch, password="wrong"))
    assert isinstance(refused, Refuse) and not any(c.stale for c in challenges(refused.headers))


def test_a_nonce_from_another_secret_gets_stale_true(auth: DigestAuth, clock: task.Clock) -> None:
    other = DigestAuth(SETTINGS, StaticUsers.from_config(REALM, PASSWORDS), clock)
    ch = challenge_of(other)  # e.g. issued before a restart
    refused = outcome(auth, answer(ch))
    assert isinstance(refused, Refuse) and all(c.stale for c in challenges(refused.headers))


def test_a_wrong_password_gets_a_fresh_challenge(auth: DigestAuth) -> None:
    ch = challenge_of(auth)
    refused = outcome(auth, answer(ch, password="wrong"))
    assert isinstance(refused, Refuse) and refused.status == 401
    fresh = challenges(refused.headers)
    assert fresh[0].nonce != ch.nonce and not fresh[0].stale


def shape(result: AuthOutcome) -> tuple[object, ...]:
    """Everything of an answer but the nonce (which is fresh every time)."""
    assert isinstance(result, Refuse)
    return (
        result.status,
        [
            (n, replace(c, nonce=""))
            for (n, _), c in zip(result.headers, challenges(result.headers), strict=True)
        ],
    )


def test_unknown_user_and_wrong_password_are_indistinguishable(
    clock: task.Clock, store: CountingStore
) -> None:
    auth = DigestAuth(replace(SETTINGS, max_failures=0), store, clock)  # no bans here
    for algorithm in ("SHA-256", "MD5"):
        wrong = outcome(auth, answer(challenge_of(auth, algorithm=algorithm), password="wrong"))
        unknown = outcome(
            auth, answer(challenge_of(auth, algorithm=algorithm), user="mallory", password="x")
        )
        assert shape(wrong) == shape(unknown)
    # the same work for both: one lookup each, then the same digest computation
    assert store.lookups == [
        ("alice", "SHA-256"),
        ("mallory", "SHA-256"),
        ("alice", "MD5"),
        ("mallory", "MD5"),
    ]
    # and for INVITE
    wrong = outcome(
        auth, answer(challenge_of(auth, "INVITE"), "INVITE", "sip:b@example.com", password="x")
    )
    unknown = outcome(
        auth, answer(challenge_of(auth, "INVITE"), "INVITE", "sip:b@example.com", user="zed")
    )
    assert shape(wrong) == shape(unknown)


def test_unknown_users_count_towards_bans_like_known_ones(
    auth: DigestAuth, clock: task.Clock
) -> None:
    for user in ("mallory", "alice", "nobody"):
        outcome(auth, answer(challenge_of(auth), user=user, password="guess"))
    assert outcome(auth, request()) == Refuse(403)


def test_the_uri_must_be_the_request_uri(auth: DigestAuth) -> None:
    ch = challenge_of(auth)
    value = authorization(ch, "alice", "secret", "REGISTER", "sip:other.example.com")
    refused = outcome(auth, request(extra=f"Authorization: {value}\r\n"))
    assert isinstance(refused, Refuse) and refused.status == 401
    # an equivalent URI is fine (RFC 3261 19.1.4: host case does not matter)
    value = authorization(ch, "alice", "secret", "REGISTER", "sip:EXAMPLE.com")
    assert outcome(auth, request(extra=f"Authorization: {value}\r\n")) == Accept("alice")


def test_credentials_for_another_realm_or_unoffered_algorithm_are_ignored(
    auth: DigestAuth, store: CountingStore
) -> None:
    ch = challenge_of(auth)
    for other in (replace(ch, realm="elsewhere"), replace(ch, algorithm="SHA-512-256")):
        value = authorization(
            replace(other, algorithm="MD5"), "alice", "secret", "REGISTER", "sip:example.com"
        )
        value = value.replace("algorithm=MD5", f"algorithm={other.algorithm}")
        refused = outcome(auth, request(extra=f"Authorization: {value}\r\n"))
        assert isinstance(refused, Refuse) and refused.status == 401
    assert store.lookups == []  # nothing to look up: a plain challenge, not a failure


def test_malformed_credentials_get_a_challenge(auth: DigestAuth) -> None:
    for value in (
        'Digest username="alice"',
        "Basic YWxpY2U6c2VjcmV0",
        'Digest realm="example.com", nc=00000000',
    ):
        refused = outcome(auth, request(extra=f"Authorization: {value}\r\n"))
        assert isinstance(refused, Refuse) and refused.status == 401


def test_md5_only_settings_offer_only_md5(clock: task.Clock, store: CountingStore) -> None:
    auth = DigestAuth(replace(SETTINGS, algorithms=("MD5",)), store, clock)
    refused = outcome(auth, request())
    assert isinstance(refused, Refuse)
    assert [c.algorithm for c in challenges(refused.headers)] == ["MD5"]
    sha = Challenge(REALM, challenges(refused.headers)[0].nonce, "SHA-256", ("auth",))
    assert isinstance(outcome(auth, answer(sha)), Refuse)  # SHA-256 was not offered


def test_trusted_networks_skip_authentication(clock: task.Clock, store: CountingStore) -> None:
    auth = DigestAuth(
        replace(SETTINGS, trusted_networks=("127.0.0.3/32", "10.0.0.0/8")), store, clock
    )
    assert outcome(auth, request(), origin("127.0.0.3")) == Accept(None)
    assert outcome(auth, request("INVITE"), origin("10.9.8.7")) == Accept(None)
    assert isinstance(outcome(auth, request(), origin("127.0.0.4")), Refuse)


def test_methods_not_challenged_pass_without_identity(auth: DigestAuth) -> None:
    assert outcome(auth, request("OPTIONS")) == Accept(None)
    assert outcome(auth, request("MESSAGE")) == Accept(None)


def test_failures_ban_the_source_then_the_ban_ends(auth: DigestAuth, clock: task.Clock) -> None:
    for i in range(SETTINGS.max_failures):  # a scan of user names from one source
        refused = outcome(auth, answer(challenge_of(auth), user=f"user{i}", password="guess"))
        assert isinstance(refused, Refuse) and refused.status == 401
    assert outcome(auth, request()) == Refuse(403)  # even without credentials
    assert outcome(auth, answer(Challenge(REALM, "x"))) == Refuse(403)  # or with
    assert outcome(auth, request("OPTIONS")) == Refuse(403)  # everything from there
    assert not auth.blocked(origin().peer.host)  # 403, not dropped
    other = origin("192.0.2.99")
    assert isinstance(outcome(auth, request(), other), Refuse)  # others are challenged as usual
    assert outcome(auth, answer(challenge_of(auth, source=other)), other) == Accept("alice")
    clock.advance(SETTINGS.ban_time)
    ch = challenge_of(auth)
    assert outcome(auth, answer(ch, nc=1)) == Accept("alice")  # unbanned after ban_time


def test_ban_answer_drop_blocks_before_any_transaction(
    clock: task.Clock, store: CountingStore
) -> None:
    auth = DigestAuth(replace(SETTINGS, ban_answer="drop"), store, clock)
    for _ in range(SETTINGS.max_failures):
        outcome(auth, answer(challenge_of(auth), password="guess"))
    assert auth.blocked("192.0.2.10") and not auth.blocked("192.0.2.11")
    clock.advance(SETTINGS.ban_time)
    assert not auth.blocked("192.0.2.10")


def test_a_user_ban_gets_403_from_anywhere_but_the_users_own_sources(
    auth: DigestAuth, clock: task.Clock
) -> None:
    phone = origin("192.0.2.50")
    assert outcome(auth, answer(challenge_of(auth)), phone) == Accept("alice")
    for i in range(SETTINGS.max_failures):  # an attacker spread over several addresses
        outcome(auth, answer(challenge_of(auth), password="guess"), origin(f"203.0.113.{i}"))
    attacker = origin("203.0.113.200")
    assert outcome(auth, answer(challenge_of(auth)), attacker) == Refuse(403)
    assert outcome(
        auth, answer(challenge_of(auth), user="bob", password="builder"), attacker
    ) == Accept("bob")
    assert outcome(auth, answer(challenge_of(auth), nc=1), phone) == Accept("alice")


def test_an_asynchronous_store_is_waited_for(clock: task.Clock) -> None:
    store = CountingStore(hold=True)
    auth = DigestAuth(SETTINGS, store, clock)
    result = auth.authenticate(answer(challenge_of(auth)), origin())
    assert isinstance(result, defer.Deferred)
    seen: list[AuthOutcome] = []
    result.addCallback(seen.append)
    assert seen == []
    clock.advance(1)
    store.release()
    assert seen == [Accept("alice")]


def test_a_failing_store_gives_500(clock: task.Clock) -> None:
    class Broken(CountingStore):
        def ha1(self, username: str, realm: str, algorithm: str) -> defer.Deferred[str | None]:
            return defer.fail(Failure(RuntimeError("database down")))

    auth = DigestAuth(SETTINGS, Broken(), clock)
    assert outcome(auth, answer(challenge_of(auth))) == Refuse(500)


def test_settings_refuse_unknown_algorithms_and_ban_answers() -> None:
    with pytest.raises(ValueError):
        AuthSettings(REALM, algorithms=("SHA-512",))
    with pytest.raises(ValueError):
        AuthSettings(REALM, algorithms=())
    with pytest.raises(ValueError):
        AuthSettings(REALM, ban_answer="404")
