"""The UAS core: the transaction user that answers requests outside a call.

It runs the RFC 3261 8.2 checks on every new request, answers OPTIONS itself,
hands each method it has a handler for (INVITE goes to the bridge once one is
registered) to that handler, and answers everything else: 405 with Allow for a
method it knows but does not handle here, 501 for one it does not know.  It also
answers malformed requests that the transport could not parse, when enough of
them is readable to build a response.

With an authenticator (:class:`b2bua.auth.service.DigestAuth`, ``[auth]``), every
new request outside a dialog is authenticated after the 8.2 checks and before
it is dispatched: it may be challenged (401/407), refused (403) or accepted, and
the handler gets the authenticated user name as ``identity``.  The check may
take time (the user store is asynchronous); a request answered meanwhile (a
CANCELled INVITE got 487) is not answered again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..auth.policy import Accept, AuthOutcome, Refuse
from ..logs import Logger
from ..sip import Origin, Request, Response, SIPParseError, response_for, salvage_request
from ..transaction import ServerTransaction
from .checks import check_request, error_response

#: A handler for one method: the server transaction, the request, and the
#: authenticated identity of its sender (None when not authenticated).
RequestHandler = Callable[[ServerTransaction, Request, "str | None"], None]
#: Sends a response outside any transaction (for requests we could not parse).
StatelessSender = Callable[[Response, Origin], None]


class RequestAuthenticator(Protocol):
    """What the core asks about new requests (``b2bua.auth.service.DigestAuth``)."""

    def authenticate(
        self, request: Request, origin: Origin, /
    ) -> AuthOutcome | Deferred[AuthOutcome]:
        """Accept (with the identity, or None) or Refuse (401/407 challenge, 403, 500)."""
        ...


def new_tag() -> str:
    """A fresh random tag (RFC 3261 19.3: at least 32 bits of randomness)."""
    return secrets.token_hex(6)


@dataclass(slots=True)
class CoreSettings:
    """What the core advertises and how it names itself."""

    user_agent: str = "b2bua"
    supported: frozenset[str] = frozenset()
    accept: tuple[str, ...] = ("application/sdp",)
    retry_after: int = 30


@dataclass(slots=True)
class CoreStats:
    """Counters for monitoring."""

    requests: int = 0
    rejected: int = 0
    malformed: int = 0
    dropped: int = 0
    challenged: int = 0
    authenticated: int = 0


class UACore:
    """The transaction user for requests that no dialog or call has claimed."""

    _log = Logger(namespace="b2bua.core")

    def __init__(
        self,
        settings: CoreSettings,
        send_stateless: StatelessSender,
        *,
        tag_factory: Callable[[], str] = new_tag,
        stamp: Callable[[Request, Origin], object] | None = None,
        authenticator: RequestAuthenticator | None = None,
    ) -> None:
        self.settings = settings
        #: authenticates new requests outside dialogs (None: nobody is challenged)
        self.authenticator = authenticator
        self._send_stateless = send_stateless
        self._new_tag = tag_factory
        self._stamp = stamp
        self._handlers: dict[str, RequestHandler] = {}
        self._dialog_handler: RequestHandler | None = None
        self.draining = False
        self.stats = CoreStats()
        self.allow: tuple[str, ...] = ()
        self._update_allow()

    def register(self, method: str, handler: RequestHandler) -> None:
        """Send new requests of ``method`` to ``handler`` (after the checks)."""
        self._handlers[method] = handler
        self._update_allow()

    def register_dialog_handler(self, handler: RequestHandler) -> None:
        """Send every request with a To tag (in-dialog) to ``handler`` after the checks."""
        self._dialog_handler = handler

    def _update_allow(self) -> None:
        self.allow = tuple(sorted({"OPTIONS", "ACK", "CANCEL", *self._handlers}))

    def decorate(self, response: Response) -> Response:
        """Add our Server header to a response we originate."""
        response.headers.add("Server", self.settings.user_agent)
        return response

    def options_response(self, request: Request) -> Response:
        """200 OK to OPTIONS with Allow, Accept and Supported (RFC 3261 11.2)."""
        resp = response_for(request, 200, to_tag=self._new_tag())
        resp.headers.add("Allow", ", ".join(self.allow))
        resp.headers.add("Accept", ", ".join(self.settings.accept))
        resp.headers.add("Supported", ", ".join(sorted(self.settings.supported)))
        return self.decorate(resp)

    def cancelled_response(self, request: Request) -> Response:
        """487 Request Terminated, the answer to an INVITE the caller cancelled (9.2)."""
        return self.decorate(response_for(request, 487, to_tag=self._new_tag()))

    # -- the transaction user interface ------------------------------------------
    def request_received(self, tx: ServerTransaction, request: Request) -> None:
        """A new request (not a retransmission) arrived in a new server transaction."""
        self.stats.requests += 1
        method = request.method
        in_dialog = _in_dialog(request)
        if self.draining and method != "ACK" and not in_dialog:
            resp = response_for(request, 503, to_tag=self._new_tag())
            resp.headers.add("Retry-After", str(self.settings.retry_after))
            self.stats.rejected += 1
            tx.respond(self.decorate(resp))
            return
        problem = check_request(request, self.settings.supported, new_tag=self._new_tag)
        if problem is not None:
            self.stats.rejected += 1
            self._log.debug(
                "{method} {call_id}: answered {status} {reason}",
                method=method,
                call_id=request.headers.get("Call-ID"),
                status=problem.status,
                reason=problem.reason,
            )
            if method != "ACK":
                tx.respond(self.decorate(problem))
            return
        if self._dialog_handler is not None and in_dialog:
            self._dialog_handler(tx, request, None)
            return
        authenticator = self.authenticator
        if authenticator is None or method == "ACK" or in_dialog:
            self._dispatch(tx, request, None)
            return
        outcome = authenticator.authenticate(request, tx.origin)
        if isinstance(outcome, Deferred):
            outcome.addCallback(self._authenticated, tx, request)
            outcome.addErrback(self._dispatch_failed, tx, request)
        else:
            self._authenticated(outcome, tx, request)

    def _authenticated(self, outcome: AuthOutcome, tx: ServerTransaction, request: Request) -> None:
        """Act on the authenticator's verdict, unless the request was answered meanwhile."""
        if tx.terminated or tx.final_sent:
            return  # a CANCEL (487) or a transport error got there first
        if isinstance(outcome, Refuse):
            resp = response_for(request, outcome.status, to_tag=self._new_tag())
            for name, value in outcome.headers:
                resp.headers.add(name, value)
            if outcome.status in (401, 407):
                self.stats.challenged += 1
            else:
                self.stats.rejected += 1
            tx.respond(self.decorate(resp))
            return
        assert isinstance(outcome, Accept)
        if outcome.identity is not None:
            self.stats.authenticated += 1
        self._dispatch(tx, request, outcome.identity)

    def _dispatch_failed(self, failure: Failure, tx: ServerTransaction, request: Request) -> None:
        """A handler raised after an asynchronous authentication: log it, answer 500."""
        self._log.failure(
            "{method} {call_id}: failed after authentication",
            failure,
            method=request.method,
            call_id=request.headers.get("Call-ID"),
        )
        if not tx.terminated and not tx.final_sent:
            tx.respond(self.decorate(response_for(request, 500, to_tag=self._new_tag())))

    def _dispatch(self, tx: ServerTransaction, request: Request, identity: str | None) -> None:
        """Hand a checked (and authenticated) request to its handler, or answer it."""
        method = request.method
        handler = self._handlers.get(method)
        if handler is not None:
            handler(tx, request, identity)
        elif method == "OPTIONS":
            tx.respond(self.options_response(request))
        elif method == "ACK":
            pass  # an ACK nobody waits for is dropped (RFC 3261 17.2.1 / 13.3.2.5)
        else:
            resp = response_for(request, 405, to_tag=self._new_tag())
            resp.headers.add("Allow", ", ".join(self.allow))
            self.stats.rejected += 1
            tx.respond(self.decorate(resp))

    def parse_error(self, error: SIPParseError, data: bytes, origin: Origin) -> None:
        """Bytes that did not parse: answer with the error's status when we can."""
        self.stats.malformed += 1
        request = salvage_request(data)
        if request is None or request.method == "ACK":
            self.stats.dropped += 1
            self._log.info(
                "Dropped {size} unparseable bytes from {peer}: {reason}",
                size=len(data),
                peer=str(origin.peer),
                reason=error.reason,
            )
            return
        if self._stamp is not None:
            try:
                self._stamp(request, origin)  # received/rport, so the answer goes back (18.2.1)
            except SIPParseError:
                self.stats.dropped += 1
                return
        resp = error_response(request, error.status, error.reason, to_tag=self._new_tag())
        self._log.info(
            "Answered malformed {method} from {peer} with {status}: {reason}",
            method=request.method,
            peer=str(origin.peer),
            status=error.status,
            reason=error.reason,
        )
        try:
            self._send_stateless(self.decorate(resp), origin)
        except SIPParseError:
            self.stats.dropped += 1  # its Via is unusable: nowhere to send the answer


def _in_dialog(request: Request) -> bool:
    try:
        return request.to_tag is not None
    except SIPParseError:
        return False
