"""RFC 3261 timer values (section 17, table 4) and RFC 6026 timers L and M, from T1, T2, T4.

:class:`TimerConfig` is the configuration (frozen, validated); its ``timer_*``
properties give each timer's value on an unreliable transport, the column of
RFC 3261 table 4 that depends only on T1, T2 and T4.  The layer asks
:meth:`TimerConfig.for_transport` once per transport kind for a
:class:`TransportTimers`, where the retransmission timers are ``None`` on reliable
transports (nothing is retransmitted over TCP/TLS) and the "wait for
retransmissions" timers D, I, J and K are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TimerConfig", "TransportTimers"]

#: RFC 3261 17.1.1.2: Timer D is "at least 32 seconds" on unreliable transports.
TIMER_D_MINIMUM = 32.0


@dataclass(frozen=True, slots=True)
class TransportTimers:
    """Every timer's value for one kind of transport (seconds).

    ``a``, ``e`` and ``g`` (the first retransmission intervals) are ``None`` on
    reliable transports: requests and responses are never retransmitted there.
    ``t2`` caps the doubling of E and G.  ``trying_delay`` is how long an INVITE
    server transaction waits for the TU before sending 100 Trying itself.
    """

    reliable: bool
    t2: float
    a: float | None
    b: float
    d: float
    e: float | None
    f: float
    g: float | None
    h: float
    i: float
    j: float
    k: float
    l: float  # noqa: E741 - the RFC's name
    m: float
    trying_delay: float


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (maximum retransmit interval), T4 (network lifetime) in seconds.

    Every transaction timer derives from these three (RFC 3261 section 17, table 4).
    ``trying_delay`` is how long the INVITE server transaction gives its TU to
    answer before it sends 100 Trying itself (RFC 3261 17.2.1 allows up to 200 ms);
    the default, 0, sends 100 Trying at once, before the TU sees the INVITE.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float = 0.0
    #: timers fire on multiples of this many seconds (at most that late), so timers
    #: due close together share one wake-up; 0 fires each at its deadline
    resolution: float = 0.0

    def __post_init__(self) -> None:
        if not self.t1 > 0:
            raise ValueError(f"T1 must be positive, not {self.t1!r}")
        if not self.t2 >= self.t1:
            raise ValueError(f"T2 ({self.t2!r}) must be at least T1 ({self.t1!r})")
        if not self.t4 > 0:
            raise ValueError(f"T4 must be positive, not {self.t4!r}")
        if not 0 <= self.resolution <= 0.1:
            raise ValueError(f"resolution must be between 0 and 0.1 s, not {self.resolution!r}")
        if not 0 <= self.trying_delay <= 0.2:
            raise ValueError(
                f"trying_delay must be between 0 and 0.2 s (RFC 3261 17.2.1), "
                f"not {self.trying_delay!r}"
            )

    @property
    def timer_a(self) -> float:
        """INVITE request retransmit interval, first value (T1; doubles without cap)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Wait time for response retransmits in the INVITE client's Completed state.

        RFC 3261 asks for at least 32 s; it is 64*T1 when that is longer, so the
        client outlives the server's Timer H whatever T1 is.
        """
        return max(TIMER_D_MINIMUM, 64 * self.t1)

    @property
    def timer_e(self) -> float:
        """Non-INVITE request retransmit interval, first value (T1; doubles up to T2)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout (64*T1)."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """INVITE final response retransmit interval, first value (T1; doubles up to T2)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for ACK receipt (64*T1)."""
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        """Wait time for ACK retransmits in the INVITE server's Confirmed state (T4)."""
        return self.t4

    @property
    def timer_j(self) -> float:
        """Wait time for non-INVITE request retransmits (64*T1)."""
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        """Wait time for non-INVITE response retransmits (T4)."""
        return self.t4

    @property
    def timer_l(self) -> float:
        """RFC 6026: wait time in the INVITE server's Accepted state (64*T1)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026: wait time for 2xx retransmits in the INVITE client's Accepted state."""
        return 64 * self.t1

    def for_transport(self, reliable: bool) -> TransportTimers:
        """The timer values for a reliable (TCP, TLS, SCTP, WS) or unreliable (UDP) transport."""
        if reliable:
            return TransportTimers(
                reliable=True,
                t2=self.t2,
                a=None,
                b=self.timer_b,
                d=0.0,
                e=None,
                f=self.timer_f,
                g=None,
                h=self.timer_h,
                i=0.0,
                j=0.0,
                k=0.0,
                l=self.timer_l,
                m=self.timer_m,
                trying_delay=self.trying_delay,
            )
        return TransportTimers(
            reliable=False,
            t2=self.t2,
            a=self.timer_a,
            b=self.timer_b,
            d=self.timer_d,
            e=self.timer_e,
            f=self.timer_f,
            g=self.timer_g,
            h=self.timer_h,
            i=self.timer_i,
            j=self.timer_j,
            k=self.timer_k,
            l=self.timer_l,
            m=self.timer_m,
            trying_delay=self.trying_delay,
        )
