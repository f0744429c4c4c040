"""What the four transaction state machines share: states, timers, termination."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

from ..sip import Origin, Request, Response

if TYPE_CHECKING:
    from .client import ClientTransaction
    from .failures import TransactionFailure
    from .layer import TransactionLayer
    from .matching import Key
    from .scheduler import Entry, Handler
    from .server import ServerTransaction
    from .timers import TransportTimers

__all__ = ["NULL_USER", "NullUser", "Transaction", "TransactionState"]


class TransactionState(enum.Enum):
    """The states of RFC 3261 figures 5 to 8, with RFC 6026's Accepted."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


TERMINATED = TransactionState.TERMINATED
CALLING = TransactionState.CALLING
TRYING = TransactionState.TRYING
PROCEEDING = TransactionState.PROCEEDING


class Transaction:
    """Base of client and server transactions: identity, state and the two timer slots.

    A transaction holds at most two timers, entries of the layer's
    :class:`~.scheduler.Scheduler`: a retransmission timer (A, E or G, or the 100
    Trying delay) and a timeout timer (B, D, F, H, I, J, K, L, M).  Termination
    cancels both, removes the transaction from the layer's maps and drops the
    reference to its user, so no cycle outlives it.
    """

    __slots__ = (
        "_deadline",
        "_ends_at",
        "_interval",
        "_key",
        "_layer",
        "_state",
        "_timer_r",
        "_timer_t",
        "_timers",
        "branch",
        "method",
        "request",
    )

    request: Request
    method: str
    branch: str
    #: The state a new transaction starts in (RFC 3261 figures 5 to 8).
    initial_state: ClassVar[TransactionState]

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        branch: str,
        key: Key,
        timers: TransportTimers,
    ) -> None:
        self._state = self.initial_state
        self.request = request
        self.method = request.method
        self.branch = branch
        self._key = key
        self._layer = layer
        self._timers = timers
        self._timer_r: Entry | None = None
        self._timer_t: Entry | None = None
        self._interval = 0.0
        #: when the lingering state (Accepted, Completed, Confirmed) ends, once entered
        self._ends_at = 0.0
        #: the same once the layer replaced the transaction by a ghost (0.0: not detached)
        self._deadline = 0.0

    @property
    def state(self) -> TransactionState:
        """The current state (RFC 3261 figures 5 to 8, with RFC 6026's Accepted).

        A detached transaction (one the layer replaced by a ghost, see
        :mod:`.ghosts`) keeps its lingering state until its deadline and is
        Terminated from then on.
        """
        deadline = self._deadline
        if deadline and self._layer._clock.seconds() >= deadline:
            return TERMINATED
        return self._state

    @property
    def detached(self) -> bool:
        """True while the layer holds a ghost of this transaction instead of the object."""
        return bool(self._deadline) and self.state is not TERMINATED

    @property
    def reliable(self) -> bool:
        """True when the transaction runs over a reliable transport (no retransmissions)."""
        return self._timers.reliable

    @property
    def terminated(self) -> bool:
        """True once the transaction reached the Terminated state (it is then forgotten)."""
        return self.state is TERMINATED

    # -- timers ----------------------------------------------------------------
    # Both slots are run by the layer's Scheduler: starting one stores a small
    # tuple in it, cancelling clears it, and the handler (an unbound method, so no
    # bound method per timer) runs with the slot already cleared.
    def _start_retransmit(self, interval: float, handler: Handler) -> None:
        self._interval = interval
        self._layer._scheduler.start(interval, self, "_timer_r", handler)

    def _start_timeout(self, delay: float, handler: Handler) -> None:
        self._layer._scheduler.start(delay, self, "_timer_t", handler)

    def _cancel_retransmit(self) -> None:
        if self._timer_r is not None:
            self._layer._scheduler.cancel(self, "_timer_r")

    def _cancel_timers(self) -> None:
        scheduler = self._layer._scheduler
        if self._timer_r is not None:
            scheduler.cancel(self, "_timer_r")
        if self._timer_t is not None:
            scheduler.cancel(self, "_timer_t")

    # -- lingering ---------------------------------------------------------------
    # The states that only absorb or answer retransmissions (INVITE server
    # Accepted/Confirmed, non-INVITE server Completed, INVITE client Accepted/
    # Completed, non-INVITE client Completed) last up to 64*T1, mostly after the
    # call ended.  For T1 after entering one the transaction stays as it is (the
    # TU usually still holds its messages and may still hear from it: a 2xx
    # retransmission, a transport error on the final response); then the layer
    # replaces it by a ghost, a dict of atoms the garbage collector never sees
    # (.ghosts), and the object is detached.  The INVITE server transaction in
    # Completed over a reliable transport (no Timer G, it waits for the ACK until
    # Timer H) is no ghost: T1 after entering that state it just drops the decoded
    # views of the messages it keeps.
    def _linger_for(self, delay: float, handler: Handler) -> None:
        """Enter a lingering state that lasts ``delay`` seconds.

        If that is longer than T1, the transaction becomes a ghost T1 later
        (:meth:`_become_ghost`) that ends at the same deadline, so only the T1
        timer is started; else ``handler`` ends the state (no ghost)."""
        layer = self._layer
        linger = layer._linger_delay
        if delay > linger:
            self._ends_at = layer._clock.seconds() + delay
            layer._scheduler.start(linger, self, "_timer_r", type(self)._become_ghost)
        else:
            layer._scheduler.start(delay, self, "_timer_t", handler)

    def _linger(self) -> None:
        """T1 from now, :meth:`_become_ghost` (for a state that ends otherwise, e.g. the
        INVITE server's Completed over a reliable transport: it only sheds its views)."""
        layer = self._layer
        layer._scheduler.start(layer._linger_delay, self, "_timer_r", type(self)._become_ghost)

    def _become_ghost(self) -> None:
        """T1 into a lingering state: have the layer replace this transaction by a ghost
        (subclasses; each state entered with :meth:`_linger_for` must make one)."""
        self._shed()

    def _detach(self, deadline: float) -> None:
        """The layer replaced this transaction by a ghost that ends at ``deadline``:
        cancel the timers and let go of the user (the ghost does the rest)."""
        raise NotImplementedError

    def _shed(self) -> None:
        """Keep only the text of every message the transaction keeps (``Message.compact``)."""
        self.request.compact()

    # -- state -----------------------------------------------------------------
    def _settle(self, state: TransactionState) -> None:
        """Leave Calling/Trying/Proceeding for a state after the final response
        (the layer counts pending transactions, so ``pending_count`` is O(1))."""
        self._state = state
        self._layer._pending -= 1

    # -- termination -----------------------------------------------------------
    def _terminate(self) -> None:
        """Enter Terminated: cancel timers, leave the layer's maps, break references."""
        state = self._state
        if state is TERMINATED:
            return
        if state is PROCEEDING or state is CALLING or state is TRYING:
            self._layer._pending -= 1
        self._state = TERMINATED
        self._deadline = 0.0
        self._cancel_timers()
        self._unregister()

    def _unregister(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state.value}>"


class NullUser:
    """A TU that ignores everything: the user of transactions the layer runs on its own
    (CANCEL client transactions, CANCEL/482 server transactions) and of terminated ones.
    """

    __slots__ = ()

    def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
        """Ignored."""

    def request_received(self, tx: ServerTransaction, request: Request, /) -> None:
        """Ignored."""

    def ack_received(self, request: Request, origin: Origin, /) -> None:
        """Ignored."""

    def cancel_received(self, tx: ServerTransaction, cancel: Request, /) -> None:
        """Ignored."""

    def stray_response_received(self, response: Response, /) -> None:
        """Ignored."""

    def server_transaction_failed(
        self, tx: ServerTransaction, failure: TransactionFailure, /
    ) -> None:
        """Ignored."""


NULL_USER = NullUser()
