"""The real server's log: JSON lines, and the SIP trace on and off.

- ``[logging] format = "json"``: every line the server prints on stdout is one
  JSON object (etc/b2bua.toml: "one JSON object a line"), trace events included.
- ``sip_trace = true``: the log holds the full OPTIONS received and the full 200
  sent; ``sip_trace = false``: neither.

"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.harness import (
    TWISTD,
    config_text,
    options_request,
    running_server,
    udp_exchange,
)


def logging_config(port: int, *, fmt: str, sip_trace: bool) -> str:
    trace = "true" if sip_trace else "false"
    extra = f'[server]\ndrain_time = 2.0\n\n[logging]\nformat = "{fmt}"\nsip_trace = {trace}\n'
    return config_text(udp=port, extra=extra)


def options_exchange(port: int) -> tuple[bytes, bytes]:
    """Send one OPTIONS with a unique Call-ID; return (request, the 200 received)."""
    request = options_request(0)
    answers = udp_exchange(request, port)
    assert answers and answers[0].startswith(b"SIP/2.0 200 "), answers
    return request, answers[0]


def call_id(message: bytes) -> str:
    m = re.search(rb"\r\nCall-ID: (\S+)", message)
    assert m, message
    return m.group(1).decode()




@dataclass(frozen=True)
class JsonRun:
    stdout: str
    request: bytes  # the OPTIONS sent while it ran (sip_trace is on)


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> JsonRun:
    """A server with format = "json" and sip_trace on: one OPTIONS, then SIGTERM."""
    workdir = tmp_path_factory.mktemp("server-json-log")
    port = free_port("udp")
    path = workdir / "b2bua.toml"
    path.write_text(logging_config(port, fmt="json", sip_trace=True))
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    # Not harness.ServerProcess: that one sends stderr into the same file.
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "b2bua", "--config", str(path)],
            cwd=workdir,
            stdout=out,
            stderr=err,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    try:
        deadline = time.monotonic() + 15
        while not udp_exchange(options_request(0), port, timeout=0.3):
            assert proc.poll() is None, stdout_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "server did not answer"
        request, _ = options_exchange(port)
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return JsonRun(stdout_path.read_text(errors="replace"), request)


def stdout_lines(run: JsonRun) -> list[str]:
    # Split on LF only: str.splitlines() would also split on \x1e and friends.
    lines = run.stdout.rstrip("\n").split("\n")
    assert len(lines) >= 5, lines
    return lines


def parse_lines(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON objects parsed from ``lines``, and a description of each bad line."""
    events, bad = [], []
    for number, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            bad.append(f"line {number}: {error}: {line[:80]!r}")
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            bad.append(f"line {number}: not an object: {line[:80]!r}")
    return events, bad


def test_json_log_records(json_run: JsonRun) -> None:
    """Each line holds one JSON object (ignoring a leading RS, see the next test)."""
    events, bad = parse_lines([line.removeprefix("\x1e") for line in stdout_lines(json_run)])
    assert not bad, "stdout lines that are not JSON objects:\n" + "\n".join(bad[:10])
    formats = " ".join(str(e.get("log_format")) for e in events)
    assert "b2bua listening on" in formats and "Drained" in formats, formats
    # The trace events are JSON too, and carry the whole message.
    assert any(call_id(json_run.request) in json.dumps(e) for e in events), json_run.stdout
    assert "Traceback" not in json_run.stdout


def test_json_every_stdout_line_is_an_object(json_run: JsonRun) -> None:
    _, bad = parse_lines(stdout_lines(json_run))
    assert not bad, "stdout lines that are not JSON objects:\n" + "\n".join(bad[:10])


def test_sip_trace_shows_full_request_and_response(tmp_path: Path) -> None:
    port = free_port("udp")
    config = logging_config(port, fmt="text", sip_trace=True)
    with running_server(tmp_path, config, ready_udp=port) as server:
        request, response = options_exchange(port)
        server.stop(signal.SIGTERM, timeout=15)
    log = server.log
    for message in (request, response):
        for line in message.decode().split("\r\n"):
            if line:
                assert line in log, f"trace lacks {line!r}:\n{log}"
    assert "SIP/2.0 200 OK" in log
    assert "Traceback" not in log, log


def test_no_sip_trace_when_off(tmp_path: Path) -> None:
    port = free_port("udp")
    config = logging_config(port, fmt="text", sip_trace=False)
    with running_server(tmp_path, config, ready_udp=port) as server:
        request, _ = options_exchange(port)
        server.stop(signal.SIGTERM, timeout=15)
    log = server.log
    assert call_id(request) not in log, log
    assert "OPTIONS sip:ping@127.0.0.1" not in log, log
    assert "SIP/2.0 200 OK" not in log, log
    assert "b2bua.trace" not in log, log
