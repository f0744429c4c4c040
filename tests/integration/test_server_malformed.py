"""Malformed and oversized input to the real server, over UDP and TCP.

The messages name foreign hosts (example.com, 192.0.2.x) in Via, From and Contact,
so the server AND the client run inside a fresh network namespace that has only
loopback (harness.netns()): whatever the server does with those names, no packet
can leave the machine.  The pytest process is outside the namespace, so the client
side is a small stdlib-only script (CLIENT below) run with ``ip netns exec``; it
sends every case, records what came back and prints JSON.  It runs once per module
(fixture ``results``); each case is then its own test.  Tests run as root (CI too):
if the namespace cannot be made, the tests fail, they do not skip.

Every UDP message carries ``rport`` in its top Via, so that answers come back to the
client's socket (RFC 3581) rather than to the foreign sent-by address.

A UDP datagram cannot be larger than 65,507 octets, so to make one "oversized" the
server here runs with ``[limits] max_message_size = 16384``; over TCP a 70 KB
message is sent as well.
"""

from __future__ import annotations

import base64
import json
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.harness import ROOT, ServerProcess, config_text, netns

TORTURE = ROOT / "tests" / "data" / "torture"
MAX_MESSAGE_SIZE = 16384
NO_ANSWER = None

# --------------------------------------------------------------------------------------
# The client, run inside the namespace: python CLIENT plan.json -> JSON on stdout.
# --------------------------------------------------------------------------------------

CLIENT = r"""
import base64, json, selectors, socket, sys, time, uuid

plan = json.load(open(sys.argv[1]))
SERVER = ("127.0.0.1", plan["port"])


def options(transport, sock):
    host, port = sock.getsockname()[:2]
    return (
        f"OPTIONS sip:ping@127.0.0.1:{SERVER[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=ready\r\n"
        "To: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def udp(cases, wait, until_answered=False):
    # One socket per case, sent 20 ms apart; then every answer within `wait` s
    # (or until every socket has one answer).
    results, sel = {}, selectors.DefaultSelector()
    for name, data in cases:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        results[name] = {"answers": [], "error": None}
        try:
            sock.sendto(options("UDP", sock) if data is None else data, SERVER)
        except OSError as e:
            results[name]["error"] = f"send: {e}"
        sel.register(sock, selectors.EVENT_READ, name)
        time.sleep(0.02)
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            try:
                data = key.fileobj.recv(65535)
            except OSError as e:
                results[key.data]["error"] = f"recv: {e}"
                continue
            results[key.data]["answers"].append(data.decode("latin-1"))
        if until_answered and all(r["answers"] for r in results.values()):
            break
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return results


def tcp(cases, wait, until_answered=False):
    # One connection per case; read each until the server closes it or `wait` s
    # (or, until_answered, until a whole response head arrived).
    results, sel, buffers = {}, selectors.DefaultSelector(), {}
    for name, data in cases:
        results[name] = {"received": "", "closed": False, "error": None}
        sock = socket.create_connection(SERVER, timeout=2)
        try:
            sock.sendall(options("TCP", sock) if data is None else data)
        except OSError as e:
            results[name]["error"] = f"send: {e}"
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, name)
        buffers[name] = b""
    deadline = time.monotonic() + wait
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            name = key.data
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                results[name]["error"] = f"recv: {e}"
                chunk = b""
            if chunk:
                buffers[name] += chunk
                if not (until_answered and b"\r\n\r\n" in buffers[name]):
                    continue
            results[name]["closed"] = not chunk
            sel.unregister(key.fileobj)
            key.fileobj.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    for name, data in buffers.items():
        results[name]["received"] = data.decode("latin-1")
    return results


ready = False
deadline = time.monotonic() + plan["ready_timeout"]
while time.monotonic() < deadline:
    answer = udp([("ready", None)], 0.3, True)["ready"]["answers"]
    if answer:
        ready = True
        break
out = {"ready": ready}
if ready:
    decode = lambda cases: [(c["name"], base64.b64decode(c["data"])) for c in cases]
    out["udp"] = udp(decode(plan["udp"]), plan["udp_wait"])
    out["tcp"] = tcp(decode(plan["tcp"]), plan["tcp_wait"])
    out["final_udp"] = udp([("final", None)], 2.0, True)["final"]
    out["final_tcp"] = tcp([("final", None)], 2.0, True)["final"]
print(json.dumps(out))
"""

# --------------------------------------------------------------------------------------
# The messages.
# --------------------------------------------------------------------------------------


def message(
    method: str = "OPTIONS",
    *,
    uri: str = "sip:alice@127.0.0.1",
    version: str = "SIP/2.0",
    transport: str = "UDP",
    replace: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    body: bytes = b"",
    content_length: int | None = None,
) -> bytes:
    """A request from a foreign host; headers replaced, dropped or added as asked."""
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    headers = {
        "Via": f"SIP/2.0/{transport} 192.0.2.10:5060;branch={branch};rport",
        "Max-Forwards": "70",
        "From": f"<sip:bob@example.com>;tag={uuid.uuid4().hex[:8]}",
        "To": "<sip:alice@example.com>",
        "Call-ID": f"{uuid.uuid4().hex}@192.0.2.10",
        "CSeq": f"1 {method}",
        "Contact": "<sip:bob@192.0.2.10:5060>",
    }
    headers.update(replace or {})
    lines = [f"{method} {uri} {version}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    lines += list(extra)
    length = len(body) if content_length is None else content_length
    if "Content-Length" not in drop:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def torture(name: str) -> bytes:
    """An RFC 4475 message made to come back to us: top Via over UDP, with ``;rport``.

    Some of these messages say TCP or TLS in their top Via; sent over UDP, the server
    would answer them on a new connection to port 5060 (RFC 3261 18.2.2), which is
    not what these messages test.
    """
    data = (TORTURE / f"{name}.dat").read_bytes()
    head, sep, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if re.match(rb"(?i)(via|v)\s*:", line):
            line = re.sub(rb"SIP/(\d\.\d)/(TCP|TLS) ", rb"SIP/\1/UDP ", line, count=1)
            lines[i] = line.rstrip() + b";rport"
            break
    else:
        raise AssertionError(f"{name}: no Via")
    return b"\r\n".join(lines) + sep + rest


def stray_response() -> bytes:
    return (
        "SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
        "From: <sip:bob@example.com>;tag=abc\r\nTo: <sip:alice@example.com>;tag=def\r\n"
        f"Call-ID: {uuid.uuid4().hex}@192.0.2.77\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@dataclass(frozen=True)
class Case:
    """One input and the answers allowed for it (NO_ANSWER: nothing must come back)."""

    name: str
    data: bytes
    expected: tuple[int | None, ...]
    # (header regex that the answer must contain), checked when an answer came back.
    must_contain: tuple[bytes, ...] = field(default=())


def udp_cases() -> list[Case]:
    rng = random.Random(4475)
    big_body = b"x" * 60000
    return [
        Case("garbage", rng.randbytes(512), (NO_ANSWER,)),
        Case("garbage text", b"hello, this is not SIP at all\r\n\r\n", (NO_ANSWER,)),
        Case("nul bytes", b"\x00" * 256, (NO_ANSWER,)),
        Case("nul in From tag", message().replace(b";tag=", b";tag=\x00\x00", 1), (400,)),
        Case("nul in Call-ID", message().replace(b"@192.0.2.10\r\nCSeq", b"\x00@x\r\nCSeq"), (400,)),
        Case("bad version", message(version="SIP/3.0"), (505,)),
        Case("missing Call-ID", message(drop=("Call-ID",)), (400,)),
        Case("missing CSeq", message(drop=("CSeq",)), (400, NO_ANSWER)),
        Case("Content-Length larger than datagram", message(body=b"v=0\r\n", content_length=500),
             (400,)),
        Case("malformed Content-Length", message(content_length=-1), (400,)),
        Case("CSeq method mismatch", message(replace={"CSeq": "1 INVITE"}), (400,)),
        Case(f"oversized datagram ({len(big_body)} B body)",
             message(body=big_body, extra=("Content-Type: text/plain",)), (413, NO_ANSWER)),
        Case("header line over max_line_length", message(extra=("Subject: " + "s" * 9000,)),
             (400,)),
        Case("request line over max_line_length", message(uri="sip:" + "a" * 9000 + "@127.0.0.1"),
             (414,)),
        Case("more header lines than max_headers",
             message(extra=tuple(f"X-Filler-{i}: {i}" for i in range(300))), (400,)),
        Case("header line without colon", message(extra=("This is no header",)), (400,)),
        Case("unknown URI scheme", message(uri="xyz:alice@example.com"), (416,)),
        Case("Require: foo", message(extra=("Require: foo",)), (420,),
             (rb"\r\nUnsupported: foo\r\n",)),
        Case("unknown method", message("FOO"), (501,)),
        Case("Max-Forwards 0 (MESSAGE)", message("MESSAGE", replace={"Max-Forwards": "0"}),
             (483,)),
        Case("stray response", stray_response(), (NO_ANSWER,)),
        Case("malformed ACK", message("ACK", version="SIP/3.0"), (NO_ANSWER,)),
        # RFC 4475 torture messages.
        Case("torture badvers", torture("badvers"), (505,)),
        Case("torture unkscm", torture("unkscm"), (416,)),
        Case("torture bext01", torture("bext01"), (420,),
             (rb"\r\nUnsupported: [^\r]*nothingSupportsThis",)),
        Case("torture intmeth", torture("intmeth"), (501,)),
        Case("torture mismatch01", torture("mismatch01"), (400,)),
        Case("torture clerr", torture("clerr"), (400,)),
        Case("torture zeromf (OPTIONS, Max-Forwards 0)", torture("zeromf"), (200,)),
        Case("torture bigcode (response)", torture("bigcode"), (NO_ANSWER,)),
    ]  # fmt: skip


@dataclass(frozen=True)
class StreamCase:
    """Bytes sent on a new TCP connection: the statuses expected in order, then close."""

    name: str
    data: bytes
    statuses: tuple[int, ...]


def tcp_cases() -> list[StreamCase]:
    good = message(transport="TCP")
    return [
        StreamCase("good, then bad version, then good (one segment)",
                   good + message(version="SIP/3.0", transport="TCP") + message(transport="TCP"),
                   (200, 505)),
        StreamCase("good, then header line without colon",
                   good + message(transport="TCP", extra=("This is no header",)), (200, 400)),
        StreamCase("missing Content-Length", message(transport="TCP", drop=("Content-Length",)),
                   (400,)),
        StreamCase("malformed Content-Length", message(transport="TCP", content_length=-5),
                   (400,)),
        StreamCase("garbage", random.Random(3261).randbytes(2000) + b"\r\n\r\n", ()),
        StreamCase("70 KB message",
                   message(transport="TCP", body=b"y" * 70000, extra=("Content-Type: text/plain",)),
                   (413,)),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------
# Running it.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    server: ServerProcess
    output: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("server-malformed")
    port = free_port("both")  # in a fresh namespace every port is free; any will do
    config = config_text(
        udp=port,
        tcp=port,
        extra=f"[limits]\nmax_message_size = {MAX_MESSAGE_SIZE}\n\n[server]\ndrain_time = 2.0\n",
    )
    (workdir / "b2bua.toml").write_text(config)
    plan = {
        "port": port,
        "ready_timeout": 15,
        "udp": [{"name": c.name, "data": _b64(c.data)} for c in udp_cases()],
        "udp_wait": 2.0,
        "tcp": [{"name": c.name, "data": _b64(c.data)} for c in tcp_cases()],
        "tcp_wait": 3.0,
    }
    plan_path = workdir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    script = workdir / "client.py"
    script.write_text(CLIENT)
    with netns() as ns:  # raises (fails the tests) if the namespace cannot be made
        server = ServerProcess(workdir / "b2bua.toml", workdir, netns=ns)
        server.start()
        try:
            cmd = ["ip", "netns", "exec", ns, sys.executable, str(script), str(plan_path)]
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=90,
                cwd=workdir,
            )
            assert done.returncode == 0, f"client failed:\n{done.stderr}\n{server.log}"
            output = json.loads(done.stdout)
            assert output["ready"], f"the server never answered in the namespace:\n{server.log}"
            assert server.alive(), f"server died:\n{server.log}"
            yield Run(server, output)
        finally:
            if server.alive():
                server.stop()


def status_of(answer: str) -> int:
    m = re.match(r"SIP/2\.0 (\d{3}) ", answer)
    assert m, f"not a SIP response: {answer[:200]!r}"
    return int(m.group(1))


def split_stream(data: str) -> list[str]:
    """Responses received on a stream (Content-Length framed)."""
    out = []
    while data:
        end = data.find("\r\n\r\n")
        if end < 0:
            out.append(data)
            break
        m = re.search(r"\r\n(?:Content-Length|l)\s*:\s*(\d+)", data[:end], re.IGNORECASE)
        total = end + 4 + (int(m.group(1)) if m else 0)
        out.append(data[:total])
        data = data[total:]
    return out


def params(cases: list[Case] | list[StreamCase]) -> list[Any]:
    """One pytest.param per case, named after it."""
    return [pytest.param(c, id=c.name) for c in cases]


@pytest.mark.parametrize("case", params(udp_cases()))
def test_udp_input(results: Run, case: Case) -> None:
    got = results.output["udp"][case.name]
    assert got["error"] is None, got["error"]
    answers = got["answers"]
    if not answers:
        assert NO_ANSWER in case.expected, (
            f"no answer, expected {case.expected}\n{results.server.log[-2000:]}"
        )
        return
    assert len(answers) == 1, f"more than one answer: {answers}"
    answer = answers[0]
    assert status_of(answer) in case.expected, answer
    for pattern in case.must_contain:
        assert re.search(pattern, answer.encode("latin-1")), f"{pattern!r} not in {answer!r}"


@pytest.mark.parametrize("case", params(tcp_cases()))
def test_tcp_input(results: Run, case: StreamCase) -> None:
    got = results.output["tcp"][case.name]
    responses = split_stream(got["received"])
    statuses = tuple(status_of(r) for r in responses)
    assert statuses == case.statuses, f"{responses}\n{got['error']}"
    assert got["closed"], "the server kept the connection open after bad input"


def test_still_answers_and_no_traceback(results: Run) -> None:
    """After all of the above the server answers a good OPTIONS on UDP and TCP."""
    final_udp = results.output["final_udp"]["answers"]
    assert final_udp and status_of(final_udp[0]) == 200, final_udp
    final_tcp = split_stream(results.output["final_tcp"]["received"])
    assert final_tcp and status_of(final_tcp[0]) == 200, final_tcp
    assert results.server.alive()
    assert "Traceback" not in results.server.log, results.server.log
