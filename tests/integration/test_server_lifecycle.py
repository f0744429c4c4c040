"""Graceful shutdown of the real server: SIGTERM and SIGINT end it cleanly.

On either signal the server drains (refuses new requests, waits for transactions
in flight, logs "Drained; stopping") and twistd exits with status 0, with no
traceback in its log.  One server per signal; both tests below look at its run.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.harness import config_text, options_request, running_server, udp_exchange

CONFIG_EXTRA = "[server]\ndrain_time = 2.0\n"


@dataclass(frozen=True)
class Stopped:
    signal: signal.Signals
    status: int
    log: str


@pytest.fixture(scope="module", params=[signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def stopped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stopped]:
    """A server that answered an OPTIONS, then got the signal; its exit status and log."""
    sig: signal.Signals = request.param
    workdir = tmp_path_factory.mktemp(f"server-{sig.name}")
    port = free_port("both")
    config = config_text(udp=port, tcp=port, extra=CONFIG_EXTRA)
    with running_server(workdir, config, ready_udp=port, ready_tcp=port) as server:
        answers = udp_exchange(options_request(0), port)
        assert answers and answers[0].startswith(b"SIP/2.0 200 "), answers
        status = server.stop(sig, timeout=15)
    yield Stopped(sig, status, server.log)


def test_signal_drains_cleanly(stopped: Stopped) -> None:
    assert f"Received {stopped.signal.name}" in stopped.log, stopped.log
    assert "Drained" in stopped.log, stopped.log
    assert "Server Shut Down" in stopped.log, stopped.log
    assert "Traceback" not in stopped.log, stopped.log


def test_signal_exit_status_zero(stopped: Stopped) -> None:
    assert stopped.status == 0, (
        f"exit status {stopped.status} after {stopped.signal.name} "
        f"(negative: killed by that signal)\n{stopped.log}"
    )


def test_two_signals_at_once_stop_the_server_once(tmp_path: Path) -> None:
    """`timeout`, systemd and shells often signal the process and its group at the same
    instant: the second signal, arriving before the reactor began to stop, is only
    noted (it was a second reactor.stop() and a ReactorNotRunning traceback)."""
    port = free_port("both")
    config = config_text(udp=port, tcp=port, extra=CONFIG_EXTRA)
    with running_server(tmp_path, config, ready_udp=port, ready_tcp=port) as server:
        assert server.proc is not None
        # Held stopped, the server gets both at once when it resumes (two different
        # signals: a second SIGTERM would merge with the first while pending).
        server.proc.send_signal(signal.SIGSTOP)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.send_signal(signal.SIGINT)
        server.proc.send_signal(signal.SIGCONT)
        status = server.stop(signal.SIGTERM, timeout=15)
    assert "Traceback" not in server.log, server.log
    assert server.log.count("Drained; stopping") == 1, server.log
    assert status == 0, server.log
