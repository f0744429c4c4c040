"""Bounded lookup tables: a value worked out once, then found by its key.

The layers keep what repeats from message to message (a call's Call-ID and tags, a
peer's Contact, the hosts and ports of URIs) in plain dicts keyed by the text or
bytes it came from.  :func:`remember` stores into one and keeps it bounded: a full
table is emptied and starts again, which costs nothing per lookup (no recency
bookkeeping) and bounds the memory a flood of distinct values can take.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` in ``table`` and return it; a table already holding
    ``limit`` entries is emptied first."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value
