"""Users and their stored secrets: the users file format and an in-memory table.

A users file holds one user a line, like Apache's htdigest, with an optional
SHA-256 hash (RFC 8760)::

    # user:realm:HA1-MD5[:HA1-SHA-256]
    alice:example.com:5f3e5c0c1a0b5e8d2c9e6b0f1a2b3c4d:9a8b...(64 hex digits)

where HA1 is ``H(user:realm:password)`` in lowercase hex: the file never holds a
password.  Blank lines and lines starting with ``#`` are ignored; user and
realm cannot contain ``:``.  Generate a line with::

    python -m b2bua.auth alice example.com >> users.txt   # asks for the password

or, without Python::

    u=alice r=example.com p=secret; printf '%s:%s:%s:%s\\n' "$u" "$r" \\
      "$(printf %s "$u:$r:$p" | md5sum | cut -d' ' -f1)" \\
      "$(printf %s "$u:$r:$p" | sha256sum | cut -d' ' -f1)" >> users.txt

Pure (no Twisted): parsing raises :class:`UsersFileError` with the line number.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..sip.digest import ALGORITHMS, ha1

__all__ = ["UserEntry", "UserTable", "UsersFileError", "format_entry", "parse_users_file"]

_HEX = {"MD5": re.compile(r"[0-9a-f]{32}"), "SHA-256": re.compile(r"[0-9a-f]{64}")}


class UsersFileError(ValueError):
    """A users file line that cannot be used; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One user's stored hashes in one realm."""

    user: str
    realm: str
    ha1_md5: str
    ha1_sha256: str | None = None

    def ha1(self, algorithm: str) -> str | None:
        """The stored HA1 for ``algorithm`` ("MD5" or "SHA-256"), or None."""
        if algorithm == "MD5":
            return self.ha1_md5
        if algorithm == "SHA-256":
            return self.ha1_sha256
        return None


def parse_users_file(text: str) -> list[UserEntry]:
    """Parse users file text; UsersFileError names the first bad line."""
    entries: list[UserEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) not in (3, 4):
            raise UsersFileError(number, "expected user:realm:ha1-md5[:ha1-sha256]")
        user, realm = fields[0].strip(), fields[1].strip()
        hashes = [f.strip().lower() for f in fields[2:]]
        if not user:
            raise UsersFileError(number, "empty user name")
        if not realm:
            raise UsersFileError(number, "empty realm")
        if not _HEX["MD5"].fullmatch(hashes[0]):
            raise UsersFileError(number, "the MD5 HA1 must be 32 hex digits")
        if len(hashes) == 2 and not _HEX["SHA-256"].fullmatch(hashes[1]):
            raise UsersFileError(number, "the SHA-256 HA1 must be 64 hex digits")
        key = (user, realm)
        if key in seen:
            raise UsersFileError(
                number, f"{user!r} in realm {realm!r} is already on line {seen[key]}"
            )
        seen[key] = number
        entries.append(UserEntry(user, realm, hashes[0], hashes[1] if len(hashes) > 1 else None))
    return entries


def format_entry(user: str, realm: str, password: str) -> str:
    """The users file line for ``user`` in ``realm`` (MD5 and SHA-256 hashes)."""
    if ":" in user or ":" in realm:
        raise ValueError("user and realm cannot contain ':'")
    md5 = ha1(user, realm, password, "MD5")
    sha = ha1(user, realm, password, "SHA-256")
    return f"{user}:{realm}:{md5}:{sha}"


class UserTable:
    """The users of one realm and their HA1 per algorithm, in memory."""

    __slots__ = ("_hashes", "realm")

    def __init__(self, realm: str, entries: Iterable[UserEntry] = ()) -> None:
        self.realm = realm
        self._hashes: dict[str, dict[str, str]] = {}
        for entry in entries:
            if entry.realm != realm:
                continue
            hashes = {"MD5": entry.ha1_md5}
            if entry.ha1_sha256 is not None:
                hashes["SHA-256"] = entry.ha1_sha256
            self._hashes[entry.user] = hashes

    @classmethod
    def from_passwords(cls, realm: str, passwords: Mapping[str, str]) -> UserTable:
        """A table computed from clear passwords (the ``[auth] users`` table)."""
        table = cls(realm)
        for user, password in passwords.items():
            table._hashes[user] = {alg: ha1(user, realm, password, alg) for alg in ALGORITHMS}
        return table

    def add(self, other: UserTable) -> None:
        """Take the users of ``other`` (same realm) too."""
        self._hashes.update(other._hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, user: object) -> bool:
        return user in self._hashes

    def ha1(self, user: str, realm: str, algorithm: str) -> str | None:
        """The HA1 of ``user`` for ``algorithm``; None for an unknown user or realm."""
        if realm != self.realm:
            return None
        hashes = self._hashes.get(user)
        return None if hashes is None else hashes.get(algorithm)

    def algorithms(self) -> tuple[str, ...]:
        """The algorithms every user has a hash for, strongest first."""
        common = {"SHA-256", "MD5"}
        for hashes in self._hashes.values():
            common &= set(hashes)
        return tuple(a for a in ("SHA-256", "MD5") if a in common)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m b2bua.auth USER REALM``: print a users file line.

    The password is read from the terminal (or the first line of standard input).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python -m b2bua.auth USER REALM  (asks for the password)")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {args[0]} in {args[1]}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(format_entry(args[0], args[1], password))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
