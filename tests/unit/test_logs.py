"""The log floor: events below the configured level are dropped where they are emitted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.application.service import Application
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, LogPublisher

from b2bua import logs
from b2bua.config import load_config
from b2bua.logs import Logger, set_floor
from b2bua.service import B2BUAService


@pytest.fixture(autouse=True)
def _no_floor() -> Iterator[None]:
    set_floor(None)
    yield
    set_floor(None)


def _capture(namespace: str = "b2bua.test") -> tuple[Logger, list[LogEvent]]:
    events: list[LogEvent] = []
    return Logger(namespace=namespace, observer=LogPublisher(events.append)), events


def test_without_a_floor_every_level_reaches_the_observers() -> None:
    log, events = _capture()
    log.debug("d")
    log.info("i")
    assert [e["log_format"] for e in events] == ["d", "i"]
    assert logs.floor() == "debug"


def test_events_below_the_floor_are_dropped_and_the_rest_pass() -> None:
    set_floor("warn")
    log, events = _capture()
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.error("e")
    log.critical("c")
    assert [e["log_format"] for e in events] == ["w", "e", "c"]
    assert logs.floor() == "warn"
    set_floor(None)
    log.debug("again")
    assert events[-1]["log_format"] == "again"


def test_a_logger_bound_to_a_class_keeps_the_floor() -> None:
    events: list[LogEvent] = []

    class Owner:
        log = Logger(namespace="b2bua.test", observer=LogPublisher(events.append))

    set_floor("info")
    Owner().log.debug("hidden")
    Owner().log.info("shown")
    assert [e["log_format"] for e in events] == ["shown"]


def test_the_sip_trace_is_not_subject_to_the_floor() -> None:
    events: list[LogEvent] = []
    set_floor("critical")
    trace = type(logs.trace)(namespace=logs.TRACE_NAMESPACE, observer=LogPublisher(events.append))
    trace.debug("message")
    assert [e["log_format"] for e in events] == ["message"]
    assert not isinstance(logs.trace, Logger)


def test_the_service_sets_the_floor_with_its_observer_and_clears_it_on_stop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text(
        '[[listen]]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = 0\n\n'
        '[server]\ndrain_time = 0.0\n\n[logging]\nlevel = "error"\n'
    )
    service = B2BUAService(load_config(str(path)), reactor=MemoryReactorClock())
    service.setServiceParent(Application("b2bua"))
    assert logs.floor() == "error"
    service.running = True
    service.stopService()
    assert logs.floor() == "debug"


def test_a_service_not_run_by_twistd_leaves_the_floor_alone(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text(
        '[[listen]]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = 0\n\n'
        '[logging]\nlevel = "error"\n'
    )
    B2BUAService(load_config(str(path)), reactor=MemoryReactorClock())
    assert logs.floor() == "debug"
