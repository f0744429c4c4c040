"""RFC 3261 section 17 transactions, with RFC 6026's fixes: pure, clock injected, no I/O.

Design notes
============

Sans-I/O, in the spirit of h11 and aioquic.  :class:`TransactionLayer` is built
with three collaborators and never touches a socket or the reactor itself:

- ``clock``: any :class:`Clock` (``callLater(delay, f, *args)`` returning a handle
  with ``cancel()``/``active()``, and ``seconds()``): the Twisted reactor in
  production, ``twisted.internet.task.Clock`` in tests;
- ``transport``: a :class:`Transport` with ``send_request(request, destination:
  Address)`` and ``send_response(response, origin: Origin)``; it routes responses
  from the Origin and the top Via (RFC 3261 18.2.2) and reports failures back
  with ``layer.transport_error(message, destination, reason)``, the signature of
  ``b2bua.transport.contract.Receiver`` (requests are matched by branch and
  method, responses by their server transaction key);
- ``tu``: a :class:`TransactionUser` for the server side and what matches no
  transaction.  Each client transaction has its own
  :class:`ClientTransactionUser`, given to ``layer.send_request``.

The transport feeds every parsed message to ``layer.message_received(message,
origin)``.

State machines.  RFC 3261 figures 5 to 8 as amended by RFC 6026: the INVITE
server transaction enters *Accepted* on a 2xx (absorbs INVITE retransmissions,
passes matching ACKs to the TU, ends on Timer L = 64*T1) and the INVITE client
transaction enters *Accepted* on a 2xx (passes every further 2xx to the TU, ends
on Timer M = 64*T1; after T1 the further 2xx go to ``tu.stray_response_received``,
see Ghosts below).  So 2xx retransmission and the ACK for 2xx belong to the
TU (the dialog layer), as RFC 6026 intends; the layer builds and sends only the
ACK for non-2xx finals.  Retransmission timers (A, E, G) run over unreliable
transports only; D, I, J, K are zero over reliable ones (:mod:`.timers`).

Matching (:mod:`.matching`).  One dict lookup per message.  Client side:
``(branch, CSeq method)``.  Server side: ``(branch, sent-by, method)`` with ACK
counted as INVITE and CANCEL separate; RFC 2543 requests (no ``z9hG4bK``) use
Request-URI, From tag, Call-ID, CSeq number and top Via, and the To tag is
checked after the lookup.

Choices where the RFC leaves room:

- 100 Trying goes out at once, before the TU sees the INVITE (``TimerConfig.
  trying_delay`` > 0 delays it, up to 200 ms, and the TU's first response cancels it).
- Merged requests (8.2.2.2) are answered 482 by the layer in a server transaction
  of its own (so retransmissions get the 482 again); the TU never sees them.
- CANCEL (9.2) is answered by the layer: 200 if it matches an INVITE server
  transaction (the TU then gets ``cancel_received`` if no final was sent yet),
  else 481.  Only INVITE transactions are looked up: a CANCEL for a non-INVITE
  request, useless anyway, is answered 481.
- Timeouts (Timer B, F) and transport errors reach the client TU as a
  :class:`SynthesizedResponse` (408 or 503, RFC 3261 8.1.3.1) through
  ``response_received``, with ``.failure`` (a :class:`TransactionFailure` whose
  ``kind`` is TIMEOUT or TRANSPORT) so failover logic can tell them apart;
  ``tx.failure`` is set as well.  Server-side failures (Timer H, transport errors)
  reach ``tu.server_transaction_failed(tx, failure)``.
- ``tx.cancel()`` holds the CANCEL until a provisional arrives (9.1), then runs it
  in its own non-INVITE client transaction; 64*T1 after the CANCEL without a final
  response, the INVITE ends with a synthesized 408.
- Stray responses (17.1.3, RFC 6026 7.2): a 2xx to an INVITE that no client
  transaction takes (none matches, or it matched one already Completed by a
  non-2xx, or one that has lingered in Accepted for T1 and is a ghost) goes to
  ``tu.stray_response_received`` so the core can resend its ACK (a 2xx of a live
  dialog) or ACK and BYE it; every other stray response is dropped.  An ACK matching no server
  transaction, or one in Accepted, goes to ``tu.ack_received``.
- Transport errors are delivered through ``clock.callLater(0)``, so a TU never
  hears of a failure from inside the call that caused it.  A transport error
  on the ACK for a non-2xx ends the transaction without telling the TU again (it
  has its final response); one in the INVITE server's Accepted state is reported
  and the transaction stays (RFC 6026).  Responses to RFC 2543 requests cannot be
  matched from a response alone: their transport errors are ignored and Timer H/J
  ends the transaction.  Transport errors for a ghost's messages are logged at
  debug level and dropped.
- A client TU may also define ``transaction_terminated(tx)``: it is called once
  when the transaction will pass nothing more up: when it ends (after any final
  response was passed up) or becomes a ghost, T1 into Accepted or Completed.
- Every callback to a TU comes after the transaction updated its state, so TUs
  may call back into the layer.  Exceptions from a TU propagate; if
  ``request_received`` raises before a final response, the layer answers 500.

Not handled here: an INVITE client transaction in Proceeding waits for its final
response for as long as the TU lets it (Timer C and INVITE expiry are the TU's,
and end with ``tx.cancel()``); a server transaction lives until its TU responds.

Ghosts (:mod:`.ghosts`).  A finished call's transactions linger up to 64*T1
(32 s) to absorb retransmissions.  T1 after entering such a state (INVITE server
Accepted/Confirmed, non-INVITE server Completed, INVITE client Accepted/Completed,
non-INVITE client Completed) a transaction is replaced in the layer's maps by a
*ghost*, a plain tuple of atoms (kind, key, deadline, To tags, merge key, the
bytes to re-send, the destination) that answers retransmissions on the wire
exactly as the transaction did and that CPython's collector untracks, so
lingering calls cost full collections nothing.  The object is detached: the layer
forgets it and its user, but a TU may keep it; its ``state`` reads Terminated
from the deadline on, and an INVITE server transaction in Accepted still sends
the TU's 2xx retransmissions.  Ghosts of one duration expire in FIFO order.
Over reliable transports D, I, J, K are zero (the transaction ends at once, no
ghost); L and M are 64*T1 there too (ghosts).  ``client_count`` and
``server_count`` count ghosts, ``pending_count`` does not.

Timers (:mod:`.scheduler`).  Every timer of the layer runs on one
:class:`~.scheduler.Scheduler`: a FIFO queue per distinct delay and a single
``clock.callLater`` for the earliest deadline, so a timer costs one small tuple
rather than a Twisted ``DelayedCall`` with its bound methods and heap insertion.
A cancelled timer lets go of its owner at once.

Performance.  ``__slots__`` everywhere, tuple keys, no logging above debug and
none on the normal path.  A terminated or detached transaction has no timer
scheduled, is in no map, and holds no reference to its user, so it leaves no
cycle behind.
"""

from .base import NULL_USER, NullUser, TransactionState
from .client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
    build_ack,
    build_cancel,
)
from .clock import Clock, DelayedCall
from .failures import FailureKind, SynthesizedResponse, TransactionFailure, TransactionStateError
from .interfaces import ClientTransactionUser, TransactionUser, Transport
from .layer import TransactionLayer
from .matching import MAGIC_COOKIE, new_branch, new_tag
from .server import InviteServerTransaction, NonInviteServerTransaction, ServerTransaction
from .timers import TimerConfig, TransportTimers

__all__ = [
    # the layer and its configuration
    "TransactionLayer",
    "TimerConfig",
    "TransportTimers",
    # what the layer is given
    "Clock",
    "DelayedCall",
    "Transport",
    "TransactionUser",
    "ClientTransactionUser",
    "NullUser",
    "NULL_USER",
    # transactions
    "TransactionState",
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    # failures
    "FailureKind",
    "TransactionFailure",
    "SynthesizedResponse",
    "TransactionStateError",
    # helpers
    "MAGIC_COOKIE",
    "build_ack",
    "build_cancel",
    "new_branch",
    "new_tag",
]
