"""Parser benchmark: lazy parses, full parses and serializations per second.

Usage: ``.venv/bin/python bench/parse.py [--runs 7] [--seconds 0.5] [--json]``

For a realistic INVITE with SDP and a 200 OK it measures, on one core:
- lazy parse: ``parse_message`` plus what a transaction layer reads (top Via and
  its branch, CSeq, Call-ID, From and To tags);
- full parse: ``parse_message`` plus ``validate()`` (every known header checked;
  the same message each time, so validate() finds every value among those it
  remembers as good: an upper bound, see the server path for real traffic);
- serialize: ``to_bytes()`` of a parsed message after one header changed (so the
  changed line is re-encoded and the rest written from the original bytes);
- server path: what the server does with each datagram it receives.  An INVITE is
  parsed, its top Via gets ``received``/``rport`` (as transport.routing does with
  an ``rport`` Via), it is validated (ua.checks), the transaction and dialog
  layers read the top Via's branch, CSeq, Call-ID and tags, and it is written out
  again.  A 200 OK is parsed, matched (top Via, CSeq), its dialog found (Call-ID,
  tags) and its Contact read (the remote target).  Unlike the other cases, each
  call gets another of 1,000 variants of the message (its own branch, From tag
  and Call-ID, as real traffic has), so nothing the parser keeps from one message
  to the next (known-good values, name caches) makes the figure look better.
- build INVITE: a request made the way the B2BUA makes its B-leg INVITE (each line
  added as text, From/To/Contact written from NameAddr values) and serialized;
- held INVITE: a parsed INVITE compacted (as a settled call keeps it), then its
  To tag read and the message written again (a retransmission).
Each figure is the median of ``--runs`` runs, timed in thread CPU time (other busy
processes barely move it); the previous result is kept in
``bench/results/parse.json`` and the change against it printed.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from b2bua.sip import URI, NameAddr, Request, parse_message, parse_uri

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 31862 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: Bench Phone 1.0\r\n"
    b"Session-Expires: 1800\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=sendrecv\r\n"
    b"a=ptime:20\r\n"
)
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;"
    b"received=192.0.2.101;rport=5060\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
    b'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 31862 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n"
    b"Supported: timer\r\n"
    b"Require: timer\r\n"
    b"Session-Expires: 1800;refresher=uac\r\n"
    b"Server: Bench PBX 2.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=bob 2808844564 2808844564 IN IP4 192.0.2.4\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 3456 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)


def _with_length(template: bytes) -> bytes:
    head, _, body = template.partition(b"\r\n\r\n")
    return head % len(body) + b"\r\n\r\n" + body


INVITE = _with_length(INVITE)
OK = _with_length(OK)


def _variants(data: bytes, count: int = 1000) -> list[bytes]:
    """``data`` with its branch, From tag and Call-ID changed, ``count`` times."""
    return [
        data.replace(b"z9hG4bKnashds8", b"z9hG4bK%07d" % i)
        .replace(b"9fxced76sl", b"%010d" % i)
        .replace(b"3848276298220188511", b"%019d" % i)
        for i in range(count)
    ]


def _cycling(fn: Callable[[bytes], object], datas: list[bytes]) -> Callable[[], object]:
    """A call of ``fn`` on the next of ``datas`` each time."""
    items = itertools.cycle(datas)
    return lambda: fn(next(items))


def lazy(data: bytes) -> None:
    """Parse plus the transaction-layer headers."""
    m = parse_message(data)
    _ = (m.top_via.branch, m.top_via.host, m.cseq, m.call_id, m.from_tag, m.to_tag)


def full(data: bytes) -> None:
    """Parse and decode every known header."""
    parse_message(data).validate()


def server_path(data: bytes) -> None:
    """What the server does with a received INVITE or 200 OK (see the module doc)."""
    m = parse_message(data)
    via = m.top_via
    if isinstance(m, Request):
        # transport.routing.stamp_received and replace_top_via, for a Via with rport
        headers = m.headers
        headers.pop_first_value("Via")
        headers.add("Via", str(via.with_params(received="192.0.2.200", rport="5060")), first=True)
        m.validate()
        _ = (m.request_uri.scheme, m.max_forwards)
    _ = (m.top_via.branch, m.cseq.method, m.call_id, m.from_tag, m.to_tag)
    if isinstance(m, Request):
        m.to_bytes()
    else:
        _ = m.contacts


_TARGET = parse_uri("sip:bob@192.0.2.4:5060")
_CONTACT = NameAddr(parse_uri("sip:b2bua@192.0.2.1:5060"))
_SDP = INVITE.partition(b"\r\n\r\n")[2]


def build() -> None:
    """A B-leg INVITE made line by line (as bridge.call does) and serialized."""
    request = Request("INVITE", _TARGET)
    h = request.headers
    h.add("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK7f3a9c0e;rport", first=True)
    h.add("Max-Forwards", "69")
    alice = URI("sip", user="alice", host="192.0.2.1")
    h.add("From", str(NameAddr(alice, "Alice Liddell", {"tag": "a73kszlfl"})))
    h.add("To", str(NameAddr(URI("sip", user="bob", host="biloxi.example.com"))))
    h.add("Call-ID", "f81d4fae7dec11d0a76500a0c91e6bf6@192.0.2.1")
    h.add("CSeq", "1 INVITE")
    h.add("Contact", str(_CONTACT))
    h.add("Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE")
    h.add("Supported", "replaces, timer")
    h.add("Content-Type", "application/sdp")
    request.body = _SDP
    request.to_bytes()


def held(data: bytes) -> None:
    """A parsed message compacted, then read and written again."""
    m = parse_message(data)
    m.compact()
    _ = m.to_tag
    m.to_bytes()


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` of this thread's CPU time."""
    n = 0
    batch = 200
    start = time.thread_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.thread_time()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    parsed_invite = parse_message(INVITE)
    parsed_ok = parse_message(OK)
    parsed_invite.headers.set("Max-Forwards", "69")
    parsed_ok.headers.set("Server", "b2bua")
    cases: dict[str, Callable[[], object]] = {
        "lazy parse INVITE": lambda: lazy(INVITE),
        "lazy parse 200 OK": lambda: lazy(OK),
        "full parse INVITE": lambda: full(INVITE),
        "full parse 200 OK": lambda: full(OK),
        "serialize INVITE": parsed_invite.to_bytes,
        "serialize 200 OK": parsed_ok.to_bytes,
        "server path INVITE": _cycling(server_path, _variants(INVITE)),
        "server path 200 OK": _cycling(server_path, _variants(OK)),
        "build INVITE": build,
        "held INVITE": lambda: held(INVITE),
    }
    gc.collect()
    results: dict[str, float] = {}
    for name, fn in cases.items():
        rate(fn, 0.1)  # warm up
        results[name] = statistics.median(rate(fn, args.seconds) for _ in range(args.runs))

    store = Path(__file__).with_name("results") / "parse.json"
    previous: dict[str, float] = {}
    if store.exists():
        previous = json.loads(store.read_text()).get("results", {})
    store.parent.mkdir(exist_ok=True)
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    store.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    if args.json:
        print(json.dumps(results))
        return
    print(f"{machine}; median of {args.runs} runs of {args.seconds} s each, one core")
    print(f"{'case':<20} {'per second':>12} {'us each':>9} {'vs previous':>12}")
    for name, value in results.items():
        change = ""
        if previous.get(name):
            change = f"{(value / previous[name] - 1) * 100:+.1f}%"
        print(f"{name:<20} {value:>12,.0f} {1e6 / value:>9.2f} {change:>12}")


if __name__ == "__main__":
    main()
