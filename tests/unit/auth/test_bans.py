"""Failures per source and per user, bans that end, trusted networks."""

from __future__ import annotations

import pytest

from b2bua.auth.bans import Bans, FailureCounter, TrustedNetworks, source_key


def test_max_failures_within_the_window_ban_for_ban_time() -> None:
    counter = FailureCounter(max_failures=3, window=60, ban_time=300)
    assert not counter.failed("k", 0.0)
    assert not counter.failed("k", 10.0)
    assert not counter.banned("k", 10.0)
    assert counter.failed("k", 20.0)  # the third one bans
    assert counter.banned("k", 20.0) and counter.banned("k", 319.9)
    assert not counter.banned("k", 320.0)  # over, and forgotten
    assert len(counter) == 0
    assert not counter.failed("k", 321.0)  # a fresh start


def test_failures_older_than_the_window_do_not_count() -> None:
    counter = FailureCounter(max_failures=3, window=60, ban_time=300)
    counter.failed("k", 0.0)
    counter.failed("k", 30.0)
    assert not counter.failed("k", 61.0)  # the first one slid out
    assert counter.failed("k", 62.0)


def test_failures_during_a_ban_do_not_extend_it() -> None:
    counter = FailureCounter(max_failures=1, window=60, ban_time=100)
    assert counter.failed("k", 0.0)
    assert not counter.failed("k", 50.0)
    assert counter.banned("k", 99.0) and not counter.banned("k", 100.0)


def test_zero_max_failures_disables_bans() -> None:
    counter = FailureCounter(max_failures=0, window=60, ban_time=300)
    assert not any(counter.failed("k", float(t)) for t in range(100))
    assert not counter.banned("k", 100.0) and len(counter) == 0


def test_the_table_is_bounded() -> None:
    counter = FailureCounter(max_failures=5, window=60, ban_time=300, max_entries=100)
    for i in range(1000):
        counter.failed(f"k{i}", 1.0)
    assert len(counter) == 100


def test_forgive_clears_failures_but_not_a_ban() -> None:
    counter = FailureCounter(max_failures=2, window=60, ban_time=300)
    counter.failed("a", 0.0)
    counter.forgive("a", 1.0)
    assert not counter.failed("a", 2.0)  # counting restarted
    counter.failed("b", 0.0)
    counter.failed("b", 1.0)
    counter.forgive("b", 2.0)
    assert counter.banned("b", 2.0)
    assert counter.banned_keys(2.0) == ["b"]


def test_sources_are_banned_by_ipv4_address_or_ipv6_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert source_key("[2001:db8:1:2::9]") == "2001:db8:1:2::/64"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("pbx.example.com") == "pbx.example.com"
    bans = Bans(max_failures=2, window=60, ban_time=300)
    bans.failure("x", "2001:db8:1:2::1", 0.0)
    assert bans.failure("y", "2001:db8:1:2::2", 1.0) == ["source 2001:db8:1:2::/64"]
    assert bans.source_banned("2001:db8:1:2::3", 2.0)
    assert not bans.source_banned("2001:db8:1:3::1", 2.0)


def test_failures_count_per_source_and_per_user() -> None:
    bans = Bans(max_failures=3, window=60, ban_time=300)
    assert bans.failure("alice", "192.0.2.1", 0.0) == []
    assert bans.failure("bob", "192.0.2.1", 1.0) == []
    assert bans.failure("carol", "192.0.2.1", 2.0) == ["source 192.0.2.1"]
    assert bans.source_banned("192.0.2.1", 3.0)
    # one user name from many places
    for i, t in enumerate((4.0, 5.0)):
        assert bans.failure("dave", f"198.51.100.{i}", t) == []
    assert bans.failure("dave", "198.51.100.9", 6.0) == ["user dave"]
    assert bans.user_banned("dave", "203.0.113.5", 7.0)
    assert not bans.source_banned("198.51.100.9", 7.0)
    assert not bans.source_banned("192.0.2.1", 302.0)
    assert not bans.user_banned("dave", "203.0.113.5", 306.0)


def test_a_user_ban_spares_the_sources_the_user_authenticated_from() -> None:
    bans = Bans(max_failures=2, window=60, ban_time=300)
    bans.success("alice", "192.0.2.50", 0.0)  # alice's phone
    bans.failure("alice", "203.0.113.1", 10.0)
    bans.failure("alice", "203.0.113.2", 11.0)  # an attacker fails twice: alice is banned
    assert bans.user_banned("alice", "203.0.113.3", 12.0)
    assert not bans.user_banned("alice", "192.0.2.50", 12.0)  # not for her phone
    bans.success("alice", "192.0.2.50", 13.0)  # and her success does not lift the ban
    assert bans.user_banned("alice", "203.0.113.3", 14.0)


def test_success_forgets_the_users_failures() -> None:
    bans = Bans(max_failures=2, window=60, ban_time=300)
    bans.failure("alice", "192.0.2.1", 0.0)  # a typo
    bans.success("alice", "192.0.2.1", 1.0)
    assert "user alice" not in bans.failure("alice", "192.0.2.2", 2.0)


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("127.0.0.3", True),
        ("127.0.0.4", False),
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("2001:db8::5", True),
        ("[2001:db8::5]", True),
        ("2001:db9::5", False),
        ("::ffff:10.0.0.1", True),
        ("pbx.example.com", False),
    ],
)
def test_trusted_networks(host: str, trusted: bool) -> None:
    networks = TrustedNetworks(["127.0.0.3/32", "10.0.0.0/8", "2001:db8::/32"])
    assert (host in networks) is trusted
    assert (host in networks) is trusted  # cached


def test_no_trusted_networks_trust_nobody() -> None:
    assert "127.0.0.1" not in TrustedNetworks()
    assert not TrustedNetworks()
