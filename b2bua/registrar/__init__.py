"""The registrar (RFC 3261 10, RFC 3327 Path) and the location service behind it.

- :mod:`.rules` -- what a REGISTER does to the bindings (pure);
- :mod:`.registrar` -- the REGISTER handler the UAS core calls;
- :mod:`.location` -- :class:`LocationService` (``ILocationService``): bindings in
  memory, expired on time by a reaper, written through to a store;
- :mod:`.sqlite` -- the embedded default store, an SQLite file used off the
  reactor thread.

:func:`build_registrar` makes both from the ``[registrar]`` configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import RegistrarConfig
from ..sip import Response
from .location import BindingStore, LocationService, NoStore
from .registrar import Registrar
from .rules import RegisterError, RegistrarSettings, Registration

__all__ = [
    "BindingStore",
    "LocationService",
    "NoStore",
    "RegisterError",
    "Registrar",
    "RegistrarSettings",
    "Registration",
    "build_registrar",
]


def build_registrar(
    config: RegistrarConfig,
    reactor: Any,
    decorate: Callable[[Response], Response] | None = None,
) -> tuple[LocationService, Registrar]:
    """The location service (SQLite at ``config.database``, memory only when it is "")
    and the REGISTER handler using it.  Start the location service as a child service.
    """
    store: BindingStore
    if config.database:
        from .sqlite import SQLiteStore

        store = SQLiteStore(config.database, reactor)
    else:
        store = NoStore()
    location = LocationService(reactor, config.domains, store)
    settings = RegistrarSettings(
        frozenset(config.domains), config.min_expires, config.max_expires, config.default_expires
    )
    registrar = Registrar(settings, location, reactor, decorate or (lambda response: response))
    return location, registrar
