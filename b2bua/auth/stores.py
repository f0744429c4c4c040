"""Where users' secrets come from: :class:`~b2bua.interfaces.IAuthenticator` providers.

:class:`StaticUsers` holds a :class:`~b2bua.auth.users.UserTable` in memory,
built from the ``[auth] users`` table (clear passwords, hashed at start-up) and
the ``[auth] users_file`` (stored HA1 hashes).  Lookups return a Deferred like
any :class:`IAuthenticator`, so a store that asks SQL, LDAP or HTTP has the
same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from twisted.internet import defer
from zope.interface import implementer

from ..interfaces import IAuthenticator
from .users import UserEntry, UserTable

__all__ = ["StaticUsers"]


@implementer(IAuthenticator)
class StaticUsers:
    """Users of one realm in memory (passwords from the config, hashes from a file)."""

    def __init__(self, table: UserTable) -> None:
        self.table = table
        self.realm = table.realm
        self.algorithms = table.algorithms()

    @classmethod
    def from_config(
        cls,
        realm: str,
        passwords: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        entries: Iterable[UserEntry] = (),
    ) -> StaticUsers:
        """The users of ``realm``: file ``entries`` plus clear ``passwords``."""
        table = UserTable(realm, entries)
        table.add(UserTable.from_passwords(realm, dict(passwords)))
        return cls(table)

    def __len__(self) -> int:
        return len(self.table)

    def ha1(self, username: str, realm: str, algorithm: str) -> defer.Deferred[str | None]:
        """The stored HA1, or None for an unknown user (or realm, or algorithm)."""
        return defer.succeed(self.table.ha1(username, realm, algorithm))
