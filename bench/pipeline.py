"""Calls through the whole server in one process, without sockets: CPU and objects per call.

The real :class:`b2bua.service.B2BUAService` (config, plugins, transport manager,
transaction layer, UAS core, call manager) runs on a fake reactor: a
``twisted.internet.task.Clock`` whose ``listenUDP`` returns a port that records
what the server writes.  A caller and a callee written in plain bytes handling
(SIPp's ``uac`` and ``uas`` scenarios: INVITE, 100, 180, 200, ACK, BYE, 200)
feed it datagrams exactly as the UDP protocol would (``datagramReceived``) and
answer what it sends.  Simulated time advances in 1-ms steps, so calls start at
``--rate`` per simulated second and finished transactions linger their 64*T1 as
in production; the garbage collector sees the same heap as the real server.

Only the server's work is timed (``datagramReceived`` and the clock's timers);
the peers' is not.  Deterministic and quick, this is the figure to iterate on;
``calls.py`` measures the real thing over loopback.

    .venv/bin/python bench/pipeline.py                       # 20,000 calls at 1,000/s
    .venv/bin/python bench/pipeline.py --calls 5000 --profile 25
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import heapq
import io
import os
import platform
import pstats
import resource
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import globalLogBeginner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gcwrap import GCTimer  # noqa: E402  (bench/, beside this script)

from b2bua.config import parse_config  # noqa: E402
from b2bua.logs import make_observer, set_floor  # noqa: E402
from b2bua.plugin import load_plugins  # noqa: E402
from b2bua.service import B2BUAService  # noqa: E402

SERVER = ("127.0.0.1", 5060)
CALLER = ("127.0.0.2", 5061)
CALLEE = ("127.0.0.3", 5062)

CONFIG = f"""
[[listen]]
transport = "udp"
host = "{SERVER[0]}"
port = {SERVER[1]}

[logging]
level = "info"
sip_trace = false

[[plugin]]
module = "static_routes"
[[plugin.route]]
targets = ["sip:{CALLEE[0]}:{CALLEE[1]}"]
"""

SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class FakePort:
    """What ``listenUDP`` returns: ``write`` appends to the outbox."""

    socket = None

    def __init__(self, outbox: deque[tuple[bytes, tuple[str, int]]]) -> None:
        self.outbox = outbox

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.outbox.append((data, addr))

    def stopListening(self) -> None:
        pass

    def getHost(self) -> Any:
        from twisted.internet.address import IPv4Address

        return IPv4Address("UDP", *SERVER)


class FakeReactor:
    """Twisted's own reactor on simulated time, never run: ``advance`` runs what is due.

    Timers go through the real reactor's ``callLater`` and ``runUntilCurrent`` (the
    same DelayedCall heap production pays for); ``listenUDP`` returns a port whose
    writes land in :attr:`outbox`.
    """

    def __init__(self) -> None:
        from twisted.internet import reactor

        self.now = 0.0
        self._reactor: Any = reactor
        reactor.seconds = self.seconds  # DelayedCalls read the time through this
        self.callLater = reactor.callLater
        self.outbox: deque[tuple[bytes, tuple[str, int]]] = deque()
        self.protocol: Any = None

    def seconds(self) -> float:
        return self.now

    def advance(self, step: float) -> None:
        self.now += step
        self._reactor.runUntilCurrent()

    def callWhenRunning(self, f: Any, *args: Any, **kw: Any) -> None:
        """Never: this reactor is never run (the server's signal handling stays out)."""

    def listenUDP(self, port: int, protocol: Any, interface: str = "", **kw: Any) -> FakePort:
        self.protocol = protocol
        return FakePort(self.outbox)

    def resolve(self, name: str, timeout: Any = None) -> Any:
        raise AssertionError(f"the benchmark resolves no names ({name})")


def head_fields(data: bytes) -> tuple[bytes, dict[bytes, list[bytes]]]:
    """The start line and the header lines by lower-case name (values as on the wire)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], fields


def response(status: bytes, fields: dict[bytes, list[bytes]], extra: bytes, body: bytes) -> bytes:
    """A response echoing Via, From, To, Call-ID, CSeq (RFC 3261 8.2.6.2)."""
    vias = b"".join(b"Via: " + v + b"\r\n" for v in fields[b"via"])
    return (
        b"SIP/2.0 " + status + b"\r\n" + vias
        + b"From: " + fields[b"from"][0] + b"\r\n"
        + b"To: " + fields[b"to"][0] + extra + b"\r\n"
        + b"Call-ID: " + fields[b"call-id"][0] + b"\r\n"
        + b"CSeq: " + fields[b"cseq"][0] + b"\r\n"
        + b"Contact: <sip:%s:%d;transport=udp>\r\n" % (CALLEE[0].encode(), CALLEE[1])
        + (b"Content-Type: application/sdp\r\n" if body else b"")
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


class Peers:
    """SIPp's uac (caller) and uas (callee) in bytes: enough to complete basic calls."""

    def __init__(self, call_s: float, push: Callable[[float, bytes, tuple[str, int]], None]):
        self.call_s = call_s
        self.push = push
        self.done = 0
        self.failed = 0
        self.unexpected = 0
        self.answered = 0
        self.seen: set[bytes] = set()

    def invite(self, n: int, now: float) -> None:
        host, port = CALLER
        call_id = b"%d-bench@%s" % (n, host.encode())
        data = (
            b"INVITE sip:service@%s:%d SIP/2.0\r\n" % (SERVER[0].encode(), SERVER[1])
            + b"Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%d-1-0\r\n" % (host.encode(), port, n)
            + b"From: sipp <sip:sipp@%s:%d>;tag=%dSIPpTag001\r\n" % (host.encode(), port, n)
            + b"To: service <sip:service@%s:%d>\r\n" % (SERVER[0].encode(), SERVER[1])
            + b"Call-ID: " + call_id + b"\r\n"
            + b"CSeq: 1 INVITE\r\n"
            + b"Contact: sip:sipp@%s:%d\r\n" % (host.encode(), port)
            + b"Max-Forwards: 70\r\nSubject: Performance Test\r\n"
            + b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(SDP) + SDP
        )  # fmt: skip
        self.push(now, data, CALLER)

    def received(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """The server sent ``data`` to ``addr``: play that peer's part."""
        if data in self.seen:
            self.unexpected += 1  # a retransmission: the server thought we were late
            return
        self.seen.add(data)
        start, fields = head_fields(data)
        if addr == CALLEE:
            self._callee(start, fields, now)
        elif addr == CALLER:
            self._caller(start, fields, now)
        else:
            self.unexpected += 1

    def _callee(self, start: bytes, fields: dict[bytes, list[bytes]], now: float) -> None:
        method = start.split(b" ", 1)[0]
        tag = b";tag=" + fields[b"call-id"][0].split(b"@")[0] + b"SIPpTag01"
        if method == b"INVITE":
            self.push(now, response(b"180 Ringing", fields, tag, b""), CALLEE)
            self.push(now, response(b"200 OK", fields, tag, SDP), CALLEE)
        elif method == b"BYE":
            self.push(now, response(b"200 OK", fields, b"", b""), CALLEE)
        elif method != b"ACK":
            self.unexpected += 1

    def _caller(self, start: bytes, fields: dict[bytes, list[bytes]], now: float) -> None:
        if not start.startswith(b"SIP/2.0 "):
            self.unexpected += 1
            return
        status = int(start[8:11])
        method = fields[b"cseq"][0].split()[-1]
        if status < 200:
            return
        if method == b"BYE":
            self.done += 1
            return
        if status >= 300:
            self.failed += 1
            return
        # 200 to the INVITE: ACK now, BYE after the call's duration.
        self.answered += 1
        contact = fields[b"contact"][0]
        target = contact[contact.index(b"<") + 1 : contact.index(b">")]
        host, port = CALLER
        base = (
            b"Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%%s\r\n" % (host.encode(), port)
            + b"From: " + fields[b"from"][0] + b"\r\n"
            + b"To: " + fields[b"to"][0] + b"\r\n"
            + b"Call-ID: " + fields[b"call-id"][0] + b"\r\n"
        )  # fmt: skip
        cid = fields[b"call-id"][0].split(b"@")[0]
        ack = (
            b"ACK " + target + b" SIP/2.0\r\n" + base.replace(b"%s", cid + b"-ack")
            + b"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )  # fmt: skip
        bye = (
            b"BYE " + target + b" SIP/2.0\r\n" + base.replace(b"%s", cid + b"-bye")
            + b"CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )  # fmt: skip
        self.push(now, ack, CALLER)
        self.push(now + self.call_s, bye, CALLER)


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(
    calls: int,
    rate: float,
    call_s: float,
    linger: bool,
    profile: int,
    hold: bool = False,
    gc_threshold: tuple[int, ...] = (),
) -> dict[str, Any]:
    reactor = FakeReactor()
    config = parse_config(CONFIG, "<bench>")
    # Begin logging as twistd does (else Twisted buffers the first events, and what
    # they name, until someone does), through the production observer, into nothing.
    globalLogBeginner.beginLoggingTo(
        [make_observer(config.logging, io.StringIO())], redirectStandardIO=False
    )
    set_floor(config.logging.level)  # as the service does under twistd (setServiceParent)
    service = B2BUAService(config, reactor=reactor, plugins=load_plugins(config))
    service.startService()  # binds the fake port, freezes start-up objects like production
    if gc_threshold:  # experiments: override the server's collector thresholds
        gc.set_threshold(*gc_threshold)
    proto = reactor.protocol
    inbox: deque[tuple[bytes, tuple[str, int]]] = deque()
    later: list[tuple[float, int, bytes, tuple[str, int]]] = []
    seq = 0
    now = 0.0

    def push(when: float, data: bytes, src: tuple[str, int]) -> None:
        nonlocal seq
        if when <= now:
            inbox.append((data, src))
        else:
            seq += 1
            heapq.heappush(later, (when, seq, data, src))

    peers = Peers(call_s, push)
    outbox = reactor.outbox
    timer = GCTimer(os.devnull)  # gcwrap's hook, as calls.py times the real server
    profiler = cProfile.Profile() if profile else None
    gc.callbacks.append(timer)
    objects_before = len(gc.get_objects())
    rss_before = rss_kb()
    step = 0.001
    started = 0
    busy = 0.0
    # The server thread's own CPU time, not wall time: other processes on the machine
    # (a test run, another benchmark) then barely move the figure.
    perf = time.thread_time
    deliver = proto.datagramReceived
    # Held calls: no BYE; stop 3 s after the last INVITE, as calls.py reads RSS then.
    end_of_calls = calls / rate + (3.0 if hold else call_s + 1.0)
    if hold:
        peers.call_s = 1e9
    horizon = end_of_calls + (70.0 if linger else 0.0)
    peak_objects = 0
    while now < horizon:
        now += step
        t0 = perf()
        if profiler:
            profiler.enable()
        reactor.advance(step)
        if profiler:
            profiler.disable()
        busy += perf() - t0
        while started < calls and started / rate <= now:
            peers.invite(started, now)
            started += 1
        while later and later[0][0] <= now:
            _, _, data, src = heapq.heappop(later)
            inbox.append((data, src))
        while inbox or outbox:
            while inbox:
                data, src = inbox.popleft()
                t0 = perf()
                if profiler:
                    profiler.enable()
                deliver(data, src)
                if profiler:
                    profiler.disable()
                busy += perf() - t0
            while outbox:
                data, addr = outbox.popleft()
                peers.received(data, addr, now)
        if started >= calls and not later and now > end_of_calls and not linger:
            break
        if hold and now > end_of_calls:
            break
        if int(now * 1000) % 1000 == 0:
            peak_objects = max(peak_objects, len(gc.get_objects()))
    objects_after = len(gc.get_objects())
    gc.callbacks.remove(timer)
    gc_total = sum(timer.total)
    result = {
        "calls": calls,
        "rate": rate,
        "completed": peers.done,
        "answered": peers.answered,
        "failed": peers.failed,
        "unexpected": peers.unexpected,
        "server_us_per_call": busy / max(peers.done, 1) * 1e6,
        "gc_collections": sum(timer.count),
        "gc_full": timer.count[2],
        "gc_ms_total": gc_total * 1000,
        "gc_us_per_call": gc_total / max(peers.done, 1) * 1e6,
        "gc_max_ms": max(timer.max) * 1000,
        "peak_tracked_objects": peak_objects - objects_before,
        "tracked_objects_left": objects_after - objects_before,
        "rss_growth_kb": rss_kb() - rss_before,
        "rss_kb_per_call": (rss_kb() - rss_before) / calls,
        "tracked_objects_per_call": (objects_after - objects_before) / calls,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "transactions_left": service.layer.client_count + service.layer.server_count,
    }
    if profiler and profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(profile)
        stats.sort_stats("cumulative").print_stats(profile)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per simulated second")
    parser.add_argument("--call-ms", type=int, default=100)
    parser.add_argument("--linger", action="store_true", help="run on 70 s until all state expires")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--hold", action="store_true", help="hold the calls (no BYE): memory per concurrent call"
    )
    parser.add_argument(
        "--gc-threshold", default="", help="e.g. 700,10,10: gc.set_threshold after start-up"
    )
    args = parser.parse_args()
    gc_threshold = tuple(int(x) for x in args.gc_threshold.split(",") if x)
    print(f"# {platform.python_implementation()} {platform.python_version()}, {args.calls} calls"
          f" at {args.rate:g}/s simulated, {args.call_ms} ms each")  # fmt: skip
    figures = []
    for _ in range(args.runs):
        result = run(
            args.calls,
            args.rate,
            args.call_ms / 1000,
            args.linger,
            args.profile,
            args.hold,
            gc_threshold,
        )
        figures.append(result["server_us_per_call"])
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in result.items()))  # fmt: skip
    figures.sort()
    print(f"median server CPU per call: {figures[len(figures) // 2]:.1f} us")


if __name__ == "__main__":
    main()
