"""The transaction layer: matches messages to transactions (RFC 3261 17.1.3, 17.2.3) and
dispatches them; creates transactions; handles CANCEL (9.2) and merged requests (8.2.2.2).

Its maps hold live transactions and ghosts (:mod:`.ghosts`): dicts of atoms that
stand in for transactions lingering to absorb retransmissions.  A value that is a
dict is a ghost; the rare paths that answer for it are here and in :mod:`.ghosts`.
"""

from __future__ import annotations

import logging

from ..sip import Address, Origin, Request, Response, SIPParseError, response_for
from .base import NULL_USER, TransactionState
from .client import ClientTransaction, InviteClientTransaction, NonInviteClientTransaction
from .clock import Clock
from .ghosts import (
    ICT_COMPLETED,
    IST_ACCEPTED,
    NIST_COMPLETED,
    Ghost,
    Ghosts,
)
from .ghosts import matches_legacy as ghost_matches_legacy
from .interfaces import ClientTransactionUser, TransactionUser, Transport
from .matching import (
    MAGIC_COOKIE,
    Key,
    MergeKey,
    ServerKey,
    client_key,
    merge_key,
    new_branch,
    new_tag,
    server_key,
    server_key_for_response,
    sibling_key,
)
from .scheduler import Scheduler
from .server import InviteServerTransaction, NonInviteServerTransaction, ServerTransaction
from .timers import TimerConfig

__all__ = ["TransactionLayer"]

_log = logging.getLogger(__name__)

PROCEEDING = TransactionState.PROCEEDING


class TransactionLayer:
    """Client and server transactions for one SIP endpoint, driven by an injected clock.

    Inputs: :meth:`message_received` (every parsed message, from the transport),
    :meth:`transport_error` (a message the transport could not send),
    :meth:`send_request` (the TU starts a client transaction) and ``respond`` on
    server transactions.  Outputs: calls on ``transport`` and on the TUs.
    """

    __slots__ = (
        "_clients",
        "_clock",
        "_config",
        "_ghosts",
        "_linger_delay",
        "_merged",
        "_pending",
        "_reliable",
        "_scheduler",
        "_servers",
        "_transport",
        "_tu",
        "_unreliable",
    )

    def __init__(
        self,
        clock: Clock,
        transport: Transport,
        tu: TransactionUser,
        timers: TimerConfig | None = None,
    ) -> None:
        self._clock = clock
        self._transport = transport
        self._tu = tu
        config = TimerConfig() if timers is None else timers
        self._config = config
        self._scheduler = Scheduler(clock, config.resolution)
        #: how long a transaction that only absorbs retransmissions keeps decoded views
        self._linger_delay = config.t1
        self._unreliable = config.for_transport(reliable=False)
        self._reliable = config.for_transport(reliable=True)
        # Live transactions and the ghosts of lingering ones (.ghosts).
        self._clients: dict[Key, ClientTransaction | Ghost] = {}
        self._servers: dict[ServerKey, ServerTransaction | Ghost] = {}
        self._merged: dict[MergeKey, ServerTransaction | Ghost] = {}
        self._ghosts = Ghosts(
            clock, self._scheduler, transport, self._servers, self._clients, self._merged
        )
        #: transactions in Calling, Trying or Proceeding (kept by Transaction._settle/_terminate)
        self._pending = 0

    @property
    def timers(self) -> TimerConfig:
        """The timer configuration (T1, T2, T4, 100 Trying delay)."""
        return self._config

    @property
    def scheduler(self) -> Scheduler:
        """The layer's timer scheduler; a TU may queue its own timers on it (in lanes
        or delays of its own) so that theirs and the layer's share reactor wake-ups."""
        return self._scheduler

    @property
    def client_count(self) -> int:
        """How many client transactions are alive (not yet terminated), ghosts included."""
        return len(self._clients)

    @property
    def server_count(self) -> int:
        """How many server transactions are alive, including those the layer runs itself
        (CANCEL answers, 482 to merged requests) and ghosts."""
        return len(self._servers)

    @property
    def pending_count(self) -> int:
        """How many transactions still wait for a final response (for graceful shutdown).

        Client transactions in Calling, Trying or Proceeding, and server transactions
        in Trying or Proceeding; those that merely absorb retransmissions of a final
        response (Completed, Confirmed, Accepted; most of them ghosts) do not count.
        """
        return self._pending

    # -- client side -------------------------------------------------------------
    def send_request(
        self, request: Request, destination: Address, user: ClientTransactionUser
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` to ``destination``; return it.

        The request needs a top Via; if its branch lacks the magic cookie a fresh
        one is set, in place (RFC 3261 8.1.1.7).  ``user.response_received`` gets
        the responses.  ACK is not a transaction: use :meth:`send_ack`.  To cancel an
        INVITE use ``tx.cancel()`` rather than sending a CANCEL here.
        """
        method = request.method
        if method == "ACK":
            raise ValueError("ACK starts no transaction: use send_ack (ACK for 2xx)")
        branch = self._ensure_branch(request)
        if client_key(branch, method) in self._clients:
            raise ValueError(f"a {method} client transaction with branch {branch} exists")
        return self._start_client(request, branch, destination, user)

    def send_ack(self, ack: Request, destination: Address) -> None:
        """Send an ACK for a 2xx (RFC 3261 13.2.2.4): no transaction, just a branch and the wire."""
        if ack.method != "ACK":
            raise ValueError(f"send_ack needs an ACK, not {ack.method}")
        self._ensure_branch(ack)
        self._transport.send_request(ack, destination)

    def _ensure_branch(self, request: Request) -> str:
        try:
            via = request.top_via
        except SIPParseError:
            if "Via" not in request.headers:
                raise ValueError(
                    "the request needs a top Via (the layer only sets its branch)"
                ) from None
            raise
        branch = via.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            branch = new_branch()
            headers = request.headers
            headers.pop_first_value("Via")
            headers.add("Via", str(via.with_params(branch=branch)), first=True)
        return branch

    def _start_client(
        self,
        request: Request,
        branch: str,
        destination: Address,
        user: ClientTransactionUser,
    ) -> ClientTransaction:
        timers = self._reliable if destination.reliable else self._unreliable
        key = client_key(branch, request.method)
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(self, request, branch, key, destination, user, timers)
        else:
            tx = NonInviteClientTransaction(self, request, branch, key, destination, user, timers)
        self._clients[key] = tx
        self._pending += 1
        tx._start()
        return tx

    def _forget_client(self, tx: ClientTransaction) -> None:
        key = tx._key
        if self._clients.get(key) is tx:
            del self._clients[key]

    # -- input from the transport ----------------------------------------------------
    def message_received(self, message: Request | Response, origin: Origin) -> None:
        """Feed one parsed message received from ``origin`` (the transport calls this).

        Messages whose Via, CSeq, From or Request-URI cannot be decoded are dropped
        (the transport answers 400 to requests it cannot parse).
        """
        if isinstance(message, Response):
            self._response_received(message)
        else:
            self._request_received(message, origin)

    def transport_error(
        self, message: Request | Response, destination: Address, reason: str
    ) -> None:
        """Report that ``message``, handed to the transport by this layer, could not be sent
        to ``destination`` (the signature of ``b2bua.transport.contract.Receiver``).

        Callable at any time, even from inside ``send_request``/``send_response``:
        the transaction learns of it from a ``callLater(0)``, so a TU never hears
        of a failure before the call that caused it has returned.  Requests are
        matched by branch and method (an ACK by its INVITE's), responses by
        their server transaction key (RFC 3261 branches only).
        """
        self._clock.callLater(0, self._transport_error_now, message, reason)

    def _transport_error_now(self, message: Request | Response, reason: str) -> None:
        tx: ClientTransaction | ServerTransaction | Ghost | None
        try:
            if isinstance(message, Request):
                method = message.method
                tx = self._clients.get(
                    client_key(message.branch, "INVITE" if method == "ACK" else method)
                )
            else:
                skey = server_key_for_response(message)
                tx = None if skey is None else self._servers.get(skey)
        except SIPParseError:
            return
        if tx is None:
            _log.debug("transport error for no transaction (%s): %r", reason, message)
            return
        if isinstance(tx, dict):
            # Nothing waits for a lingering transaction's messages (see .ghosts).
            _log.debug("transport error for a lingering transaction (%s): %r", reason, message)
            return
        tx._transport_error(reason)

    def _response_received(self, response: Response) -> None:
        try:
            method = response.cseq.method
            key = client_key(response.top_via.branch, method)
        except SIPParseError as exc:
            _log.debug("dropped response with bad Via or CSeq: %s", exc.reason)
            return
        tx = self._clients.get(key)
        if tx is not None:
            if not isinstance(tx, dict):
                tx._receive(response)
                return
            # A ghost: INVITE Completed re-sends its ACK for a retransmitted 300-699;
            # every 2xx to an INVITE is the TU core's (below); the rest is absorbed.
            if tx["kind"] == ICT_COMPLETED and response.status >= 300:
                self._ghosts.resend_ack(tx)
                return
        if 200 <= response.status < 300 and method == "INVITE":
            self._tu.stray_response_received(response)
        else:
            _log.debug("dropped stray response %r", response)

    def _request_received(self, request: Request, origin: Origin) -> None:
        method = request.method
        mkey: MergeKey | None = None
        try:
            key, legacy = server_key(request, "INVITE" if method == "ACK" else method)
            tx = self._servers.get(key)
            if (
                tx is not None
                and legacy
                and not (
                    ghost_matches_legacy(tx, request)
                    if isinstance(tx, dict)
                    else tx._matches_legacy(request)
                )
            ):
                if method != "ACK":
                    _log.debug("dropped %s clashing with an RFC 2543 transaction", method)
                    return
                tx = None  # an ACK for a 2xx with another To tag
            if tx is None and method != "ACK":
                # Decoded here, so nothing below raises: CANCEL matching (RFC 2543
                # rule) and merged-request detection read the To tag.
                to_tag = request.to_tag
                if to_tag is None and method != "CANCEL":
                    mkey = merge_key(request)
        except SIPParseError as exc:
            _log.debug("dropped %s with a malformed header: %s", method, exc.reason)
            return
        if tx is not None:
            if isinstance(tx, dict):
                self._ghost_request(tx, request, origin)
            elif method == "ACK":
                tx._ack_received(request, origin)
            else:
                tx._retransmission(request, origin)
            return
        if method == "ACK":
            self._tu.ack_received(request, origin)
            return
        if method == "CANCEL":
            self._cancel_received(request, origin, key, legacy)
            return
        if mkey is not None and mkey in self._merged:
            # RFC 3261 8.2.2.2: same From tag, Call-ID and CSeq as an ongoing
            # transaction but another branch: a request that forked and came back.
            merged = self._new_server(request, origin, key, legacy, None, NULL_USER)
            merged.respond(response_for(request, 482, to_tag=new_tag()))
            return
        tx = self._new_server(request, origin, key, legacy, mkey, self._tu)
        if isinstance(tx, InviteServerTransaction):
            tx._start()
        try:
            self._tu.request_received(tx, request)
        except BaseException:
            if not tx.final_sent and not tx.terminated:
                tx.respond(response_for(request, 500, to_tag=new_tag()))
            raise

    def _ghost_request(self, ghost: Ghost, request: Request, origin: Origin) -> None:
        """A request matched a server ghost (:mod:`.ghosts`): as its transaction would."""
        kind = ghost["kind"]
        if kind == NIST_COMPLETED:
            self._ghosts.resend_response(ghost, origin)
        elif kind == IST_ACCEPTED and request.method == "ACK":
            self._tu.ack_received(request, origin)
        # INVITE server Accepted absorbs INVITEs, Confirmed absorbs INVITEs and ACKs.

    def _cancel_received(
        self, cancel: Request, origin: Origin, key: ServerKey, legacy: bool
    ) -> None:
        """RFC 3261 9.2: answer the CANCEL ourselves; tell the TU if the INVITE is pending."""
        ctx = self._new_server(cancel, origin, key, legacy, None, NULL_USER)
        invite = self._servers.get(sibling_key(key, "INVITE"))
        if isinstance(invite, dict):
            # A lingering INVITE (a ghost: Accepted or Confirmed): 200, and no more.
            if legacy and invite.get("request_tag") != cancel.to_tag:
                ctx.respond(response_for(cancel, 481, to_tag=new_tag()))
            else:
                ctx.respond(response_for(cancel, 200, to_tag=invite.get("to_tag") or new_tag()))
            return
        if invite is not None and legacy and invite.request.to_tag != cancel.to_tag:
            invite = None
        if invite is None:
            ctx.respond(response_for(cancel, 481, to_tag=new_tag()))
            return
        ctx.respond(response_for(cancel, 200, to_tag=invite.to_tag or new_tag()))
        if invite._state is PROCEEDING:
            invite._tu.cancel_received(invite, cancel)

    def _new_server(
        self,
        request: Request,
        origin: Origin,
        key: ServerKey,
        legacy: bool,
        mkey: MergeKey | None,
        tu: TransactionUser,
    ) -> ServerTransaction:
        timers = self._reliable if origin.peer.reliable else self._unreliable
        branch = request.top_via.branch or ""
        tx: ServerTransaction
        if request.method == "INVITE":
            tx = InviteServerTransaction(
                self, request, branch, key, timers, origin, tu, legacy, mkey
            )
        else:
            tx = NonInviteServerTransaction(
                self, request, branch, key, timers, origin, tu, legacy, mkey
            )
        self._servers[key] = tx
        self._pending += 1
        if mkey is not None:
            self._merged[mkey] = tx
        return tx

    def _forget_server(self, tx: ServerTransaction) -> None:
        key = tx._key
        if self._servers.get(key) is tx:
            del self._servers[key]
        mkey = tx._merge_key
        if mkey is not None and self._merged.get(mkey) is tx:
            del self._merged[mkey]
