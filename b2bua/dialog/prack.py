"""RFC 3262 reliable provisional responses: RSeq and RAck bookkeeping (pure).

A reliable provisional response is a 101-199 carrying ``Require: 100rel`` and an
``RSeq``.  The UAC acknowledges each one, in order, with a PRACK whose ``RAck``
names it (``Dialog.accept_rseq`` and :func:`create_prack`); the UAS numbers them
and matches the PRACKs (:class:`ReliableProvisionals`).  Retransmitting the
response until its PRACK arrives is ``ReliableProvisionalRetransmitter``'s job.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sip import Request, Response, SIPParseError

if TYPE_CHECKING:
    from .dialog import Dialog

#: RSeq and RAck numbers are 32-bit unsigned integers, never zero (RFC 3262 7.1).
MAX_RSEQ = 2**32 - 1
#: The first RSeq of a request is chosen in 1 .. 2**31-1 (RFC 3262 3).
MAX_FIRST_RSEQ = 2**31 - 1

_RNG = random.Random()


def _number(text: str, what: str, low: int) -> int:
    text = text.strip(" \t")
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise SIPParseError(400, f"malformed {what}")
    value = int(text)
    if not low <= value <= MAX_RSEQ:
        raise SIPParseError(400, f"{what} out of range")
    return value


@dataclass(frozen=True, slots=True)
class RAck:
    """The RAck header of a PRACK (RFC 3262 7.2): which response it acknowledges."""

    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(text: str) -> RAck:
    """Parse ``RAck: response-num LWS CSeq-num LWS Method``; SIPParseError(400) if bad."""
    parts = text.split()
    if len(parts) != 3:
        raise SIPParseError(400, "malformed RAck")
    return RAck(_number(parts[0], "RAck", 1), _number(parts[1], "RAck", 0), parts[2])


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable provisional response, or None if ``response`` is not one.

    Reliable means: status 101-199, ``100rel`` in Require and a well-formed RSeq
    (1 .. 2**32-1).  A response with a malformed RSeq is treated as unreliable.
    """
    if not 101 <= response.status < 200:
        return None
    value = response.headers.get("RSeq")
    if value is None:
        return None
    if not any(opt.lower() == "100rel" for opt in response.headers.get_all("Require")):
        return None
    try:
        return _number(value, "RSeq", 1)
    except SIPParseError:
        return None


def is_reliable(response: Response) -> bool:
    """True for a reliable provisional response (see :func:`rseq_of`)."""
    return rseq_of(response) is not None


def create_prack(
    dialog: Dialog,
    response: Response,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """The PRACK acknowledging the reliable provisional ``response`` (RFC 3262 7.1).

    A normal request in the (early) dialog with ``RAck: <RSeq> <CSeq number>
    <CSeq method>`` of the response.  Call it after ``dialog.accept_rseq(response)``
    said True.  ``body`` carries an answer or a new offer when needed.
    """
    rseq = rseq_of(response)
    if rseq is None:
        raise ValueError("not a reliable provisional response: nothing to PRACK")
    cseq = response.cseq
    rack = RAck(rseq, cseq.number, cseq.method)
    return dialog.create_request(
        "PRACK",
        body=body,
        content_type=content_type,
        headers=[("RAck", str(rack)), *headers],
    )


class ReliableProvisionals:
    """The UAS side of RFC 3262 for one request: RSeq numbering and PRACK matching.

    One per INVITE (or other request) answered with reliable provisional
    responses.  The first RSeq is random in 1 .. 2**31-1 (``first_rseq`` fixes it,
    ``rng`` supplies the randomness); each next one is one higher.  Only one
    reliable provisional response may be unacknowledged at a time (RFC 3262 3).
    """

    __slots__ = ("_next", "_unacked", "cseq", "method")

    def __init__(
        self,
        request: Request,
        *,
        first_rseq: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if first_rseq is None:
            first_rseq = (rng or _RNG).randint(1, MAX_FIRST_RSEQ)
        elif not 1 <= first_rseq <= MAX_FIRST_RSEQ:
            raise ValueError("the first RSeq must be in 1 .. 2**31-1 (RFC 3262 3)")
        #: CSeq number and method of the request being answered.
        self.cseq = request.cseq.number
        self.method = request.cseq.method
        self._next = first_rseq
        self._unacked: int | None = None

    @property
    def next_rseq(self) -> int:
        """The RSeq the next reliable provisional response will carry."""
        return self._next

    @property
    def unacknowledged(self) -> int | None:
        """The RSeq of the reliable provisional response awaiting its PRACK, or None."""
        return self._unacked

    def prepare(self, response: Response) -> int:
        """Make the 101-199 ``response`` reliable; returns the RSeq it now carries.

        Adds ``Require: 100rel`` (unless present) and ``RSeq``, and records the
        response as unacknowledged.  Raises ``ValueError`` for a 100 or a final
        response, and while an earlier one still awaits its PRACK ("The UAS MUST
        NOT send a second reliable provisional response until the first is
        acknowledged", RFC 3262 3).
        """
        if not 101 <= response.status < 200:
            raise ValueError("only 101-199 responses are sent reliably (RFC 3262 3)")
        if self._unacked is not None:
            raise ValueError("a reliable provisional response still awaits its PRACK")
        if self._next > MAX_RSEQ:
            raise ValueError("RSeq exhausted: RSeq numbers must not wrap around")
        rseq = self._next
        headers = response.headers
        if not any(opt.lower() == "100rel" for opt in headers.get_all("Require")):
            headers.add("Require", "100rel")
        headers.set("RSeq", str(rseq))
        self._unacked = rseq
        self._next = rseq + 1
        return rseq

    def prack_matches(self, request: Request) -> bool:
        """Whether the PRACK ``request`` acknowledges our unacknowledged response.

        Its RAck must name the RSeq, CSeq number and method of that response (RFC
        3262 3); it is then marked acknowledged (the next reliable provisional
        response may go out).  False means the caller answers 481 ("If a PRACK
        request is received by the UA core that does not match any unacknowledged
        reliable provisional response, the UAS MUST respond to the PRACK with a
        481"); a missing or malformed RAck also gives False.
        """
        value = request.headers.get("RAck")
        if value is None or self._unacked is None:
            return False
        try:
            rack = parse_rack(value)
        except SIPParseError:
            return False
        if (rack.rseq, rack.cseq, rack.method) != (self._unacked, self.cseq, self.method):
            return False
        self._unacked = None
        return True


__all__ = [
    "MAX_RSEQ",
    "RAck",
    "ReliableProvisionals",
    "create_prack",
    "is_reliable",
    "parse_rack",
    "rseq_of",
]
