"""Call benchmark: SIPp UAC -> server -> SIPp UAS over UDP on loopback.

Usage: ``.venv/bin/python bench/calls.py [--runs 3] [--compare sippy] [--json]``
(see bench/README.md for every option and for how each figure is taken).

A basic call (INVITE, 100, 180, 200, ACK, hold ``--call-ms``, BYE, 200) with SIPp's
built-in uac/uas scenarios (two one-token changes, see benchlib.scenario_files);
caller 127.0.0.2, server 127.0.0.1, callee 127.0.0.3. The server runs with the
benchmark config (no SIP trace, otherwise the defaults: logging at info) under
bench/gcwrap.py, which times every garbage collection. Each run measures:

1. max calls per second with zero failed calls and zero retransmissions (both SIPp
   sides), stepping the rate, a fresh server and callee per step;
2. the server's CPU time per call at ``--rate`` (utime+stime from /proc/PID/stat);
3. RSS per concurrent call: ``--hold-calls`` calls held open against the idle server;
4. added latency INVITE in -> INVITE out, p50 and p99, at half the run's max rate,
   from a tcpdump capture on lo (INVITEs paired by the SDP session name);
5. GC pauses during (2) and (3).
Figures are medians over ``--runs`` runs; results go to bench/results/calls.json and
are compared with the previous ones there. ``--compare sippy`` runs every scenario
against sippy's B2BUA too (installed into bench/.sippy-venv) and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    CALLEE,
    CALLER,
    CLK_TCK,
    SERVER,
    GCWindow,
    Procs,
    SippSide,
    cpu_ticks,
    free_udp_port,
    gc_window,
    host_busy,
    invite_latencies,
    machine,
    median,
    percentile,
    processes,
    quit_sipp,
    rss_kb,
    scenario_files,
    sipp_side,
    socket_drops,
    split_rate,
    stat_row,
    stop,
    tcpdump_command,
    wait_bound,
    wait_fresh_gc,
)

ROOT = BENCH.parent
SIPPY_VENV = BENCH / ".sippy-venv"
SIPPY_VERSION = "2.5.0"
STORE = BENCH / "results" / "calls.json"


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Server:
    """How to start one B2BUA on SERVER:port routing every call to CALLEE:callee_port."""

    name: str
    python: str
    source: str = ""  # our server: import b2bua from this tree instead of the installed one

    def command(
        self, workdir: Path, port: int, callee_port: int, gc_out: Path
    ) -> tuple[list[str], dict[str, str]]:
        wrap = [self.python, str(BENCH / "gcwrap.py"), str(gc_out)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.source, env.get("PYTHONPATH")]))
        if self.name == "sippy":
            # -f foreground, -u no RADIUS auth, -A 0 no accounting, -s static route,
            # no -r so no rtpproxy (no media relay); SIPLOG_BEND=none: no message log.
            env["SIPLOG_BEND"] = "none"
            args = ["sippy.b2bua:main_func", "b2bua", "-f", "-u", "-A", "0", "-l", SERVER]
            args += ["-p", str(port), "-s", f"{CALLEE}:{callee_port}"]
            return [*wrap, *args, "-c", str(workdir / "b2bua.sock")], env
        if self.name.startswith("relay-"):
            # The runtime's floor (bench/relay.py): the same datagrams, nothing parsed.
            loop = self.name.removeprefix("relay-")
            args = [f"{BENCH / 'relay.py'}:main", "relay", "--loop", loop]
            args += ["--listen", f"{SERVER}:{port}", "--callee", f"{CALLEE}:{callee_port}"]
            return [*wrap, *args], env
        config = workdir / "b2bua.toml"
        config.write_text(bench_config(port, callee_port))
        args = ["twisted.scripts.twistd:run", "twistd", "-n", "--pidfile=", "b2bua"]
        return [*wrap, *args, "--config", str(config)], env


def bench_config(port: int, callee_port: int) -> str:
    """Production defaults except: UDP listener only, no SIP trace, and a
    2-s drain on stop (shutdown only: it keeps each step short)."""
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        "[server]\ndrain_time = 2.0\n\n"
        '[logging]\nlevel = "info"\nsip_trace = false\n\n'
        '[[plugin]]\nmodule = "static_routes"\n'
        f'[[plugin.route]]\ntargets = ["sip:{CALLEE}:{callee_port}"]\n'
    )


def ensure_sippy() -> Server:
    """sippy's B2BUA in bench/.sippy-venv (created with the interpreter behind ours)."""
    python = SIPPY_VENV / "bin" / "python"
    check = [str(python), "-c", "import sippy.b2bua"]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        print(f"installing sippy=={SIPPY_VERSION} into {SIPPY_VENV}", file=sys.stderr)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(SIPPY_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"sippy=={SIPPY_VERSION}"], check=True
        )
    return Server("sippy", str(python))


# --------------------------------------------------------------------------- one load


@dataclass
class Options:
    call_ms: int
    per_uac: int
    warmup: int
    tolerant: dict[str, bool]
    workdir: Path
    uac_xml: Path
    uas_xml: Path


@dataclass
class Step:
    """One load on a fresh server: what both SIPp sides and the server did."""

    server: str
    rate: int
    calls: int
    uac: SippSide
    uas: SippSide
    elapsed_s: float
    cpu_s: float
    host_busy_pct: float
    rss_kb: int
    gc: GCWindow
    drops: int = 0  # datagrams the kernel dropped at the server's socket (buffer full)
    latency_ms: list[float] | None = None
    invites_in: int = 0
    workdir: str = ""

    @property
    def clean(self) -> bool:
        u, s = self.uac, self.uas
        return (
            u.failed == 0 and s.failed == 0 and u.retrans == 0 and s.retrans == 0
            and u.successful == u.created and u.created >= self.calls
        )  # fmt: skip

    def summary(self) -> str:
        u, s = self.uac, self.uas
        return (
            f"{self.server} {self.rate:>5} cps: {u.successful}/{u.created} ok, failed "
            f"{u.failed}/{s.failed}, retrans {u.retrans}/{s.retrans}, unexpected "
            f"{u.unexpected}/{s.unexpected}, drops {self.drops}, "
            f"cpu {self.cpu_s / self.elapsed_s * 100:.0f}% "
            f"host {self.host_busy_pct:.0f}%, gc max {self.gc.max_ms:.1f} ms"
            f" -> {'clean' if self.clean else 'NOT clean'}"
        )


def start_server(
    procs: Procs, server: Server, workdir: Path, callee_port: int
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_udp_port(SERVER)
    gc_out = workdir / "gc.json"
    cmd, env = server.command(workdir, port, callee_port, gc_out)
    proc = procs.start(cmd, workdir, "server.log", env)
    wait_bound(proc, SERVER, port, 30.0)
    return proc, port, gc_out


def start_uas(
    procs: Procs, opts: Options, workdir: Path, port: int, calls: int, bound_s: int
) -> subprocess.Popen[bytes]:
    cmd = ["sipp", "-sf", str(opts.uas_xml), "-i", CALLEE, "-p", str(port), "-nostdin"]
    cmd += ["-m", str(calls), "-l", str(calls + 100), "-timeout", f"{bound_s}s"]
    cmd += ["-trace_stat", "-stf", "uas_stat.csv", "-fd", "1", "-trace_screen", "-trace_err"]
    return procs.start(cmd, workdir, "uas.out")


def start_uac(
    procs: Procs, server: Server, opts: Options, workdir: Path, name: str, server_port: int,
    rate: int, calls: int, call_ms: int, bound_s: int,
) -> subprocess.Popen[bytes]:  # fmt: skip
    extra = ["-default_behaviors", "all,-abortunexp"] if opts.tolerant.get(server.name) else []
    cmd = ["sipp", "-sf", str(opts.uac_xml), f"{SERVER}:{server_port}", "-i", CALLER]
    cmd += ["-p", str(free_udp_port(CALLER)), "-r", str(rate), "-m", str(calls)]
    cmd += ["-l", str(calls + 100), "-d", str(call_ms), "-nostdin", "-timeout", f"{bound_s}s"]
    cmd += ["-trace_stat", "-stf", f"{name}_stat.csv", "-fd", "1", "-trace_screen"]
    return procs.start([*cmd, "-trace_err", *extra], workdir, f"{name}.out")


def wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            quit_sipp(proc)


def collect(workdir: Path, procs: list[subprocess.Popen[bytes]], names: list[str]) -> SippSide:
    total = SippSide()
    for proc, name in zip(procs, names, strict=True):
        total.add(sipp_side(workdir, workdir / f"{name}_stat.csv", proc.pid, name_of(name)))
    return total


def name_of(name: str) -> str:
    """SIPp names its screen file after the scenario file: uac.xml -> uac, uas.xml -> uas."""
    return "uas" if name == "uas" else "uac"


def warm_up(
    procs: Procs, server: Server, opts: Options, workdir: Path, port: int
) -> subprocess.Popen[bytes] | None:
    """A few calls first, so one-time imports and caches are not charged to the load."""
    if not opts.warmup:
        return None
    rate = max(1, min(opts.warmup, 20))
    bound = opts.warmup // rate + 15
    uac = start_uac(procs, server, opts, workdir, "warm", port, rate, opts.warmup, 50, bound)
    wait_all([uac], time.monotonic() + bound + 5)
    return uac


def load(
    server: Server, opts: Options, tag: str, rate: int, seconds: float, capture: bool = False,
    profile: Path | None = None,
) -> Step:  # fmt: skip
    """``rate`` calls/s for ``seconds`` against a fresh server and callee."""
    workdir = opts.workdir / f"{server.name}-{tag}"
    workdir.mkdir(parents=True)
    calls = max(1, round(rate * seconds))
    bound = int(seconds + opts.call_ms / 1000 + 20)
    with processes() as procs:
        callee_port = free_udp_port(CALLEE)
        srv, port, gc_out = start_server(procs, server, workdir, callee_port)
        uas = start_uas(procs, opts, workdir, callee_port, calls + opts.warmup, bound + 30)
        warm = warm_up(procs, server, opts, workdir, port)
        dump = None
        if capture and (cmd := tcpdump_command(workdir / "invite.pcap", port, callee_port)):
            dump = procs.start(cmd, workdir, "tcpdump.out")
            time.sleep(1.0)  # tcpdump opens the capture before it prints anything
        spy = None
        if profile is not None:
            spy = procs.start(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                 str(srv.pid), "--rate", "1000", "--format", "raw", "--nonblocking",
                 "--duration", str(int(seconds)), "--output", str(profile)],
                workdir, "py-spy.out",
            )  # fmt: skip
        t0 = time.monotonic()
        gc0 = wait_fresh_gc(gc_out, t0)
        c0, h0, t0 = cpu_ticks(srv.pid), host_busy(), time.monotonic()
        rates = split_rate(rate, opts.per_uac)
        names = [f"uac{i}" for i in range(len(rates))]
        uacs = [
            start_uac(procs, server, opts, workdir, name, port, r, max(1, round(r * seconds)),
                      opts.call_ms, bound)
            for name, r in zip(names, rates, strict=True)
        ]  # fmt: skip
        wait_all(uacs, time.monotonic() + bound + 10)
        c1, h1, t1 = cpu_ticks(srv.pid), host_busy(), time.monotonic()
        rss = rss_kb(srv.pid)
        drops = socket_drops(SERVER, port)
        gc1 = wait_fresh_gc(gc_out, t1)
        quit_sipp(uas)
        if spy is not None:
            stop(spy, signal.SIGINT, 10.0)
        if dump is not None:
            stop(dump, signal.SIGINT, 5.0)
        stop(srv, signal.SIGTERM, 10.0)
    uac_side = collect(workdir, uacs, names)
    if warm is not None:
        uac_side.add(sipp_side(workdir, workdir / "warm_stat.csv", warm.pid, "uac"))
    step = Step(
        server=server.name, rate=rate, calls=sum(max(1, round(r * seconds)) for r in rates),
        uac=uac_side, uas=collect(workdir, [uas], ["uas"]),
        elapsed_s=t1 - t0, cpu_s=(c1 - c0) / CLK_TCK,
        host_busy_pct=100.0 * (h1[0] - h0[0]) / max(1, h1[1] - h0[1]) * (os.cpu_count() or 1),
        rss_kb=rss, drops=drops, gc=gc_window(gc0, gc1, t0, t1) if gc0 and gc1 else GCWindow(),
        workdir=str(workdir),
    )  # fmt: skip
    if dump is not None:
        lat, step.invites_in = invite_latencies(workdir / "invite.pcap", port, callee_port)
        step.latency_ms = [x * 1e3 for x in lat]
    return step


# --------------------------------------------------------------------------- scenarios


def find_max(
    server: Server, opts: Options, run: int, start: int, factor: float, seconds: float,
    max_rate: int, resolution: float, log: Callable[[str], None],
) -> tuple[int, list[Step]]:  # fmt: skip
    """Highest clean rate: climb by ``factor`` from ``start`` while clean (down while
    not), then bisect the bracket until it is within ``resolution``."""
    good, bad = 0, 0
    rate = start
    steps: list[Step] = []
    for i in range(12):
        step = load(server, opts, f"r{run}-max{i}-{rate}", rate, seconds)
        steps.append(step)
        log("  " + step.summary())
        if step.clean:
            good = max(good, rate)
        else:
            bad = rate if not bad else min(bad, rate)
        if good and bad:
            if bad / good <= 1 + resolution:
                break
            rate = round5(math.sqrt(good * bad))
            if rate in (good, bad):
                break
        elif good:
            if rate >= max_rate:
                break
            rate = min(max_rate, round5(rate * factor))
        else:
            if rate <= 5:
                break
            rate = max(5, round5(rate / factor))
    return good, steps


def round5(x: float) -> int:
    return max(5, round(x / 5.0) * 5)


@dataclass
class Hold:
    target: int
    reached: int
    idle_rss_kb: int
    held_rss_kb: int
    failed: int
    retrans: int
    drops: int
    ramp_s: float
    gc: GCWindow

    @property
    def kb_per_call(self) -> float:
        return (self.held_rss_kb - self.idle_rss_kb) / self.reached if self.reached else math.nan


def hold(
    server: Server, opts: Options, tag: str, calls: int, rate: int, log: Callable[[str], None]
) -> Hold:
    """Open ``calls`` calls at ``rate`` and hold them; RSS then against RSS when idle."""
    workdir = opts.workdir / f"{server.name}-{tag}"
    workdir.mkdir(parents=True)
    ramp = calls / rate
    hold_ms = int((ramp + 30) * 1000)  # nobody hangs up before the measurement is taken
    bound = int(ramp + 60)
    with processes() as procs:
        callee_port = free_udp_port(CALLEE)
        srv, port, gc_out = start_server(procs, server, workdir, callee_port)
        uas = start_uas(procs, opts, workdir, callee_port, calls + opts.warmup, bound + 30)
        warm_up(procs, server, opts, workdir, port)
        time.sleep(1.0)
        idle = rss_kb(srv.pid)
        t0 = time.monotonic()
        gc0 = wait_fresh_gc(gc_out, t0)
        uac = start_uac(procs, server, opts, workdir, "hold", port, rate, calls, hold_ms, bound)
        csv = workdir / "hold_stat.csv"
        deadline = time.monotonic() + ramp * 2 + 20
        row: dict[str, str] = {}
        while time.monotonic() < deadline and uac.poll() is None:
            time.sleep(1.0)
            row = stat_row(csv)
            if int(row.get("OutgoingCall(C)", "0") or 0) >= calls:
                break
        time.sleep(3.0)  # the last calls get their 200 and ACK; the counters settle
        held = rss_kb(srv.pid)
        drops = socket_drops(SERVER, port)
        t1 = time.monotonic()
        gc1 = wait_fresh_gc(gc_out, t1)
        row = stat_row(csv)
        uas_row = stat_row(workdir / "uas_stat.csv")
        for proc in (uac, uas):
            stop(proc, signal.SIGKILL, 2.0)
        stop(srv, signal.SIGKILL, 2.0)
    reached = int(row.get("CurrentCall", "0") or 0)
    failed = int(row.get("FailedCall(C)", "0") or 0) + int(uas_row.get("FailedCall(C)", "0") or 0)
    retrans = int(row.get("Retransmissions(C)", "0") or 0) + int(
        uas_row.get("Retransmissions(C)", "0") or 0
    )
    result = Hold(
        target=calls, reached=reached, idle_rss_kb=idle, held_rss_kb=held, failed=failed,
        retrans=retrans, drops=drops, ramp_s=t1 - t0,
        gc=gc_window(gc0, gc1, t0, t1) if gc0 and gc1 else GCWindow(),
    )  # fmt: skip
    log(
        f"  {server.name} hold {reached}/{calls} calls at {rate} cps: idle {idle / 1024:.1f} MB,"
        f" held {held / 1024:.1f} MB, {result.kb_per_call:.1f} kB/call, failed {failed},"
        f" retrans {retrans}, drops {drops}, gc max {result.gc.max_ms:.1f} ms"
    )
    return result


def one_run(
    server: Server, opts: Options, args: argparse.Namespace, run: int, start: int,
    log: Callable[[str], None],
) -> dict[str, float]:  # fmt: skip
    log(f"run {run + 1}/{args.runs}: {server.name}, max rate from {start} cps")
    factor = 1.5 if run == 0 else 1.2
    best, _steps = args.known_max, list[Step]()
    if not best:
        best, _steps = find_max(
            server, opts, run, start, factor, args.step_seconds, args.max_rate, args.resolution,
            log,
        )  # fmt: skip
    fixed = load(server, opts, f"r{run}-cpu", args.rate, args.cpu_seconds)
    log("  cpu: " + fixed.summary())
    half = max(5, best // 2)
    # The same figure at half the maximum, where reads and timers share wake-ups more
    # (no capture running: tcpdump's copies of our sends would be charged to us).
    fixed_half = load(server, opts, f"r{run}-cpu-half", half, args.cpu_seconds)
    log("  cpu at half max: " + fixed_half.summary())
    per_call = fixed.cpu_s / fixed.calls if fixed.calls else math.nan
    calls = max(1, fixed.calls)
    floor = measure_floor(opts, args, run, half, log) if args.floor else {}
    cpu = {
        **floor,
        "max_cps": math.nan if args.known_max else best,  # not measured: given
        "cpu_ms_per_call": per_call * 1e3,
        "cpu_pct_at_rate": 100 * fixed.cpu_s / fixed.elapsed_s,
        "cpu_run_clean": float(fixed.clean),
        "cpu_ms_per_call_half": fixed_half.cpu_s / max(1, fixed_half.calls) * 1e3,
        "cpu_pct_half": 100 * fixed_half.cpu_s / fixed_half.elapsed_s,
        "latency_rate": half,
        "gc_max_ms": fixed.gc.max_ms,
        "gc_p99_ms": fixed.gc.p99_ms,
        "gc_gen2_max_ms": fixed.gc.gen2_max_ms,
        "gc_per_1000_calls": sum(fixed.gc.count) * 1000 / calls,
        "gc_gen2_per_1000_calls": fixed.gc.count[2] * 1000 / calls,
        "gc_us_per_call": fixed.gc.total_ms * 1e3 / calls,
        "host_busy_pct_at_rate": fixed.host_busy_pct,
    }
    if args.cpu_only:
        return cpu
    lat = load(server, opts, f"r{run}-lat", half, args.latency_seconds, capture=True)
    log("  latency: " + lat.summary())
    lat_ms = lat.latency_ms or []
    hold_rate = args.hold_rate or max(10, min(300, round5(best * 0.6)))
    held = hold(server, opts, f"r{run}-hold", args.hold_calls, hold_rate, log)
    if (held.failed or held.reached < held.target * 0.99) and args.hold_calls >= 2000:
        log("  could not hold them all; retrying with half as many")
        held = hold(server, opts, f"r{run}-hold2", args.hold_calls // 2, hold_rate // 2, log)
    return {
        **cpu,
        "latency_p50_ms": percentile(lat_ms, 0.50),
        "latency_p99_ms": percentile(lat_ms, 0.99),
        "latency_max_ms": max(lat_ms, default=math.nan),
        "latency_paired": len(lat_ms),
        "latency_invites": lat.invites_in,
        "latency_run_clean": float(lat.clean),
        "max_steps": len(_steps),
        "idle_rss_mb": held.idle_rss_kb / 1024,
        "held_rss_mb": held.held_rss_kb / 1024,
        "held_calls": held.reached,
        "rss_kb_per_call": held.kb_per_call,
        "hold_rate": hold_rate,
        "hold_failed": held.failed,
        "hold_retrans": held.retrans,
        "hold_drops": held.drops,
        "gc_hold_max_ms": held.gc.max_ms,
        "gc_hold_gen2_max_ms": held.gc.gen2_max_ms,
        "gc_hold_gen2_count": held.gc.count[2],
    }


FLOOR_LOOPS = ("twisted", "raw")


def measure_floor(
    opts: Options, args: argparse.Namespace, run: int, half: int, log: Callable[[str], None]
) -> dict[str, float]:
    """CPU per call of bench/relay.py in the server's place, at ``--rate`` and ``half``:
    what receiving and sending the call's datagrams costs before any SIP work."""
    figures: dict[str, float] = {}
    for loop in FLOOR_LOOPS:
        relay = Server(f"relay-{loop}", sys.executable)
        for key, rate in ((f"floor_{loop}_ms_per_call", args.rate),
                          (f"floor_{loop}_ms_per_call_half", half)):  # fmt: skip
            step = load(relay, opts, f"r{run}-{key}", rate, args.cpu_seconds)
            ms = step.cpu_s / max(1, step.calls) * 1e3
            log(f"  floor: {step.summary()}, {ms:.3f} ms/call")
            figures[key] = ms if step.clean else math.nan  # a relay that failed calls: no figure
    return figures


# --------------------------------------------------------------------------- report

ROWS: list[tuple[str, str, str]] = [
    # key, label, format
    ("max_cps", "max calls/s, 0 failed, 0 retransmissions", "{:.0f}"),
    ("cpu_ms_per_call", "CPU ms per call @ {rate} cps", "{:.3f}"),
    ("cpu_pct_at_rate", "CPU % of one core @ {rate} cps", "{:.1f}"),
    ("latency_rate", "half max (CPU and latency runs), cps", "{:.0f}"),
    ("cpu_ms_per_call_half", "CPU ms per call @ half max", "{:.3f}"),
    ("cpu_pct_half", "CPU % of one core @ half max", "{:.1f}"),
    ("floor_twisted_ms_per_call", "floor: Twisted null relay, ms/call @ {rate}", "{:.3f}"),
    ("floor_twisted_ms_per_call_half", "floor: Twisted null relay, ms/call @ half", "{:.3f}"),
    ("floor_raw_ms_per_call", "floor: bare epoll relay, ms/call @ {rate}", "{:.3f}"),
    ("floor_raw_ms_per_call_half", "floor: bare epoll relay, ms/call @ half", "{:.3f}"),
    ("latency_p50_ms", "INVITE in->out p50 ms", "{:.3f}"),
    ("latency_p99_ms", "INVITE in->out p99 ms", "{:.3f}"),
    ("latency_max_ms", "INVITE in->out max ms", "{:.2f}"),
    ("idle_rss_mb", "RSS idle MB", "{:.1f}"),
    ("held_calls", "concurrent calls held", "{:.0f}"),
    ("held_rss_mb", "RSS with them held MB", "{:.1f}"),
    ("rss_kb_per_call", "RSS kB per concurrent call", "{:.2f}"),
    ("gc_max_ms", "GC pause max ms @ {rate} cps", "{:.2f}"),
    ("gc_p99_ms", "GC pause p99 ms @ {rate} cps", "{:.3f}"),
    ("gc_per_1000_calls", "GC collections per 1000 calls", "{:.0f}"),
    ("gc_gen2_per_1000_calls", "GC gen-2 collections per 1000 calls", "{:.2f}"),
    ("gc_us_per_call", "GC time us per call", "{:.1f}"),
    ("gc_hold_max_ms", "GC pause max ms, opening held calls", "{:.1f}"),
    ("gc_hold_gen2_count", "GC gen-2 collections, opening held calls", "{:.0f}"),
]
LOWER_IS_BETTER = {k for k, _, _ in ROWS} - {"max_cps", "held_calls", "latency_rate"}


def fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return spec.format(value)


def table(
    results: dict[str, dict[str, float]], previous: dict[str, float], args: argparse.Namespace,
    out: Callable[[str], None],
) -> None:  # fmt: skip
    names = list(results)
    head = f"{'metric':<44}" + "".join(f"{n:>11}" for n in names)
    head += f"{'previous':>11}{'change':>9}"
    if "sippy" in results:
        head += f"{'b2bua/sippy':>13}"
    out(head)
    for key, label, spec in ROWS:
        line = f"{label.format(rate=args.rate):<44}"
        line += "".join(f"{fmt(results[n].get(key), spec):>11}" for n in names)
        ours, prev = results["b2bua"].get(key), previous.get(key)
        line += f"{fmt(prev, spec):>11}"
        change = ""
        if prev and ours is not None and not math.isnan(ours):
            change = f"{(ours / prev - 1) * 100:+.0f}%"
        line += f"{change:>9}"
        if "sippy" in results:
            theirs = results["sippy"].get(key)
            ratio = ""
            if theirs and ours is not None and not math.isnan(ours) and not math.isnan(theirs):
                ratio = f"{ours / theirs:.2f}"
            line += f"{ratio:>13}"
        out(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--compare", choices=["sippy"], help="also measure sippy's B2BUA")
    parser.add_argument("--call-ms", type=int, default=100, help="call hold time (SIPp -d)")
    parser.add_argument("--step-seconds", type=float, default=20, help="length of a rate step")
    parser.add_argument("--start-rate", type=int, default=100, help="first rate of run 1")
    parser.add_argument("--max-rate", type=int, default=3000, help="never step above this")
    parser.add_argument("--resolution", type=float, default=0.1, help="bisect to this ratio")
    parser.add_argument("--per-uac", type=int, default=400, help="max calls/s per SIPp UAC")
    parser.add_argument("--rate", type=int, default=100, help="fixed rate of the CPU/GC run")
    parser.add_argument("--cpu-seconds", type=float, default=15)
    parser.add_argument("--latency-seconds", type=float, default=10)
    known = "skip the max search: take this as the max (its half is the second CPU rate)"
    parser.add_argument("--known-max", type=int, default=0, help=known)
    only = "measure only CPU per call (and --floor): no latency run, no held calls"
    parser.add_argument("--cpu-only", action="store_true", help=only)
    floor = "also run bench/relay.py (no SIP work) at the CPU rates: the runtime's floor"
    parser.add_argument("--floor", action="store_true", help=floor)
    parser.add_argument("--hold-calls", type=int, default=10000, help="concurrent calls")
    parser.add_argument("--hold-rate", type=int, default=0, help="0: 60%% of max, <= 300")
    parser.add_argument("--warmup", type=int, default=20, help="calls before each load")
    strict = "sippy's caller fails calls on a late 1xx too (see README)"
    parser.add_argument("--strict-sippy", action="store_true", help=strict)
    parser.add_argument("--workdir", type=Path, help="keep run files here (default: a tmp dir)")
    prof = "after the runs, py-spy record our server this many seconds at --rate"
    parser.add_argument("--profile", type=float, default=0, help=prof)
    src = "import our server from this source tree (e.g. a `git archive` of a commit)"
    parser.add_argument("--source", type=Path, help=src)
    parser.add_argument("--label", help="what was measured (default: git describe of the tree)")
    parser.add_argument("--no-store", action="store_true", help="leave calls.json alone")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    if args.cpu_only or args.known_max:
        args.no_store = True  # a partial record never replaces the stored one
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="b2bua-bench-calls-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    uac_xml, uas_xml = scenario_files(workdir)
    source = str(args.source.resolve()) if args.source else ""
    servers = [Server("b2bua", sys.executable, source)]
    if args.compare == "sippy":
        servers.append(ensure_sippy())
    opts = Options(
        call_ms=args.call_ms, per_uac=args.per_uac, warmup=args.warmup,
        tolerant={"b2bua": False, "sippy": not args.strict_sippy}, workdir=workdir,
        uac_xml=uac_xml, uas_xml=uas_xml,
    )  # fmt: skip
    log(f"run files in {workdir}")
    began = time.monotonic()
    per_run: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
    for run in range(args.runs):
        for server in servers:
            done = [r["max_cps"] for r in per_run[server.name] if r["max_cps"] > 0]
            start = round5(median(done)) if done else args.start_rate
            per_run[server.name].append(one_run(server, opts, args, run, start, log))
    if args.runs > 0:
        results = {
            name: {k: median([r[k] for r in runs]) for k in runs[0]}
            for name, runs in per_run.items()
        }
        minutes = (time.monotonic() - began) / 60
        report(args, opts, results, per_run, minutes)
    if args.profile:
        raw = workdir / "profile.txt"
        log(f"profiling b2bua for {args.profile:.0f} s at {args.rate} cps (py-spy)")
        step = load(servers[0], opts, "profile", args.rate, args.profile, profile=raw)
        log("  " + step.summary())
        print(f"\npy-spy, b2bua at {args.rate} cps; raw stacks in {raw}")
        for title, lines in top_functions(raw, 25):
            print(title)
            for line in lines:
                print("  " + line)


def report(
    args: argparse.Namespace, opts: Options, results: dict[str, dict[str, float]],
    per_run: dict[str, list[dict[str, float]]], minutes: float,
) -> None:  # fmt: skip
    info = machine()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    desc = (
        f"{info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, {python}, "
        f"SIPp {info['sipp']}"
    )
    previous: dict[str, float] = {}
    if STORE.exists():
        previous = json.loads(STORE.read_text()).get("results", {})
    params = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("json", "no_store", "workdir", "profile", "source", "label")
    }
    label = args.label or subprocess.run(
        ["git", "-C", str(args.source or ROOT), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    record: dict[str, object] = {
        "measured": label,
        "machine": desc,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "minutes": round(minutes, 1),
        "params": params,
        "results": results["b2bua"],
        "per_run": per_run["b2bua"],
    }
    if "sippy" in results:
        record["sippy"] = {
            "version": SIPPY_VERSION,
            "results": results["sippy"],
            "per_run": per_run["sippy"],
        }
    if not args.no_store:
        STORE.parent.mkdir(exist_ok=True)
        STORE.write_text(json.dumps(_nan_safe(record), indent=2) + "\n")
    if args.json:
        print(json.dumps(_nan_safe(record)))
        return
    print(f"{desc}; measured: {label}")
    caller = "SIPp uac, strict for b2bua"
    if "sippy" in results:
        caller += ", tolerant of late 1xx for sippy" if opts.tolerant["sippy"] else ", and sippy"
    print(
        f"median of {args.runs} runs ({minutes:.1f} min); calls held {args.call_ms} ms, UDP, "
        f"{args.step_seconds:g}-s rate steps; caller: {caller}"
    )
    table(results, previous, args, print)


def _nan_safe(value: object) -> object:
    """JSON has no NaN: figures that could not be taken become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_safe(v) for v in value]
    return value


def top_functions(raw: Path, n: int) -> list[tuple[str, list[str]]]:
    """Own and inclusive samples per function from py-spy's raw (collapsed) output.

    Samples whose innermost frame is the reactor's ``doPoll`` are the reactor
    waiting in epoll (py-spy's --nonblocking mode cannot tell them idle): they are
    counted apart, and the shares are of the remaining, busy samples.
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = waiting = 0
    try:
        lines = raw.read_text().splitlines()
    except OSError:
        return [("(no profile: is py-spy installed in the venv?)", [])]
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        if frames[-1].startswith(("EPollReactor.doPoll", "PollReactor.doPoll")):
            waiting += int(count)
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        total += int(count)

    def top(counts: dict[str, int]) -> list[str]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
        return [f"{c / max(1, total) * 100:5.1f}%  {f}" for f, c in ranked]

    head = f"{total} busy samples ({waiting} more waiting in epoll); own samples by function:"
    return [(head, top(own)), ("inclusive samples by function:", top(inclusive))]


if __name__ == "__main__":
    main()
