"""The server's garbage-collector policy: start-up objects frozen, fewer young collections."""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from b2bua.config import load_config
from b2bua.plugin import load_plugins
from b2bua.service import GC_THRESHOLDS, B2BUAService


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    hup = signal.getsignal(signal.SIGHUP)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    signal.signal(signal.SIGHUP, hup)


def test_starting_the_service_freezes_startup_objects_and_sets_thresholds(
    tmp_path: Path, restore_gc: None
) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text('[[listen]]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = 0\n')
    config = load_config(str(path))
    service = B2BUAService(config, reactor=MemoryReactorClock(), plugins=load_plugins(config))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    service.startService()
    try:
        assert gc.get_freeze_count() > 1000  # modules, Twisted, the configuration
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > 700  # fewer young collections than CPython's default
    finally:
        service.stopService()
