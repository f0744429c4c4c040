"""The call scenarios of ``scenarios/calls/`` run through the real server.

Each case starts its callee(s) (SIPp UAS), runs the caller (SIPp UAC) against the
server, and requires every SIPp process to exit 0: each side checks what it
receives (``scenarios/calls/README.md`` lists the checks).  The cases with
ordinary routing share one server; failover and the duration limit get their own.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import ServerProcess, running_server

CALLS = Path(__file__).resolve().parent / "scenarios" / "calls"
LOOPBACK = "127.0.0.1"
DEADLINE = 45


@dataclass(frozen=True)
class Case:
    name: str
    uac: str
    uas: tuple[str, ...]


ROUTED = [
    Case("basic call", "basic_uac.xml", ("basic_uas.xml",)),
    Case("CANCEL before answer", "cancel_uac.xml", ("cancel_uas.xml",)),
    Case("CANCEL crossing a 200", "cancel_uac.xml", ("cancel_crossing_uas.xml",)),
    Case("BYE from the callee", "bye_callee_uac.xml", ("bye_callee_uas.xml",)),
    Case("hold and resume by the caller", "hold_caller_uac.xml", ("hold_caller_uas.xml",)),
    Case("hold and resume by the callee", "hold_callee_uac.xml", ("hold_callee_uas.xml",)),
    Case("UPDATE in an early dialog", "early_update_uac.xml", ("early_update_uas.xml",)),
    Case("PRACK then UPDATE", "early_update_prack_uac.xml", ("early_update_prack_uas.xml",)),
    Case("486 passed through", "busy_uac.xml", ("busy_uas.xml",)),
    Case("late offer", "late_offer_uac.xml", ("late_offer_uas.xml",)),
    Case("183 and 180 with SDP", "early_media_uac.xml", ("early_media_uas.xml",)),
    Case("forked 2xx", "basic_uac.xml", ("forked_uas.xml",)),
    Case("491 glare", "glare_uac.xml", ("glare_uas.xml",)),
]


def _sipp_args(sipp: str, scenario: str, port: int, *extra: str) -> list[str]:
    return [
        sipp, "-sf", str(CALLS / scenario), "-i", LOOPBACK, "-p", str(port),
        "-mp", str(free_port("udp")), "-cp", str(free_port("udp")), "-m", "1", "-nostdin",
        "-timeout", "30s", "-timeout_error", "-trace_err", *extra,
    ]  # fmt: skip


def run_case(
    sipp: str, workdir: Path, server_port: int, uac: str, callees: list[tuple[str, int]]
) -> float:
    """Run the callees, then the caller; assert every SIPp exits 0; return the call time."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            _sipp_args(sipp, scenario, port),
            cwd=workdir,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for scenario, port in callees
    ]
    time.sleep(0.3)  # let the UAS bind
    started = time.monotonic()
    caller = subprocess.run(
        [*_sipp_args(sipp, uac, free_port("udp")), f"{LOOPBACK}:{server_port}"],
        cwd=workdir, capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        outputs.append((proc.returncode, out))
    errors = "\n".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("*errors.log"))
    assert caller.returncode == 0, f"caller failed:\n{caller.stdout[-2500:]}\n{errors}"
    for code, out in outputs:
        assert code == 0, f"callee failed:\n{out[-2500:]}\n{errors}"
    return elapsed


def config(port: int, targets: list[int], extra: str = "") -> str:
    quoted = ", ".join(f'"sip:{LOOPBACK}:{t}"' for t in targets)
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{LOOPBACK}"\nport = {port}\n\n{extra}\n'
        f'[[plugin]]\nmodule = "static_routes"\n[[plugin.route]]\ntargets = [{quoted}]\n'
    )


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int, int]]:
    port, callee = free_port("udp"), free_port("udp")
    workdir = tmp_path_factory.mktemp("routed")
    with running_server(workdir, config(port, [callee]), ready_udp=port) as server:
        yield server, port, callee


@pytest.mark.parametrize("case", ROUTED, ids=[c.name for c in ROUTED])
def test_scenario_through_the_b2bua(
    case: Case, routed: tuple[ServerProcess, int, int], sipp: str, tmp_path: Path
) -> None:
    server, port, callee = routed
    run_case(sipp, tmp_path, port, case.uac, [(case.uas[0], callee)])
    assert server.alive() and "Traceback" not in server.log, server.log[-3000:]


def test_first_target_503_then_second_answers(sipp: str, tmp_path: Path) -> None:
    port, first, second = free_port("udp"), free_port("udp"), free_port("udp")
    with running_server(tmp_path, config(port, [first, second]), ready_udp=port) as server:
        run_case(
            sipp, tmp_path / "run", port, "basic_uac.xml",
            [("fail503_uas.xml", first), ("basic_uas.xml", second)],
        )  # fmt: skip
        assert "Traceback" not in server.log


def test_silent_first_target_fails_over_on_timeout(sipp: str, tmp_path: Path) -> None:
    port, first, second = free_port("udp"), free_port("udp"), free_port("udp")
    extra = "[bridge]\nanswer_timeout = 1.5\n"
    with running_server(tmp_path, config(port, [first, second], extra), ready_udp=port) as server:
        elapsed = run_case(
            sipp, tmp_path / "run", port, "basic_uac.xml",
            [("silent_uas.xml", first), ("basic_uas.xml", second)],
        )  # fmt: skip
        assert elapsed >= 1.5
        assert "Traceback" not in server.log


def test_call_ended_by_the_duration_limit(sipp: str, tmp_path: Path) -> None:
    port, callee = free_port("udp"), free_port("udp")
    extra = "[bridge]\nmax_duration = 3.0\n"
    with running_server(tmp_path, config(port, [callee], extra), ready_udp=port) as server:
        elapsed = run_case(
            sipp, tmp_path / "run", port, "bye_callee_uac.xml", [("basic_uas.xml", callee)]
        )
        assert 3.0 <= elapsed < 10.0
        assert "Traceback" not in server.log
