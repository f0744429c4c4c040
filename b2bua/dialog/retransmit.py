"""Response retransmissions the UA core does itself: 2xx to INVITE and reliable 1xx.

The INVITE server transaction hands a 2xx to the transport once and leaves the
rest to the UA core (RFC 3261 13.3.1.4; RFC 6026 keeps that split), and RFC 3262
reliable provisional responses are retransmitted by the UA core too.  Both
follow the same pattern: send again at T1, then at doubling intervals, until
the acknowledgement arrives or 64*T1 have passed.

The 2xx is retransmitted whatever the transport, reliable or not.  RFC 3261
13.3.1.4: "Response retransmissions cease when an ACK request for the response
is received.  This is independent of whatever transport protocols are used to
send the response."  and "Since 2xx is retransmitted end-to-end, there may be
hops between UAS and UAC that are UDP.  To ensure reliable delivery across those
hops, the response is retransmitted periodically even if the transport at the
UAS is reliable."  (Unlike the transaction layer's own retransmissions, which
stop over reliable transports, 17.1.1.2 and 17.2.1.)  The same holds for reliable
provisional responses, which are also end to end (RFC 3262 3).
"""

from __future__ import annotations

from collections.abc import Callable

from ..sip import Request, Response
from .clock import Clock, ClockTimers, Timers

#: The scheduler lanes of the retransmission timers are ``(_LANE, interval)``.
_LANE = "response retransmission"

#: RFC 3261 17.1.1.1 defaults: RTT estimate and the cap on non-INVITE/2xx intervals.
T1 = 0.5
T2 = 4.0


class _Retransmitter:
    """Send ``response`` at T1, then at doubling intervals (capped or not) until stopped.

    Gives up after 64*T1 seconds from its creation and calls ``on_timeout``.  It
    drops its references (``send``, the response, ``on_timeout``) when it stops,
    so a finished retransmitter holds nothing alive.

    Its two timers run on ``scheduler`` when one is given (a UA core with many
    calls shares one, e.g. the transaction layer's ``Scheduler``: a small tuple per
    timer instead of a clock call each), else on ``clock`` (:class:`ClockTimers`).
    """

    __slots__ = (
        "_cap",
        "_clock",
        "_deadline",
        "_due",
        "_interval",
        "_next_timer",
        "_on_timeout",
        "_response",
        "_send",
        "_timeout_timer",
        "_timers",
        "retransmissions",
    )

    def __init__(
        self,
        clock: Clock,
        send: Callable[[Response], object],
        response: Response,
        t1: float,
        cap: float | None,
        on_timeout: Callable[[], object] | None,
        send_first: bool,
        scheduler: Timers | None,
    ) -> None:
        if t1 <= 0:
            raise ValueError("T1 must be positive")
        self._clock: Clock | None = clock
        self._timers: Timers | None = scheduler if scheduler is not None else ClockTimers(clock)
        self._send: Callable[[Response], object] | None = send
        self._response: Response | None = response
        self._interval = t1
        self._cap = cap
        self._on_timeout = on_timeout
        now = clock.seconds()
        self._deadline = now + 64 * t1
        #: When the next retransmission is due; the schedule is kept from this
        #: rather than from the time a call actually ran, so lateness never adds up.
        self._due = now + t1
        #: How many times the response was sent again (the first sending not counted).
        self.retransmissions = 0
        #: the timers (slots the scheduler sets and clears)
        self._timeout_timer: object = None
        self._next_timer: object = None
        self._timers.start(64 * t1, self, "_timeout_timer", _Retransmitter._expire)
        self._timers.start_at(
            self._due, (_LANE, t1), self, "_next_timer", _Retransmitter._retransmit
        )
        if send_first:
            send(response)

    @property
    def active(self) -> bool:
        """True until acknowledged, stopped or timed out."""
        return self._timers is not None and self._timeout_timer is not None

    @property
    def response(self) -> Response | None:
        """The response being retransmitted (None once stopped)."""
        return self._response

    def _retransmit(self) -> None:
        clock, send, response = self._clock, self._send, self._response
        if clock is None or send is None or response is None:
            return
        if clock.seconds() >= self._deadline:
            return  # the timeout fires at the same instant: no last, useless copy
        self.retransmissions += 1
        send(response)
        timers = self._timers
        if timers is None:  # send() stopped us
            return
        interval = self._interval * 2
        if self._cap is not None and interval > self._cap:
            interval = self._cap
        self._interval = interval
        self._due += interval
        # One lane per interval: the retransmitters sharing a scheduler start the
        # timers of one interval in the order of their deadlines.
        timers.start_at(
            self._due, (_LANE, interval), self, "_next_timer", _Retransmitter._retransmit
        )

    def _expire(self) -> None:
        on_timeout = self._on_timeout
        self.stop()
        if on_timeout is not None:
            on_timeout()

    def stop(self) -> None:
        """Stop for good (the acknowledgement came, or the dialog ended otherwise)."""
        timers = self._timers
        if timers is not None:
            timers.cancel(self, "_next_timer")
            timers.cancel(self, "_timeout_timer")
        self._timers = self._clock = self._send = self._response = self._on_timeout = None


class TwoXXRetransmitter(_Retransmitter):
    """The UAS core's retransmission of a 2xx to INVITE until the ACK (RFC 3261 13.3.1.4).

    Created when the 2xx is first sent (the server transaction sends that one;
    ``send_first=True`` sends it here instead).  Sends ``response`` again at T1,
    then at intervals doubling up to T2 (T1, 2*T1, 4*T1 ... T2, T2 ...), also over
    reliable transports (see the module docstring).  :meth:`ack_received` stops it.
    If 64*T1 seconds pass without ACK it stops and calls ``on_timeout``: "the
    dialog is confirmed, but the session SHOULD be terminated.  This is
    accomplished with a BYE" - the TU sends that BYE.
    """

    __slots__ = ()

    def __init__(
        self,
        clock: Clock,
        send: Callable[[Response], object],
        response: Response,
        t1: float = T1,
        t2: float = T2,
        on_timeout: Callable[[], object] | None = None,
        *,
        send_first: bool = False,
        scheduler: Timers | None = None,
    ) -> None:
        super().__init__(clock, send, response, t1, t2, on_timeout, send_first, scheduler)

    def ack_received(self) -> None:
        """The ACK for the 2xx arrived: retransmissions cease (see :func:`ack_matches`)."""
        self.stop()


class ReliableProvisionalRetransmitter(_Retransmitter):
    """The UAS core's retransmission of a reliable 1xx until its PRACK (RFC 3262 3).

    "The reliable provisional response is passed to the transaction layer
    periodically with an interval that starts at T1 seconds and doubles for each
    retransmission (note that this is different from the retransmission of 2xx
    responses, which are capped at T2 seconds)."  After 64*T1 without PRACK it
    stops and calls ``on_timeout``: the UAS SHOULD reject the request with a 5xx.
    :meth:`prack_received` (or sending a final response) stops it.
    """

    __slots__ = ()

    def __init__(
        self,
        clock: Clock,
        send: Callable[[Response], object],
        response: Response,
        t1: float = T1,
        on_timeout: Callable[[], object] | None = None,
        *,
        send_first: bool = False,
        scheduler: Timers | None = None,
    ) -> None:
        super().__init__(clock, send, response, t1, None, on_timeout, send_first, scheduler)

    def prack_received(self) -> None:
        """The matching PRACK arrived: retransmissions cease."""
        self.stop()


def ack_matches(response: Response, request: Request) -> bool:
    """True when ``request`` is the ACK for the 2xx ``response`` we sent.

    Same Call-ID, From tag, To tag and CSeq number (method ACK): the dialog and
    the INVITE the 2xx answered (RFC 3261 13.2.2.4 and 17.2.3 for ACK of 2xx).
    """
    if request.method != "ACK":
        return False
    return (
        request.cseq.number == response.cseq.number
        and request.call_id == response.call_id
        and request.from_tag == response.from_tag
        and request.to_tag == response.to_tag
    )


__all__ = [
    "T1",
    "T2",
    "ReliableProvisionalRetransmitter",
    "TwoXXRetransmitter",
    "ack_matches",
]
