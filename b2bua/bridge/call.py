"""One bridged call: the caller's leg (A, we are its UAS) and the callee's leg (B, its UAC).

Everything that happens on one leg is mirrored on the other: provisional and
final responses, the ACK for 2xx (carrying the answer of a late offer), BYE,
CANCEL, re-INVITE and UPDATE, PRACK and the other in-dialog requests.  Each leg
keeps its own Call-ID, tags, CSeq, Via and Contact (topology hiding).

Serial failover walks the router's targets: a target that answers with a
failover status (408, 5xx by default), that sends nothing within
``answer_timeout`` or no provisional within ``ring_timeout`` is given up and the
next one tried; any other final response ends the hunt.  When the hunt ends
without an answer the caller gets the best final response (RFC 3261 16.7).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..dialog import (
    Dialog,
    DialogError,
    DialogId,
    EarlyDialogs,
    TwoXXRetransmitter,
    conflict_response,
)
from ..logs import Logger
from ..routing import CallInfo, Reject, RequestContext, Routes, Target
from ..sip import (
    URI,
    Address,
    CSeq,
    NameAddr,
    Origin,
    Request,
    Response,
    SIPParseError,
    header_key,
    parse_message,
    response_for,
)
from ..sip.digest import Challenge, authorization
from ..transaction import (
    ClientTransaction,
    FailureKind,
    InviteServerTransaction,
    ServerTransaction,
    SynthesizedResponse,
    TransactionFailure,
)
from .destinations import dialog_destination
from .network import NULL_USER
from .relay import HIDDEN, add_via, relay_response

if TYPE_CHECKING:
    from .manager import CallManager


#: 2xx awaiting their ACK (see Call.pending_acks)
_PendingAcks = dict[tuple[object, int], tuple[TwoXXRetransmitter, Dialog, int]]


class CallState(enum.Enum):
    """Where a call is in its life."""

    ROUTING = "routing"
    CALLING = "calling"
    EARLY = "early"
    CONFIRMED = "confirmed"
    ENDED = "ended"


TIMEOUT, TRANSPORT = FailureKind.TIMEOUT, FailureKind.TRANSPORT

#: The calls' logger: module level, as a class attribute Twisted's Logger would make
#: a new logger (its source the call) on every use; the messages name the call.
_log = Logger(namespace="b2bua.call")


def _failure(request: Request, kind: FailureKind, reason: str) -> SynthesizedResponse:
    """A 408 (timeout) or 503 (transport) the bridge makes up for a target that failed,
    marked as such (``.failure``) so features can tell it from a real answer."""
    return SynthesizedResponse(request, TransactionFailure(kind, reason))


def _when_done(
    d: Deferred[Any],
    callback: Callable[..., None],
    errback: Callable[..., None],
    *args: object,
) -> None:
    """``d.addCallbacks(callback, errback)`` (both also get ``args``), without the callback
    chain when ``d`` already has a result that is not a failure: a router or the resolver
    that answered at once (``succeed``) has ``callback`` called with it directly.  An
    exception from ``callback`` is logged then, as the Deferred would have done."""
    if d.called and not d.paused:
        result = d.result
        if not isinstance(result, (Failure, Deferred)):
            try:
                callback(result, *args)
            except Exception:
                _log.failure("Unhandled error in {callback}", callback=callback)
            return
    d.addCallbacks(callback, errback, callbackArgs=args, errbackArgs=args)


def _best_response(responses: tuple[Response, ...]) -> Response | None:
    """RFC 3261 16.7 step 6: a 6xx if any, else the lowest class, first come first served."""
    if not responses:
        return None
    six = [r for r in responses if r.status >= 600]
    if six:
        return six[0]
    return min(responses, key=lambda r: r.status // 100)


class Attempt:
    """One INVITE sent to one target (a client transaction and its forks)."""

    __slots__ = (
        "_answer_timer",
        "_ring_timer",
        "authenticated",
        "call",
        "dead",
        "destination",
        "early",
        "got_provisional",
        "got_response",
        "index",
        "invite",
        "manager",
        "target",
        "tx",
    )

    def __init__(self, call: Call, index: int, target: Target) -> None:
        self.call: Call | None = call
        self.manager = call.manager
        self.index = index
        self.target = target
        self.invite: Request | None = None
        self.tx: ClientTransaction | None = None
        self.destination: Address | None = None
        self.early: EarlyDialogs | None = None
        self.got_response = False
        self.got_provisional = False
        self.authenticated = False
        self.dead = False
        #: the answer and ring timers (slots of the manager's scheduler)
        self._answer_timer: int | None = None
        self._ring_timer: int | None = None

    def response_received(self, tx: ClientTransaction, response: Response) -> None:
        """Every response of this attempt goes to the call (or is cleaned up if it ended)."""
        call = self.call
        if call is not None:
            call.attempt_response(self, response)
        elif response.is_success and self.manager is not None:
            # The call let go of this attempt: it ended (the 2xx gets an ACK and a
            # BYE) or it is settled (a retransmitted 2xx gets the call's ACK again),
            # as for a 2xx the transaction no longer passes to us.
            self.manager.stray_2xx(response)

    def stop_timers(self) -> None:
        """Cancel the answer and ring timers."""
        manager = self.manager
        if manager is not None:
            scheduler = manager.scheduler
            scheduler.cancel(self, "_answer_timer")
            scheduler.cancel(self, "_ring_timer")

    def release(self) -> None:
        """The call ended or settled: stop the timers and let go of the call and messages.

        The INVITE client transaction keeps this attempt as its user for T1 after
        its 2xx (then a ghost passes 2xx retransmissions to the manager's
        ``stray_2xx``); all it needs meanwhile is the manager, to hand a late 2xx
        to ``stray_2xx`` too (see :meth:`response_received`).
        """
        self.stop_timers()
        self.call = None
        self.dead = True
        self.invite = None
        self.early = None
        self.destination = None
        self.tx = None


def _answer_timeout(attempt: Attempt) -> None:
    """The attempt's answer timer fired (a scheduler handler: a plain function)."""
    call = attempt.call
    if call is not None:
        call.answer_timeout(attempt)


def _ring_timeout(attempt: Attempt) -> None:
    """The attempt's ring timer fired."""
    call = attempt.call
    if call is not None:
        call.ring_timeout(attempt)


class _InDialogRelay:
    """The client-transaction user of a request relayed from one leg to the other."""

    __slots__ = ("call", "cancelled", "done", "incoming", "into", "outgoing", "source", "tx")

    def __init__(
        self,
        call: Call,
        source: Dialog,
        into: Dialog,
        incoming: ServerTransaction,
        outgoing: Request,
    ) -> None:
        self.call: Call | None = call
        self.source = source
        self.into = into
        self.incoming = incoming
        self.outgoing = outgoing
        self.tx: ClientTransaction | None = None
        self.cancelled = False
        self.done = False

    def response_received(self, tx: ClientTransaction, response: Response) -> None:
        """Mirror the response back on the leg the request came from."""
        call = self.call
        if call is not None:
            call.relay_in_dialog_response(self, response)

    def transaction_terminated(self, tx: ClientTransaction) -> None:
        """The outgoing transaction is over: no more responses, drop the call."""
        self.call = None


class Call:
    """The call: A leg, the B-leg attempts, the bridged B dialog, timers.

    Once settled (the caller ACKed the 2xx) a call keeps only what its dialogs
    need: the two :class:`Dialog` objects, our Contacts, the ACK sent to B (as
    bytes) and the bookkeeping of in-dialog requests; the INVITEs, transactions,
    attempts and routing state go (memory per held call, see :meth:`_settled`).
    """

    __slots__ = (
        "a_contact",
        "a_cseq",
        "a_dialog",
        "a_invite",
        "a_origin",
        "a_tag",
        "a_tx",
        "acks",
        "answered",
        "answered_by",
        "attempts",
        "b_call_id",
        "b_contact",
        "b_cseq",
        "b_dialog",
        "b_fallback",
        "b_tag",
        "cancelled",
        "dialog_ids",
        "end_reason",
        "finals",
        "hooks",
        "info",
        "manager",
        "parallel",
        "pending_acks",
        "relays",
        "ringing",
        "state",
        "targets",
    )

    def __init__(
        self,
        manager: CallManager,
        tx: InviteServerTransaction,
        invite: Request,
        origin: Origin,
        identity: str | None = None,
    ) -> None:
        self.manager: CallManager | None = manager
        self.hooks = manager.hooks
        self.state = CallState.ROUTING
        self.a_tx: InviteServerTransaction | None = tx
        #: the caller's INVITE, until the call is settled
        self.a_invite: Request | None = invite
        #: its CSeq number (the caller's ACK for our 2xx repeats it)
        self.a_cseq = invite.cseq.number
        self.a_origin = origin
        self.a_tag = secrets.token_hex(6)
        #: our Contact on each leg (text: what the messages carry)
        self.a_contact = manager.contact_for(origin.local)
        self.a_dialog: Dialog | None = None
        self.b_call_id = f"{secrets.token_hex(10)}@b2bua"
        self.b_tag = secrets.token_hex(6)
        self.b_dialog: Dialog | None = None
        #: every dialog id the manager indexed for this call (forgotten when it ends)
        self.dialog_ids: tuple[DialogId, ...] = ()
        #: where the bridged B dialog's target was reached (for next hops by name)
        self.b_fallback: Address | None = None
        self.b_contact: str | None = None
        #: ACKs we sent for 2xx responses, by (dialog id, CSeq number), as sent, to resend
        self.acks: dict[tuple[object, int], bytes] = {}
        #: requests relayed from one leg to the other and not yet answered (made on use)
        self.relays: set[_InDialogRelay] | None = None
        self.targets: tuple[Target, ...] = ()
        #: the attempts so far (tuples: the empty one, a held call's, costs nothing)
        self.attempts: tuple[Attempt, ...] = ()
        #: True once a target answered and the caller got (or gets) its 2xx
        self.answered = False
        #: the attempt that answered, until the call is settled
        self.answered_by: Attempt | None = None
        #: the CSeq number of the answered B-leg INVITE (RAck rewriting)
        self.b_cseq = 0
        #: the attempt whose provisional response was relayed last (PRACK goes there)
        self.ringing: Attempt | None = None
        self.parallel = False
        self.finals: tuple[Response, ...] = ()
        self.cancelled = False
        #: 2xx relayed to one leg whose ACK we await, by (that dialog's id, its INVITE
        #: CSeq): its retransmitter, and the other leg's dialog and INVITE CSeq, which
        #: get our ACK then (None while there is none: most of a call's life)
        self.pending_acks: _PendingAcks | None = None
        self.end_reason = ""
        self.info = CallInfo(
            invite.call_id,
            self.b_call_id,
            RequestContext(origin.peer, origin.local, identity),
            manager.clock.seconds(),
        )

    def __repr__(self) -> str:
        return f"<Call {self.info.call_id} -> {self.b_call_id} {self.state.value}>"

    # -- helpers -------------------------------------------------------------------
    @property
    def _m(self) -> CallManager:
        assert self.manager is not None
        return self.manager

    @property
    def _a(self) -> Request:
        """The caller's INVITE: only call set-up reads it, and it is kept until settled."""
        assert self.a_invite is not None
        return self.a_invite

    def _dest(self, dialog: Dialog | None) -> Address | None:
        """Where requests on ``dialog`` go: its next hop (route set, else remote target)."""
        if dialog is None:
            return None
        if dialog is self.a_dialog:
            return self._m.a_destination(self)
        return dialog_destination(dialog, self.b_fallback)

    def _send_ack(
        self, dialog: Dialog, number: int, body: bytes = b"", ctype: str | None = None
    ) -> None:
        """ACK a 2xx on ``dialog`` (remembered, so a retransmitted 2xx gets it again)."""
        destination = self._dest(dialog)
        if destination is None:
            return
        manager = self._m
        ack = dialog.create_ack(number, body=body, content_type=ctype if body else None)
        add_via(ack, manager.network.local_address(destination))
        manager.transactions.send_ack(ack, destination)
        # kept as sent (bytes: a fraction of the message's memory, and untracked)
        self.acks[(dialog.id, number)] = ack.to_bytes()

    def stray_2xx(self, dialog: Dialog, response: Response) -> None:
        """A 2xx to an INVITE of ours on ``dialog`` that no attempt of ours passed on.

        A 2xx that came again gets our ACK again (nothing is sent before the ACK
        itself was: it may wait for the caller's, which can carry the answer).  A
        2xx on the early dialog of a target we gave up (a parallel branch answering
        after the call was bridged) is ACKed and hung up on.
        """
        if self.state is CallState.ENDED:
            return
        number = response.cseq.number
        if (dialog.id, number) in self.acks:
            self._resend_ack(dialog, number)
        elif dialog is not self.a_dialog and dialog is not self.b_dialog:
            dialog.response_received(response)
            self._ack_and_bye(dialog, None)

    def _resend_ack(self, dialog: Dialog, number: int) -> None:
        data = self.acks.get((dialog.id, number))
        destination = self._dest(dialog)
        if data is not None and destination is not None:
            ack = parse_message(data)  # the rare path: a 2xx came again
            assert isinstance(ack, Request)
            self._m.transactions.send_ack(ack, destination)

    def _a_response(self, response: Response) -> Response:
        """The caller's copy of a B-leg response to the INVITE (12.1.1: Record-Route copied)."""
        a = self._a
        out = relay_response(self._m.policy, a, response, to_tag=self.a_tag, contact=self.a_contact)
        if a.to_tag is None:  # our tag was added to its To: the view, so none decodes it
            out.headers.cache["to-tag"] = self.a_tag
        if 100 < response.status < 300:
            for value in a.headers.get_lines("Record-Route"):
                out.headers.add("Record-Route", value)
        return self._m.decorate(out)

    def _respond_a(self, response: Response) -> None:
        tx = self.a_tx
        if tx is not None:
            tx.respond(response)

    # -- routing ---------------------------------------------------------------------
    def start(self) -> None:
        """Ask the routers, then call the first target."""
        manager = self._m
        if self.hooks:
            refused = self.hooks.first_reject("call_started", self.info, self._a)
            if refused is not None:
                self._reject(refused.status, refused.reason, refused.headers)
                return
        _when_done(manager.route(self._a, self.info.context), self._routed, self._routing_failed)

    def _routing_failed(self, failure: Failure) -> None:
        _log.failure("Routing {call} failed", failure, call=repr(self))
        self._reject(500, "Routing Error")

    def _routed(self, decision: object) -> None:
        if self.state is not CallState.ROUTING:
            return  # cancelled or ended while the router thought
        if isinstance(decision, Reject):
            self._reject(decision.status, decision.reason, decision.headers)
            return
        if not isinstance(decision, Routes) or not decision.targets:
            self._reject(404, None)
            return
        if self.hooks:
            refused = self.hooks.first_reject("call_routed", self.info, decision)
            if refused is not None:
                self._reject(refused.status, refused.reason, refused.headers)
                return
        self.targets = decision.targets
        self.parallel = decision.parallel and len(decision.targets) > 1
        self.state = CallState.CALLING
        for index in range(len(self.targets) if self.parallel else 1):
            self._try(index)

    def _reject(
        self, status: int, reason: str | None, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        response = response_for(self._a, status, reason, to_tag=self.a_tag)
        for name, value in headers:
            response.headers.add(name, value)
        self._respond_a(self._m.decorate(response))
        self.end(f"rejected {status}", notify=False)

    def _target_failed(self, attempt: Attempt, response: Response) -> None:
        if self.hooks:
            self.hooks.notify("target_failed", self.info, attempt.target, response)

    # -- B-leg attempts ----------------------------------------------------------------
    def _try(self, index: int) -> None:
        if self.state is CallState.ENDED:
            return
        if index >= len(self.targets) or self.cancelled:
            self._hunt_over()
            return
        attempt = Attempt(self, index, self.targets[index])
        self.attempts += (attempt,)
        self.info.target = attempt.target
        target = attempt.target
        uri = target.uri
        if target.transport is not None:
            uri = uri.with_params(transport=target.transport.lower())
        _when_done(self._m.network.resolve(uri), self._resolved, self._resolve_failed, attempt)

    def _resolve_failed(self, failure: Failure, attempt: Attempt) -> None:
        _log.failure("Resolving {uri} failed", failure, uri=str(attempt.target.uri))
        self._resolved([], attempt)

    def _resolved(self, destinations: list[Address], attempt: Attempt) -> None:
        if self.state is CallState.ENDED or attempt.dead:
            return
        if not destinations:
            _log.info("No address for {uri}", uri=str(attempt.target.uri))
            self._attempt_failed(attempt, _failure(self._a, TRANSPORT, "no address"))
            return
        manager = self._m
        destination = destinations[0]
        attempt.destination = destination
        try:
            local = manager.network.local_address(destination)
        except LookupError:
            _log.warn("No listener to reach {uri}", uri=str(attempt.target.uri))
            self._attempt_failed(attempt, _failure(self._a, TRANSPORT, "no listener"))
            return
        self.b_contact = manager.contact_for(local)
        invite, wrote_from, wrote_to = self._b_invite(attempt, local)
        sent_from: str | None = wrote_from
        sent_to: str | None = wrote_to
        if self.hooks:
            refused = self.hooks.first_reject("request_out", self.info, invite, attempt.target)
            if refused is not None:
                attempt.dead = True
                self._reject(refused.status, refused.reason, refused.headers)
                return
            sent_from = sent_to = None  # a feature may have rewritten them: read them back
        attempt.invite = invite
        attempt.early = EarlyDialogs(
            invite, local_target=self.b_contact, local_uri=sent_from, remote_uri=sent_to
        )
        manager.register_b_call_id(self.b_call_id, self)
        settings = manager.settings
        scheduler = manager.scheduler
        timeout = attempt.target.timeout or settings.answer_timeout
        scheduler.start(timeout, attempt, "_answer_timer", _answer_timeout)
        ring = (
            attempt.target.ring_timeout
            if attempt.target.ring_timeout is not None
            else settings.ring_timeout
        )
        if ring:
            scheduler.start(ring, attempt, "_ring_timer", _ring_timeout)
        attempt.tx = manager.transactions.send_request(invite, destination, attempt)

    def _b_invite(self, attempt: Attempt, local: Address) -> tuple[Request, str, str]:
        """The B-leg INVITE: the caller's request re-originated with our identity on the
        wire; with the From and To written in it, as text (its dialogs keep that text:
        they need not decode or write them again)."""
        a = self._a
        uri = attempt.target.uri
        if uri.user is None and a.request_uri.user is not None:
            uri = uri.replace(user=a.request_uri.user)
        invite = Request(
            "INVITE", uri.without_params("transport") if attempt.target.transport else uri
        )
        h = invite.headers
        add_via(invite, local)
        max_forwards = a.max_forwards
        h.add("Max-Forwards", str(69 if max_forwards is None else max_forwards - 1))
        # Identities keep their user part and display name; From's host is ours, so
        # no address of the caller's network reaches the callee.
        caller = a.from_
        from_uri = URI(
            caller.uri.scheme if caller.uri.is_sip else "sip",
            user=caller.uri.user,
            host=local.host_for_uri,
        )
        sent_from = str(NameAddr(from_uri, caller.display_name, {"tag": self.b_tag}))
        h.add("From", sent_from)
        # To: whom the caller called (its To, without tag): the address of record
        # for a registered user, the dialled number for a PBX; never a contact.
        callee = a.to.uri
        to_uri = URI(
            callee.scheme if callee.is_sip else "sip",
            user=callee.user,
            host=callee.host if callee.is_sip else local.host_for_uri,
            port=callee.port,
        )
        sent_to = str(NameAddr(to_uri, a.to.display_name))
        h.add("To", sent_to)
        h.add("Call-ID", self.b_call_id)
        # a new attempt is a new request: its own CSeq (RFC 3261 8.1.3.5 spirit)
        number = 2 * attempt.index + 1  # room for an auth retry
        h.add("CSeq", f"{number} INVITE")
        assert self.b_contact is not None
        h.add("Contact", self.b_contact)
        self._m.policy.copy(a, invite)
        changes = attempt.target.headers
        ours = HIDDEN  # topology, identity and CSeq are the server's (routing.HeaderChanges)
        for name in changes.remove:
            if header_key(name) not in ours:
                h.remove(name)
        for name, value in changes.set:
            if header_key(name) not in ours:
                h.set(name, value)
        for name, value in changes.add:
            if header_key(name) not in ours:
                h.add(name, value)
        invite.body = a.body
        # The views of the lines we wrote, equal to what decoding them gives: the
        # attempt's dialogs read them, and need not decode our own lines again (a
        # later change of a line drops its views, see Headers).
        h.cache.update(
            {"call-id": self.b_call_id, "from-tag": self.b_tag, "cseq": CSeq(number, "INVITE")}
        )
        return invite, sent_from, sent_to

    def answer_timeout(self, attempt: Attempt) -> None:
        """No response from the attempt's target in time: the next target."""
        if not attempt.got_response and not attempt.dead:
            _log.info("{uri} did not answer: next target", uri=str(attempt.target.uri))
            self._give_up(attempt, "no answer")

    def ring_timeout(self, attempt: Attempt) -> None:
        """No provisional response from the attempt's target in time: the next target."""
        if not attempt.got_provisional and not attempt.dead and not self.answered:
            _log.info("{uri} did not ring: next target", uri=str(attempt.target.uri))
            self._give_up(attempt, "no ringing")

    def _give_up(self, attempt: Attempt, why: str) -> None:
        """Abandon an attempt (CANCEL it when possible) and try the next target."""
        attempt.dead = True
        attempt.stop_timers()
        if attempt.tx is not None:
            attempt.tx.cancel(f'SIP;cause=408;text="{why}"')
        timeout = _failure(self._a, TIMEOUT, why)
        self._target_failed(attempt, timeout)
        self.finals += (timeout,)
        self._next(attempt)

    def _attempt_failed(self, attempt: Attempt, response: Response) -> None:
        attempt.dead = True
        attempt.stop_timers()
        if not self.cancelled:
            self._target_failed(attempt, response)
        if not isinstance(response, SynthesizedResponse) or response.status != 487:
            self.finals += (response,)
        if self.cancelled:
            self._hunt_over()
            return
        failover = self._m.settings.failover_statuses
        if self.parallel:
            if response.status >= 600:  # 16.7: a 6xx ends every branch
                self._cancel_attempts()
                self._hunt_over()
            else:
                self._next(attempt)
        elif response.status in failover or isinstance(response, SynthesizedResponse):
            self._try(attempt.index + 1)
        else:
            self._hunt_over()

    def _next(self, attempt: Attempt) -> None:
        """After a failed attempt: the next target (serial), or the end when all failed."""
        if not self.parallel:
            self._try(attempt.index + 1)
        elif all(a.dead for a in self.attempts):
            self._hunt_over()

    def _cancel_attempts(self, keep: Attempt | None = None) -> None:
        """CANCEL every live attempt but ``keep`` (a late 2xx is then ACKed and BYEd)."""
        for other in self.attempts:
            if other is not keep and not other.dead:
                other.dead = True
                other.stop_timers()
                if other.tx is not None:
                    other.tx.cancel()

    def _hunt_over(self) -> None:
        """No target answered: give the caller the best final response (16.7)."""
        if self.state is CallState.ENDED or self.answered:
            return
        if self.cancelled:
            self.end("cancelled", notify=False)
            return
        best = _best_response(self.finals)
        if best is None:
            status, reason = 480, "Temporarily Unavailable"
        elif best.status == 503:
            status, reason = 500, "Service Unavailable Downstream"  # 16.7: never forward 503
        else:
            status, reason = best.status, best.reason
        response = response_for(self._a, status, reason, to_tag=self.a_tag)
        if best is not None:
            self._m.policy.copy(best, response)
            if 300 <= status < 400:  # the redirect's new addresses are its message
                for value in best.headers.get_lines("Contact"):
                    response.headers.add("Contact", value)
            response.body = best.body
        if self.hooks:
            instead = self.hooks.first_reject("call_failed", self.info, response)
            if instead is not None:
                status = instead.status
                response = response_for(self._a, status, instead.reason, to_tag=self.a_tag)
                for name, value in instead.headers:
                    response.headers.add(name, value)
        self._respond_a(self._m.decorate(response))
        self.end(f"failed {status}", notify=False)

    # -- responses on the B leg --------------------------------------------------------
    def attempt_response(self, attempt: Attempt, response: Response) -> None:
        """A response to one of our B-leg INVITEs."""
        attempt.got_response = True
        status = response.status
        if status == 100:
            return
        if status < 200:
            attempt.got_provisional = True
            if attempt.dead or self.state is CallState.ENDED or self.answered:
                return
            self._b_provisional(attempt, response)
        elif status < 300:
            self._b_answered(attempt, response)
        elif not attempt.dead and self.state is not CallState.ENDED:
            if attempt.early is not None:
                for dialog in attempt.early.terminate_early():
                    self._m.forget_dialog(dialog)
            if status in (401, 407) and self._authenticate(attempt, response):
                return
            self._attempt_failed(attempt, response)

    def _authenticate(self, attempt: Attempt, response: Response) -> bool:
        """Answer a target's 401/407 with the route's credentials (RFC 3261 22.2).

        The INVITE is sent again with a higher CSeq and an Authorization or
        Proxy-Authorization for every challenge; the caller never sees the
        challenge.  One try per attempt: a second challenge is a failure.
        """
        credentials = attempt.target.credentials
        invite = attempt.invite
        if credentials is None or invite is None or attempt.authenticated:
            return False
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
        values = []
        for value in response.headers.get_lines(header):
            try:
                challenge = Challenge.parse(value)
                values.append(
                    authorization(challenge, credentials[0], credentials[1], "INVITE", invite.uri)
                )
            except (SIPParseError, ValueError):
                continue
        if not values or attempt.destination is None:
            return False
        retry = invite.copy()
        h = retry.headers
        h.pop_first_value("Via")
        add_via(retry, self._m.network.local_address(attempt.destination))
        h.set("CSeq", f"{invite.cseq.number + 1} INVITE")
        for value in values:
            h.add(answer, value)
        attempt.authenticated = True
        attempt.invite = retry
        attempt.early = EarlyDialogs(retry)
        attempt.tx = self._m.transactions.send_request(retry, attempt.destination, attempt)
        return True

    def _b_provisional(self, attempt: Attempt, response: Response) -> None:
        assert attempt.early is not None
        try:
            b_dialog = attempt.early.on_response(response)
        except (ValueError, SIPParseError):
            b_dialog = None
        if b_dialog is not None and b_dialog.id not in self._m.dialogs:
            self._m.add_dialog(b_dialog, self, "B")
        self.ringing = attempt
        if b_dialog is not None:
            self.b_dialog = b_dialog
            self.b_fallback = attempt.destination
        out = self._a_response(response)
        if self.hooks:
            self.hooks.notify("provisional", self.info, out)
        self._respond_a(out)
        if self.a_dialog is None:
            self.a_dialog = Dialog.from_uas(
                self._a, out, over_tls=True, local_target=self.a_contact
            )
            self._m.add_dialog(self.a_dialog, self, "A")
        self.state = CallState.EARLY

    def _b_answered(self, attempt: Attempt, response: Response) -> None:
        assert attempt.early is not None
        try:
            b_dialog = attempt.early.on_response(response)
        except (ValueError, SIPParseError):
            b_dialog = None
        if b_dialog is None:
            return
        if self.answered:
            if b_dialog is self.b_dialog:
                self._resend_ack(b_dialog, self.b_cseq)  # the 2xx was retransmitted
                return
            self._ack_and_bye(b_dialog, attempt.destination)  # another fork answered too
            return
        if attempt.dead or self.state is CallState.ENDED or self.cancelled:
            self._ack_and_bye(b_dialog, attempt.destination)
            return
        attempt.stop_timers()
        self.answered = True
        self.answered_by = attempt
        self.b_cseq = attempt.invite.cseq.number if attempt.invite is not None else 1
        self._cancel_attempts(keep=attempt)
        manager = self._m
        if b_dialog.id not in manager.dialogs:
            manager.add_dialog(b_dialog, self, "B")
        for other in attempt.early.early():
            if other is not b_dialog:
                manager.forget_dialog(other)
        self.b_dialog = b_dialog
        self.b_fallback = attempt.destination
        out = self._a_response(response)
        if self.hooks:
            refused = self.hooks.first_reject("answered", self.info, out)
            if refused is not None:
                self._ack_and_bye(b_dialog, attempt.destination)
                self.b_dialog = None
                self.answered = False
                self.answered_by = None
                self._reject(refused.status, refused.reason, refused.headers)
                return
        self.info.answered = True
        self._respond_a(out)
        if self.a_dialog is None:
            self.a_dialog = Dialog.from_uas(
                self._a, out, over_tls=True, local_target=self.a_contact
            )
            manager.add_dialog(self.a_dialog, self, "A")
        else:
            self.a_dialog.response_sent(out, local_target=self.a_contact)
        self.state = CallState.CONFIRMED
        # The B leg's ACK waits for the caller's: it may carry the answer (late offer).
        self._await_ack(self.a_dialog, self.a_cseq, self._respond_a, out, b_dialog, self.b_cseq)

    def _await_ack(
        self,
        dialog: Dialog,
        cseq: int,
        send: Callable[[Response], None],
        response: Response,
        other: Dialog,
        other_cseq: int,
    ) -> None:
        """We sent the 2xx ``response`` to INVITE ``cseq`` on ``dialog``: retransmit it
        until its ACK comes, then ACK the other leg's 2xx (``other``, ``other_cseq``)."""
        manager = self._m
        timers = manager.timers
        retransmitter = TwoXXRetransmitter(
            manager.clock,
            send,
            response,
            timers.t1,
            timers.t2,
            lambda: self.end("2xx never acknowledged"),
            scheduler=manager.scheduler,
        )
        if self.pending_acks is None:
            self.pending_acks = {}
        self.pending_acks[(dialog.id, cseq)] = (retransmitter, other, other_cseq)

    def _ack_and_bye(self, dialog: Dialog, destination: Address | None) -> None:
        """ACK a 2xx we do not want and hang up on it (a fork, or a 2xx after CANCEL)."""
        if self.manager is not None:
            self.manager.ack_and_bye(dialog, destination)

    # -- the caller's requests -------------------------------------------------------
    def cancel(self) -> None:
        """The caller sent CANCEL before the final response (RFC 3261 9.2)."""
        if self.state is CallState.ENDED or self.answered:
            return
        self.cancelled = True
        for attempt in self.attempts:
            if not attempt.dead and attempt.tx is not None:
                attempt.tx.cancel()
            attempt.stop_timers()
        assert self.manager is not None
        self._respond_a(self.manager.decorate(response_for(self._a, 487, to_tag=self.a_tag)))
        self.end("cancelled", notify=False)

    def ack_received(self, leg: str, dialog: Dialog, ack: Request) -> None:
        """An ACK for a 2xx we relayed: stop retransmitting, ACK the other leg."""
        number = ack.cseq.number
        pending_acks = self.pending_acks
        if pending_acks is None:
            return
        pending = pending_acks.pop((dialog.id, number), None)
        if not pending_acks:
            self.pending_acks = None
        if pending is not None:
            retransmitter, other, other_number = pending
            retransmitter.ack_received()
            self._send_ack(other, other_number, ack.body, ack.headers.get("Content-Type"))
            if (
                dialog is self.a_dialog
                and number == self.a_cseq
                and self.state is not CallState.ENDED
            ):
                self._settled()

    def _settled(self) -> None:
        """The caller ACKed the call's 2xx and B got our ACK: let go of the set-up state.

        Nothing reads the caller's INVITE, the server and client transactions, the
        attempts or the routing decision any more: in-dialog requests, BYE and
        re-INVITE work from the dialogs, a retransmitted B 2xx reaches
        :meth:`stray_2xx` through the manager (the released attempt sends it there,
        as its transaction's ghost does later), and a CANCEL no longer reaches a call
        once its INVITE has a final response.  This is most of a held call's memory.
        """
        manager = self._m
        if self.a_tx is not None:
            manager.invite_settled(self.a_tx)
            self.a_tx = None
        self.a_invite = None
        for attempt in self.attempts:
            attempt.release()
        self.attempts = self.targets = self.finals = ()
        self.answered_by = self.ringing = None

    def request_received(
        self, leg: str, dialog: Dialog, tx: ServerTransaction, request: Request
    ) -> None:
        """An in-dialog request from one leg: answer it here or relay it to the other."""
        manager = self._m
        method = request.method
        if not dialog.check_remote_cseq(request):
            tx.respond(manager.decorate(response_for(request, 500, "CSeq Out of Order")))
            return
        if method == "BYE":
            dialog.receive_request(request)
            tx.respond(manager.decorate(response_for(request, 200)))
            self.end(f"BYE from {leg}", skip=dialog, status=487)
            return
        other = self.b_dialog if leg == "A" else self.a_dialog
        destination = self._dest(other)
        conflict = conflict_response(dialog, request) if method in ("INVITE", "UPDATE") else None
        if conflict is not None:
            tx.respond(manager.decorate(conflict))
            return
        if other is None or destination is None or other.is_terminated:
            tx.respond(manager.decorate(response_for(request, 481)))
            return
        headers = manager.policy.copied(request)
        if method == "PRACK":
            headers = [(n, v) for n, v in headers]
            rack = request.headers.get("RAck")
            if rack is not None:
                headers.append(("RAck", self._rewrite_rack(rack, leg)))
        try:
            dialog.receive_request(request)
            out = other.create_request(
                method,
                body=request.body,
                content_type=request.headers.get("Content-Type") if request.body else None,
                headers=[(n, v) for n, v in headers if n.lower() not in ("content-type", "c")],
                contact=self.b_contact if other is self.b_dialog else self.a_contact,
            )
        except DialogError as error:
            tx.respond(
                manager.decorate(response_for(request, 491 if "INVITE" in str(error) else 500))
            )
            return
        if self.hooks:
            refused = self.hooks.first_reject("in_dialog_request", self.info, out, leg)
            if refused is not None:
                if method == "INVITE":  # the other leg never saw it: clear its bookkeeping
                    other.response_received(response_for(out, 500))
                answer = response_for(request, refused.status, refused.reason)
                for name, value in refused.headers:
                    answer.headers.add(name, value)
                tx.respond(manager.decorate(answer))
                return
        add_via(out, manager.network.local_address(destination))
        relay = _InDialogRelay(self, dialog, other, tx, out)
        if self.relays is None:
            self.relays = set()
        self.relays.add(relay)
        if method == "INVITE":
            manager.relays[tx] = relay
        relay.tx = manager.transactions.send_request(out, destination, relay)

    def _rewrite_rack(self, rack: str, leg: str) -> str:
        """RAck carries the INVITE's CSeq: translate the caller's to the B leg's numbering."""
        parts = rack.split()
        if self.answered:
            number: int | None = self.b_cseq
        else:
            invite = self.ringing.invite if self.ringing is not None else None
            number = invite.cseq.number if invite is not None else None
        if len(parts) == 3 and leg == "A" and number is not None:
            parts[1] = str(number)
        return " ".join(parts)

    def relay_in_dialog_response(self, relay: _InDialogRelay, response: Response) -> None:
        """A response from the other leg to a relayed in-dialog request."""
        manager = self.manager
        status = response.status
        if status == 100 or manager is None:
            return
        number = relay.outgoing.cseq.number
        is_invite = relay.outgoing.method == "INVITE"
        if relay.done or relay.cancelled or self.state is CallState.ENDED:
            # already answered on the source leg (a retransmitted or late final):
            # the dialog still learns the outcome, and a 2xx still needs its ACK
            if status >= 200:
                relay.into.response_received(response)
            if is_invite and response.is_success:
                if (relay.into.id, number) in self.acks:
                    self._resend_ack(relay.into, number)
                else:
                    self._send_ack(relay.into, number)
            return
        incoming = relay.incoming
        relay.into.response_received(response)
        source = relay.source
        contact = self.a_contact if source is self.a_dialog else self.b_contact
        out = manager.decorate(
            relay_response(manager.policy, incoming.request, response, contact=contact)
        )
        if status >= 200:
            relay.done = True
            if self.relays is not None:
                self.relays.discard(relay)
            manager.relays.pop(incoming, None)
        source.response_sent(out, local_target=contact)
        incoming.respond(out)
        if is_invite and response.is_success:
            cseq = incoming.request.cseq.number
            self._await_ack(source, cseq, incoming.respond, out, relay.into, number)
        if status in (408, 481):
            self.end(f"{status} on an in-dialog request")

    def cancel_relay(self, relay: _InDialogRelay) -> None:
        """The sender cancelled a relayed request: 487 to it, CANCEL to the other leg."""
        if relay.done or relay.cancelled:
            return
        relay.cancelled = True
        if self.relays is not None:
            self.relays.discard(relay)
        manager = self.manager
        if manager is not None:
            manager.relays.pop(relay.incoming, None)
        incoming = relay.incoming
        if not incoming.final_sent:
            out = response_for(incoming.request, 487)
            if manager is not None:
                out = manager.decorate(out)
            relay.source.response_sent(out)
            incoming.respond(out)
        if relay.tx is not None:
            relay.tx.cancel()

    # -- ending ------------------------------------------------------------------------
    def end(
        self, reason: str, *, notify: bool = True, skip: Dialog | None = None, status: int = 0
    ) -> None:
        """End the call: BYE the confirmed legs (but ``skip``), stop timers, forget state.

        An unanswered caller INVITE gets ``status`` (487 after the caller's BYE, 408
        at the duration limit, 500 otherwise); pending relayed requests get 487;
        2xx responses still waiting for their ACK get one before the BYE.
        """
        if self.state is CallState.ENDED:
            return
        manager = self.manager
        previous = self.state
        self.state = CallState.ENDED
        self.end_reason = reason
        if manager is None:
            return
        if notify:
            if previous in (CallState.ROUTING, CallState.CALLING, CallState.EARLY):
                for attempt in self.attempts:
                    if not attempt.dead and attempt.tx is not None:
                        attempt.tx.cancel()
                    attempt.dead = True
                if self.a_tx is not None and not self.answered:
                    if not status:
                        status = 408 if reason == "maximum call duration" else 500
                    self._respond_a(
                        manager.decorate(response_for(self._a, status, to_tag=self.a_tag))
                    )
            for relay in list(self.relays or ()):
                self.cancel_relay(relay)
            pending = self.pending_acks
            self.pending_acks = None
            for retransmitter, other, number in (pending or {}).values():
                retransmitter.stop()
                self._send_ack(other, number)
            for dialog in (self.a_dialog, self.b_dialog):
                if dialog is None or dialog is skip or not dialog.is_confirmed:
                    continue
                destination = self._dest(dialog)
                if destination is None:
                    continue
                try:
                    bye = dialog.create_request("BYE")
                except DialogError:
                    continue
                add_via(bye, manager.network.local_address(destination))
                manager.transactions.send_request(bye, destination, NULL_USER)
        _log.debug("Call {call!r} ended: {reason}", call=self, reason=reason)  # repr when shown
        self._cleanup()

    def _cleanup(self) -> None:
        manager = self.manager
        for retransmitter, _other, _number in (self.pending_acks or {}).values():
            retransmitter.stop()
        self.pending_acks = None
        if manager is not None:
            for relay in self.relays or ():
                manager.relays.pop(relay.incoming, None)
        self.relays = None
        for attempt in self.attempts:
            attempt.release()
        if manager is not None:
            manager.call_ended(self)
        if self.hooks:
            self.hooks.notify("call_ended", self.info, self.end_reason)
        self.a_tx = None
        self.manager = None


__all__ = ["Attempt", "Call", "CallState", "Deferred"]
