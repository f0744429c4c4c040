"""SIGHUP reloads the configuration's plugins under real calls (twistd + SIPp).

The caller is on 127.0.0.2, the server on 127.0.0.1, callee A on 127.0.0.3 and
callee B on 127.0.0.4.  A long call to A is in progress while the route is
changed to B: new calls go to B, the long call completes normally, and a broken
configuration afterwards is refused while B keeps getting the calls.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import free_port
from tests.integration.harness import ServerProcess, running_server

CALLER, SERVER, CALLEE_A, CALLEE_B = "127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.4"


def routed_to(port: int, callee: str, callee_port: int, extra: str = "") -> str:
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n{extra}\n'
        f'[[plugin]]\nmodule = "static_routes"\n\n'
        f'[[plugin.route]]\ntargets = ["sip:{callee}:{callee_port}"]\n'
    )


def uas(sipp: str, host: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    cwd.mkdir()
    return subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), "-sn", "uas", "-i", host, "-p", str(port), "-nostdin", "-timeout", "120s",
         "-trace_msg"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def uac(sipp: str, port: int, cwd: Path, pause_ms: int) -> subprocess.Popen[str]:
    cwd.mkdir()
    return subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), "-sn", "uac", f"{SERVER}:{port}", "-i", CALLER, "-p", str(free_port("udp")),
         "-m", "1", "-d", str(pause_ms), "-nostdin", "-timeout", "60s", "-timeout_error",
         "-trace_err"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def invites(cwd: Path) -> int:
    """INVITEs a SIPp UAS received (from its -trace_msg log)."""
    text = "".join(p.read_text(errors="replace") for p in cwd.glob("*_messages.log"))
    return len(re.findall(r"^INVITE sip:", text, re.M))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def hup(server: ServerProcess, text: str, count: int) -> None:
    """SIGHUP, then wait until the server has logged ``text`` ``count`` times."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: server.log.count(text) >= count, f"{text!r} in the log:\n{server.log}")


def test_sighup_routes_new_calls_anew_and_keeps_the_calls_in_progress(
    tmp_path: Path, sipp: str
) -> None:
    port, port_a, port_b = free_port("udp"), free_port("udp"), free_port("udp")
    callee_a = uas(sipp, CALLEE_A, port_a, tmp_path / "uas_a")
    callee_b = uas(sipp, CALLEE_B, port_b, tmp_path / "uas_b")
    try:
        with running_server(tmp_path, routed_to(port, CALLEE_A, port_a), ready_udp=port) as server:
            config = server.config_path
            long_call = uac(sipp, port, tmp_path / "uac_long", pause_ms=5000)
            wait_for(lambda: invites(tmp_path / "uas_a") == 1, "the long call to reach A")

            # a new route (and a setting that cannot change without a restart)
            config.write_text(
                routed_to(port, CALLEE_B, port_b, "[server]\nstats_interval = 30.0\n")
            )
            hup(server, "Reloaded configuration from", 1)
            assert f"Reloaded configuration from {config} (plugins: static_routes)" in server.log
            assert f"{config}: server.stats_interval changed: needs a restart" in server.log
            assert long_call.poll() is None, "the long call ended before the reload"

            code, out = finished(uac(sipp, port, tmp_path / "uac_new", pause_ms=100))
            assert code == 0, out[-3000:] + server.log[-3000:]
            assert invites(tmp_path / "uas_b") == 1
            assert long_call.poll() is None, "the long call ended early"

            code, out = finished(long_call)
            assert code == 0, out[-3000:] + server.log[-3000:]
            assert invites(tmp_path / "uas_a") == 1

            # a broken file is refused, naming file, line and key; B keeps the calls
            config.write_text("bogus = 1\n" + routed_to(port, CALLEE_A, port_a))
            hup(server, "Configuration not reloaded", 1)
            assert (
                f"Configuration not reloaded, the running one stays: {config}:1: bogus:"
                " unknown key" in server.log
            )
            code, out = finished(uac(sipp, port, tmp_path / "uac_after", pause_ms=100))
            assert code == 0, out[-3000:] + server.log[-3000:]
            assert invites(tmp_path / "uas_b") == 2 and invites(tmp_path / "uas_a") == 1

            assert server.stop() == 0
            assert "Traceback" not in server.log, server.log
    finally:
        for callee in (callee_a, callee_b):
            callee.terminate()
            try:
                callee.wait(10)
            except subprocess.TimeoutExpired:
                callee.kill()
                callee.wait()
