"""Fixtures for the transaction layer tests (the doubles live in helpers.py)."""

from __future__ import annotations

import pytest

from tests.unit.transaction.helpers import Harness, make_harness


@pytest.fixture
def h() -> Harness:
    """A fresh layer on a fake clock with default timers (T1=0.5, T2=4, T4=5)."""
    return make_harness()
