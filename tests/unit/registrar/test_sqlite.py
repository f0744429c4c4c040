"""The SQLite store: bindings survive a restart, and no statement runs on the reactor thread."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from b2bua.registrar import LocationService, Registrar
from b2bua.registrar.sqlite import SQLiteStore
from tests.unit.registrar.helpers import SETTINGS, FakeTx, ThreadedClock, register

AOR = "sip:alice@127.0.0.1"


class TracedStore(SQLiteStore):
    """Records the thread every SQL statement runs on."""

    def __init__(self, path: str, reactor: ThreadedClock) -> None:
        super().__init__(path, reactor)
        self.threads: list[int] = []

    def _configure(self, connection: sqlite3.Connection) -> None:
        super()._configure(connection)
        connection.set_trace_callback(lambda _sql: self.threads.append(threading.get_ident()))


def start(path: Path, clock: ThreadedClock) -> tuple[LocationService, TracedStore]:
    store = TracedStore(str(path), clock)
    location = LocationService(clock, SETTINGS.domains, store)
    location.startService()
    assert location.loaded is not None
    clock.wait(location.loaded)
    return location, store


def stop(location: LocationService, clock: ThreadedClock) -> None:
    clock.wait(location.stopService())


def registered(registrar: Registrar, clock: ThreadedClock, *args: str, **kw: object) -> int:
    tx = FakeTx()
    registrar.register_received(tx, register(*args, **kw), None)  # type: ignore[arg-type]
    while not tx.responses:
        clock.wait(_next_call(clock))
    return tx.response.status


def _next_call(clock: ThreadedClock) -> object:
    """A Deferred that fires once the database thread has called back."""
    from twisted.internet.defer import Deferred

    d: Deferred[None] = Deferred()
    clock.callFromThread(d.callback, None)
    return d


@pytest.fixture
def clock() -> ThreadedClock:
    clock = ThreadedClock()
    clock.advance(1_700_000_000)  # a wall-clock time, as reactor.seconds() gives
    return clock


def test_bindings_survive_a_restart(tmp_path: Path, clock: ThreadedClock) -> None:
    path = tmp_path / "var" / "registrations.sqlite"  # the directory is created
    location, _store = start(path, clock)
    registrar = Registrar(SETTINGS, location, clock)
    path_hdr = ["Path: <sip:edge.example.com;lr>"]
    status = registered(
        registrar, clock, "<sip:alice@192.0.2.1>;q=0.4", "<sip:alice@192.0.2.2>",
        expires="600", cseq=1, extra=path_hdr,
    )  # fmt: skip
    assert status == 200
    assert registered(
        registrar, clock, "<sip:bob@192.0.2.3>", to="sip:bob@127.0.0.1", call_id="b"
    ) == 200
    assert registered(registrar, clock, "<sip:bob@192.0.2.3>", to="sip:bob@127.0.0.1",
                      call_id="b", cseq=2, expires="0") == 200  # fmt: skip
    before = location.lookup(AOR)
    stop(location, clock)
    assert path.is_file()

    clock.advance(100)
    again, _ = start(path, clock)
    after = again.lookup(AOR)
    assert after == before  # every field, in the same order
    assert [str(b.uri) for b in after] == ["sip:alice@192.0.2.2", "sip:alice@192.0.2.1"]
    assert after[1].q == 0.4 and after[0].path == ("<sip:edge.example.com;lr>",)
    assert again.lookup("sip:bob@127.0.0.1") == [] and again.known("sip:bob@127.0.0.1")
    # the CSeq rule holds across the restart: the same Call-ID needs a higher CSeq
    registrar = Registrar(SETTINGS, again, clock)
    assert registered(registrar, clock, "<sip:alice@192.0.2.2>", expires="600", cseq=1) == 500
    stop(again, clock)


def test_expired_bindings_are_gone_after_a_restart(tmp_path: Path, clock: ThreadedClock) -> None:
    path = tmp_path / "registrations.sqlite"
    location, _ = start(path, clock)
    registrar = Registrar(SETTINGS, location, clock)
    assert registered(registrar, clock, "<sip:alice@192.0.2.1>", expires="60") == 200
    stop(location, clock)
    clock.advance(61)
    again, _ = start(path, clock)
    assert again.lookup(AOR) == [] and again.known(AOR)
    stop(again, clock)
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM bindings").fetchone()
    assert rows == (0,)


def test_the_reaper_deletes_from_the_database(tmp_path: Path, clock: ThreadedClock) -> None:
    path = tmp_path / "registrations.sqlite"
    location, _store = start(path, clock)
    registrar = Registrar(SETTINGS, location, clock)
    assert registered(registrar, clock, "<sip:alice@192.0.2.1>", expires="60") == 200
    assert registered(registrar, clock, "<sip:alice@192.0.2.2>", expires="120", cseq=2) == 200
    clock.advance(60)
    stop(location, clock)  # waits for the reaper's delete
    rows = sqlite3.connect(path).execute("SELECT contact FROM bindings").fetchall()
    assert rows == [("<sip:alice@192.0.2.2>",)]


def test_no_statement_runs_on_the_reactor_thread(tmp_path: Path, clock: ThreadedClock) -> None:
    location, store = start(tmp_path / "registrations.sqlite", clock)
    registrar = Registrar(SETTINGS, location, clock)
    assert registered(registrar, clock, "<sip:alice@192.0.2.1>", expires="60") == 200
    clock.advance(60)  # the reaper's delete
    stop(location, clock)
    assert len(store.threads) >= 5  # schema, load, replace, delete...
    assert threading.get_ident() not in store.threads
    assert len(set(store.threads)) == 1  # one database thread: writes stay in order


def test_a_newer_schema_is_refused_and_the_service_runs_without_it(
    tmp_path: Path, clock: ThreadedClock
) -> None:
    path = tmp_path / "registrations.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    store = SQLiteStore(str(path), clock)
    location = LocationService(clock, SETTINGS.domains, store)
    location.startService()
    assert location.loaded is not None
    clock.wait(location.loaded)  # the failure is logged, not raised
    assert location.lookup(AOR) == []
    stop(location, clock)
