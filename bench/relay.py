"""The runtime's floor: a relay that passes a call's datagrams on without reading them.

Usage: ``PYTHON bench/relay.py --loop twisted|raw --listen HOST:PORT --callee HOST:PORT``

``calls.py --floor`` runs it in the server's place, under the same SIPp load, to show
how much of the server's CPU per call is the cost of merely receiving and sending the
call's datagrams in this interpreter: no parsing, no transactions, no dialogs. A
datagram from a caller goes to the callee; one from the callee goes back to the
caller that sent the same Call-ID (the only bytes it looks at), so SIPp sees its own
messages relayed and every call completes. Per call that is 6 datagrams in and 6 out
(SIPp's callee sends no 100); the server handles 6 in and 7 out.

- ``--loop twisted``: Twisted's default reactor and ``listenUDP``, as the server runs,
  sending with the server's own ``b2bua.transport.manager.send_datagram``.
- ``--loop raw``: a bare ``select.epoll`` loop, reading each socket until it would
  block: what any CPython process pays, with no event-loop framework at all.

It exits on SIGTERM or SIGINT. The caller table keeps at most ``MAX_CALLS`` Call-IDs
(the oldest go first), so a long run cannot grow it without bound.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

MAX_CALLS = 100_000
MAX_DATAGRAM = 65_535
Address = tuple[str, int]


def call_id(data: bytes) -> bytes:
    """The Call-ID header's value as SIPp writes it (``Call-ID: value``), or b''."""
    start = data.find(b"\nCall-ID:")
    if start < 0:
        return b""
    end = data.find(b"\r", start + 9)
    return data[start + 9 : end].strip()


class Relay:
    """Where each datagram goes: callers by Call-ID, the callee fixed."""

    def __init__(self, callee: Address) -> None:
        self.callee = callee
        self.callers: dict[bytes, Address] = {}

    def from_caller(self, data: bytes, addr: Address) -> Address:
        callers = self.callers
        callers[call_id(data)] = addr
        if len(callers) > MAX_CALLS:
            del callers[next(iter(callers))]
        return self.callee

    def from_callee(self, data: bytes) -> Address | None:
        return self.callers.get(call_id(data))


def run_twisted(relay: Relay, listen: Address) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import DatagramProtocol

    from b2bua.transport.manager import send_datagram

    class Side(DatagramProtocol):
        def __init__(self, route: Callable[[bytes, Address], Address | None]) -> None:
            self.route = route
            self.other: Side | None = None

        def datagramReceived(self, datagram: bytes, addr: Address) -> None:
            to = self.route(datagram, addr)
            if to is not None and self.other is not None:
                send_datagram(self.other.transport, datagram, to)

    callers = Side(relay.from_caller)
    callee = Side(lambda data, _addr: relay.from_callee(data))
    callers.other, callee.other = callee, callers
    reactor.listenUDP(listen[1], callers, interface=listen[0])  # type: ignore[attr-defined]
    reactor.listenUDP(0, callee, interface=listen[0])  # type: ignore[attr-defined]
    reactor.run()


def run_raw(relay: Relay, listen: Address) -> None:
    outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outside.bind(listen)
    inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inside.bind((listen[0], 0))
    poller = select.epoll()
    for sock in (outside, inside):
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
    stopping = []

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    outside_fd = outside.fileno()
    while not stopping:
        try:
            events = poller.poll(1.0)
        except InterruptedError:
            continue
        for fd, _mask in events:
            sock = outside if fd == outside_fd else inside
            while True:
                try:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    break
                if sock is outside:
                    inside.sendto(data, relay.from_caller(data, addr))
                elif (to := relay.from_callee(data)) is not None:
                    outside.sendto(data, to)


def address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["twisted", "raw"], default="twisted")
    parser.add_argument("--listen", type=address, required=True, help="HOST:PORT for callers")
    parser.add_argument("--callee", type=address, required=True, help="HOST:PORT to relay to")
    args = parser.parse_args()
    relay = Relay(args.callee)
    if args.loop == "twisted":
        run_twisted(relay, args.listen)
    else:
        run_raw(relay, args.listen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
