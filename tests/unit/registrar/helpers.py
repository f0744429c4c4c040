"""Shared by the registrar tests: REGISTER builders, a fake transaction, a threaded clock."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from b2bua.registrar import LocationService, Registrar, RegistrarSettings
from b2bua.sip import Address, Origin, Request, Response, parse_message

DOMAIN = "127.0.0.1"
SETTINGS = RegistrarSettings(frozenset({DOMAIN}), min_expires=60, max_expires=7200)
ORIGIN = Origin(Address("UDP", "192.0.2.10", 5062), Address("UDP", "127.0.0.1", 5060))


def register(
    *contacts: str,
    to: str = "sip:alice@127.0.0.1",
    ruri: str = "sip:127.0.0.1",
    expires: str | None = None,
    call_id: str = "reg-1@192.0.2.10",
    cseq: int = 1,
    extra: Sequence[str] = (),
) -> Request:
    """A parsed REGISTER (through the real parser, as the core would hand it over)."""
    lines = [
        f"REGISTER {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-r" + str(cseq),
        "Max-Forwards: 70",
        f"From: <{to}>;tag=f1",
        f"To: <{to}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *(f"Contact: {c}" for c in contacts),
        *([f"Expires: {expires}"] if expires is not None else []),
        *extra,
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


class FakeTx:
    """A server transaction that records the responses."""

    def __init__(self, origin: Origin = ORIGIN) -> None:
        self.origin = origin
        self.responses: list[Response] = []

    def respond(self, response: Response) -> None:
        self.responses.append(response)

    @property
    def response(self) -> Response:
        assert len(self.responses) == 1, self.responses
        return self.responses[0]


def contacts_of(response: Response) -> dict[str, dict[str, str | None]]:
    """Contact URI -> its header parameters, from a 200 to REGISTER."""
    from b2bua.sip import parse_name_addr

    out = {}
    for value in response.headers.get_all("Contact"):
        na = parse_name_addr(value)
        out[str(na.uri)] = dict(na.params)
    return out


def send(registrar: Registrar, request: Request, identity: str | None = None) -> Response:
    tx = FakeTx()
    registrar.register_received(tx, request, identity)  # type: ignore[arg-type]
    return tx.response


def memory_registrar(
    clock: task.Clock | None = None, settings: RegistrarSettings = SETTINGS
) -> tuple[Registrar, LocationService, task.Clock]:
    clock = clock or task.Clock()
    location = LocationService(clock, settings.domains)
    return Registrar(settings, location, clock, tag_factory=lambda: "t0"), location, clock


class ThreadedClock(task.Clock):
    """A task.Clock that also takes calls from other threads, as adbapi needs.

    ``callFromThread`` queues the call; :meth:`wait` runs the queue on this (the
    test's) thread until a Deferred has a result, as a reactor would.
    """

    def __init__(self) -> None:
        super().__init__()
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._calls = queue.Queue()
        self.triggers: list[tuple[str, str, Callable[..., Any]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        self._calls.put((f, args, kw))

    def callWhenRunning(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        return None  # the store starts its pool itself

    def addSystemEventTrigger(
        self, phase: str, event: str, f: Callable[..., Any], *args: Any
    ) -> int:
        self.triggers.append((phase, event, f))
        return len(self.triggers)

    def removeSystemEventTrigger(self, trigger: int) -> None:
        pass

    def run_pending(self) -> int:
        n = 0
        while True:
            try:
                f, args, kw = self._calls.get_nowait()
            except queue.Empty:
                return n
            f(*args, **kw)
            n += 1

    def wait(self, d: Deferred[Any], timeout: float = 10.0) -> Any:
        """Run calls from threads until ``d`` fires; its result (a Failure is raised)."""
        results: list[Any] = []
        d.addBoth(results.append)
        deadline = time.monotonic() + timeout
        while not results:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the Deferred did not fire")
            try:
                f, args, kw = self._calls.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            f(*args, **kw)
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result
