"""What the bridge needs from the network, declared structurally (no transport import)."""

from __future__ import annotations

from typing import Protocol

from twisted.internet.defer import Deferred

from ..sip import URI, Address, Request, Response
from ..transaction import ClientTransaction, ClientTransactionUser


class Network(Protocol):
    """Name resolution and local addresses (the transport layer provides them)."""

    def resolve(self, uri: URI) -> Deferred[list[Address]]:
        """RFC 3263: the ordered destinations for ``uri`` ([] when none)."""

    def local_address(self, destination: Address) -> Address:
        """Our address (Via sent-by, Contact) for sending to ``destination``."""


class Transactions(Protocol):
    """The part of the transaction layer the bridge uses."""

    def send_request(
        self, request: Request, destination: Address, user: ClientTransactionUser
    ) -> ClientTransaction:
        """Start a client transaction."""

    def send_ack(self, ack: Request, destination: Address) -> None:
        """Send an ACK for a 2xx (no transaction)."""


class NullUser:
    """A client transaction user that ignores responses (BYE on teardown, stray ACK/BYE)."""

    def response_received(self, tx: ClientTransaction, response: Response) -> None:
        """Nothing to do."""


NULL_USER = NullUser()
