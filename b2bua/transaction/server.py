"""Server transactions: INVITE (RFC 3261 17.2.1, figure 7 as amended by RFC 6026) and
non-INVITE (17.2.2, figure 8).

Created by the layer when a request matches no transaction; the TU answers with
:meth:`ServerTransaction.respond`.  Responses go to the transport with the
request's :class:`Origin`, from which it routes them (RFC 3261 18.2.2).

T1 into a state that only absorbs or re-answers retransmissions (INVITE Accepted
and Confirmed, non-INVITE Completed: over unreliable transports, and for Timer
L's 64*T1 over any) the transaction is replaced in the layer by a ghost
(:mod:`.ghosts`) and detached: the TU hears nothing more from it (an ACK for the
2xx goes to ``ack_received`` as before; a transport error is no longer reported).
A TU holding an INVITE server transaction in Accepted may still ``respond`` with
its own 2xx retransmissions until Timer L; they go out through the transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sip import Origin, Request, Response, response_for
from .base import NULL_USER, Transaction, TransactionState
from .failures import FailureKind, TransactionFailure, TransactionStateError
from .ghosts import IST_ACCEPTED, IST_CONFIRMED, NIST_COMPLETED

if TYPE_CHECKING:
    from .interfaces import TransactionUser
    from .layer import TransactionLayer
    from .matching import MergeKey, ServerKey
    from .timers import TransportTimers

__all__ = ["InviteServerTransaction", "NonInviteServerTransaction", "ServerTransaction"]

TRYING = TransactionState.TRYING
PROCEEDING = TransactionState.PROCEEDING
COMPLETED = TransactionState.COMPLETED
CONFIRMED = TransactionState.CONFIRMED
ACCEPTED = TransactionState.ACCEPTED
TERMINATED = TransactionState.TERMINATED

_TIMEOUT = FailureKind.TIMEOUT
_TRANSPORT = FailureKind.TRANSPORT


def _check_status(status: int) -> None:
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is not a SIP response code (100-699)")


class ServerTransaction(Transaction):
    """A server transaction: receives one request (and its retransmissions), sends responses.

    Public, read-only: ``request``, ``method``, ``branch`` (``""`` for an RFC 2543
    request without one), ``origin`` (where the request last came from),
    ``state`` and ``last_response`` (the last response sent, or None).
    """

    __slots__ = ("_legacy", "_merge_key", "_tu", "last_response", "origin")

    origin: Origin
    last_response: Response | None

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        branch: str,
        key: ServerKey,
        timers: TransportTimers,
        origin: Origin,
        tu: TransactionUser,
        legacy: bool,
        merge_key: MergeKey | None,
    ) -> None:
        super().__init__(layer, request, branch, key, timers)
        self.origin = origin
        self.last_response = None
        self._tu = tu
        self._legacy = legacy
        self._merge_key = merge_key

    def respond(self, response: Response) -> None:
        """Send ``response`` (built by the TU, e.g. with ``response_for``) in this transaction.

        Does nothing if the transaction has already terminated (a timeout or a
        transport error can race with the TU; ``tx.terminated`` tells).  Raises
        :class:`TransactionStateError` if the state forbids this response (a second
        final response, a provisional after the final) and ValueError for a status
        outside 100-699.
        """
        raise NotImplementedError

    @property
    def final_sent(self) -> bool:
        """True once a final (2xx-6xx) response has been sent."""
        last = self.last_response
        return last is not None and last.status >= 200

    @property
    def to_tag(self) -> str | None:
        """The To tag of the last response sent (the UAS's tag), or None."""
        last = self.last_response
        return None if last is None else last.to_tag

    # -- internals used by the layer --------------------------------------------
    def _matches_legacy(self, request: Request) -> bool:
        """The To-tag part of RFC 3261 17.2.3's RFC 2543 rule (the rest is in the key)."""
        if request.method == "ACK":
            return request.to_tag == self.to_tag
        return request.to_tag == self.request.to_tag

    def _retransmission(self, request: Request, origin: Origin) -> None:
        raise NotImplementedError

    def _ack_received(self, request: Request, origin: Origin) -> None:
        """An ACK matched: only the INVITE server transaction cares."""

    def _transport_error(self, reason: str) -> None:
        raise NotImplementedError

    def _send(self, response: Response) -> None:
        self._layer._transport.send_response(response, self.origin)

    def _detach(self, deadline: float) -> None:
        if self._timer_r is not None or self._timer_t is not None:
            self._cancel_timers()
        self._deadline = deadline
        self._tu = NULL_USER

    def _fail(self, kind: FailureKind, reason: str, *, terminate: bool = True) -> None:
        tu = self._tu
        if terminate:
            self._terminate()
        tu.server_transaction_failed(self, TransactionFailure(kind, reason))

    def _shed(self) -> None:
        super()._shed()
        if self.last_response is not None:
            self.last_response.compact()

    def _unregister(self) -> None:
        self._tu = NULL_USER
        self._layer._forget_server(self)


class InviteServerTransaction(ServerTransaction):
    """The INVITE server transaction (RFC 3261 figure 7 with RFC 6026's Accepted state).

    Proceeding: 100 Trying sent (at once or after ``trying_delay``), INVITE
    retransmissions answered with the last provisional.  A 2xx from the TU moves
    to Accepted (RFC 6026): INVITE retransmissions absorbed, matching ACKs and
    further 2xx (the TU's own retransmissions) passed through, until Timer L.  A
    300-699 moves to Completed: retransmitted on Timer G over UDP until the ACK
    (-> Confirmed, absorbs ACKs until Timer I) or Timer H (failure reported).
    Accepted and Confirmed become ghosts T1 after they begin (:mod:`.ghosts`).
    """

    __slots__ = ()
    initial_state = PROCEEDING

    def respond(self, response: Response) -> None:
        """Send a response (see :meth:`ServerTransaction.respond`).

        In Accepted, further 2xx (the TU's retransmissions, RFC 6026) are sent too,
        also once the transaction is detached (a ghost stands for it in the layer),
        until Timer L.
        """
        status = response.status
        _check_status(status)
        state = self.state
        if state is PROCEEDING:
            if self._timer_r is not None:
                self._cancel_retransmit()  # the TU answered before 100 Trying was due
            self.last_response = response
            if status >= 300:
                self._settle(COMPLETED)
                timers = self._timers
                if timers.g is not None:
                    self._start_retransmit(timers.g, InviteServerTransaction._timer_g_fired)
                else:
                    self._linger()
                self._start_timeout(timers.h, InviteServerTransaction._timer_h_fired)
            elif status >= 200:
                self._settle(ACCEPTED)
                self._linger_for(self._timers.l, InviteServerTransaction._timer_l_fired)
            self._send(response)
            return
        if state is ACCEPTED and 200 <= status < 300:
            self.last_response = response
            self._send(response)
            return
        if state is TERMINATED:
            return
        raise TransactionStateError(
            f"cannot send {status} in the {state.value} state of an INVITE server transaction"
        )

    def _start(self) -> None:
        """Send 100 Trying now, or arm its timer (called before the TU sees the INVITE)."""
        delay = self._timers.trying_delay
        if delay:
            self._start_retransmit(delay, InviteServerTransaction._trying_fired)
        else:
            self._send_trying()

    def _send_trying(self) -> None:
        trying = response_for(self.request, 100)
        timestamp = self.request.headers.get("Timestamp")
        if timestamp is not None:
            trying.headers.add("Timestamp", timestamp)  # RFC 3261 8.2.6.1
        self.last_response = trying
        self._send(trying)

    def _trying_fired(self) -> None:
        if self._state is PROCEEDING and self.last_response is None:
            self._send_trying()

    def _timer_g_fired(self) -> None:
        if self._state is COMPLETED and self.last_response is not None:
            self._start_retransmit(
                min(self._interval * 2, self._timers.t2), InviteServerTransaction._timer_g_fired
            )
            self._send(self.last_response)

    def _timer_h_fired(self) -> None:
        if self._state is COMPLETED:
            self._fail(_TIMEOUT, "Timer H fired: no ACK for the final response")

    def _timer_i_fired(self) -> None:
        if self._state is CONFIRMED:
            self._terminate()

    def _timer_l_fired(self) -> None:
        if self._state is ACCEPTED:
            self._terminate()

    def _become_ghost(self) -> None:
        state = self._state
        if state is ACCEPTED:
            self._layer._ghosts.server(self, IST_ACCEPTED, self._timers.l)
        elif state is CONFIRMED:
            self._layer._ghosts.server(self, IST_CONFIRMED, self._timers.i)
        else:  # Completed over a reliable transport: waits for the ACK, sheds its views
            self._shed()

    def _retransmission(self, request: Request, origin: Origin) -> None:
        self.origin = origin
        state = self._state
        last = self.last_response
        if state is PROCEEDING:
            if last is None:
                self._cancel_retransmit()
                self._send_trying()
            else:
                self._send(last)
        elif state is COMPLETED and last is not None:
            self._send(last)
            if self._timer_r is None:  # no Timer G (TCP) and the views already shed
                last.compact()
        # Confirmed and Accepted absorb retransmissions (as their ghosts do).

    def _ack_received(self, request: Request, origin: Origin) -> None:
        state = self._state
        if state is COMPLETED:
            self._state = CONFIRMED
            self._cancel_timers()
            delay = self._timers.i
            if delay:
                self._linger_for(delay, InviteServerTransaction._timer_i_fired)
            else:
                self._terminate()
        elif state is ACCEPTED:
            self._tu.ack_received(request, origin)
        # Confirmed absorbs ACK retransmissions; an ACK before any final is ignored.

    def _transport_error(self, reason: str) -> None:
        state = self._state
        if state is PROCEEDING or state is COMPLETED:
            self._fail(_TRANSPORT, reason)
        elif state is ACCEPTED:
            # RFC 6026: the TU is told, the transaction stays to absorb retransmissions.
            self._fail(_TRANSPORT, reason, terminate=False)


class NonInviteServerTransaction(ServerTransaction):
    """The non-INVITE server transaction (RFC 3261 figure 8).

    Trying absorbs request retransmissions; after a provisional (Proceeding) or a
    final (Completed) response they are answered with the last response sent.
    Completed lasts Timer J (64*T1 over UDP, a ghost after T1; 0 over TCP).
    """

    __slots__ = ()
    initial_state = TRYING

    def respond(self, response: Response) -> None:
        """Send a response (see :meth:`ServerTransaction.respond`)."""
        status = response.status
        _check_status(status)
        state = self.state
        if state is TRYING or state is PROCEEDING:
            self.last_response = response
            if status < 200:
                self._state = PROCEEDING
                self._send(response)
                return
            self._settle(COMPLETED)
            delay = self._timers.j
            if delay:
                self._linger_for(delay, NonInviteServerTransaction._timer_j_fired)
            self._send(response)
            if not delay:
                self._terminate()
            return
        if state is TERMINATED:
            return
        raise TransactionStateError(
            f"cannot send {status} in the {state.value} state of a non-INVITE server transaction"
        )

    def _timer_j_fired(self) -> None:
        if self._state is COMPLETED:
            self._terminate()

    def _become_ghost(self) -> None:
        last = self.last_response
        if self._state is COMPLETED and last is not None:
            # The bytes as sent (after the transport had its way with the message).
            self._layer._ghosts.server(self, NIST_COMPLETED, self._timers.j, last.to_bytes())

    def _retransmission(self, request: Request, origin: Origin) -> None:
        self.origin = origin
        last = self.last_response
        state = self._state
        if last is not None and (state is PROCEEDING or state is COMPLETED):
            self._send(last)
        # Trying absorbs retransmissions (RFC 3261 17.2.2).

    def _transport_error(self, reason: str) -> None:
        state = self._state
        if state is PROCEEDING or state is COMPLETED:
            self._fail(_TRANSPORT, reason)
