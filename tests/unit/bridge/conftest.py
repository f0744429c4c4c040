"""Fixtures for the bridge tests: a fresh in-memory B2BUA and the parties around it."""

from __future__ import annotations

import pytest

from tests.unit.bridge.harness import CALLEE, CALLEE2, Callee, Caller, Harness


@pytest.fixture
def h() -> Harness:
    """The B2BUA with default settings, routing every call to CALLEE."""
    return Harness()


@pytest.fixture
def caller(h: Harness) -> Caller:
    return Caller(h)


@pytest.fixture
def callee(h: Harness) -> Callee:
    return Callee(h, CALLEE)


@pytest.fixture
def callee2(h: Harness) -> Callee:
    return Callee(h, CALLEE2, tag="carol7f2b99")
