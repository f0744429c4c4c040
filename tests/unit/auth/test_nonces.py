"""Nonces: signed, dated, stale after their lifetime; nonce-counts that must grow."""

from __future__ import annotations

import pytest

from b2bua.auth.nonces import NonceCounts, NonceFactory, NonceStatus


def test_a_fresh_nonce_is_valid_until_its_lifetime_is_over() -> None:
    nonces = NonceFactory(b"k" * 32, lifetime=300)
    nonce = nonces.new(1000.0)
    assert nonces.check(nonce, 1000.0) is NonceStatus.VALID
    assert nonces.check(nonce, 1299.9) is NonceStatus.VALID
    assert nonces.check(nonce, 1300.0) is NonceStatus.STALE
    assert nonces.issued(nonce) == 1000.0


def test_nonces_are_unique_and_url_safe() -> None:
    nonces = NonceFactory(lifetime=60)
    made = {nonces.new(5.0) for _ in range(200)}
    assert len(made) == 200
    assert all(len(n) == 43 and n.replace("-", "").replace("_", "").isalnum() for n in made)


@pytest.mark.parametrize(
    "forge",
    [
        lambda n: n[:30] + ("A" if n[30] != "A" else "B") + n[31:],  # MAC changed
        lambda n: n[:-1] + ("B" if n[-1] == "A" else "A"),  # last character (padding bits)
        lambda n: ("B" if n[0] != "B" else "C") + n[1:],  # time changed
        lambda n: n[:-2],  # truncated
        lambda n: n + "A",
        lambda n: "!" * 43,  # not base64
        lambda n: "",
    ],
)
def test_a_forged_or_garbled_nonce_is_invalid(forge: object) -> None:
    nonces = NonceFactory(b"k" * 32, lifetime=300)
    nonce = nonces.new(1000.0)
    assert callable(forge)
    assert nonces.check(forge(nonce), 1000.0) is NonceStatus.INVALID


def test_another_secret_does_not_accept_our_nonces() -> None:
    ours, theirs = NonceFactory(b"a" * 32), NonceFactory(b"b" * 32)
    assert theirs.check(ours.new(10.0), 10.0) is NonceStatus.INVALID
    shared = NonceFactory(b"a" * 32)  # another process with the same configured secret
    assert shared.check(ours.new(10.0), 10.0) is NonceStatus.VALID


def test_a_nonce_from_the_future_is_invalid_beyond_a_little_skew() -> None:
    nonces = NonceFactory(b"k" * 32, lifetime=300)
    assert nonces.check(nonces.new(1003.0), 1000.0) is NonceStatus.VALID
    assert nonces.check(nonces.new(1100.0), 1000.0) is NonceStatus.INVALID


def test_the_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError):
        NonceFactory(lifetime=0)


def test_nonce_count_must_grow_per_nonce() -> None:
    counts = NonceCounts(lifetime=300)
    assert counts.use("n1", 0.0, 1, 1.0)
    assert not counts.use("n1", 0.0, 1, 2.0)  # the same request again: a replay
    assert counts.use("n1", 0.0, 3, 3.0)  # skipping counts is fine
    assert not counts.use("n1", 0.0, 2, 4.0)  # going back is not
    assert counts.use("n2", 0.0, 1, 5.0)  # another nonce has its own count


def test_without_qop_a_nonce_serves_one_request() -> None:
    counts = NonceCounts(lifetime=300)
    assert counts.use("n1", 0.0, 0, 1.0)
    assert not counts.use("n1", 0.0, 0, 2.0)


def test_entries_go_when_their_nonce_expires() -> None:
    counts = NonceCounts(lifetime=300)
    counts.use("n1", 0.0, 1, 1.0)
    counts.use("n2", 200.0, 1, 201.0)
    counts.use("n3", 400.0, 1, 401.0)  # n1 is expired by now
    assert len(counts) == 2


def test_a_full_table_refuses_nonces_as_old_as_an_evicted_one() -> None:
    counts = NonceCounts(lifetime=300, max_entries=2)
    assert counts.use("n1", 10.0, 1, 20.0)
    assert counts.use("n2", 11.0, 1, 20.0)
    assert counts.use("n3", 12.0, 1, 20.0)  # n1 evicted: its history is lost
    assert len(counts) == 2
    assert not counts.use("n1", 10.0, 1, 21.0)  # so it can never be replayed
    assert not counts.use("n0", 9.0, 5, 21.0)  # nor anything issued before it
    assert counts.use("n4", 13.0, 1, 21.0)  # newer nonces are fine
