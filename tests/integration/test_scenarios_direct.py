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
import re
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


def udp_bound(port: int, host: str = LOOPBACK) -> bool:
    """Whether something listens on UDP ``host``:``port`` (IPv4; read from /proc, no probing)."""
    address = socket.inet_aton(host)[::-1].hex().upper()  # /proc/net/udp: little-endian
    wanted = f"{address}:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == wanted for line in list(table)[1:])


def wait_bound(
    proc: subprocess.Popen[bytes], port: int, workdir: Path, host: str = LOOPBACK
) -> None:
    """Wait until the SIPp ``proc`` (run in ``workdir``) listens on UDP ``host``:``port``."""
    deadline = time.monotonic() + 10
    while not udp_bound(port, host):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                "UAS did not start\n" + Outcome("UAS", proc.poll(), workdir).report()
            )
        time.sleep(0.02)


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
        wait_bound(uas_proc, uas_port, workdir / "uas")
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


def test_cancel_on_the_100_reaches_the_cancelled_uas(sipp: str, tmp_path: Path) -> None:
    """RFC 3261 9.1: the CANCEL may follow any provisional response, the 100 included,
    which is what a parallel fork does when another branch answers at once.  This peer
    sends it the moment the 100 arrives, before cancel_uas.xml sends its 180 (SIPp sends
    the two in separate passes): the UAS must still answer 200 (CANCEL), 487, take the ACK.
    """
    port = free_port("udp")
    workdir = tmp_path / "uas"
    with started(sipp_command(sipp, CALLS / "cancel_uas.xml", port), workdir) as proc:
        wait_bound(proc, port, workdir)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.settimeout(5)
            me = sock.getsockname()[1]
            head = (
                f"Via: SIP/2.0/UDP {LOOPBACK}:{me};branch=z9hG4bK-early-cancel\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:caller@{LOOPBACK}>;tag=early\r\n"
                f"Call-ID: early-cancel-{me}\r\n"
            )

            def request(method: str, to: str = f"<sip:callee@{LOOPBACK}:{port}>") -> bytes:
                return (
                    f"{method} sip:callee@{LOOPBACK}:{port} SIP/2.0\r\n{head}To: {to}\r\n"
                    f"CSeq: 1 {method}\r\nContact: <sip:caller@{LOOPBACK}:{me}>\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode()

            sock.sendto(request("INVITE"), (LOOPBACK, port))
            first = sock.recv(65535).decode(errors="replace")
            assert first.startswith("SIP/2.0 100 "), first
            sock.sendto(request("CANCEL"), (LOOPBACK, port))
            seen: list[str] = []
            while True:
                try:
                    response = sock.recv(65535).decode(errors="replace")
                except TimeoutError:
                    rc = wait_exit(proc, 1)
                    raise AssertionError(
                        f"no 487 (got {seen})\n" + Outcome("UAS", rc, workdir).report()
                    ) from None
                cseq = re.search(r"^CSeq: *(.*?)\r$", response, re.M | re.I)
                seen.append(f"{response.split(' ', 2)[1]} {cseq and cseq.group(1)}")
                if response.startswith("SIP/2.0 487 "):
                    to = re.search(r"^To: *(.*?)\r$", response, re.M | re.I)
                    assert to is not None, response
                    sock.sendto(request("ACK", to.group(1)), (LOOPBACK, port))
                    break
        rc = wait_exit(proc, PROCESS_DEADLINE)
    assert rc == 0, f"{seen}\n" + Outcome("UAS", rc, workdir).report()
    # a 180 may or may not have left before the CANCEL was read; the rest is fixed
    assert [s for s in seen if not s.startswith("180 ")] == ["200 1 CANCEL", "487 1 INVITE"]


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
