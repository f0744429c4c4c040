"""Test doubles and SIP messages for the transaction layer tests.

- :class:`RecordingTransport`: the in-memory transport; records what the layer sends.
- :class:`RecordingTU` and :class:`RecordingUser`: record every callback.
- ``make_request`` / ``reply``: realistic messages, parsed from wire bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.task import Clock

from b2bua.sip import Address, Origin, Request, Response, parse_message, response_for
from b2bua.transaction import (
    ClientTransaction,
    ServerTransaction,
    TimerConfig,
    TransactionFailure,
    TransactionLayer,
    TransactionState,
)

# Addresses from the documentation ranges (RFC 5737).
ALICE_UDP = Address("UDP", "192.0.2.10", 5060)
ALICE_TCP = Address("TCP", "192.0.2.10", 49152)
US_UDP = Address("UDP", "198.51.100.1", 5060)
US_TCP = Address("TCP", "198.51.100.1", 5060)
BOB_UDP = Address("UDP", "203.0.113.20", 5060)
BOB_TCP = Address("TCP", "203.0.113.20", 5060)

FROM_ALICE_UDP = Origin(ALICE_UDP, US_UDP)
FROM_ALICE_TCP = Origin(ALICE_TCP, US_TCP, connection=7)
FROM_BOB_UDP = Origin(BOB_UDP, US_UDP)
FROM_BOB_TCP = Origin(BOB_TCP, US_TCP, connection=9)

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK776asdhds",
    transport: str = "UDP",
    via_host: str = "pc33.atlanta.example.com",
    uri: str = "sip:bob@biloxi.example.com",
    cseq: int = 314159,
    cseq_method: str | None = None,
    call_id: str = "a84b4c76e66710@pc33.atlanta.example.com",
    from_tag: str = "1928301774",
    to_tag: str | None = None,
    routes: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    body: bytes = b"",
) -> Request:
    """A request as it arrives on the wire (RFC 3261 section 4 style), parsed."""
    via = f"Via: SIP/2.0/{transport} {via_host}"
    if branch is not None:
        via += f";branch={branch}"
    lines = [
        f"{method} {uri} SIP/2.0",
        via,
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        *(f"Route: {r}" for r in routes),
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        *extra,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def wire(message: Request | Response) -> Request | Response:
    """The message as the far end would receive it: serialized and parsed again."""
    return parse_message(message.to_bytes())


def reply(request: Request, status: int, to_tag: str | None = "a6c85cf") -> Response:
    """A response from the far end to ``request`` (which we sent), as received."""
    response = response_for(request, status, to_tag=None if status == 100 else to_tag)
    if 200 <= status < 300 and request.method == "INVITE":
        response.headers.add("Contact", "<sip:bob@192.0.2.4>")
    parsed = wire(response)
    assert isinstance(parsed, Response)
    return parsed


def answer(request: Request, status: int, to_tag: str | None = "b0b5ta9") -> Response:
    """A response our TU builds for a request it received."""
    return response_for(request, status, to_tag=None if status == 100 else to_tag)


@dataclass
class RecordingTransport:
    """The in-memory transport: remembers every message handed to it, in order."""

    sent: list[tuple[Request | Response, Address | Origin]] = field(default_factory=list)
    on_send: Callable[[Request | Response, Address | Origin], None] | None = None

    def send_request(self, request: Request, destination: Address, /) -> None:
        self.sent.append((request, destination))
        if self.on_send is not None:
            self.on_send(request, destination)

    def send_response(self, response: Response, origin: Origin, /) -> None:
        self.sent.append((response, origin))
        if self.on_send is not None:
            self.on_send(response, origin)

    def requests(self, method: str | None = None) -> list[Request]:
        """Requests sent, optionally only those of one method."""
        return [
            m
            for m, _ in self.sent
            if isinstance(m, Request) and (method is None or m.method == method)
        ]

    def responses(self, status: int | None = None) -> list[Response]:
        """Responses sent, optionally only those with one status."""
        return [
            m
            for m, _ in self.sent
            if isinstance(m, Response) and (status is None or m.status == status)
        ]

    def statuses(self) -> list[int]:
        """The status of every response sent, in order."""
        return [r.status for r in self.responses()]

    def methods(self) -> list[str]:
        """The method of every request sent, in order."""
        return [r.method for r in self.requests()]

    def clear(self) -> None:
        self.sent.clear()


@dataclass
class RecordingUser:
    """A client transaction user: records responses and terminations."""

    responses: list[tuple[ClientTransaction, Response]] = field(default_factory=list)
    terminated: list[ClientTransaction] = field(default_factory=list)
    on_response: Callable[[ClientTransaction, Response], None] | None = None

    def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
        self.responses.append((tx, response))
        if self.on_response is not None:
            self.on_response(tx, response)

    def transaction_terminated(self, tx: ClientTransaction) -> None:
        self.terminated.append(tx)

    def statuses(self) -> list[int]:
        return [r.status for _, r in self.responses]


@dataclass
class RecordingTU:
    """The layer's transaction user: records every callback as an event tuple."""

    events: list[tuple[object, ...]] = field(default_factory=list)
    on_request: Callable[[ServerTransaction, Request], None] | None = None

    def request_received(self, tx: ServerTransaction, request: Request, /) -> None:
        self.events.append(("request", tx, request))
        if self.on_request is not None:
            self.on_request(tx, request)

    def ack_received(self, request: Request, origin: Origin, /) -> None:
        self.events.append(("ack", request, origin))

    def cancel_received(self, tx: ServerTransaction, cancel: Request, /) -> None:
        self.events.append(("cancel", tx, cancel))

    def stray_response_received(self, response: Response, /) -> None:
        self.events.append(("stray", response))

    def server_transaction_failed(
        self, tx: ServerTransaction, failure: TransactionFailure, /
    ) -> None:
        self.events.append(("failed", tx, failure))

    def kinds(self) -> list[object]:
        return [e[0] for e in self.events]

    def server_txs(self) -> list[ServerTransaction]:
        return [e[1] for e in self.events if e[0] == "request"]  # type: ignore[misc]


@dataclass
class Harness:
    """A layer wired to a Clock, a recording transport and a recording TU."""

    clock: Clock
    transport: RecordingTransport
    tu: RecordingTU
    layer: TransactionLayer

    def feed(self, message: Request | Response, origin: Origin = FROM_BOB_UDP) -> None:
        """Deliver a received message to the layer, as the transport would."""
        self.layer.message_received(message, origin)

    def assert_idle(self) -> None:
        """No transaction, no index entry, no timer left: nothing leaked."""
        layer = self.layer
        assert layer.client_count == 0
        assert layer.server_count == 0
        assert layer._clients == {}
        assert layer._servers == {}
        assert layer._merged == {}
        assert layer.pending_count == 0
        assert self.clock.getDelayedCalls() == []

    def check_pending(self) -> None:
        """The O(1) pending count agrees with the states of the live transactions
        (ghosts, the dicts that stand for lingering transactions, are never pending)."""
        pending = (TransactionState.CALLING, TransactionState.TRYING, TransactionState.PROCEEDING)
        live = [*self.layer._clients.values(), *self.layer._servers.values()]
        assert self.layer.pending_count == sum(
            1 for tx in live if not isinstance(tx, dict) and tx.state in pending
        )


def make_harness(timers: TimerConfig | None = None) -> Harness:
    clock = Clock()
    transport = RecordingTransport()
    tu = RecordingTU()
    return Harness(clock, transport, tu, TransactionLayer(clock, transport, tu, timers))


def outgoing_invite(**kw: object) -> Request:
    """An INVITE our TU sends (to Bob), with Via for our address and a Route set."""
    defaults: dict[str, object] = {
        "branch": None,
        "via_host": "198.51.100.1:5060",
        "call_id": "3848276298220188511@198.51.100.1",
        "from_tag": "9fxced76sl",
        "routes": ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"),
        "body": SDP,
    }
    defaults.update(kw)
    return make_request("INVITE", **defaults)  # type: ignore[arg-type]


def outgoing(method: str, **kw: object) -> Request:
    """A non-INVITE request our TU sends."""
    defaults: dict[str, object] = {
        "branch": None,
        "via_host": "198.51.100.1:5060",
        "call_id": "c0ffee@198.51.100.1",
        "from_tag": "9fxced76sl",
        "cseq": 1,
    }
    defaults.update(kw)
    return make_request(method, **defaults)  # type: ignore[arg-type]


def send_times(h: Harness, method: str, until: float, step: float = 0.25) -> list[float]:
    """Advance the clock to ``until``; the times at which ``method`` requests went out."""
    times: list[float] = []
    seen = len(h.transport.requests(method))
    while h.clock.seconds() < until:
        h.clock.advance(step)
        now = len(h.transport.requests(method))
        times.extend([h.clock.seconds()] * (now - seen))
        seen = now
    return times


def response_times(h: Harness, status: int, until: float, step: float = 0.25) -> list[float]:
    """Advance the clock to ``until``; the times at which ``status`` responses went out."""
    times: list[float] = []
    seen = len(h.transport.responses(status))
    while h.clock.seconds() < until:
        h.clock.advance(step)
        now = len(h.transport.responses(status))
        times.extend([h.clock.seconds()] * (now - seen))
        seen = now
    return times


def run_call(h: Harness, reliable: bool) -> None:
    """A bridged call: Alice's INVITE in, an INVITE out to Bob, answered, ACKed, hung up."""
    a_origin = FROM_ALICE_TCP if reliable else FROM_ALICE_UDP
    b_dest, b_origin = (BOB_TCP, FROM_BOB_TCP) if reliable else (BOB_UDP, FROM_BOB_UDP)
    transport = "TCP" if reliable else "UDP"

    # A leg: INVITE in.
    a_invite = make_request("INVITE", transport=transport, body=SDP)
    h.feed(a_invite, a_origin)
    [a_tx] = h.tu.server_txs()
    # B leg: INVITE out.
    b_user = RecordingUser()
    b_tx = h.layer.send_request(outgoing_invite(), b_dest, b_user)
    assert (h.layer.server_count, h.layer.client_count) == (1, 1)
    h.feed(reply(b_tx.request, 100), b_origin)
    h.feed(reply(b_tx.request, 180), b_origin)
    a_tx.respond(answer(a_invite, 180))
    ok = reply(b_tx.request, 200)
    h.feed(ok, b_origin)
    a_tx.respond(answer(a_invite, 200))
    # The TUs ACK the 2xx outside any transaction.
    b_ack = outgoing("ACK", cseq=b_tx.request.cseq.number, to_tag=ok.to_tag)
    h.layer.send_ack(b_ack, b_dest)
    a_ack = make_request("ACK", transport=transport, branch="z9hG4bKack2xx", to_tag="b0b5ta9")
    h.feed(a_ack, a_origin)
    assert h.tu.events[-1] == ("ack", a_ack, a_origin)
    # The 2xx retransmitted by Bob reaches the B-leg user again (RFC 6026 Accepted).
    h.feed(reply(b_tx.request, 200), b_origin)
    assert b_user.statuses() == [100, 180, 200, 200]
    # Alice hangs up: BYE in, BYE out.
    a_bye = make_request(
        "BYE", transport=transport, branch="z9hG4bKbye", cseq=314160, to_tag="b0b5ta9"
    )
    h.feed(a_bye, a_origin)
    bye_tx = h.tu.server_txs()[-1]
    bye_user = RecordingUser()
    b_bye = h.layer.send_request(
        outgoing("BYE", cseq=2, to_tag=ok.to_tag, call_id=b_tx.request.call_id),
        b_dest,
        bye_user,
    )
    h.feed(reply(b_bye.request, 200), b_origin)
    bye_tx.respond(answer(a_bye, 200))
    assert bye_user.statuses() == [200]
