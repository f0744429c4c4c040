"""The call manager: turns new INVITEs into calls and routes in-dialog traffic to them.

It is the UAS core's handler for INVITE and for every request that carries a To
tag, and the transaction user for ACKs, CANCELs and stray 2xx responses.  It
owns the map from dialog ids to calls, which is the only state that outlives a
message; a call removes its dialogs from it when it ends, so nothing lingers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

from ..dialog import Dialog, DialogError, DialogId, no_dialog_response
from ..logs import Logger
from ..routing import DEFAULT_FAILOVER_STATUSES, RequestContext
from ..sip import Address, Origin, Request, Response, SIPParseError, response_for
from ..transaction import InviteServerTransaction, ServerTransaction, TimerConfig
from ..transaction.clock import Clock
from ..transaction.scheduler import Scheduler
from .call import Call
from .destinations import caller_destination, dialog_destination
from .hooks import Hooks
from .network import NULL_USER, Network, Transactions
from .relay import HeaderPolicy, add_via, local_contact


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """The [bridge] configuration the calls need."""

    max_duration: float = 14400.0
    answer_timeout: float = 5.0
    ring_timeout: float = 0.0
    failover_statuses: frozenset[int] = DEFAULT_FAILOVER_STATUSES


#: A router: (request, context) -> Deferred firing with a decision.
Router = Callable[[Request, RequestContext], "Deferred[Any]"]


class CallManager:
    """Creates calls, dispatches in-dialog requests and ACKs, keeps the dialog map."""

    _log = Logger(namespace="b2bua.bridge")

    def __init__(
        self,
        clock: Clock,
        transactions: Transactions,
        network: Network,
        router: Router,
        settings: BridgeSettings,
        timers: TimerConfig,
        policy: HeaderPolicy,
        decorate: Callable[[Response], Response],
        features: Sequence[Any] = (),
        scheduler: Scheduler | None = None,
    ) -> None:
        self.clock = clock
        self.transactions = transactions
        self.network = network
        self._router = router
        self.settings = settings
        self.timers = timers
        self.policy = policy
        self.decorate = decorate
        self.hooks = Hooks(features)
        #: the calls' timers (answer, ring, maximum duration, 2xx retransmission): one
        #: clock call for all of them; the server passes the transaction layer's, so
        #: both layers' timers due within one tick share one wake-up
        self.scheduler = scheduler or Scheduler(clock, timers.resolution)
        self.calls: set[Call] = set()
        #: the live calls in the order they started, so in the order their maximum
        #: duration ends (the same for all): one timer, for the oldest, serves them all
        self._by_age: dict[Call, None] = {}
        self._age_timer: int | None = None
        self.dialogs: dict[DialogId, tuple[Call, str, Dialog]] = {}
        self._by_invite: dict[InviteServerTransaction, Call] = {}
        self._b_call_ids: dict[str, Call] = {}
        #: our Contact per listener address (see :meth:`contact_for`)
        self._contacts: dict[Address, str] = {}
        #: relayed re-INVITEs by their server transaction, for CANCEL
        self.relays: dict[ServerTransaction, Any] = {}
        self.calls_total = 0

    @property
    def router(self) -> Router:
        """The router new calls are given to."""
        return self._router

    def use_plugins(self, router: Router, features: Sequence[Any]) -> None:
        """Route new calls with ``router`` and these call features (a reload).

        Calls in progress keep the features they started with.
        """
        self._router = router
        self.hooks = Hooks(features)

    # -- bookkeeping ---------------------------------------------------------------
    def route(self, request: Request, context: RequestContext) -> Deferred[Any]:
        """Ask the configured routers about a new call."""
        return maybeDeferred(self._router, request, context)

    def add_dialog(self, dialog: Dialog, call: Call, leg: str) -> None:
        """Index a dialog of ``call`` so in-dialog requests find it."""
        self.dialogs[dialog.id] = (call, leg, dialog)
        call.dialog_ids += (dialog.id,)

    def forget_dialog(self, dialog: Dialog) -> None:
        """Drop a dialog from the index."""
        self.dialogs.pop(dialog.id, None)

    def contact_for(self, local: Address) -> str:
        """Our Contact for a leg reached through our listener ``local`` (made once per
        listener: the same text for every call, shared)."""
        contact = self._contacts.get(local)
        if contact is None:
            contact = self._contacts[local] = local_contact(local)
        return contact

    def register_b_call_id(self, call_id: str, call: Call) -> None:
        """Remember our outgoing Call-ID: seeing it come back in is a loop."""
        self._b_call_ids[call_id] = call

    def invite_settled(self, tx: InviteServerTransaction) -> None:
        """The call of the caller's INVITE ``tx`` is settled: a CANCEL can no longer
        reach it (the INVITE has its final response), so the map lets go of ``tx``."""
        self._by_invite.pop(tx, None)

    def _arm_age_timer(self, oldest: Call) -> None:
        deadline = oldest.info.started + self.settings.max_duration
        self.scheduler.start_at(deadline, _AGE_LANE, self, "_age_timer", _expire_calls)

    def expire_calls(self) -> None:
        """End the calls that reached the maximum duration, oldest first; wait for the next."""
        by_age = self._by_age
        limit = self.settings.max_duration
        now = self.clock.seconds()
        while by_age:
            oldest = next(iter(by_age))
            if oldest.info.started + limit > now:
                self._arm_age_timer(oldest)
                return
            del by_age[oldest]
            oldest.end("maximum call duration")

    def call_ended(self, call: Call) -> None:
        """Forget everything about an ended call."""
        self.calls.discard(call)
        by_age = self._by_age
        if call in by_age:
            del by_age[call]
            if not by_age:
                self.scheduler.cancel(self, "_age_timer")
        if call.a_tx is not None:
            self._by_invite.pop(call.a_tx, None)
        self._b_call_ids.pop(call.b_call_id, None)
        dialogs = self.dialogs
        for dialog_id in call.dialog_ids:
            entry = dialogs.get(dialog_id)
            if entry is not None and entry[0] is call:
                del dialogs[dialog_id]
        call.dialog_ids = ()

    def counts(self) -> dict[str, int]:
        """Live calls and dialogs, for the periodic statistics line."""
        return {"calls": len(self.calls), "dialogs": len(self.dialogs), "total": self.calls_total}

    def a_destination(self, call: Call) -> Address | None:
        """Where requests to the caller go (see :func:`caller_destination`)."""
        dialog = call.a_dialog
        return None if dialog is None else caller_destination(dialog, call.a_origin)

    # -- the UAS core's handlers ---------------------------------------------------
    def invite_received(
        self, tx: ServerTransaction, request: Request, identity: str | None = None
    ) -> None:
        """A new INVITE (no To tag): a new call."""
        if not isinstance(tx, InviteServerTransaction):
            return
        if request.call_id in self._b_call_ids:
            tx.respond(self.decorate(response_for(request, 482, to_tag=_tag())))
            return
        origin = tx.origin
        call = Call(self, tx, request, origin, identity)
        self.calls.add(call)
        self._by_age[call] = None
        if self._age_timer is None:
            self._arm_age_timer(call)
        self._by_invite[tx] = call
        self.calls_total += 1
        call.start()

    def in_dialog_request(
        self, tx: ServerTransaction, request: Request, identity: str | None = None
    ) -> None:
        """A request with a To tag: relay it within its call, or 481."""
        found = self.dialogs.get(_dialog_id(request))
        if found is None:
            tx.respond(self.decorate(no_dialog_response(request)))
            return
        call, leg, dialog = found
        call.request_received(leg, dialog, tx, request)

    def ack_received(self, request: Request, origin: Origin) -> None:
        """An ACK for a 2xx: to its call."""
        found = self.dialogs.get(_dialog_id(request))
        if found is not None:
            call, leg, dialog = found
            call.ack_received(leg, dialog, request)

    def cancel_received(self, tx: ServerTransaction, cancel: Request) -> bool:
        """A CANCEL matched an INVITE we have not answered: cancel its call."""
        call = self._by_invite.get(tx)  # type: ignore[call-overload]
        if call is not None:
            call.cancel()
            return True
        relay = self.relays.get(tx)
        if relay is not None and relay.call is not None:
            relay.call.cancel_relay(relay)
            return True
        return False

    def stray_2xx(self, response: Response) -> None:
        """A 2xx to one of our INVITEs that no client transaction hands to its user.

        RFC 6026: once the INVITE client transaction has passed its first 2xx up,
        retransmissions of it (the peer did not get our ACK) and 2xx from other
        forks reach the TU directly (as do 2xx to the INVITE of a settled call's
        released attempt).  A 2xx of a dialog a live call knows goes to that call
        (see :meth:`Call.stray_2xx`); any other is ACKed and hung up on.
        """
        try:
            found = self.dialogs.get(
                DialogId(response.call_id, response.from_tag or "", response.to_tag or "")
            )
            _ = response.cseq
        except SIPParseError:
            return
        if found is not None:
            call, _leg, dialog = found
            call.stray_2xx(dialog, response)
            return
        self.ack_and_bye_stray(response)

    def ack_and_bye_stray(self, response: Response) -> None:
        """A 2xx for an INVITE of ours that nobody wants any more: ACK it, then BYE (RFC 6026)."""
        try:
            contact = response.contacts[0].uri if response.contacts else None
            if contact is None or response.cseq.method != "INVITE":
                return
            request = Request("INVITE", contact)
            for name in ("Via", "From", "To", "Call-ID", "CSeq"):
                value = response.headers.get(name)
                if value is not None:
                    request.headers.add(name, value)
            request.headers.set("To", str(response.to.without_params("tag")))
            dialog = Dialog.from_uac(request, response)
        except (SIPParseError, ValueError):
            return
        self.ack_and_bye(dialog, None)

    def ack_and_bye(self, dialog: Dialog, fallback: Address | None) -> None:
        """ACK the 2xx that confirmed ``dialog`` and hang up on it (RFC 3261 13.2.2.4, 15).

        For a 2xx nobody wants: a second fork, a 2xx after CANCEL or after the
        call ended.  Sent to the dialog's next hop (``fallback`` when that is a name).
        """
        destination = dialog_destination(dialog, fallback)
        if destination is None:
            return
        local = self.network.local_address(destination)
        ack = dialog.create_ack()
        add_via(ack, local)
        self.transactions.send_ack(ack, destination)
        try:
            bye = dialog.create_request("BYE")
        except DialogError:
            return
        add_via(bye, local)
        self.transactions.send_request(bye, destination, NULL_USER)
        dialog.terminate()
        self.forget_dialog(dialog)


#: The scheduler lane of the maximum duration timer (its deadlines never decrease).
_AGE_LANE = "maximum call duration"


def _expire_calls(manager: CallManager) -> None:
    """The maximum duration timer fired (a scheduler handler: a plain function)."""
    manager.expire_calls()


def _tag() -> str:
    return secrets.token_hex(6)


def _dialog_id(request: Request) -> DialogId:
    return DialogId(request.call_id, request.to_tag or "", request.from_tag or "")


__all__ = ["BridgeSettings", "CallManager"]
