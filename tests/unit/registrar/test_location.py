"""The in-memory location service: lookups, the reaper on the clock, write-through."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from zope.interface.verify import verifyObject

from b2bua.interfaces import ILocationService
from b2bua.location import Binding, address_of_record
from b2bua.registrar import LocationService
from b2bua.sip import parse_uri

AOR = "sip:alice@127.0.0.1"


def binding(contact: str, expires_at: float, q: float | None = None, at: float = 0.0) -> Binding:
    return Binding(AOR, f"<{contact}>", expires_at, q, "c", 1, (), "", at)


class RecordingStore:
    """A store that records what it is asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def load(self, now: float) -> Deferred[tuple[list[Binding], set[str]]]:
        return succeed(([binding("sip:old@192.0.2.1", now + 50)], {AOR, "sip:bob@127.0.0.1"}))

    def replace(self, aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        self.calls.append(("replace", (aor, [str(b.uri) for b in bindings])))
        return succeed(None)

    def remove_expired(self, now: float) -> Deferred[None]:
        self.calls.append(("remove_expired", now))
        return succeed(None)

    def close(self) -> Deferred[None]:
        self.calls.append(("close", None))
        return succeed(None)

    def describe(self) -> str:
        return "recording"


def test_provides_the_interface() -> None:
    location = LocationService(task.Clock(), ["127.0.0.1"])
    assert verifyObject(ILocationService, location)
    assert location.domains == frozenset({"127.0.0.1"})


def test_address_of_record_is_canonical() -> None:
    for text in (
        "sip:alice@127.0.0.1",
        "sips:alice@127.0.0.1:5061",
        "sip:%61lice@127.0.0.1;transport=tcp?subject=x",
    ):
        assert address_of_record(parse_uri(text)) == AOR
    assert address_of_record(parse_uri("sip:Bob@EXAMPLE.com.")) == "sip:Bob@example.com"
    assert address_of_record(parse_uri("sip:bob@[::0001]:5060")) == "sip:bob@[::1]"


def test_lookup_never_returns_expired_bindings_even_before_the_reaper_runs() -> None:
    clock = task.Clock()
    location = LocationService(clock, ["127.0.0.1"])
    location.update(AOR, [binding("sip:a@192.0.2.1", 10), binding("sip:b@192.0.2.2", 20)])
    clock.rightNow = 10.0  # time moves without the reaper running
    assert [b.uri.user for b in location.lookup(AOR)] == ["b"]


def test_the_reaper_runs_at_each_expiry_and_removes_from_the_store() -> None:
    clock = task.Clock()
    store = RecordingStore()
    location = LocationService(clock, ["127.0.0.1"], store)
    location.update(AOR, [binding("sip:a@192.0.2.1", 10), binding("sip:b@192.0.2.2", 20)])
    assert [c.getTime() for c in clock.getDelayedCalls()] == [10.0]  # one timer, the earliest
    clock.advance(9.9)
    assert location.binding_count == 2
    clock.advance(0.1)
    assert location.binding_count == 1
    assert store.calls[-1][0] == "remove_expired"
    assert [c.getTime() for c in clock.getDelayedCalls()] == [20.0]
    clock.advance(10)
    assert location.binding_count == 0 and location.addresses() == []
    assert clock.getDelayedCalls() == []
    assert location.known(AOR)


def test_an_earlier_expiry_moves_the_reaper_and_a_refresh_outlives_it() -> None:
    clock = task.Clock()
    location = LocationService(clock, ["127.0.0.1"])
    location.update(AOR, [binding("sip:a@192.0.2.1", 100)])
    location.update("sip:bob@127.0.0.1", [binding("sip:b@192.0.2.2", 30)])
    assert [c.getTime() for c in clock.getDelayedCalls()] == [30.0]
    location.update(AOR, [binding("sip:a@192.0.2.1", 200)])  # refreshed
    clock.advance(100)
    assert len(location.lookup(AOR)) == 1  # the stale expiry at 100 did not remove it
    clock.advance(100)
    assert location.lookup(AOR) == [] and location.addresses() == []


def test_update_writes_through_and_drops_bindings_already_expired() -> None:
    clock = task.Clock()
    clock.advance(50)
    store = RecordingStore()
    location = LocationService(clock, ["127.0.0.1"], store)
    location.update(AOR, [binding("sip:a@192.0.2.1", 40), binding("sip:b@192.0.2.2", 60)])
    assert store.calls == [("replace", (AOR, ["sip:b@192.0.2.2"]))]


def test_start_loads_the_store_and_stop_closes_it() -> None:
    clock = task.Clock()
    clock.advance(1000)
    store = RecordingStore()
    location = LocationService(clock, ["127.0.0.1"], store)
    location.startService()
    assert [str(b.uri) for b in location.lookup(AOR)] == ["sip:old@192.0.2.1"]
    assert location.known("sip:bob@127.0.0.1") and not location.known("sip:carol@127.0.0.1")
    clock.advance(50)  # the loaded binding expires on time too
    assert location.lookup(AOR) == []
    done = location.stopService()
    assert done.called and store.calls[-1] == ("close", None)


def test_an_update_before_the_load_finishes_wins_over_the_stored_bindings() -> None:
    clock = task.Clock()
    store = RecordingStore()
    pending: Deferred[tuple[list[Binding], set[str]]] = Deferred()
    store.load = lambda now: pending  # type: ignore[method-assign]
    location = LocationService(clock, ["127.0.0.1"], store)
    location.startService()
    location.update(AOR, [binding("sip:new@192.0.2.9", 100)])
    pending.callback(([binding("sip:old@192.0.2.1", 100)], {AOR}))
    assert [b.uri.user for b in location.lookup(AOR)] == ["new"]
