"""Real calls through the real server: SIPp UAC -> twistd b2bua -> SIPp UAS.

The caller lives on 127.0.0.2, the server on 127.0.0.1 and the callee on
127.0.0.3, so addresses on the wire say which side they belong to.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import ServerProcess, running_server

CALLER, SERVER, CALLEE = "127.0.0.2", "127.0.0.1", "127.0.0.3"


def bridge_config(port: int, targets: list[str], extra: str = "") -> str:
    quoted = ", ".join(f'"{t}"' for t in targets)
    return (
        f'[[listen]]\ntransport = "udp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f'[[listen]]\ntransport = "tcp"\nhost = "{SERVER}"\nport = {port}\n\n'
        f"{extra}\n"
        f'[[plugin]]\nmodule = "static_routes"\n[[plugin.route]]\ntargets = [{quoted}]\n'
    )


def uas(
    sipp: str, port: int, cwd: Path, *args: str, scenario: str = "uas"
) -> subprocess.Popen[str]:
    cwd.mkdir(exist_ok=True)
    sf = ["-sn", scenario] if not scenario.endswith(".xml") else ["-sf", scenario]
    return subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), *sf, "-i", CALLEE, "-p", str(port), "-nostdin", "-timeout", "120s", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def uac(
    sipp: str, server_port: int, cwd: Path, *args: str, calls: int, rate: int, timeout: int = 90
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    cmd = [
        sipp, "-cp", str(free_port("udp")), "-sn", "uac", f"{SERVER}:{server_port}", "-i", CALLER, "-p", str(free_port("udp")),
        "-m", str(calls), "-r", str(rate), "-nostdin", "-timeout", f"{timeout}s",
        "-timeout_error", "-trace_err", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout + 30)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
def bridged(tmp_path: Path, sipp: str) -> Iterator[tuple[ServerProcess, int, int]]:
    port, callee_port = free_port("both"), free_port("udp")
    config = bridge_config(port, [f"sip:{CALLEE}:{callee_port}"])
    with running_server(tmp_path, config, ready_udp=port) as server:
        yield server, port, callee_port


def successful(out: str) -> int:
    m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return int(m.group(1)) if m else -1


def test_thousand_calls_at_50_per_second(
    bridged: tuple[ServerProcess, int, int], sipp: str, tmp_path: Path
) -> None:
    server, port, callee_port = bridged
    callee = uas(sipp, callee_port, tmp_path / "uas")
    try:
        result = uac(sipp, port, tmp_path / "uac", "-d", "100", calls=1000, rate=50)
    finally:
        stop(callee)
    assert result.returncode == 0, result.stdout[-3000:] + server.log[-3000:]
    assert successful(result.stdout) == 1000
    assert re.search(r"Failed call\s*\|\s*\d+\s*\|\s*0\b", result.stdout)
    assert "Traceback" not in server.log


def _messages(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in directory.glob("*_messages.log"))


def _headers_only(log: str) -> str:
    """The SIP header sections of a SIPp message log (bodies carry media addresses)."""
    out = []
    for block in re.split(r"\n\s*\n", log):
        if re.search(r"^(SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0)", block, re.M):
            out.append(block)
    return "\n".join(out)


def _values(log: str, pattern: str) -> set[str]:
    return {m.group(1) for m in re.finditer(pattern, log, re.M | re.I)}


def test_topology_hidden_on_the_wire(
    bridged: tuple[ServerProcess, int, int], sipp: str, tmp_path: Path
) -> None:
    _server, port, callee_port = bridged
    callee = uas(sipp, callee_port, tmp_path / "uas", "-trace_msg")
    try:
        result = uac(sipp, port, tmp_path / "uac", "-trace_msg", "-d", "100", calls=10, rate=10)
    finally:
        stop(callee)
    assert result.returncode == 0, result.stdout[-3000:]
    caller_side = _messages(tmp_path / "uac")
    callee_side = _messages(tmp_path / "uas")
    assert "INVITE" in caller_side and "INVITE" in callee_side
    caller_ids = _values(caller_side, r"^Call-ID:\s*(\S+)")
    callee_ids = _values(callee_side, r"^Call-ID:\s*(\S+)")
    assert caller_ids and callee_ids and not caller_ids & callee_ids
    caller_tags = _values(caller_side, r"tag=([^;>\s]+)")
    callee_tags = _values(callee_side, r"tag=([^;>\s]+)")
    assert caller_tags and callee_tags and not caller_tags & callee_tags
    caller_branches = _values(caller_side, r"branch=([^;\s]+)")
    callee_branches = _values(callee_side, r"branch=([^;\s]+)")
    assert not caller_branches & callee_branches
    # no address of one side in the other side's headers
    assert CALLER not in _headers_only(callee_side), _headers_only(callee_side)[:2000]
    assert CALLEE not in _headers_only(caller_side), _headers_only(caller_side)[:2000]
