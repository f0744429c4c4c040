"""The SIPp call scenarios in ``scenarios/calls/``, run directly: UAC -> UAS, no B2BUA.

Each pair is run once on loopback, one pair at a time, and both SIPp processes must
exit 0.  That proves the scenarios are valid SIP and that their own assertions hold
against a correct peer before the B2BUA exists; the B2BUA tests later run the same
files through the server (``scenarios/calls/README.md`` says how).  Scenarios that
only make sense through a B2BUA are exercised here against a stand-in peer (the
failover targets against small probes generated in the test).  A few mutants then show
that the UAS-side assertions are not vacuous: a peer that gets a branch wrong, or
sends an offer where none is allowed, makes the UAS fail.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

CALLS = Path(__file__).resolve().parent / "scenarios" / "calls"
LOOPBACK = "127.0.0.1"

# Seconds: SIPp's own -timeout for one call, and the hard limit per SIPp process.
SIPP_TIMEOUT = 15
PROCESS_DEADLINE = 40


@dataclass(frozen=True)
class Pair:
    name: str
    uas: str
    uac: str


# Every pair that works without a B2BUA (README.md: "direct").
DIRECT_PAIRS = [
    Pair("basic call", "basic_uas.xml", "basic_uac.xml"),
    Pair("CANCEL before answer", "cancel_uas.xml", "cancel_uac.xml"),
    Pair("CANCEL crossing a 200", "cancel_crossing_uas.xml", "cancel_crossing_direct_uac.xml"),
    Pair("BYE from the callee", "bye_callee_uas.xml", "bye_callee_uac.xml"),
    Pair("hold/resume by the caller", "hold_caller_uas.xml", "hold_caller_uac.xml"),
    Pair("hold/resume by the callee", "hold_callee_uas.xml", "hold_callee_uac.xml"),
    Pair("UPDATE in an early dialog", "early_update_uas.xml", "early_update_uac.xml"),
    Pair("PRACK then UPDATE", "early_update_prack_uas.xml", "early_update_prack_uac.xml"),
    Pair("486 Busy Here", "busy_uas.xml", "busy_uac.xml"),
    Pair("late offer", "late_offer_uas.xml", "late_offer_uac.xml"),
    Pair("183 with SDP then 180", "early_media_uas.xml", "early_media_uac.xml"),
    Pair("forked 2xx", "forked_uas.xml", "forked_direct_uac.xml"),
    Pair("491 glare", "glare_uas.xml", "glare_uac.xml"),
]
# The B2BUA-only cases reuse files run above (README.md): "CANCEL crossing a 200" is
# cancel_uac.xml (as in "CANCEL before answer") + cancel_crossing_uas.xml (as in the
# direct crossing); "duration limit" is bye_callee_uac.xml + basic_uas.xml, each of which
# already gets a BYE above; failover and forking use basic_uac.xml / basic_uas.xml.

# A UAC that expects no answer at all within 1.5 s (for silent_uas.xml).
SILENT_PROBE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="probe: no answer expected">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv
      From: probe <sip:probe@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:probe@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" timeout="1500" ontimeout="silent"/>
  <nop><action><warning message="ASSERTION FAILED: the silent UAS answered"/></action></nop>
  <recv request="ASSERTION_FAILED" timeout="1"/>
  <label id="silent"/>
  <nop><action><log message="no answer, as expected"/></action></nop>
</scenario>
"""


@dataclass(frozen=True)
class Mutant:
    """A UAC scenario changed in one place; the UAS must notice and fail."""

    name: str
    uas: str
    uac: str
    start: str  # first line of the message to change
    old: str  # replaced in that message (first occurrence after ``start``)
    new: str
    expected: str  # text in the UAS's error log


MUTANTS = [
    Mutant(
        "CANCEL with its own branch",
        "cancel_uas.xml", "cancel_uac.xml",
        "CANCEL sip:", "-[call_number]-inv", "-[call_number]-cxl",
        "ASSERTION FAILED: CANCEL branch",
    ),
    Mutant(
        "ACK of a 487 with its own branch",
        "cancel_uas.xml", "cancel_uac.xml",
        "ACK sip:", "-[call_number]-inv", "-[call_number]-ack",
        "ASSERTION FAILED: ACK of the 487",
    ),
    Mutant(
        "ACK of a 486 with its own branch",
        "busy_uas.xml", "busy_uac.xml",
        "ACK sip:", "-[call_number]-inv", "-[call_number]-ack",
        "ASSERTION FAILED: ACK of the 486",
    ),
    Mutant(
        "ACK of a 2xx reusing the INVITE branch",
        "basic_uas.xml", "basic_uac.xml",
        "ACK [next_url]", "branch=[branch]", "branch=z9hG4bK-[pid]-[call_number]-inv",
        "ASSERTION FAILED: the ACK for the 2xx reused the INVITE branch",
    ),
    Mutant(
        "an SDP offer sent to the late-offer callee",
        "late_offer_uas.xml", "basic_uac.xml",
        "INVITE sip:", "", "",
        "Regexp matched but should not",
    ),
]  # fmt: skip


@dataclass
class Outcome:
    role: str
    returncode: int | None
    workdir: Path

    def report(self) -> str:
        """SIPp's error log(s) and the end of its screen, for assertion messages."""
        parts = [f"--- {self.role}: exit {self.returncode} ({self.workdir})"]
        for log in sorted(self.workdir.glob("*_errors.log")):
            parts.append(f"{log.name}:\n{log.read_text(errors='replace')[-3000:]}")
        screen = self.workdir / "screen.txt"
        if screen.exists():
            parts.append("screen (end):\n" + screen.read_text(errors="replace")[-1500:])
        return "\n".join(parts)

    @property
    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))


def free_media_port() -> int:
    """A UDP port p on loopback with p + 2 free too (SIPp binds both for media echo)."""
    for _ in range(50):
        port = free_port("udp")
        if port + 2 > 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((LOOPBACK, port + 2))
        except OSError:
            continue
        return port
    raise RuntimeError("no free media port pair on loopback")


def udp_bound(port: int) -> bool:
    """Whether something listens on UDP 127.0.0.1:``port`` (read from /proc, no probing)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == wanted for line in list(table)[1:])


def sipp_command(
    sipp: str, scenario: Path, port: int, *, target: int | None = None, timeout: int = SIPP_TIMEOUT
) -> list[str]:
    """One bounded SIPp call on loopback: UAS when ``target`` is None, else UAC to it."""
    cmd = [sipp, "-sf", str(scenario)]
    if target is not None:
        cmd.append(f"{LOOPBACK}:{target}")
    return [
        *cmd,
        "-i", LOOPBACK, "-p", str(port), "-mp", str(free_media_port()),
        "-cp", str(free_port("udp")), "-m", "1", "-nostdin",
        "-timeout", f"{timeout}s", "-timeout_error",
        "-trace_err", "-trace_msg", "-trace_logs",
    ]  # fmt: skip


@contextlib.contextmanager
def started(cmd: list[str], workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start SIPp in ``workdir``; kill it (by its pid) if it is still running afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "screen.txt").open("wb") as screen:
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def run_pair(
    sipp: str, workdir: Path, uas: Path, uac: Path, *, until: str = "both"
) -> tuple[Outcome, Outcome]:
    """Run ``uas`` then ``uac`` against it; return both outcomes (exit None: killed).

    ``until``: "both" waits for both to exit; "uas" / "uac" waits for that one and
    gives the other half a second before killing it (for runs meant to fail).
    """
    uas_port, uac_port = free_port("udp"), free_port("udp")
    uas_cmd = sipp_command(sipp, uas, uas_port)
    uac_cmd = sipp_command(sipp, uac, uac_port, target=uas_port)
    with started(uas_cmd, workdir / "uas") as uas_proc:
        deadline = time.monotonic() + 10
        while not udp_bound(uas_port):
            if uas_proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "UAS did not start\n"
                    + Outcome("UAS", uas_proc.poll(), workdir / "uas").report()
                )
            time.sleep(0.02)
        with started(uac_cmd, workdir / "uac") as uac_proc:
            if until == "uas":
                uas_rc = wait_exit(uas_proc, PROCESS_DEADLINE)
                uac_rc = wait_exit(uac_proc, 0.5)
            elif until == "uac":
                uac_rc = wait_exit(uac_proc, PROCESS_DEADLINE)
                uas_rc = wait_exit(uas_proc, 0.5)
            else:
                uac_rc = wait_exit(uac_proc, PROCESS_DEADLINE)
                uas_rc = wait_exit(uas_proc, PROCESS_DEADLINE)
    return Outcome("UAS", uas_rc, workdir / "uas"), Outcome("UAC", uac_rc, workdir / "uac")


@pytest.mark.parametrize("pair", DIRECT_PAIRS, ids=lambda p: p.name)
def test_pair_runs_directly(sipp: str, tmp_path: Path, pair: Pair) -> None:
    uas, uac = run_pair(sipp, tmp_path, CALLS / pair.uas, CALLS / pair.uac)
    assert (uas.returncode, uac.returncode) == (0, 0), uas.report() + "\n" + uac.report()


def test_first_target_503_answers_and_takes_its_ack(sipp: str, tmp_path: Path) -> None:
    # busy_uac.xml expecting a 503 instead of a 486: INVITE -> 503 -> ACK (INVITE's branch).
    probe = tmp_path / "expect_503_uac.xml"
    text = (CALLS / "busy_uac.xml").read_text()
    assert text.count('<recv response="486">') == 1
    probe.write_text(text.replace('<recv response="486">', '<recv response="503">'))
    uas, uac = run_pair(sipp, tmp_path, CALLS / "fail503_uas.xml", probe)
    assert (uas.returncode, uac.returncode) == (0, 0), uas.report() + "\n" + uac.report()


def test_silent_target_never_answers(sipp: str, tmp_path: Path) -> None:
    probe = tmp_path / "expect_silence_uac.xml"
    probe.write_text(SILENT_PROBE)
    uas, uac = run_pair(sipp, tmp_path, CALLS / "silent_uas.xml", probe)
    assert (uas.returncode, uac.returncode) == (0, 0), uas.report() + "\n" + uac.report()


def mutate(text: str, mutant: Mutant) -> str:
    if not mutant.old:
        return text
    start = text.index(mutant.start)
    at = text.index(mutant.old, start)
    return text[:at] + mutant.new + text[at + len(mutant.old) :]


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_uas_assertions_catch_a_faulty_peer(sipp: str, tmp_path: Path, mutant: Mutant) -> None:
    uac = tmp_path / f"mutant_{mutant.uac}"
    original = (CALLS / mutant.uac).read_text()
    uac.write_text(mutate(original, mutant))
    assert uac.read_text() != original or not mutant.old
    uas, _ = run_pair(sipp, tmp_path, CALLS / mutant.uas, uac, until="uas")
    assert uas.returncode not in (0, None), uas.report()
    assert mutant.expected in uas.errors, uas.report()


def test_caller_rejects_a_second_2xx_from_another_fork(sipp: str, tmp_path: Path) -> None:
    # What the caller sees if a B2BUA let a forked second 2xx through.
    _, uac = run_pair(
        sipp, tmp_path, CALLS / "forked_uas.xml", CALLS / "basic_uac.xml", until="uac"
    )
    assert uac.returncode not in (0, None), uac.report()
    assert "ASSERTION FAILED: a second 2xx" in uac.errors, uac.report()


def test_every_scenario_file_is_run_here() -> None:
    used = {f for p in DIRECT_PAIRS for f in (p.uas, p.uac)} | {"fail503_uas.xml", "silent_uas.xml"}
    assert {p.name for p in CALLS.glob("*.xml")} == used
