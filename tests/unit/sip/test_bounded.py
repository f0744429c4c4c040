"""b2bua.sip.bounded.remember: a table never holds more than its limit."""

from __future__ import annotations

from b2bua.sip.bounded import remember


def test_remember_stores_and_returns_the_value() -> None:
    table: dict[str, int] = {}
    assert remember(table, "a", 1, 3) == 1
    assert table == {"a": 1}


def test_a_full_table_is_emptied_before_the_next_value() -> None:
    table: dict[int, int] = {}
    for i in range(3):
        remember(table, i, i, 3)
    assert len(table) == 3
    remember(table, 3, 3, 3)
    assert table == {3: 3}
    for i in range(100):
        remember(table, i, i, 3)
        assert len(table) <= 3
