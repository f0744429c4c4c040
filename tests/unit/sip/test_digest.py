"""Digest authentication helpers against the RFCs' own examples."""

from __future__ import annotations

import pytest

from b2bua.sip import SIPParseError
from b2bua.sip.digest import Challenge, authorization, digest_response, ha1, parse_auth_params


def test_rfc2617_md5_example() -> None:
    secret = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    response = digest_response(
        secret, "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    )  # fmt: skip
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_sha256_example() -> None:
    secret = ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256")
    response = digest_response(
        secret, "GET", "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm="SHA-256", qop="auth", nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )  # fmt: skip
    assert response == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_challenge_parse_and_str_round_trip() -> None:
    value = 'Digest realm="atlanta.example.com", qop="auth", nonce="84a4cc6f", opaque="", stale=FALSE, algorithm=MD5'
    challenge = Challenge.parse(value)
    assert (challenge.realm, challenge.nonce, challenge.qop) == (
        "atlanta.example.com",
        "84a4cc6f",
        ("auth",),
    )
    assert Challenge.parse(str(challenge)) == challenge


def test_authorization_verifies_with_the_same_secret() -> None:
    challenge = Challenge("pbx", "abc", "SHA-256", ("auth",), "op")
    value = authorization(challenge, "alice", "secret", "INVITE", "sip:bob@127.0.0.1")
    scheme, p = parse_auth_params(value)
    assert scheme == "Digest" and p["username"] == "alice" and p["opaque"] == "op"
    expected = digest_response(
        ha1("alice", "pbx", "secret", "SHA-256"), "INVITE", "sip:bob@127.0.0.1", "abc",
        algorithm="SHA-256", qop="auth", nc=p["nc"], cnonce=p["cnonce"],
    )  # fmt: skip
    assert p["response"] == expected


@pytest.mark.parametrize(
    "value", ["", "Digest", "Digest realm", 'Basic realm="x"', "Digest nonce=1"]
)
def test_bad_challenges_raise_sip_parse_error(value: str) -> None:
    with pytest.raises(SIPParseError):
        Challenge.parse(value)
