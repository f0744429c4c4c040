"""The objects the transaction layer talks to, declared as structural types (typing.Protocol).

Below the layer: the :class:`Transport`.  Above it: the :class:`TransactionUser`
(one per layer, gets new server transactions and what matches no transaction)
and a :class:`ClientTransactionUser` per client transaction (gets its responses).
Each callback is made after the transaction's state is updated, so a TU may call
back into the layer (respond, cancel, send new requests) from any of them.

Lingering transactions (:mod:`.ghosts`): T1 after a transaction enters a state
that only absorbs or re-answers retransmissions (INVITE server Accepted and
Confirmed, non-INVITE server Completed, INVITE client Accepted and Completed,
non-INVITE client Completed) the layer replaces it by a ghost and forgets the
object.  From then on its TU hears nothing more from it: a 2xx to the INVITE goes
to ``TransactionUser.stray_response_received``, an ACK for the 2xx to
``ack_received`` (as always), and transport errors are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..sip import Address, Origin, Request, Response

if TYPE_CHECKING:
    from .client import ClientTransaction
    from .failures import TransactionFailure
    from .server import ServerTransaction

__all__ = ["ClientTransactionUser", "Transport", "TransactionUser"]


class Transport(Protocol):
    """What the layer sends through: the transport layer (RFC 3261 section 18).

    Neither method may raise for a network failure: report it later with
    ``TransactionLayer.transport_error(message, destination, reason)``.  The transport may
    rewrite the top Via's transport and sent-by (RFC 3261 18.1.1) but must keep
    its branch parameter.
    """

    def send_request(self, request: Request, destination: Address, /) -> None:
        """Send a request (or a retransmission of it) to a resolved destination."""

    def send_response(self, response: Response, origin: Origin, /) -> None:
        """Send a response back the way RFC 3261 18.2.2 says, from the request's Origin."""


class ClientTransactionUser(Protocol):
    """The TU of one client transaction: receives every response the transaction passes up."""

    def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
        """A provisional or final response for ``tx``.

        Exactly one final response is delivered, except that an INVITE client
        transaction in the Accepted state (RFC 6026) also delivers the further 2xx
        (retransmissions and other forks) that arrive within T1 of the first, so
        the TU can ACK each one.  Later ones go to the layer TU's
        ``stray_response_received`` (the transaction is a ghost by then), which must
        ACK a 2xx of a dialog it knows (resend its ACK) and ACK and BYE any other.
        A timeout or transport error arrives as a :class:`SynthesizedResponse` (408
        or 503) with ``.failure`` set; ``tx.failure`` is then set too.

        Optional companion: a user that also defines ``transaction_terminated(tx)``
        is told once when the transaction will pass nothing more up: when it ends,
        after any final response, or when the layer replaced it by a ghost (T1 into
        Accepted or Completed; ``tx.state`` then still reads Accepted or Completed
        until the state's timer would have ended it).
        """


class TransactionUser(Protocol):
    """The layer's TU on the server side (the dialog or bridge layer above)."""

    def request_received(self, tx: ServerTransaction, request: Request, /) -> None:
        """A new request (anything but ACK and CANCEL): answer it with ``tx.respond``.

        For an INVITE, 100 Trying has already been sent (unless a ``trying_delay``
        is configured).  If this method raises before a final response was sent,
        the layer answers 500 and lets the exception propagate.
        """

    def ack_received(self, request: Request, origin: Origin, /) -> None:
        """An ACK that belongs to no transaction (the ACK for a 2xx, RFC 6026).

        Also called for an ACK that matches an INVITE server transaction in the
        Accepted state (an RFC 2543 peer reusing the INVITE's branch), or its ghost.
        """

    def cancel_received(self, tx: ServerTransaction, cancel: Request, /) -> None:
        """A CANCEL matched INVITE server transaction ``tx`` before its final response.

        The layer has already answered the CANCEL with 200; the TU should answer the
        INVITE with 487 (RFC 3261 9.2).  Not called once the INVITE has a final
        response (the CANCEL gets its 200 and has no effect).
        """

    def stray_response_received(self, response: Response, /) -> None:
        """A 2xx to an INVITE that no client transaction takes (RFC 6026 7.2: a late fork).

        Either no client transaction matches (Timer M has ended it), or it matched
        one that already received a non-2xx final, or one lingering in Accepted for
        more than T1 (a ghost, :mod:`.ghosts`: then it is usually a retransmission
        of the 2xx of a live dialog, whose ACK the TU must send again; else the TU
        core ACKs and BYEs it).  Other stray responses are dropped by the layer.
        """

    def server_transaction_failed(
        self, tx: ServerTransaction, failure: TransactionFailure, /
    ) -> None:
        """``tx`` failed: Timer H fired (no ACK for a non-2xx final) or a response could not
        be sent (RFC 3261 17.2.4).  ``tx`` is terminated unless it is an INVITE server
        transaction in the Accepted state, which stays to absorb retransmissions.
        Not called once the transaction is a ghost (T1 into Accepted, Confirmed or
        Completed): a transport error on a 2xx the TU re-sends through a detached
        INVITE server transaction, or on a re-sent response, is only logged.
        """
