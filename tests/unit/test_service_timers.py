"""The server's timers: the calls' and the transaction layer's share one scheduler."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.testing import MemoryReactorClock

from b2bua.config import load_config
from b2bua.service import B2BUAService


class _Owner:
    def __init__(self) -> None:
        self.timer: int | None = None
        self.fired = 0


def _fire(owner: _Owner) -> None:
    owner.fired += 1


def test_call_timers_and_transaction_timers_share_one_reactor_call(tmp_path: Path) -> None:
    path = tmp_path / "b2bua.toml"
    path.write_text('[[listen]]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = 0\n')
    reactor = MemoryReactorClock()
    service = B2BUAService(load_config(str(path)), reactor=reactor)
    assert service.calls.scheduler is service.layer.scheduler
    before = len(reactor.getDelayedCalls())
    bridge_timer, layer_timer = _Owner(), _Owner()
    service.calls.scheduler.start(32.0, bridge_timer, "timer", _fire)
    service.layer.scheduler.start(32.0, layer_timer, "timer", _fire)
    assert len(reactor.getDelayedCalls()) == before + 1  # one wake-up for both
    reactor.advance(32.01)
    assert (bridge_timer.fired, layer_timer.fired) == (1, 1)
