"""Digest authentication of incoming requests, on the reactor: :class:`DigestAuth`.

Glues the pure :class:`~b2bua.auth.policy.DigestPolicy` to a clock, a log and
an :class:`~b2bua.interfaces.IAuthenticator` (the store of users' HA1), whose
lookups are asynchronous.  The UAS core asks :meth:`DigestAuth.authenticate`
about every new request outside a dialog, after the RFC 3261 8.2 checks; the
transport edge asks :meth:`DigestAuth.blocked` before a transaction exists, so
banned sources can be dropped without a trace (``ban_answer = "drop"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ..interfaces import IAuthenticator
from ..logs import Logger
from ..sip import Origin, Request
from ..sip.digest import Credentials
from .policy import AuthOutcome, AuthSettings, DigestPolicy, Refuse
from .stores import StaticUsers

if TYPE_CHECKING:
    from ..config import AuthConfig

__all__ = ["DigestAuth", "from_config"]

#: The answer when the user store fails (database down): a server error, not a challenge.
STORE_FAILED = Refuse(500)


class DigestAuth:
    """Authenticates requests with digest against ``store`` (see the module docstring).

    ``authenticate`` returns the outcome at once when no lookup is needed
    (trusted source, ban, no credentials), else a Deferred that fires with it.
    Failures of the store become a 500 (logged); nothing here raises.
    """

    _log = Logger(namespace="b2bua.auth")

    def __init__(
        self,
        settings: AuthSettings,
        store: IAuthenticator,
        clock: IReactorTime,
        *,
        secret: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.policy = DigestPolicy(settings, secret=secret, report=self._report)

    @property
    def realm(self) -> str:
        """The realm challenges name."""
        return self.settings.realm

    def blocked(self, host: str) -> bool:
        """True when a request from ``host`` is to be dropped before it makes a transaction."""
        return self.policy.blocked(host, self.clock.seconds())

    def authenticate(
        self, request: Request, origin: Origin
    ) -> AuthOutcome | defer.Deferred[AuthOutcome]:
        """Accept (with the identity), or Refuse (a challenge, 403, or 500)."""
        host = origin.peer.host
        decided = self.policy.precheck(request, host, self.clock.seconds())
        if not isinstance(decided, Credentials):
            return decided
        credentials = decided
        lookup: defer.Deferred[str | None] = defer.maybeDeferred(
            self.store.ha1, credentials.username, self.settings.realm, credentials.algorithm
        )

        def verify(stored: str | None) -> AuthOutcome:
            return self._verify(stored, request, credentials, host)

        def failed(failure: Failure) -> AuthOutcome:
            return self._store_failed(failure, credentials)

        verified: defer.Deferred[AuthOutcome] = lookup.addCallback(verify)
        return verified.addErrback(failed)

    def _verify(
        self, stored: str | None, request: Request, credentials: Credentials, host: str
    ) -> AuthOutcome:
        if stored is not None and not isinstance(stored, str):
            raise TypeError(f"the user store returned {type(stored).__name__}, not str or None")
        return self.policy.verify(request, credentials, stored, host, self.clock.seconds())

    def _store_failed(self, failure: Failure, credentials: Credentials) -> AuthOutcome:
        self._log.failure(
            "The user store failed looking up {user!r}", failure, user=credentials.username
        )
        return STORE_FAILED

    def _report(self, event: str, **fields: Any) -> None:
        if event == "failed":
            self._log.info(
                "Authentication failed for {user!r} from {source}: {reason}",
                user=fields["user"],
                source=fields["source"],
                reason=fields["reason"],
            )
        elif event == "banned":
            self._log.warn(
                "Banned {what} for {seconds:g} s after {count} failed authentications",
                what=fields["what"],
                seconds=fields["seconds"],
                count=self.settings.max_failures,
            )
        else:
            self._log.debug("{event}: {fields}", event=event, fields=fields)


def from_config(config: AuthConfig, clock: IReactorTime) -> DigestAuth | None:
    """The authenticator the ``[auth]`` table describes, or None when it has no users."""
    if not config.enabled:
        return None
    store = StaticUsers.from_config(config.realm, config.users, config.file_users)
    # Offer only what every user has a hash for (a users file may lack SHA-256).
    algorithms = tuple(a for a in config.algorithms if a in store.algorithms)
    if not algorithms:
        algorithms = ("MD5",)
    if algorithms != config.algorithms:
        DigestAuth._log.warn(
            "[auth] offering only {algorithms}: not every user has a hash for the others",
            algorithms=", ".join(algorithms),
        )
    settings = AuthSettings(
        realm=config.realm,
        methods=frozenset(config.methods),
        algorithms=algorithms,
        nonce_lifetime=config.nonce_lifetime,
        trusted_networks=config.trusted_networks,
        max_failures=config.max_failures,
        failure_window=config.failure_window,
        ban_time=config.ban_time,
        ban_answer=config.ban_answer,
    )
    secret = config.nonce_secret.encode("utf-8") if config.nonce_secret else None
    return DigestAuth(settings, store, clock, secret=secret)
