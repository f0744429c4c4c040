"""Out-of-dialog requests the server itself sends (OPTIONS probes for plugins)."""

from __future__ import annotations

import secrets

from twisted.internet.defer import Deferred

from ..sip import URI, Address, NameAddr, Request, Response
from ..transaction import (
    ClientTransaction,
    FailureKind,
    SynthesizedResponse,
    TransactionFailure,
)
from .network import Network, Transactions
from .relay import add_via


class _Waiter:
    """Fires a Deferred with the final response (synthesized 408/503 included)."""

    __slots__ = ("deferred",)

    def __init__(self) -> None:
        self.deferred: Deferred[Response] = Deferred()

    def response_received(self, tx: ClientTransaction, response: Response) -> None:
        if response.status >= 200 and not self.deferred.called:
            self.deferred.callback(response)


class Requester:
    """Sends a request to a URI and gives back its final response."""

    def __init__(self, network: Network, transactions: Transactions, user_agent: str) -> None:
        self._network = network
        self._transactions = transactions
        self._user_agent = user_agent

    def request(self, method: str, uri: URI) -> Deferred[Response]:
        """Send ``method`` (e.g. OPTIONS) to ``uri``; fires with the final response.

        An unresolvable URI gives a 503 response, a silent one a 408 (after Timer F),
        so callers only ever see responses.
        """
        resolved = self._network.resolve(uri)
        return resolved.addCallback(self._send, method, uri)

    def _send(
        self, destinations: list[Address], method: str, uri: URI
    ) -> Deferred[Response] | Response:
        request = Request(method, uri)
        h = request.headers
        if not destinations:
            h.add("Via", "SIP/2.0/UDP invalid;branch=z9hG4bK" + secrets.token_hex(8))
            for name, value in (
                ("From", "<sip:b2bua@invalid>;tag=x"),
                ("To", f"<{uri}>"),
                ("Call-ID", secrets.token_hex(8)),
                ("CSeq", f"1 {method}"),
            ):
                h.add(name, value)
            return SynthesizedResponse(
                request, TransactionFailure(FailureKind.TRANSPORT, f"no address for {uri}")
            )
        destination = destinations[0]
        local = self._network.local_address(destination)
        add_via(request, local)
        h.add("Max-Forwards", "70")
        me = NameAddr(URI("sip", user="b2bua", host=local.host_for_uri, port=local.port))
        h.add("From", str(me.with_params(tag=secrets.token_hex(6))))
        h.add("To", f"<{uri}>")
        h.add("Call-ID", f"{secrets.token_hex(10)}@b2bua")
        h.add("CSeq", f"1 {method}")
        h.add("User-Agent", self._user_agent)
        waiter = _Waiter()
        self._transactions.send_request(request, destination, waiter)
        return waiter.deferred
