"""The location service: bindings in memory, expired on time, persisted through a store.

:class:`LocationService` implements :class:`~b2bua.interfaces.ILocationService`.
Every read is served from memory (no thread hop on the call path); every change
is applied in memory at once and written through to a :class:`BindingStore`
(:class:`~b2bua.registrar.sqlite.SQLiteStore` by default, nothing at all with
:class:`NoStore`, which is the in-memory location service of the tests).  At
start the store's bindings are loaded; a reaper on the clock (one delayed call,
set for the next expiry) drops expired bindings from memory and the store.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from twisted.application import service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import ILocationService
from ..location import Binding
from ..logs import Logger

__all__ = ["BindingStore", "LocationService", "NoStore"]

#: The reaper drops bindings this close to their expiry (float rounding of the clock).
_SLACK = 0.001


class BindingStore(Protocol):
    """Where bindings persist.  Calls are made in order and must be applied in order."""

    def load(self, now: float) -> Deferred[tuple[list[Binding], set[str]]]:
        """Every binding live at ``now`` (per AOR in registration order) and every
        AOR that ever had a binding."""

    def replace(self, aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        """Store ``bindings`` as the only bindings of ``aor``."""

    def remove_expired(self, now: float) -> Deferred[None]:
        """Forget every binding expired at ``now``."""

    def close(self) -> Deferred[None]:
        """Finish the writes in flight and release the store."""

    def describe(self) -> str:
        """Where the bindings go, for logs."""


class NoStore:
    """A store that keeps nothing: registrations last as long as the process."""

    def load(self, now: float) -> Deferred[tuple[list[Binding], set[str]]]:
        return succeed(([], set()))

    def replace(self, aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        return succeed(None)

    def remove_expired(self, now: float) -> Deferred[None]:
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)

    def describe(self) -> str:
        return "memory only"


@implementer(ILocationService)
class LocationService(service.Service):
    """Bindings per canonical AOR, in memory, written through to ``store``.

    ``clock`` provides ``seconds`` and ``callLater`` (the reactor, or a
    ``task.Clock`` in tests).  Usable at once; as a twisted service it loads the
    store on start and closes it on stop, after the writes in flight.
    """

    _log = Logger(namespace="b2bua.registrar")

    def __init__(
        self, clock: Any, domains: Iterable[str], store: BindingStore | None = None
    ) -> None:
        self.clock = clock
        self.domains = frozenset(domains)
        self.store: BindingStore = store if store is not None else NoStore()
        self._bindings: dict[str, tuple[Binding, ...]] = {}  # registration order
        self._known: set[str] = set()
        self._versions: dict[str, int] = {}
        self._expiries: list[tuple[float, str]] = []  # heap; stale entries are skipped
        self._reaper: IDelayedCall | None = None
        self._reaper_at = 0.0
        self._pending: set[Deferred[None]] = set()
        self.loaded: Deferred[None] | None = None

    # -- ILocationService ---------------------------------------------------------
    def lookup(self, aor: str) -> list[Binding]:
        """Live bindings of ``aor``, highest q first, equal q in registration order."""
        bindings = self._bindings.get(aor)
        if not bindings:
            return []
        now = self.clock.seconds()
        live = [b for b in bindings if b.expires_at > now]
        live.sort(key=_by_priority)
        return live

    def known(self, aor: str) -> bool:
        """True when ``aor`` ever had a binding (kept across restarts by the store)."""
        return aor in self._known

    def update(self, aor: str, bindings: Sequence[Binding]) -> Deferred[None]:
        """Replace the bindings of ``aor``; see ILocationService.update."""
        now = self.clock.seconds()
        previous = self._bindings.get(aor, ())
        new = tuple(b for b in bindings if b.expires_at > now)
        version = self._versions.get(aor, 0) + 1
        self._versions[aor] = version
        self._set(aor, new)
        self._schedule()

        def undo(failure: Failure) -> Failure:
            if self._versions.get(aor) == version:
                self._set(aor, tuple(b for b in previous if b.expires_at > self.clock.seconds()))
                self._schedule()
            self._log.failure(
                "Could not store the bindings of {aor}", failure, LogLevel.error, aor=aor
            )
            return failure

        return self._track(self.store.replace(aor, new).addErrback(undo))

    # -- for the registrar, stats and tests --------------------------------------
    def addresses(self) -> list[str]:
        """Every AOR with bindings in memory (some may have just expired)."""
        return list(self._bindings)

    @property
    def binding_count(self) -> int:
        """How many bindings are held (live or about to be reaped)."""
        return sum(len(b) for b in self._bindings.values())

    # -- service ---------------------------------------------------------------------
    def startService(self) -> None:
        """Load the stored bindings (asynchronously; ``loaded`` fires when done)."""
        super().startService()  # type: ignore[no-untyped-call]
        self.loaded = self.store.load(self.clock.seconds()).addCallbacks(
            self._add_loaded, self._load_failed
        )

    def stopService(self) -> Deferred[None]:
        """Stop the reaper, let the writes in flight finish, close the store."""
        super().stopService()  # type: ignore[no-untyped-call]
        if self._reaper is not None and self._reaper.active():
            self._reaper.cancel()
        self._reaper = None
        waits: list[Deferred[Any]] = list(self._pending)
        if self.loaded is not None:
            waits.append(self.loaded)
        done: Deferred[Any] = DeferredList(waits, consumeErrors=True)
        return done.addCallback(lambda _: self.store.close())

    def _add_loaded(self, result: tuple[list[Binding], set[str]]) -> None:
        bindings, known = result
        grouped: dict[str, list[Binding]] = {}
        for binding in bindings:
            grouped.setdefault(binding.aor, []).append(binding)
        now = self.clock.seconds()
        for aor, group in grouped.items():
            if aor not in self._versions:  # not updated since we started: take the stored ones
                self._set(aor, tuple(b for b in group if b.expires_at > now))
        self._known |= known
        self._schedule()
        self._log.info(
            "Location service: {n} bindings of {aors} addresses of record ({where})",
            n=self.binding_count,
            aors=len(self._bindings),
            where=self.store.describe(),
        )

    def _load_failed(self, failure: Failure) -> None:
        self._log.failure(
            "Could not load the stored registrations ({where}); starting without them",
            failure,
            LogLevel.error,
            where=self.store.describe(),
        )

    # -- the reaper ----------------------------------------------------------------
    def _set(self, aor: str, bindings: tuple[Binding, ...]) -> None:
        if bindings:
            self._bindings[aor] = bindings
            self._known.add(aor)
            for binding in bindings:
                heapq.heappush(self._expiries, (binding.expires_at, aor))
        else:
            self._bindings.pop(aor, None)

    def _schedule(self) -> None:
        """One delayed call, at the earliest expiry (rescheduled only when it moves earlier)."""
        if not self._expiries:
            return
        when = self._expiries[0][0]
        if self._reaper is not None and self._reaper.active():
            if self._reaper_at <= when:
                return
            self._reaper.cancel()
        self._reaper_at = when
        self._reaper = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._reap)

    def _reap(self) -> None:
        """Drop every expired binding from memory and from the store; schedule the next run."""
        self._reaper = None
        now = self.clock.seconds()
        due: set[str] = set()
        while self._expiries and self._expiries[0][0] <= now + _SLACK:
            due.add(heapq.heappop(self._expiries)[1])
        removed = 0
        for aor in due:
            bindings = self._bindings.get(aor, ())
            live = tuple(b for b in bindings if b.expires_at > now + _SLACK)
            if len(live) != len(bindings):
                removed += len(bindings) - len(live)
                if live:
                    self._bindings[aor] = live
                else:
                    del self._bindings[aor]
        if removed:
            self._log.debug("Reaped {n} expired bindings", n=removed)
            self._track(self.store.remove_expired(now + _SLACK).addErrback(self._reap_failed))
        self._schedule()

    def _reap_failed(self, failure: Failure) -> None:
        self._log.failure(
            "Could not remove expired bindings from the store", failure, LogLevel.error
        )

    def _track(self, d: Deferred[None]) -> Deferred[None]:
        self._pending.add(d)

        def forget(result: object) -> object:
            self._pending.discard(d)
            return result

        d.addBoth(forget)
        return d


def _by_priority(binding: Binding) -> float:
    return -binding.priority
