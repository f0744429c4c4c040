"""StaticUsers, the IAuthenticator of the configured users."""

from __future__ import annotations

from twisted.internet import defer
from zope.interface.verify import verifyObject

from b2bua.auth.stores import StaticUsers
from b2bua.auth.users import UserEntry
from b2bua.interfaces import IAuthenticator
from b2bua.sip.digest import ha1


def lookup(store: StaticUsers, user: str, realm: str, algorithm: str) -> str | None:
    results: list[str | None] = []
    d: defer.Deferred[str | None] = store.ha1(user, realm, algorithm)
    d.addCallback(results.append)
    return results[0]


def test_it_provides_iauthenticator() -> None:
    store = StaticUsers.from_config("pbx", {"alice": "secret"})
    assert verifyObject(IAuthenticator, store)
    assert store.realm == "pbx" and store.algorithms == ("SHA-256", "MD5") and len(store) == 1


def test_passwords_and_file_entries_answer_per_algorithm() -> None:
    md5 = ha1("bob", "pbx", "builder", "MD5")
    store = StaticUsers.from_config("pbx", {"alice": "secret"}, [UserEntry("bob", "pbx", md5)])
    assert lookup(store, "alice", "pbx", "SHA-256") == ha1("alice", "pbx", "secret", "SHA-256")
    assert lookup(store, "bob", "pbx", "MD5") == md5
    assert lookup(store, "bob", "pbx", "SHA-256") is None
    assert lookup(store, "carol", "pbx", "MD5") is None
    assert lookup(store, "alice", "other", "MD5") is None
    assert store.algorithms == ("MD5",)
