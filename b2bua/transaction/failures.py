"""How the layer reports timeouts and transport errors, and misuse by a TU.

A client transaction that times out (Timer B or F) or whose request cannot be
sent hands its TU a :class:`SynthesizedResponse` (408 or 503, RFC 3261 8.1.3.1)
through the ordinary ``response_received`` callback, so a simple TU treats it as
any final response; failover logic tells it apart with ``isinstance`` or by
reading ``response.failure`` / ``tx.failure``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..sip import Request, Response, response_for

__all__ = [
    "FailureKind",
    "SynthesizedResponse",
    "TransactionFailure",
    "TransactionStateError",
]


class FailureKind(enum.Enum):
    """Why a transaction failed: no answer in time, or the transport could not deliver."""

    TIMEOUT = "timeout"
    TRANSPORT = "transport"


@dataclass(frozen=True, slots=True)
class TransactionFailure:
    """A transaction failure: its kind and a human-readable reason (for logs and CDRs)."""

    kind: FailureKind
    reason: str

    @property
    def is_timeout(self) -> bool:
        """True for timer expiries (B, F, H, or 64*T1 after a CANCEL)."""
        return self.kind is FailureKind.TIMEOUT

    @property
    def is_transport_error(self) -> bool:
        """True when the transport reported it could not send a message."""
        return self.kind is FailureKind.TRANSPORT

    @property
    def status(self) -> int:
        """The status of the response synthesized for it: 408 (timeout) or 503 (transport)."""
        return 408 if self.kind is FailureKind.TIMEOUT else 503


class SynthesizedResponse(Response):
    """A final response made up by the layer, not received: 408 on timeout, 503 on transport error.

    Built from the request as RFC 3261 8.2.6.2 builds any response (Via, From, To,
    Call-ID and CSeq copied), so code that reads a response reads this one too.
    """

    __slots__ = ("failure",)

    failure: TransactionFailure

    def __init__(self, request: Request, failure: TransactionFailure) -> None:
        base = response_for(request, failure.status)
        super().__init__(base.status, base.reason, base.headers)
        self.failure = failure

    def __repr__(self) -> str:
        return f"<SynthesizedResponse {self.status} {self.reason} ({self.failure.reason})>"


class TransactionStateError(Exception):
    """A TU asked a transaction for something its state forbids (a second final response...)."""
