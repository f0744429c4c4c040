"""Digest authentication of incoming requests (RFC 3261 22, RFC 7616, RFC 8760).

The pure parts, importable without Twisted:

- :mod:`b2bua.auth.policy` -- :class:`DigestPolicy`, the decisions: who is
  trusted, challenged, accepted (with an identity) or refused; :class:`AuthSettings`.
- :mod:`b2bua.auth.nonces` -- stateless HMAC-signed nonces with expiry, and the
  bounded nonce-count table that refuses replays.
- :mod:`b2bua.auth.bans` -- failures per source and per user, temporary bans,
  trusted networks.
- :mod:`b2bua.auth.users` -- the users file (``user:realm:ha1md5[:ha1sha256]``)
  and the in-memory :class:`UserTable`.

On the reactor (import them from their modules): :class:`b2bua.auth.service.DigestAuth`,
which the UAS core asks about each new request, and
:class:`b2bua.auth.stores.StaticUsers`, the :class:`~b2bua.interfaces.IAuthenticator`
for users from the configuration.
"""

from .bans import Bans, TrustedNetworks
from .nonces import NonceCounts, NonceFactory, NonceStatus
from .policy import ANONYMOUS, Accept, AuthOutcome, AuthSettings, DigestPolicy, Refuse
from .users import UserEntry, UsersFileError, UserTable, format_entry, parse_users_file

__all__ = [
    "ANONYMOUS",
    "Accept",
    "AuthOutcome",
    "AuthSettings",
    "Bans",
    "DigestPolicy",
    "NonceCounts",
    "NonceFactory",
    "NonceStatus",
    "Refuse",
    "TrustedNetworks",
    "UserEntry",
    "UserTable",
    "UsersFileError",
    "format_entry",
    "parse_users_file",
]
