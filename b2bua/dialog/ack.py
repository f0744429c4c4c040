"""The UAC core's memory of the ACKs it sent for 2xx responses (RFC 3261 13.2.2.4).

The ACK for a 2xx is not part of any transaction, so nothing below the UA core
answers a retransmitted 2xx.  "The UAC core MUST generate an ACK request for each
2xx received from the transaction layer" - retransmissions included - and the
ACK it sends again is the one it already built: same branch, same body.  The
cache keeps the last ACK per dialog so a retransmitted 2xx costs one lookup.
"""

from __future__ import annotations

from collections import OrderedDict

from ..sip import Request, Response
from .clock import Clock
from .dialog import DialogId

#: How long a 2xx may keep being retransmitted: 64*T1 with the default T1.
DEFAULT_LIFETIME = 32.0


class AckCache:
    """The last ACK for 2xx sent on each dialog, found again from a retransmitted 2xx.

    With a ``clock``, an entry expires ``lifetime`` seconds after it was stored
    (the UAS stops retransmitting after 64*T1); expired entries are dropped as new
    ones come in, at constant cost per store.  Without a clock, entries stay until
    :meth:`forget` (call it when the dialog ends).
    """

    __slots__ = ("_acks", "_clock", "_lifetime")

    def __init__(self, clock: Clock | None = None, lifetime: float = DEFAULT_LIFETIME) -> None:
        self._clock = clock
        self._lifetime = lifetime
        #: DialogId -> (expiry time, ACK); order is expiry order (an OrderedDict, so
        #: dropping from the front stays O(1) however many entries went before).
        self._acks: OrderedDict[DialogId, tuple[float, Request]] = OrderedDict()

    def store(self, dialog_id: DialogId, ack: Request) -> None:
        """Remember ``ack`` (as sent, with its Via) as the ACK of ``dialog_id``."""
        acks = self._acks
        acks.pop(dialog_id, None)
        if self._clock is None:
            acks[dialog_id] = (0.0, ack)
            return
        now = self._clock.seconds()
        while acks:
            oldest = next(iter(acks))
            if acks[oldest][0] > now:
                break
            del acks[oldest]
        acks[dialog_id] = (now + self._lifetime, ack)

    def lookup(self, response: Response) -> Request | None:
        """The ACK to send again for a retransmitted 2xx to INVITE, or None.

        The 2xx must belong to a dialog with a stored ACK (local tag = From tag,
        remote tag = To tag) and answer the INVITE that ACK acknowledged (same
        CSeq number).  None means the 2xx is new: build an ACK with
        ``dialog.create_ack``.
        """
        if not 200 <= response.status < 300 or response.cseq.method != "INVITE":
            return None
        dialog_id = DialogId.of_response(response)
        entry = self._acks.get(dialog_id)
        if entry is None:
            return None
        expiry, ack = entry
        if self._clock is not None and expiry <= self._clock.seconds():
            del self._acks[dialog_id]
            return None
        return ack if ack.cseq.number == response.cseq.number else None

    def forget(self, dialog_id: DialogId) -> None:
        """Drop the ACK of a dialog (it ended)."""
        self._acks.pop(dialog_id, None)

    def __len__(self) -> int:
        return len(self._acks)

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._acks


__all__ = ["DEFAULT_LIFETIME", "AckCache"]
