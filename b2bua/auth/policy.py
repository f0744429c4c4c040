"""Server-side digest authentication (RFC 3261 22, RFC 7616, RFC 8760) as pure decisions.

:class:`DigestPolicy` decides what to do with a request in two steps, around
the one thing that may take time, the lookup of the user's stored HA1:

1. :meth:`DigestPolicy.precheck` -- trusted source (accept, anonymous), banned
   source (403), method not challenged (accept), no usable credentials (401 or
   407 with a fresh challenge), banned user (403); otherwise the
   :class:`~b2bua.sip.digest.Credentials` to look up.
2. :meth:`DigestPolicy.verify` -- given the stored HA1 (None for an unknown
   user: a dummy secret is used, so the work and the answer are the same as for
   a wrong password): the response, the realm and the uri must match, else the
   failure is counted and a fresh challenge sent; a correct response with an
   expired, foreign or replayed nonce (nc not higher than before) gets a fresh
   challenge with ``stale=true``; otherwise the user name is the identity.

Challenges offer every configured algorithm, SHA-256 first (RFC 8760 2.4: one
header per algorithm, preferred first), with ``qop="auth"``; REGISTER gets 401
with WWW-Authenticate, every other method 407 with Proxy-Authenticate.  Pure:
the current time comes in as ``now``; :mod:`b2bua.auth.service` adds Twisted.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sip import Request, SIPParseError, parse_uri
from ..sip.digest import ALGORITHMS, Challenge, Credentials, digest_response
from .bans import Bans, TrustedNetworks
from .nonces import NonceCounts, NonceFactory, NonceStatus

__all__ = [
    "ANONYMOUS",
    "Accept",
    "AuthOutcome",
    "AuthSettings",
    "DEFAULT_METHODS",
    "DigestPolicy",
    "Refuse",
]

#: Methods challenged by default: registrations and new calls.
DEFAULT_METHODS = frozenset({"REGISTER", "INVITE"})
BAN_ANSWERS = ("403", "drop")
_NC = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How requests are authenticated (the ``[auth]`` table, resolved)."""

    realm: str
    methods: frozenset[str] = DEFAULT_METHODS
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    trusted_networks: tuple[str, ...] = ()
    max_failures: int = 10
    failure_window: float = 300.0
    ban_time: float = 300.0
    ban_answer: str = "403"

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown or not self.algorithms:
            raise ValueError(f"algorithms must be among {', '.join(ALGORITHMS)}")
        if self.ban_answer not in BAN_ANSWERS:
            raise ValueError(f"ban_answer must be one of {', '.join(BAN_ANSWERS)}")


@dataclass(frozen=True, slots=True)
class Accept:
    """Go on with the request; ``identity`` is the authenticated user (None: not
    authenticated, e.g. a trusted source or a method that is not challenged)."""

    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer the request with ``status`` and these extra headers (challenges)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


AuthOutcome = Accept | Refuse
ANONYMOUS = Accept(None)
FORBIDDEN = Refuse(403)

#: ``report(event, **fields)``: "failed" (user, source, reason), "banned" (what,
#: seconds), "authenticated" (user, source).
Reporter = Callable[..., None]


def _no_report(event: str, **fields: Any) -> None:
    pass


class DigestPolicy:
    """The decisions of server-side digest authentication (see the module docstring)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        secret: bytes | None = None,
        report: Reporter = _no_report,
        max_entries: int = 100_000,
    ) -> None:
        self.settings = settings
        self.realm = settings.realm
        self.trusted = TrustedNetworks(settings.trusted_networks)
        self.nonces = NonceFactory(secret, settings.nonce_lifetime)
        self.counts = NonceCounts(settings.nonce_lifetime, max_entries)
        self.bans = Bans(
            settings.max_failures,
            settings.failure_window,
            settings.ban_time,
            max_entries=max_entries,
        )
        self._report = report
        self._drop = settings.ban_answer == "drop"
        # What an unknown user's response is checked against: random, so no
        # response matches, and as cheap as a lookup (the work is the same).
        self._dummy = {alg: secrets.token_hex(32 if alg == "MD5" else 64) for alg in ALGORITHMS}

    # -- step 0: before any transaction ----------------------------------------------
    def blocked(self, host: str, now: float) -> bool:
        """True when requests from ``host`` are to be dropped unanswered (a banned
        source with ``ban_answer = "drop"``): checked before a transaction exists."""
        return self._drop and self.bans.source_banned(host, now)

    # -- step 1 -------------------------------------------------------------------
    def precheck(self, request: Request, host: str, now: float) -> AuthOutcome | Credentials:
        """Decide what needs no user lookup; else return the credentials to check."""
        if host in self.trusted:
            return ANONYMOUS
        if self.bans.source_banned(host, now):
            return FORBIDDEN
        if request.method not in self.settings.methods:
            return ANONYMOUS
        credentials = self.credentials(request)
        if credentials is None:
            return self.challenge(request, now)
        if self.bans.user_banned(credentials.username, host, now):
            return FORBIDDEN
        return credentials

    def credentials(self, request: Request) -> Credentials | None:
        """The request's usable digest credentials for our realm, or None.

        Looks in Authorization for REGISTER, in Proxy-Authorization for other
        methods, then in the other header.  Credentials for another realm, with an
        algorithm or qop we did not offer, or malformed are not usable.
        """
        first, second = (
            ("Authorization", "Proxy-Authorization")
            if request.method == "REGISTER"
            else ("Proxy-Authorization", "Authorization")
        )
        for name in (first, second):
            for value in request.headers.get_lines(name):
                try:
                    credentials = Credentials.parse(value)
                except SIPParseError:
                    continue
                if credentials.realm == self.realm and self._usable(credentials):
                    return credentials
        return None

    def _usable(self, credentials: Credentials) -> bool:
        if credentials.algorithm not in self.settings.algorithms:
            return False
        if credentials.qop is None:
            return True
        nc = credentials.nc or ""
        return credentials.qop == "auth" and _NC.fullmatch(nc) is not None and int(nc, 16) > 0

    # -- step 2 -------------------------------------------------------------------
    def verify(
        self,
        request: Request,
        credentials: Credentials,
        stored_ha1: str | None,
        host: str,
        now: float,
    ) -> AuthOutcome:
        """Check ``credentials`` against the stored HA1 (None: unknown user)."""
        algorithm = credentials.algorithm
        known = stored_ha1 is not None
        secret = stored_ha1 if stored_ha1 is not None else self._dummy[algorithm]
        expected = digest_response(
            secret.lower(),
            request.method,
            credentials.uri,
            credentials.nonce,
            algorithm=algorithm,
            qop=credentials.qop,
            nc=credentials.nc or "",
            cnonce=credentials.cnonce or "",
        )
        matches = hmac.compare_digest(
            expected.encode(), credentials.response.encode("utf-8", "surrogateescape")
        )
        uri_ok = _same_uri(credentials.uri, request)
        if not (matches and known and uri_ok):
            user = credentials.username
            reason = (
                "unknown user" if not known else "wrong password" if not matches else "uri mismatch"
            )
            self._report("failed", user=user, source=host, reason=reason)
            for what in self.bans.failure(user, host, now):
                self._report("banned", what=what, seconds=self.settings.ban_time)
            return self.challenge(request, now)
        nonce = credentials.nonce
        issued = self.nonces.issued(nonce)
        if issued is None or self.nonces.status(issued, now) is not NonceStatus.VALID:
            return self.challenge(request, now, stale=True)  # expired, or not ours
        nc = int(credentials.nc, 16) if credentials.nc else 0
        if not self.counts.use(nonce, issued, nc, now):
            return self.challenge(request, now, stale=True)  # a replay, or nc went back
        self.bans.success(credentials.username, host, now)
        self._report("authenticated", user=credentials.username, source=host)
        return Accept(credentials.username)

    def challenge(self, request: Request, now: float, *, stale: bool = False) -> Refuse:
        """401 (REGISTER) or 407 (others) with one fresh challenge per algorithm."""
        nonce = self.nonces.new(now)
        if request.method == "REGISTER":
            status, header = 401, "WWW-Authenticate"
        else:
            status, header = 407, "Proxy-Authenticate"
        headers = tuple(
            (header, str(Challenge(self.realm, nonce, algorithm, ("auth",), None, stale)))
            for algorithm in self.settings.algorithms
        )
        return Refuse(status, headers)


def _same_uri(uri: str, request: Request) -> bool:
    """The credentials' uri names the Request-URI (RFC 3261 22.4, RFC 7616 3.4.6)."""
    if uri == request.uri:
        return True
    try:
        return parse_uri(uri) == request.request_uri
    except SIPParseError:
        return False
