"""The REGISTER handler: the rules of :mod:`.rules` applied to a location service.

:meth:`Registrar.register_received` is what ``UACore.register("REGISTER", ...)``
is given.  The new bindings are visible to lookups at once; the 200 OK is sent
once the location service has stored them (a 500 if storing fails, and the
change is undone).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

from ..interfaces import ILocationService
from ..logs import Logger
from ..sip import Request, Response
from ..transaction import ServerTransaction
from .rules import (
    RegisterError,
    RegistrarSettings,
    Registration,
    apply_register,
    check_identity,
    error_response,
    ok_response,
    registration_aor,
)

__all__ = ["Registrar"]


def _new_tag() -> str:
    return secrets.token_hex(6)


class Registrar:
    """Answers REGISTER requests for ``settings.domains`` from ``location``'s bindings.

    ``clock`` provides ``seconds``; ``decorate`` adds our own headers (Server) to
    every response we send.
    """

    _log = Logger(namespace="b2bua.registrar")

    def __init__(
        self,
        settings: RegistrarSettings,
        location: ILocationService,
        clock: Any,
        decorate: Callable[[Response], Response] = lambda r: r,
        tag_factory: Callable[[], str] = _new_tag,
    ) -> None:
        self.settings = settings
        self.location = location
        self.clock = clock
        self._decorate = decorate
        self._new_tag = tag_factory

    def register_received(
        self, tx: ServerTransaction, request: Request, identity: str | None
    ) -> None:
        """A new REGISTER (after the core's checks and authentication)."""
        now = self.clock.seconds()
        source = str(tx.origin.peer) if getattr(tx, "origin", None) is not None else ""
        try:
            aor = registration_aor(request, self.settings)
            check_identity(identity, aor)
            current = self.location.lookup(aor)
            registration = apply_register(request, aor, current, now, self.settings, source)
        except RegisterError as error:
            self._log.debug(
                "REGISTER {call_id}: {status} {reason}",
                call_id=request.headers.get("Call-ID"),
                status=error.status,
                reason=error.reason,
            )
            tx.respond(self._decorate(error_response(request, error, to_tag=self._new_tag())))
            return
        if registration.bindings is None:  # a fetch: no Contact
            self._ok(tx, request, registration)
            return
        d = self.location.update(aor, registration.bindings)
        d.addCallbacks(
            lambda _: self._ok(tx, request, registration),
            lambda failure: self._failed(tx, request, failure),
        )

    def _ok(self, tx: ServerTransaction, request: Request, registration: Registration) -> None:
        now = self.clock.seconds()
        bindings = self.location.lookup(registration.aor)  # highest q first
        resp = ok_response(request, registration, bindings, now, to_tag=self._new_tag())
        tx.respond(self._decorate(resp))

    def _failed(self, tx: ServerTransaction, request: Request, failure: Failure) -> None:
        error = RegisterError(500, "Location Service Error", (("Retry-After", "5"),))
        tx.respond(self._decorate(error_response(request, error, to_tag=self._new_tag())))
