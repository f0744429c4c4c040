"""Address helpers: which hosts are IP literals."""

from __future__ import annotations

import pytest

from b2bua.sip.address import is_ip_literal


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[2001:db8::5]", True),
        ("2001:db8::5", True),
        ("::ffff:192.0.2.1", True),
        ("example.com", False),
        ("127.0.0.256", False),
        ("[example.com]", False),
        ("[::1", False),
        ("", False),
    ],
)
def test_is_ip_literal(host: str, literal: bool) -> None:
    assert is_ip_literal(host) is literal
