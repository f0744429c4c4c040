"""Client transactions: INVITE (RFC 3261 17.1.1, figure 5 as amended by RFC 6026) and
non-INVITE (17.1.2, figure 6), plus the ACK (17.1.1.3) and CANCEL (9.1) they build.

Transactions are created by ``TransactionLayer.send_request``; the TU never
constructs them.  Every handler updates state and timers first, sends second and
calls the TU last, so the TU may re-enter the layer from its callback.

T1 after the final response, over unreliable transports (and for Timer M's 64*T1
over any), the transaction is replaced in the layer by a ghost (:mod:`.ghosts`)
and detached: its user is then told ``transaction_terminated`` (if it defines
it) and hears nothing more from it.  From then on every 2xx to the INVITE
(retransmissions, other forks) goes to the layer TU's ``stray_response_received``,
which may resend its ACK for a 2xx of a dialog it knows, or ACK and BYE it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sip import Address, Headers, Request, Response
from .base import NULL_USER, Transaction, TransactionState
from .failures import FailureKind, SynthesizedResponse, TransactionFailure
from .ghosts import ICT_ACCEPTED, ICT_COMPLETED, NICT_COMPLETED
from .matching import client_key

if TYPE_CHECKING:
    from .interfaces import ClientTransactionUser
    from .layer import TransactionLayer
    from .matching import ClientKey
    from .timers import TransportTimers

__all__ = [
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "build_ack",
    "build_cancel",
]

CALLING = TransactionState.CALLING
TRYING = TransactionState.TRYING
PROCEEDING = TransactionState.PROCEEDING
COMPLETED = TransactionState.COMPLETED
ACCEPTED = TransactionState.ACCEPTED

_TIMEOUT = FailureKind.TIMEOUT
_TRANSPORT = FailureKind.TRANSPORT


def _first_via(request: Request) -> str:
    vias = request.headers.get_all("Via")
    if not vias:
        raise ValueError("the request has no Via")
    return vias[0]


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to ``invite`` (RFC 3261 17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number as the INVITE, its top Via
    only, its Route headers, and the To header of the response (with its tag).
    """
    headers = Headers()
    src = invite.headers
    headers.add("Via", _first_via(invite))
    for route in src.get_lines("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", src.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", src.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, headers)


def build_cancel(invite: Request, reason: str | None = None) -> Request:
    """The CANCEL for ``invite`` (RFC 3261 9.1), optionally with a Reason header (RFC 3326).

    Same Request-URI, Call-ID, From, To and CSeq number as the INVITE, its top
    Via only (so the branch matches the INVITE's) and its Route headers.
    """
    headers = Headers()
    src = invite.headers
    headers.add("Via", _first_via(invite))
    for route in src.get_lines("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", src.get("From") or "")
    headers.add("To", src.get("To") or "")
    headers.add("Call-ID", src.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    if reason is not None:
        headers.add("Reason", reason)
    return Request("CANCEL", invite.uri, headers)


class ClientTransaction(Transaction):
    """A client transaction: sends one request to ``destination`` and passes responses up.

    Public, read-only: ``request``, ``method``, ``branch``, ``destination``,
    ``state`` (a :class:`TransactionState`), ``failure`` (a
    :class:`TransactionFailure` once it timed out or the transport failed, else None).
    """

    __slots__ = ("_user", "destination", "failure")

    destination: Address
    failure: TransactionFailure | None

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        branch: str,
        key: ClientKey,
        destination: Address,
        user: ClientTransactionUser,
        timers: TransportTimers,
    ) -> None:
        super().__init__(layer, request, branch, key, timers)
        self.destination = destination
        self.failure = None
        self._user = user

    def cancel(self, reason: str | None = None) -> bool:
        """Cancel the request (RFC 3261 9.1).  Only INVITEs can be: this returns False."""
        return False

    # -- internals used by the layer --------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _receive(self, response: Response) -> None:
        raise NotImplementedError

    def _transport_error(self, reason: str) -> None:
        raise NotImplementedError

    def _send(self) -> None:
        self._layer._transport.send_request(self.request, self.destination)

    def _fail(self, kind: FailureKind, reason: str) -> None:
        """Terminate and hand the TU a synthesized 408 (timeout) or 503 (transport error)."""
        failure = self.failure = TransactionFailure(kind, reason)
        self._finish(SynthesizedResponse(self.request, failure))

    def _detach(self, deadline: float) -> None:
        if self._timer_r is not None or self._timer_t is not None:
            self._cancel_timers()
        self._deadline = deadline
        self._user = NULL_USER

    def _ghost_made(self, user: ClientTransactionUser) -> None:
        """The layer replaced this transaction by a ghost: tell its former ``user`` that
        it will pass nothing more up (the ghost sends further 2xx to the layer TU)."""
        ended = getattr(user, "transaction_terminated", None)
        if ended is not None:
            ended(self)

    def _release_user(self) -> None:
        """In Completed, once the final response was passed up, forget a user that cannot
        hear from this transaction again (one without ``transaction_terminated``), so it
        (the bridge's Attempt, and the call behind it) need not outlive the call.
        """
        if self._state is COMPLETED and getattr(self._user, "transaction_terminated", None) is None:
            self._user = NULL_USER

    def _finish(self, response: Response | None = None) -> None:
        """Terminate, then pass ``response`` up (if any) and tell the TU the transaction ended."""
        user = self._user
        self._terminate()
        if response is not None:
            user.response_received(self, response)
        ended = getattr(user, "transaction_terminated", None)
        if ended is not None:
            ended(self)

    def _unregister(self) -> None:
        self._user = NULL_USER
        self._layer._forget_client(self)


class InviteClientTransaction(ClientTransaction):
    """The INVITE client transaction (RFC 3261 figure 5 with RFC 6026's Accepted state).

    Calling: INVITE retransmitted on Timer A (doubling, no cap) over UDP; Timer B
    (64*T1) times out with a 408.  A 1xx moves to Proceeding (no more
    retransmissions); a 300-699 to Completed, where the transaction sends the ACK,
    re-sends it for every retransmitted final response and ends on Timer D; a 2xx
    to Accepted, where further 2xx go to the user (which ACKs them) until Timer M.
    A 2xx reaching Completed goes to the layer TU's ``stray_response_received``.
    T1 into Accepted or Completed the transaction becomes a ghost (:mod:`.ghosts`):
    from then on every 2xx goes to ``stray_response_received``.
    """

    __slots__ = ("_ack", "_cancel_reason", "_cancel_requested")
    initial_state = CALLING

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        branch: str,
        key: ClientKey,
        destination: Address,
        user: ClientTransactionUser,
        timers: TransportTimers,
    ) -> None:
        super().__init__(layer, request, branch, key, destination, user, timers)
        self._ack: Request | None = None
        self._cancel_requested = False
        self._cancel_reason: str | None = None

    def cancel(self, reason: str | None = None) -> bool:
        """Send a CANCEL for this INVITE in its own non-INVITE client transaction (RFC 3261 9.1).

        Before any provisional response the CANCEL is held and sent when one
        arrives (a final response first means it is never sent), and the INVITE
        is no longer retransmitted.  ``reason`` is an
        optional Reason header value (RFC 3326).  If no final response follows
        within 64*T1 of the CANCEL, the transaction ends with a synthesized 408.
        Returns True if a CANCEL was sent or is pending, False when it is too late
        (final response received).  Calling it again has no further effect.
        """
        state = self.state
        if state is CALLING:
            if not self._cancel_requested:
                self._cancel_requested = True
                self._cancel_reason = reason
                # The TU has given up: stop retransmitting the INVITE (a target that
                # never got it never rings); Timer B still collects a late answer,
                # which gets the held CANCEL (1xx) or an ACK and BYE from the TU (2xx).
                self._cancel_retransmit()
            return True
        if state is PROCEEDING:
            if not self._cancel_requested:
                self._cancel_requested = True
                self._cancel_reason = reason
                self._send_cancel()
            return True
        return False

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called while the INVITE could still be cancelled."""
        return self._cancel_requested

    def _send_cancel(self) -> None:
        cancel = build_cancel(self.request, self._cancel_reason)
        self._cancel_reason = None
        # RFC 3261 9.1: give up on the INVITE 64*T1 after the CANCEL if no final arrives.
        self._start_timeout(self._timers.b, InviteClientTransaction._cancel_timeout_fired)
        layer = self._layer
        if client_key(self.branch, "CANCEL") not in layer._clients:  # unless the TU sent one itself
            layer._start_client(cancel, self.branch, self.destination, NULL_USER)

    def _start(self) -> None:
        timers = self._timers
        if timers.a is not None:
            self._start_retransmit(timers.a, InviteClientTransaction._timer_a_fired)
        self._start_timeout(timers.b, InviteClientTransaction._timer_b_fired)
        self._send()

    def _timer_a_fired(self) -> None:
        if self._state is CALLING:
            self._start_retransmit(self._interval * 2, InviteClientTransaction._timer_a_fired)
            self._send()

    def _timer_b_fired(self) -> None:
        if self._state is CALLING:
            self._fail(_TIMEOUT, "Timer B fired: no response to the INVITE")

    def _cancel_timeout_fired(self) -> None:
        if self._state is PROCEEDING:
            self._fail(_TIMEOUT, "no final response within 64*T1 of the CANCEL")

    def _timer_d_fired(self) -> None:
        if self._state is COMPLETED:
            self._finish()

    def _timer_m_fired(self) -> None:
        if self._state is ACCEPTED:
            self._finish()

    def _become_ghost(self) -> None:
        state = self._state
        user = self._user
        if state is ACCEPTED:
            self._layer._ghosts.client(self, ICT_ACCEPTED, self._timers.m)
        elif state is COMPLETED and self._ack is not None:
            # The ACK's bytes as sent (after the transport had its way with the message).
            self._layer._ghosts.client(
                self, ICT_COMPLETED, self._timers.d, self._ack.to_bytes(), self.destination
            )
        else:
            return
        self._ghost_made(user)

    def _receive(self, response: Response) -> None:
        status = response.status
        state = self._state
        if status < 200:
            if state is CALLING:
                self._state = PROCEEDING
                self._cancel_timers()
                if self._cancel_requested:
                    self._send_cancel()
            elif state is not PROCEEDING:
                return
            self._user.response_received(self, response)
        elif status < 300:
            if state is CALLING or state is PROCEEDING:
                self._settle(ACCEPTED)
                self._cancel_timers()
                self._linger_for(self._timers.m, InviteClientTransaction._timer_m_fired)
            elif state is COMPLETED:
                # A 2xx after a non-2xx final (a misbehaving fork): the TU core may
                # still ACK and BYE it, as any 2xx without a transaction.
                self._layer._tu.stray_response_received(response)
                return
            elif state is not ACCEPTED:
                return
            self._user.response_received(self, response)
        elif state is CALLING or state is PROCEEDING:
            self._settle(COMPLETED)
            self._cancel_timers()
            ack = self._ack = build_ack(self.request, response)
            delay = self._timers.d
            if delay:
                self._linger_for(delay, InviteClientTransaction._timer_d_fired)
            self._layer._transport.send_request(ack, self.destination)
            if delay:
                self._user.response_received(self, response)
                self._release_user()
            else:
                self._finish(response)  # reliable transport: Timer D is zero
        elif state is COMPLETED and self._ack is not None:
            # A retransmitted final response: the ACK was lost, send it again.
            self._layer._transport.send_request(self._ack, self.destination)

    def _shed(self) -> None:
        super()._shed()
        if self._ack is not None:
            self._ack.compact()

    def _transport_error(self, reason: str) -> None:
        state = self._state
        if state is CALLING or state is PROCEEDING:
            self._fail(_TRANSPORT, reason)
        elif state is COMPLETED:
            # The ACK could not be sent; the TU already has its final response.
            self.failure = TransactionFailure(_TRANSPORT, reason)
            self._finish()


class NonInviteClientTransaction(ClientTransaction):
    """The non-INVITE client transaction (RFC 3261 figure 6).

    Trying: request retransmitted on Timer E over UDP, doubling up to T2; a 1xx
    moves to Proceeding, where E stays at T2.  Timer F (64*T1) times out with a
    408.  A final response moves to Completed, which absorbs retransmitted
    responses until Timer K (T4 over UDP, a ghost after T1; 0 over TCP).
    """

    __slots__ = ()
    initial_state = TRYING

    def _start(self) -> None:
        timers = self._timers
        if timers.e is not None:
            self._start_retransmit(timers.e, NonInviteClientTransaction._timer_e_fired)
        self._start_timeout(timers.f, NonInviteClientTransaction._timer_f_fired)
        self._send()

    def _timer_e_fired(self) -> None:
        state = self._state
        if state is TRYING:
            interval = min(self._interval * 2, self._timers.t2)
        elif state is PROCEEDING:
            interval = self._timers.t2
        else:
            return
        self._start_retransmit(interval, NonInviteClientTransaction._timer_e_fired)
        self._send()

    def _timer_f_fired(self) -> None:
        state = self._state
        if state is TRYING or state is PROCEEDING:
            self._fail(_TIMEOUT, f"Timer F fired: no final response to the {self.method}")

    def _timer_k_fired(self) -> None:
        if self._state is COMPLETED:
            self._finish()

    def _become_ghost(self) -> None:
        if self._state is COMPLETED:
            user = self._user
            self._layer._ghosts.client(self, NICT_COMPLETED, self._timers.k)
            self._ghost_made(user)

    def _receive(self, response: Response) -> None:
        state = self._state
        if state is not TRYING and state is not PROCEEDING:
            return  # Completed: retransmitted responses are absorbed
        if response.status < 200:
            self._state = PROCEEDING
            self._user.response_received(self, response)
            return
        self._settle(COMPLETED)
        self._cancel_timers()
        delay = self._timers.k
        if delay:
            self._linger_for(delay, NonInviteClientTransaction._timer_k_fired)
            self._user.response_received(self, response)
            self._release_user()
        else:
            self._finish(response)  # reliable transport: Timer K is zero

    def _transport_error(self, reason: str) -> None:
        state = self._state
        if state is TRYING or state is PROCEEDING:
            self._fail(_TRANSPORT, reason)
