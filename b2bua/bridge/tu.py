"""The transaction layer's user: new requests to the UAS core, the rest to the calls."""

from __future__ import annotations

from ..logs import Logger
from ..sip import Origin, Request, Response
from ..transaction import ServerTransaction
from ..transaction.failures import TransactionFailure
from ..ua.core import UACore
from .manager import CallManager


class ServerUser:
    """What the transaction layer calls: requests go through the core's checks, ACKs,
    CANCELs and stray 2xx responses go to the call manager (once it is set)."""

    _log = Logger(namespace="b2bua.core")

    def __init__(self, core: UACore) -> None:
        self.core = core
        self.calls: CallManager | None = None
        #: server transactions that failed (Timer H, transport errors), most recent last
        self.failures: list[tuple[ServerTransaction, TransactionFailure]] = []

    def request_received(self, tx: ServerTransaction, request: Request) -> None:
        """A new request: the core checks it and dispatches it."""
        self.core.request_received(tx, request)

    def ack_received(self, request: Request, origin: Origin) -> None:
        """An ACK for a 2xx: to its call."""
        if self.calls is not None:
            self.calls.ack_received(request, origin)

    def cancel_received(self, tx: ServerTransaction, cancel: Request) -> None:
        """A CANCEL: its call cancels (487), or the core answers 487 itself."""
        if self.calls is None or not self.calls.cancel_received(tx, cancel):
            tx.respond(self.core.cancelled_response(tx.request))

    def stray_response_received(self, response: Response) -> None:
        """A 2xx no client transaction passes to its user: its call ACKs it again, or
        it is ACKed and hung up on (RFC 6026)."""
        if self.calls is not None and response.is_success:
            self.calls.stray_2xx(response)

    def server_transaction_failed(self, tx: ServerTransaction, failure: TransactionFailure) -> None:
        """Timer H or a transport error on a response: logged (and kept, bounded)."""
        self._log.info("Server transaction {tx} failed: {failure}", tx=repr(tx), failure=failure)
        self.failures.append((tx, failure))
        del self.failures[:-100]
