"""The dispatcher in the real server: SIPp UAC -> twistd b2bua -> two SIPp UAS (PBXs).

The caller lives on 127.0.0.2, the server on 127.0.0.1 and the two PBXs on
127.0.0.3 (two ports).  The PBXs are SIPp's built-in ``uas`` with ``-aa``, which
also answers the server's OPTIONS probes with 200.  Which PBX got a call is read
from each UAS's message trace (``-trace_msg``): the distinct Call-IDs of the
INVITEs it received.

One test walks the whole story with probes every 0.5 s (failure and recovery
thresholds 2):

1. 100 calls are spread 50/50 over the two PBXs (round robin), none fails;
2. PBX 2 is killed while a batch of calls runs; the probes mark it down;
3. the next batch goes to PBX 1 only, with no failed call;
4. PBX 2 comes back, the probes mark it up, and the next batch is shared again.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port
from tests.integration.harness import running_server

CALLER, SERVER, CALLEE = "127.0.0.2", "127.0.0.1", "127.0.0.3"
INTERVAL = 0.5  # probe_interval (and so probe_timeout)
INVITE_TIMEOUT = 1.0  # the group's timeout: a silent PBX is given up after it


def dispatcher_config(port: int, pbx_ports: tuple[int, int]) -> str:
    destinations = "".join(
        f'[[plugin.group.destination]]\nuri = "sip:{CALLEE}:{p}"\n' for p in pbx_ports
    )
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f'[[listen]]\ntransport = "tcp"\nhost = "{SERVER}"\nport = {port}\n\n'
        "[server]\ndrain_time = 1.0\n\n"
        '[[plugin]]\nmodule = "dispatcher"\ndefault_group = "pbx"\n'
        f"probe_interval = {INTERVAL}\nfailure_threshold = 2\nrecovery_threshold = 2\n"
        f"timeout = {INVITE_TIMEOUT}\n"
        '[[plugin.group]]\nname = "pbx"\nalgorithm = "round-robin"\n'
        f"{destinations}"
    )


class PBX:
    """A SIPp UAS on 127.0.0.3 that answers INVITE and OPTIONS; restartable on its port."""

    def __init__(self, sipp: str, port: int, workdir: Path) -> None:
        self.sipp, self.port, self.workdir = sipp, port, workdir
        self.media = free_port("udp")
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(exist_ok=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.sipp, "-cp", str(free_port("udp")), "-sn", "uas", "-aa", "-i", CALLEE, "-p", str(self.port),
                "-mp", str(self.media), "-nostdin", "-trace_msg", "-timeout", "120s",
            ],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def calls(self) -> set[str]:
        """The Call-IDs of the INVITEs this PBX received and that were not cancelled.

        The server keeps retransmitting an INVITE it gave up on (RFC 3261 9.1: no
        CANCEL before a provisional response), so a PBX that comes back receives the
        INVITEs of calls that failed over while it was dead, and the server cancels
        them at their first 180.  Those are not calls the dispatcher sent it.
        """
        invited: set[str] = set()
        cancelled: set[str] = set()
        for log in self.workdir.glob("*_messages.log"):
            for block in log.read_text(errors="replace").split("\n\n"):
                method = re.search(r"^(INVITE|CANCEL) sip:", block, re.M)
                call_id = re.search(r"^Call-ID:\s*(\S+)", block, re.M | re.I)
                if method and call_id:
                    seen = invited if method.group(1) == "INVITE" else cancelled
                    seen.add(call_id.group(1))
        return invited - cancelled


def uac(sipp: str, server_port: int, cwd: Path, *, calls: int, rate: int) -> subprocess.Popen[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            sipp, "-cp", str(free_port("udp")), "-sn", "uac", f"{SERVER}:{server_port}", "-i", CALLER,
            "-p", str(free_port("udp")), "-mp", str(free_port("udp")),
            "-m", str(calls), "-r", str(rate), "-d", "100", "-nostdin",
            "-timeout", "40s", "-timeout_error", "-trace_err",
        ],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[int, int, str]:
    """Wait for a UAC; its (successful, failed) call counts and output."""
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return _count(out, "Successful call"), _count(out, "Failed call"), out


def _count(out: str, label: str) -> int:
    m = re.search(label + r"\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return int(m.group(1)) if m else -1


def test_balances_marks_a_dead_pbx_down_and_takes_it_back(sipp: str, tmp_path: Path) -> None:
    port = free_port("both")
    pbx1 = PBX(sipp, free_port("udp"), tmp_path / "pbx1")
    pbx2 = PBX(sipp, free_port("udp"), tmp_path / "pbx2")
    uri2 = re.escape(f"sip:{CALLEE}:{pbx2.port}")
    pbx1.start()
    pbx2.start()
    try:
        config = dispatcher_config(port, (pbx1.port, pbx2.port))
        with running_server(tmp_path, config, ready_udp=port) as server:
            # 1. both up: 100 calls, 50 each, none failed
            ok, failed, out = finish(uac(sipp, port, tmp_path / "uac1", calls=100, rate=50))
            assert (ok, failed) == (100, 0), out[-3000:] + server.log[-3000:]
            one, two = pbx1.calls(), pbx2.calls()
            assert (len(one), len(two)) == (50, 50)

            # 2. PBX 2 dies while calls are running; the probes mark it down
            running = uac(sipp, port, tmp_path / "uac2", calls=30, rate=20)
            time.sleep(0.5)
            pbx2.kill()
            killed = time.monotonic()
            ok, failed, out = finish(running)
            assert ok + failed == 30, out[-3000:]
            server.wait_log(rf"{uri2} is DOWN")
            detected = time.monotonic() - killed
            # two failed probes: at most about three intervals (plus a call timeout)
            assert detected < 2 * INVITE_TIMEOUT + 4 * INTERVAL, detected

            # 3. after detection: every call to PBX 1, none failed
            one, two = pbx1.calls(), pbx2.calls()
            ok, failed, out = finish(uac(sipp, port, tmp_path / "uac3", calls=20, rate=20))
            assert (ok, failed) == (20, 0), out[-3000:] + server.log[-3000:]
            assert len(pbx1.calls() - one) == 20
            assert pbx2.calls() == two

            # 4. PBX 2 is back: marked up, and calls are shared again
            pbx2.start()
            server.wait_log(rf"{uri2} is UP again")
            one, two = pbx1.calls(), pbx2.calls()
            ok, failed, out = finish(uac(sipp, port, tmp_path / "uac4", calls=20, rate=20))
            assert (ok, failed) == (20, 0), out[-3000:] + server.log[-3000:]
            assert (len(pbx1.calls() - one), len(pbx2.calls() - two)) == (10, 10)
            assert "Traceback" not in server.log, server.log[-4000:]
    finally:
        pbx1.kill()
        pbx2.kill()
