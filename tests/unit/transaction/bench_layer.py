"""Load benchmark of the transaction layer alone: what finished calls leave, what timers cost.

Not a test (pytest does not collect it).  Run with::

    .venv/bin/python tests/unit/transaction/bench_layer.py [--rate 1000] [--seconds 40]

It drives B2BUA-shaped calls (INVITE in, INVITE out, 100/180/200, both ACKs, BYE in,
BYE out, both answered: four transactions per call) through a ``TransactionLayer``
whose clock is a real, never-run Twisted reactor with a simulated time, so every
timer goes through the reactor's heap exactly as in production.  Calls start at
``--rate`` per simulated second; the reactor's ``runUntilCurrent`` runs every
millisecond of simulated time.  It prints the CPU spent inside the layer and the
reactor's timer code (message parsing excluded), the GC-tracked objects left per
lingering call, and how long one full collection takes at the end.

Lingering transactions become ghosts (b2bua.transaction.ghosts) T1 after their
final response: the calls of the last T1 are what is still tracked at the end.
Their objects are freed then, inside the timed timer code; before ghosts they
were freed at Timer L/M/J/K, after the end of a 40 s run for most calls, so
compare CPU figures over runs well past 32 s (``--seconds 100``).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import Counter
from typing import Any

from twisted.internet.selectreactor import SelectReactor

from b2bua.sip import Address, Origin, Request, Response, parse_message, response_for
from b2bua.transaction import ClientTransaction, ServerTransaction, TransactionLayer

ALICE = Address("UDP", "192.0.2.10", 5060)
US = Address("UDP", "198.51.100.1", 5060)
BOB = Address("UDP", "203.0.113.20", 5060)
FROM_ALICE = Origin(ALICE, US)
FROM_BOB = Origin(BOB, US)

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def request_bytes(
    method: str, n: int, branch: str, via: str, call_id: str, cseq: int, to_tag: str = ""
) -> bytes:
    """A request as a phone would send it (an INVITE carries SDP)."""
    body = SDP if method == "INVITE" else b""
    lines = [
        f"{method} sip:bob@biloxi.example.com SIP/2.0",
        f"Via: SIP/2.0/UDP {via};branch={branch}{n}",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"From: Alice <sip:alice@atlanta.example.com>;tag=f{n}",
        f"Call-ID: {call_id}{n}@atlanta.example.com",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@pc33.atlanta.example.com>",
        "User-Agent: bench",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def far_reply(request: Request, status: int) -> Response:
    """The far end's response to a request we sent, as received (serialized, parsed)."""
    response = response_for(request, status, to_tag=None if status == 100 else "b0b")
    message = parse_message(response.to_bytes())
    assert isinstance(message, Response)
    return message


class NullTransport:
    """Serializes what it is given, as the real transport does, and drops it."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0

    def send_request(self, request: Request, destination: Address, /) -> None:
        self.sent += len(request.to_bytes())

    def send_response(self, response: Response, origin: Origin, /) -> None:
        self.sent += len(response.to_bytes())


class ServerTU:
    """The layer's TU: remembers the last server transaction it was given."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: ServerTransaction | None = None

    def request_received(self, tx: ServerTransaction, request: Request, /) -> None:
        self.last = tx

    def ack_received(self, request: Request, origin: Origin, /) -> None:
        pass

    def cancel_received(self, tx: ServerTransaction, cancel: Request, /) -> None:
        pass

    def stray_response_received(self, response: Response, /) -> None:
        pass

    def server_transaction_failed(self, tx: ServerTransaction, failure: object, /) -> None:
        pass


class Leg:
    """A client TU like the bridge's Attempt (no ``transaction_terminated``)."""

    __slots__ = ()

    def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
        pass


class Relay:
    """A client TU like the bridge's in-dialog relay (with ``transaction_terminated``)."""

    __slots__ = ()

    def response_received(self, tx: ClientTransaction, response: Response, /) -> None:
        pass

    def transaction_terminated(self, tx: ClientTransaction) -> None:
        pass


class Bench:
    """The layer on a reactor whose clock is simulated."""

    def __init__(self) -> None:
        self.now = 1000.0
        reactor = self.reactor = SelectReactor()
        reactor.seconds = self.seconds  # type: ignore[method-assign]
        self.tu = ServerTU()
        self.layer = TransactionLayer(reactor, NullTransport(), self.tu)
        self.cpu = 0.0

    def seconds(self) -> float:
        return self.now

    def call(self, n: int) -> None:
        """One whole call; only the layer's own work is timed."""
        layer, tu, clock = self.layer, self.tu, time.perf_counter
        invite = parse_request(request_bytes("INVITE", n, "z9hG4bKa", "192.0.2.10", "a", 1))
        out = parse_request(request_bytes("INVITE", n, "z9hG4bKb", "198.51.100.1", "b", 1))
        t = clock()
        layer.message_received(invite, FROM_ALICE)
        a_tx = tu.last
        assert a_tx is not None
        b_tx = layer.send_request(out, BOB, Leg())
        self.cpu += clock() - t
        msgs = [far_reply(out, 100), far_reply(out, 180)]
        t = clock()
        for m in msgs:
            layer.message_received(m, FROM_BOB)
        self.cpu += clock() - t
        ringing = response_for(invite, 180, to_tag="a0a")
        ok = far_reply(out, 200)
        a_ok = response_for(invite, 200, to_tag="a0a")
        a_ok.body = SDP
        t = clock()
        a_tx.respond(ringing)
        layer.message_received(ok, FROM_BOB)
        a_tx.respond(a_ok)
        self.cpu += clock() - t
        b_ack = parse_request(request_bytes("ACK", n, "z9hG4bKc", "198.51.100.1", "b", 1, "b0b"))
        a_ack = parse_request(request_bytes("ACK", n, "z9hG4bKd", "192.0.2.10", "a", 1, "a0a"))
        a_bye = parse_request(request_bytes("BYE", n, "z9hG4bKe", "192.0.2.10", "a", 2, "a0a"))
        b_bye = parse_request(request_bytes("BYE", n, "z9hG4bKf", "198.51.100.1", "b", 2, "b0b"))
        t = clock()
        layer.send_ack(b_ack, BOB)
        layer.message_received(a_ack, FROM_ALICE)
        layer.message_received(a_bye, FROM_ALICE)
        bye_tx = tu.last
        assert bye_tx is not None and bye_tx is not a_tx
        layer.send_request(b_bye, BOB, Relay())
        self.cpu += clock() - t
        bye_ok = far_reply(b_bye, 200)
        a_bye_ok = response_for(a_bye, 200)
        t = clock()
        layer.message_received(bye_ok, FROM_BOB)
        bye_tx.respond(a_bye_ok)
        self.cpu += clock() - t
        tu.last = None
        assert b_tx.state.value == "Accepted"

    def run_until(self, when: float) -> None:
        """Advance simulated time to ``when``, running due timers (timed)."""
        self.now = when
        t = time.perf_counter()
        self.reactor.runUntilCurrent()
        self.cpu += time.perf_counter() - t


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="calls per simulated second")
    parser.add_argument("--seconds", type=float, default=40.0, help="simulated seconds")
    parser.add_argument("--census", action="store_true", help="print what is left, by type")
    args = parser.parse_args(argv)
    bench = Bench()
    for n in range(200):  # warm up caches and lazy imports, then let it all expire
        bench.call(-n - 1)
    bench.run_until(bench.now + 100)
    bench.cpu = 0.0
    base = tracked()
    census = Counter(type(o).__qualname__ for o in gc.get_objects()) if args.census else None
    gc.disable()
    start = bench.now
    total = int(args.rate * args.seconds)
    step = 1.0 / args.rate
    wall = time.perf_counter()
    for n in range(total):
        bench.call(n)
        bench.run_until(start + (n + 1) * step)
    wall = time.perf_counter() - wall
    gc.enable()
    layer = bench.layer
    lingering = layer.client_count + layer.server_count
    ghosts = sum(isinstance(v, dict) for v in (*layer._clients.values(), *layer._servers.values()))
    after = tracked()
    t = time.perf_counter()
    gc.collect()
    full_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    for _ in range(10):
        pending = layer.pending_count
    pending_us = (time.perf_counter() - t) / 10 * 1e6
    calls = min(total, int(args.rate * 64 * layer.timers.t1))
    result = {
        "calls": total,
        "layer+timer CPU us/call": bench.cpu / total * 1e6,
        "wall us/call (incl. parsing)": wall / total * 1e6,
        "lingering transactions": lingering,
        "of which ghosts": ghosts,
        "pending DelayedCalls": len(bench.reactor.getDelayedCalls()),
        "tracked objects left": after - base,
        "tracked objects per lingering call": (after - base) / calls,
        "tracked objects per lingering transaction": (after - base) / max(lingering, 1),
        "full collection ms": full_ms,
        f"pending_count us (= {pending})": pending_us,
    }
    if census is not None:
        left = Counter(type(o).__qualname__ for o in gc.get_objects()) - census
        for name, count in left.most_common(20):
            print(f"{count:>10} {name}")
    for key, value in result.items():
        print(f"{key:>42}: {value:.1f}" if isinstance(value, float) else f"{key:>42}: {value}")
    return result


if __name__ == "__main__":
    main()
