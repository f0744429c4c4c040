"""Ghosts: lingering transactions reduced to dicts of atoms, which the garbage collector never sees.

Why.  After a call ends its transactions linger, up to 64*T1 (32 s), only to absorb
or re-answer retransmissions: the INVITE server transaction in Accepted (Timer L)
or Confirmed (Timer I), the non-INVITE server transaction in Completed (Timer J),
the INVITE client transaction in Accepted (Timer M) or Completed (Timer D), the
non-INVITE client transaction in Completed (Timer K).  Kept as objects, with
their requests, responses, headers, origins and users, a finished call left ~29
GC-tracked objects for 32 s; at 1,000 calls/s that is ~930,000 objects, and every
full collection walked them all (~0.75 s with the reactor stalled).  The collector
only looks at tracked objects, and CPython never tracks a dict whose keys and
values are all atoms (str, bytes, int, float, bool, None): it starts untracked
and would be tracked only when a container is stored in it.  So T1 after a
transaction enters one of those states, the layer replaces it in its maps
(``_servers`` or ``_clients``, and ``_merged``) by a *ghost*: a plain dict of
atoms holding exactly what answering retransmissions needs, under string keys
(:mod:`.matching`), and a finished call costs the collector nothing.

Why a dict and not a tuple of atoms (the first design): a tuple is created
tracked and untracked only by the first collection that scans it, so every
collection scanned all the ghosts made since the one before.  With collections
every few thousand calls those were half of each young collection and most of
its pause (10 to 30 ms at 500 calls/s); they also counted towards the next
collection.  A dict of at most five entries costs 80 bytes more than the tuple
(184 against 104) and never enters a collection.  Absent fields are left out,
so most ghosts have three to five entries.  A ghost under an RFC 2543 key (a
tuple, :func:`.matching.server_key`) is tracked like the key: a legacy peer's
rare case.

Why T1 later, not at once: for T1 the TU usually still holds the messages and
may still hear from the transaction as RFC 3261/6026 say (further 2xx in client
Accepted, a transport error on the final response, reported to the TU); the
states last 64*T1 or T4, so the object costs T1 of them.  When the state lasts
T1 or less (a T4 set below T1) no ghost is made: the state's timer ends it.

A ghost (:class:`Ghost`) is a dict with these entries, the last five only when
they have a value:

- ``kind``: one of the constants below (what the ghost does);
- ``key``: its key in ``_servers`` or ``_clients`` (:mod:`.matching`);
- ``deadline``: when it expires (``clock.seconds()`` time);
- ``request_tag`` and ``to_tag`` (server ghosts only): the request's To tag, for
  the RFC 2543 matching of 17.2.3 (legacy keys only), and the response's (INVITE
  only), for the RFC 2543 matching of the ACK and the 200 answering a CANCEL;
- ``merge_key``: its entry in ``_merged`` (8.2.2.2);
- ``data``: the bytes to re-send (non-INVITE server Completed: the final response;
  INVITE client Completed: the ACK);
- ``destination``: where the INVITE client ghost re-sends its ACK, as the string
  ``"transport host port"``.  A server ghost answers the origin the
  retransmission came from, as the transaction did.

What each kind does, as the transaction did (:class:`TransactionLayer` dispatches):

- ``IST_ACCEPTED`` (Timer L): absorbs INVITE retransmissions; a matching ACK goes
  to the layer TU's ``ack_received``; a CANCEL gets 200 with the To tag and no more.
- ``IST_CONFIRMED`` (Timer I): absorbs ACK and INVITE retransmissions; a CANCEL
  gets 200.
- ``NIST_COMPLETED`` (Timer J): answers a request retransmission with the final
  response, rebuilt from its bytes (the rare path: parsed again, then handed to
  ``transport.send_response`` with the retransmission's Origin).
- ``ICT_COMPLETED`` (Timer D): re-sends the ACK for a retransmitted 300-699 (rebuilt
  from its bytes); a 2xx goes to the layer TU's ``stray_response_received``.
- ``ICT_ACCEPTED`` (Timer M): every 2xx goes to the layer TU's
  ``stray_response_received`` (no longer to the transaction's own user, which
  was told ``transaction_terminated`` when the ghost was made); the TU resends
  its ACK for a 2xx of a dialog it knows, and ACKs and BYEs any other.
- ``NICT_COMPLETED`` (Timer K): absorbs response retransmissions.

A transport error reported for a message of a ghost (a re-sent response or ACK,
or a 2xx the TU sent through a detached INVITE server transaction) is logged at
debug level and dropped: nothing waits for it.  For the first T1 of Accepted the
transaction still reports one to its TU as RFC 6026 says (``server_transaction_failed``);
once it is a ghost the layer no longer holds it and the report reaches no one:
the TU that retransmits its 2xx stops on the ACK or its own timeout anyway.

Detached transactions.  The transaction object is *detached* (``_detach``): its
timers are cancelled, it lets go of its user, and the layer keeps no reference to
it, but a TU may still hold it.  Its ``state`` stays what it was until the
deadline and reads Terminated from then on; ``request``, ``last_response``,
``to_tag`` and ``final_sent`` still answer.  An INVITE server transaction in
Accepted still sends the TU's 2xx retransmissions (``respond``) until the
deadline, through the transport, as RFC 6026 wants.

Expiry.  The durations are few and fixed per transport (L, M, J, D, I, K), so the
ghosts of one duration expire in the order they were made: a FIFO per duration
(a :class:`_Lane`), appended on the right and expired from the left.  Each lane
keeps at most one timer of the layer's :class:`~.scheduler.Scheduler`, for its
head's deadline (:meth:`~.scheduler.Scheduler.start_at`, in a lane of its own).
A ghost is removed from its maps only if it is still the value there.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Final, Required, TypedDict

from ..sip import Address, Origin, Request, Response, SIPParseError, parse_message

if TYPE_CHECKING:
    from .client import ClientTransaction
    from .clock import Clock
    from .interfaces import Transport
    from .matching import Key, MergeKey, ServerKey
    from .scheduler import Entry, Scheduler
    from .server import ServerTransaction

__all__ = [
    "ICT_ACCEPTED",
    "ICT_COMPLETED",
    "IST_ACCEPTED",
    "IST_CONFIRMED",
    "NICT_COMPLETED",
    "NIST_COMPLETED",
    "Ghost",
    "Ghosts",
    "matches_legacy",
]

_log = logging.getLogger(__name__)

# Kinds.  Server kinds are below CLIENT_KINDS, client kinds from it.
IST_ACCEPTED: Final = 1
IST_CONFIRMED: Final = 2
NIST_COMPLETED: Final = 3
CLIENT_KINDS: Final = 4
ICT_ACCEPTED: Final = 4
ICT_COMPLETED: Final = 5
NICT_COMPLETED: Final = 6


class Ghost(TypedDict, total=False):
    """A lingering transaction: a plain dict of atoms (see the module docstring)."""

    kind: Required[int]
    key: Required[Key]
    deadline: Required[float]
    request_tag: str
    to_tag: str
    merge_key: MergeKey
    data: bytes
    destination: str


def matches_legacy(ghost: Ghost, request: Request) -> bool:
    """The To-tag part of RFC 3261 17.2.3's RFC 2543 rule, for a server ghost
    (what ``ServerTransaction._matches_legacy`` checks on a live transaction)."""
    if request.method == "ACK":
        return request.to_tag == ghost.get("to_tag")
    return request.to_tag == ghost.get("request_tag")


class _Lane:
    """The ghosts of one duration, oldest first, and the one timer for the oldest's deadline.

    Holds the layer's maps, not the layer, so it makes no reference cycle.
    """

    __slots__ = ("clients", "clock", "lane", "merged", "queue", "scheduler", "servers", "timer")

    def __init__(
        self,
        duration: float,
        clock: Clock,
        scheduler: Scheduler,
        servers: dict[ServerKey, ServerTransaction | Ghost],
        clients: dict[Key, ClientTransaction | Ghost],
        merged: dict[MergeKey, ServerTransaction | Ghost],
    ) -> None:
        self.lane = ("ghosts", duration)
        self.clock = clock
        self.scheduler = scheduler
        self.servers = servers
        self.clients = clients
        self.merged = merged
        self.queue: deque[Ghost] = deque()
        self.timer: Entry | None = None

    def add(self, ghost: Ghost) -> None:
        """Queue a ghost (deadlines in one lane never decrease); arm for it if idle."""
        self.queue.append(ghost)
        if self.timer is None:
            self.arm(ghost["deadline"])

    def arm(self, deadline: float) -> None:
        """Expire the head of the queue at ``deadline`` (its deadline)."""
        self.scheduler.start_at(deadline, self.lane, self, "timer", _Lane.expire)

    def expire(self) -> None:
        """The scheduler's handler: forget every ghost whose deadline has come, re-arm."""
        now = self.clock.seconds()
        queue = self.queue
        servers = self.servers
        clients = self.clients
        merged = self.merged
        while queue and queue[0]["deadline"] <= now:
            ghost = queue.popleft()
            key = ghost["key"]
            if ghost["kind"] >= CLIENT_KINDS:
                if clients.get(key) is ghost:
                    del clients[key]
            else:
                if servers.get(key) is ghost:
                    del servers[key]
                mkey = ghost.get("merge_key")
                if mkey is not None and merged.get(mkey) is ghost:
                    del merged[mkey]
        if queue:
            self.arm(queue[0]["deadline"])


class Ghosts:
    """Makes ghosts of transactions (see the module docstring) and answers for them."""

    __slots__ = ("_clients", "_clock", "_lanes", "_merged", "_scheduler", "_servers", "_transport")

    def __init__(
        self,
        clock: Clock,
        scheduler: Scheduler,
        transport: Transport,
        servers: dict[ServerKey, ServerTransaction | Ghost],
        clients: dict[Key, ClientTransaction | Ghost],
        merged: dict[MergeKey, ServerTransaction | Ghost],
    ) -> None:
        self._clock = clock
        self._scheduler = scheduler
        self._transport = transport
        self._servers = servers
        self._clients = clients
        self._merged = merged
        self._lanes: dict[float, _Lane] = {}

    def _lane(self, duration: float) -> _Lane:
        lane = self._lanes.get(duration)
        if lane is None:
            lane = self._lanes[duration] = _Lane(
                duration, self._clock, self._scheduler, self._servers, self._clients, self._merged
            )
        return lane

    # -- making ghosts ---------------------------------------------------------------
    def server(
        self, tx: ServerTransaction, kind: int, duration: float, data: bytes | None = None
    ) -> None:
        """Replace server transaction ``tx`` by a ghost of ``kind`` until the end of its
        lingering state (``tx._ends_at``), in the FIFO of ``duration``, that state's length."""
        key = tx._key
        servers = self._servers
        # The request's To tag for RFC 2543 matching (decoded when it was matched);
        # the response's for INVITE's ACK and CANCEL.  Read before detaching: a TU's
        # malformed To header must not leave a detached transaction in the map.
        try:
            request_tag = tx.request.to_tag if tx._legacy else None
            to_tag = None if kind == NIST_COMPLETED else tx.to_tag
        except SIPParseError:
            request_tag = to_tag = None
        deadline = tx._ends_at
        tx._detach(deadline)
        if servers.get(key) is not tx:
            return  # not in the layer's map (cannot happen): nothing to stand in for
        mkey = tx._merge_key
        ghost: Ghost = {"kind": kind, "key": key, "deadline": deadline}
        if request_tag is not None:
            ghost["request_tag"] = request_tag
        if to_tag is not None:
            ghost["to_tag"] = to_tag
        if mkey is not None:
            ghost["merge_key"] = mkey
        if data is not None:
            ghost["data"] = data
        servers[key] = ghost
        if mkey is not None and self._merged.get(mkey) is tx:
            self._merged[mkey] = ghost
        self._lane(duration).add(ghost)

    def client(
        self,
        tx: ClientTransaction,
        kind: int,
        duration: float,
        data: bytes | None = None,
        destination: Address | None = None,
    ) -> None:
        """Replace client transaction ``tx`` by a ghost of ``kind`` (see :meth:`server`)."""
        key = tx._key
        clients = self._clients
        deadline = tx._ends_at
        tx._detach(deadline)
        if clients.get(key) is not tx:
            return
        ghost: Ghost = {"kind": kind, "key": key, "deadline": deadline}
        if data is not None:
            ghost["data"] = data
        if destination is not None:
            # A string, not a tuple: a tuple would make the dict tracked.
            ghost["destination"] = f"{destination.transport} {destination.host} {destination.port}"
        clients[key] = ghost
        self._lane(duration).add(ghost)

    # -- answering for them (the rare paths) ------------------------------------------
    def resend_response(self, ghost: Ghost, origin: Origin) -> None:
        """A non-INVITE server ghost got a retransmission: send the final response again."""
        data = ghost.get("data")
        if data is None:
            return
        try:
            response = parse_message(data)
        except SIPParseError as exc:  # our own bytes: cannot happen
            _log.debug("cannot re-send a lingering response: %s", exc.reason)
            return
        if isinstance(response, Response):
            self._transport.send_response(response, origin)

    def resend_ack(self, ghost: Ghost) -> None:
        """An INVITE client ghost got a retransmitted 300-699: send the ACK again."""
        data = ghost.get("data")
        where = ghost.get("destination")
        if data is None or where is None:
            return
        try:
            ack = parse_message(data)
        except SIPParseError as exc:
            _log.debug("cannot re-send a lingering ACK: %s", exc.reason)
            return
        if isinstance(ack, Request):
            transport, host, port = where.split(" ")
            self._transport.send_request(ack, Address(transport, host, int(port)))
