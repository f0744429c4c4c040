"""Helpers for bench/calls.py: processes, SIPp runs and results, /proc, pcap, GC snapshots.

Everything here talks to loopback addresses only and every process it starts is
bounded in time (and SIPp in calls); :class:`Procs` kills what is still running on
the way out, by the ``Popen`` objects it started, never by name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CALLER, SERVER, CALLEE = "127.0.0.2", "127.0.0.1", "127.0.0.3"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- processes


class Procs:
    """The processes one measurement started; all are stopped when it ends."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, cmd: Sequence[str], cwd: Path, log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (cwd / log).open("wb") as out:
            proc = subprocess.Popen(
                list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.started):
            stop(proc, signal.SIGTERM, 5.0)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 5.0) -> None:
    """Signal a process we started, then kill it if it has not gone after ``wait`` s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def processes() -> Iterator[Procs]:
    procs = Procs()
    try:
        yield procs
    finally:
        procs.close()


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def udp_bound(host: str, port: int) -> bool:
    """Whether some socket is bound to ``host:port`` (UDP, IPv4), from /proc/net/udp."""
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in f.readlines()[1:])


def socket_drops(host: str, port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to ``host:port`` (its
    receive buffer was full), from the ``drops`` column of /proc/net/udp."""
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want:
                return int(fields[-1])
    return 0


def wait_bound(proc: subprocess.Popen[bytes], host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before binding {port}")
        if udp_bound(host, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not bind {host}:{port} within {timeout} s")


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def host_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:9]]
    return sum(vals) - vals[3] - vals[4], sum(vals)


def machine() -> dict[str, str | int]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"SIPp v([\w.\-]+)", sipp)
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "sipp": m.group(1) if m else "?",
        "kernel": os.uname().release,
    }


# --------------------------------------------------------------------------- SIPp


def scenario_files(workdir: Path) -> tuple[Path, Path]:
    """SIPp's built-in uac and uas scenarios, each with one change (written to workdir).

    - uac: the SDP session name ``s=-`` becomes ``s=[call_id]``, so the INVITE the
      server sends on carries the caller's Call-ID in its (relayed) body and a capture
      can pair the INVITE in with the INVITE out;
    - uas: ``;transport=[transport]`` in Contact becomes ``;transport=udp``: SIPp
      writes ``UDP`` and sippy 2.5.0 refuses that spelling (see
      shared/research/sippy-baseline.md); both servers get the same callee.
    """
    uac = subprocess.run(["sipp", "-sd", "uac"], capture_output=True, text=True, check=False)
    uas = subprocess.run(["sipp", "-sd", "uas"], capture_output=True, text=True, check=False)
    uac_xml = uac.stdout.replace("s=-\n", "s=[call_id]\n", 1)
    uas_xml = uas.stdout.replace(";transport=[transport]", ";transport=udp")
    if uac_xml == uac.stdout or uas_xml == uas.stdout:
        raise RuntimeError("SIPp's built-in scenarios changed; update scenario_files()")
    (workdir / "uac.xml").write_text(uac_xml)
    (workdir / "uas.xml").write_text(uas_xml)
    return workdir / "uac.xml", workdir / "uas.xml"


@dataclass
class SippSide:
    """What one SIPp reported at its end (stat CSV last row plus the screen table)."""

    created: int = 0
    successful: int = 0
    failed: int = 0
    current: int = 0
    retrans: int = 0  # retransmissions sent or received, the larger of CSV and screen
    unexpected: int = 0
    timeouts: int = 0
    warnings: int = 0

    def add(self, other: SippSide) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def stat_row(csv: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` CSV as {column: value}."""
    try:
        lines = csv.read_text(errors="replace").strip().splitlines()
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def _int(row: dict[str, str], key: str) -> int:
    try:
        return int(float(row.get(key, "0") or 0))
    except ValueError:
        return 0


def screen_counts(screen: Path) -> tuple[int, int, int]:
    """(retransmissions, timeouts, unexpected) summed over the last message table.

    Numbers are assigned to the columns by where they start under the header line
    (Messages, Retrans, Timeout, Unexpected-Msg): the UAS screen puts the message
    name after the arrow, and a response name is a number too.
    """
    try:
        text = screen.read_text(errors="replace")
    except OSError:
        return 0, 0, 0
    start = text.rfind("Messages  Retrans")
    if start < 0:
        return 0, 0, 0
    lines = text[text.rfind("\n", 0, start) + 1 :].splitlines()
    header = lines[0]
    cols = sorted((header.index(n), n) for n in ("Messages", "Retrans", "Timeout", "Unexpected"))
    sums = dict.fromkeys(("Messages", "Retrans", "Timeout", "Unexpected"), 0)
    for line in lines[1:]:
        if line.startswith(("---", "Last Error")):
            break
        if not re.search(r"-{5,}>|<-{5,}|Pause", line):
            continue
        for m in re.finditer(r"(?<![\w-])\d+(?![\w\]])", line):
            if m.start() < cols[0][0] - 2:
                continue
            name = max((c for c in cols if c[0] <= m.start() + 2), default=cols[0])[1]
            sums[name] += int(m.group())
    return sums["Retrans"], sums["Timeout"], sums["Unexpected"]


def sipp_side(workdir: Path, csv: Path, pid: int, scenario: str) -> SippSide:
    row = stat_row(csv)
    retrans, timeouts, unexpected = screen_counts(workdir / f"{scenario}_{pid}_screen.log")
    return SippSide(
        created=_int(row, "TotalCallCreated"),
        successful=_int(row, "SuccessfulCall(C)"),
        failed=_int(row, "FailedCall(C)"),
        current=_int(row, "CurrentCall"),
        retrans=max(retrans, _int(row, "Retransmissions(C)")),
        unexpected=unexpected,
        timeouts=timeouts,
        warnings=_int(row, "Warnings(C)"),
    )


def quit_sipp(proc: subprocess.Popen[bytes], wait: float = 5.0) -> None:
    """Ask a SIPp to quit as its 'q' key does (SIGUSR1, twice: the second forces it);
    it then writes its screen and stat files. Killed if it lingers."""
    for _ in range(2):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait / 2)
    stop(proc, signal.SIGKILL, 1.0)


def split_rate(rate: int, per_uac: int) -> list[int]:
    """Rates of ceil(rate / per_uac) SIPp UACs that add up to ``rate``."""
    n = max(1, math.ceil(rate / per_uac))
    return [rate // n + (1 if i < rate % n else 0) for i in range(n)]


# --------------------------------------------------------------------------- pcap


def read_pcap(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    """(timestamp, destination port, source port, UDP payload) of each IPv4 UDP packet."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF
    link_len = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0, 228: 0}.get(linktype)
    if link_len is None:
        raise ValueError(f"{path}: link type {linktype} not handled")
    record = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, pos)
        pos += 16
        pkt = data[pos : pos + caplen]
        pos += caplen
        ip = pkt[link_len:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        yield sec + frac * scale, dport, sport, ip[ihl + 8 :]


def session_name(payload: bytes) -> bytes | None:
    """The SDP ``s=`` value of an INVITE (the caller's Call-ID, see scenario_files)."""
    if not payload.startswith(b"INVITE "):
        return None
    i = payload.find(b"\ns=")
    if i < 0:
        return None
    j = payload.find(b"\n", i + 3)
    return payload[i + 3 : j if j > 0 else None].strip()


def invite_latencies(pcap: Path, server_port: int, callee_port: int) -> tuple[list[float], int]:
    """Seconds from each INVITE reaching the server to the INVITE it sends the callee.

    Pairs first transmissions by the SDP session name; returns the latencies and the
    number of INVITEs the server received (so unpaired ones can be reported).
    """
    seen_in: dict[bytes, float] = {}
    seen_out: dict[bytes, float] = {}
    for ts, dport, _sport, payload in read_pcap(pcap):
        if dport == server_port:
            table = seen_in
        elif dport == callee_port:
            table = seen_out
        else:
            continue
        key = session_name(payload)
        if key is not None and key not in table:
            table[key] = ts
    return [seen_out[k] - t for k, t in seen_in.items() if k in seen_out], len(seen_in)


def tcpdump_command(pcap: Path, server_port: int, callee_port: int) -> list[str] | None:
    exe = shutil.which("tcpdump")
    if exe is None:
        return None
    flt = (
        f"udp and ((dst host {SERVER} and dst port {server_port}) or "
        f"(dst host {CALLEE} and dst port {callee_port}))"
    )
    return [
        exe, "-i", "lo", "-n", "-s", "0", "-B", "16384", "-U", "-w", str(pcap),
        "--time-stamp-precision=nano", flt,
    ]  # fmt: skip


# --------------------------------------------------------------------------- GC snapshots


def read_gc(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


@dataclass
class GCWindow:
    """The collections between two gcwrap.py snapshots."""

    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    total_ms: float = 0.0
    max_ms: float = 0.0
    p99_ms: float = 0.0
    gen2_max_ms: float = 0.0


def gc_window(
    before: dict[str, object], after: dict[str, object], t0: float, t1: float
) -> GCWindow:
    """Pauses between snapshots ``before`` and ``after``; maxima from the collections of
    1 ms or more that ended between monotonic times ``t0`` and ``t1`` (or, when none did,
    the top edge of the highest histogram bucket used)."""
    base = float(before["bucket_base_s"])  # type: ignore[arg-type]
    growth = float(before["bucket_growth"])  # type: ignore[arg-type]
    hb: list[list[int]] = before["hist"]  # type: ignore[assignment]
    ha: list[list[int]] = after["hist"]  # type: ignore[assignment]
    ca: list[int] = after["count"]  # type: ignore[assignment]
    cb: list[int] = before["count"]  # type: ignore[assignment]
    ta: list[float] = after["total_s"]  # type: ignore[assignment]
    tb: list[float] = before["total_s"]  # type: ignore[assignment]
    hist = [sum(ha[g][i] - hb[g][i] for g in range(3)) for i in range(len(ha[0]))]
    hist2 = [ha[2][i] - hb[2][i] for i in range(len(ha[0]))]

    def edge(i: int) -> float:  # upper edge of bucket i, ms
        return base * growth**i * 1e3

    def quantile(h: list[int], q: float) -> float:
        n = sum(h)
        if n == 0:
            return 0.0
        rank = math.ceil(q * n)
        acc = 0
        for i, c in enumerate(h):
            acc += c
            if acc >= rank:
                return edge(i)
        return edge(len(h) - 1)

    long: list[list[float]] = after["long"]  # type: ignore[assignment]
    inside = [x for x in long if t0 <= x[0] <= t1]
    top = max((i for i, c in enumerate(hist) if c), default=-1)
    top2 = max((i for i, c in enumerate(hist2) if c), default=-1)
    max_ms = max((x[2] for x in inside), default=edge(top) if top >= 0 else 0.0)
    return GCWindow(
        count=[ca[g] - cb[g] for g in range(3)],
        total_ms=sum(ta[g] - tb[g] for g in range(3)) * 1e3,
        max_ms=max_ms,
        p99_ms=min(max_ms, quantile(hist, 0.99)),
        gen2_max_ms=max(
            (x[2] for x in inside if x[1] == 2), default=edge(top2) if top2 >= 0 else 0.0
        ),
    )


def wait_fresh_gc(path: Path, after: float, timeout: float = 3.0) -> dict[str, object] | None:
    """The first gcwrap snapshot written after monotonic time ``after``."""
    deadline = time.monotonic() + timeout
    snap = None
    while time.monotonic() < deadline:
        snap = read_gc(path)
        if snap is not None and float(snap["written"]) >= after:  # type: ignore[arg-type]
            return snap
        time.sleep(0.1)
    return snap


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def median(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan
