"""The users file (user:realm:ha1md5[:ha1sha256]) and the in-memory user table."""

from __future__ import annotations

import hashlib
import io

import pytest

from b2bua.auth.users import (
    UserEntry,
    UsersFileError,
    UserTable,
    format_entry,
    main,
    parse_users_file,
)

MD5 = hashlib.md5(b"alice:example.com:secret").hexdigest()
SHA = hashlib.sha256(b"alice:example.com:secret").hexdigest()


def test_a_line_is_user_realm_and_hashes_like_htdigest() -> None:
    text = f"# comment\n\nalice:example.com:{MD5}:{SHA}\n  bob:example.com:{'A' * 32}  \n"
    entries = parse_users_file(text)
    assert entries == [
        UserEntry("alice", "example.com", MD5, SHA),
        UserEntry("bob", "example.com", "a" * 32, None),  # hex is lower-cased
    ]
    assert entries[0].ha1("SHA-256") == SHA and entries[1].ha1("SHA-256") is None
    assert entries[0].ha1("SHA-512") is None


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("alice:example.com\n", 1, "expected user:realm"),
        (f"# c\nalice:example.com:{MD5}:{SHA}:x\n", 2, "expected user:realm"),
        (f":example.com:{MD5}\n", 1, "empty user name"),
        (f"alice::{MD5}\n", 1, "empty realm"),
        ("alice:example.com:secret\n", 1, "MD5 HA1 must be 32 hex digits"),
        (f"alice:example.com:{MD5}:{MD5}\n", 1, "SHA-256 HA1 must be 64 hex digits"),
        (f"alice:r:{MD5}\n\nalice:r:{MD5}\n", 3, "already on line 1"),
    ],
)
def test_bad_lines_are_named(text: str, line: int, reason: str) -> None:
    with pytest.raises(UsersFileError) as info:
        parse_users_file(text)
    assert info.value.line == line and reason in info.value.reason


def test_format_entry_writes_both_hashes() -> None:
    assert format_entry("alice", "example.com", "secret") == f"alice:example.com:{MD5}:{SHA}"
    assert parse_users_file(format_entry("alice", "example.com", "secret")) == [
        UserEntry("alice", "example.com", MD5, SHA)
    ]
    with pytest.raises(ValueError):
        format_entry("al:ice", "example.com", "x")


def test_the_table_keeps_one_realm_and_answers_per_algorithm() -> None:
    entries = [UserEntry("alice", "example.com", MD5, SHA), UserEntry("eve", "other", MD5)]
    table = UserTable("example.com", entries)
    assert len(table) == 1 and "alice" in table and "eve" not in table
    assert table.ha1("alice", "example.com", "MD5") == MD5
    assert table.ha1("alice", "example.com", "SHA-256") == SHA
    assert table.ha1("alice", "other", "MD5") is None
    assert table.ha1("mallory", "example.com", "MD5") is None
    assert table.algorithms() == ("SHA-256", "MD5")
    table.add(UserTable("example.com", [UserEntry("bob", "example.com", MD5)]))
    assert table.algorithms() == ("MD5",)  # bob has no SHA-256 hash


def test_a_table_from_passwords_has_both_hashes() -> None:
    table = UserTable.from_passwords("example.com", {"alice": "secret"})
    assert table.ha1("alice", "example.com", "MD5") == MD5
    assert table.ha1("alice", "example.com", "SHA-256") == SHA


def test_the_command_prints_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    assert main(["alice", "example.com"]) == 0
    assert capsys.readouterr().out == f"alice:example.com:{MD5}:{SHA}\n"
    assert main(["alice"]) == 2
    assert main(["--help"]) == 0
