"""[auth] in the configuration: defaults, users, users file, errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet import task

from b2bua.auth.service import DigestAuth, from_config
from b2bua.auth.users import format_entry
from b2bua.config import ConfigError, load_config, parse_config

UDP = '[[listen]]\ntransport = "udp"\nhost = "127.0.0.1"\nport = 5060\n'


def test_no_users_no_authentication() -> None:
    config = parse_config(UDP, "f.toml")
    assert not config.auth.enabled
    assert from_config(config.auth, task.Clock()) is None


def test_users_turn_it_on_with_the_documented_defaults() -> None:
    config = parse_config(UDP + '[auth]\nusers = { alice = "a", bob = "b" }\n', "f.toml")
    auth = config.auth
    assert auth.enabled and auth.realm == "b2bua"
    assert auth.users == (("alice", "a"), ("bob", "b"))
    assert "'a'" not in repr(config)  # passwords stay out of logs
    assert (auth.methods, auth.algorithms) == (("REGISTER", "INVITE"), ("SHA-256", "MD5"))
    assert (auth.nonce_lifetime, auth.max_failures, auth.ban_time) == (300.0, 20, 300.0)
    assert auth.ban_answer == "403"
    built = from_config(auth, task.Clock())
    assert isinstance(built, DigestAuth) and built.realm == "b2bua"


def test_users_as_a_table() -> None:
    config = parse_config(UDP + '[auth.users]\nalice = "a"\n', "f.toml")
    assert config.auth.users == (("alice", "a"),)


def test_the_realm_defaults_to_the_first_registrar_domain() -> None:
    text = UDP + '[registrar]\nenabled = true\ndomains = ["Example.COM", "b.org"]\n'
    text += '[auth]\nusers = { alice = "a" }\n'
    assert parse_config(text, "f.toml").auth.realm == "example.com"
    text += 'realm = "office"\n'
    assert parse_config(text, "f.toml").auth.realm == "office"


def test_a_users_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text(
        "# users\n"
        + format_entry("alice", "pbx", "s")
        + "\n"
        + format_entry("eve", "other", "e")
        + "\n"
    )
    path = tmp_path / "b2bua.toml"
    path.write_text(
        UDP + '[auth]\nrealm = "pbx"\nusers_file = "users.txt"\nusers = { bob = "b" }\n'
    )
    auth = load_config(str(path)).auth
    assert auth.users_file == str(tmp_path / "users.txt")
    assert [e.user for e in auth.file_users] == ["alice"]  # only this realm's
    built = from_config(auth, task.Clock())
    assert built is not None and built.settings.algorithms == ("SHA-256", "MD5")


def test_a_users_file_without_sha256_hashes_offers_md5_only(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text(format_entry("alice", "pbx", "s").rsplit(":", 1)[0] + "\n")
    path = tmp_path / "b2bua.toml"
    path.write_text(UDP + '[auth]\nrealm = "pbx"\nusers_file = "users.txt"\n')
    built = from_config(load_config(str(path)).auth, task.Clock())
    assert built is not None and built.settings.algorithms == ("MD5",)
    path.write_text(
        UDP + '[auth]\nrealm = "pbx"\nusers_file = "users.txt"\nalgorithms = ["SHA-256"]\n'
    )
    with pytest.raises(ConfigError, match=r"auth.algorithms: SHA-256 only, but \['alice'\]"):
        load_config(str(path))


def test_a_bad_users_file_line_names_the_file_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text("# users\n\nalice:pbx:not-a-hash\n")
    path = tmp_path / "b2bua.toml"
    path.write_text(UDP + '[auth]\nrealm = "pbx"\nusers_file = "users.txt"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == (
        f"{tmp_path / 'users.txt'}:3: auth.users_file: the MD5 HA1 must be 32 hex digits"
    )


def test_a_users_file_for_another_realm_is_refused(tmp_path: Path) -> None:
    (tmp_path / "users.txt").write_text(format_entry("alice", "elsewhere", "s") + "\n")
    path = tmp_path / "b2bua.toml"
    path.write_text(UDP + '[auth]\nrealm = "pbx"\nusers_file = "users.txt"\n')
    with pytest.raises(ConfigError, match="has no user in realm 'pbx'"):
        load_config(str(path))


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ('users_file = "nope.txt"\n', "f.toml:7: auth.users_file: file"),
        ("users = 3\n", "f.toml:7: auth.users: must be a table"),
        (
            'users = { alice = "" }\n',
            "auth.users: the password of 'alice' must be a non-empty string",
        ),
        ('users = { "a:b" = "x" }\n', "auth.users: bad user name 'a:b'"),
        (
            'trusted_networks = ["10.0.0.5/8"]\n',
            "f.toml:7: auth.trusted_networks: [0] '10.0.0.5/8'",
        ),
        ('trusted_networks = ["lan"]\n', "auth.trusted_networks: [0] 'lan'"),
        ("trusted_networks = [10]\n", "auth.trusted_networks: [0] must be a string"),
        ('methods = ["ACK"]\n', "f.toml:7: auth.methods: must be a list of methods among"),
        ('algorithms = ["SHA-512"]\n', "auth.algorithms: must list"),
        ("algorithms = []\n", "auth.algorithms: must list"),
        ('algorithms = ["MD5", "MD5"]\n', "auth.algorithms: must list"),
        ("nonce_lifetime = 0\n", "f.toml:7: auth.nonce_lifetime: must be positive"),
        ('nonce_secret = "short"\n', "auth.nonce_secret: must be at least 16 characters"),
        ("max_failures = -1\n", "auth.max_failures: must not be negative"),
        ("failure_window = 0\n", "auth.failure_window: must be positive"),
        ("ban_time = 0\n", "auth.ban_time: must be positive"),
        ('ban_answer = "404"\n', 'f.toml:7: auth.ban_answer: must be "403" or "drop"'),
        ('realm = ""\n', "auth.realm: must be a non-empty name"),
        ("colour = 1\n", "f.toml:7: auth.colour: unknown key"),
        ("file_users = []\n", "auth.file_users: unknown key"),
    ],
)
def test_errors_name_file_line_and_key(auth: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(UDP + "\n[auth]\n" + auth, "f.toml")
    assert expected in str(info.value)


def test_a_network_with_host_bits_suggests_the_network() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 10.0.0.0/8\?"):
        parse_config(UDP + '[auth]\ntrusted_networks = ["10.0.0.5/8"]\n', "f.toml")


def test_the_default_configuration_has_the_example_users() -> None:
    auth = load_config(None).auth
    assert auth.enabled and dict(auth.users) == {"alice": "change-me-alice", "bob": "change-me-bob"}
